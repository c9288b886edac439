//! The tracelab load generator.
//!
//! It is the root of every trace: each request starts a CLIENT span in the `loadgen` service,
//! carries W3C context to the entry route, and is recorded as ground truth in
//! `requests.jsonl`. Its shape follows the honest-latency design of wrk2 and oha: a scheduler
//! releases every request at its *scheduled* instant (waiting on a precise timer, not tokio's
//! millisecond wheel), workers that each own one HTTP/1 connection send them and measure their
//! latency from that scheduled instant (so a stalled target cannot hide its stall — no
//! coordinated omission), and a single collector aggregates batches of compact samples into HDR
//! histograms and writes the records.
//!
//! Layout:
//! - [`incidents`]: the incident player, switching faults on and off through the admin API.
//! - [`plan`]: what to send — entry routes, baggage, the driver (open or closed loop), caps.
//! - [`schedule`]: when to send — the arrival process (even or Poisson) over the rate profile
//!   of the scenario's arrival model.
//! - [`record`]: one request's ground-truth record (a line of `requests.jsonl`) and outcome.
//! - [`stats`]: the collector's HDR histograms, the per-second timeline, the summary.
//! - [`transport`]: connections to targets (a hand-written HTTP/1.1 client over tokio's TCP,
//!   or a simulated one in tests).
//! - `request`: what a run prepares once, and one request's draws, span, headers and send.
//! - `sample`: a finished request as workers hand it over, and its record line.
//! - `dispatch`: released tickets → per-target pools of connection workers → batches of
//!   samples for the collector.
//! - [`runner`]: scheduler or virtual users → workers → collector.
//! - [`spec`]: the command line's forms of an arrival model.

mod dispatch;
pub mod incidents;
pub mod plan;
pub mod record;
mod request;
pub mod runner;
mod sample;
pub mod schedule;
pub mod spec;
pub mod stats;
pub mod transport;

pub use plan::{BaggageSet, Driver, EntryTarget, LoadPlan, PlanError, Target};
pub use record::{Outcome, RequestRecord};
pub use request::SYNTHETIC_BAGGAGE;
pub use runner::{Backpressure, LoadOptions, run};
pub use schedule::{Schedule, schedule};
pub use spec::parse_arrival;
pub use stats::{
    ConnectionSummary, GroupSummary, HoldSummary, LoadSummary, ProgressSnapshot, ResponseLatency,
    ScheduleError, SecondStats,
};
pub use transport::{Answer, Connection, HttpConnection, HttpTransport, Outgoing, Transport};
