//! Rules for the load's arrival model, closed loop, caps and baggage.

use super::Rules;
use crate::arrival::ArrivalModel;
use crate::decode::{index, join};
use crate::model::Load;

impl Rules<'_> {
    pub(super) fn load_options(&mut self, load: &Load) {
        match &load.arrival {
            ArrivalModel::Constant | ArrivalModel::Poisson => {}
            ArrivalModel::Ramp(ramp) => {
                self.at_least_zero(ramp.from, "load.arrival.ramp.from", "from");
                self.at_least_zero(ramp.to, "load.arrival.ramp.to", "to");
                if ramp.from == 0.0 && ramp.to == 0.0 {
                    let message = "a ramp from 0 to 0 sends nothing".to_owned();
                    self.report("load.arrival.ramp".to_owned(), message, None);
                }
            }
            ArrivalModel::Stages(stages) | ArrivalModel::Steps(stages) => {
                let kind = load.arrival.kind();
                let path = join("load.arrival", kind);
                if stages.is_empty() {
                    self.report_empty(path.clone(), format!("`{kind}` needs at least one stage"));
                }
                for (position, stage) in stages.iter().enumerate() {
                    let stage_path = index(&path, position);
                    self.at_least_zero(stage.rate, &join(&stage_path, "rate"), "rate");
                    if stage.duration.is_zero() {
                        let message = "duration must be longer than zero".to_owned();
                        self.report(join(&stage_path, "duration"), message, None);
                    }
                }
                if !stages.is_empty() && stages.iter().all(|s| s.rate == 0.0) {
                    self.report(
                        path,
                        "every stage has rate 0: nothing would be sent".to_owned(),
                        None,
                    );
                }
            }
            ArrivalModel::Spike(spike) => {
                self.above_zero(spike.height, "load.arrival.spike.height", "height");
                if spike.length.is_zero() {
                    let message = "length must be longer than zero".to_owned();
                    self.report("load.arrival.spike.length".to_owned(), message, None);
                }
                if spike.start >= load.duration {
                    let message = format!(
                        "the spike starts at {:?}, after the load ends ({:?})",
                        spike.start, load.duration
                    );
                    self.report("load.arrival.spike.start".to_owned(), message, None);
                }
            }
        }
        if let Some(users) = load.users {
            if users == 0 {
                self.report(
                    "load.users".to_owned(),
                    "users must be at least 1".to_owned(),
                    None,
                );
            }
            if load.arrival != ArrivalModel::Constant {
                let message =
                    "a closed loop (`users`) sends when answers come back; it has no arrival model"
                        .to_owned();
                let help = Some("remove `arrival`, or `users` for an open loop".to_owned());
                self.report("load.arrival".to_owned(), message, help);
            }
        } else if load.think.is_some() {
            let message = "`think` is the pause of a closed-loop user; it needs `users`".to_owned();
            self.report("load.think".to_owned(), message, None);
        }
        if let Some(think) = &load.think {
            self.latency(think, "load.think");
        }
        if load.connections == Some(0) {
            let message = "connections must be at least 1".to_owned();
            self.report("load.connections".to_owned(), message, None);
        }
        if load.max_in_flight == Some(0) {
            let message = "max_in_flight must be at least 1".to_owned();
            self.report("load.max_in_flight".to_owned(), message, None);
        }
        for (key, values) in &load.baggage {
            let path = join("load.baggage", key);
            if values.is_empty() {
                self.report_empty(
                    path.clone(),
                    format!("baggage `{key}` needs at least one value"),
                );
            }
            for (value, weight) in values {
                if !weight.is_finite() || *weight <= 0.0 {
                    let message = format!("weight must be a finite number above 0, found {weight}");
                    self.report(join(&path, value), message, None);
                }
            }
        }
    }
}
