//! The counterfactual comparison: replay one full-capture run through several sampling
//! strategies and score what each would have kept against what really happened.
//!
//! Everything runs in recorded time. Head samplers decide when a span starts: with
//! `parentbased_*` the root decides from its trace id and every span of the trace follows;
//! otherwise each span decides on its own, in start order (which is what makes a rate-limited
//! sampler without parent-based fragment traces). Tail samplers see spans arrive at their end
//! time. Head then tail: the tail sees only the spans the head kept.
//!
//! Layout:
//! - [`ground_truth`]: `requests.jsonl` and `incidents.jsonl`.
//! - [`strategies`]: the strategies file.
//! - [`report`]: the report and its table.

pub mod ground_truth;
pub mod report;
pub mod strategies;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracelab_trace::{Span, TraceId};

use crate::head::OtTraceState;
use crate::tail::{ArrivalOrder, TailSampler};

pub use ground_truth::{
    GroundTruthError, GroundTruthRequest, IncidentInterval, read_incidents_jsonl,
    read_requests_jsonl,
};
pub use report::{ComparisonReport, Recall, RunSummary, StrategyReport, TailReport};
pub use strategies::{
    SlowThreshold, StrategiesError, StrategiesFile, Strategy, TailStrategy, parse_strategies,
    read_strategies_file,
};

/// Everything a comparison reads.
#[derive(Debug, Clone)]
pub struct CompareInput {
    /// Every span of a full-capture run.
    pub spans: Vec<Span>,
    /// The load generator's record of every request, when there is one.
    pub requests: Option<Vec<GroundTruthRequest>>,
    /// Incident windows (may be empty).
    pub incidents: Vec<IncidentInterval>,
    /// What counts as slow.
    pub slow_threshold: SlowThreshold,
}

/// One trace of the capture with its ground truth. Traces are indexed by their number in
/// the [`ArrivalOrder`].
struct TraceFacts {
    /// Its spans, as a range of [`Traces::members`].
    spans: Range<usize>,
    /// The span that decides for parent-based head sampling.
    root: u32,
    max_end: u64,
    error: bool,
    slow: bool,
    incident: bool,
}

/// Every trace of the capture.
struct Traces {
    /// Span indices, grouped by trace and in input order within a trace.
    members: Vec<u32>,
    facts: Vec<TraceFacts>,
}

impl Traces {
    fn spans(&self, t: &TraceFacts) -> &[u32] {
        &self.members[t.spans.clone()]
    }
}

/// Runs every strategy over the same capture.
///
/// Strategies are independent replays of the same shared, read-only capture, so they run
/// on as many threads as the machine offers (at most one per strategy); the report keeps
/// the strategies' order.
pub fn compare(input: &CompareInput, strategies: &[Strategy]) -> ComparisonReport {
    let arrivals = ArrivalOrder::new(&input.spans);
    let (traces, run) = ground_truth(input, &arrivals);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(strategies.len());
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(strategy) = strategies.get(i) else {
                return done;
            };
            done.push((i, evaluate(strategy, &arrivals, &traces, &run)));
        }
    };
    let mut reports: Vec<(usize, StrategyReport)> = if threads > 1 {
        std::thread::scope(|scope| {
            let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
            let mut all = work();
            for helper in helpers {
                match helper.join() {
                    Ok(done) => all.extend(done),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            all
        })
    } else {
        work()
    };
    reports.sort_by_key(|(i, _)| *i);
    ComparisonReport {
        run,
        strategies: reports.into_iter().map(|(_, r)| r).collect(),
    }
}

fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ground_truth(input: &CompareInput, arrivals: &ArrivalOrder<'_>) -> (Traces, RunSummary) {
    let spans = &input.spans;
    let trace_of = arrivals.trace_of();
    let trace_ids = arrivals.trace_ids();
    // Group span indices by trace number (counting sort: numbers follow first appearance).
    let mut offsets = vec![0usize; trace_ids.len() + 1];
    for &t in trace_of {
        offsets[t as usize + 1] += 1;
    }
    for t in 0..trace_ids.len() {
        offsets[t + 1] += offsets[t];
    }
    let mut fill = offsets.clone();
    let mut members = vec![0u32; spans.len()];
    for (i, &t) in trace_of.iter().enumerate() {
        members[fill[t as usize]] = i as u32;
        fill[t as usize] += 1;
    }
    let requests: HashMap<TraceId, &GroundTruthRequest> = input
        .requests
        .iter()
        .flatten()
        .map(|r| (r.trace_id, r))
        .collect();
    let requests_without_spans = requests
        .keys()
        .filter(|id| arrivals.trace_number(id).is_none())
        .count();
    // Per trace: (error, latency ms, start instant), from the request when there is one.
    let facts: Vec<(bool, f64, u64, u64, u32)> = trace_ids
        .iter()
        .enumerate()
        .map(|(t, id)| {
            let idx = &members[offsets[t]..offsets[t + 1]];
            let min_start = idx.iter().map(|&i| spans[i as usize].start_unix_nano).min();
            let max_end = idx.iter().map(|&i| spans[i as usize].end_unix_nano).max();
            let (min_start, max_end) = (min_start.unwrap_or(0), max_end.unwrap_or(0));
            let root = idx
                .iter()
                .copied()
                .filter(|&i| spans[i as usize].parent_span_id.is_none())
                .min_by_key(|&i| (spans[i as usize].start_unix_nano, i))
                .or_else(|| {
                    idx.iter()
                        .copied()
                        .min_by_key(|&i| (spans[i as usize].start_unix_nano, i))
                })
                .unwrap_or(0);
            match requests.get(id) {
                Some(r) => (r.error, r.latency_ms, r.start_unix_nano, max_end, root),
                None => (
                    idx.iter().any(|&i| spans[i as usize].is_error()),
                    max_end.saturating_sub(min_start) as f64 / 1e6,
                    min_start,
                    max_end,
                    root,
                ),
            }
        })
        .collect();
    let threshold_ms = match input.slow_threshold {
        SlowThreshold::Ms(ms) => ms,
        SlowThreshold::P99 => {
            let mut lat: Vec<f64> = facts.iter().map(|f| f.1).collect();
            lat.sort_by(f64::total_cmp);
            nearest_rank(&lat, 0.99).unwrap_or(0.0)
        }
    };
    let traces: Vec<TraceFacts> = facts
        .iter()
        .enumerate()
        .map(|(t, &(error, latency, start, max_end, root))| TraceFacts {
            spans: offsets[t]..offsets[t + 1],
            root,
            max_end,
            error,
            slow: latency > threshold_ms,
            incident: input.incidents.iter().any(|w| w.contains(start)),
        })
        .collect();
    let count = |f: &dyn Fn(&TraceFacts) -> bool| traces.iter().filter(|t| f(t)).count() as u64;
    let run = RunSummary {
        traces: traces.len() as u64,
        spans: spans.len() as u64,
        bytes: arrivals.bytes().iter().sum(),
        ground_truth: if input.requests.is_some() {
            "requests.jsonl".to_string()
        } else {
            "spans".to_string()
        },
        error_traces: count(&|t| t.error),
        slow_traces: count(&|t| t.slow),
        incident_traces: count(&|t| t.incident),
        interesting_traces: count(&|t| t.error || t.slow || t.incident),
        slow_threshold: input.slow_threshold,
        slow_threshold_ms: threshold_ms,
        incident_windows: input.incidents.len() as u64,
        requests_without_spans: requests_without_spans as u64,
    };
    (
        Traces {
            members,
            facts: traces,
        },
        run,
    )
}

/// Which spans a head sampler keeps, replayed in start order.
fn head_mask(
    config: &crate::head::HeadSamplerConfig,
    spans: &[Span],
    traces: &Traces,
) -> Vec<bool> {
    let mut decider = config.decider();
    let mut kept = vec![false; spans.len()];
    if decider.parent_based() {
        // Sorting (start, trace) pairs gives the order of a stable sort by start, without
        // reading a span for every comparison.
        let facts = &traces.facts;
        let mut roots: Vec<(u64, u32)> = facts
            .iter()
            .enumerate()
            .map(|(t, f)| (spans[f.root as usize].start_unix_nano, t as u32))
            .collect();
        roots.sort_unstable();
        for (_, t) in roots {
            let t = t as usize;
            let root = &spans[facts[t].root as usize];
            // The root inherits only `rv` from its caller's context; any `th` it recorded
            // was written by the sampler that actually ran, which is not the one replayed.
            let ot = OtTraceState::from_tracestate_header(&root.trace_state);
            let d = decider.decide_independent(&root.trace_id.0, &ot, root.start_unix_nano);
            for &i in traces.spans(&facts[t]) {
                kept[i as usize] = d.sampled;
            }
        }
    } else {
        let mut order: Vec<(u64, u32)> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.start_unix_nano, i as u32))
            .collect();
        order.sort_unstable();
        for (_, i) in order {
            let i = i as usize;
            let s = &spans[i];
            let ot = OtTraceState::from_tracestate_header(&s.trace_state);
            kept[i] = decider
                .decide_independent(&s.trace_id.0, &ot, s.start_unix_nano)
                .sampled;
        }
    }
    kept
}

fn evaluate(
    strategy: &Strategy,
    arrivals: &ArrivalOrder<'_>,
    traces: &Traces,
    run: &RunSummary,
) -> StrategyReport {
    let spans = arrivals.spans();
    let bytes = arrivals.bytes();
    let head_kept = strategy.head.as_ref().map(|h| head_mask(h, spans, traces));
    let mut tail_effects = None;
    let kept = match &strategy.tail {
        None => head_kept.unwrap_or_else(|| vec![true; spans.len()]),
        Some(tail) => {
            let mut sampler = TailSampler::new(&tail.config);
            let outcome = sampler.simulate_prepared(arrivals, head_kept.as_deref());
            let mut delays: Vec<f64> = outcome
                .decisions
                .iter()
                .filter_map(|d| {
                    let t = arrivals.trace_number(&d.trace_id)?;
                    traces.facts.get(t as usize).map(|f| f.max_end).map(|end| {
                        // Subtract as integers: absolute nanosecond instants do not fit
                        // an f64 mantissa.
                        (i128::from(d.decided_at_nanos) - i128::from(end)) as f64 / 1e6
                    })
                })
                .collect();
            delays.sort_by(f64::total_cmp);
            tail_effects = Some(TailReport {
                decision_wait_ms: tail.config.decision_wait_nanos as f64 / 1e6,
                num_traces: tail.config.num_traces,
                effects: outcome.effects,
                decision_delay_ms_p50: nearest_rank(&delays, 0.5),
                decision_delay_ms_p99: nearest_rank(&delays, 0.99),
            });
            outcome.kept
        }
    };
    let (mut traces_kept, mut fragments) = (0u64, 0u64);
    let mut tallies = [[0u64; 3]; 4]; // [error, slow, incident, interesting] × [total, kept, whole]
    for t in &traces.facts {
        let n = traces
            .spans(t)
            .iter()
            .filter(|&&i| kept[i as usize])
            .count();
        let any = n > 0;
        let whole = n == t.spans.len();
        traces_kept += u64::from(any);
        fragments += u64::from(any && !whole);
        let kinds = [t.error, t.slow, t.incident, t.error || t.slow || t.incident];
        for (k, &is) in kinds.iter().enumerate() {
            if is {
                tallies[k][0] += 1;
                tallies[k][1] += u64::from(any);
                tallies[k][2] += u64::from(any && whole);
            }
        }
    }
    let spans_kept = kept.iter().filter(|k| **k).count() as u64;
    let bytes_kept: u64 = kept
        .iter()
        .zip(bytes)
        .filter(|(k, _)| **k)
        .map(|(_, b)| *b)
        .sum();
    let frac = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let recall = |k: usize| Recall::new(tallies[k][0], tallies[k][1], tallies[k][2]);
    StrategyReport {
        name: strategy.name.clone(),
        head: strategy.head.as_ref().map(|h| match h.env_arg() {
            Some(a) => format!("{}={a}", h.env_name()),
            None => h.env_name(),
        }),
        tail: strategy.tail.as_ref().map(|t| t.source.clone()),
        traces_kept,
        traces_kept_fraction: frac(traces_kept, run.traces),
        spans_kept,
        bytes_kept,
        bytes_kept_fraction: frac(bytes_kept, run.bytes),
        fragments,
        errors: recall(0),
        slow: recall(1),
        incident: recall(2),
        interesting_per_1000_kept: (traces_kept > 0)
            .then(|| tallies[3][1] as f64 * 1000.0 / traces_kept as f64),
        tail_effects,
        warnings: strategy
            .tail
            .as_ref()
            .map(|t| t.warnings.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
