//! The load's arrival model, closed-loop users, caps and baggage.

use indexmap::IndexMap;

use super::{Decoder, Fields, index, join};
use crate::arrival::{ArrivalModel, Ramp, Spike, Stage};
use crate::diagnostic::did_you_mean;
use crate::model::Load;
use crate::node::{Node, Value};

const RAMP_FIELDS: &[&str] = &["from", "to"];
const STAGE_FIELDS: &[&str] = &["duration", "rate"];
const SPIKE_FIELDS: &[&str] = &["height", "start", "length"];

impl Decoder {
    /// Reads every optional field of the load but `rate`, `duration` and `entries`.
    pub(super) fn load_options(&mut self, fields: &Fields<'_>, load: &mut Load) {
        if let Some(node) = fields.get("arrival")
            && let Some(arrival) = self.arrival(node, &fields.path("arrival"))
        {
            load.arrival = arrival;
        }
        if let Some(node) = fields.get("users") {
            load.users = self.integer(node, &fields.path("users"));
        }
        if let Some(node) = fields.get("think") {
            load.think = self.latency(node, &fields.path("think"));
        }
        if let Some(node) = fields.get("connections") {
            load.connections = self.integer(node, &fields.path("connections"));
        }
        if let Some(node) = fields.get("max_in_flight") {
            load.max_in_flight = self.integer(node, &fields.path("max_in_flight"));
        }
        if let Some(node) = fields.get("baggage") {
            load.baggage = self.baggage(node, &fields.path("baggage"));
        }
    }

    fn arrival(&mut self, node: &Node, path: &str) -> Option<ArrivalModel> {
        let example = "write `constant`, `poisson`, `{ramp: {from: 10, to: 100}}`, \
                       `{stages: [{duration: 10s, rate: 50}]}`, `{steps: [...]}` or \
                       `{spike: {height: 200, start: 10s, length: 5s}}`";
        let (kind, params, kind_pos) = match &node.value {
            Value::Str(text) => (text.clone(), None, node.pos),
            Value::Map(entries) if entries.len() == 1 => {
                let (key, params) = &entries[0];
                (key.key_text().unwrap_or_default(), Some(params), key.pos)
            }
            _ => {
                self.expected(node, path, "an arrival model", Some(example.to_owned()));
                return None;
            }
        };
        let kind_path = join(path, &kind);
        match (kind.as_str(), params) {
            ("constant", None) => Some(ArrivalModel::Constant),
            ("poisson", None) => Some(ArrivalModel::Poisson),
            ("ramp", Some(params)) => {
                let fields = self.fields(params, &kind_path, "a ramp", RAMP_FIELDS)?;
                let from = self.required(&fields, "from", "a ramp");
                let from = from.and_then(|n| self.number(n, &fields.path("from")));
                let to = self.required(&fields, "to", "a ramp");
                let to = to.and_then(|n| self.number(n, &fields.path("to")));
                Some(ArrivalModel::Ramp(Ramp {
                    from: from?,
                    to: to?,
                }))
            }
            ("stages", Some(params)) => self.stages(params, &kind_path).map(ArrivalModel::Stages),
            ("steps", Some(params)) => self.stages(params, &kind_path).map(ArrivalModel::Steps),
            ("spike", Some(params)) => {
                let fields = self.fields(params, &kind_path, "a spike", SPIKE_FIELDS)?;
                let height = self.required(&fields, "height", "a spike");
                let height = height.and_then(|n| self.number(n, &fields.path("height")));
                let start = self.required(&fields, "start", "a spike");
                let start = start.and_then(|n| self.duration(n, &fields.path("start")));
                let length = self.required(&fields, "length", "a spike");
                let length = length.and_then(|n| self.duration(n, &fields.path("length")));
                Some(ArrivalModel::Spike(Spike {
                    height: height?,
                    start: start?,
                    length: length?,
                }))
            }
            ("constant" | "poisson", Some(_)) => {
                let message = format!("`{kind}` takes no parameters; it uses `load.rate`");
                self.error(
                    kind_pos,
                    &kind_path,
                    message,
                    Some(format!("write `arrival: {kind}`")),
                );
                None
            }
            ("ramp" | "stages" | "steps" | "spike", None) => {
                let message = format!("`{kind}` needs its parameters");
                self.error(kind_pos, &kind_path, message, Some(example.to_owned()));
                None
            }
            _ => {
                let message = format!("unknown arrival model `{kind}`");
                let help = did_you_mean(&kind, "expected one of", &ArrivalModel::KINDS);
                self.error(kind_pos, path, message, Some(help));
                None
            }
        }
    }

    fn stages(&mut self, node: &Node, path: &str) -> Option<Vec<Stage>> {
        let items = self.list(node, path, "stages")?;
        let mut stages = Vec::new();
        let mut broken = false;
        for (position, item) in items.iter().enumerate() {
            let item_path = index(path, position);
            let Some(fields) = self.fields(item, &item_path, "a stage", STAGE_FIELDS) else {
                broken = true;
                continue;
            };
            let duration = self.required(&fields, "duration", "a stage");
            let duration = duration.and_then(|n| self.duration(n, &fields.path("duration")));
            let rate = self.required(&fields, "rate", "a stage");
            let rate = rate.and_then(|n| self.number(n, &fields.path("rate")));
            match (duration, rate) {
                (Some(duration), Some(rate)) => stages.push(Stage { duration, rate }),
                _ => broken = true,
            }
        }
        // A stage left out would shift the timing of every later one: keep none.
        if broken { None } else { Some(stages) }
    }

    fn baggage(&mut self, node: &Node, path: &str) -> IndexMap<String, IndexMap<String, f64>> {
        let mut baggage = IndexMap::new();
        for (key, key_path, values) in self.named(node, path, "baggage") {
            let mut weighted = IndexMap::new();
            for (value, value_path, weight) in self.named(values, &key_path, "baggage values") {
                if let Some(weight) = self.number(weight, &value_path) {
                    weighted.insert(value, weight);
                }
            }
            baggage.insert(key, weighted);
        }
        baggage
    }
}
