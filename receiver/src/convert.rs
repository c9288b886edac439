//! Conversion between the OTLP wire types and the `tracelab-trace` model.
//!
//! The wire side is `opentelemetry-proto`'s prost structs, which both the protobuf and the JSON
//! paths decode into, so there is exactly one place that decides what a span means.
//!
//! Two lossy corners of the model are deliberate: a `kvlistValue` attribute becomes the JSON
//! text of the map (no analysis looks inside maps), and an attribute with an empty value becomes
//! an empty string, so that its key is still visible. Scope version and attributes, schema URLs
//! and dropped-item counts have no place in the model; the run directory keeps them because the
//! sink writes the request as it arrived, not as the model sees it.

use std::sync::Arc;

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as wire;
use tracelab_trace::{
    AttrValue, Attribute, Event, Link, Span, SpanId, SpanKind, Status, StatusCode, TraceId,
};

/// The service name OpenTelemetry SDKs report when the resource has no `service.name`.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown_service";

/// The resource attribute that names the service.
const SERVICE_NAME: &str = "service.name";

/// Spans a request carried that cannot become model spans.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    /// How many spans were removed.
    pub spans: u64,
    /// Why the first of them was removed, for the partial-success message.
    pub first_reason: Option<String>,
}

/// Removes every span whose ids cannot become a [`TraceId`]/[`SpanId`] and reports how many.
///
/// OTLP lets a server accept part of a request ("partial success"), which is kinder to a
/// producer with one buggy span than refusing the whole batch. The check runs on the wire
/// request before anything else, so that the model conversion cannot fail and the sink only
/// ever writes spans that read back.
pub(crate) fn drop_invalid_spans(request: &mut ExportTraceServiceRequest) -> Rejected {
    let mut rejected = Rejected::default();
    for resource_spans in &mut request.resource_spans {
        for scope_spans in &mut resource_spans.scope_spans {
            scope_spans.spans.retain(|span| match span_problem(span) {
                None => true,
                Some(reason) => {
                    rejected.spans += 1;
                    if rejected.first_reason.is_none() {
                        rejected.first_reason = Some(reason);
                    }
                    false
                }
            });
        }
    }
    rejected
}

/// What is wrong with a span's ids, if anything.
pub(crate) fn span_problem(span: &wire::Span) -> Option<String> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Some(format!(
            "span {:?}: trace id must be 16 bytes and not all zero, got {} bytes",
            truncated(&span.name),
            span.trace_id.len()
        ));
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Some(format!(
            "span {:?}: span id must be 8 bytes and not all zero, got {} bytes",
            truncated(&span.name),
            span.span_id.len()
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Some(format!(
            "span {:?}: parent span id must be empty or 8 bytes, got {} bytes",
            truncated(&span.name),
            span.parent_span_id.len()
        ));
    }
    for link in &span.links {
        if link.trace_id.len() != 16 || link.span_id.len() != 8 {
            return Some(format!(
                "span {:?}: a link needs a 16-byte trace id and an 8-byte span id",
                truncated(&span.name)
            ));
        }
    }
    None
}

fn truncated(name: &str) -> String {
    name.chars().take(60).collect()
}

/// Converts a request whose spans passed [`drop_invalid_spans`] into model spans, moving the
/// strings rather than copying them.
pub(crate) fn request_to_spans(request: ExportTraceServiceRequest) -> Vec<Span> {
    let total = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    let mut out = Vec::with_capacity(total);
    for resource_spans in request.resource_spans {
        let resource_attrs: Vec<Attribute> = resource_spans
            .resource
            .map(|r| r.attributes.into_iter().map(attribute_from_wire).collect())
            .unwrap_or_default();
        let service_name: Arc<str> = resource_attrs
            .iter()
            .find(|a| a.key == SERVICE_NAME)
            .and_then(|a| a.value.as_str())
            .unwrap_or(UNKNOWN_SERVICE)
            .into();
        let resource = Arc::new(resource_attrs);
        for scope_spans in resource_spans.scope_spans {
            let scope_name = scope_spans.scope.map(|s| s.name).unwrap_or_default();
            for span in scope_spans.spans {
                out.push(span_from_wire(
                    span,
                    &service_name,
                    &resource,
                    scope_name.clone(),
                ));
            }
        }
    }
    out
}

fn span_from_wire(
    span: wire::Span,
    service_name: &Arc<str>,
    resource: &Arc<Vec<Attribute>>,
    scope_name: String,
) -> Span {
    let parent_span_id = SpanId::from_slice(&span.parent_span_id).filter(SpanId::is_valid);
    let status = span.status.unwrap_or_default();
    Span {
        trace_id: TraceId::from_slice(&span.trace_id).unwrap_or_default(),
        span_id: SpanId::from_slice(&span.span_id).unwrap_or_default(),
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind: kind_from_wire(span.kind),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        attributes: attributes_from_wire(span.attributes),
        events: span
            .events
            .into_iter()
            .map(|e| Event {
                name: e.name,
                time_unix_nano: e.time_unix_nano,
                attributes: attributes_from_wire(e.attributes),
            })
            .collect(),
        links: span
            .links
            .into_iter()
            .map(|l| Link {
                trace_id: TraceId::from_slice(&l.trace_id).unwrap_or_default(),
                span_id: SpanId::from_slice(&l.span_id).unwrap_or_default(),
                trace_state: l.trace_state,
                attributes: attributes_from_wire(l.attributes),
            })
            .collect(),
        status: Status {
            code: status_code_from_wire(status.code),
            message: status.message,
        },
        service_name: Arc::clone(service_name),
        resource: Arc::clone(resource),
        scope_name,
    }
}

/// Maps OTLP's `SpanKind` number; values this version does not know read as unspecified.
pub(crate) fn kind_from_wire(kind: i32) -> SpanKind {
    match wire::span::SpanKind::try_from(kind) {
        Ok(wire::span::SpanKind::Internal) => SpanKind::Internal,
        Ok(wire::span::SpanKind::Server) => SpanKind::Server,
        Ok(wire::span::SpanKind::Client) => SpanKind::Client,
        Ok(wire::span::SpanKind::Producer) => SpanKind::Producer,
        Ok(wire::span::SpanKind::Consumer) => SpanKind::Consumer,
        Ok(wire::span::SpanKind::Unspecified) | Err(_) => SpanKind::Unspecified,
    }
}

fn kind_to_wire(kind: SpanKind) -> i32 {
    let wire_kind = match kind {
        SpanKind::Unspecified => wire::span::SpanKind::Unspecified,
        SpanKind::Internal => wire::span::SpanKind::Internal,
        SpanKind::Server => wire::span::SpanKind::Server,
        SpanKind::Client => wire::span::SpanKind::Client,
        SpanKind::Producer => wire::span::SpanKind::Producer,
        SpanKind::Consumer => wire::span::SpanKind::Consumer,
    };
    wire_kind as i32
}

/// Maps OTLP's `Status.code` number; unknown values read as unset.
pub(crate) fn status_code_from_wire(code: i32) -> StatusCode {
    match wire::status::StatusCode::try_from(code) {
        Ok(wire::status::StatusCode::Ok) => StatusCode::Ok,
        Ok(wire::status::StatusCode::Error) => StatusCode::Error,
        Ok(wire::status::StatusCode::Unset) | Err(_) => StatusCode::Unset,
    }
}

fn status_code_to_wire(code: StatusCode) -> i32 {
    let wire_code = match code {
        StatusCode::Unset => wire::status::StatusCode::Unset,
        StatusCode::Ok => wire::status::StatusCode::Ok,
        StatusCode::Error => wire::status::StatusCode::Error,
    };
    wire_code as i32
}

fn attributes_from_wire(attrs: Vec<KeyValue>) -> Vec<Attribute> {
    let mut attributes: Vec<Attribute> = attrs.into_iter().map(attribute_from_wire).collect();
    // The collect reuses the wire vector's buffer: 64-byte elements in a capacity that doubled
    // while decoding, so about twice the memory the 56-byte attributes need, held for as long
    // as the span is stored. Giving the slack back (a shrink in place) is cheaper than the page
    // faults of keeping it: it takes about a quarter off the memory of a stored span.
    attributes.shrink_to_fit();
    attributes
}

fn attribute_from_wire(kv: KeyValue) -> Attribute {
    Attribute {
        key: kv.key,
        value: value_from_wire(kv.value.and_then(|v| v.value)),
    }
}

fn value_from_wire(value: Option<any_value::Value>) -> AttrValue {
    match value {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(any_value::Value::ArrayValue(a)) => AttrValue::Array(
            a.values
                .into_iter()
                .map(|v| value_from_wire(v.value))
                .collect(),
        ),
        Some(any_value::Value::KvlistValue(list)) => {
            let map: serde_json::Map<String, serde_json::Value> = list
                .values
                .into_iter()
                .map(|kv| (kv.key, plain_json(kv.value.and_then(|v| v.value))))
                .collect();
            AttrValue::Str(serde_json::Value::Object(map).to_string())
        }
        Some(any_value::Value::BytesValue(b)) => AttrValue::Bytes(b),
        // A string-table index only means something in the profiles signal; an empty value is
        // OTLP's null. Both keep their key with an empty string.
        Some(any_value::Value::StringValueStrindex(_)) | None => AttrValue::Str(String::new()),
    }
}

/// A plain JSON rendering of an attribute value, used for the text of flattened maps.
fn plain_json(value: Option<any_value::Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Some(any_value::Value::StringValue(s)) => J::String(s),
        Some(any_value::Value::BoolValue(b)) => J::Bool(b),
        Some(any_value::Value::IntValue(i)) => J::from(i),
        Some(any_value::Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(d).map_or(J::Null, J::Number)
        }
        Some(any_value::Value::ArrayValue(a)) => {
            J::Array(a.values.into_iter().map(|v| plain_json(v.value)).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => J::Object(
            list.values
                .into_iter()
                .map(|kv| (kv.key, plain_json(kv.value.and_then(|v| v.value))))
                .collect(),
        ),
        Some(any_value::Value::BytesValue(b)) => {
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(any_value::Value::StringValueStrindex(_)) | None => J::Null,
    }
}

/// Builds one request from model spans, with one `ResourceSpans` per distinct resource (and
/// service name) and one `ScopeSpans` per scope name inside it, in order of first appearance.
///
/// When a span's resource lacks `service.name` but the span names a service, the attribute is
/// added, so that the service survives the trip through a file.
pub(crate) fn spans_to_request(spans: &[Span]) -> ExportTraceServiceRequest {
    struct Group<'a> {
        resource: &'a Arc<Vec<Attribute>>,
        service_name: &'a str,
        scopes: Vec<(&'a str, Vec<wire::Span>)>,
    }
    let mut groups: Vec<Group<'_>> = Vec::new();
    for span in spans {
        let index = groups.iter().position(|g| {
            g.service_name == &*span.service_name
                && (Arc::ptr_eq(g.resource, &span.resource) || **g.resource == *span.resource)
        });
        let group = match index {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    resource: &span.resource,
                    service_name: &span.service_name,
                    scopes: Vec::new(),
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        let scope_index = group
            .scopes
            .iter()
            .position(|(name, _)| *name == span.scope_name);
        let scope = match scope_index {
            Some(i) => &mut group.scopes[i].1,
            None => {
                group.scopes.push((&span.scope_name, Vec::new()));
                let last = group.scopes.len() - 1;
                &mut group.scopes[last].1
            }
        };
        scope.push(span_to_wire(span));
    }

    let resource_spans = groups
        .into_iter()
        .map(|group| {
            let mut attributes: Vec<KeyValue> =
                group.resource.iter().map(attribute_to_wire).collect();
            let has_service = group.resource.iter().any(|a| a.key == SERVICE_NAME);
            if !has_service && group.service_name != UNKNOWN_SERVICE {
                attributes.insert(
                    0,
                    attribute_to_wire(&Attribute {
                        key: SERVICE_NAME.to_owned(),
                        value: AttrValue::Str(group.service_name.to_owned()),
                    }),
                );
            }
            wire::ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: group
                    .scopes
                    .into_iter()
                    .map(|(name, spans)| wire::ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: name.to_owned(),
                            ..Default::default()
                        }),
                        spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn span_to_wire(span: &Span) -> wire::Span {
    wire::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span
            .parent_span_id
            .map(|p| p.0.to_vec())
            .unwrap_or_default(),
        flags: span.flags,
        name: span.name.clone(),
        kind: kind_to_wire(span.kind),
        start_time_unix_nano: span.start_unix_nano,
        end_time_unix_nano: span.end_unix_nano,
        attributes: span.attributes.iter().map(attribute_to_wire).collect(),
        dropped_attributes_count: 0,
        events: span
            .events
            .iter()
            .map(|e| wire::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name.clone(),
                attributes: e.attributes.iter().map(attribute_to_wire).collect(),
                dropped_attributes_count: 0,
            })
            .collect(),
        dropped_events_count: 0,
        links: span
            .links
            .iter()
            .map(|l| wire::span::Link {
                trace_id: l.trace_id.0.to_vec(),
                span_id: l.span_id.0.to_vec(),
                trace_state: l.trace_state.clone(),
                attributes: l.attributes.iter().map(attribute_to_wire).collect(),
                dropped_attributes_count: 0,
                flags: 0,
            })
            .collect(),
        dropped_links_count: 0,
        status: Some(wire::Status {
            message: span.status.message.clone(),
            code: status_code_to_wire(span.status.code),
        }),
    }
}

fn attribute_to_wire(attr: &Attribute) -> KeyValue {
    KeyValue {
        key: attr.key.clone(),
        value: Some(value_to_wire(&attr.value)),
        ..Default::default()
    }
}

fn value_to_wire(value: &AttrValue) -> AnyValue {
    let value = match value {
        AttrValue::Str(s) => any_value::Value::StringValue(s.clone()),
        AttrValue::Bool(b) => any_value::Value::BoolValue(*b),
        AttrValue::Int(i) => any_value::Value::IntValue(*i),
        AttrValue::Double(d) => any_value::Value::DoubleValue(*d),
        AttrValue::Array(items) => any_value::Value::ArrayValue(ArrayValue {
            values: items.iter().map(value_to_wire).collect(),
        }),
        AttrValue::Bytes(b) => any_value::Value::BytesValue(b.clone()),
    };
    AnyValue { value: Some(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_span(trace: Vec<u8>, span: Vec<u8>, parent: Vec<u8>) -> wire::Span {
        wire::Span {
            trace_id: trace,
            span_id: span,
            parent_span_id: parent,
            name: "op".into(),
            ..Default::default()
        }
    }

    fn request(spans: Vec<wire::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![wire::ResourceSpans {
                resource: None,
                scope_spans: vec![wire::ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn spans_with_bad_ids_are_dropped_and_counted() {
        let mut req = request(vec![
            wire_span(vec![1; 16], vec![2; 8], vec![]),
            wire_span(vec![1; 15], vec![2; 8], vec![]),
            wire_span(vec![1; 16], vec![0; 8], vec![]),
            wire_span(vec![1; 16], vec![3; 8], vec![9; 3]),
            wire_span(vec![0; 16], vec![3; 8], vec![]),
        ]);
        let rejected = drop_invalid_spans(&mut req);
        assert_eq!(rejected.spans, 4);
        assert!(rejected.first_reason.unwrap().contains("trace id"));
        let spans = request_to_spans(req);
        assert_eq!(spans.len(), 1);
        assert_eq!(&*spans[0].service_name, UNKNOWN_SERVICE);
    }

    #[test]
    fn all_zero_parent_reads_as_root() {
        let mut req = request(vec![wire_span(vec![1; 16], vec![2; 8], vec![0; 8])]);
        assert_eq!(drop_invalid_spans(&mut req).spans, 0);
        assert!(request_to_spans(req)[0].is_root());
    }

    #[test]
    fn maps_flatten_to_json_text() {
        let kv = KeyValue {
            key: "m".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(
                    opentelemetry_proto::tonic::common::v1::KeyValueList {
                        values: vec![KeyValue {
                            key: "n".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(3)),
                            }),
                            ..Default::default()
                        }],
                    },
                )),
            }),
            ..Default::default()
        };
        assert_eq!(
            attribute_from_wire(kv).value,
            AttrValue::Str(r#"{"n":3}"#.into())
        );
    }

    #[test]
    fn service_name_is_added_to_a_resource_that_lacks_it() {
        let mut req = request(vec![wire_span(vec![1; 16], vec![2; 8], vec![])]);
        drop_invalid_spans(&mut req);
        let mut spans = request_to_spans(req);
        spans[0].service_name = Arc::from("checkout");
        let back = request_to_spans(spans_to_request(&spans));
        assert_eq!(&*back[0].service_name, "checkout");
    }
}
