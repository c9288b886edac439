//! The comparison report: what each strategy kept, what it missed, what it cost.

use serde::Serialize;

use super::strategies::SlowThreshold;
use crate::tail::BufferEffects;

/// The whole report (`sampling.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonReport {
    /// What the full capture held.
    pub run: RunSummary,
    /// One entry per strategy, in the strategies file's order.
    pub strategies: Vec<StrategyReport>,
}

/// The full capture and its ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Traces in the capture.
    pub traces: u64,
    /// Spans in the capture.
    pub spans: u64,
    /// Estimated bytes of all spans (see [`crate::size`]).
    pub bytes: u64,
    /// Where errors and latencies came from: `requests.jsonl` or `spans`.
    pub ground_truth: String,
    /// Traces that failed.
    pub error_traces: u64,
    /// Traces slower than the threshold.
    pub slow_traces: u64,
    /// Traces that started inside an incident window.
    pub incident_traces: u64,
    /// Traces that are any of the three.
    pub interesting_traces: u64,
    /// The threshold as configured.
    pub slow_threshold: SlowThreshold,
    /// The threshold in milliseconds (the run's p99 when so configured).
    pub slow_threshold_ms: f64,
    /// Incident windows given.
    pub incident_windows: u64,
    /// Requests in `requests.jsonl` with no span in the capture: no strategy can keep them,
    /// so they are left out of every recall.
    pub requests_without_spans: u64,
}

/// How many of one kind of trace a strategy kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Recall {
    /// Such traces in the capture.
    pub total: u64,
    /// Kept at least in part.
    pub kept: u64,
    /// Kept whole (every span).
    pub kept_whole: u64,
    /// `kept / total` (`None` when there are none).
    pub recall: Option<f64>,
    /// `kept_whole / total`.
    pub recall_whole: Option<f64>,
}

impl Recall {
    pub(crate) fn new(total: u64, kept: u64, kept_whole: u64) -> Self {
        let ratio = |n: u64| (total > 0).then(|| n as f64 / total as f64);
        Recall {
            total,
            kept,
            kept_whole,
            recall: ratio(kept),
            recall_whole: ratio(kept_whole),
        }
    }
}

/// One strategy's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyReport {
    /// Its name.
    pub name: String,
    /// The head sampler, as `OTEL_TRACES_SAMPLER[=ARG]`.
    pub head: Option<String>,
    /// Where the tail policy came from.
    pub tail: Option<String>,
    /// Traces with at least one span kept.
    pub traces_kept: u64,
    /// `traces_kept` over all traces.
    pub traces_kept_fraction: f64,
    /// Spans kept.
    pub spans_kept: u64,
    /// Estimated bytes kept.
    pub bytes_kept: u64,
    /// `bytes_kept` over all bytes: the storage and network bill, relative to keeping all.
    pub bytes_kept_fraction: f64,
    /// Traces kept only in part (some spans but not all).
    pub fragments: u64,
    /// Error traces.
    pub errors: Recall,
    /// Slow traces.
    pub slow: Recall,
    /// Traces inside incident windows.
    pub incident: Recall,
    /// Interesting (error, slow or incident) traces per 1,000 kept traces.
    pub interesting_per_1000_kept: Option<f64>,
    /// Tail-buffer effects, for strategies with a tail stage.
    pub tail_effects: Option<TailReport>,
    /// Warnings from reading the tail policy.
    pub warnings: Vec<String>,
}

/// What the tail buffer did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TailReport {
    /// `decision_wait`, ms.
    pub decision_wait_ms: f64,
    /// `num_traces`.
    pub num_traces: u64,
    /// Eviction, late-span and re-decision counts.
    pub effects: BufferEffects,
    /// Median time from a trace's last span ending to its decision, ms (negative: decided
    /// before the trace was over, which is how fragments happen).
    pub decision_delay_ms_p50: Option<f64>,
    /// 99th percentile of the same.
    pub decision_delay_ms_p99: Option<f64>,
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "-".to_string())
}

impl ComparisonReport {
    /// A plain, aligned text table with one row per strategy, then per-strategy notes.
    pub fn to_table(&self) -> String {
        let r = &self.run;
        let mut out = format!(
            "{} traces, {} spans, {:.2} MB (estimated); ground truth: {}\n{} error, {} slow (> {:.1} ms), {} in incidents, {} interesting\n\n",
            r.traces,
            r.spans,
            r.bytes as f64 / 1e6,
            r.ground_truth,
            r.error_traces,
            r.slow_traces,
            r.slow_threshold_ms,
            r.incident_traces,
            r.interesting_traces
        );
        let header = [
            "strategy",
            "traces kept",
            "spans kept",
            "MB kept",
            "error recall",
            "slow recall",
            "incident recall",
            "fragments",
            "interesting/1k",
            "evicted early",
            "late spans",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
        for s in &self.strategies {
            let (evicted, late) = match &s.tail_effects {
                Some(t) => (
                    t.effects.traces_evicted_undecided.to_string(),
                    t.effects.late_spans.to_string(),
                ),
                None => ("-".to_string(), "-".to_string()),
            };
            rows.push(vec![
                s.name.clone(),
                format!("{} ({:.1}%)", s.traces_kept, s.traces_kept_fraction * 100.0),
                s.spans_kept.to_string(),
                format!(
                    "{:.2} ({:.1}%)",
                    s.bytes_kept as f64 / 1e6,
                    s.bytes_kept_fraction * 100.0
                ),
                pct(s.errors.recall),
                pct(s.slow.recall),
                pct(s.incident.recall),
                s.fragments.to_string(),
                s.interesting_per_1000_kept
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "-".to_string()),
                evicted,
                late,
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| {
                    if c == 0 {
                        format!("{cell:<w$}", w = widths[c])
                    } else {
                        format!("{cell:>w$}", w = widths[c])
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
                out.push('\n');
            }
        }
        for s in &self.strategies {
            let mut notes = Vec::new();
            if let Some(h) = &s.head {
                notes.push(format!("head {h}"));
            }
            if let Some(t) = &s.tail {
                notes.push(format!("tail {t}"));
            }
            if let Some(t) = &s.tail_effects {
                let e = &t.effects;
                notes.push(format!(
                    "decision_wait {:.0} ms, num_traces {}; decisions {} ({} kept); late spans: {} followed the buffer, {} a cache, {} decided again ({} traces decided twice); decision delay after trace end p50 {} / p99 {}",
                    t.decision_wait_ms,
                    t.num_traces,
                    e.decisions,
                    e.sampled_decisions,
                    e.late_spans_followed_buffered_decision,
                    e.late_spans_followed_cached_decision,
                    e.late_spans_decided_again,
                    e.traces_decided_more_than_once,
                    t.decision_delay_ms_p50
                        .map(|v| format!("{v:.0} ms"))
                        .unwrap_or_else(|| "-".into()),
                    t.decision_delay_ms_p99
                        .map(|v| format!("{v:.0} ms"))
                        .unwrap_or_else(|| "-".into()),
                ));
                // The effects of the keys of current Collector versions, when they acted.
                for (n, what) in [
                    (
                        e.decisions_after_root,
                        "decisions taken decision_wait_after_root_received after the root span",
                    ),
                    (
                        e.traces_dropped_too_large,
                        "traces dropped past maximum_trace_size_bytes",
                    ),
                    (
                        e.traces_decided_to_make_room,
                        "traces decided early to make room (block_on_overflow)",
                    ),
                ] {
                    if n > 0 {
                        notes.push(format!("{n} {what}"));
                    }
                }
            }
            for w in &s.warnings {
                notes.push(format!("warning: {w}"));
            }
            if !notes.is_empty() {
                out.push_str(&format!("\n{}:\n", s.name));
                for n in notes {
                    out.push_str(&format!("  {n}\n"));
                }
            }
        }
        out
    }
}
