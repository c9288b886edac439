//! The SDK's ended spans written straight into an OTLP `ExportTraceServiceRequest` (protobuf).
//!
//! opentelemetry-otlp's exporters first convert every span into opentelemetry-proto's message
//! structs (a `String` for every attribute key and string value, for the name and the trace
//! state, a `Vec` for every id and every list) and then encode those. In the lab that conversion was 5 % of all its CPU
//! samples at 3,000 requests a second (docs/performance.md, section 10). This module writes the same
//! message from the spans as they are, with prost's own wire primitives; its tests decode the
//! bytes with opentelemetry-proto and compare them with that crate's conversion of the same
//! spans, field for field.
//!
//! Proto3 rules as prost applies them: a scalar or string equal to its default is left out, a
//! message that is present is written even when empty, and a `oneof` value is always written.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// OTLP's span flag bits for "the parent's remoteness is known" and "the parent is remote"
/// (`SpanFlags` in trace.proto).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// A resource's part of every request, encoded once: the `resource` and `schema_url` fields of
/// `ResourceSpans`.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncodedResource {
    /// `ResourceSpans.resource` (1): `Resource { attributes (1) }`.
    resource: Vec<u8>,
    /// `ResourceSpans.schema_url` (3), or nothing.
    schema_url: Vec<u8>,
}

impl EncodedResource {
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut encoded = EncodedResource::default();
        message(&mut encoded.resource, 1, |buf| {
            for (key, value) in resource.iter() {
                key_value(buf, 1, key.as_str(), value);
            }
        });
        string(
            &mut encoded.schema_url,
            3,
            resource.schema_url().unwrap_or_default(),
        );
        encoded
    }
}

/// Appends to `buf` the `ExportTraceServiceRequest` that carries `spans` of `resource`: one
/// `ResourceSpans`, and in it one `ScopeSpans` per instrumentation scope, in the order the
/// scopes first appear, each with its spans in batch order (opentelemetry-proto's grouping).
pub(crate) fn export_request(buf: &mut Vec<u8>, resource: &EncodedResource, spans: &[SpanData]) {
    // A provider's spans nearly always share one scope: a linear search beats a hash map.
    let mut scopes: Vec<&InstrumentationScope> = Vec::new();
    for span in spans {
        if !scopes.contains(&&span.instrumentation_scope) {
            scopes.push(&span.instrumentation_scope);
        }
    }
    // ExportTraceServiceRequest.resource_spans (1).
    message(buf, 1, |buf| {
        buf.extend_from_slice(&resource.resource);
        for scope in &scopes {
            // ResourceSpans.scope_spans (2).
            message(buf, 2, |buf| {
                message(buf, 1, |buf| instrumentation_scope(buf, scope));
                for span in spans.iter().filter(|s| &s.instrumentation_scope == *scope) {
                    message(buf, 2, |buf| span_fields(buf, span));
                }
                string(buf, 3, scope.schema_url().unwrap_or_default());
            });
        }
        buf.extend_from_slice(&resource.schema_url);
    });
}

fn instrumentation_scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    string(buf, 1, scope.name());
    string(buf, 2, scope.version().unwrap_or_default());
    for kv in scope.attributes() {
        key_value(buf, 3, kv.key.as_str(), &kv.value);
    }
}

fn span_fields(buf: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(buf, 1, &context.trace_id().to_bytes());
    bytes(buf, 2, &context.span_id().to_bytes());
    string(buf, 3, &context.trace_state().header());
    if span.parent_span_id != SpanId::INVALID {
        bytes(buf, 4, &span.parent_span_id.to_bytes());
    }
    string(buf, 5, &span.name);
    uint(buf, 6, kind(&span.span_kind));
    fixed64(buf, 7, nanos(span.start_time));
    fixed64(buf, 8, nanos(span.end_time));
    for kv in &span.attributes {
        key_value(buf, 9, kv.key.as_str(), &kv.value);
    }
    uint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        message(buf, 11, |buf| {
            fixed64(buf, 1, nanos(event.timestamp));
            string(buf, 2, &event.name);
            attributes(buf, 3, &event.attributes);
            uint(buf, 4, u64::from(event.dropped_attributes_count));
        });
    }
    uint(buf, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        message(buf, 13, |buf| {
            let context = &link.span_context;
            bytes(buf, 1, &context.trace_id().to_bytes());
            bytes(buf, 2, &context.span_id().to_bytes());
            string(buf, 3, &context.trace_state().header());
            attributes(buf, 4, &link.attributes);
            uint(buf, 5, u64::from(link.dropped_attributes_count));
            fixed32(buf, 6, flags(context, context.is_remote()));
        });
    }
    uint(buf, 14, u64::from(span.links.dropped_count));
    // Status (15): always present; message (2), code (3).
    message(buf, 15, |buf| {
        let (message, code) = match &span.status {
            Status::Unset => ("", 0),
            Status::Ok => ("", 1),
            Status::Error { description } => (description.as_ref(), 2),
        };
        string(buf, 2, message);
        uint(buf, 3, code);
    });
    fixed32(buf, 16, flags(context, span.parent_span_is_remote));
}

/// The span's W3C flags and OTLP's remote-parent bits.
fn flags(context: &SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE;
    if remote {
        flags |= IS_REMOTE;
    }
    flags
}

fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn attributes(buf: &mut Vec<u8>, tag: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        key_value(buf, tag, kv.key.as_str(), &kv.value);
    }
}

/// A `KeyValue` message: key (1), value (2, an `AnyValue`, always present).
fn key_value(buf: &mut Vec<u8>, tag: u32, key: &str, value: &Value) {
    message(buf, tag, |buf| {
        string(buf, 1, key);
        message(buf, 2, |buf| any_value(buf, value));
    });
}

/// The `oneof` of an `AnyValue`: string (1), bool (2), int (3), double (4), array (5).
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => string_always(buf, 1, s.as_str()),
        Value::Bool(b) => {
            encode_key(2, WireType::Varint, buf);
            encode_varint(u64::from(*b), buf);
        }
        Value::I64(i) => {
            encode_key(3, WireType::Varint, buf);
            encode_varint(*i as u64, buf);
        }
        Value::F64(f) => {
            encode_key(4, WireType::SixtyFourBit, buf);
            buf.extend_from_slice(&f.to_le_bytes());
        }
        Value::Array(array) => message(buf, 5, |buf| match array {
            Array::Bool(values) => array_values(buf, values, |v| Value::Bool(*v)),
            Array::I64(values) => array_values(buf, values, |v| Value::I64(*v)),
            Array::F64(values) => array_values(buf, values, |v| Value::F64(*v)),
            Array::String(values) => {
                for v in values {
                    message(buf, 1, |buf| string_always(buf, 1, v.as_str()));
                }
            }
            // `Array` is non-exhaustive; opentelemetry-proto panics on a kind it does not
            // know, an exporter must not: such an array goes out empty.
            _ => {}
        }),
        // `Value` is non-exhaustive too: an unknown kind goes out as its string form.
        other => string_always(buf, 1, other.as_str().as_ref()),
    }
}

/// `ArrayValue.values` (1) for scalar elements.
fn array_values<T>(buf: &mut Vec<u8>, values: &[T], to_value: impl Fn(&T) -> Value) {
    for v in values {
        message(buf, 1, |buf| any_value(buf, &to_value(v)));
    }
}

/// A length-delimited field whose body `write` appends: its length is written before the body
/// in one byte and widened afterwards when the body turned out longer than 127 bytes.
fn message(buf: &mut Vec<u8>, tag: u32, write: impl FnOnce(&mut Vec<u8>)) {
    encode_key(tag, WireType::LengthDelimited, buf);
    let at = buf.len();
    buf.push(0);
    write(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
    } else {
        let mut head = [0u8; 10];
        let width = encoded_len_varint(len as u64);
        encode_varint(len as u64, &mut &mut head[..]);
        buf.splice(at..=at, head[..width].iter().copied());
    }
}

/// A string field, left out when empty.
fn string(buf: &mut Vec<u8>, tag: u32, value: &str) {
    bytes(buf, tag, value.as_bytes());
}

/// A string in a `oneof`: written even when empty.
fn string_always(buf: &mut Vec<u8>, tag: u32, value: &str) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(value.len() as u64, buf);
    buf.extend_from_slice(value.as_bytes());
}

/// A bytes field, left out when empty.
fn bytes(buf: &mut Vec<u8>, tag: u32, value: &[u8]) {
    if !value.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(value.len() as u64, buf);
        buf.extend_from_slice(value);
    }
}

/// A varint field (uint32, int64 as unsigned, enum), left out when zero.
fn uint(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

fn fixed64(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32(buf: &mut Vec<u8>, tag: u32, value: u32) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{Event, Link};
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use prost::Message;

    use super::*;

    fn context(trace: u128, span: u64, sampled: bool, state: &str, remote: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            remote,
            state.parse::<TraceState>().unwrap_or_default(),
        )
    }

    /// Every kind of attribute value, including the empty and zero ones that proto3 would
    /// leave out were they not in a `oneof`.
    fn every_value() -> Vec<KeyValue> {
        vec![
            KeyValue::new("s", "text"),
            KeyValue::new("empty", ""),
            KeyValue::new("owned", "é ✓ long ".repeat(20)),
            KeyValue::new("t", true),
            KeyValue::new("f", false),
            KeyValue::new("i", -42_i64),
            KeyValue::new("zero", 0_i64),
            KeyValue::new("big", i64::MAX),
            KeyValue::new("d", 2.5_f64),
            KeyValue::new("dzero", 0.0_f64),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![0, -1, 1 << 40]))),
            KeyValue::new("doubles", Value::Array(Array::F64(vec![0.0, -1.5]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec![StringValue::from(""), "x".into()])),
            ),
            KeyValue::new("none", Value::Array(Array::I64(vec![]))),
        ]
    }

    fn span(n: u64, scope: &InstrumentationScope) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + n);
        let mut events = SpanEvents::default();
        let mut links = SpanLinks::default();
        if n.is_multiple_of(2) {
            events
                .events
                .push(Event::new("retry", start, every_value(), 3));
            events.events.push(Event::with_name("bare"));
            events.dropped_count = 2;
            links.links.push(Link::new(
                context(7, 8, true, "vendor=a,ot=th:8", true),
                vec![KeyValue::new("why", "follows")],
                1,
            ));
            links
                .links
                .push(Link::with_context(context(9, 10, false, "", false)));
            links.dropped_count = 4;
        }
        SpanData {
            span_context: context(
                0x0af7651916cd43dd8448eb211c80319c + u128::from(n),
                0xb7ad6b7169203331 + n,
                !n.is_multiple_of(3),
                if n.is_multiple_of(2) {
                    "ot=th:c;rv:0123456789abcd,congo=t61rcWkgMzE"
                } else {
                    ""
                },
                false,
            ),
            parent_span_id: if n.is_multiple_of(4) {
                SpanId::INVALID
            } else {
                SpanId::from(n + 1)
            },
            parent_span_is_remote: n % 5 == 1,
            span_kind: [
                SpanKind::Internal,
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Producer,
                SpanKind::Consumer,
            ][n as usize % 5]
                .clone(),
            name: if n.is_multiple_of(2) {
                Cow::Borrowed("GET /products")
            } else {
                Cow::Owned(format!("work {n}"))
            },
            start_time: start,
            end_time: if n == 3 {
                UNIX_EPOCH
            } else {
                start + Duration::from_micros(1500 + n)
            },
            attributes: if n.is_multiple_of(2) {
                every_value()
            } else {
                vec![KeyValue::new("http.route", "/cart")]
            },
            dropped_attributes_count: (n % 3) as u32,
            events,
            links,
            status: match n % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error(if n.is_multiple_of(2) {
                    "503 from payment"
                } else {
                    ""
                }),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    /// Decodes what `export_request` wrote and compares it with opentelemetry-proto's own
    /// conversion of the same spans.
    fn assert_same_as_opentelemetry_proto(resource: &Resource, spans: Vec<SpanData>) {
        let encoded_resource = EncodedResource::new(resource);
        let mut buf = Vec::new();
        export_request(&mut buf, &encoded_resource, &spans);
        let ours = ExportTraceServiceRequest::decode(buf.as_slice()).expect("a valid message");
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(resource),
            ),
        };
        // Span by span first, so that a difference is shown where it is.
        let spans = |r: &ExportTraceServiceRequest| {
            r.resource_spans
                .iter()
                .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.clone()))
                .collect::<Vec<_>>()
        };
        for (n, (a, b)) in spans(&ours).iter().zip(spans(&theirs).iter()).enumerate() {
            assert_eq!(a, b, "span {n}");
        }
        assert_eq!(ours, theirs);
        // And byte for byte what prost writes for that message.
        assert_eq!(buf, theirs.encode_to_vec());
    }

    #[test]
    fn spans_of_every_shape_encode_as_opentelemetry_proto_converts_them() {
        let scope = InstrumentationScope::builder("tracelab").build();
        let resource = Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "checkout"),
                KeyValue::new("service.instance.id", "0a1b2c3d"),
                KeyValue::new("replicas", 3_i64),
            ])
            .build();
        assert_same_as_opentelemetry_proto(&resource, (0..40).map(|n| span(n, &scope)).collect());
    }

    #[test]
    fn spans_of_several_scopes_are_grouped_in_the_order_the_scopes_first_appear() {
        let plain = InstrumentationScope::builder("tracelab").build();
        let full = InstrumentationScope::builder("loadgen")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.kind", "client")])
            .build();
        let spans = (0..12)
            .map(|n| span(n, if n % 3 == 1 { &full } else { &plain }))
            .collect();
        let resource = Resource::builder_empty()
            .with_schema_url(
                [KeyValue::new("service.name", "frontend")],
                "https://example.com/s",
            )
            .build();
        assert_same_as_opentelemetry_proto(&resource, spans);
    }

    #[test]
    fn an_empty_batch_and_an_empty_resource_encode_as_opentelemetry_proto_converts_them() {
        assert_same_as_opentelemetry_proto(&Resource::builder_empty().build(), Vec::new());
    }

    #[test]
    fn a_batch_of_large_spans_needs_multi_byte_lengths_at_every_level() {
        let scope = InstrumentationScope::builder("tracelab").build();
        let spans: Vec<_> = (0..600)
            .map(|n| {
                let mut s = span(n, &scope);
                s.attributes
                    .push(KeyValue::new("blob", "x".repeat(20_000 * (n as usize % 2))));
                s
            })
            .collect();
        assert_same_as_opentelemetry_proto(&Resource::builder().build(), spans);
    }
}
