//! Fields Jaeger and Zipkin share, read leniently where producers differ and strictly where a
//! wrong value would corrupt a trace.
//!
//! Hex ids: up to 32 digits for a trace id (16 for the 64-bit ids older tracers make) and up
//! to 16 for a span id, leading zeros sometimes left out (Jaeger writes `b09c80f18a5dc8b` for
//! `0b09c80f18a5dc8b`). Shorter ids are the same number, so they are padded on the left.
//! Times: microseconds since the Unix epoch, as a number or a numeric string. Lists: `null`
//! where a producer had nothing to say is an empty list.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
pub(super) use tracelab_trace::AttrValue;
use tracelab_trace::{Attribute, SpanId, Status, StatusCode, TraceId};

/// An array read one element at a time: each is handed to `each` as soon as it is decoded, so
/// a document of any size is read in the memory of one element. `null` reads as an empty array.
pub(super) struct EachElement<'a, T> {
    pub(super) each: &'a mut dyn FnMut(T),
    /// What the array holds, for the error a value of another type gets.
    pub(super) expecting: &'static str,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for EachElement<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for EachElement<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            (self.each)(item);
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Reads `text` as a number of at most `N` bytes in hex, padded on the left; `None` when it is
/// empty, too long, not hex, or zero (the "no id" value in both formats).
fn padded<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.is_empty() || text.len() > 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digits = vec![b'0'; 2 * N - text.len()];
    digits.extend_from_slice(text.as_bytes());
    let mut bytes = [0u8; N];
    hex::decode_to_slice(&digits, &mut bytes).ok()?;
    bytes.iter().any(|&b| b != 0).then_some(bytes)
}

/// A trace id field; an unusable one is an error naming the field, located by the reader.
pub(super) struct HexTraceId(pub TraceId);

/// A span id field; an unusable one is an error naming the field, located by the reader.
pub(super) struct HexSpanId(pub SpanId);

/// An optional span id field: absent, null, empty or all zeros all mean "none" (Zipkin
/// leaves `parentId` out for a root; older Jaeger clients write `0`).
#[derive(Default)]
pub(super) struct MaybeSpanId(pub Option<SpanId>);

struct IdVisitor<const N: usize> {
    what: &'static str,
    optional: bool,
}

impl<const N: usize> Visitor<'_> for IdVisitor<N> {
    type Value = Option<[u8; N]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} of 1 to {} hex digits", self.what, 2 * N)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        match padded::<N>(text) {
            Some(id) => Ok(Some(id)),
            None if self.optional && text.trim().bytes().all(|b| b == b'0') => Ok(None),
            None => Err(E::custom(format!(
                "{:?} is not a {}: expected 1 to {} hex digits, not all zero",
                text,
                self.what,
                2 * N
            ))),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(E::custom(format!("the {} is null", self.what)))
        }
    }
}

impl<'de> serde::Deserialize<'de> for HexTraceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let visitor = IdVisitor::<16> {
            what: "trace id",
            optional: false,
        };
        match d.deserialize_any(visitor)? {
            Some(bytes) => Ok(HexTraceId(TraceId(bytes))),
            None => Err(de::Error::custom("the trace id is missing")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for HexSpanId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let visitor = IdVisitor::<8> {
            what: "span id",
            optional: false,
        };
        match d.deserialize_any(visitor)? {
            Some(bytes) => Ok(HexSpanId(SpanId(bytes))),
            None => Err(de::Error::custom("the span id is missing")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for MaybeSpanId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let visitor = IdVisitor::<8> {
            what: "span id",
            optional: true,
        };
        Ok(MaybeSpanId(d.deserialize_any(visitor)?.map(SpanId)))
    }
}

/// Microseconds since the Unix epoch (or a duration in microseconds), as nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Micros(pub u64);

impl Micros {
    /// The time in nanoseconds, saturating far beyond any real timestamp.
    pub(super) fn nanos(self) -> u64 {
        self.0.saturating_mul(1000)
    }
}

struct MicrosVisitor;

impl Visitor<'_> for MicrosVisitor {
    type Value = Micros;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number of microseconds")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Micros, E> {
        Ok(Micros(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Micros, E> {
        u64::try_from(value)
            .map(Micros)
            .map_err(|_| E::custom(format!("{value} microseconds is negative")))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Micros, E> {
        if value.is_finite() && value >= 0.0 && value < u64::MAX as f64 {
            Ok(Micros(value.round() as u64))
        } else {
            Err(E::custom(format!(
                "{value} is not a number of microseconds"
            )))
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Micros, E> {
        text.trim()
            .parse()
            .map(Micros)
            .map_err(|_| E::custom(format!("{text:?} is not a whole number of microseconds")))
    }
}

impl<'de> serde::Deserialize<'de> for Micros {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MicrosVisitor)
    }
}

/// Reads a list that may be `null`.
pub(super) fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `service.name`, the resource attribute both formats carry as a plain field.
pub(super) const SERVICE_NAME: &str = "service.name";

/// The service of a span whose producer named none, as the OpenTelemetry SDKs default it.
pub(super) const UNKNOWN_SERVICE: &str = "unknown_service";

/// One attribute.
pub(super) fn attribute(key: &str, value: AttrValue) -> Attribute {
    Attribute {
        key: key.to_owned(),
        value,
    }
}

/// A tag value by its declared type (Jaeger's `string`, `bool`, `int64`, `float64`,
/// `binary`), or by its JSON type when none is declared. A value that does not match its
/// declared type is kept as text rather than lost.
pub(super) fn typed_value(kind: Option<&str>, value: &serde_json::Value) -> AttrValue {
    use serde_json::Value;
    let text = || match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let declared = match kind.map(str::to_ascii_lowercase).as_deref() {
        Some("string") => Some(AttrValue::Str(text())),
        Some("bool") => value
            .as_bool()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
            .map(AttrValue::Bool),
        Some("int64") => value
            .as_i64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .map(AttrValue::Int),
        Some("float64") => value
            .as_f64()
            .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
            .map(AttrValue::Double),
        Some("binary") => value
            .as_str()
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .map(AttrValue::Bytes),
        _ => None,
    };
    if let Some(value) = declared {
        return value;
    }
    match value {
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AttrValue::Int(i),
            None => AttrValue::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Array(items) => {
            AttrValue::Array(items.iter().map(|v| typed_value(None, v)).collect())
        }
        _ => AttrValue::Str(text()),
    }
}

/// A span's tags, from which the ones that stand for the span's kind, status and scope are
/// taken out; the rest are its attributes.
pub(super) struct Tags(Vec<Attribute>);

impl Tags {
    pub(super) fn new(tags: Vec<Attribute>) -> Self {
        Tags(tags)
    }

    /// Removes the first tag named `key` and returns its value.
    pub(super) fn take(&mut self, key: &str) -> Option<AttrValue> {
        let at = self.0.iter().position(|a| a.key == key)?;
        Some(self.0.remove(at).value)
    }

    /// Removes the tag named `key` and returns it as lower-case text.
    pub(super) fn take_str(&mut self, key: &str) -> Option<String> {
        self.take(key).map(|v| v.to_string().to_ascii_lowercase())
    }

    /// The status from `otel.status_code` and `otel.status_description` (the OpenTelemetry
    /// exporters' tags), or from the older `error` tag: `true` in Jaeger, present at all in
    /// Zipkin (its value is then the message).
    pub(super) fn take_status(&mut self) -> Status {
        let code = self.take_str("otel.status_code");
        let description = self.take("otel.status_description").map(|v| v.to_string());
        let error = self.take("error");
        let failed = match &error {
            Some(AttrValue::Bool(b)) => *b,
            Some(AttrValue::Str(s)) => !s.eq_ignore_ascii_case("false"),
            Some(_) => true,
            None => false,
        };
        let error_text = match error {
            Some(AttrValue::Str(s)) if !s.eq_ignore_ascii_case("true") => s,
            _ => String::new(),
        };
        match code.as_deref() {
            Some("error") => Status {
                code: StatusCode::Error,
                message: description.unwrap_or(error_text),
            },
            Some("ok") => Status {
                code: StatusCode::Ok,
                message: String::new(),
            },
            _ if failed => Status {
                code: StatusCode::Error,
                message: description.unwrap_or(error_text),
            },
            _ => Status::default(),
        }
    }

    /// The instrumentation scope's name (`otel.scope.name`, or the older
    /// `otel.library.name`); its version tags go too.
    pub(super) fn take_scope(&mut self) -> String {
        let scope = self.take("otel.scope.name");
        let library = self.take("otel.library.name");
        self.take("otel.scope.version");
        self.take("otel.library.version");
        scope.or(library).map(|v| v.to_string()).unwrap_or_default()
    }

    pub(super) fn into_attributes(self) -> Vec<Attribute> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace_id(text: &str) -> Option<TraceId> {
        padded::<16>(text).map(TraceId)
    }

    fn span_id(text: &str) -> Option<SpanId> {
        padded::<8>(text).map(SpanId)
    }

    #[test]
    fn short_ids_are_padded_on_the_left() {
        assert_eq!(
            span_id("b09c80f18a5dc8b").unwrap().to_hex(),
            "0b09c80f18a5dc8b"
        );
        assert_eq!(
            trace_id("95b8f374e549297f").unwrap().to_hex(),
            "000000000000000095b8f374e549297f"
        );
        assert_eq!(
            trace_id("5B8EFFF798038103D269B633813FC60C")
                .unwrap()
                .to_hex(),
            "5b8efff798038103d269b633813fc60c"
        );
    }

    #[test]
    fn unusable_ids_are_refused() {
        for text in ["", "0", "0000", "xyz", "11111111111111111"] {
            assert_eq!(span_id(text), None, "{text:?}");
        }
        assert_eq!(trace_id(&"1".repeat(33)), None);
    }

    #[test]
    fn times_are_numbers_or_numeric_strings() {
        for text in [
            "1517214533883000",
            "\"1517214533883000\"",
            "1517214533883000.0",
        ] {
            let micros: Micros = serde_json::from_str(text).unwrap();
            assert_eq!(micros.nanos(), 1_517_214_533_883_000_000, "{text}");
        }
        assert!(serde_json::from_str::<Micros>("-5").is_err());
        assert!(serde_json::from_str::<Micros>("\"soon\"").is_err());
    }

    #[test]
    fn tag_values_keep_their_declared_types() {
        use serde_json::json;
        assert_eq!(typed_value(Some("int64"), &json!(503)), AttrValue::Int(503));
        assert_eq!(
            typed_value(Some("int64"), &json!("503")),
            AttrValue::Int(503)
        );
        assert_eq!(
            typed_value(Some("float64"), &json!(1)),
            AttrValue::Double(1.0)
        );
        assert_eq!(
            typed_value(Some("bool"), &json!(true)),
            AttrValue::Bool(true)
        );
        assert_eq!(
            typed_value(Some("binary"), &json!("AQI=")),
            AttrValue::Bytes(vec![1, 2])
        );
        // Zipkin's tags are all strings, and stay strings.
        assert_eq!(
            typed_value(None, &json!("503")),
            AttrValue::Str("503".into())
        );
        assert_eq!(
            typed_value(Some("int64"), &json!("many")),
            AttrValue::Str("many".into())
        );
    }

    #[test]
    fn status_tags_become_the_status() {
        let tags = |pairs: &[(&str, AttrValue)]| {
            Tags::new(pairs.iter().map(|(k, v)| attribute(k, v.clone())).collect())
        };
        let mut otel = tags(&[
            ("otel.status_code", AttrValue::Str("ERROR".into())),
            (
                "otel.status_description",
                AttrValue::Str("card declined".into()),
            ),
            ("http.route", AttrValue::Str("/charge".into())),
        ]);
        let status = otel.take_status();
        assert_eq!(status.code, StatusCode::Error);
        assert_eq!(status.message, "card declined");
        assert_eq!(otel.into_attributes().len(), 1);
        // Zipkin: an `error` tag, whatever its value, is a failure described by that value.
        let status = tags(&[("error", AttrValue::Str("timeout".into()))]).take_status();
        assert_eq!(
            (status.code, status.message.as_str()),
            (StatusCode::Error, "timeout")
        );
        let status = tags(&[("error", AttrValue::Str(String::new()))]).take_status();
        assert_eq!(status.code, StatusCode::Error);
        // Jaeger: `error: true`.
        let status = tags(&[("error", AttrValue::Bool(true))]).take_status();
        assert_eq!(
            (status.code, status.message.as_str()),
            (StatusCode::Error, "")
        );
        assert_eq!(tags(&[]).take_status(), Status::default());
    }

    #[test]
    fn field_errors_name_the_id() {
        let err = serde_json::from_str::<HexSpanId>("\"nothex\"")
            .err()
            .unwrap();
        assert!(err.to_string().contains("is not a span id"), "{err}");
        assert_eq!(
            serde_json::from_str::<MaybeSpanId>("\"0\"").unwrap().0,
            None
        );
        assert_eq!(serde_json::from_str::<MaybeSpanId>("null").unwrap().0, None);
    }
}
