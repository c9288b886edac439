//! The tracelab load generator.
//!
//! It is the root of every trace: each request starts a CLIENT span in the `loadgen` service,
//! carries W3C context to the entry route, and is recorded as ground truth in
//! `requests.jsonl`. Its shape follows the honest-latency design of wrk2 and oha: a scheduler
//! emits the *scheduled* instant of every request, a task per request measures its latency from
//! that scheduled instant (so a stalled target cannot hide its stall — no coordinated omission),
//! and a single collector aggregates into HDR histograms and writes the records.
//!
//! Layout:
//! - [`plan`]: what to send — entry routes with weights and their targets, from a scenario.
//! - [`schedule`]: when to send — the arrival schedule.
//! - [`record`]: one request's ground-truth record and outcome.
//! - [`stats`]: the collector's HDR histograms and the summary they produce.
//! - [`runner`]: scheduler → request tasks → collector.

pub mod plan;
pub mod record;
pub mod runner;
pub mod schedule;
pub mod stats;

pub use plan::{EntryTarget, LoadPlan, PlanError};
pub use record::{Outcome, RequestRecord};
pub use runner::{LoadOptions, run};
pub use schedule::ConstantRate;
pub use stats::{LatencySummary, LoadSummary};
