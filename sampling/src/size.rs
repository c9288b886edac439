//! A documented estimate of how many bytes a span costs on the wire.
//!
//! The estimate follows the shape of an OTLP protobuf `Span`: a fixed part for the ids,
//! timestamps, kind, flags and field tags, plus the variable-length text. It is an estimate,
//! not an encoding: within a few percent of `ProtoMarshaler` for typical spans, and good for
//! comparing strategies with each other, which is what the sampling lab uses it for.
//!
//! Resource attributes are not counted per span: OTLP sends them once per batch.

use tracelab_trace::{AttrValue, Attribute, Span};

/// Bytes every span costs whatever its content: 16-byte trace id, 8-byte span and parent
/// ids, two fixed64 timestamps, kind, flags, status code, and the protobuf tags and lengths
/// around them.
pub const SPAN_FIXED_BYTES: u64 = 70;

/// Per attribute: key and value framing (tags, lengths, the `AnyValue` wrapper).
pub const ATTRIBUTE_OVERHEAD_BYTES: u64 = 6;

/// Per event: timestamp and framing.
pub const EVENT_OVERHEAD_BYTES: u64 = 14;

/// Per link: trace and span ids and framing.
pub const LINK_OVERHEAD_BYTES: u64 = 30;

/// Estimated encoded size of one span:
///
/// ```text
/// 70 + len(name) + len(tracestate) + len(status message)
///    + Σ attributes (6 + len(key) + value)
///    + Σ events (14 + len(name) + their attributes)
///    + Σ links (30 + len(tracestate) + their attributes)
/// ```
///
/// where a value counts its text or byte length, 1 for a boolean, 8 for a number, and the
/// sum of its items plus 2 each for an array.
pub fn estimated_span_bytes(span: &Span) -> u64 {
    SPAN_FIXED_BYTES
        + span.name.len() as u64
        + span.trace_state.len() as u64
        + span.status.message.len() as u64
        + attributes_bytes(&span.attributes)
        + span
            .events
            .iter()
            .map(|e| EVENT_OVERHEAD_BYTES + e.name.len() as u64 + attributes_bytes(&e.attributes))
            .sum::<u64>()
        + span
            .links
            .iter()
            .map(|l| {
                LINK_OVERHEAD_BYTES + l.trace_state.len() as u64 + attributes_bytes(&l.attributes)
            })
            .sum::<u64>()
}

fn attributes_bytes(attributes: &[Attribute]) -> u64 {
    attributes
        .iter()
        .map(|a| ATTRIBUTE_OVERHEAD_BYTES + a.key.len() as u64 + value_bytes(&a.value))
        .sum()
}

fn value_bytes(value: &AttrValue) -> u64 {
    match value {
        AttrValue::Str(s) => s.len() as u64,
        AttrValue::Bool(_) => 1,
        AttrValue::Int(_) | AttrValue::Double(_) => 8,
        AttrValue::Bytes(b) => b.len() as u64,
        AttrValue::Array(items) => items.iter().map(|v| 2 + value_bytes(v)).sum(),
    }
}
