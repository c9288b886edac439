//! What a diff produces. Every type serializes with these field names, which
//! `docs/diff.schema.json` documents: they are part of tracelab's interface.

use serde::Serialize;

use crate::latency::LatencySummary;

/// The difference between two runs (`docs/diff.schema.json`). Durations are nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDiff {
    /// Layout version ([`super::DIFF_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Version of tracelab that wrote it.
    pub tracelab_version: String,
    /// How changes were decided.
    pub method: Method,
    /// The earlier run.
    pub before: RunSide,
    /// The later run.
    pub after: RunSide,
    /// Per service: changed ones first, strongest evidence first; then the others, most
    /// nearly significant first.
    pub services: Vec<EntityDiff>,
    /// Per operation (service + span name), ranked the same way.
    pub operations: Vec<EntityDiff>,
}

/// How changes were decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Method {
    /// Always `mann-whitney-u`: two-sided, normal approximation with tie and continuity
    /// corrections, on per-request values.
    pub test: String,
    /// Always `holm`: over every test of the diff, services and operations together.
    pub correction: String,
    /// Family-wise error rate.
    pub alpha: f64,
    /// Smallest change that counts, as a fraction of the earlier value.
    pub min_relative_change: f64,
    /// Smallest change in time per request that counts, nanoseconds.
    pub min_time_change_ns: f64,
    /// Smallest change in a rate that counts.
    pub min_rate_change: f64,
    /// Requests a run needs for a service or operation to be tested.
    pub min_requests: u64,
    /// Most per-request values tested per service or operation and run (a uniform sample
    /// beyond).
    pub max_samples: u64,
}

/// One run of a diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSide {
    /// Where it was read from.
    pub source: String,
    /// Traces (requests).
    pub traces: u64,
    /// Spans.
    pub spans: u64,
    /// Traces with at least one failing span.
    pub failed_traces: u64,
    /// End-to-end time of the traces.
    pub duration: LatencySummary,
}

/// Whether a service or operation was seen in both runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// In both runs.
    Both,
    /// Only in the earlier run: gone.
    BeforeOnly,
    /// Only in the later run: new.
    AfterOnly,
}

/// What is tested per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Its self time in the request, nanoseconds.
    SelfTime,
    /// Whether the request's failure started in it (0 or 1).
    ErrorOrigin,
}

impl Metric {
    /// Words for people.
    pub fn describe(&self) -> &'static str {
        match self {
            Metric::SelfTime => "self time",
            Metric::ErrorOrigin => "failures starting here",
        }
    }
}

/// One service or operation in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityDiff {
    /// Position in its list, from 1.
    pub rank: u64,
    /// The service.
    pub service: String,
    /// The operation (span name); null for a service.
    pub operation: Option<String>,
    /// Whether it was seen in both runs.
    pub presence: Presence,
    /// A tested metric changed, or it appeared or went with at least `min_requests` requests.
    pub changed: bool,
    /// The metrics that changed.
    pub changed_metrics: Vec<Metric>,
    /// Smallest Holm-adjusted p-value of its tests; null when nothing was tested.
    pub p_value: Option<f64>,
    /// Its numbers in the earlier run.
    pub before: EntityStats,
    /// Its numbers in the later run.
    pub after: EntityStats,
    /// One test per metric, when it was in both runs with enough requests.
    pub tests: Vec<MetricTest>,
}

/// A service's or operation's numbers in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityStats {
    /// Requests (traces) it took part in.
    pub requests: u64,
    /// Its spans.
    pub spans: u64,
    /// Median latency: of a service's entry spans, of an operation's spans.
    pub latency_p50_ns: u64,
    /// 99th-percentile latency, same spans.
    pub latency_p99_ns: u64,
    /// Fraction of those spans that failed.
    pub error_rate: f64,
    /// Critical-path share over the typical traces, as in the report.
    pub critical_share_p50: f64,
    /// Critical-path share over the slowest traces, as in the report.
    pub critical_share_p99: f64,
    /// Mean time on the critical path per request it took part in.
    pub critical_time_mean_ns: f64,
    /// Median self time per request it took part in (what the test's size threshold reads).
    pub self_time_p50_ns: f64,
    /// Mean self time per request it took part in.
    pub self_time_mean_ns: f64,
    /// Fraction of the requests it took part in whose failure started in it.
    pub error_origin_rate: f64,
}

/// One metric tested.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricTest {
    /// What was tested.
    pub metric: Metric,
    /// Per-request values tested from the earlier run.
    pub before_n: u64,
    /// From the later run.
    pub after_n: u64,
    /// The earlier run's typical value: the median per-request value for `self_time`
    /// (nanoseconds), the rate for `error_origin`. The size thresholds apply to its change.
    pub before: f64,
    /// The same in the later run.
    pub after: f64,
    /// Probability that a request of the later run has a larger value than one of the earlier
    /// run, ties counting half: 0.5 means no tendency.
    pub prob_greater: f64,
    /// The test statistic, positive when the later run tends larger.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Holm-adjusted p-value.
    pub p_adjusted: f64,
    /// `p_adjusted` is below α.
    pub significant: bool,
    /// The change from `before` to `after` passes the size thresholds.
    pub large_enough: bool,
    /// Both.
    pub changed: bool,
}
