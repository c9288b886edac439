//! From the scenario's `load:` section to the generator's own types.

use tracelab_scenario::{ArrivalModel, Load};

use crate::plan::{BaggageSet, Driver};
use crate::schedule::{Arrival, Stage, StageShape};

/// The driver a `load:` section describes.
pub(crate) fn driver(load: &Load) -> Driver {
    if let Some(users) = load.users {
        return Driver::Closed {
            users,
            think: load.think.clone().unwrap_or_default(),
        };
    }
    let stages = |stages: &[tracelab_scenario::Stage]| -> Vec<Stage> {
        stages
            .iter()
            .map(|s| Stage {
                duration: s.duration,
                rate: s.rate,
            })
            .collect()
    };
    Driver::Open(match &load.arrival {
        ArrivalModel::Constant => Arrival::Constant { rate: load.rate },
        ArrivalModel::Poisson => Arrival::Poisson { rate: load.rate },
        ArrivalModel::Ramp(ramp) => Arrival::Ramp {
            from: ramp.from,
            to: ramp.to,
        },
        ArrivalModel::Stages(list) => Arrival::Stages {
            stages: stages(list),
            shape: StageShape::Linear,
        },
        ArrivalModel::Steps(list) => Arrival::Stages {
            stages: stages(list),
            shape: StageShape::Step,
        },
        ArrivalModel::Spike(spike) => Arrival::Spike {
            base: load.rate,
            height: spike.height,
            start: spike.start,
            length: spike.length,
        },
    })
}

/// The baggage sets of a `load:` section, in file order.
pub(crate) fn baggage(load: &Load) -> Vec<BaggageSet> {
    load.baggage
        .iter()
        .map(|(key, values)| BaggageSet {
            key: key.clone(),
            values: values.iter().map(|(v, w)| (v.clone(), *w)).collect(),
        })
        .collect()
}
