//! The tail-sampling buffer, simulated in recorded time.
//!
//! Spans arrive at their end time. A trace's first arrival opens a buffer and schedules its
//! decision `decision_wait` later; a ring of `num_traces` ids evicts the oldest trace when a
//! new one arrives, decided or not (an undecided one is "dropped too early"); a decided trace
//! stays in the ring, so spans arriving late follow its decision; once it has left the ring
//! only the decision caches remember it, and without them a late span opens a new buffer
//! and the trace is decided again on whatever arrives. That is the Collector's processor,
//! except that it decides on a one-second tick, so its decisions come up to a second later.

use std::collections::VecDeque;

use serde::Serialize;
use tracelab_trace::{Span, TraceId};

use super::cache::{IdMap, LruSet};
use super::config::TailSamplingConfig;
use super::policy::{Evaluator, SpanTable, TraceView, decide, status_bit};
use crate::size::estimated_span_bytes;

/// Spans sorted by arrival (end time), with their estimated sizes: the part of a replay
/// that does not depend on the policies, computed once and shared by every strategy.
#[derive(Debug, Clone)]
pub struct ArrivalOrder<'a> {
    spans: &'a [Span],
    order: Vec<u32>,
    bytes: Vec<u64>,
}

impl<'a> ArrivalOrder<'a> {
    /// Sorts the spans by end time (ties by start time, then input order).
    pub fn new(spans: &'a [Span]) -> Self {
        let mut keyed: Vec<(u64, u64, u32)> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.end_unix_nano, s.start_unix_nano, i as u32))
            .collect();
        keyed.sort_unstable();
        ArrivalOrder {
            spans,
            order: keyed.into_iter().map(|(_, _, i)| i).collect(),
            bytes: spans.iter().map(estimated_span_bytes).collect(),
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
}

/// A tail sampler: compiled policies with their state.
#[derive(Debug)]
pub struct TailSampler {
    config: TailSamplingConfig,
    evaluators: Vec<Evaluator>,
    keys: Vec<String>,
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
        let mut keys = Vec::new();
        let evaluators = config
            .policies
            .iter()
            .map(|p| Evaluator::compile(p, &mut keys))
            .collect();
        TailSampler {
            config: config.clone(),
            evaluators,
            keys,
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
        let idx: Vec<u32> = (0..spans.len() as u32).collect();
        let bytes: Vec<u64> = spans.iter().map(estimated_span_bytes).collect();
        let table = SpanTable::new(spans, &self.keys, &idx, &bytes);
        let mut p = Pending::default();
        for (i, s) in spans.iter().enumerate() {
            p.add(i as u32, s, table.bytes[i]);
        }
        let view = p.view(&first.trace_id.0, &table, now_nanos, &idx);
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
        let order: Vec<u32> = match selected {
            Some(sel) => prepared
                .order
                .iter()
                .copied()
                .filter(|&i| sel.get(i as usize).copied().unwrap_or(false))
                .collect(),
            None => prepared.order.clone(),
        };
        let table = SpanTable::new(spans, &self.keys, &order, &prepared.bytes);
        let expected_traces = order
            .len()
            .min(usize::try_from(self.config.num_traces).unwrap_or(usize::MAX))
            .min(1 << 20);
        let mut run = Run {
            wait: self.config.decision_wait_nanos,
            ring_size: usize::try_from(self.config.num_traces).unwrap_or(usize::MAX),
            sample_on_first_match: self.config.sample_on_first_match,
            table,
            // Sized up front: growing these maps while replaying would rehash them
            // repeatedly, and that costs more than the decisions.
            slots: IdMap::with_capacity_and_hasher(expected_traces, Default::default()),
            ring: VecDeque::with_capacity(expected_traces),
            due: VecDeque::with_capacity(expected_traces),
            sampled_cache: LruSet::new(self.config.sampled_cache_size),
            non_sampled_cache: LruSet::new(self.config.non_sampled_cache_size),
            ever_decided: IdMap::with_capacity_and_hasher(order.len() / 4, Default::default()),
            pool: Vec::new(),
            next_generation: 0,
            kept: vec![false; spans.len()],
            effects: BufferEffects::default(),
            decisions: Vec::with_capacity(order.len() / 4),
        };
        for &i in &order {
            let now = spans[i as usize].end_unix_nano;
            run.fire_due(now, &mut self.evaluators);
            run.ingest(i, now);
        }
        run.fire_due(u64::MAX, &mut self.evaluators);
        TailOutcome {
            kept: run.kept,
            effects: run.effects,
            decisions: run.decisions,
        }
    }
}

#[derive(Default)]
struct Pending {
    spans: Vec<u32>,
    first_arrival: u64,
    min_start: u64,
    max_end: u64,
    bytes: u64,
    status_mask: u8,
    sampled_flag: bool,
    /// The trace had been decided before this buffer opened: its spans are late.
    after_decision: bool,
}

impl Pending {
    fn add(&mut self, i: u32, s: &Span, bytes: u64) {
        if self.spans.is_empty() {
            self.min_start = s.start_unix_nano;
            self.max_end = s.end_unix_nano;
        } else {
            self.min_start = self.min_start.min(s.start_unix_nano);
            self.max_end = self.max_end.max(s.end_unix_nano);
        }
        self.spans.push(i);
        self.bytes += bytes;
        self.status_mask |= status_bit(s.status.code);
        self.sampled_flag |= s.flags & 1 == 1;
    }

    fn view<'t, 'a>(
        &self,
        trace_id: &'t [u8; 16],
        table: &'t SpanTable<'a>,
        now: u64,
        spans: &'t [u32],
    ) -> TraceView<'t, 'a> {
        TraceView {
            trace_id,
            spans,
            table,
            min_start: self.min_start,
            max_end: self.max_end,
            bytes: self.bytes,
            status_mask: self.status_mask,
            any_sampled_flag: self.sampled_flag,
            now,
        }
    }
}

enum SlotState {
    Pending(Pending),
    Decided(bool),
}

struct Slot {
    generation: u64,
    state: SlotState,
}

struct Run<'a> {
    wait: u64,
    ring_size: usize,
    sample_on_first_match: bool,
    table: SpanTable<'a>,
    slots: IdMap<Slot>,
    /// Insertion order of the traces in memory; its length never exceeds `ring_size`.
    ring: VecDeque<(TraceId, u64)>,
    /// Decision deadlines in time order (constant wait, so arrival order is deadline order).
    due: VecDeque<(u64, TraceId, u64)>,
    sampled_cache: LruSet,
    non_sampled_cache: LruSet,
    ever_decided: IdMap<()>,
    /// Span lists of decided traces, reused so a decision allocates nothing.
    pool: Vec<Vec<u32>>,
    next_generation: u64,
    kept: Vec<bool>,
    effects: BufferEffects,
    decisions: Vec<TailDecision>,
}

impl Run<'_> {
    fn fire_due(&mut self, now: u64, evaluators: &mut [Evaluator]) {
        while let Some(&(deadline, id, generation)) = self.due.front() {
            if deadline > now {
                break;
            }
            self.due.pop_front();
            self.decide(id, generation, deadline, evaluators);
        }
    }

    fn decide(&mut self, id: TraceId, generation: u64, at: u64, evaluators: &mut [Evaluator]) {
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if slot.generation != generation {
            return;
        }
        let SlotState::Pending(p) = std::mem::replace(&mut slot.state, SlotState::Decided(false))
        else {
            return;
        };
        let view = p.view(&id.0, &self.table, at, &p.spans);
        let sampled = decide(evaluators, &view, self.sample_on_first_match);
        slot.state = SlotState::Decided(sampled);
        for &i in &p.spans {
            self.kept[i as usize] = sampled;
        }
        self.effects.decisions += 1;
        if sampled {
            self.effects.sampled_decisions += 1;
            self.sampled_cache.put(id);
        } else {
            self.non_sampled_cache.put(id);
        }
        if self.ever_decided.insert(id, ()).is_some() {
            self.effects.traces_decided_more_than_once += 1;
        }
        self.decisions.push(TailDecision {
            trace_id: id,
            first_arrival_nanos: p.first_arrival,
            decided_at_nanos: at,
            sampled,
            spans: p.spans.len() as u32,
        });
        let mut spans = p.spans;
        spans.clear();
        self.pool.push(spans);
    }

    fn ingest(&mut self, i: u32, now: u64) {
        let span = &self.table.spans[i as usize];
        let id = span.trace_id;
        let bytes = self.table.bytes[i as usize];
        if self.sampled_cache.get(&id) {
            self.kept[i as usize] = true;
            self.effects.late_spans += 1;
            self.effects.late_spans_followed_cached_decision += 1;
            return;
        }
        if self.non_sampled_cache.get(&id) {
            self.effects.late_spans += 1;
            self.effects.late_spans_followed_cached_decision += 1;
            return;
        }
        if let Some(slot) = self.slots.get_mut(&id) {
            match &mut slot.state {
                SlotState::Pending(p) => {
                    p.add(i, span, bytes);
                    if p.after_decision {
                        self.effects.late_spans += 1;
                        self.effects.late_spans_decided_again += 1;
                    }
                }
                SlotState::Decided(sampled) => {
                    self.kept[i as usize] = *sampled;
                    self.effects.late_spans += 1;
                    self.effects.late_spans_followed_buffered_decision += 1;
                }
            }
            return;
        }
        let after_decision = self.ever_decided.contains_key(&id);
        if after_decision {
            self.effects.late_spans += 1;
            self.effects.late_spans_decided_again += 1;
        }
        while self.ring.len() >= self.ring_size {
            let Some((old, generation)) = self.ring.pop_front() else {
                break;
            };
            if self
                .slots
                .get(&old)
                .is_some_and(|s| s.generation == generation)
                && let Some(Slot {
                    state: SlotState::Pending(p),
                    ..
                }) = self.slots.remove(&old)
            {
                self.effects.traces_evicted_undecided += 1;
                self.effects.spans_evicted_undecided += p.spans.len() as u64;
                let mut spans = p.spans;
                spans.clear();
                self.pool.push(spans);
            }
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let mut p = Pending {
            spans: self.pool.pop().unwrap_or_default(),
            first_arrival: now,
            after_decision,
            ..Pending::default()
        };
        p.add(i, span, bytes);
        self.slots.insert(
            id,
            Slot {
                generation,
                state: SlotState::Pending(p),
            },
        );
        self.ring.push_back((id, generation));
        self.due
            .push_back((now.saturating_add(self.wait), id, generation));
    }
}
