//! Zipkin's v2 JSON: an array of spans (what `/api/v2/spans` takes and exporters send), or an
//! array of traces, each an array of spans (what `/api/v2/traces` answers), read one element
//! of the outer array at a time.
//!
//! The mapping follows the OpenTelemetry specification's Zipkin mapping, read backwards:
//! - `kind` `CLIENT`, `SERVER`, `PRODUCER`, `CONSUMER`; no kind is an INTERNAL span;
//! - `localEndpoint.serviceName` is `service.name`; `remoteEndpoint.serviceName` is
//!   `peer.service` when the tags do not say it;
//! - `otel.status_code` / `error` tags are the status, `otel.scope.name` the scope; every
//!   other tag is a string attribute, as Zipkin has no other type;
//! - annotations are events; times are microseconds;
//! - a `shared` SERVER span (B3's single-span RPC, where client and server report one span
//!   id) gets an id of its own, derived from the shared one, under the CLIENT span, so that
//!   the two halves are two spans as in every other format.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use tracelab_trace::{Attribute, Event, Span, SpanId, SpanKind};

use super::fields::{self, AttrValue, EachElement, HexSpanId, HexTraceId, MaybeSpanId, Micros};
use super::{Batches, TraceFileError, TraceFormat};

/// Spans handed over at a time from an array of spans.
const BATCH: usize = 1024;

pub(super) fn for_each_batch(
    path: &Path,
    each: &mut dyn FnMut(Vec<Span>),
) -> Result<Batches, TraceFileError> {
    let mut reader = super::json_reader(path)?;
    let mut converter = Converter::default();
    let mut handed = 0u64;
    let mut pending: Vec<Span> = Vec::new();
    let outcome = {
        let mut take = |item: Item| {
            match item {
                Item::Span(span) => {
                    pending.push(converter.span(&span));
                    if pending.len() < BATCH {
                        return;
                    }
                }
                Item::Trace(spans) => pending.extend(spans.iter().map(|s| converter.span(s))),
            }
            handed += pending.len() as u64;
            each(std::mem::take(&mut pending));
        };
        Deserializer::deserialize_seq(
            &mut reader,
            EachElement {
                each: &mut take,
                expecting: "an array of Zipkin spans, or of traces (arrays of spans)",
            },
        )
        .and_then(|()| reader.end())
    };
    // What was read before an error or a cut is handed over too; an error still fails the
    // whole read, a cut does not.
    if !pending.is_empty() {
        handed += pending.len() as u64;
        each(pending);
    }
    super::document_outcome(path, TraceFormat::ZipkinJson, outcome, handed)
}

/// One element of the outer array.
enum Item {
    Span(ZipkinSpan),
    Trace(Vec<ZipkinSpan>),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Zipkin span (an object) or a trace (an array of spans)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
        ZipkinSpan::deserialize(MapAccessDeserializer::new(map)).map(Item::Span)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item, A::Error> {
        Vec::<ZipkinSpan>::deserialize(SeqAccessDeserializer::new(seq)).map(Item::Trace)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ZipkinSpan {
    trace_id: HexTraceId,
    id: HexSpanId,
    #[serde(default)]
    parent_id: MaybeSpanId,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    timestamp: Option<Micros>,
    #[serde(default)]
    duration: Option<Micros>,
    #[serde(default)]
    local_endpoint: Option<Endpoint>,
    #[serde(default)]
    remote_endpoint: Option<Endpoint>,
    #[serde(default, deserialize_with = "fields::list")]
    annotations: Vec<Annotation>,
    #[serde(default)]
    tags: Option<OrderedTags>,
    #[serde(default)]
    shared: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint {
    #[serde(default)]
    service_name: Option<String>,
}

#[derive(Deserialize)]
struct Annotation {
    timestamp: Micros,
    #[serde(default)]
    value: String,
}

/// The tags in the order the file has them (a map would shuffle them).
struct OrderedTags(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for OrderedTags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TagsVisitor;
        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = OrderedTags;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`tags`: an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedTags, A::Error> {
                let mut tags = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    tags.push(entry);
                }
                Ok(OrderedTags(tags))
            }
        }
        d.deserialize_map(TagsVisitor)
    }
}

/// Builds spans, sharing one resource per service name across the file.
#[derive(Default)]
struct Converter {
    resources: HashMap<String, (Arc<str>, Arc<Vec<Attribute>>)>,
}

impl Converter {
    fn resource(&mut self, service: &str) -> (Arc<str>, Arc<Vec<Attribute>>) {
        self.resources
            .entry(service.to_owned())
            .or_insert_with(|| {
                let attribute =
                    fields::attribute(fields::SERVICE_NAME, AttrValue::Str(service.to_owned()));
                (Arc::from(service), Arc::new(vec![attribute]))
            })
            .clone()
    }

    fn span(&mut self, span: &ZipkinSpan) -> Span {
        let service = span
            .local_endpoint
            .as_ref()
            .and_then(|e| e.service_name.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(fields::UNKNOWN_SERVICE);
        let (service_name, resource) = self.resource(service);
        let kind = match span.kind.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("SERVER") => SpanKind::Server,
            Some("CLIENT") => SpanKind::Client,
            Some("PRODUCER") => SpanKind::Producer,
            Some("CONSUMER") => SpanKind::Consumer,
            _ => SpanKind::Internal,
        };
        let tags = span
            .tags
            .as_ref()
            .map(|t| t.0.as_slice())
            .unwrap_or_default();
        let mut tags = fields::Tags::new(
            tags.iter()
                .map(|(key, value)| fields::attribute(key, fields::typed_value(None, value)))
                .collect(),
        );
        let status = tags.take_status();
        let scope_name = tags.take_scope();
        let mut attributes = tags.into_attributes();
        let peer = span
            .remote_endpoint
            .as_ref()
            .and_then(|e| e.service_name.as_deref());
        if let Some(peer) = peer.filter(|p| !p.is_empty())
            && !attributes.iter().any(|a| a.key == "peer.service")
        {
            attributes.push(fields::attribute(
                "peer.service",
                AttrValue::Str(peer.to_owned()),
            ));
        }
        let (span_id, parent_span_id) = match (kind, span.shared) {
            (SpanKind::Server, Some(true)) => (own_id(span.id.0), Some(span.id.0)),
            _ => (span.id.0, span.parent_id.0),
        };
        let start = span.timestamp.unwrap_or_default().nanos();
        Span {
            trace_id: span.trace_id.0,
            span_id,
            parent_span_id,
            trace_state: String::new(),
            flags: 0,
            name: span.name.clone().unwrap_or_default(),
            kind,
            start_unix_nano: start,
            end_unix_nano: start.saturating_add(span.duration.unwrap_or_default().nanos()),
            attributes,
            events: span
                .annotations
                .iter()
                .map(|a| Event {
                    name: a.value.clone(),
                    time_unix_nano: a.timestamp.nanos(),
                    attributes: Vec::new(),
                })
                .collect(),
            links: Vec::new(),
            status,
            service_name,
            resource,
            scope_name,
        }
    }
}

/// The id of the server half of a shared span: the shared id with its bits mixed (a fixed
/// permutation, so both passes over a file agree and no two shared ids collide).
fn own_id(shared: SpanId) -> SpanId {
    let mixed = u64::from_be_bytes(shared.0).rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    let mixed = if mixed == 0 { 1 } else { mixed };
    SpanId(mixed.to_be_bytes())
}
