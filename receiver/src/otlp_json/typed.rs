//! The fast path of the OTLP/JSON reader: text straight to the wire structs, without building
//! a `serde_json::Value` tree first.
//!
//! Building the tree costs a `String` per field name and a map per object, several times what
//! the spans themselves cost; on a large run directory it was nearly all of the reading time.
//! This path reads the same fields with the same rules as `decode` (camelCase preferred over
//! the original snake_case name, `null` as absent, a repeated field's last value, 64-bit
//! integers as numbers or strings, enums as numbers or names, hex ids) and gives up, rather
//! than guess, on everything else: a `kvlistValue` or `bytesValue` attribute, an attribute
//! value with several kinds, any error, any span with unusable ids. [`decode`] then returns
//! `None` and the caller reads the text with `decode`, which is the reference for what is
//! accepted and for every error message.
//!
//! It is written against serde's `MapAccess` by hand rather than with derives, because a
//! derived struct also accepts a JSON array in place of an object, which OTLP/JSON does not.

use std::fmt;
use std::marker::PhantomData;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as wire;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tracelab_trace::Span;

use crate::convert;

/// Every span of OTLP/JSON text (JSON Lines of requests, one request, or an array of them),
/// or `None` when anything in it needs the reference reader.
pub(super) fn decode(text: &str) -> Option<Vec<Span>> {
    let mut spans = Vec::new();
    for document in serde_json::Deserializer::from_str(text).into_iter::<Document>() {
        let requests = match document.ok()? {
            Document::One(request) => vec![request],
            Document::Many(requests) => requests,
        };
        for request in requests {
            let request = request.0;
            let unusable = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .any(|s| convert::span_problem(s).is_some());
            if unusable {
                return None;
            }
            spans.extend(convert::request_to_spans(request));
        }
    }
    Some(spans)
}

/// A top-level value: a request, or an array of requests.
enum Document {
    One(Message<ExportTraceServiceRequest>),
    Many(Vec<Message<ExportTraceServiceRequest>>),
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Document;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an OTLP/JSON request or an array of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Document, A::Error> {
                MessageVisitor::<ExportTraceServiceRequest>(PhantomData)
                    .visit_map(map)
                    .map(Document::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Document, A::Error> {
                let mut all = Vec::new();
                while let Some(request) = seq.next_element()? {
                    all.push(request);
                }
                Ok(Document::Many(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// A wire message read from a JSON object (and only from an object).
struct Message<T>(T);

/// How one wire message is read: its field names (each lowerCamelCase name followed by the
/// original name, so field `n` has names `2n` and `2n + 1`) and a builder that collects them.
/// Both are written with [`message_fields!`].
trait Read: Sized {
    type Builder: Default;
    const NAMES: &'static [&'static str];
    /// Reads the value of name `name` into the builder.
    fn field<'de, A: MapAccess<'de>>(
        b: &mut Self::Builder,
        name: usize,
        map: &mut A,
    ) -> Result<(), A::Error>;
    fn build<E: de::Error>(b: Self::Builder) -> Result<Self, E>;
}

/// A field under its two names; `null` is absent; the preferred name wins when both are
/// present; a repeated name keeps its last value (as a JSON object map would).
struct Field<T>(Option<T>, Option<T>);

impl<T> Default for Field<T> {
    fn default() -> Self {
        Field(None, None)
    }
}

impl<T> Field<T> {
    fn read<'de, A: MapAccess<'de>>(&mut self, snake: bool, map: &mut A) -> Result<(), A::Error>
    where
        T: Deserialize<'de>,
    {
        let value = map.next_value::<Option<T>>()?;
        if snake {
            self.1 = value;
        } else {
            self.0 = value;
        }
        Ok(())
    }

    fn get(self) -> Option<T> {
        self.0.or(self.1)
    }
}

/// The names and the reader of a message's fields, from one list of `builder_field:
/// "jsonName"` pairs: `NAMES` holds each field's lowerCamelCase name followed by its original
/// name (the builder field's own, so field `n` has names `2n` and `2n + 1`), and `field` reads
/// the value of name `n` into the builder field at position `n / 2`. Both come from the same
/// list, so a name and its position cannot disagree.
macro_rules! message_fields {
    ($($field:ident: $camel:literal),+ $(,)?) => {
        const NAMES: &'static [&'static str] = &[$($camel, stringify!($field)),+];

        fn field<'de, A: MapAccess<'de>>(
            b: &mut Self::Builder,
            name: usize,
            map: &mut A,
        ) -> Result<(), A::Error> {
            let field = name / 2;
            let mut index = 0usize;
            $(
                if field == index {
                    return b.$field.read(name % 2 == 1, map);
                }
                index += 1;
            )+
            let _ = index;
            map.next_value::<IgnoredAny>().map(|_| ())
        }
    };
}

struct Name<T>(PhantomData<T>);

impl<'de, T: Read> DeserializeSeed<'de> for Name<T> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<T: Read> Visitor<'_> for Name<T> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(T::NAMES.iter().position(|n| *n == v))
    }
}

struct MessageVisitor<T>(PhantomData<T>);

impl<'de, T: Read> Visitor<'de> for MessageVisitor<T> {
    type Value = Message<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message<T>, A::Error> {
        let mut builder = T::Builder::default();
        while let Some(name) = map.next_key_seed(Name::<T>(PhantomData))? {
            match name {
                Some(name) => T::field(&mut builder, name, &mut map)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        T::build(builder).map(Message)
    }
}

impl<'de, T: Read> Deserialize<'de> for Message<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MessageVisitor(PhantomData))
    }
}

fn list<T>(field: Field<Vec<Message<T>>>) -> Vec<T> {
    field
        .get()
        .map(|items| items.into_iter().map(|m| m.0).collect())
        .unwrap_or_default()
}

fn text(field: Field<String>) -> String {
    field.get().unwrap_or_default()
}

/// An unsigned integer, as a JSON number or a decimal string.
struct U64(u64);

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = U64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<U64, E> {
                Ok(U64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<U64, E> {
                v.parse().map(U64).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

fn uint64(field: Field<U64>) -> u64 {
    field.get().map_or(0, |v| v.0)
}

fn uint32<E: de::Error>(field: Field<U64>) -> Result<u32, E> {
    u32::try_from(uint64(field)).map_err(E::custom)
}

/// A signed integer, as a JSON number or a decimal string.
struct I64(i64);

impl<'de> Deserialize<'de> for I64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = I64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a 64-bit integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<I64, E> {
                i64::try_from(v).map(I64).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<I64, E> {
                Ok(I64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<I64, E> {
                v.parse().map(I64).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A double, as a JSON number or a string (`NaN`, `Infinity`, `-Infinity` or a number).
struct F64(f64);

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = F64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<F64, E> {
                Ok(F64(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<F64, E> {
                Ok(F64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<F64, E> {
                match v {
                    "NaN" => Ok(F64(f64::NAN)),
                    "Infinity" => Ok(F64(f64::INFINITY)),
                    "-Infinity" => Ok(F64(f64::NEG_INFINITY)),
                    other => other.parse().map(F64).map_err(E::custom),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// An id in hex, either case.
struct Hex(Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Hex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex id")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Hex, E> {
                hex::decode(v).map(Hex).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

fn hex_id(field: Field<Hex>) -> Vec<u8> {
    field.get().map(|h| h.0).unwrap_or_default()
}

/// An enum as its number or its name.
struct Enum<T>(i32, PhantomData<T>);

trait EnumNames {
    fn by_name(name: &str) -> Option<i32>;
}

struct SpanKindNames;
impl EnumNames for SpanKindNames {
    fn by_name(name: &str) -> Option<i32> {
        wire::span::SpanKind::from_str_name(name).map(|k| k as i32)
    }
}

struct StatusCodeNames;
impl EnumNames for StatusCodeNames {
    fn by_name(name: &str) -> Option<i32> {
        wire::status::StatusCode::from_str_name(name).map(|c| c as i32)
    }
}

impl<'de, T: EnumNames> Deserialize<'de> for Enum<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: EnumNames> Visitor<'_> for V<T> {
            type Value = Enum<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an enum number or name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Enum<T>, E> {
                i32::try_from(v)
                    .map(|n| Enum(n, PhantomData))
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Enum<T>, E> {
                i32::try_from(v)
                    .map(|n| Enum(n, PhantomData))
                    .map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Enum<T>, E> {
                T::by_name(v)
                    .map(|n| Enum(n, PhantomData))
                    .ok_or_else(|| E::custom("unknown enum name"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

fn enumeration<T>(field: Field<Enum<T>>) -> i32 {
    field.get().map_or(0, |e| e.0)
}

#[derive(Default)]
struct RequestFields {
    resource_spans: Field<Vec<Message<wire::ResourceSpans>>>,
}

impl Read for ExportTraceServiceRequest {
    type Builder = RequestFields;
    message_fields! {
        resource_spans: "resourceSpans",
    }
    fn build<E: de::Error>(b: RequestFields) -> Result<Self, E> {
        Ok(ExportTraceServiceRequest {
            resource_spans: list(b.resource_spans),
        })
    }
}

#[derive(Default)]
struct ResourceSpansFields {
    resource: Field<Message<Resource>>,
    scope_spans: Field<Vec<Message<wire::ScopeSpans>>>,
    schema_url: Field<String>,
}

impl Read for wire::ResourceSpans {
    type Builder = ResourceSpansFields;
    message_fields! {
        resource: "resource",
        scope_spans: "scopeSpans",
        schema_url: "schemaUrl",
    }
    fn build<E: de::Error>(b: ResourceSpansFields) -> Result<Self, E> {
        Ok(wire::ResourceSpans {
            resource: b.resource.get().map(|m| m.0),
            scope_spans: list(b.scope_spans),
            schema_url: text(b.schema_url),
        })
    }
}

#[derive(Default)]
struct ResourceFields {
    attributes: Field<Vec<Message<KeyValue>>>,
    dropped_attributes_count: Field<U64>,
}

impl Read for Resource {
    type Builder = ResourceFields;
    message_fields! {
        attributes: "attributes",
        dropped_attributes_count: "droppedAttributesCount",
    }
    fn build<E: de::Error>(b: ResourceFields) -> Result<Self, E> {
        Ok(Resource {
            attributes: list(b.attributes),
            dropped_attributes_count: uint32(b.dropped_attributes_count)?,
            entity_refs: Vec::new(),
        })
    }
}

#[derive(Default)]
struct ScopeSpansFields {
    scope: Field<Message<InstrumentationScope>>,
    spans: Field<Vec<Message<wire::Span>>>,
    schema_url: Field<String>,
}

impl Read for wire::ScopeSpans {
    type Builder = ScopeSpansFields;
    message_fields! {
        scope: "scope",
        spans: "spans",
        schema_url: "schemaUrl",
    }
    fn build<E: de::Error>(b: ScopeSpansFields) -> Result<Self, E> {
        Ok(wire::ScopeSpans {
            scope: b.scope.get().map(|m| m.0),
            spans: list(b.spans),
            schema_url: text(b.schema_url),
        })
    }
}

#[derive(Default)]
struct ScopeFields {
    name: Field<String>,
    version: Field<String>,
    attributes: Field<Vec<Message<KeyValue>>>,
    dropped_attributes_count: Field<U64>,
}

impl Read for InstrumentationScope {
    type Builder = ScopeFields;
    message_fields! {
        name: "name",
        version: "version",
        attributes: "attributes",
        dropped_attributes_count: "droppedAttributesCount",
    }
    fn build<E: de::Error>(b: ScopeFields) -> Result<Self, E> {
        Ok(InstrumentationScope {
            name: text(b.name),
            version: text(b.version),
            attributes: list(b.attributes),
            dropped_attributes_count: uint32(b.dropped_attributes_count)?,
        })
    }
}

#[derive(Default)]
struct SpanFields {
    trace_id: Field<Hex>,
    span_id: Field<Hex>,
    trace_state: Field<String>,
    parent_span_id: Field<Hex>,
    flags: Field<U64>,
    name: Field<String>,
    kind: Field<Enum<SpanKindNames>>,
    start_time_unix_nano: Field<U64>,
    end_time_unix_nano: Field<U64>,
    attributes: Field<Vec<Message<KeyValue>>>,
    dropped_attributes_count: Field<U64>,
    events: Field<Vec<Message<wire::span::Event>>>,
    dropped_events_count: Field<U64>,
    links: Field<Vec<Message<wire::span::Link>>>,
    dropped_links_count: Field<U64>,
    status: Field<Message<wire::Status>>,
}

impl Read for wire::Span {
    type Builder = SpanFields;
    message_fields! {
        trace_id: "traceId",
        span_id: "spanId",
        trace_state: "traceState",
        parent_span_id: "parentSpanId",
        flags: "flags",
        name: "name",
        kind: "kind",
        start_time_unix_nano: "startTimeUnixNano",
        end_time_unix_nano: "endTimeUnixNano",
        attributes: "attributes",
        dropped_attributes_count: "droppedAttributesCount",
        events: "events",
        dropped_events_count: "droppedEventsCount",
        links: "links",
        dropped_links_count: "droppedLinksCount",
        status: "status",
    }
    fn build<E: de::Error>(b: SpanFields) -> Result<Self, E> {
        Ok(wire::Span {
            trace_id: hex_id(b.trace_id),
            span_id: hex_id(b.span_id),
            trace_state: text(b.trace_state),
            parent_span_id: hex_id(b.parent_span_id),
            flags: uint32(b.flags)?,
            name: text(b.name),
            kind: enumeration(b.kind),
            start_time_unix_nano: uint64(b.start_time_unix_nano),
            end_time_unix_nano: uint64(b.end_time_unix_nano),
            attributes: list(b.attributes),
            dropped_attributes_count: uint32(b.dropped_attributes_count)?,
            events: list(b.events),
            dropped_events_count: uint32(b.dropped_events_count)?,
            links: list(b.links),
            dropped_links_count: uint32(b.dropped_links_count)?,
            status: b.status.get().map(|m| m.0),
        })
    }
}

#[derive(Default)]
struct EventFields {
    time_unix_nano: Field<U64>,
    name: Field<String>,
    attributes: Field<Vec<Message<KeyValue>>>,
    dropped_attributes_count: Field<U64>,
}

impl Read for wire::span::Event {
    type Builder = EventFields;
    message_fields! {
        time_unix_nano: "timeUnixNano",
        name: "name",
        attributes: "attributes",
        dropped_attributes_count: "droppedAttributesCount",
    }
    fn build<E: de::Error>(b: EventFields) -> Result<Self, E> {
        Ok(wire::span::Event {
            time_unix_nano: uint64(b.time_unix_nano),
            name: text(b.name),
            attributes: list(b.attributes),
            dropped_attributes_count: uint32(b.dropped_attributes_count)?,
        })
    }
}

#[derive(Default)]
struct LinkFields {
    trace_id: Field<Hex>,
    span_id: Field<Hex>,
    trace_state: Field<String>,
    attributes: Field<Vec<Message<KeyValue>>>,
    dropped_attributes_count: Field<U64>,
    flags: Field<U64>,
}

impl Read for wire::span::Link {
    type Builder = LinkFields;
    message_fields! {
        trace_id: "traceId",
        span_id: "spanId",
        trace_state: "traceState",
        attributes: "attributes",
        dropped_attributes_count: "droppedAttributesCount",
        flags: "flags",
    }
    fn build<E: de::Error>(b: LinkFields) -> Result<Self, E> {
        Ok(wire::span::Link {
            trace_id: hex_id(b.trace_id),
            span_id: hex_id(b.span_id),
            trace_state: text(b.trace_state),
            attributes: list(b.attributes),
            dropped_attributes_count: uint32(b.dropped_attributes_count)?,
            flags: uint32(b.flags)?,
        })
    }
}

#[derive(Default)]
struct StatusFields {
    message: Field<String>,
    code: Field<Enum<StatusCodeNames>>,
}

impl Read for wire::Status {
    type Builder = StatusFields;
    message_fields! {
        message: "message",
        code: "code",
    }
    fn build<E: de::Error>(b: StatusFields) -> Result<Self, E> {
        Ok(wire::Status {
            message: text(b.message),
            code: enumeration(b.code),
        })
    }
}

#[derive(Default)]
struct KeyValueFields {
    key: Field<String>,
    value: Field<Message<AnyValue>>,
}

impl Read for KeyValue {
    type Builder = KeyValueFields;
    message_fields! {
        key: "key",
        value: "value",
    }
    fn build<E: de::Error>(b: KeyValueFields) -> Result<Self, E> {
        Ok(KeyValue {
            key: text(b.key),
            value: b.value.get().map(|m| m.0),
            ..Default::default()
        })
    }
}

#[derive(Default)]
struct AnyValueFields {
    string_value: Field<String>,
    bool_value: Field<bool>,
    int_value: Field<I64>,
    double_value: Field<F64>,
    array_value: Field<Message<ArrayValue>>,
    kvlist_value: Field<IgnoredAny>,
    bytes_value: Field<IgnoredAny>,
}

impl Read for AnyValue {
    type Builder = AnyValueFields;
    message_fields! {
        string_value: "stringValue",
        bool_value: "boolValue",
        int_value: "intValue",
        double_value: "doubleValue",
        array_value: "arrayValue",
        kvlist_value: "kvlistValue",
        bytes_value: "bytesValue",
    }
    fn build<E: de::Error>(b: AnyValueFields) -> Result<Self, E> {
        if b.kvlist_value.get().is_some() || b.bytes_value.get().is_some() {
            return Err(E::custom(
                "kvlistValue and bytesValue are left to the reference reader",
            ));
        }
        let (string, boolean, int, double, array) = (
            b.string_value.get(),
            b.bool_value.get(),
            b.int_value.get(),
            b.double_value.get(),
            b.array_value.get(),
        );
        let kinds = usize::from(string.is_some())
            + usize::from(boolean.is_some())
            + usize::from(int.is_some())
            + usize::from(double.is_some())
            + usize::from(array.is_some());
        if kinds > 1 {
            return Err(E::custom(
                "several value kinds are left to the reference reader",
            ));
        }
        let value = match (string, boolean, int, double, array) {
            (Some(s), ..) => Some(any_value::Value::StringValue(s)),
            (_, Some(b), ..) => Some(any_value::Value::BoolValue(b)),
            (_, _, Some(i), ..) => Some(any_value::Value::IntValue(i.0)),
            (_, _, _, Some(d), _) => Some(any_value::Value::DoubleValue(d.0)),
            (.., Some(a)) => Some(any_value::Value::ArrayValue(a.0)),
            _ => None,
        };
        Ok(AnyValue { value })
    }
}

#[derive(Default)]
struct ArrayValueFields {
    values: Field<Vec<Message<AnyValue>>>,
}

impl Read for ArrayValue {
    type Builder = ArrayValueFields;
    message_fields! {
        values: "values",
    }
    fn build<E: de::Error>(b: ArrayValueFields) -> Result<Self, E> {
        Ok(ArrayValue {
            values: list(b.values),
        })
    }
}

#[cfg(test)]
mod tests;
