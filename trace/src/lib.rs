//! The span and trace model that every tracelab analysis reads.
//!
//! The receiver decodes OTLP (protobuf or JSON) into these types; the run summary, the reports
//! and the sampling lab read only these types. Keeping the wire types out of here is what lets
//! the analyses run unchanged on a live run, on a saved run directory, or on an OTLP JSON file
//! written by another program.
//!
//! Layout:
//! - [`ids`]: `TraceId` and `SpanId`, hex in and out.
//! - [`span`]: `Span`, its kind, status, attributes, events and links.
//! - [`trace`]: `Trace`, a group of spans sharing a trace id, and its completeness check.

pub mod ids;
pub mod span;
pub mod trace;

pub use ids::{IdParseError, SpanId, TraceId};
pub use span::{AttrValue, Attribute, Event, Link, Span, SpanKind, Status, StatusCode};
pub use trace::{Trace, TraceShape, group_into_traces};
