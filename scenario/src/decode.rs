//! Walks the located YAML tree against the scenario schema, building a [`Scenario`] and
//! collecting every shape problem on the way (unknown fields, missing fields, wrong types,
//! bad durations) instead of stopping at the first.
//!
//! Where a value is missing or malformed, a placeholder takes its place and the path is
//! remembered as broken, so that validation can still check everything else without
//! complaining about the placeholder.
//!
//! The step kinds live in `decode/step.rs`, the latency models in `decode/latency.rs`.

mod latency;
mod load;
mod serde_node;
mod step;

use std::collections::HashMap;
use std::time::Duration;

use indexmap::IndexMap;

use crate::diagnostic::did_you_mean;
use crate::latency::LatencyModel;
use crate::model::{
    Entry, ErrorModel, Load, Route, Scenario, Service, default_method, default_name,
    default_replicas, default_seed, default_status, default_version, default_weight,
};
use crate::node::{Node, Pos, Value};

/// A shape problem at a place in the file.
pub(crate) struct Issue {
    pub(crate) pos: Pos,
    pub(crate) path: String,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
}

/// What decoding produced: a scenario (with placeholders where the file was broken), the
/// problems, where each field path sits in the file, and which paths are broken.
pub(crate) struct Decoded {
    pub(crate) scenario: Scenario,
    pub(crate) issues: Vec<Issue>,
    pub(crate) positions: HashMap<String, Pos>,
    pub(crate) broken: Vec<String>,
    /// List items that moved up because a broken item before them was left out: the path of
    /// an item in the scenario (`...steps[1]`) to its path in the file (`...steps[2]`).
    pub(crate) moved: HashMap<String, String>,
}

impl Decoded {
    /// The path in the file of a path in the decoded scenario.
    pub(crate) fn source_path(&self, path: &str) -> String {
        if self.moved.is_empty() {
            return path.to_owned();
        }
        // Rewrite index by index from the left: the moves of a nested list are recorded
        // under the file path of its parent, which the earlier rewrites have produced.
        let mut rewritten = String::with_capacity(path.len());
        let mut rest = path;
        while let Some(end) = rest.find(']') {
            rewritten.push_str(&rest[..=end]);
            rest = &rest[end + 1..];
            if let Some(source) = self.moved.get(&rewritten) {
                rewritten.clone_from(source);
            }
        }
        rewritten.push_str(rest);
        rewritten
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[index]`.
pub(crate) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

const SCENARIO_FIELDS: &[&str] = &[
    "name",
    "description",
    "seed",
    "services",
    "load",
    "incidents",
    "random_incidents",
];
const SERVICE_FIELDS: &[&str] = &["version", "replicas", "routes", "concurrency"];
const ROUTE_FIELDS: &[&str] = &["method", "latency", "errors", "steps"];
const ERROR_FIELDS: &[&str] = &["rate", "status"];
const CALL_FIELDS: &[&str] = &["call", "route", "probability", "repeat", "timeout", "retry"];
const PARALLEL_FIELDS: &[&str] = &["parallel", "max_parallel"];
const WORK_FIELDS: &[&str] = &["work", "latency", "cpu", "lock"];
const STEP_KINDS: &[&str] = &["call", "parallel", "work", "db", "cache", "publish"];
const LOAD_FIELDS: &[&str] = &[
    "rate",
    "duration",
    "arrival",
    "users",
    "think",
    "connections",
    "max_in_flight",
    "baggage",
    "entries",
];
const ENTRY_FIELDS: &[&str] = &["service", "route", "weight"];

/// Decodes a whole document.
pub(crate) fn decode(root: &Node) -> Decoded {
    let mut decoder = Decoder::default();
    let scenario = decoder.scenario(root);
    Decoded {
        scenario,
        issues: decoder.issues,
        positions: decoder.positions,
        broken: decoder.broken,
        moved: decoder.moved,
    }
}

/// The recognised fields of one mapping, with where the mapping is.
struct Fields<'n> {
    pos: Pos,
    path: String,
    entries: Vec<(&'static str, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, name: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, node)| *node)
    }

    fn path(&self, name: &str) -> String {
        join(&self.path, name)
    }
}

#[derive(Default)]
struct Decoder {
    issues: Vec<Issue>,
    positions: HashMap<String, Pos>,
    broken: Vec<String>,
    moved: HashMap<String, String>,
}

impl Decoder {
    /// Records that the item decoded as element `kept` of the list at `list` is element
    /// `position` in the file.
    fn keep(&mut self, list: &str, kept: usize, position: usize) {
        if kept != position {
            self.moved.insert(index(list, kept), index(list, position));
        }
    }

    fn error(&mut self, pos: Pos, path: &str, message: String, help: Option<String>) {
        self.issues.push(Issue {
            pos,
            path: path.to_owned(),
            message,
            help,
        });
        self.broken.push(path.to_owned());
    }

    fn expected(&mut self, node: &Node, path: &str, expected: &str, help: Option<String>) {
        let message = format!("expected {expected}, found {}", node.value.describe());
        self.error(node.pos, path, message, help);
    }

    /// Remembers where `path` is. The first place recorded wins: for a service or a route
    /// that is its name, which is where a problem with the name should point.
    fn locate(&mut self, path: &str, pos: Pos) {
        self.positions.entry(path.to_owned()).or_insert(pos);
    }

    /// A mapping with a fixed set of fields; every other key is reported as unknown.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
        allowed: &[&'static str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.expected(node, path, &format!("{what} (a mapping)"), None);
            return None;
        };
        self.locate(path, node.pos);
        let mut fields = Fields {
            pos: node.pos,
            path: path.to_owned(),
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let Some(name) = key.key_text() else {
                self.error(key.pos, path, "a key must be a plain name".to_owned(), None);
                continue;
            };
            match allowed.iter().find(|field| **field == name) {
                Some(field) => {
                    self.locate(&join(path, field), value.pos);
                    fields.entries.push((field, value));
                }
                None => self.error(
                    key.pos,
                    &join(path, &name),
                    format!("unknown field `{name}` in {what}"),
                    Some(did_you_mean(&name, "expected one of", allowed)),
                ),
            }
        }
        Some(fields)
    }

    /// A mapping whose keys are names the writer chooses (services, routes).
    fn named<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        what: &str,
    ) -> Vec<(String, String, &'n Node)> {
        let Value::Map(entries) = &node.value else {
            self.expected(
                node,
                path,
                &format!("{what} (a mapping from name to definition)"),
                None,
            );
            return Vec::new();
        };
        let mut named = Vec::new();
        for (key, value) in entries {
            let Some(name) = key.key_text() else {
                self.error(key.pos, path, "a key must be a plain name".to_owned(), None);
                continue;
            };
            let child = join(path, &name);
            self.locate(&child, key.pos);
            named.push((name, child, value));
        }
        named
    }

    fn required<'n>(&mut self, fields: &Fields<'n>, name: &str, what: &str) -> Option<&'n Node> {
        let node = fields.get(name);
        if node.is_none() {
            let path = fields.path(name);
            self.error(
                fields.pos,
                &path,
                format!("missing field `{name}` in {what}"),
                None,
            );
        }
        node
    }

    fn list<'n>(&mut self, node: &'n Node, path: &str, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.expected(node, path, &format!("a list of {what}"), None);
                None
            }
        }
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(text) => Some(text.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                let help = Some("put it in quotes to make it text".to_owned());
                self.expected(node, path, "a string", help);
                None
            }
            _ => {
                self.expected(node, path, "a string", None);
                None
            }
        }
    }

    fn number(&mut self, node: &Node, path: &str) -> Option<f64> {
        match node.value {
            // Every integer a scenario plausibly holds is exact in an f64.
            Value::Int(value) => Some(value as f64),
            Value::Float(value) => Some(value),
            _ => {
                self.expected(node, path, "a number", None);
                None
            }
        }
    }

    fn integer<T: TryFrom<i128> + std::fmt::Display + Bounded>(
        &mut self,
        node: &Node,
        path: &str,
    ) -> Option<T> {
        if let Value::Int(value) = node.value
            && let Ok(value) = T::try_from(value)
        {
            return Some(value);
        }
        let expected = format!("a whole number from 0 to {}", T::MAX);
        self.expected(node, path, &expected, None);
        None
    }

    fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        match &node.value {
            Value::Str(text) => match crate::duration::parse(text) {
                Ok(duration) => Some(duration),
                Err(message) => {
                    self.error(node.pos, path, message, None);
                    None
                }
            },
            Value::Int(_) | Value::Float(_) => {
                let help = Some(format!(
                    "a duration needs a unit: `{0}s` for seconds, `{0}ms` for milliseconds",
                    node.key_text().unwrap_or_default()
                ));
                self.expected(node, path, "a duration with a unit", help);
                None
            }
            _ => {
                self.expected(node, path, "a duration such as `800ms` or `30s`", None);
                None
            }
        }
    }

    fn scenario(&mut self, root: &Node) -> Scenario {
        let mut scenario = Scenario {
            name: default_name(),
            description: None,
            seed: default_seed(),
            services: IndexMap::new(),
            load: placeholder_load(),
            incidents: Vec::new(),
            random_incidents: None,
        };
        let Some(fields) = self.fields(root, "", "a scenario", SCENARIO_FIELDS) else {
            return scenario;
        };
        if let Some(name) = fields
            .get("name")
            .and_then(|node| self.string(node, "name"))
        {
            scenario.name = name;
        }
        if let Some(node) = fields.get("description") {
            scenario.description = self.string(node, "description");
        }
        if let Some(seed) = fields
            .get("seed")
            .and_then(|node| self.integer(node, "seed"))
        {
            scenario.seed = seed;
        }
        if let Some(node) = self.required(&fields, "services", "a scenario") {
            for (name, path, node) in self.named(node, "services", "services") {
                if let Some(service) = self.service(node, &path) {
                    scenario.services.insert(name, service);
                }
            }
        }
        if let Some(node) = self.required(&fields, "load", "a scenario") {
            scenario.load = self.load(node, "load");
        }
        if let Some(node) = fields.get("incidents") {
            scenario.incidents = self.incidents(node, "incidents");
        }
        if let Some(node) = fields.get("random_incidents") {
            scenario.random_incidents = self.random_incidents(node, "random_incidents");
        }
        scenario
    }

    fn service(&mut self, node: &Node, path: &str) -> Option<Service> {
        let fields = self.fields(node, path, "a service", SERVICE_FIELDS)?;
        let version = match fields.get("version") {
            Some(node) => self.string(node, &fields.path("version")),
            None => None,
        };
        let replicas = match fields.get("replicas") {
            Some(node) => self.integer(node, &fields.path("replicas")),
            None => None,
        };
        let concurrency = fields
            .get("concurrency")
            .and_then(|node| self.integer(node, &fields.path("concurrency")));
        let mut routes = IndexMap::new();
        if let Some(node) = self.required(&fields, "routes", "a service") {
            for (name, route_path, node) in self.named(node, &fields.path("routes"), "routes") {
                if let Some(route) = self.route(node, &route_path) {
                    routes.insert(name, route);
                }
            }
        }
        Some(Service {
            version: version.unwrap_or_else(default_version),
            replicas: replicas.unwrap_or_else(default_replicas),
            routes,
            concurrency,
        })
    }

    fn route(&mut self, node: &Node, path: &str) -> Option<Route> {
        // A route with nothing under it (`/health:`) is a route with every default.
        if matches!(node.value, Value::Null) {
            return Some(Route {
                method: default_method(),
                latency: LatencyModel::default(),
                errors: None,
                steps: Vec::new(),
            });
        }
        let fields = self.fields(node, path, "a route", ROUTE_FIELDS)?;
        let method = fields
            .get("method")
            .and_then(|node| self.string(node, &fields.path("method")));
        let latency = fields
            .get("latency")
            .and_then(|node| self.latency(node, &fields.path("latency")));
        let errors = fields
            .get("errors")
            .and_then(|node| self.errors(node, &fields.path("errors")));
        let mut steps = Vec::new();
        if let Some(node) = fields.get("steps") {
            let steps_path = fields.path("steps");
            for (position, step) in self
                .list(node, &steps_path, "steps")
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(step) = self.step(step, &index(&steps_path, position)) {
                    self.keep(&steps_path, steps.len(), position);
                    steps.push(step);
                }
            }
        }
        Some(Route {
            method: method.unwrap_or_else(default_method),
            latency: latency.unwrap_or_default(),
            errors,
            steps,
        })
    }

    fn errors(&mut self, node: &Node, path: &str) -> Option<ErrorModel> {
        let fields = self.fields(node, path, "an error model", ERROR_FIELDS)?;
        let rate = self.required(&fields, "rate", "an error model");
        let rate = rate.and_then(|node| self.number(node, &fields.path("rate")));
        let status = match fields.get("status") {
            Some(node) => self.integer(node, &fields.path("status")),
            None => None,
        };
        Some(ErrorModel {
            rate: rate?,
            status: status.unwrap_or_else(default_status),
        })
    }

    fn load(&mut self, node: &Node, path: &str) -> Load {
        let mut load = placeholder_load();
        let Some(fields) = self.fields(node, path, "the load", LOAD_FIELDS) else {
            return load;
        };
        self.load_options(&fields, &mut load);
        // `rate` is only needed by the models that read it; `duration` not by staged ones,
        // which last as long as their stages.
        let rate = if load.users.is_none() && load.arrival.uses_rate() {
            self.required(&fields, "rate", "the load")
        } else {
            load.rate = 0.0;
            fields.get("rate")
        };
        if let Some(rate) = rate.and_then(|node| self.number(node, &fields.path("rate"))) {
            load.rate = rate;
        }
        let duration = match load.arrival.stages() {
            Some(stages) if fields.get("duration").is_none() => {
                load.duration = stages.iter().map(|s| s.duration).sum();
                None
            }
            _ => self.required(&fields, "duration", "the load"),
        };
        if let Some(duration) =
            duration.and_then(|node| self.duration(node, &fields.path("duration")))
        {
            load.duration = duration;
        }
        let entries_path = fields.path("entries");
        let entries = self.required(&fields, "entries", "the load");
        let items = entries
            .and_then(|node| self.list(node, &entries_path, "entries"))
            .unwrap_or_default();
        for (position, item) in items.iter().enumerate() {
            if let Some(entry) = self.entry(item, &index(&entries_path, position)) {
                self.keep(&entries_path, load.entries.len(), position);
                load.entries.push(entry);
            }
        }
        load
    }

    fn entry(&mut self, node: &Node, path: &str) -> Option<Entry> {
        let fields = self.fields(node, path, "a load entry", ENTRY_FIELDS)?;
        let service = self.required(&fields, "service", "a load entry");
        let service = service.and_then(|node| self.string(node, &fields.path("service")));
        let route = self.required(&fields, "route", "a load entry");
        let route = route.and_then(|node| self.string(node, &fields.path("route")));
        let weight = fields
            .get("weight")
            .map(|node| self.number(node, &fields.path("weight")));
        Some(Entry {
            service: service?,
            route: route?,
            weight: weight.flatten().unwrap_or_else(default_weight),
        })
    }
}

/// Stands in for a load section that is missing or broken; never reported on, because its
/// path is marked broken whenever it is used.
fn placeholder_load() -> Load {
    Load {
        rate: 1.0,
        duration: Duration::from_secs(1),
        arrival: Default::default(),
        users: None,
        think: None,
        connections: None,
        max_in_flight: None,
        baggage: Default::default(),
        entries: Vec::new(),
    }
}

/// The largest value of an integer type, for "expected a whole number from 0 to MAX".
trait Bounded {
    const MAX: u128;
}

impl Bounded for u16 {
    const MAX: u128 = u16::MAX as u128;
}

impl Bounded for u32 {
    const MAX: u128 = u32::MAX as u128;
}

impl Bounded for u64 {
    const MAX: u128 = u64::MAX as u128;
}
