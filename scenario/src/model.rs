//! The scenario model: what a scenario file deserializes into.
//!
//! The serde derives here are the one definition of the YAML syntax. [`crate::parse`] reads a
//! file through them with a located deserializer (so every problem comes with its line,
//! column and field path), any other serde format reads the same syntax through them, and the
//! JSON Schema (`docs/scenario.schema.json`) is generated from them with their doc comments as
//! the field descriptions. A `Scenario` serialized to YAML parses back to an equal one.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::arrival::ArrivalModel;
use crate::fault::{Incident, RandomIncidents};
use crate::latency::LatencyModel;
use crate::resource::{Cache, Db, Publish, Retry};

mod instance;
mod step;

pub use instance::{Balance, Instance, InstanceIndex};

/// A whole scenario: the services to simulate and the load to drive through them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name for the scenario, used in reports and as the service namespace.
    #[serde(default = "default_name")]
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The seed every random choice of a run derives from, so runs are reproducible.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The services, by name. Names become hostnames, so they are DNS-1123 labels.
    pub services: IndexMap<String, Service>,
    /// The load driven into the entry routes.
    pub load: Load,
    /// Faults switched on for a window of the run, in any order; none when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<Incident>,
    /// Incidents drawn from a seed, added to `incidents`; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_incidents: Option<RandomIncidents>,
}

/// One simulated microservice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The version reported as `service.version` on every span.
    #[serde(default = "default_version")]
    pub version: String,
    /// How many instances of the service run. `tracelab run` starts each as a server of its
    /// own (own port, own `service.instance.id`); the deployment renders run as many replicas.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// How callers spread their calls over the instances; `round_robin` when absent.
    #[serde(default, skip_serializing_if = "Balance::is_default")]
    pub balance: Balance,
    /// How single instances differ from the others, by instance index (`0` to `replicas -
    /// 1`): a canary's version, a slow or failing host. Instances not listed run the service
    /// as written.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(schema_with = "instance::instances_schema")]
    pub instances: IndexMap<InstanceIndex, Instance>,
    /// The HTTP routes the service serves, keyed by path (which starts with `/`). A route
    /// with nothing under it (`/health:`) takes every default.
    #[schemars(with = "IndexMap<String, Option<Route>>")]
    pub routes: IndexMap<String, Route>,
    /// How many requests the service handles at once (its worker pool); the others queue.
    /// No limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// One HTTP route of a service: its own latency, its failure rate and what it calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The upper-case HTTP method the route answers to.
    #[serde(default = "default_method")]
    pub method: String,
    /// Time the route spends on its own, before its steps run.
    #[serde(default)]
    pub latency: LatencyModel,
    /// Injected failures; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorModel>,
    /// What the route does, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// Injected failures of a route. They are data: the route answers with `status`, it does not
/// crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorModel {
    /// The fraction of requests that fail, from 0 to 1.
    pub rate: f64,
    /// The HTTP status of a failed request, from 400 to 599.
    #[serde(default = "default_status")]
    pub status: u16,
}

/// One step of a route. In YAML a step is a mapping with exactly one of the keys `call`,
/// `parallel`, `work`, `db`, `cache` or `publish`, which says which kind it is and is also
/// that kind's first field (`{call: payment, route: /charge}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
// The derives are the tagged form (`{call: {...}}`), used for the kind names; the trait impls
// in `model/step.rs` read and write the key-tagged form.
#[serde(remote = "Self", rename_all = "lowercase")]
#[schemars(rename = "Step", untagged)]
pub enum Step {
    /// A call to another service's route.
    Call(Call),
    /// Calls made concurrently; the step ends when the last one ends.
    Parallel(Parallel),
    /// Local work, such as a database query, recorded as an internal span.
    Work(Work),
    /// A simulated database query, recorded as a CLIENT span.
    Db(Db),
    /// A cache lookup that calls a backing route on a miss.
    Cache(Cache),
    /// A message published to a queue and processed later by another service.
    Publish(Publish),
}

impl Step {
    /// The calls this step makes: one for a call, each call of a parallel, none for work.
    pub fn calls(&self) -> &[Call] {
        match self {
            Step::Call(call) => std::slice::from_ref(call),
            Step::Parallel(parallel) => &parallel.calls,
            Step::Cache(cache) => std::slice::from_ref(&cache.miss),
            Step::Publish(publish) => std::slice::from_ref(&publish.consumer),
            Step::Work(_) | Step::Db(_) => &[],
        }
    }
}

/// A call to another service's route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Call {
    /// The service called; written `call: <service>` in YAML.
    #[serde(rename = "call")]
    pub service: String,
    /// The path of the route called in that service.
    pub route: String,
    /// The chance that the call is made at all, from 0 to 1.
    #[serde(default = "default_probability")]
    pub probability: f64,
    /// How many times the call is made one after the other (an N+1 pattern when above 1).
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// How long the caller waits before giving up; no limit when absent.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "crate::duration::schema")]
    pub timeout: Option<Duration>,
    /// Retries of a failed attempt; a single attempt when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

/// Calls made concurrently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Parallel {
    /// The calls, at least one; written `parallel: [...]` in YAML.
    #[serde(rename = "parallel", deserialize_with = "step::calls_only")]
    pub calls: Vec<Call>,
    /// How many of the calls may be in flight at once; all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
}

/// Local work that takes time, recorded as an internal span named after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Work {
    /// The span name of the work, such as `db.query`; written `work: <name>` in YAML.
    #[serde(rename = "work")]
    pub name: String,
    /// How long the work takes.
    pub latency: LatencyModel,
    /// Whether the work burns CPU (a busy loop on a blocking thread) rather than waits.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cpu: bool,
    /// A service-wide lock held during the work (HotROD's mutex); work naming the same lock
    /// runs one at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
}

/// The load driven into the scenario: an open-loop arrival model (or a closed loop of virtual
/// users) for a fixed time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Requests per second, above 0: the rate of `constant`, the mean of `poisson`, the base
    /// of `spike`, and required by them. Not needed (0) for `ramp`, `stages`, `steps` or a
    /// closed loop.
    #[serde(default)]
    pub rate: f64,
    /// How long the load runs, above 0 (`30s`, `2m`, `1m 30s`); required, except that
    /// `stages` and `steps` last as long as their stages when it is absent.
    #[serde(default, with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub duration: Duration,
    /// When requests are due (open loop); `constant` when absent.
    #[serde(default, skip_serializing_if = "is_constant")]
    pub arrival: ArrivalModel,
    /// Virtual users of a closed loop: each sends its next request after the previous answer
    /// plus `think`. Replaces `rate` and `arrival`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u32>,
    /// A closed-loop user's pause between an answer and its next request; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<LatencyModel>,
    /// Requests sent at once (connections); further due requests wait and start late.
    /// Default: the number of users in a closed loop, 256 in an open loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Cap on requests in flight, waiting ones included; a due request beyond it is dropped
    /// by the client and recorded as dropped. Default 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    /// Baggage drawn per request: key → value → relative weight, e.g.
    /// `tenant: {acme: 0.1, globex: 0.9}`. Every request also carries
    /// `synthetic_request=true`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub baggage: IndexMap<String, IndexMap<String, f64>>,
    /// The routes requests enter through, at least one, picked by weight.
    pub entries: Vec<Entry>,
}

impl Load {
    /// The length a staged arrival model gives the load when the file sets no `duration`.
    pub(crate) fn duration_from_stages(&mut self) {
        if let Some(duration) = self.arrival.own_duration() {
            self.duration = duration;
        }
    }
}

fn is_constant(arrival: &ArrivalModel) -> bool {
    *arrival == ArrivalModel::Constant
}

/// One entry route of the load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The service that receives the request.
    pub service: String,
    /// The path of the route in that service.
    pub route: String,
    /// The relative share of requests sent here, above 0.
    #[serde(default = "default_weight")]
    pub weight: f64,
}

impl Scenario {
    /// The route `route` of service `service`, if both exist.
    pub fn route(&self, service: &str, route: &str) -> Option<&Route> {
        self.services.get(service)?.routes.get(route)
    }
}

impl Service {
    /// How instance `index` differs from its siblings, if it does.
    pub fn instance(&self, index: u32) -> Option<&Instance> {
        self.instances.get(&InstanceIndex(index))
    }

    /// The version instance `index` reports: its own, or the service's.
    pub fn version_of(&self, index: u32) -> &str {
        self.instance(index)
            .and_then(|i| i.version.as_deref())
            .unwrap_or(&self.version)
    }
}

pub(crate) fn default_name() -> String {
    "scenario".to_owned()
}

pub(crate) fn default_seed() -> u64 {
    1
}

pub(crate) fn default_version() -> String {
    "1.0.0".to_owned()
}

pub(crate) fn default_replicas() -> u32 {
    1
}

pub(crate) fn default_method() -> String {
    "GET".to_owned()
}

pub(crate) fn default_status() -> u16 {
    500
}

pub(crate) fn default_probability() -> f64 {
    1.0
}

pub(crate) fn default_repeat() -> u32 {
    1
}

pub(crate) fn default_weight() -> f64 {
    1.0
}
