//! W3C Trace Context Level 2 and W3C Baggage propagation for tracelab, strict to the
//! specifications, plugged into OpenTelemetry as [`TextMapPropagator`]s.
//!
//! Students watch what travels between services, so the propagator must do exactly what the
//! specifications say. The stock `opentelemetry_sdk::propagation::TraceContextPropagator`
//! (0.33) does not:
//! - it masks the trace-flags to the sampled bit, so the Level 2 *random* flag is lost;
//! - it reads only the first of repeated `traceparent` / `tracestate` headers, so a repeated
//!   `traceparent` is not rejected and later `tracestate` headers are ignored;
//! - it does not check field widths strictly, and trims any white space (newlines too), not
//!   only the spaces and tabs HTTP allows;
//! - it applies the Level 1 `tenant@system` key rule and looser value rules to `tracestate`,
//!   and cuts a 33-member list to 32 instead of dropping it.
//!
//! # Rules
//!
//! `traceparent` ([`traceparent::parse`]):
//! - lowercase hex only; version `ff` is invalid; a version-`00` value is exactly 55
//!   characters; a higher version is read by its first four fields and may carry more only
//!   after a `-`;
//! - trace-id: 32 hex digits, not all zero; parent-id: 16 hex digits, not all zero; flags: 2
//!   hex digits;
//! - spaces and tabs around the value are trimmed;
//! - more than one `traceparent` header is invalid;
//! - invalid or missing: no remote parent (a new trace starts) and `tracestate` is ignored;
//! - the version sent is always `00`.
//!
//! `tracestate` ([`tracestate::parse`], Level 2 grammar):
//! - several headers form one list, in order; empty members and white space around members
//!   are skipped;
//! - at most 32 members, otherwise the whole list is dropped;
//! - key: 1 to 256 characters of `a-z 0-9 _ - * / @`, starting with a letter or digit;
//! - value: 1 to 256 printable ASCII characters other than `,` and `=`, not ending in a space;
//! - one invalid member drops the whole list (the `traceparent` is kept);
//! - a repeated key keeps its first (left-most) entry;
//! - sent as members in order joined by `,`, never more than 32.
//!
//! Level 2 flags:
//! - the random flag (`0x02`) received is sent on with each outgoing call; bits Level 2 does
//!   not define are not; the sampled bit reflects the local decision;
//! - traces started here are sent with the random flag (the SDK's random trace ids qualify);
//!   [`W3cTraceContextPropagator::with_local_traces_random`] turns that off.
//!
//! The SDK loses the random flag when its sampler drops a span, and cannot hold Level 2
//! `tracestate` keys; [`IncomingTraceContext`], kept in the [`Context`](opentelemetry::Context),
//! makes up for both (see [`trace_context_propagator`]).
//!
//! `baggage` ([`baggage::parse`]): `key=value;prop;prop=value` members, white space allowed
//! around members, keys and values, keys are HTTP tokens, values percent-encoded UTF-8,
//! several headers combined; invalid members are skipped (and reported), a repeated key keeps
//! its first value, properties are kept; at most 64 members and 8192 bytes.
//!
//! # Carriers
//!
//! The propagators read headers with [`Extractor::get_all`](opentelemetry::propagation::Extractor::get_all),
//! because a repeated header must be seen to be rejected or combined. Any extractor used with
//! them must implement `get_all` over all values of a header (for `http::HeaderMap`, over
//! `HeaderMap::get_all`); the default `get_all` returns only the first value. Use
//! [`HeaderExtractor`] and [`HeaderInjector`].
//!
//! # Layout
//! - [`traceparent`] — the `traceparent` parser and [`TraceParent`](traceparent::TraceParent).
//! - [`tracestate`] — the `tracestate` parser and [`TraceStateList`](tracestate::TraceStateList).
//! - [`baggage`] — the `baggage` parser, percent-encoding and rendering within limits.
//! - [`trace_context_propagator`] — [`W3cTraceContextPropagator`] and [`IncomingTraceContext`].
//! - [`baggage_propagator`] — [`W3cBaggagePropagator`].
//! - `http_carrier` — [`HeaderExtractor`] and [`HeaderInjector`] over `http::HeaderMap`, and
//!   [`LineInjector`] into a request head's lines.

pub mod baggage;
pub mod baggage_propagator;
mod http_carrier;
pub mod trace_context_propagator;
pub mod traceparent;
pub mod tracestate;
mod wire;

pub use baggage_propagator::{BAGGAGE_HEADER, W3cBaggagePropagator};
pub use http_carrier::{HeaderExtractor, HeaderInjector, LineInjector};
pub use trace_context_propagator::{
    IncomingTraceContext, TRACEPARENT_HEADER, TRACESTATE_HEADER, W3cTraceContextPropagator,
};

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};

/// Both propagators, trace context first, as one propagator for
/// `opentelemetry::global::set_text_map_propagator` or direct use.
pub fn composite() -> TextMapCompositePropagator {
    let propagators: Vec<Box<dyn TextMapPropagator + Send + Sync>> = vec![
        Box::new(W3cTraceContextPropagator::new()),
        Box::new(W3cBaggagePropagator::new()),
    ];
    TextMapCompositePropagator::new(propagators)
}
