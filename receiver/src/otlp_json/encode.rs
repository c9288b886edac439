//! The wire structs to OTLP/JSON text, in the shape the OpenTelemetry Collector's `file`
//! exporter writes.
//!
//! That shape: lowerCamelCase names in proto field order, hex ids, enums as integers, 64-bit
//! integers as strings, `bytesValue` as base64, and fields at their default value left out,
//! except `resource`, `scope`, `status` and an attribute's `value`, which the Collector always
//! writes (as `{}` when empty). `opentelemetry-proto`'s `with-serde` derives write every default
//! field and a `NaN` double as `null`, so the serializers here are written by hand over borrowed
//! wrappers, which also avoids building an intermediate `serde_json::Value`.

use base64::Engine;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as wire;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// One request as a single line of JSON (no trailing newline).
pub(crate) fn request(request: &ExportTraceServiceRequest) -> String {
    // Serializing these wrappers into a String cannot fail: every map key is a string and no
    // wrapper returns an error of its own.
    serde_json::to_string(&Request(request)).unwrap_or_default()
}

/// One request as a line of JSON written straight into `out` (no trailing newline), without
/// the whole line in memory: a 16 MiB request is some 50 MB of JSON.
pub(crate) fn write_request(
    out: &mut impl std::io::Write,
    request: &ExportTraceServiceRequest,
) -> std::io::Result<()> {
    serde_json::to_writer(out, &Request(request)).map_err(std::io::Error::other)
}

/// A response body for OTLP/HTTP with a JSON request.
pub(crate) fn response(response: &ExportTraceServiceResponse) -> String {
    serde_json::to_string(&Response(response)).unwrap_or_default()
}

struct Request<'a>(&'a ExportTraceServiceRequest);
struct ResourceSpans<'a>(&'a wire::ResourceSpans);
struct ResourceJ<'a>(Option<&'a Resource>);
struct ScopeSpans<'a>(&'a wire::ScopeSpans);
struct Scope<'a>(Option<&'a InstrumentationScope>);
struct Span<'a>(&'a wire::Span);
struct Event<'a>(&'a wire::span::Event);
struct Link<'a>(&'a wire::span::Link);
struct Status<'a>(Option<&'a wire::Status>);
struct Attributes<'a>(&'a [KeyValue]);
struct Attr<'a>(&'a KeyValue);
struct Value<'a>(Option<&'a AnyValue>);
struct Values<'a>(&'a [AnyValue]);
struct Hex<'a>(&'a [u8]);
struct Double(f64);
struct Response<'a>(&'a ExportTraceServiceResponse);
struct PartialSuccess<'a>(&'a ExportTracePartialSuccess);

/// Writes `key: value` only when the value is not its default, as the Collector does.
fn entry_unless_default<M: SerializeMap, T: Serialize + ?Sized>(
    map: &mut M,
    key: &str,
    value: &T,
    is_default: bool,
) -> Result<(), M::Error> {
    if is_default {
        Ok(())
    } else {
        map.serialize_entry(key, value)
    }
}

/// A text field, left out when empty.
fn text_entry<M: SerializeMap>(map: &mut M, key: &str, value: &str) -> Result<(), M::Error> {
    entry_unless_default(map, key, value, value.is_empty())
}

/// The `attributes` and `droppedAttributesCount` that resources, scopes, spans, events and
/// links all carry, each left out at its default.
fn attribute_entries<M: SerializeMap>(
    map: &mut M,
    attributes: &[KeyValue],
    dropped: u32,
) -> Result<(), M::Error> {
    entry_unless_default(
        map,
        "attributes",
        &Attributes(attributes),
        attributes.is_empty(),
    )?;
    entry_unless_default(map, "droppedAttributesCount", &dropped, dropped == 0)
}

impl Serialize for Request<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(
            "resourceSpans",
            &Seq(self.0.resource_spans.iter().map(ResourceSpans)),
        )?;
        map.end()
    }
}

/// A sequence written from an iterator of wrappers; the iterator is cloned because `serialize`
/// only borrows `self`, and cloning a borrowed slice iterator costs nothing.
struct Seq<I>(I);

impl<I> Serialize for Seq<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

impl Serialize for ResourceSpans<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("resource", &ResourceJ(r.resource.as_ref()))?;
        map.serialize_entry("scopeSpans", &Seq(r.scope_spans.iter().map(ScopeSpans)))?;
        text_entry(&mut map, "schemaUrl", &r.schema_url)?;
        map.end()
    }
}

impl Serialize for ResourceJ<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(r) = self.0 {
            attribute_entries(&mut map, &r.attributes, r.dropped_attributes_count)?;
        }
        map.end()
    }
}

impl Serialize for ScopeSpans<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ss = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("scope", &Scope(ss.scope.as_ref()))?;
        map.serialize_entry("spans", &Seq(ss.spans.iter().map(Span)))?;
        text_entry(&mut map, "schemaUrl", &ss.schema_url)?;
        map.end()
    }
}

impl Serialize for Scope<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(scope) = self.0 {
            text_entry(&mut map, "name", &scope.name)?;
            text_entry(&mut map, "version", &scope.version)?;
            attribute_entries(&mut map, &scope.attributes, scope.dropped_attributes_count)?;
        }
        map.end()
    }
}

impl Serialize for Span<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sp = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("traceId", &Hex(&sp.trace_id))?;
        map.serialize_entry("spanId", &Hex(&sp.span_id))?;
        text_entry(&mut map, "traceState", &sp.trace_state)?;
        let parent = Hex(&sp.parent_span_id);
        entry_unless_default(
            &mut map,
            "parentSpanId",
            &parent,
            sp.parent_span_id.is_empty(),
        )?;
        entry_unless_default(&mut map, "flags", &sp.flags, sp.flags == 0)?;
        map.serialize_entry("name", &sp.name)?;
        entry_unless_default(&mut map, "kind", &sp.kind, sp.kind == 0)?;
        let start = Decimal(sp.start_time_unix_nano);
        entry_unless_default(
            &mut map,
            "startTimeUnixNano",
            &start,
            sp.start_time_unix_nano == 0,
        )?;
        let end = Decimal(sp.end_time_unix_nano);
        entry_unless_default(
            &mut map,
            "endTimeUnixNano",
            &end,
            sp.end_time_unix_nano == 0,
        )?;
        attribute_entries(&mut map, &sp.attributes, sp.dropped_attributes_count)?;
        let events = Seq(sp.events.iter().map(Event));
        entry_unless_default(&mut map, "events", &events, sp.events.is_empty())?;
        let dropped = sp.dropped_events_count;
        entry_unless_default(&mut map, "droppedEventsCount", &dropped, dropped == 0)?;
        let links = Seq(sp.links.iter().map(Link));
        entry_unless_default(&mut map, "links", &links, sp.links.is_empty())?;
        let dropped = sp.dropped_links_count;
        entry_unless_default(&mut map, "droppedLinksCount", &dropped, dropped == 0)?;
        map.serialize_entry("status", &Status(sp.status.as_ref()))?;
        map.end()
    }
}

impl Serialize for Event<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(None)?;
        let time = Decimal(e.time_unix_nano);
        entry_unless_default(&mut map, "timeUnixNano", &time, e.time_unix_nano == 0)?;
        map.serialize_entry("name", &e.name)?;
        attribute_entries(&mut map, &e.attributes, e.dropped_attributes_count)?;
        map.end()
    }
}

impl Serialize for Link<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let l = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("traceId", &Hex(&l.trace_id))?;
        map.serialize_entry("spanId", &Hex(&l.span_id))?;
        text_entry(&mut map, "traceState", &l.trace_state)?;
        attribute_entries(&mut map, &l.attributes, l.dropped_attributes_count)?;
        entry_unless_default(&mut map, "flags", &l.flags, l.flags == 0)?;
        map.end()
    }
}

impl Serialize for Status<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(st) = self.0 {
            text_entry(&mut map, "message", &st.message)?;
            entry_unless_default(&mut map, "code", &st.code, st.code == 0)?;
        }
        map.end()
    }
}

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Attr))
    }
}

impl Serialize for Attr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("key", &self.0.key)?;
        map.serialize_entry("value", &Value(self.0.value.as_ref()))?;
        map.end()
    }
}

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self.0.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(v)) => map.serialize_entry("stringValue", v)?,
            Some(any_value::Value::BoolValue(v)) => map.serialize_entry("boolValue", v)?,
            Some(any_value::Value::IntValue(v)) => map.serialize_entry("intValue", &Decimal(*v))?,
            Some(any_value::Value::DoubleValue(v)) => {
                map.serialize_entry("doubleValue", &Double(*v))?
            }
            Some(any_value::Value::ArrayValue(v)) => {
                map.serialize_entry("arrayValue", &ValuesObject(Values(&v.values)))?
            }
            Some(any_value::Value::KvlistValue(v)) => {
                map.serialize_entry("kvlistValue", &ValuesObject(Attributes(&v.values)))?
            }
            Some(any_value::Value::BytesValue(v)) => map.serialize_entry(
                "bytesValue",
                &base64::engine::general_purpose::STANDARD.encode(v),
            )?,
            // The string-table index belongs to the profiles signal and is never valid in a
            // trace; like an empty value it is written as `{}`.
            Some(any_value::Value::StringValueStrindex(_)) | None => {}
        }
        map.end()
    }
}

/// `{"values": [...]}`, the shape of both `ArrayValue` and `KeyValueList`.
struct ValuesObject<T>(T);

impl<T: Serialize> Serialize for ValuesObject<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("values", &self.0)?;
        map.end()
    }
}

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|v| Value(Some(v))))
    }
}

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Every span has two or three ids: they are spelled on the stack rather than in a
        // String each. Only an id longer than any OTLP defines takes the allocating path.
        let mut digits = [0u8; 2 * 16];
        let len = 2 * self.0.len();
        if let Some(out) = digits.get_mut(..len)
            && hex::encode_to_slice(self.0, out).is_ok()
        {
            return s.serialize_str(std::str::from_utf8(out).unwrap_or_default());
        }
        s.serialize_str(&hex::encode(self.0))
    }
}

/// A 64-bit integer as a JSON string, as proto3 JSON writes them, formatted on the stack.
struct Decimal<T>(T);

impl<T: itoa::Integer + Copy> Serialize for Decimal<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(itoa::Buffer::new().format(self.0))
    }
}

impl Serialize for Double {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // JSON has no NaN or infinities; proto3 JSON spells them as these strings, where
        // serde_json would silently write `null`.
        let v = self.0;
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if v == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(v)
        }
    }
}

impl Serialize for Response<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(p) = &self.0.partial_success {
            map.serialize_entry("partialSuccess", &PartialSuccess(p))?;
        }
        map.end()
    }
}

impl Serialize for PartialSuccess<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut map = s.serialize_map(None)?;
        let rejected = p.rejected_spans.to_string();
        entry_unless_default(&mut map, "rejectedSpans", &rejected, p.rejected_spans == 0)?;
        let message = &p.error_message;
        entry_unless_default(&mut map, "errorMessage", message, message.is_empty())?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_collector_shape() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![wire::ResourceSpans {
                resource: None,
                scope_spans: vec![wire::ScopeSpans {
                    scope: None,
                    spans: vec![wire::Span {
                        trace_id: vec![0xab; 16],
                        span_id: vec![0xcd; 8],
                        name: "op".into(),
                        kind: 2,
                        start_time_unix_nano: 5,
                        attributes: vec![KeyValue {
                            key: "n".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(7)),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        assert_eq!(
            request(&req),
            concat!(
                r#"{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[{"#,
                r#""traceId":"abababababababababababababababab","spanId":"cdcdcdcdcdcdcdcd","#,
                r#""name":"op","kind":2,"startTimeUnixNano":"5","#,
                r#""attributes":[{"key":"n","value":{"intValue":"7"}}],"status":{}}]}]}]}"#
            )
        );
    }

    #[test]
    fn special_doubles_are_strings() {
        assert_eq!(
            serde_json::to_string(&Double(f64::NAN)).unwrap(),
            r#""NaN""#
        );
        assert_eq!(
            serde_json::to_string(&Double(f64::NEG_INFINITY)).unwrap(),
            r#""-Infinity""#
        );
        assert_eq!(serde_json::to_string(&Double(1.5)).unwrap(), "1.5");
    }
}
