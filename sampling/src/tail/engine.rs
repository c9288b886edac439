//! The tail-sampling buffer, simulated in recorded time.
//!
//! Spans arrive at their end time. A trace's first arrival opens a buffer and schedules its
//! decision `decision_wait` later; a ring of `num_traces` ids evicts the oldest trace when a
//! new one arrives, decided or not (an undecided one is "dropped too early"); a decided trace
//! stays in the ring, so spans arriving late follow its decision; once it has left the ring
//! only the decision caches remember it, and without them a late span opens a new buffer
//! and the trace is decided again on whatever arrives. That is the Collector's processor,
//! except that it decides on a one-second tick, so its decisions come up to a second later.
//!
//! The replay keeps no map keyed by trace id: [`ArrivalOrder`] numbers the traces once, and
//! the buffer's state lives in vectors indexed by trace and by buffer. A span's place in a
//! buffer is recorded, not copied into a list, and whether it was kept is read off its
//! buffer's decision once the replay is over.

use std::collections::VecDeque;

use serde::Serialize;
use tracelab_trace::{Span, TraceId};

use super::cache::{IdMap, LruSet};
use super::config::TailSamplingConfig;
use super::policy::{Evaluator, ResourceMemo, SpanTests, TraceView, decide, status_bit};
use crate::size::estimated_span_bytes;

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
    /// Traces evicted from the `num_traces` ring before their decision ("dropped too early").
    pub traces_evicted_undecided: u64,
    /// Spans lost with them.
    pub spans_evicted_undecided: u64,
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
        let evaluators = config
            .policies
            .iter()
            .map(|p| Evaluator::compile(p, &mut tests))
            .collect();
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
    /// belonging to it (the first span's trace id is used for hashing), decided at `now_nanos`.
    pub fn decide_trace(&mut self, spans: &[Span], now_nanos: u64) -> bool {
        let Some(first) = spans.first() else {
            return false;
        };
        let mut trace = Buffer::default();
        let mut hits = vec![0; self.tests.words()];
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
            });
            self.tests.run(s, &mut memo, &mut hits);
        }
        let view = trace.view(&first.trace_id.0, &hits, now_nanos);
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
        let mut span_hits = vec![0u64; spans.len() * words];
        if words > 0 {
            let mut memo = ResourceMemo::default();
            for ((i, s), hits) in spans.iter().enumerate().zip(span_hits.chunks_mut(words)) {
                if is_selected(i) {
                    self.tests.run(s, &mut memo, hits);
                }
            }
        }
        let traces = prepared.trace_ids.len();
        let ring_size = usize::try_from(self.config.num_traces).unwrap_or(usize::MAX);
        let mut run = Run {
            wait: self.config.decision_wait_nanos,
            ring_size,
            sample_on_first_match: self.config.sample_on_first_match,
            words,
            trace_ids: &prepared.trace_ids,
            span_hits: &span_hits,
            current: vec![NONE; traces],
            ever_decided: vec![false; traces],
            buffers: Vec::with_capacity(traces),
            hits: Vec::with_capacity(traces * words),
            ring: VecDeque::with_capacity(ring_size.min(traces)),
            due: VecDeque::with_capacity(ring_size.min(traces)),
            sampled_cache: LruSet::new(self.config.sampled_cache_size),
            non_sampled_cache: LruSet::new(self.config.non_sampled_cache_size),
            span_buffer: vec![NONE; spans.len()],
            kept: vec![false; spans.len()],
            effects: BufferEffects::default(),
            decisions: Vec::with_capacity(traces),
        };
        for a in &prepared.arrivals {
            if !is_selected(a.span as usize) {
                continue;
            }
            run.fire_due(a.end, &mut self.evaluators);
            run.ingest(a);
        }
        run.fire_due(u64::MAX, &mut self.evaluators);
        // Spans that went into a buffer follow its decision; an evicted buffer was never
        // decided, and its spans are lost.
        let Run {
            mut kept,
            span_buffer,
            buffers,
            effects,
            decisions,
            ..
        } = run;
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
struct Buffer {
    trace: u32,
    spans: u32,
    first_arrival: u64,
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
    fn add(&mut self, a: &Arrival) {
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

    fn view<'t>(&self, trace_id: &'t [u8; 16], hits: &'t [u64], now: u64) -> TraceView<'t> {
        TraceView {
            trace_id,
            spans: self.spans,
            min_start: self.min_start,
            max_end: self.max_end,
            bytes: self.bytes,
            status_mask: self.status_mask,
            any_sampled_flag: self.sampled_flag,
            hits,
            now,
        }
    }
}

/// One replay. Buffers are numbered in the order they open; a trace's current buffer is
/// `current[trace]`, and a ring or deadline entry whose buffer is no longer current is stale
/// (the trace was evicted, and maybe reopened since).
struct Run<'p> {
    wait: u64,
    ring_size: usize,
    sample_on_first_match: bool,
    /// Words of span-test bits per span and per buffer.
    words: usize,
    trace_ids: &'p [TraceId],
    /// Per input span, the span-test bits.
    span_hits: &'p [u64],
    /// Per trace, its buffer in memory, or `NONE`.
    current: Vec<u32>,
    ever_decided: Vec<bool>,
    buffers: Vec<Buffer>,
    /// Per buffer, the OR of its spans' test bits.
    hits: Vec<u64>,
    /// Buffers in memory, in insertion order; never longer than `ring_size`.
    ring: VecDeque<u32>,
    /// Decision deadlines in time order (constant wait, so arrival order is deadline order).
    due: VecDeque<(u64, u32)>,
    sampled_cache: LruSet<u32>,
    non_sampled_cache: LruSet<u32>,
    /// Per input span, the buffer it went into, or `NONE`.
    span_buffer: Vec<u32>,
    kept: Vec<bool>,
    effects: BufferEffects,
    decisions: Vec<TailDecision>,
}

impl Run<'_> {
    fn fire_due(&mut self, now: u64, evaluators: &mut [Evaluator]) {
        while let Some(&(deadline, b)) = self.due.front() {
            if deadline > now {
                break;
            }
            self.due.pop_front();
            self.decide(b, deadline, evaluators);
        }
    }

    fn decide(&mut self, b: u32, at: u64, evaluators: &mut [Evaluator]) {
        let buffer = &self.buffers[b as usize];
        let trace = buffer.trace as usize;
        if self.current[trace] != b || buffer.state != State::Pending {
            return;
        }
        let hits = &self.hits[b as usize * self.words..(b as usize + 1) * self.words];
        let id = &self.trace_ids[trace];
        let view = buffer.view(&id.0, hits, at);
        let sampled = decide(evaluators, &view, self.sample_on_first_match);
        let buffer = &mut self.buffers[b as usize];
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
            trace_id: *id,
            first_arrival_nanos: buffer.first_arrival,
            decided_at_nanos: at,
            sampled,
            spans: buffer.spans,
        });
    }

    fn ingest(&mut self, a: &Arrival) {
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
                    self.add(b, a);
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
        while self.ring.len() >= self.ring_size {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            let evicted = &self.buffers[old as usize];
            let old_trace = evicted.trace as usize;
            if self.current[old_trace] == old {
                // Whether decided or not, the trace leaves memory; only an undecided one
                // loses its spans.
                self.current[old_trace] = NONE;
                if evicted.state == State::Pending {
                    self.effects.traces_evicted_undecided += 1;
                    self.effects.spans_evicted_undecided += u64::from(evicted.spans);
                }
            }
        }
        let b = self.buffers.len() as u32;
        self.buffers.push(Buffer {
            trace: a.trace,
            first_arrival: a.end,
            after_decision,
            ..Buffer::default()
        });
        self.hits.resize(self.hits.len() + self.words, 0);
        self.add(b, a);
        self.current[trace] = b;
        self.ring.push_back(b);
        self.due.push_back((a.end.saturating_add(self.wait), b));
    }

    /// Adds a span to a pending buffer.
    #[inline]
    fn add(&mut self, b: u32, a: &Arrival) {
        self.buffers[b as usize].add(a);
        self.span_buffer[a.span as usize] = b;
        if self.words > 0 {
            let span = a.span as usize * self.words;
            let into = b as usize * self.words;
            for w in 0..self.words {
                self.hits[into + w] |= self.span_hits[span + w];
            }
        }
    }
}
