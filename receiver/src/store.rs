//! The trace store: the spans the receiver accepted, with counters.
//!
//! By default it keeps every span in memory, which tests and small tools want. In streaming
//! mode ([`TraceStore::streaming`]) it assembles spans into traces and hands each finished
//! trace to a consumer instead (the `assembly` module), so memory stays bounded however long
//! a run lasts; `tracelab run` uses that, with the spans themselves kept on disk by the sink.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use serde::Serialize;
use tokio::sync::watch;
use tracelab_trace::{Span, Trace, group_into_traces};

use crate::assembly::{Assembly, AssemblyOptions};
use crate::sink::SpanSink;
use crate::{convert, otlp_json};

/// Holds every accepted span; shared (`Arc`) between the servers and whoever analyses the run.
///
/// Spans live in one `Vec` behind a mutex: an export appends a whole batch under one short
/// lock, which is far cheaper than the per-span work of decoding it, and readers take a
/// snapshot. Counters are atomics so that stats never wait for that lock.
pub struct TraceStore {
    /// Every span, unless streaming.
    spans: Mutex<Vec<Span>>,
    /// The open traces, when streaming.
    assembly: Option<Arc<Assembly>>,
    /// Publishes the span count so that [`TraceStore::wait_for_spans`] wakes when it grows,
    /// instead of polling.
    span_count: watch::Sender<u64>,
    counters: Counters,
    sink: Option<SpanSink>,
    /// Copies of every accepted request for the `--forward` endpoints, once set.
    forwarder: std::sync::OnceLock<Arc<crate::forward::Forwarder>>,
    /// Told where each line the sink wrote is and which spans it holds, once set.
    line_observer: std::sync::OnceLock<LineObserver>,
    /// Spans stored per `service.instance.id` (resources without one are not counted): which
    /// producer's spans arrived, whatever its exporter concluded about the request.
    by_instance: Mutex<HashMap<String, u64>>,
}

/// The resource attribute that tells one producing process (and service) from another.
const INSTANCE_ID: &str = "service.instance.id";

/// The `service.instance.id` among resource attributes, when it is a string.
fn instance_id(resource: &[tracelab_trace::Attribute]) -> Option<&str> {
    resource
        .iter()
        .find(|a| a.key == INSTANCE_ID)
        .and_then(|a| a.value.as_str())
}

/// Called with the offset and length of each line the sink appended and the spans in it.
pub type LineObserver = Box<dyn Fn(u64, u32, &[Span]) + Send + Sync>;

#[derive(Default)]
struct Counters {
    requests_accepted: AtomicU64,
    rejected_malformed: AtomicU64,
    rejected_too_large: AtomicU64,
    rejected_media_type: AtomicU64,
    rejected_busy: AtomicU64,
    spans_rejected: AtomicU64,
    bytes_received: AtomicU64,
}

/// How whole the stored traces are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Completeness {
    /// Distinct trace ids.
    pub traces: u64,
    /// Traces with one root and every parent present.
    pub complete: u64,
    /// All other traces (orphans, several roots, duplicated span ids).
    pub broken: u64,
    /// Spans stored.
    pub spans: u64,
}

/// What the receiver has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ReceiverStats {
    /// Export requests accepted (fully or partially), over both protocols and direct ingest.
    pub requests_accepted: u64,
    /// Requests refused because the body could not be decoded (HTTP 400).
    pub requests_rejected_malformed: u64,
    /// Requests refused because the body was over the size limit (HTTP 413).
    pub requests_rejected_too_large: u64,
    /// Requests refused because of their content type (HTTP 415).
    pub requests_rejected_media_type: u64,
    /// Requests refused, to be retried, because the memory budget for bodies being decoded
    /// was spent (HTTP 429 / gRPC `RESOURCE_EXHAUSTED` with retry information).
    pub requests_rejected_busy: u64,
    /// Spans stored.
    pub spans_accepted: u64,
    /// Spans refused inside accepted requests because of unusable ids (OTLP partial success).
    pub spans_rejected: u64,
    /// Encoded size of the accepted requests (after decompression), in bytes.
    pub bytes_received: u64,
    /// Lines the sink wrote (0 without a sink).
    pub sink_lines_written: u64,
    /// Sink writes that failed; the spans are still in the store.
    pub sink_write_errors: u64,
}

impl ReceiverStats {
    /// All refused requests, whatever the reason.
    pub fn requests_rejected(&self) -> u64 {
        self.requests_rejected_malformed
            + self.requests_rejected_too_large
            + self.requests_rejected_media_type
            + self.requests_rejected_busy
    }
}

/// Why a request was refused before it reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    Malformed,
    TooLarge,
    MediaType,
    Busy,
}

impl Default for TraceStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceStore {
    /// An empty store without a sink.
    pub fn new() -> Self {
        TraceStore {
            spans: Mutex::new(Vec::new()),
            assembly: None,
            span_count: watch::Sender::new(0),
            counters: Counters::default(),
            sink: None,
            forwarder: std::sync::OnceLock::new(),
            line_observer: std::sync::OnceLock::new(),
            by_instance: Mutex::new(HashMap::new()),
        }
    }

    /// An empty store that also appends every accepted request to `sink`.
    pub fn with_sink(sink: SpanSink) -> Self {
        TraceStore {
            sink: Some(sink),
            ..Self::new()
        }
    }

    /// A store that keeps no span itself: it assembles spans into traces and hands each
    /// finished trace to `consumer` (on a thread of its own, one trace at a time), then forgets
    /// it. [`TraceStore::finish_traces`] hands over the traces still open, at the end of a run.
    /// Every accepted request is still appended to `sink`, if given.
    pub fn streaming(
        sink: Option<SpanSink>,
        options: AssemblyOptions,
        consumer: impl FnMut(Trace) + Send + 'static,
    ) -> Self {
        TraceStore {
            sink,
            assembly: Some(Assembly::start(options, Box::new(consumer))),
            ..Self::new()
        }
    }

    /// Sends a copy of every request accepted from now on to `forwarder`'s endpoints. Set once;
    /// a second call is ignored.
    pub fn forward_to(&self, forwarder: Arc<crate::forward::Forwarder>) {
        let _ = self.forwarder.set(forwarder);
    }

    /// Tells `observer`, from now on, where each line the sink appends is and which spans it
    /// holds (an index of the span file kept while it is written). Set once; a second call
    /// is ignored. Without a sink it is never called.
    pub fn observe_lines(&self, observer: LineObserver) {
        let _ = self.line_observer.set(observer);
    }

    /// When streaming: from now on, keeps each trace open until `delivered` says its
    /// producers have delivered every span that ended before the trace's last arrival, so
    /// that a backlog in their queues does not split it. Set once; a second call is ignored.
    /// A no-op otherwise.
    pub fn wait_for_deliveries(&self, delivered: crate::assembly::DeliveredUpTo) {
        if let Some(assembly) = &self.assembly {
            assembly.deliveries(delivered);
        }
    }

    /// When streaming: hands every open trace to the consumer now, and returns once it has
    /// consumed them (and any trace the timer was handing over). A no-op otherwise.
    pub fn finish_traces(&self) {
        if let Some(assembly) = &self.assembly {
            assembly.finish_all();
        }
    }

    /// When streaming: traces handed to the consumer so far, and traces still open.
    pub fn assembled_traces(&self) -> Option<(u64, u64)> {
        self.assembly
            .as_ref()
            .map(|a| (a.finished_traces(), a.open_traces()))
    }

    /// Stores spans as one accepted request (written to the sink as one line).
    pub fn ingest(&self, spans: Vec<Span>) {
        self.tally(spans.iter().map(|s| (instance_id(&s.resource), 1)));
        if let Some(sink) = &self.sink
            && let Some((offset, len)) = sink.append_line(&otlp_json::encode_request_line(&spans))
            && let Some(observe) = self.line_observer.get()
        {
            observe(offset, len, &spans);
        }
        self.counters
            .requests_accepted
            .fetch_add(1, Ordering::Relaxed);
        self.push(spans);
    }

    /// Stores a decoded export request, the path both servers take. Returns the partial
    /// success to report when some spans had unusable ids.
    pub(crate) fn ingest_request(
        &self,
        mut request: ExportTraceServiceRequest,
        encoded_len: usize,
    ) -> Option<ExportTracePartialSuccess> {
        let rejected = convert::drop_invalid_spans(&mut request);
        self.tally(request.resource_spans.iter().map(|rs| {
            let id = rs.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == INSTANCE_ID)
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        any_value::Value::StringValue(s) => Some(s.as_str()),
                        _ => None,
                    })
            });
            let spans = rs.scope_spans.iter().map(|ss| ss.spans.len() as u64).sum();
            (id, spans)
        }));
        if let Some(forwarder) = self.forwarder.get() {
            forwarder.offer(&request);
        }
        let line = self
            .sink
            .as_ref()
            .and_then(|sink| sink.append_request(&request));
        let spans = convert::request_to_spans(request);
        if let (Some((offset, len)), Some(observe)) = (line, self.line_observer.get()) {
            observe(offset, len, &spans);
        }
        let c = &self.counters;
        c.requests_accepted.fetch_add(1, Ordering::Relaxed);
        c.bytes_received
            .fetch_add(encoded_len as u64, Ordering::Relaxed);
        self.push(spans);
        if rejected.spans == 0 {
            return None;
        }
        c.spans_rejected
            .fetch_add(rejected.spans, Ordering::Relaxed);
        Some(ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected.spans).unwrap_or(i64::MAX),
            error_message: rejected.first_reason.unwrap_or_default(),
        })
    }

    /// Adds spans to the per-instance tally.
    fn tally<'a>(&self, counts: impl Iterator<Item = (Option<&'a str>, u64)>) {
        let mut tally = self.by_instance.lock().unwrap_or_else(|p| p.into_inner());
        for (id, n) in counts {
            if let Some(id) = id
                && n > 0
            {
                match tally.get_mut(id) {
                    Some(count) => *count += n,
                    None => {
                        tally.insert(id.to_owned(), n);
                    }
                }
            }
        }
    }

    /// Spans stored so far whose resource's `service.instance.id` is one of `instance_ids`.
    pub fn spans_from_instances<'a>(&self, instance_ids: impl IntoIterator<Item = &'a str>) -> u64 {
        let tally = self.by_instance.lock().unwrap_or_else(|p| p.into_inner());
        instance_ids
            .into_iter()
            .map(|id| tally.get(id).copied().unwrap_or(0))
            .sum()
    }

    pub(crate) fn record_rejection(&self, why: Rejection) {
        let counter = match why {
            Rejection::Malformed => &self.counters.rejected_malformed,
            Rejection::TooLarge => &self.counters.rejected_too_large,
            Rejection::MediaType => &self.counters.rejected_media_type,
            Rejection::Busy => &self.counters.rejected_busy,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn push(&self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        let n = spans.len() as u64;
        match &self.assembly {
            Some(assembly) => assembly.add(spans),
            None => self.lock().extend(spans),
        }
        // An increment under the channel's own lock: the count readers see never goes
        // backwards, and it counts a batch only once the batch is stored.
        self.span_count.send_modify(|count| *count += n);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Span>> {
        // Appending cannot leave the Vec half-built, so a poisoned lock is still sound.
        self.spans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spans stored so far.
    pub fn span_count(&self) -> u64 {
        *self.span_count.borrow()
    }

    /// A copy of every stored span, in arrival order. When streaming: of the spans of the
    /// traces still open.
    pub fn spans(&self) -> Vec<Span> {
        match &self.assembly {
            Some(assembly) => assembly.open_spans(),
            None => self.lock().clone(),
        }
    }

    /// The stored spans (see [`TraceStore::spans`]) grouped into traces (see [`tracelab_trace::group_into_traces`]).
    pub fn traces(&self) -> Vec<Trace> {
        group_into_traces(self.spans())
    }

    /// How many traces are whole and how many broken.
    pub fn health(&self) -> Completeness {
        let traces = self.traces();
        let complete = traces.iter().filter(|t| t.shape().is_complete()).count() as u64;
        let spans = traces.iter().map(|t| t.spans.len() as u64).sum();
        Completeness {
            traces: traces.len() as u64,
            complete,
            broken: traces.len() as u64 - complete,
            spans,
        }
    }

    /// Waits until at least `at_least` spans are stored; false once `timeout` passes with no
    /// span arriving. Spans that keep arriving, however slowly (a pipeline that only gets the
    /// cycles a busy machine leaves over), are waited for: only a stall gives up.
    pub async fn wait_for_spans(&self, at_least: u64, timeout: Duration) -> bool {
        let mut count = self.span_count.subscribe();
        loop {
            let seen = *count.borrow_and_update();
            if seen >= at_least {
                return true;
            }
            let moved = count.wait_for(|n| *n >= at_least || *n > seen);
            // The sender lives as long as `self`, so `wait_for` can only end by a change.
            if !matches!(tokio::time::timeout(timeout, moved).await, Ok(Ok(_))) {
                return false;
            }
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> ReceiverStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReceiverStats {
            requests_accepted: load(&c.requests_accepted),
            requests_rejected_malformed: load(&c.rejected_malformed),
            requests_rejected_too_large: load(&c.rejected_too_large),
            requests_rejected_media_type: load(&c.rejected_media_type),
            requests_rejected_busy: load(&c.rejected_busy),
            spans_accepted: self.span_count(),
            spans_rejected: load(&c.spans_rejected),
            bytes_received: load(&c.bytes_received),
            sink_lines_written: self.sink.as_ref().map_or(0, SpanSink::lines_written),
            sink_write_errors: self.sink.as_ref().map_or(0, SpanSink::write_errors),
        }
    }

    /// Writes the sink's buffered lines to its file (a no-op without a sink).
    pub fn flush_sink(&self) -> std::io::Result<()> {
        match &self.sink {
            Some(sink) => sink.flush(),
            None => Ok(()),
        }
    }

    /// The sink, if any.
    pub fn sink(&self) -> Option<&SpanSink> {
        self.sink.as_ref()
    }
}

impl std::fmt::Debug for TraceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceStore")
            .field("stats", &self.stats())
            .field("sink", &self.sink)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use tracelab_trace::{SpanId, SpanKind, TraceId};

    use super::*;

    /// A span of trace `trace`, id `id`, under `parent` (the crate's tests share it).
    pub(crate) fn span(trace: u8, id: u8, parent: Option<u8>) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            flags: 1,
            name: format!("op{id}"),
            kind: SpanKind::Server,
            start_unix_nano: u64::from(id),
            end_unix_nano: u64::from(id) + 10,
            service_name: Arc::from("svc"),
            ..Span::default()
        }
    }

    #[test]
    fn health_counts_complete_and_broken_traces() {
        let store = TraceStore::new();
        store.ingest(vec![
            span(1, 1, None),
            span(1, 2, Some(1)),
            span(1, 3, Some(2)),
        ]);
        store.ingest(vec![span(2, 1, None), span(2, 2, Some(7))]);
        assert_eq!(
            store.health(),
            Completeness {
                traces: 2,
                complete: 1,
                broken: 1,
                spans: 5
            }
        );
        let stats = store.stats();
        assert_eq!((stats.requests_accepted, stats.spans_accepted), (2, 5));
    }

    #[tokio::test]
    async fn wait_for_spans_wakes_on_ingest_and_times_out_otherwise() {
        let store = Arc::new(TraceStore::new());
        assert!(!store.wait_for_spans(1, Duration::from_millis(50)).await);
        let writer = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.ingest(vec![span(1, 1, None), span(1, 2, Some(1))]);
        });
        assert!(store.wait_for_spans(2, Duration::from_secs(5)).await);
        assert!(store.wait_for_spans(0, Duration::ZERO).await);
        assert!(!store.wait_for_spans(3, Duration::from_millis(30)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_spans_waits_while_spans_keep_arriving() {
        let store = Arc::new(TraceStore::new());
        let writer = Arc::clone(&store);
        tokio::spawn(async move {
            for n in 1..=6 {
                tokio::time::sleep(Duration::from_millis(40)).await;
                writer.ingest(vec![span(n, 1, None)]);
            }
        });
        let started = tokio::time::Instant::now();
        // 240 ms in all, longer than the timeout, but never 100 ms without a span.
        assert!(store.wait_for_spans(6, Duration::from_millis(100)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(240));
        // Then nothing more comes: one timeout later it gives up.
        assert!(!store.wait_for_spans(7, Duration::from_millis(100)).await);
        assert_eq!(started.elapsed(), Duration::from_millis(340));
    }

    /// A span of trace `trace` from the process whose `service.instance.id` is `instance`.
    fn span_from(trace: u8, id: u8, instance: &str) -> Span {
        Span {
            resource: Arc::new(vec![tracelab_trace::Attribute {
                key: INSTANCE_ID.to_owned(),
                value: tracelab_trace::AttrValue::Str(instance.to_owned()),
            }]),
            ..span(trace, id, None)
        }
    }

    #[test]
    fn stored_spans_are_tallied_per_producing_instance() {
        let store = TraceStore::new();
        // Over OTLP: two resources in one request, and one span with an unusable id, which
        // is refused and not counted.
        let mut spans = vec![span_from(1, 1, "a-1"), span_from(2, 1, "b-1")];
        spans.push(span_from(3, 1, "b-1"));
        let mut request = convert::spans_to_request(&spans);
        request.resource_spans[1].scope_spans[0].spans[1].span_id = vec![0; 8];
        assert!(store.ingest_request(request, 0).is_some());
        // Ingested directly, and a span with no instance id at all.
        store.ingest(vec![span_from(4, 1, "a-1"), span(5, 1, None)]);
        assert_eq!(store.spans_from_instances(["a-1"]), 2);
        assert_eq!(store.spans_from_instances(["b-1"]), 1);
        assert_eq!(store.spans_from_instances(["a-1", "b-1", "c-1"]), 3);
        assert_eq!(store.span_count(), 4);
    }
}
