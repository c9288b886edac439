//! Counting what happens to every span between `end()` and the backend.
//!
//! The SDK's batch processor drops spans when its queue is full and only logs the fact once. A
//! lab that reports "100 % complete traces" must know exactly how many spans it produced, how
//! many reached the exporter and how many were lost, so both ends of the pipeline are wrapped.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// Shared counters for one tracer provider.
#[derive(Debug, Default)]
pub struct ExportCounters {
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    queue_full: AtomicU64,
}

/// A snapshot of [`ExportCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportStats {
    /// Sampled spans that ended and were handed to the batch queue.
    pub ended: u64,
    /// Spans the backend acknowledged.
    pub exported: u64,
    /// Spans in export requests that failed (backend down, timeout, rejected).
    pub failed: u64,
    /// Spans dropped at `end()` because the queue already held its capacity.
    pub queue_full: u64,
}

impl ExportStats {
    /// Spans that never reached the exporter: dropped by the full queue, or still queued.
    /// Exact once the provider has been shut down.
    pub fn dropped(&self) -> u64 {
        self.ended.saturating_sub(self.exported + self.failed)
    }

    /// Spans lost for any reason (dropped in the queue or in a failed export).
    pub fn lost(&self) -> u64 {
        self.ended.saturating_sub(self.exported)
    }

    /// Spans queued now: ended, neither dropped nor out of an export yet (those of an export
    /// in progress included).
    pub fn queued(&self) -> u64 {
        self.ended
            .saturating_sub(self.exported + self.failed + self.queue_full)
    }
}

impl std::ops::Add for ExportStats {
    type Output = ExportStats;
    fn add(self, o: ExportStats) -> ExportStats {
        ExportStats {
            ended: self.ended + o.ended,
            exported: self.exported + o.exported,
            failed: self.failed + o.failed,
            queue_full: self.queue_full + o.queue_full,
        }
    }
}

impl std::iter::Sum for ExportStats {
    fn sum<I: Iterator<Item = ExportStats>>(iter: I) -> ExportStats {
        iter.fold(ExportStats::default(), |a, b| a + b)
    }
}

impl ExportCounters {
    /// Reads all counters.
    pub fn snapshot(&self) -> ExportStats {
        ExportStats {
            ended: self.ended.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            queue_full: self.queue_full.load(Ordering::Relaxed),
        }
    }
}

/// Wraps an exporter and counts the spans of successful and failed export calls.
pub struct CountingExporter<E> {
    inner: E,
    counters: Arc<ExportCounters>,
}

impl<E> CountingExporter<E> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: E, counters: Arc<ExportCounters>) -> Self {
        CountingExporter { inner, counters }
    }
}

impl<E: fmt::Debug> fmt::Debug for CountingExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingExporter")
            .field("inner", &self.inner)
            .finish()
    }
}

/// Counts a batch failed unless told it was delivered: the batch processor drops an export
/// future whose own timeout fires first, and those spans failed as surely as a refused export.
struct Outcome<'a> {
    counters: &'a ExportCounters,
    spans: u64,
    delivered: bool,
}

impl Drop for Outcome<'_> {
    fn drop(&mut self) {
        let counter = if self.delivered {
            &self.counters.exported
        } else {
            &self.counters.failed
        };
        counter.fetch_add(self.spans, Ordering::Relaxed);
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut outcome = Outcome {
            counters: &self.counters,
            spans: batch.len() as u64,
            delivered: false,
        };
        let result = self.inner.export(batch).await;
        outcome.delivered = result.is_ok();
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

/// Wraps a span processor, counts every span handed to it at `end()`, and keeps its queue
/// within a capacity.
///
/// The bound is kept here rather than by the SDK's batch queue, which drops a span when full
/// and only logs the first time: dropping here counts each one (`queue_full`), so the spans
/// queued at any moment are known exactly ([`ExportStats::queued`]), which is what tells a
/// lab that its pipeline has fallen behind. The SDK's queue must be larger than `capacity`.
#[derive(Debug)]
pub struct CountingProcessor<P> {
    inner: P,
    counters: Arc<ExportCounters>,
    capacity: u64,
}

impl<P> CountingProcessor<P> {
    /// Wraps `inner`, counting into `counters`, and passing a span on only while fewer than
    /// `capacity` are queued.
    pub fn new(inner: P, counters: Arc<ExportCounters>, capacity: usize) -> Self {
        CountingProcessor {
            inner,
            counters,
            capacity: capacity as u64,
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx)
    }

    fn on_end(&self, span: SpanData) {
        let c = &self.counters;
        let ended = c.ended.fetch_add(1, Ordering::Relaxed) + 1;
        let out = c.exported.load(Ordering::Relaxed)
            + c.failed.load(Ordering::Relaxed)
            + c.queue_full.load(Ordering::Relaxed);
        if ended.saturating_sub(out) > self.capacity {
            c.queue_full.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_sdk::error::OTelSdkError;

    use super::*;
    use crate::coalesce::tests::span;

    /// Answers every export the same way.
    #[derive(Debug)]
    enum Backend {
        Accepts,
        Refuses,
        NeverAnswers,
    }

    impl SpanExporter for Backend {
        async fn export(&self, _: Vec<SpanData>) -> OTelSdkResult {
            match self {
                Backend::Accepts => Ok(()),
                Backend::Refuses => Err(OTelSdkError::InternalFailure("refused".into())),
                Backend::NeverAnswers => std::future::pending().await,
            }
        }
    }

    fn batch(n: u64) -> Vec<SpanData> {
        (0..n).map(span).collect()
    }

    #[tokio::test]
    async fn every_export_is_counted_once_however_it_ends() {
        let counters = Arc::new(ExportCounters::default());
        let accepted = CountingExporter::new(Backend::Accepts, counters.clone());
        assert!(accepted.export(batch(3)).await.is_ok());
        let refused = CountingExporter::new(Backend::Refuses, counters.clone());
        assert!(refused.export(batch(2)).await.is_err());
        // The batch processor's own timeout drops the export future unfinished.
        let hung = CountingExporter::new(Backend::NeverAnswers, counters.clone());
        let export = hung.export(batch(4));
        let timed_out = tokio::time::timeout(Duration::from_millis(10), export).await;
        assert!(timed_out.is_err());
        let stats = counters.snapshot();
        assert_eq!((stats.exported, stats.failed), (3, 6), "{stats:?}");
    }

    /// Keeps what it is given, like a batch queue that is never drained on its own.
    #[derive(Debug, Default)]
    struct Queue(std::sync::Mutex<Vec<SpanData>>);

    impl SpanProcessor for Queue {
        fn on_start(&self, _: &mut Span, _: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_and_takes_spans_again_once_exported() {
        let counters = Arc::new(ExportCounters::default());
        let processor = CountingProcessor::new(Queue::default(), counters.clone(), 3);
        for i in 0..5 {
            processor.on_end(span(i));
        }
        let stats = counters.snapshot();
        assert_eq!(processor.inner.0.lock().unwrap().len(), 3);
        assert_eq!((stats.ended, stats.queue_full, stats.queued()), (5, 2, 3));
        assert_eq!(stats.dropped(), 5, "queued or dropped: not delivered yet");
        // Two of the queued spans are exported, one export fails: the queue is empty.
        let queued = std::mem::take(&mut *processor.inner.0.lock().unwrap());
        let exporter = CountingExporter::new(Backend::Accepts, counters.clone());
        assert!(exporter.export(queued[..2].to_vec()).await.is_ok());
        let refusing = CountingExporter::new(Backend::Refuses, counters.clone());
        assert!(refusing.export(queued[2..].to_vec()).await.is_err());
        assert_eq!(counters.snapshot().queued(), 0);
        processor.on_end(span(5));
        let stats = counters.snapshot();
        assert_eq!(processor.inner.0.lock().unwrap().len(), 1, "room again");
        assert_eq!((stats.ended, stats.queue_full, stats.queued()), (6, 2, 1));
        assert_eq!(
            stats.lost(),
            4,
            "the two dropped, the one refused, the one queued"
        );
    }
}
