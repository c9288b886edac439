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
}

impl std::ops::Add for ExportStats {
    type Output = ExportStats;
    fn add(self, o: ExportStats) -> ExportStats {
        ExportStats {
            ended: self.ended + o.ended,
            exported: self.exported + o.exported,
            failed: self.failed + o.failed,
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

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.counters.exported.fetch_add(n, Ordering::Relaxed),
            Err(_) => self.counters.failed.fetch_add(n, Ordering::Relaxed),
        };
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

/// Wraps a span processor and counts every span handed to it at `end()`.
#[derive(Debug)]
pub struct CountingProcessor<P> {
    inner: P,
    counters: Arc<ExportCounters>,
}

impl<P> CountingProcessor<P> {
    /// Wraps `inner`, counting into `counters`.
    pub fn new(inner: P, counters: Arc<ExportCounters>) -> Self {
        CountingProcessor { inner, counters }
    }
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx)
    }

    fn on_end(&self, span: SpanData) {
        self.counters.ended.fetch_add(1, Ordering::Relaxed);
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
