//! Tail sampling as the OpenTelemetry Collector's `tail_sampling` processor does it, read
//! from the same YAML and replayed in recorded time.
//!
//! Reading is lenient by default: [`parse_tail_sampling`] builds every supported policy and
//! lists the unsupported ones (`ottl_condition`, or any newer type) with their name and line,
//! so a production Collector file can be evaluated as it is; [`parse_tail_sampling`]
//! refuses such a file instead. Unknown *fields* are always errors, with line and column.
//!
//! Layout:
//! - [`config`]: the validated configuration and how it is found in a file.
//! - `raw`: the YAML shapes, with locations.
//! - `duration`: Go durations (`10s`, `1m30s`).
//! - [`policy`]: the policy evaluators and the final-decision rule.
//! - `cache`: decision caches (LRU) and the map type for trace ids.
//! - `validate`: raw YAML to the validated configuration.
//! - [`engine`]: the buffer simulation.

mod cache;
pub mod config;
mod duration;
pub mod engine;
pub mod ottl;
pub mod policy;
pub(crate) mod raw;
mod validate;

pub use config::{
    DEFAULT_DECISION_WAIT_NANOS, DEFAULT_HASH_SALT, DEFAULT_NUM_TRACES, ParsedTailSampling, Policy,
    PolicyRule, SamplingStrategy, TailConfigError, TailSamplingConfig, parse_tail_sampling,
};
pub use duration::parse_go_duration;
pub use engine::{ArrivalOrder, BufferEffects, TailDecision, TailOutcome, TailSampler};
pub use policy::{collector_probability_threshold, collector_trace_hash};

#[cfg(test)]
mod tests;
