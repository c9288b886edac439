//! Resilience and resource behaviour in the route model: retries of a call, simulated
//! database queries, caches in front of a backing route, and queues between services.
//!
//! Each is a plain data type; the services runtime gives it its behaviour and its spans.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::latency::LatencyModel;
use crate::model::Call;

/// Retries of a failed call: each attempt is its own CLIENT span, waiting an exponential
/// backoff with jitter before the next one. A 5xx answer, a timeout and a connection failure
/// are retried; a 4xx is not (the request itself is wrong).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// How many attempts at most, the first included; at least 1.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles before each later one.
    #[serde(default = "default_backoff", with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub backoff: Duration,
    /// The longest wait between attempts.
    #[serde(default = "default_max_backoff", with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub max_backoff: Duration,
    /// The random share of each wait, from 0 (exact waits) to 1 (anywhere from zero to the
    /// full wait), drawn from the request's seeded generator.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
}

impl Retry {
    /// The wait before attempt `attempt` (1 for the first retry), before jitter.
    pub fn backoff_before(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// A simulated database query: a CLIENT span with the OpenTelemetry database attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Db {
    /// The database system (`db.system.name`), such as `postgresql` or `redis`; written
    /// `db: <system>` in YAML.
    #[serde(rename = "db")]
    pub system: String,
    /// The operation (`db.operation.name`), such as `SELECT`.
    pub operation: String,
    /// The table or collection (`db.collection.name`); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The query text (`db.query.text`); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// How long the query takes once it runs.
    pub latency: LatencyModel,
    /// A service-wide lock held while the query runs (a connection pool of one, as in
    /// HotROD); queries naming the same lock run one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// How many times the query runs one after the other (an N+1 pattern when above 1).
    #[serde(default = "crate::model::default_repeat")]
    pub repeat: u32,
}

/// A cache lookup: an INTERNAL span; on a miss the backing route is called under it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// The cache's name, used in the span name; written `cache: <name>` in YAML.
    #[serde(rename = "cache")]
    pub name: String,
    /// The chance that a lookup hits, from 0 to 1.
    pub hit_ratio: f64,
    /// How long a lookup takes; no time when absent.
    #[serde(default)]
    pub latency: LatencyModel,
    /// The route called on a miss.
    pub miss: Call,
}

/// A message published to a queue: a PRODUCER span now, and later, after the consumer lag,
/// a CONSUMER span in the consuming service, in a trace of its own linked to the producer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// The queue or topic name (`messaging.destination.name`); written `publish: <topic>`.
    #[serde(rename = "publish")]
    pub topic: String,
    /// The consuming service's route that processes the message.
    pub consumer: Call,
    /// The time between publishing and the start of processing; none when absent.
    #[serde(default)]
    pub lag: LatencyModel,
}

fn default_backoff() -> Duration {
    Duration::from_millis(100)
}

fn default_max_backoff() -> Duration {
    Duration::from_secs(5)
}

fn default_jitter() -> f64 {
    0.5
}
