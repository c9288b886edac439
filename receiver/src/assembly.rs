//! Trace assembly, the store's streaming mode: spans are grouped by trace as they arrive, and
//! a trace is handed to a consumer once it is finished, then forgotten.
//!
//! Keeping every span of a run costs memory in proportion to the run (about 2 kB a span), so a
//! long or fast run would grow without bound. A trace of the lab is finished when its root span
//! has arrived and nothing of it has arrived for [`AssemblyOptions::quiet`]: the root is the
//! outermost span, so it ends last, and every other span was queued for export before it.
//! The quiet period covers exporters sending on different schedules. It cannot cover a backlog:
//! a lab past its capacity starves its exporters, their queues hold spans for seconds, and a
//! trace handed over while its services' spans were still queued would be split into a
//! complete-looking piece and rootless ones, each counted as a trace. Where the producers are
//! known (the lab's own exporters), they tell how far they have delivered
//! ([`Assembly::deliveries`]): a trace is then also kept until every span that ended before its
//! last arrival has been delivered (within a memory budget: past [`WATERMARK_MAX_PENDING`]
//! waiting spans, the quiet period alone decides again). A trace whose root never
//! arrives (the root was dropped, or the trace came from elsewhere) is finished
//! [`AssemblyOptions::max_wait`] after its first span, and every trace still open is finished
//! by [`Assembly::finish_all`] at the end of a run.
//!
//! A span of a trace that was already handed over starts a new, rootless piece of that trace,
//! which the analysis reports as broken, so a lost parent is never silently merged.
//!
//! Memory is bounded: when the consumer falls behind (a burst of spans faster than the
//! analysis), [`Assembly::add`] waits for room before the open traces would pass
//! [`MAX_PENDING_SPANS`] spans, a slice at a time, however large the batch. The receiver's
//! handler holds its share of the receiver's budget meanwhile, so further exports are refused
//! with a retryable status instead of piling up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use tracelab_trace::{Span, Trace, TraceId};

/// When a trace counts as finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssemblyOptions {
    /// A trace whose root span has arrived is finished once nothing of it has arrived for this
    /// long. Default 2 s, ten times the services' export interval.
    pub quiet: Duration,
    /// A trace is finished this long after its first span arrived, root or not. Default 60 s,
    /// longer than any timeout a scenario is likely to hold a request for.
    pub max_wait: Duration,
}

impl Default for AssemblyOptions {
    fn default() -> Self {
        AssemblyOptions {
            quiet: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// Spans waiting to be handed over, at most, before arriving spans wait for room: about
/// 150 MB of spans, a few seconds of a busy lab.
pub const MAX_PENDING_SPANS: usize = 100_000;

/// Spans added to the open traces at once, under one lock, each slice after waiting for room.
const ADD_AT_ONCE: usize = 4096;

/// How far the producers have delivered: every span they ended before the instant it returns
/// has reached the receiver (or is counted lost by its exporter). Asked once per finishing
/// round, a few times a second.
pub type DeliveredUpTo = Box<dyn Fn() -> Instant + Send + Sync>;

/// Above this many spans waiting, the delivery watermark is no longer waited for: memory is
/// bounded first, and traces are finished on the quiet period alone.
const WATERMARK_MAX_PENDING: usize = MAX_PENDING_SPANS / 4 * 3;

/// What receives finished traces.
pub(crate) type Consumer = Box<dyn FnMut(Trace) + Send>;

struct Pending {
    spans: Vec<Span>,
    has_root: bool,
    first: Instant,
    last: Instant,
}

/// The open traces and the consumer of finished ones.
pub(crate) struct Assembly {
    options: AssemblyOptions,
    /// Locked only briefly: by every ingest, and by a finish to take out the finished traces.
    pending: Mutex<HashMap<TraceId, Pending>>,
    /// Locked for a whole hand-over, before `pending`, so that [`Assembly::finish_all`] returns
    /// only once every trace taken out by the timer has been consumed too.
    consumer: Mutex<Consumer>,
    finished: AtomicU64,
    /// Spans added and not yet consumed, against [`MAX_PENDING_SPANS`].
    spans_pending: AtomicUsize,
    /// Wakes an `add` waiting for room when the consumer has taken traces.
    room: Condvar,
    room_lock: Mutex<()>,
    /// `add`s waiting for room: a hand-over notifies only when there are any (a notification
    /// is a system call even with no one to wake, and there is one per trace handed over).
    waiting: AtomicUsize,
    /// Set once, where the producers are known.
    delivered: OnceLock<DeliveredUpTo>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Neither map nor consumer is left half-updated by a panic in a way that matters more
    // than losing the trace being handed over, so a poisoned lock is still used.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Assembly {
    /// Starts assembling, with a thread that finishes quiet traces.
    pub(crate) fn start(options: AssemblyOptions, consumer: Consumer) -> Arc<Self> {
        let assembly = Arc::new(Assembly {
            options,
            pending: Mutex::new(HashMap::new()),
            consumer: Mutex::new(consumer),
            finished: AtomicU64::new(0),
            spans_pending: AtomicUsize::new(0),
            room: Condvar::new(),
            room_lock: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            delivered: OnceLock::new(),
        });
        let weak = Arc::downgrade(&assembly);
        let tick = (options.quiet.min(options.max_wait) / 4).max(Duration::from_millis(10));
        // A plain thread, like the sink's: the store may outlive or precede a runtime, and the
        // consumer does CPU work that should not hold up the servers' tasks.
        let spawned = std::thread::Builder::new()
            .name("tracelab-trace-assembly".into())
            .spawn(move || finish_periodically(weak, tick));
        if let Err(e) = spawned {
            // Without the timer every trace is still finished by `finish_all`.
            tracing::warn!(error = %e, "cannot start the trace assembly thread");
        }
        assembly
    }

    /// Adds arrived spans to their traces, [`ADD_AT_ONCE`] at a time, each slice first waiting
    /// until the open traces leave room for it under [`MAX_PENDING_SPANS`] (30 s in all at
    /// most: a consumer that stopped must not stop the receiver for good). So a batch larger
    /// than the budget (one 16 MiB export holds about 100,000 small spans) does not double
    /// what is kept: it waits, slice by slice, for the consumer to take what came before it.
    pub(crate) fn add(&self, spans: Vec<Span>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut spans = spans.into_iter();
        loop {
            let slice = spans.len().min(ADD_AT_ONCE);
            if slice == 0 {
                return;
            }
            self.wait_for_room(slice, deadline);
            self.spans_pending.fetch_add(slice, Ordering::AcqRel);
            let now = Instant::now();
            let mut pending = lock(&self.pending);
            for s in spans.by_ref().take(slice) {
                let trace = pending.entry(s.trace_id).or_insert_with(|| Pending {
                    // Room for one: a Vec's first growth would make room for four, and a
                    // burst of one-span traces would keep three empty spans each.
                    spans: Vec::with_capacity(1),
                    has_root: false,
                    first: now,
                    last: now,
                });
                trace.has_root |= s.parent_span_id.is_none();
                trace.last = now;
                trace.spans.push(s);
            }
        }
    }

    /// Waits, until `deadline` at the latest, while `more` spans would take the open traces
    /// past [`MAX_PENDING_SPANS`].
    fn wait_for_room(&self, more: usize, deadline: Instant) {
        let full = || self.spans_pending.load(Ordering::SeqCst) + more > MAX_PENDING_SPANS;
        if !full() {
            return;
        }
        // Counted before `full` is looked at again under the lock, and a hand-over frees room
        // before it looks at the count (both sequentially consistent): either the hand-over
        // sees this waiter and notifies under the lock, or this waiter sees the room.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut guard = lock(&self.room_lock);
        while full() && Instant::now() < deadline {
            guard = self
                .room
                .wait_timeout(guard, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(guard);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// From now on, also keeps a trace open until `delivered` says every span that ended before
    /// its last arrival has been delivered. Set once; a second call is ignored.
    pub(crate) fn deliveries(&self, delivered: DeliveredUpTo) {
        let _ = self.delivered.set(delivered);
    }

    /// Hands over the traces finished by `now`.
    fn finish_ready(&self, now: Instant) {
        let AssemblyOptions { quiet, max_wait } = self.options;
        let mut consumer = lock(&self.consumer);
        let delivered = match self.delivered.get() {
            Some(delivered)
                if self.spans_pending.load(Ordering::Acquire) < WATERMARK_MAX_PENDING =>
            {
                Some(delivered())
            }
            _ => None,
        };
        let ready: Vec<(TraceId, Pending)> = lock(&self.pending)
            .extract_if(|_, p| {
                (p.has_root
                    && now.duration_since(p.last) >= quiet
                    && delivered.is_none_or(|upto| upto >= p.last))
                    || now.duration_since(p.first) >= max_wait
            })
            .collect();
        self.hand_over(&mut consumer, ready);
    }

    /// Hands over every open trace, finished or not. The store stays usable: spans arriving
    /// later start new traces.
    pub(crate) fn finish_all(&self) {
        let mut consumer = lock(&self.consumer);
        let all: Vec<(TraceId, Pending)> = lock(&self.pending).drain().collect();
        self.hand_over(&mut consumer, all);
    }

    fn hand_over(&self, consumer: &mut Consumer, mut traces: Vec<(TraceId, Pending)>) {
        // In order of arrival, so that what the consumer sees does not depend on hashing.
        traces.sort_by_key(|(id, p)| (p.first, *id));
        self.finished
            .fetch_add(traces.len() as u64, Ordering::Relaxed);
        for (id, p) in traces {
            let count = p.spans.len();
            consumer(Trace::new(id, p.spans));
            if self.spans_pending.fetch_sub(count, Ordering::SeqCst) - count
                <= MAX_PENDING_SPANS - ADD_AT_ONCE
                && self.waiting.load(Ordering::SeqCst) > 0
            {
                // Under the lock, so a waiter between its check and its wait is not missed.
                let _guard = lock(&self.room_lock);
                self.room.notify_all();
            }
        }
    }

    /// Traces handed over so far.
    pub(crate) fn finished_traces(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// Traces still open.
    pub(crate) fn open_traces(&self) -> u64 {
        lock(&self.pending).len() as u64
    }

    /// A copy of the spans of the open traces.
    pub(crate) fn open_spans(&self) -> Vec<Span> {
        lock(&self.pending)
            .values()
            .flat_map(|p| p.spans.iter().cloned())
            .collect()
    }
}

fn finish_periodically(assembly: Weak<Assembly>, tick: Duration) {
    loop {
        std::thread::sleep(tick);
        match assembly.upgrade() {
            Some(a) => a.finish_ready(Instant::now()),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::tests::span;

    fn collecting(options: AssemblyOptions) -> (Arc<Assembly>, Arc<Mutex<Vec<Trace>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let assembly = Assembly::start(
            options,
            Box::new(move |t| sink.lock().expect("not poisoned").push(t)),
        );
        (assembly, got)
    }

    #[test]
    fn a_trace_is_finished_once_its_root_has_arrived_and_it_is_quiet() {
        // No timer interference: the test drives `finish_ready` with its own clock.
        let options = AssemblyOptions {
            quiet: Duration::from_secs(3600),
            max_wait: Duration::from_secs(7200),
        };
        let (assembly, got) = collecting(options);
        assembly.add(vec![span(1, 2, Some(1)), span(2, 2, Some(1))]);
        let t0 = Instant::now();
        assembly.finish_ready(t0 + Duration::from_secs(4000));
        assert!(got.lock().unwrap().is_empty(), "no root yet: not finished");
        assembly.add(vec![span(1, 1, None)]);
        assembly.finish_ready(Instant::now() + Duration::from_secs(60));
        assert!(
            got.lock().unwrap().is_empty(),
            "root arrived, but not quiet yet"
        );
        assembly.finish_ready(Instant::now() + Duration::from_secs(3601));
        {
            let got = got.lock().unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].trace_id, TraceId([1; 16]));
            assert_eq!(got[0].spans.len(), 2);
            assert!(got[0].shape().is_complete());
        }
        assert_eq!((assembly.finished_traces(), assembly.open_traces()), (1, 1));
        // The rootless trace goes after the longest wait, broken as it arrived.
        assembly.finish_ready(Instant::now() + Duration::from_secs(7201));
        assert_eq!(got.lock().unwrap().len(), 2);
        assert!(!got.lock().unwrap()[1].shape().is_complete());
        assert_eq!(assembly.open_traces(), 0);
    }

    /// The producers' spans are queued for longer than the quiet period: the trace stays open
    /// until they say that every span that ended before its last arrival has been delivered.
    #[test]
    fn a_trace_waits_for_its_producers_to_deliver() {
        let options = AssemblyOptions {
            quiet: Duration::from_secs(1),
            max_wait: Duration::from_secs(3600),
        };
        let (assembly, got) = collecting(options);
        let t0 = Instant::now();
        let upto = Arc::new(Mutex::new(t0));
        assembly.deliveries(Box::new({
            let upto = upto.clone();
            move || *upto.lock().unwrap()
        }));
        assembly.add(vec![span(1, 1, None)]);
        assembly.finish_ready(t0 + Duration::from_secs(5));
        assert!(
            got.lock().unwrap().is_empty(),
            "quiet for 5 s, but spans that ended before the root arrived may still be queued"
        );
        assembly.add(vec![span(1, 2, Some(1))]);
        *upto.lock().unwrap() = Instant::now() + Duration::from_millis(1);
        assembly.finish_ready(Instant::now() + Duration::from_millis(500));
        assert!(
            got.lock().unwrap().is_empty(),
            "delivered, but not quiet yet"
        );
        assembly.finish_ready(Instant::now() + Duration::from_secs(2));
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].spans.len(),
            2,
            "handed over whole, the queued span included"
        );
    }

    /// One export larger than the budget (a 16 MiB body holds about 100,000 small spans) while
    /// the consumer is stuck: it enters only as far as the budget allows and waits for the
    /// rest, instead of doubling what the assembly keeps.
    #[test]
    fn a_batch_larger_than_the_budget_waits_for_room_slice_by_slice() {
        let gate = Arc::new(Mutex::new(()));
        let consumed = Arc::new(AtomicUsize::new(0));
        let assembly = Assembly::start(
            AssemblyOptions {
                quiet: Duration::from_millis(10),
                max_wait: Duration::from_secs(3600),
            },
            Box::new({
                let (gate, consumed) = (gate.clone(), consumed.clone());
                move |_| {
                    let _open = gate.lock().expect("not poisoned");
                    consumed.fetch_add(1, Ordering::Relaxed);
                }
            }),
        );
        let batch = MAX_PENDING_SPANS + MAX_PENDING_SPANS / 2;
        let stuck = gate.lock().expect("not poisoned");
        let adding = std::thread::spawn({
            let assembly = assembly.clone();
            move || {
                assembly.add(
                    (1..=batch as u64)
                        .map(|n| {
                            let mut s = span(1, 1, None);
                            s.trace_id.0[..8].copy_from_slice(&n.to_be_bytes());
                            s
                        })
                        .collect(),
                )
            }
        });
        // Wait until the adder stops making progress.
        let mut kept = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = assembly.spans_pending.load(Ordering::Acquire);
            if now == kept || Instant::now() > deadline {
                break;
            }
            kept = now;
        }
        assert!(
            kept <= MAX_PENDING_SPANS && kept > MAX_PENDING_SPANS - 2 * ADD_AT_ONCE,
            "{kept} spans kept with the consumer stuck, against a budget of {MAX_PENDING_SPANS}"
        );
        assert!(
            !adding.is_finished(),
            "the rest of the batch waits for room"
        );
        drop(stuck);
        adding.join().expect("added");
        let deadline = Instant::now() + Duration::from_secs(20);
        while consumed.load(Ordering::Relaxed) < batch && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            consumed.load(Ordering::Relaxed),
            batch,
            "every trace handed over"
        );
    }

    #[test]
    fn finish_all_hands_over_every_open_trace_and_the_timer_finishes_quiet_ones() {
        let (assembly, got) = collecting(AssemblyOptions {
            quiet: Duration::from_millis(40),
            max_wait: Duration::from_secs(3600),
        });
        assembly.add(vec![span(1, 1, None), span(1, 2, Some(1))]);
        assembly.add(vec![span(2, 2, Some(1))]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.lock().unwrap().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            got.lock().unwrap().len(),
            1,
            "the timer finished the whole trace"
        );
        assert_eq!(assembly.open_spans().len(), 1);
        assembly.finish_all();
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].trace_id, TraceId([2; 16]));
        assert_eq!(assembly.open_traces(), 0);
    }
}
