//! How a step is read and written: a mapping with exactly one kind key, which is also the
//! first field of that kind (`{call: payment, route: /charge}`, `{work: db.query, latency:
//! 3ms}`).
//!
//! serde has no such enum representation, so the derives on [`Step`] describe the tagged form
//! (`{call: {...}}`) and stay private; they give the kind names and, once the decoder has found
//! the kind key, read the variant. The located decoder reads the key-tagged form itself (see
//! [`crate::decode`]), with the messages "this one has `call` and `work`" and "this one has
//! none"; other formats hand over a plain mapping, which is captured and decoded the same way.

use std::fmt;

use serde::de::value::EnumAccessDeserializer;
use serde::de::{self, Deserializer, EnumAccess, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{Call, Step};
use crate::decode::{key_tagged, with_help};

impl Step {
    /// The kinds of step as YAML writes them, in declaration order.
    pub fn kinds() -> &'static [&'static str] {
        crate::names::variants(Step::deserialize)
    }

    /// The kind of this step as YAML writes it (`call`, `work`, ...).
    pub fn kind(&self) -> &'static str {
        crate::names::variant(|probe| Step::serialize(self, probe))
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // The variant's own fields carry the kind key.
        match self {
            Step::Call(call) => call.serialize(serializer),
            Step::Parallel(parallel) => parallel.serialize(serializer),
            Step::Work(work) => work.serialize(serializer),
            Step::Db(db) => db.serialize(serializer),
            Step::Cache(cache) => cache.serialize(serializer),
            Step::Publish(publish) => publish.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct(key_tagged!("Step"), Step::kinds(), StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = Step;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a step: a mapping with one of {}",
            Step::kinds().join(", ")
        )
    }

    /// The located decoder has found the kind.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Step, A::Error> {
        Step::deserialize(EnumAccessDeserializer::new(data))
    }

    /// Another format hands over the mapping: capture it and decode it like a file.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Step, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) =
            map.next_entry::<crate::node::Captured, crate::node::Captured>()?
        {
            entries.push((key.0, value.0));
        }
        let node = crate::node::Node {
            value: crate::node::Value::Map(entries),
            pos: Default::default(),
        };
        crate::decode::fragment::<Step>(&node).map_err(|issues| {
            let described: Vec<String> = issues
                .into_iter()
                .map(|issue| match issue.path.is_empty() {
                    true => issue.message,
                    false => format!("{}: {}", issue.path, issue.message),
                })
                .collect();
            de::Error::custom(described.join("; "))
        })
    }
}

/// Reads the calls of a parallel step. Each item is read as a step, so that a `work` or a
/// nested `parallel` in the list is named for what it is.
pub(super) fn calls_only<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Call>, D::Error> {
    struct CallOnly(Call);

    impl<'de> Deserialize<'de> for CallOnly {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match <Step as Deserialize>::deserialize(d)? {
                Step::Call(call) => Ok(CallOnly(call)),
                other => Err(de::Error::custom(with_help(
                    format!("a parallel step runs calls only, not `{}`", other.kind()),
                    "give it its own step before or after the parallel step",
                ))),
            }
        }
    }

    let calls = Vec::<CallOnly>::deserialize(d)?;
    Ok(calls.into_iter().map(|call| call.0).collect())
}
