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
//! - [`incidents`]: the incident player, switching faults on and off through the admin API.
//! - [`plan`]: what to send — entry routes, baggage, the driver (open or closed loop), caps.
//! - [`schedule`]: when to send — the arrival process (even or Poisson) over the rate profile
//!   of the scenario's arrival model.
//! - [`record`]: one request's ground-truth record and outcome.
//! - [`stats`]: the collector's HDR histograms, the per-second timeline, the summary.
//! - [`transport`]: how a request reaches its target (HTTP, or a simulated one in tests).
//! - `request`: one request's draws, span, send and record.
//! - [`runner`]: scheduler or virtual users → request tasks → collector.
//! - [`spec`]: the command line's forms of an arrival model.

pub mod incidents;
pub mod plan;
pub mod record;
mod request;
pub mod runner;
pub mod schedule;
pub mod spec;
pub mod stats;
pub mod transport;

pub use plan::{BaggageSet, Driver, EntryTarget, LoadPlan, PlanError};
pub use record::{Outcome, RequestRecord};
pub use request::SYNTHETIC_BAGGAGE;
pub use runner::{LoadOptions, run, run_with};
pub use schedule::{Schedule, schedule};
pub use spec::parse_arrival;
pub use stats::{GroupSummary, LatencySummary, LoadSummary, ProgressSnapshot, SecondStats};
pub use transport::{Answer, HttpTransport, Transport};
