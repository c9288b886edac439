//! Head and tail sampling, and their counterfactual comparison against what really happened.
//!
//! "Should we sample at the head or at the tail, and at what cost?" The sampling lab answers
//! it by replaying the same full-capture traffic through several strategies and scoring what
//! each would have kept against the run's ground truth.
//!
//! Layout:
//! - [`head`]: the OpenTelemetry SDK head samplers (consistent probability sampling per the
//!   tracestate probability-sampling specification, parent-based, rate-limited), as pure
//!   decisions and as opentelemetry_sdk `ShouldSample` implementations.
//! - [`tail`]: a tail-sampling engine that reads the OpenTelemetry Collector's
//!   `tail_sampling` configuration (every policy of the pinned contrib 0.157.0, OTTL
//!   conditions included) and simulates its buffer in recorded time.
//! - [`compare`]: the counterfactual comparison, its strategies file, ground truth readers
//!   and the report.
//! - [`size`]: the per-span byte estimate the report and `bytes_limiting` use.

pub mod compare;
pub mod head;
pub mod size;
pub mod tail;
