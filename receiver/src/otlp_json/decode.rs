//! OTLP/JSON text to the wire structs.
//!
//! This is written by hand over `serde_json::Value` instead of using `opentelemetry-proto`'s
//! `with-serde` derives, because those do not implement the OTLP/JSON mapping that foreign
//! producers rely on: enums only read as integers (`"kind": "SPAN_KIND_SERVER"` is refused),
//! only lowerCamelCase names are accepted, `NaN`/`Infinity` doubles and string-encoded `uint32`
//! fields are refused, and `null` fields are errors rather than absent. The OTLP/JSON rules
//! followed here: ids are hex (either case), enums are integers or names, 64-bit integers are
//! strings or numbers, `bytesValue` is base64, unknown fields are ignored, and, as in every
//! proto3 JSON parser, the original snake_case field names are accepted too.
//!
//! Errors carry the path of the offending field (`resourceSpans[0].scopeSpans[0].spans[3].traceId`)
//! so that a user can find it in a large document.

use std::str::FromStr;

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as wire;
use serde_json::{Map, Number, Value};

type Object = Map<String, Value>;

/// Reads one `ExportTraceServiceRequest` (or the identically shaped `TracesData`).
pub(crate) fn request(value: &Value) -> Result<ExportTraceServiceRequest, String> {
    let obj = object(value).map_err(|e| format!("request: {e}"))?;
    Ok(ExportTraceServiceRequest {
        resource_spans: list(obj, "resourceSpans", "resource_spans", resource_spans)?,
    })
}

fn resource_spans(obj: &Object) -> Result<wire::ResourceSpans, String> {
    Ok(wire::ResourceSpans {
        resource: optional_object(obj, "resource", "resource", resource)?,
        scope_spans: list(obj, "scopeSpans", "scope_spans", scope_spans)?,
        schema_url: string(obj, "schemaUrl", "schema_url")?,
    })
}

fn resource(obj: &Object) -> Result<Resource, String> {
    Ok(Resource {
        attributes: attributes(obj)?,
        dropped_attributes_count: dropped_attributes_count(obj)?,
        // Entity references are still in development in OTLP; no producer tracelab meets
        // writes them, and nothing here reads them.
        entity_refs: Vec::new(),
    })
}

fn scope_spans(obj: &Object) -> Result<wire::ScopeSpans, String> {
    Ok(wire::ScopeSpans {
        scope: optional_object(obj, "scope", "scope", scope)?,
        spans: list(obj, "spans", "spans", span)?,
        schema_url: string(obj, "schemaUrl", "schema_url")?,
    })
}

fn scope(obj: &Object) -> Result<InstrumentationScope, String> {
    Ok(InstrumentationScope {
        name: string(obj, "name", "name")?,
        version: string(obj, "version", "version")?,
        attributes: attributes(obj)?,
        dropped_attributes_count: dropped_attributes_count(obj)?,
    })
}

fn span(obj: &Object) -> Result<wire::Span, String> {
    Ok(wire::Span {
        trace_id: hex_id(obj, "traceId", "trace_id")?,
        span_id: hex_id(obj, "spanId", "span_id")?,
        trace_state: string(obj, "traceState", "trace_state")?,
        parent_span_id: hex_id(obj, "parentSpanId", "parent_span_id")?,
        flags: uint32(obj, "flags", "flags")?,
        name: string(obj, "name", "name")?,
        kind: enumeration(obj, "kind", "kind", |name| {
            wire::span::SpanKind::from_str_name(name).map(|k| k as i32)
        })?,
        start_time_unix_nano: uint64(obj, "startTimeUnixNano", "start_time_unix_nano")?,
        end_time_unix_nano: uint64(obj, "endTimeUnixNano", "end_time_unix_nano")?,
        attributes: attributes(obj)?,
        dropped_attributes_count: dropped_attributes_count(obj)?,
        events: list(obj, "events", "events", event)?,
        dropped_events_count: uint32(obj, "droppedEventsCount", "dropped_events_count")?,
        links: list(obj, "links", "links", link)?,
        dropped_links_count: uint32(obj, "droppedLinksCount", "dropped_links_count")?,
        status: optional_object(obj, "status", "status", status)?,
    })
}

fn event(obj: &Object) -> Result<wire::span::Event, String> {
    Ok(wire::span::Event {
        time_unix_nano: uint64(obj, "timeUnixNano", "time_unix_nano")?,
        name: string(obj, "name", "name")?,
        attributes: attributes(obj)?,
        dropped_attributes_count: dropped_attributes_count(obj)?,
    })
}

fn link(obj: &Object) -> Result<wire::span::Link, String> {
    Ok(wire::span::Link {
        trace_id: hex_id(obj, "traceId", "trace_id")?,
        span_id: hex_id(obj, "spanId", "span_id")?,
        trace_state: string(obj, "traceState", "trace_state")?,
        attributes: attributes(obj)?,
        dropped_attributes_count: dropped_attributes_count(obj)?,
        flags: uint32(obj, "flags", "flags")?,
    })
}

fn status(obj: &Object) -> Result<wire::Status, String> {
    Ok(wire::Status {
        message: string(obj, "message", "message")?,
        code: enumeration(obj, "code", "code", |name| {
            wire::status::StatusCode::from_str_name(name).map(|c| c as i32)
        })?,
    })
}

/// The `attributes` that resources, scopes, spans, events and links all carry.
fn attributes(obj: &Object) -> Result<Vec<KeyValue>, String> {
    list(obj, "attributes", "attributes", key_value)
}

fn dropped_attributes_count(obj: &Object) -> Result<u32, String> {
    uint32(obj, "droppedAttributesCount", "dropped_attributes_count")
}

fn key_value(obj: &Object) -> Result<KeyValue, String> {
    Ok(KeyValue {
        key: string(obj, "key", "key")?,
        value: optional_object(obj, "value", "value", any_value)?,
        ..Default::default()
    })
}

fn any_value(obj: &Object) -> Result<AnyValue, String> {
    // OTLP/JSON writes the oneof as one of these keys; an object with none of them is OTLP's
    // empty value. If a producer writes several, the last one listed here wins, which is as
    // arbitrary as any other choice and never a crash.
    let mut value = None;
    if let Some(v) = get(obj, "stringValue", "string_value") {
        value = Some(any_value::Value::StringValue(
            as_string(v).map_err(|e| format!("stringValue: {e}"))?,
        ));
    }
    if let Some(v) = get(obj, "boolValue", "bool_value") {
        let b = v.as_bool().ok_or("boolValue: expected true or false")?;
        value = Some(any_value::Value::BoolValue(b));
    }
    if let Some(v) = get(obj, "intValue", "int_value") {
        value = Some(any_value::Value::IntValue(
            as_i64(v).map_err(|e| format!("intValue: {e}"))?,
        ));
    }
    if let Some(v) = get(obj, "doubleValue", "double_value") {
        value = Some(any_value::Value::DoubleValue(
            as_f64(v).map_err(|e| format!("doubleValue: {e}"))?,
        ));
    }
    if let Some(v) = get(obj, "arrayValue", "array_value") {
        let inner = object(v).map_err(|e| format!("arrayValue: {e}"))?;
        let values =
            list(inner, "values", "values", any_value).map_err(|e| format!("arrayValue.{e}"))?;
        value = Some(any_value::Value::ArrayValue(ArrayValue { values }));
    }
    if let Some(v) = get(obj, "kvlistValue", "kvlist_value") {
        let inner = object(v).map_err(|e| format!("kvlistValue: {e}"))?;
        let values =
            list(inner, "values", "values", key_value).map_err(|e| format!("kvlistValue.{e}"))?;
        value = Some(any_value::Value::KvlistValue(KeyValueList { values }));
    }
    if let Some(v) = get(obj, "bytesValue", "bytes_value") {
        let text = as_string(v).map_err(|e| format!("bytesValue: {e}"))?;
        value = Some(any_value::Value::BytesValue(
            base64_decode(&text).ok_or("bytesValue: expected base64")?,
        ));
    }
    Ok(AnyValue { value })
}

/// A field by its lowerCamelCase or its original name; `null` counts as absent.
fn get<'a>(obj: &'a Object, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel)
        .or_else(|| obj.get(snake))
        .filter(|v| !v.is_null())
}

fn object(value: &Value) -> Result<&Object, String> {
    value
        .as_object()
        .ok_or_else(|| format!("expected an object, got {}", kind_of(value)))
}

fn optional_object<T>(
    obj: &Object,
    camel: &str,
    snake: &str,
    read: impl Fn(&Object) -> Result<T, String>,
) -> Result<Option<T>, String> {
    match get(obj, camel, snake) {
        None => Ok(None),
        Some(v) => object(v)
            .and_then(read)
            .map(Some)
            .map_err(|e| format!("{camel}.{e}")),
    }
}

fn list<T>(
    obj: &Object,
    camel: &str,
    snake: &str,
    read: impl Fn(&Object) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let Some(value) = get(obj, camel, snake) else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| format!("{camel}: expected an array, got {}", kind_of(value)))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            object(item)
                .and_then(&read)
                .map_err(|e| format!("{camel}[{i}].{e}"))
        })
        .collect()
}

fn string(obj: &Object, camel: &str, snake: &str) -> Result<String, String> {
    match get(obj, camel, snake) {
        None => Ok(String::new()),
        Some(v) => as_string(v).map_err(|e| format!("{camel}: {e}")),
    }
}

fn hex_id(obj: &Object, camel: &str, snake: &str) -> Result<Vec<u8>, String> {
    let text = string(obj, camel, snake)?;
    hex::decode(&text).map_err(|_| {
        let shown: String = text.chars().take(40).collect();
        format!("{camel}: expected a hex id, got {shown:?}")
    })
}

fn uint32(obj: &Object, camel: &str, snake: &str) -> Result<u32, String> {
    let Some(value) = get(obj, camel, snake) else {
        return Ok(0);
    };
    let wide = as_u64(value).map_err(|e| format!("{camel}: {e}"))?;
    u32::try_from(wide).map_err(|_| format!("{camel}: {wide} does not fit in 32 bits"))
}

fn uint64(obj: &Object, camel: &str, snake: &str) -> Result<u64, String> {
    match get(obj, camel, snake) {
        None => Ok(0),
        Some(v) => as_u64(v).map_err(|e| format!("{camel}: {e}")),
    }
}

fn enumeration(
    obj: &Object,
    camel: &str,
    snake: &str,
    by_name: impl Fn(&str) -> Option<i32>,
) -> Result<i32, String> {
    let Some(value) = get(obj, camel, snake) else {
        return Ok(0);
    };
    if let Some(name) = value.as_str() {
        return by_name(name).ok_or_else(|| format!("{camel}: unknown name {name:?}"));
    }
    value
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| format!("{camel}: expected an enum number or name"))
}

fn as_string(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, got {}", kind_of(value)))
}

fn as_u64(value: &Value) -> Result<u64, String> {
    as_integer(value, "an unsigned integer", Number::as_u64)
}

fn as_i64(value: &Value) -> Result<i64, String> {
    as_integer(value, "a 64-bit integer", Number::as_i64)
}

/// A 64-bit integer, which OTLP/JSON writes as a number or as a decimal string; `what` names
/// the kind expected in the message when it is neither.
fn as_integer<T: FromStr>(
    value: &Value,
    what: &str,
    from_number: impl Fn(&Number) -> Option<T>,
) -> Result<T, String> {
    match value {
        Value::Number(n) => from_number(n).ok_or_else(|| format!("expected {what}, got {n}")),
        Value::String(s) => s.parse().map_err(|_| format!("expected {what}, got {s:?}")),
        other => Err(format!("expected an integer, got {}", kind_of(other))),
    }
}

fn as_f64(value: &Value) -> Result<f64, String> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("bad number {n}")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .parse()
                .map_err(|_| format!("expected a number, got {other:?}")),
        },
        other => Err(format!("expected a number, got {}", kind_of(other))),
    }
}

/// Proto3 JSON parsers accept standard and URL-safe base64, padded or not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one_span(span: Value) -> Result<wire::Span, String> {
        let req = request(&json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}))?;
        Ok(req.resource_spans[0].scope_spans[0].spans[0].clone())
    }

    #[test]
    fn enums_read_as_numbers_or_names_and_ints_as_strings_or_numbers() {
        let a = one_span(json!({
            "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174",
            "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": "12", "endTimeUnixNano": 13,
            "status": {"code": "STATUS_CODE_ERROR"}, "flags": "257"
        }))
        .unwrap();
        assert_eq!(a.kind, 3);
        assert_eq!(a.trace_id[0], 0x5b);
        assert_eq!(
            (a.start_time_unix_nano, a.end_time_unix_nano, a.flags),
            (12, 13, 257)
        );
        assert_eq!(a.status.unwrap().code, 2);
    }

    #[test]
    fn snake_case_names_and_nulls_are_accepted() {
        let a = one_span(json!({
            "trace_id": "01010101010101010101010101010101", "span_id": "0202020202020202",
            "parentSpanId": null, "kind": 2, "name": "x"
        }))
        .unwrap();
        assert_eq!(a.span_id, vec![2; 8]);
        assert!(a.parent_span_id.is_empty());
        assert_eq!(a.kind, 2);
    }

    #[test]
    fn attribute_values_of_every_type() {
        let a = one_span(json!({"attributes": [
            {"key": "s", "value": {"stringValue": "v"}},
            {"key": "i", "value": {"intValue": "-9007199254740993"}},
            {"key": "d", "value": {"doubleValue": "NaN"}},
            {"key": "b", "value": {"boolValue": true}},
            {"key": "y", "value": {"bytesValue": "AQID"}},
            {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}]}}},
            {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {}}]}}},
            {"key": "e"}
        ]}))
        .unwrap();
        let values: Vec<_> = a.attributes.iter().map(|kv| kv.value.clone()).collect();
        assert_eq!(
            values[1].as_ref().unwrap().value,
            Some(any_value::Value::IntValue(-9007199254740993))
        );
        assert!(matches!(
            values[2].as_ref().unwrap().value,
            Some(any_value::Value::DoubleValue(d)) if d.is_nan()
        ));
        assert_eq!(
            values[4].as_ref().unwrap().value,
            Some(any_value::Value::BytesValue(vec![1, 2, 3]))
        );
        assert!(values[7].is_none());
    }

    #[test]
    fn errors_name_the_field_path() {
        let err = one_span(json!({"traceId": "zz"})).unwrap_err();
        assert!(
            err.contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
            "{err}"
        );
        let err = one_span(json!({"kind": "SPAN_KIND_NOPE"})).unwrap_err();
        assert!(err.contains("kind: unknown name"), "{err}");
        let err = one_span(json!({"flags": -1})).unwrap_err();
        assert!(err.contains("flags"), "{err}");
        assert!(request(&json!([])).is_err());
    }
}
