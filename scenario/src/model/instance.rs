//! Instances of a service: how callers spread their calls over them ([`Balance`]) and how one
//! instance may differ from its siblings ([`Instance`]: a canary's version, a slow or failing
//! host), keyed by the instance's index ([`InstanceIndex`]).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::fault::LatencyFault;
use crate::model::ErrorModel;

/// How callers spread their calls over a service's instances. In YAML a bare name
/// (`least_requests`) or, for `sticky`, a mapping naming the baggage key (`{sticky: session}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Balance {
    /// Each instance in turn: every run of N consecutive requests of the load generator
    /// reaches each of the N instances once, in an order drawn from the seed for each caller
    /// and call.
    #[default]
    RoundRobin,
    /// An instance drawn at random from the seed for each call.
    Random,
    /// Power of two choices: two instances are drawn from the seed, and the call goes to the
    /// one with fewer calls from this caller in flight.
    LeastRequests,
    /// Requests carrying the same value of this baggage key always reach the same instance
    /// (session affinity); requests without it take turns as with `round_robin`.
    Sticky(String),
}

impl Balance {
    /// Whether this is the default policy (`round_robin`), which a scenario need not write.
    pub fn is_default(&self) -> bool {
        *self == Balance::RoundRobin
    }

    /// The policy's name as YAML writes it (`round_robin`, `sticky`, ...).
    pub fn kind(&self) -> &'static str {
        crate::names::variant(|probe| self.serialize(probe))
    }
}

/// How one instance differs from its siblings. Every field is optional; an instance not
/// listed under `instances:` runs the service as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// The version the instance reports as `service.version` (a canary); the service's own
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A change to the own latency of every route on this instance, written like a latency
    /// fault: `{multiply: 4}`, `{add: {constant: {ms: 50}}}` or `{replace: ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyFault>,
    /// Failures injected on every route of this instance, drawn after (and besides) the
    /// route's own `errors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorModel>,
}

/// The index of an instance, from 0 to `replicas - 1`: a key of `instances:` (`2:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceIndex(pub u32);

impl fmt::Display for InstanceIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for InstanceIndex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A mapping key arrives as text from the located reader and from JSON, as a number from
        // other YAML readers: both are taken.
        deserializer.deserialize_any(IndexVisitor)
    }
}

struct IndexVisitor;

impl IndexVisitor {
    fn refuse<E: de::Error>(found: impl fmt::Display) -> E {
        E::custom(crate::decode::with_help(
            format!("`{found}` is not an instance index"),
            "instances are numbered from 0 to `replicas - 1`: write `0:`, `1:`, ...",
        ))
    }
}

impl Visitor<'_> for IndexVisitor {
    type Value = InstanceIndex;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an instance index (0, 1, 2, ...)")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<InstanceIndex, E> {
        u32::try_from(value)
            .map(InstanceIndex)
            .map_err(|_| Self::refuse(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<InstanceIndex, E> {
        u64::try_from(value)
            .map_err(|_| Self::refuse(value))
            .and_then(|value| self.visit_u64(value))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<InstanceIndex, E> {
        // Only plain decimal digits: `+1`, `01` or `1.0` would read as an index the writer
        // may not have meant.
        let plain = !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && (text == "0" || !text.starts_with('0'));
        match text.parse::<u32>() {
            Ok(value) if plain => Ok(InstanceIndex(value)),
            _ => Err(Self::refuse(text)),
        }
    }
}

/// The JSON Schema of `instances:`: a mapping from instance indices to [`Instance`].
pub(crate) fn instances_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let instance = generator.subschema_for::<Instance>();
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "pattern": "^(0|[1-9][0-9]*)$" },
        "additionalProperties": instance,
    })
}
