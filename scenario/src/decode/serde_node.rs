//! The parts of a scenario decoded with serde rather than by hand: incidents and their
//! faults, retries, and the database, cache and queue steps.
//!
//! Their types are shared with JSON readers (the admin API takes the same faults), so serde
//! is their one definition. The located node is turned into a JSON value and deserialized; a
//! mismatch is reported at the node's line and column with serde's message, which names the
//! unknown field or variant and what was expected.

use serde::de::DeserializeOwned;

use super::{Decoder, index};
use crate::fault::{Incident, RandomIncidents};
use crate::node::{Node, Value};

impl Decoder {
    /// Deserializes `node` as a `T`, or reports why it is not one.
    pub(super) fn via_serde<T: DeserializeOwned>(
        &mut self,
        node: &Node,
        path: &str,
        what: &str,
    ) -> Option<T> {
        self.locate(path, node.pos);
        match serde_json::from_value(to_json(node)) {
            Ok(value) => Some(value),
            Err(error) => {
                self.error(node.pos, path, format!("{what}: {error}"), None);
                None
            }
        }
    }

    pub(super) fn incidents(&mut self, node: &Node, path: &str) -> Vec<Incident> {
        let mut out = Vec::new();
        for (position, item) in self
            .list(node, path, "incidents")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let item_path = index(path, position);
            if let Some(incident) = self.via_serde(item, &item_path, "an incident") {
                self.keep(path, out.len(), position);
                out.push(incident);
            }
        }
        out
    }

    pub(super) fn random_incidents(&mut self, node: &Node, path: &str) -> Option<RandomIncidents> {
        self.via_serde(node, path, "random incidents")
    }
}

/// The node as a JSON value. Integers beyond `i64` (which no scenario field holds) become
/// floats, so the type error names the field instead of failing here.
fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(i) => J::from(i),
            Err(_) => J::from(*i as f64),
        },
        Value::Float(f) => J::from(*f),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(key, value)| (key.key_text().unwrap_or_default(), to_json(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    const BASE: &str = "services:\n  api:\n    routes:\n      /: {}\nload:\n  rate: 1\n  duration: 10s\n  entries:\n    - {service: api, route: /}\n";

    #[test]
    fn incidents_and_new_steps_decode() {
        let text = format!(
            "{BASE}incidents:\n  - at: 2s\n    duration: 1s\n    fault: {{service: api, kind: {{latency: {{add: 300ms}}}}}}\n"
        );
        let scenario = crate::parse(&text, "t.yaml").expect("valid");
        assert_eq!(scenario.incidents.len(), 1);
        assert_eq!(
            scenario.incidents[0].fault.kind,
            crate::FaultKind::Latency(crate::LatencyFault::Add(crate::LatencyModel::Constant {
                ms: 300.0
            }))
        );
    }

    #[test]
    fn a_bad_incident_is_reported_where_it_is() {
        let text = format!(
            "{BASE}incidents:\n  - at: 2s\n    duration: 1s\n    fault: {{service: api, kind: explode}}\n  - at: 2s\n    duration: 0s\n    fault: {{service: nope, route: /x, kind: hang}}\n"
        );
        let diagnostics = crate::parse(&text, "t.yaml").expect_err("two broken incidents");
        let rendered: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 3, "{rendered:?}");
        assert!(
            rendered[0].starts_with("t.yaml:11:5: incidents[0]"),
            "{}",
            rendered[0]
        );
        assert!(
            rendered[0].contains("unknown variant `explode`"),
            "{}",
            rendered[0]
        );
        assert!(
            rendered[1].contains("incidents[1].duration"),
            "{}",
            rendered[1]
        );
        assert!(
            rendered[2].contains("incidents[1].fault.service: no service `nope`"),
            "{}",
            rendered[2]
        );
    }
}
