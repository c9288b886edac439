//! One replay: buffers, the `num_traces` ring, decision deadlines and decision caches, all in
//! vectors indexed by trace and by buffer.

use std::collections::VecDeque;

use tracelab_trace::TraceId;

use super::{Arrival, BufferEffects, TailDecision, TailOutcome};
use crate::tail::cache::LruSet;
use crate::tail::config::{SamplingStrategy, TailSamplingConfig};
use crate::tail::policy::{Evaluator, SpanTests, TraceView, decide, decide_batch};

/// "No buffer" in the per-trace and per-span buffer numbers.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Pending,
    Sampled,
    NotSampled,
}

/// One buffer: a trace's spans between its first arrival and its decision (or eviction).
/// A trace whose spans keep arriving after it left the ring gets a new buffer.
#[derive(Debug, Default)]
pub(super) struct Buffer {
    trace: u32,
    spans: u32,
    first_arrival: u64,
    /// When it is due to be decided.
    deadline: u64,
    min_start: u64,
    max_end: u64,
    bytes: u64,
    status_mask: u8,
    sampled_flag: bool,
    /// The trace had been decided before this buffer opened: its spans are late.
    after_decision: bool,
    state: State,
}

impl Buffer {
    #[inline]
    pub(super) fn add(&mut self, a: &Arrival) {
        if self.spans == 0 {
            self.min_start = a.start;
            self.max_end = a.end;
        } else {
            self.min_start = self.min_start.min(a.start);
            self.max_end = self.max_end.max(a.end);
        }
        self.spans += 1;
        self.bytes += a.bytes;
        self.status_mask |= a.status_bit;
        self.sampled_flag |= a.sampled_flag;
    }

    /// The duration of the spans so far, earliest start to latest end, in whole
    /// milliseconds (as Go's `Duration.Milliseconds` truncates).
    #[inline]
    pub(super) fn duration_ms(&self) -> i64 {
        (self.max_end.saturating_sub(self.min_start) / 1_000_000) as i64
    }

    pub(super) fn view<'t>(
        &self,
        trace_id: &'t [u8; 16],
        hits: &'t [u64],
        errs: &'t [u64],
        now: u64,
    ) -> TraceView<'t> {
        TraceView {
            trace_id,
            spans: self.spans,
            min_start: self.min_start,
            max_end: self.max_end,
            bytes: self.bytes,
            status_mask: self.status_mask,
            any_sampled_flag: self.sampled_flag,
            hits,
            errs,
            now,
        }
    }
}

/// Adds one span's test bits to a buffer's. Pass bits are ORed; an OTTL test's outcome is
/// that of the first span, in arrival order, that matched or failed, as the Collector walks
/// the buffered spans in order and stops at the first of either.
#[inline]
pub(super) fn combine_span(
    hits: &mut [u64],
    errs: &mut [u64],
    span_hits: &[u64],
    span_errs: &[u64],
) {
    if errs.is_empty() {
        for (h, s) in hits.iter_mut().zip(span_hits) {
            *h |= s;
        }
        return;
    }
    for w in 0..hits.len() {
        let (old_pass, old_err) = (hits[w], errs[w]);
        hits[w] = old_pass | (span_hits[w] & !old_err);
        errs[w] = old_err | (span_errs[w] & !old_pass);
    }
}

/// One replay. Buffers are numbered in the order they open; a trace's current buffer is
/// `current[trace]`, and a ring or deadline entry whose buffer is no longer current is stale
/// (the trace was evicted, and maybe reopened since).
pub(super) struct Run<'p> {
    wait: u64,
    root_wait: u64,
    ring_size: usize,
    sample_on_first_match: bool,
    block_on_overflow: bool,
    max_bytes: u64,
    span_ingest: bool,
    tests: &'p SpanTests,
    /// Words of span-test bits (and of error bits) per span and per buffer.
    words: usize,
    err_words: usize,
    trace_ids: &'p [TraceId],
    /// Per input span, the span-test bits and the OTTL error bits.
    span_hits: &'p [u64],
    span_errs: &'p [u64],
    /// Per trace, its buffer in memory, or `NONE`.
    current: Vec<u32>,
    ever_decided: Vec<bool>,
    buffers: Vec<Buffer>,
    /// Per buffer, the combined bits of its spans, and its latency range bits.
    hits: Vec<u64>,
    errs: Vec<u64>,
    /// Buffers in memory, in insertion order; never longer than `ring_size`.
    ring: VecDeque<u32>,
    /// Deadlines `decision_wait` after a first arrival, in time order (a constant wait, so
    /// arrival order is deadline order).
    due: VecDeque<(u64, u32)>,
    /// Deadlines `decision_wait_after_root_received` after a root arrival, in time order.
    root_due: VecDeque<(u64, u32)>,
    sampled_cache: LruSet<u32>,
    non_sampled_cache: LruSet<u32>,
    /// Per input span, the buffer it went into, or `NONE`.
    span_buffer: Vec<u32>,
    kept: Vec<bool>,
    effects: BufferEffects,
    decisions: Vec<TailDecision>,
    /// Scratch bits for one span evaluated alone (`span-ingest`).
    single: Vec<u64>,
}

impl<'p> Run<'p> {
    pub(super) fn new(
        config: &TailSamplingConfig,
        tests: &'p SpanTests,
        trace_ids: &'p [TraceId],
        span_hits: &'p [u64],
        span_errs: &'p [u64],
        spans: usize,
    ) -> Self {
        let traces = trace_ids.len();
        let ring_size = usize::try_from(config.num_traces).unwrap_or(usize::MAX);
        let words = tests.words();
        Run {
            wait: config.decision_wait_nanos,
            root_wait: config.decision_wait_after_root_nanos,
            ring_size,
            sample_on_first_match: config.sample_on_first_match,
            block_on_overflow: config.block_on_overflow,
            max_bytes: config.maximum_trace_size_bytes,
            span_ingest: config.sampling_strategy == SamplingStrategy::SpanIngest,
            tests,
            words,
            err_words: tests.error_words(),
            trace_ids,
            span_hits,
            span_errs,
            current: vec![NONE; traces],
            ever_decided: vec![false; traces],
            buffers: Vec::with_capacity(traces),
            hits: Vec::with_capacity(traces * words),
            errs: Vec::new(),
            ring: VecDeque::with_capacity(ring_size.min(traces)),
            due: VecDeque::with_capacity(ring_size.min(traces)),
            root_due: VecDeque::new(),
            sampled_cache: LruSet::new(config.sampled_cache_size),
            non_sampled_cache: LruSet::new(config.non_sampled_cache_size),
            span_buffer: vec![NONE; spans],
            kept: vec![false; spans],
            effects: BufferEffects::default(),
            decisions: Vec::with_capacity(traces),
            single: vec![0; words],
        }
    }

    /// Decides every buffer due by `now`, earliest deadline first.
    pub(super) fn fire_due(&mut self, now: u64, evaluators: &mut [Evaluator]) {
        loop {
            let first = self.due.front().copied().filter(|(d, _)| *d <= now);
            let root = self.root_due.front().copied().filter(|(d, _)| *d <= now);
            let (deadline, b, after_root) = match (first, root) {
                (Some(f), Some(r)) if r.0 < f.0 => (r.0, r.1, true),
                (Some(f), _) => (f.0, f.1, false),
                (None, Some(r)) => (r.0, r.1, true),
                (None, None) => break,
            };
            if after_root {
                self.root_due.pop_front();
            } else {
                self.due.pop_front();
            }
            if self.decide(b, deadline, evaluators) && after_root {
                self.effects.decisions_after_root += 1;
            }
        }
    }

    /// Decides buffer `b` at `at`, if it is still current and pending; says whether it did.
    fn decide(&mut self, b: u32, at: u64, evaluators: &mut [Evaluator]) -> bool {
        let buffer = &self.buffers[b as usize];
        let trace = buffer.trace as usize;
        if self.current[trace] != b || buffer.state != State::Pending {
            return false;
        }
        let sampled = if self.span_ingest {
            // Traces no span decided are finalised as not sampled, without re-evaluation.
            false
        } else {
            let hits = &self.hits[b as usize * self.words..(b as usize + 1) * self.words];
            let errs = &self.errs[b as usize * self.err_words..(b as usize + 1) * self.err_words];
            let view = buffer.view(&self.trace_ids[trace].0, hits, errs, at);
            decide(evaluators, &view, self.sample_on_first_match)
        };
        self.settle(b, at, sampled);
        true
    }

    /// Records a decision on a pending buffer.
    fn settle(&mut self, b: u32, at: u64, sampled: bool) {
        let buffer = &mut self.buffers[b as usize];
        let trace = buffer.trace as usize;
        buffer.state = if sampled {
            State::Sampled
        } else {
            State::NotSampled
        };
        self.effects.decisions += 1;
        if sampled {
            self.effects.sampled_decisions += 1;
            self.sampled_cache.put(trace as u32);
        } else {
            self.non_sampled_cache.put(trace as u32);
        }
        if std::mem::replace(&mut self.ever_decided[trace], true) {
            self.effects.traces_decided_more_than_once += 1;
        }
        self.decisions.push(TailDecision {
            trace_id: self.trace_ids[trace],
            first_arrival_nanos: buffer.first_arrival,
            decided_at_nanos: at,
            sampled,
            spans: buffer.spans,
        });
    }

    pub(super) fn ingest(&mut self, a: &Arrival, evaluators: &mut [Evaluator]) {
        let trace = a.trace as usize;
        let span = a.span as usize;
        if self.sampled_cache.get(&a.trace) {
            self.kept[span] = true;
            self.effects.late_spans += 1;
            self.effects.late_spans_followed_cached_decision += 1;
            return;
        }
        if self.non_sampled_cache.get(&a.trace) {
            self.effects.late_spans += 1;
            self.effects.late_spans_followed_cached_decision += 1;
            return;
        }
        let b = self.current[trace];
        if b != NONE {
            match self.buffers[b as usize].state {
                State::Pending => {
                    self.add(b, a, evaluators);
                    if self.buffers[b as usize].after_decision {
                        self.effects.late_spans += 1;
                        self.effects.late_spans_decided_again += 1;
                    }
                }
                decided => {
                    self.kept[span] = decided == State::Sampled;
                    self.effects.late_spans += 1;
                    self.effects.late_spans_followed_buffered_decision += 1;
                }
            }
            return;
        }
        let after_decision = self.ever_decided[trace];
        if after_decision {
            self.effects.late_spans += 1;
            self.effects.late_spans_decided_again += 1;
        }
        self.make_room(evaluators);
        let b = self.buffers.len() as u32;
        let deadline = a.end.saturating_add(self.wait);
        self.buffers.push(Buffer {
            trace: a.trace,
            first_arrival: a.end,
            deadline,
            after_decision,
            ..Buffer::default()
        });
        self.hits.resize(self.hits.len() + self.words, 0);
        self.errs.resize(self.errs.len() + self.err_words, 0);
        self.current[trace] = b;
        self.ring.push_back(b);
        self.due.push_back((deadline, b));
        self.add(b, a, evaluators);
    }

    /// Evicts the oldest buffers until the ring has room for one more. Under
    /// `block_on_overflow` an undecided one is decided first (at its own deadline), where the
    /// Collector would make the sender wait.
    fn make_room(&mut self, evaluators: &mut [Evaluator]) {
        while self.ring.len() >= self.ring_size {
            let Some(&old) = self.ring.front() else {
                break;
            };
            let old_trace = self.buffers[old as usize].trace as usize;
            let is_current = self.current[old_trace] == old;
            if is_current
                && self.block_on_overflow
                && self.buffers[old as usize].state == State::Pending
            {
                let deadline = self.buffers[old as usize].deadline;
                self.decide(old, deadline, evaluators);
                self.effects.traces_decided_to_make_room += 1;
            }
            self.ring.pop_front();
            if is_current {
                // Whether decided or not, the trace leaves memory; only an undecided one
                // loses its spans.
                self.current[old_trace] = NONE;
                let evicted = &self.buffers[old as usize];
                if evicted.state == State::Pending {
                    self.effects.traces_evicted_undecided += 1;
                    self.effects.spans_evicted_undecided += u64::from(evicted.spans);
                }
            }
        }
    }

    /// Adds a span to a pending buffer, then applies what may decide it at once: the size
    /// limit, an earlier deadline after the root span, or (`span-ingest`) the span's own vote.
    fn add(&mut self, b: u32, a: &Arrival, evaluators: &mut [Evaluator]) {
        let bi = b as usize;
        self.buffers[bi].add(a);
        self.span_buffer[a.span as usize] = b;
        if self.words > 0 {
            let span = a.span as usize;
            let (into, e_into) = (bi * self.words, bi * self.err_words);
            combine_span(
                &mut self.hits[into..into + self.words],
                &mut self.errs[e_into..e_into + self.err_words],
                &self.span_hits[span * self.words..(span + 1) * self.words],
                &self.span_errs[span * self.err_words..(span + 1) * self.err_words],
            );
            if self.tests.has_ranges() {
                let ms = self.buffers[bi].duration_ms();
                self.tests
                    .mark_ranges(ms, &mut self.hits[into..into + self.words]);
            }
        }
        if self.max_bytes > 0 && self.buffers[bi].bytes > self.max_bytes {
            self.effects.traces_dropped_too_large += 1;
            self.effects.spans_dropped_too_large += u64::from(self.buffers[bi].spans);
            self.settle(b, a.end, false);
            return;
        }
        if a.root && self.root_wait > 0 {
            let sooner = a.end.saturating_add(self.root_wait);
            if sooner < self.buffers[bi].deadline {
                self.buffers[bi].deadline = sooner;
                self.root_due.push_back((sooner, b));
            }
        }
        if self.span_ingest {
            self.ingest_vote(b, a, evaluators);
        }
    }

    /// `span-ingest`: the policies' vote on this span alone; sampled or dropped decides now.
    fn ingest_vote(&mut self, b: u32, a: &Arrival, evaluators: &mut [Evaluator]) {
        let span = a.span as usize;
        let mut alone = Buffer::default();
        alone.add(a);
        self.single.clear();
        self.single
            .extend_from_slice(&self.span_hits[span * self.words..(span + 1) * self.words]);
        if self.tests.has_ranges() {
            self.tests
                .mark_ranges(alone.duration_ms(), &mut self.single);
        }
        let errs = &self.span_errs[span * self.err_words..(span + 1) * self.err_words];
        let view = alone.view(
            &self.trace_ids[a.trace as usize].0,
            &self.single,
            errs,
            a.end,
        );
        if let Some(sampled) = decide_batch(evaluators, &view, self.sample_on_first_match) {
            self.settle(b, a.end, sampled);
        }
    }

    /// Spans that went into a buffer follow its decision; an evicted buffer was never
    /// decided, and its spans are lost.
    pub(super) fn finish(self) -> TailOutcome {
        let Run {
            mut kept,
            span_buffer,
            buffers,
            effects,
            decisions,
            ..
        } = self;
        for (k, &b) in kept.iter_mut().zip(&span_buffer) {
            if b != NONE && buffers[b as usize].state == State::Sampled {
                *k = true;
            }
        }
        TailOutcome {
            kept,
            effects,
            decisions,
        }
    }
}
