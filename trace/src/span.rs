//! One span, as the analyses see it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{SpanId, TraceId};

/// The role a span plays in a request, as OTLP's `SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Not specified by the producer.
    #[default]
    Unspecified,
    /// Work inside one process.
    Internal,
    /// The handling of a synchronous request.
    Server,
    /// The sending of a synchronous request.
    Client,
    /// The sending of an asynchronous message.
    Producer,
    /// The handling of an asynchronous message.
    Consumer,
}

impl SpanKind {
    /// Upper-case name, as Jaeger and the OTLP enum spell it without the prefix.
    pub fn as_str(&self) -> &'static str {
        match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }
}

/// The outcome a span reports, as OTLP's `Status.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StatusCode {
    /// The producer said nothing.
    #[default]
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed.
    Error,
}

/// A span's status: a code and an optional message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Status {
    /// Unset, Ok or Error.
    pub code: StatusCode,
    /// Human-readable description, usually only on errors.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// An attribute value. Arrays keep OTLP's heterogeneous shape; maps are flattened to their JSON
/// text, since no analysis looks inside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A list of values.
    Array(Vec<AttrValue>),
    /// Raw bytes (OTLP `bytesValue`).
    Bytes(Vec<u8>),
}

impl AttrValue {
    /// The value as a string slice, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as a double (integers widen).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Double(d) => Some(*d),
            AttrValue::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl std::fmt::Display for AttrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttrValue::Str(s) => f.write_str(s),
            AttrValue::Bool(b) => write!(f, "{b}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Double(d) => write!(f, "{d}"),
            AttrValue::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            AttrValue::Bytes(b) => write!(f, "0x{}", hex::encode(b)),
        }
    }
}

/// One key/value attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// Attribute name, e.g. `http.route`.
    pub key: String,
    /// Attribute value.
    pub value: AttrValue,
}

/// Something that happened at an instant during a span (an exception, a retry, a log line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event name.
    pub name: String,
    /// When it happened, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Its attributes.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

/// A causal link to a span of the same or another trace (queues, batches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Trace of the linked span.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// The linked span's tracestate, as text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_state: String,
    /// Link attributes.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

/// One span with its resource's service name resolved.
///
/// Resource attributes are shared between all spans of one export batch (`Arc`), so a store of
/// a million spans does not hold a million copies of `service.name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Trace the span belongs to.
    pub trace_id: TraceId,
    /// The span's own id.
    pub span_id: SpanId,
    /// The parent span, `None` for a root.
    pub parent_span_id: Option<SpanId>,
    /// W3C tracestate the span was created with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_state: String,
    /// W3C trace flags (bit 0 sampled, bit 1 random), where the producer recorded them.
    #[serde(default)]
    pub flags: u32,
    /// Operation name, e.g. `GET /checkout`.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// Span attributes.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// Span events.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Span links.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Outcome.
    #[serde(default)]
    pub status: Status,
    /// `service.name` of the resource, or `unknown_service` when absent (as the SDKs default).
    pub service_name: Arc<str>,
    /// All resource attributes, shared by the spans of one batch.
    #[serde(default)]
    pub resource: Arc<Vec<Attribute>>,
    /// Instrumentation scope name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope_name: String,
}

/// An unspecified span of `unknown_service` with zero ids and times,
/// for building spans field by field (`Span { name, ..Span::default() }`).
impl Default for Span {
    fn default() -> Self {
        Span {
            trace_id: TraceId::default(),
            span_id: SpanId::default(),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: String::new(),
            kind: SpanKind::Unspecified,
            start_unix_nano: 0,
            end_unix_nano: 0,
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            status: Status::default(),
            service_name: Arc::from("unknown_service"),
            resource: Arc::default(),
            scope_name: String::new(),
        }
    }
}

impl Span {
    /// Duration in nanoseconds (0 when the end precedes the start).
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// The value of one attribute, if set.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// True when the span's status is Error.
    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }

    /// True when the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
}
