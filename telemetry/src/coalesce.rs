//! Hands ended spans to the batch processor in bursts rather than one at a time.
//!
//! The SDK's async-runtime batch processor (the one whose exporters may use the tokio reactor
//! that the reqwest and tonic clients need) sends every ended span to its task over a channel.
//! Whenever that task is idle, which in a lab between batches is almost always, the send wakes
//! it: a cross-thread wake-up, a futex call on each side, per span. On the quickstart at 500
//! requests/s that was about one wake-up per span, and a quarter of the lab's CPU went to the
//! span pipeline's threads (`bench/lab-cpu.py`; docs/performance.md §10). Here ended spans
//! gather under a lock and go on to the processor together, every [`INTERVAL`] or as soon as
//! a batch's worth has gathered, so its task wakes once per burst. A span is held at most
//! [`INTERVAL`] longer than before; flush and shutdown hand everything held over first, so no
//! span is lost to the buffer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// How long an ended span may wait here before it is handed over.
pub const INTERVAL: Duration = Duration::from_millis(50);

/// Wraps a span processor, handing it ended spans in bursts.
#[derive(Debug)]
pub struct CoalescingProcessor<P> {
    shared: Arc<Shared<P>>,
}

#[derive(Debug)]
struct Shared<P> {
    held: Mutex<Vec<SpanData>>,
    /// Read-locked for every call but `set_resource` (which the SDK makes once, at start), so
    /// starting spans never waits for a burst being handed over.
    next: RwLock<P>,
    /// Spans that are handed over at once, without waiting for the interval.
    burst: usize,
    /// Set at shutdown: the ticker stops, and spans ending later go straight through.
    closed: AtomicBool,
}

/// Locks `mutex`; a panic elsewhere cannot leave a span list or a processor half-changed in a
/// way that matters here, so a poisoned lock is still used.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next processor, for a call that needs only `&self` (as [`lock`], poison is ignored).
fn next<P>(shared: &Shared<P>) -> RwLockReadGuard<'_, P> {
    shared.next.read().unwrap_or_else(|p| p.into_inner())
}

impl<P: SpanProcessor> Shared<P> {
    /// Hands every held span to the next processor.
    fn hand_over(&self) {
        let spans = std::mem::take(&mut *lock(&self.held));
        if spans.is_empty() {
            return;
        }
        let next = next(self);
        for span in spans {
            next.on_end(span);
        }
    }
}

impl<P: SpanProcessor + 'static> CoalescingProcessor<P> {
    /// Wraps `next`, handing it spans every [`INTERVAL`] or `burst` at a time. The interval's
    /// ticker runs on the current tokio runtime; outside one, every span goes straight through.
    pub fn new(next: P, burst: usize) -> Self {
        let runtime = tokio::runtime::Handle::try_current().ok();
        let shared = Arc::new(Shared {
            held: Mutex::new(Vec::new()),
            next: RwLock::new(next),
            burst: if runtime.is_some() { burst.max(1) } else { 1 },
            closed: AtomicBool::new(false),
        });
        if let Some(runtime) = runtime {
            let ticking = shared.clone();
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(INTERVAL);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !ticking.closed.load(Ordering::Acquire) {
                    ticks.tick().await;
                    ticking.hand_over();
                }
            });
        }
        CoalescingProcessor { shared }
    }
}

impl<P: SpanProcessor> SpanProcessor for CoalescingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        next(&self.shared).on_start(span, cx)
    }

    fn on_end(&self, span: SpanData) {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            next(shared).on_end(span);
            return;
        }
        let full = {
            let mut held = lock(&shared.held);
            held.push(span);
            held.len() >= shared.burst
        };
        if full {
            shared.hand_over();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.shared.hand_over();
        next(&self.shared).force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.hand_over();
        next(&self.shared).shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.shared
            .next
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set_resource(resource)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicUsize;

    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
    use opentelemetry::{InstrumentationScope, trace::TraceState};

    use super::*;

    /// Counts the spans it is handed.
    #[derive(Debug, Default)]
    struct Tally {
        ended: Arc<AtomicUsize>,
        flushed: Arc<AtomicUsize>,
    }

    impl SpanProcessor for Tally {
        fn on_start(&self, _: &mut Span, _: &Context) {}
        fn on_end(&self, _: SpanData) {
            self.ended.fetch_add(1, Ordering::SeqCst);
        }
        fn force_flush(&self) -> OTelSdkResult {
            self.flushed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    /// A sampled span numbered `n` (the crate's tests share it).
    pub(crate) fn span(n: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(u128::from(n) + 1),
                SpanId::from(n + 1),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("t").build(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn spans_go_on_in_bursts_after_the_interval_and_at_flush() {
        let tally = Tally::default();
        let (ended, flushed) = (tally.ended.clone(), tally.flushed.clone());
        let processor = CoalescingProcessor::new(tally, 4);
        for n in 0..3 {
            processor.on_end(span(n));
        }
        assert_eq!(
            ended.load(Ordering::SeqCst),
            0,
            "held until a burst or the interval"
        );
        processor.on_end(span(3));
        assert_eq!(ended.load(Ordering::SeqCst), 4, "a full burst goes at once");
        processor.on_end(span(4));
        tokio::time::sleep(INTERVAL * 3).await;
        assert_eq!(
            ended.load(Ordering::SeqCst),
            5,
            "the interval hands the rest over"
        );
        processor.on_end(span(5));
        processor.force_flush().unwrap();
        assert_eq!(ended.load(Ordering::SeqCst), 6, "flush hands over first");
        assert_eq!(flushed.load(Ordering::SeqCst), 1);
        processor.on_end(span(6));
        processor
            .shutdown_with_timeout(Duration::from_secs(1))
            .unwrap();
        assert_eq!(ended.load(Ordering::SeqCst), 7, "shutdown hands over first");
        processor.on_end(span(7));
        assert_eq!(
            ended.load(Ordering::SeqCst),
            8,
            "after shutdown, straight through"
        );
    }

    #[test]
    fn outside_a_runtime_every_span_goes_straight_through() {
        let tally = Tally::default();
        let ended = tally.ended.clone();
        let processor = CoalescingProcessor::new(tally, 512);
        processor.on_end(span(1));
        assert_eq!(ended.load(Ordering::SeqCst), 1);
    }
}
