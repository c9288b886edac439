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

use tracelab_trace::{Span, TraceId};

use crate::head::OtTraceState;
use crate::tail::{ArrivalOrder, TailSampler};

pub use ground_truth::{
    GroundTruthError, GroundTruthRequest, IncidentWindow, read_incidents_jsonl, read_requests_jsonl,
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
    pub incidents: Vec<IncidentWindow>,
    /// What counts as slow.
    pub slow_threshold: SlowThreshold,
}

/// One trace of the capture with its ground truth.
struct TraceFacts {
    spans: Vec<u32>,
    /// The span that decides for parent-based head sampling.
    root: u32,
    max_end: u64,
    error: bool,
    slow: bool,
    incident: bool,
}

/// Runs every strategy over the same capture.
pub fn compare(input: &CompareInput, strategies: &[Strategy]) -> ComparisonReport {
    let spans = &input.spans;
    let arrivals = ArrivalOrder::new(spans);
    let bytes = arrivals.bytes();
    let (traces, run) = ground_truth(input, bytes);
    let reports = strategies
        .iter()
        .map(|s| evaluate(s, &arrivals, &traces, &run))
        .collect();
    ComparisonReport {
        run,
        strategies: reports,
    }
}

fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ground_truth(input: &CompareInput, bytes: &[u64]) -> (Vec<TraceFacts>, RunSummary) {
    let spans = &input.spans;
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    let mut grouped: Vec<(TraceId, Vec<u32>)> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        let slot = *index.entry(s.trace_id).or_insert_with(|| {
            grouped.push((s.trace_id, Vec::new()));
            grouped.len() - 1
        });
        grouped[slot].1.push(i as u32);
    }
    let requests: HashMap<TraceId, &GroundTruthRequest> = input
        .requests
        .iter()
        .flatten()
        .map(|r| (r.trace_id, r))
        .collect();
    let requests_without_spans = requests.keys().filter(|id| !index.contains_key(id)).count();
    // Per trace: (error, latency ms, start instant), from the request when there is one.
    let facts: Vec<(bool, f64, u64, u64, u32)> = grouped
        .iter()
        .map(|(id, idx)| {
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
    let traces: Vec<TraceFacts> = grouped
        .into_iter()
        .zip(&facts)
        .map(
            |((_, idx), &(error, latency, start, max_end, root))| TraceFacts {
                spans: idx,
                root,
                max_end,
                error,
                slow: latency > threshold_ms,
                incident: input.incidents.iter().any(|w| w.contains(start)),
            },
        )
        .collect();
    let count = |f: &dyn Fn(&TraceFacts) -> bool| traces.iter().filter(|t| f(t)).count() as u64;
    let run = RunSummary {
        traces: traces.len() as u64,
        spans: spans.len() as u64,
        bytes: bytes.iter().sum(),
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
    (traces, run)
}

/// Which spans a head sampler keeps, replayed in start order.
fn head_mask(
    config: &crate::head::HeadSamplerConfig,
    spans: &[Span],
    traces: &[TraceFacts],
) -> Vec<bool> {
    let mut decider = config.decider();
    let mut kept = vec![false; spans.len()];
    if decider.parent_based() {
        let mut roots: Vec<usize> = (0..traces.len()).collect();
        roots.sort_by_key(|&t| spans[traces[t].root as usize].start_unix_nano);
        for t in roots {
            let root = &spans[traces[t].root as usize];
            // The root inherits only `rv` from its caller's context; any `th` it recorded
            // was written by the sampler that actually ran, which is not the one replayed.
            let ot = OtTraceState::from_tracestate_header(&root.trace_state);
            let d = decider.decide_independent(&root.trace_id.0, &ot, root.start_unix_nano);
            for &i in &traces[t].spans {
                kept[i as usize] = d.sampled;
            }
        }
    } else {
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_by_key(|&i| (spans[i].start_unix_nano, i));
        for i in order {
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
    traces: &[TraceFacts],
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
            let mut trace_end: HashMap<TraceId, u64> = HashMap::new();
            for t in traces {
                if let Some(&first) = t.spans.first() {
                    trace_end.insert(spans[first as usize].trace_id, t.max_end);
                }
            }
            let mut delays: Vec<f64> = outcome
                .decisions
                .iter()
                .filter_map(|d| {
                    trace_end.get(&d.trace_id).map(|&end| {
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
    for t in traces {
        let n = t.spans.iter().filter(|&&i| kept[i as usize]).count();
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
        unsupported_policies: strategy
            .tail
            .as_ref()
            .map(|t| t.unsupported.clone())
            .unwrap_or_default(),
        warnings: strategy
            .tail
            .as_ref()
            .map(|t| t.warnings.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
