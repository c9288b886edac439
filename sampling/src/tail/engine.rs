//! The tail-sampling buffer, simulated in recorded time.
//!
//! Spans arrive at their end time. A trace's first arrival opens a buffer and schedules its
//! decision `decision_wait` later, or `decision_wait_after_root_received` after its root span
//! arrives when that is sooner; a ring of `num_traces` ids evicts the oldest trace when a new
//! one arrives, decided or not (an undecided one is "dropped too early", unless
//! `block_on_overflow`); a decided trace stays in the ring, so spans arriving late follow its
//! decision; once it has left the ring only the decision caches remember it, and without them
//! a late span opens a new buffer and the trace is decided again on whatever arrives. A
//! buffer growing past `maximum_trace_size_bytes` is dropped at once. Under
//! `sampling_strategy: span-ingest` each arriving span is evaluated alone and a sample or
//! drop vote decides at once. That is the Collector's processor, except that it decides on a
//! one-second tick, so its decisions come up to a second later.
//!
//! The replay keeps no map keyed by trace id: [`ArrivalOrder`] numbers the traces once, and
//! the buffer's state lives in vectors indexed by trace and by buffer. A span's place in a
//! buffer is recorded, not copied into a list, and whether it was kept is read off its
//! buffer's decision once the replay is over.
//!
//! Layout:
//! - `run`: one replay's buffers, ring, deadlines and caches.

mod run;

use serde::Serialize;
use tracelab_trace::{Span, TraceId};

use super::cache::IdMap;
use super::config::TailSamplingConfig;
use super::policy::{Evaluator, ResourceMemo, SpanTests, decide, status_bit};
use crate::size::estimated_span_bytes;
use run::{Buffer, Run, combine_span};

/// Spans sorted by arrival (end time), with their estimated sizes and their traces
/// numbered: the part of a replay that does not depend on the policies, computed once and
/// shared by every strategy.
///
/// Traces are numbered `0..` in order of their first span in the input, so the engine keeps
/// its per-trace state in plain vectors instead of maps keyed by id.
#[derive(Debug, Clone)]
pub struct ArrivalOrder<'a> {
    spans: &'a [Span],
    bytes: Vec<u64>,
    /// Per input span, its trace's number.
    trace_of: Vec<u32>,
    /// Per trace number, its id.
    trace_ids: Vec<TraceId>,
    numbers: IdMap<u32>,
    /// What the engine reads of each span, in arrival order.
    arrivals: Vec<Arrival>,
}

/// One span as the buffer sees it, copied out of the span so that replaying walks one
/// compact array.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    end: u64,
    start: u64,
    bytes: u64,
    span: u32,
    trace: u32,
    status_bit: u8,
    sampled_flag: bool,
    /// The span has no parent.
    root: bool,
}

impl<'a> ArrivalOrder<'a> {
    /// Sorts the spans by end time (ties by start time, then input order).
    pub fn new(spans: &'a [Span]) -> Self {
        let mut numbers = IdMap::with_capacity_and_hasher(spans.len() / 4, Default::default());
        let mut trace_ids = Vec::new();
        let mut trace_of = Vec::with_capacity(spans.len());
        let mut bytes = Vec::with_capacity(spans.len());
        // One pass over the spans in memory order, then a sort of the compact records: the
        // sort moves 40-byte records instead of reading spans in arrival order, which would
        // be a cache miss each.
        let mut arrivals: Vec<Arrival> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let trace = *numbers.entry(s.trace_id).or_insert_with(|| {
                    trace_ids.push(s.trace_id);
                    trace_ids.len() as u32 - 1
                });
                trace_of.push(trace);
                let size = estimated_span_bytes(s);
                bytes.push(size);
                Arrival {
                    end: s.end_unix_nano,
                    start: s.start_unix_nano,
                    bytes: size,
                    span: i as u32,
                    trace,
                    status_bit: status_bit(s.status.code),
                    sampled_flag: s.flags & 1 == 1,
                    root: s.parent_span_id.is_none(),
                }
            })
            .collect();
        arrivals.sort_unstable_by_key(|a| (a.end, a.start, a.span));
        ArrivalOrder {
            spans,
            bytes,
            trace_of,
            trace_ids,
            numbers,
            arrivals,
        }
    }

    /// The spans, in input order.
    pub fn spans(&self) -> &'a [Span] {
        self.spans
    }

    /// Estimated bytes of each span, in input order.
    pub fn bytes(&self) -> &[u64] {
        &self.bytes
    }

    /// The number of each span's trace, in input order.
    pub fn trace_of(&self) -> &[u32] {
        &self.trace_of
    }

    /// Every trace id, by number.
    pub fn trace_ids(&self) -> &[TraceId] {
        &self.trace_ids
    }

    /// The number of a trace, if any span has its id.
    pub fn trace_number(&self, id: &TraceId) -> Option<u32> {
        self.numbers.get(id).copied()
    }
}

/// A tail sampler: compiled policies with their state.
#[derive(Debug)]
pub struct TailSampler {
    config: TailSamplingConfig,
    /// The policies, `drop` policies first as the Collector orders them.
    evaluators: Vec<Evaluator>,
    tests: SpanTests,
}

/// What the buffer did besides deciding: the effects that make tail sampling lose data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BufferEffects {
    /// Decisions taken (a trace decided twice counts twice).
    pub decisions: u64,
    /// Decisions that sampled.
    pub sampled_decisions: u64,
    /// Decisions taken `decision_wait_after_root_received` after the root span arrived,
    /// sooner than `decision_wait`.
    pub decisions_after_root: u64,
    /// Traces evicted from the `num_traces` ring before their decision ("dropped too early").
    pub traces_evicted_undecided: u64,
    /// Spans lost with them.
    pub spans_evicted_undecided: u64,
    /// With `block_on_overflow`: undecided traces decided early to make room instead of
    /// being evicted.
    pub traces_decided_to_make_room: u64,
    /// Traces dropped because their buffered spans grew past `maximum_trace_size_bytes`.
    pub traces_dropped_too_large: u64,
    /// Spans lost with them (late spans that followed the drop included).
    pub spans_dropped_too_large: u64,
    /// Spans that arrived after their trace had been decided.
    pub late_spans: u64,
    /// … and followed the decision still held in the ring.
    pub late_spans_followed_buffered_decision: u64,
    /// … and followed a decision cache entry.
    pub late_spans_followed_cached_decision: u64,
    /// … and, remembered by nothing, went into a new buffer to be decided again.
    pub late_spans_decided_again: u64,
    /// Trace ids decided more than once.
    pub traces_decided_more_than_once: u64,
}

/// One decision, for latency statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailDecision {
    /// The trace.
    pub trace_id: TraceId,
    /// When its buffer was opened (arrival of its first span), ns.
    pub first_arrival_nanos: u64,
    /// When it was decided, ns.
    pub decided_at_nanos: u64,
    /// Kept or not.
    pub sampled: bool,
    /// Spans the decision saw.
    pub spans: u32,
}

/// The result of replaying spans through the sampler.
#[derive(Debug, Clone)]
pub struct TailOutcome {
    /// Per input span: exported or not.
    pub kept: Vec<bool>,
    /// Buffer effects.
    pub effects: BufferEffects,
    /// Every decision, in time order.
    pub decisions: Vec<TailDecision>,
}

impl TailSampler {
    /// Compiles the policies of a validated configuration.
    pub fn new(config: &TailSamplingConfig) -> Self {
        let mut tests = SpanTests::default();
        let mut evaluators: Vec<Evaluator> = config
            .policies
            .iter()
            .map(|p| Evaluator::compile(p, &mut tests))
            .collect();
        // The Collector moves `drop` policies to the front (a stable reordering), so a
        // dropped trace stops the evaluation before any stateful policy spends a token.
        evaluators.sort_by_key(|e| !e.is_drop());
        TailSampler {
            config: config.clone(),
            evaluators,
            tests,
        }
    }

    /// The configuration it runs.
    pub fn config(&self) -> &TailSamplingConfig {
        &self.config
    }

    /// Decides one trace directly, without the buffer: every span given is taken as
    /// belonging to it (the first span's trace id is used for hashing) and as having arrived
    /// in the order given, decided at `now_nanos`.
    pub fn decide_trace(&mut self, spans: &[Span], now_nanos: u64) -> bool {
        let Some(first) = spans.first() else {
            return false;
        };
        let words = self.tests.words();
        let err_words = self.tests.error_words();
        let mut trace = Buffer::default();
        let (mut hits, mut errs) = (vec![0; words], vec![0; err_words]);
        let (mut span_hits, mut span_errs) = (vec![0; words], vec![0; err_words]);
        let mut memo = ResourceMemo::default();
        for s in spans {
            trace.add(&Arrival {
                end: s.end_unix_nano,
                start: s.start_unix_nano,
                bytes: estimated_span_bytes(s),
                span: 0,
                trace: 0,
                status_bit: status_bit(s.status.code),
                sampled_flag: s.flags & 1 == 1,
                root: s.parent_span_id.is_none(),
            });
            span_hits.fill(0);
            span_errs.fill(0);
            self.tests.run(s, &mut memo, &mut span_hits, &mut span_errs);
            combine_span(&mut hits, &mut errs, &span_hits, &span_errs);
            if self.tests.has_ranges() {
                self.tests.mark_ranges(trace.duration_ms(), &mut hits);
            }
        }
        let view = trace.view(&first.trace_id.0, &hits, &errs, now_nanos);
        decide(
            &mut self.evaluators,
            &view,
            self.config.sample_on_first_match,
        )
    }

    /// Replays every span, arriving at its end time.
    pub fn simulate(&mut self, spans: &[Span]) -> TailOutcome {
        self.simulate_prepared(&ArrivalOrder::new(spans), None)
    }

    /// Replays the spans whose `selected` flag is set (e.g. those a head sampler kept);
    /// `kept` is still indexed like `spans`.
    pub fn simulate_selected(&mut self, spans: &[Span], selected: &[bool]) -> TailOutcome {
        self.simulate_prepared(&ArrivalOrder::new(spans), Some(selected))
    }

    /// Replays spans already put in arrival order (shared between strategies), optionally
    /// only the `selected` ones.
    pub fn simulate_prepared(
        &mut self,
        prepared: &ArrivalOrder<'_>,
        selected: Option<&[bool]>,
    ) -> TailOutcome {
        let spans = prepared.spans;
        let is_selected =
            |i: usize| selected.is_none_or(|sel| sel.get(i).copied().unwrap_or(false));
        // The span tests run in input order: spans are read one after the other, and the
        // spans of one export batch, which share a resource, are neighbours.
        let words = self.tests.words();
        let err_words = self.tests.error_words();
        let mut span_hits = vec![0u64; spans.len() * words];
        let mut span_errs = vec![0u64; spans.len() * err_words];
        if words > 0 {
            let mut memo = ResourceMemo::default();
            for (i, s) in spans.iter().enumerate() {
                if is_selected(i) {
                    let errs = if err_words > 0 {
                        &mut span_errs[i * err_words..(i + 1) * err_words]
                    } else {
                        &mut []
                    };
                    self.tests.run(
                        s,
                        &mut memo,
                        &mut span_hits[i * words..(i + 1) * words],
                        errs,
                    );
                }
            }
        }
        let mut run = Run::new(
            &self.config,
            &self.tests,
            &prepared.trace_ids,
            &span_hits,
            &span_errs,
            spans.len(),
        );
        for a in &prepared.arrivals {
            if !is_selected(a.span as usize) {
                continue;
            }
            run.fire_due(a.end, &mut self.evaluators);
            run.ingest(a, &mut self.evaluators);
        }
        run.fire_due(u64::MAX, &mut self.evaluators);
        run.finish()
    }
}
