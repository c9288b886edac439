//! Jaeger's JSON: what the UI's "Download JSON" saves and the query service's `/api/traces`
//! answers, `{"data": [{"traceID", "spans": [...], "processes": {...}}], ...}`, read one trace
//! (one element of `data`) at a time.
//!
//! The mapping follows the one the OpenTelemetry Collector's Jaeger receiver applies:
//! - the parent is the first `CHILD_OF` reference into the same trace, or failing that the
//!   first `FOLLOWS_FROM` one (OpenTracing's "follows from" is still a parent); every other
//!   reference becomes a link with `opentracing.ref_type` (`child_of` or `follows_from`), and
//!   a `FOLLOWS_FROM` parent is also linked that way, so the analyses know the parent did not
//!   wait for it;
//! - `span.kind`, `otel.status_code` / `otel.status_description` / `error`, and
//!   `otel.scope.name` (or `otel.library.name`) tags become the span's kind, status and scope;
//!   the other tags are its attributes, typed by their `type`;
//! - the process's `serviceName` and tags are the resource; logs are events, named by their
//!   `event` field;
//! - times are microseconds; only the sampled bit of `flags` has a W3C meaning.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use tracelab_trace::{Attribute, Event, Link, Span, SpanId, SpanKind, TraceId};

use super::fields::{self, EachElement, HexSpanId, HexTraceId, MaybeSpanId, Micros};
use super::{Batches, TraceFileError, TraceFormat};

pub(super) fn for_each_batch(
    path: &Path,
    each: &mut dyn FnMut(Vec<Span>),
) -> Result<Batches, TraceFileError> {
    let mut reader = super::json_reader(path)?;
    let mut handed = 0u64;
    let mut hand = |spans: Vec<Span>| {
        handed += spans.len() as u64;
        each(spans);
    };
    let outcome = Document { each: &mut hand }
        .deserialize(&mut reader)
        .and_then(|()| reader.end());
    super::document_outcome(path, TraceFormat::JaegerJson, outcome, handed)
}

/// The outer object; only `data` is read.
struct Document<'a> {
    each: &'a mut dyn FnMut(Vec<Span>),
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Jaeger document: {\"data\": [traces]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "data" {
                map.next_value_seed(EachElement {
                    each: &mut |trace: JaegerTrace| (self.each)(trace.into_spans()),
                    expecting: "`data`: an array of traces",
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct JaegerTrace {
    #[serde(default, deserialize_with = "fields::list")]
    spans: Vec<JaegerSpan>,
    #[serde(default, deserialize_with = "processes")]
    processes: HashMap<String, Process>,
}

fn processes<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<String, Process>, D::Error> {
    Ok(Option::<HashMap<String, Process>>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JaegerSpan {
    #[serde(rename = "traceID")]
    trace_id: HexTraceId,
    #[serde(rename = "spanID")]
    span_id: HexSpanId,
    /// Written by some older clients instead of a reference.
    #[serde(rename = "parentSpanID", default)]
    parent_span_id: MaybeSpanId,
    #[serde(default)]
    flags: Option<u32>,
    #[serde(default)]
    operation_name: String,
    #[serde(default, deserialize_with = "fields::list")]
    references: Vec<Reference>,
    start_time: Micros,
    #[serde(default)]
    duration: Micros,
    #[serde(default, deserialize_with = "fields::list")]
    tags: Vec<Tag>,
    #[serde(default, deserialize_with = "fields::list")]
    logs: Vec<Log>,
    #[serde(rename = "processID", default)]
    process_id: Option<String>,
    /// Some exports embed the process in each span instead of `processes`.
    #[serde(default)]
    process: Option<Process>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    #[serde(default)]
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: HexTraceId,
    #[serde(rename = "spanID")]
    span_id: HexSpanId,
}

#[derive(Deserialize)]
struct Tag {
    key: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize)]
struct Log {
    timestamp: Micros,
    #[serde(default, deserialize_with = "fields::list")]
    fields: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    #[serde(default)]
    service_name: String,
    #[serde(default, deserialize_with = "fields::list")]
    tags: Vec<Tag>,
}

/// A process as the spans share it: service name and resource, built once per trace.
type Resource = (Arc<str>, Arc<Vec<Attribute>>);

fn resource(process: &Process) -> Resource {
    let service = match process.service_name.trim() {
        "" => fields::UNKNOWN_SERVICE,
        name => name,
    };
    let mut attributes = vec![fields::attribute(
        fields::SERVICE_NAME,
        fields::AttrValue::Str(service.to_owned()),
    )];
    attributes.extend(process.tags.iter().map(tag));
    (Arc::from(service), Arc::new(attributes))
}

fn tag(tag: &Tag) -> Attribute {
    fields::attribute(
        &tag.key,
        fields::typed_value(tag.kind.as_deref(), &tag.value),
    )
}

impl JaegerTrace {
    fn into_spans(self) -> Vec<Span> {
        let resources: HashMap<&str, Resource> = self
            .processes
            .iter()
            .map(|(id, process)| (id.as_str(), resource(process)))
            .collect();
        let unknown = resource(&Process {
            service_name: String::new(),
            tags: Vec::new(),
        });
        self.spans
            .iter()
            .map(|span| {
                let shared = match (&span.process, span.process_id.as_deref()) {
                    (Some(process), _) => resource(process),
                    (None, Some(id)) => resources
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| unknown.clone()),
                    (None, None) => unknown.clone(),
                };
                span.to_span(shared)
            })
            .collect()
    }
}

impl JaegerSpan {
    fn to_span(&self, (service_name, resource): Resource) -> Span {
        let trace_id = self.trace_id.0;
        let (parent, links) = parent_and_links(trace_id, &self.references);
        let parent = parent.or(self.parent_span_id.0);
        let mut tags = fields::Tags::new(self.tags.iter().map(tag).collect());
        let kind = match tags.take_str("span.kind").as_deref() {
            Some("server") => SpanKind::Server,
            Some("client") => SpanKind::Client,
            Some("producer") => SpanKind::Producer,
            Some("consumer") => SpanKind::Consumer,
            Some("internal") => SpanKind::Internal,
            _ => SpanKind::Unspecified,
        };
        let status = tags.take_status();
        let scope_name = tags.take_scope();
        let start = self.start_time.nanos();
        Span {
            trace_id,
            span_id: self.span_id.0,
            parent_span_id: parent,
            trace_state: String::new(),
            flags: self.flags.unwrap_or(0) & 1,
            name: self.operation_name.clone(),
            kind,
            start_unix_nano: start,
            end_unix_nano: start.saturating_add(self.duration.nanos()),
            attributes: tags.into_attributes(),
            events: self.logs.iter().map(event).collect(),
            links,
            status,
            service_name,
            resource,
            scope_name,
        }
    }
}

/// The parent among the references, and the others as links (see the module documentation).
fn parent_and_links(trace_id: TraceId, references: &[Reference]) -> (Option<SpanId>, Vec<Link>) {
    let same_trace = |kind: &str| {
        references
            .iter()
            .position(|r| r.trace_id.0 == trace_id && r.ref_type.eq_ignore_ascii_case(kind))
    };
    let parent = same_trace("CHILD_OF").or_else(|| same_trace("FOLLOWS_FROM"));
    let links = references
        .iter()
        .enumerate()
        .filter(|(i, r)| Some(*i) != parent || r.ref_type.eq_ignore_ascii_case("FOLLOWS_FROM"))
        .map(|(_, r)| Link {
            trace_id: r.trace_id.0,
            span_id: r.span_id.0,
            trace_state: String::new(),
            attributes: vec![fields::attribute(
                "opentracing.ref_type",
                fields::AttrValue::Str(r.ref_type.to_ascii_lowercase()),
            )],
        })
        .collect();
    (parent.map(|i| references[i].span_id.0), links)
}

fn event(log: &Log) -> Event {
    let mut name = "log".to_owned();
    let mut attributes = Vec::with_capacity(log.fields.len());
    for field in &log.fields {
        match (field.key.as_str(), field.value.as_str()) {
            ("event", Some(text)) => name = text.to_owned(),
            _ => attributes.push(tag(field)),
        }
    }
    Event {
        name,
        time_unix_nano: log.timestamp.nanos(),
        attributes,
    }
}
