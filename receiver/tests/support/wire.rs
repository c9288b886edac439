//! Requests shared by the integration tests: one that uses every field the model keeps, and
//! the assertions that it was stored faithfully.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as wire;
use tracelab_trace::{AttrValue, Span, SpanId, SpanKind, StatusCode, TraceId};

pub const TRACE: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
pub const ROOT: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
pub const CHILD: [u8; 8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
pub const LINKED_TRACE: [u8; 16] = [0x22; 16];
pub const LINKED_SPAN: [u8; 8] = [0x33; 8];

pub fn value(v: any_value::Value) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

pub fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value(v),
        ..Default::default()
    }
}

pub fn string(key: &str, s: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(s.into()))
}

/// Two resources (one without `service.name`), a server span with every attribute type, an
/// event and a link, and a failed client child.
pub fn rich_request() -> ExportTraceServiceRequest {
    let root = wire::Span {
        trace_id: TRACE.to_vec(),
        span_id: ROOT.to_vec(),
        trace_state: "vendor=1".into(),
        parent_span_id: vec![],
        flags: 0x101,
        name: "GET /checkout".into(),
        kind: wire::span::SpanKind::Server as i32,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: 1_544_712_661_000_000_000,
        attributes: vec![
            string("http.route", "/checkout"),
            kv("ok", any_value::Value::BoolValue(true)),
            kv("big", any_value::Value::IntValue(-9_007_199_254_740_993)),
            kv("ratio", any_value::Value::DoubleValue(0.25)),
            kv(
                "list",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        value(any_value::Value::StringValue("a".into())).unwrap_or_default(),
                        value(any_value::Value::IntValue(2)).unwrap_or_default(),
                    ],
                }),
            ),
            kv("raw", any_value::Value::BytesValue(vec![0, 255, 7])),
            kv(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("n", any_value::Value::IntValue(1))],
                }),
            ),
        ],
        dropped_attributes_count: 0,
        events: vec![wire::span::Event {
            time_unix_nano: 1_544_712_660_500_000_000,
            name: "retry".into(),
            attributes: vec![kv("attempt", any_value::Value::IntValue(2))],
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 0,
        links: vec![wire::span::Link {
            trace_id: LINKED_TRACE.to_vec(),
            span_id: LINKED_SPAN.to_vec(),
            trace_state: "k=v".into(),
            attributes: vec![string("link.kind", "batch")],
            dropped_attributes_count: 0,
            flags: 0,
        }],
        dropped_links_count: 0,
        status: Some(wire::Status {
            message: String::new(),
            code: wire::status::StatusCode::Ok as i32,
        }),
    };
    let child = wire::Span {
        trace_id: TRACE.to_vec(),
        span_id: CHILD.to_vec(),
        parent_span_id: ROOT.to_vec(),
        name: "POST /pay".into(),
        kind: wire::span::SpanKind::Client as i32,
        start_time_unix_nano: 1_544_712_660_100_000_000,
        end_time_unix_nano: 1_544_712_660_900_000_000,
        status: Some(wire::Status {
            message: "boom".into(),
            code: wire::status::StatusCode::Error as i32,
        }),
        ..Default::default()
    };
    let anonymous = wire::Span {
        trace_id: [0x44; 16].to_vec(),
        span_id: [0x55; 8].to_vec(),
        name: "background".into(),
        kind: wire::span::SpanKind::Internal as i32,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            wire::ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        string("service.name", "checkout"),
                        string("host.name", "h1"),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![wire::ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "tracelab-test".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    spans: vec![root, child],
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            },
            wire::ResourceSpans {
                resource: None,
                scope_spans: vec![wire::ScopeSpans {
                    scope: None,
                    spans: vec![anonymous],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

/// Asserts that `spans` is exactly what [`rich_request`] sent, field by field.
pub fn assert_rich_spans(spans: &[Span]) {
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let by_id = |id: [u8; 8]| {
        spans
            .iter()
            .find(|s| s.span_id == SpanId(id))
            .unwrap_or_else(|| panic!("span {id:?} missing"))
    };

    let root = by_id(ROOT);
    assert_eq!(root.trace_id, TraceId(TRACE));
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.trace_state, "vendor=1");
    assert_eq!(root.flags, 0x101);
    assert_eq!(root.name, "GET /checkout");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.start_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(root.duration_nanos(), 1_000_000_000);
    assert_eq!(root.status.code, StatusCode::Ok);
    assert_eq!(&*root.service_name, "checkout");
    assert_eq!(root.scope_name, "tracelab-test");
    assert_eq!(root.resource.len(), 2);
    assert_eq!(
        root.attr("http.route"),
        Some(&AttrValue::Str("/checkout".into()))
    );
    assert_eq!(root.attr("ok"), Some(&AttrValue::Bool(true)));
    assert_eq!(
        root.attr("big"),
        Some(&AttrValue::Int(-9_007_199_254_740_993))
    );
    assert_eq!(root.attr("ratio"), Some(&AttrValue::Double(0.25)));
    assert_eq!(
        root.attr("list"),
        Some(&AttrValue::Array(vec![
            AttrValue::Str("a".into()),
            AttrValue::Int(2)
        ]))
    );
    assert_eq!(root.attr("raw"), Some(&AttrValue::Bytes(vec![0, 255, 7])));
    assert_eq!(root.attr("map"), Some(&AttrValue::Str(r#"{"n":1}"#.into())));
    assert_eq!(root.events.len(), 1);
    assert_eq!(root.events[0].name, "retry");
    assert_eq!(root.events[0].time_unix_nano, 1_544_712_660_500_000_000);
    assert_eq!(root.events[0].attributes[0].value, AttrValue::Int(2));
    assert_eq!(root.links.len(), 1);
    assert_eq!(root.links[0].trace_id, TraceId(LINKED_TRACE));
    assert_eq!(root.links[0].span_id, SpanId(LINKED_SPAN));
    assert_eq!(root.links[0].trace_state, "k=v");
    assert_eq!(root.links[0].attributes[0].key, "link.kind");

    let child = by_id(CHILD);
    assert_eq!(child.parent_span_id, Some(SpanId(ROOT)));
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(child.status.code, StatusCode::Error);
    assert_eq!(child.status.message, "boom");
    assert!(
        std::sync::Arc::ptr_eq(&child.resource, &root.resource),
        "spans of one resource share its attributes"
    );

    let anonymous = by_id([0x55; 8]);
    assert_eq!(&*anonymous.service_name, "unknown_service");
    assert_eq!(anonymous.kind, SpanKind::Internal);
    assert_eq!(anonymous.status.code, StatusCode::Unset);
    assert!(anonymous.resource.is_empty());
}

/// A unique path in the temp directory for one test's files.
pub fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tracelab-receiver-{}-{name}", std::process::id()))
}
