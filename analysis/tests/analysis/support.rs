//! Hand-built spans and traces, timed in milliseconds from an arbitrary epoch.

use std::sync::Arc;

use tracelab_trace::{
    AttrValue, Attribute, Link, Span, SpanId, SpanKind, Status, StatusCode, Trace, TraceId,
};

/// The epoch all test times count from: a round second, so timelines are predictable.
pub const EPOCH: u64 = 1_700_000_000_000_000_000;

pub const MS: u64 = 1_000_000;

pub fn span_id(n: u64) -> SpanId {
    SpanId(n.to_be_bytes())
}

pub fn trace_id(n: u64) -> TraceId {
    TraceId(u128::from(n).to_be_bytes())
}

/// A span of trace `trace`, id `id`, under `parent`, from `start_ms` to `end_ms`.
pub fn span(
    trace: u64,
    id: u64,
    parent: Option<u64>,
    service: &str,
    name: &str,
    start_ms: u64,
    end_ms: u64,
) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id),
        trace_state: String::new(),
        flags: 1,
        name: name.to_string(),
        kind: SpanKind::Internal,
        start_unix_nano: EPOCH + start_ms * MS,
        end_unix_nano: EPOCH + end_ms * MS,
        attributes: vec![Attribute {
            key: "test.id".into(),
            value: AttrValue::Int(id as i64),
        }],
        events: vec![],
        links: vec![],
        status: Status::default(),
        service_name: Arc::from(service),
        resource: Arc::new(vec![]),
        scope_name: String::new(),
    }
}

pub fn kind(mut s: Span, kind: SpanKind) -> Span {
    s.kind = kind;
    s
}

/// `s` re-timed in microseconds from [`EPOCH`].
pub fn micros(mut s: Span, start_us: u64, end_us: u64) -> Span {
    s.start_unix_nano = EPOCH + start_us * 1_000;
    s.end_unix_nano = EPOCH + end_us * 1_000;
    s
}

/// `s` with a link to span `to` of its own trace, with `attributes` as string pairs.
pub fn linked(mut s: Span, to: u64, attributes: &[(&str, &str)]) -> Span {
    s.links.push(Link {
        trace_id: s.trace_id,
        span_id: span_id(to),
        trace_state: String::new(),
        attributes: attributes
            .iter()
            .map(|(k, v)| Attribute {
                key: (*k).into(),
                value: AttrValue::Str((*v).into()),
            })
            .collect(),
    });
    s
}

pub fn failed(mut s: Span, message: &str) -> Span {
    s.status = Status {
        code: StatusCode::Error,
        message: message.into(),
    };
    s
}

pub fn trace(spans: Vec<Span>) -> Trace {
    let id = spans.first().map(|s| s.trace_id).unwrap_or_default();
    Trace::new(id, spans)
}

/// The index of span `id` in `trace.spans`.
pub fn idx(trace: &Trace, id: u64) -> usize {
    trace
        .spans
        .iter()
        .position(|s| s.span_id == span_id(id))
        .expect("span in trace")
}
