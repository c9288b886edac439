//! Turns the located YAML tree into a [`Scenario`] through the model's own serde derives,
//! collecting every shape problem (unknown fields, missing fields, wrong types, bad
//! durations) with its place instead of stopping at the first.
//!
//! serde stops at the first error, so decoding runs in passes. The located deserializer
//! (`decode/de.rs`) reports every unknown key of a pass without stopping; a hard error ends the
//! pass, is recorded, and its node is treated as absent in the next one: a broken optional
//! field takes its default, a broken list item or map entry is left out (the shift in indices
//! is kept in [`Decoded::moved`]), and a required field whose value broke makes its parent
//! broken in turn, silently, up to the nearest thing that can be left out. `services`, `load`
//! and a service's `routes` get placeholders instead, so that validation still sees every
//! service and every reference. Each pass marks one more node absent, so the passes end; the
//! paths that broke go to [`Decoded::broken`] so that validation does not report them again.
//!
//! Layout: `de` is the deserializer, `error` its error type and message wording.

mod de;
mod error;

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;

pub(crate) use error::with_help;

use crate::model::Scenario;
use crate::node::{Node, Pos, Value};
use de::{Context, NodeDe};
use error::DeError;

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

    /// Whether the file gives `path` (a field left out has no position).
    pub(crate) fn given(&self, path: &str) -> bool {
        self.positions.contains_key(&self.source_path(path))
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

/// The struct name that asks the decoder for the key-tagged form of the enum `$name` (a
/// mapping in which one key names the variant and is also one of the variant's fields).
macro_rules! key_tagged {
    ($name:literal) => {
        concat!("$tracelab::key_tagged::", $name)
    };
}
pub(crate) use key_tagged;

/// The prefix of every key-tagged struct name; the enum's type name follows it.
pub(crate) const KEY_TAGGED: &str = key_tagged!("");

/// Stands in for a whole scenario whose top level is not a mapping at all.
const SCENARIO_PLACEHOLDER: &str = "{services: {}, load: {rate: 1, duration: 1s, entries: []}}";

/// Stand-ins for required fields that are missing or broken, by (struct, field). They are
/// only ever used under a path that is already reported, so validation never speaks of them.
const PLACEHOLDERS: &[(&str, &str, &str)] = &[
    ("Scenario", "services", "{}"),
    ("Scenario", "load", "{rate: 1, duration: 1s, entries: []}"),
    ("Service", "routes", "{}"),
];

/// Decodes a whole document.
pub(crate) fn decode(root: &Node) -> Decoded {
    let mut placeholders = HashMap::new();
    for (owner, field, text) in PLACEHOLDERS {
        placeholders.insert((*owner, *field), placeholder(text, root.pos));
    }
    let fallback = placeholder(SCENARIO_PLACEHOLDER, root.pos);
    let mut outcome = passes::<Scenario>(root, &placeholders, Some(&fallback));
    if outcome.value.is_none() {
        // Nothing could be read: every rule would only speak of placeholders.
        outcome.broken.push(String::new());
    }
    Decoded {
        // The fallback always decodes; a scenario is there unless the tree is pathological.
        scenario: outcome
            .value
            .unwrap_or_else(|| placeholder_scenario(&fallback)),
        issues: outcome.issues,
        positions: outcome.positions,
        broken: outcome.broken,
        moved: outcome.moved,
    }
}

/// Decodes a fragment (a step, an arrival model) from a located tree, with no placeholders:
/// the value, or every problem found.
pub(crate) fn fragment<T: DeserializeOwned>(root: &Node) -> Result<T, Vec<Issue>> {
    let outcome = passes::<T>(root, &HashMap::new(), None);
    match outcome.value {
        Some(value) if outcome.issues.is_empty() => Ok(value),
        _ => Err(outcome.issues),
    }
}

fn placeholder(text: &str, pos: Pos) -> Node {
    match crate::node::read(text) {
        Ok(mut node) => {
            reposition(&mut node, pos);
            node
        }
        Err(_) => Node {
            value: Value::Null,
            pos,
        },
    }
}

/// Puts every node of a placeholder where the field it stands in for would be.
fn reposition(node: &mut Node, pos: Pos) {
    node.pos = pos;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|item| reposition(item, pos)),
        Value::Map(entries) => entries.iter_mut().for_each(|(key, value)| {
            reposition(key, pos);
            reposition(value, pos);
        }),
        _ => {}
    }
}

/// The scenario of last resort, should even the placeholder fail to decode.
fn placeholder_scenario(fallback: &Node) -> Scenario {
    fragment(fallback).unwrap_or_else(|_| Scenario {
        name: crate::model::default_name(),
        description: None,
        seed: crate::model::default_seed(),
        services: Default::default(),
        load: crate::model::Load {
            rate: 1.0,
            duration: std::time::Duration::from_secs(1),
            arrival: Default::default(),
            users: None,
            think: None,
            connections: None,
            max_in_flight: None,
            baggage: Default::default(),
            entries: Vec::new(),
        },
        incidents: Vec::new(),
        random_incidents: None,
    })
}

/// What the passes found.
struct Outcome<T> {
    value: Option<T>,
    issues: Vec<Issue>,
    positions: HashMap<String, Pos>,
    broken: Vec<String>,
    moved: HashMap<String, String>,
}

/// Decodes `root` as a `T`, pass after pass, until a pass succeeds (see the module docs).
/// `fallback` stands in for the root when the root itself breaks.
fn passes<T: DeserializeOwned>(
    root: &Node,
    placeholders: &HashMap<(&'static str, &'static str), Node>,
    fallback: Option<&Node>,
) -> Outcome<T> {
    let positions = RefCell::new(HashMap::new());
    let mut absent: HashSet<String> = HashSet::new();
    let mut issues = Vec::new();
    let mut said: HashSet<(String, String)> = HashSet::new();
    let mut broken = Vec::new();
    let mut record = |issue: Issue, broken: &mut Vec<String>| {
        broken.push(issue.path.clone());
        if said.insert((issue.path.clone(), issue.message.clone())) {
            issues.push(issue);
        }
    };
    // Every pass but the last marks one more node absent, and there are no more nodes to mark
    // than nodes in the tree (plus the placeholders).
    let limit = count(root) + placeholders.len() + 2;
    for _ in 0..limit {
        let cx = Context {
            absent: &absent,
            placeholders,
            issues: RefCell::new(Vec::new()),
            positions: &positions,
            moved: RefCell::new(HashMap::new()),
        };
        let node = match fallback {
            Some(fallback) if absent.contains("") => fallback,
            _ => root,
        };
        let result = T::deserialize(NodeDe::new(node, String::new(), &cx));
        for issue in cx.issues.take() {
            record(issue, &mut broken);
        }
        let located = match result {
            Ok(value) => {
                return Outcome {
                    value: Some(value),
                    issues,
                    positions: positions.take(),
                    broken,
                    moved: cx.moved.take(),
                };
            }
            Err(DeError::Located(located)) => located,
            Err(DeError::Pending(problem)) => {
                // Only a root that broke after its deserializer returned gets here.
                error::Located {
                    path: String::new(),
                    pos: root.pos,
                    message: format!("{problem:?}"),
                    help: None,
                    silent: false,
                }
            }
        };
        let path = located.path.clone();
        if located.silent {
            broken.push(path.clone());
        } else {
            let issue = Issue {
                pos: located.pos,
                path: path.clone(),
                message: located.message,
                help: located.help,
            };
            record(issue, &mut broken);
        }
        // A node that breaks again although it is absent is inside something that cannot
        // leave it out (a variant's content): mark the enclosing node instead.
        let mut path = path;
        while absent.contains(&path) && !path.is_empty() {
            path = parent(&path).to_owned();
            broken.push(path.clone());
        }
        if !absent.insert(path) || (absent.contains("") && fallback.is_none()) {
            break;
        }
    }
    Outcome {
        value: None,
        issues,
        positions: positions.take(),
        broken,
        moved: HashMap::new(),
    }
}

/// `a.b` for `a.b.c` and `a.b[2]`; empty at the top.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(cut) => &path[..cut],
        None => "",
    }
}

/// How many nodes the tree has.
fn count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(count).sum(),
        Value::Map(entries) => entries.iter().map(|(_, value)| count(value) + 1).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
