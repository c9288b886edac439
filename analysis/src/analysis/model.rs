//! What an analysis produces: the run's totals, per-service and per-operation numbers, and the
//! traces it singles out. Every type serializes with these field names, which
//! `docs/analysis.schema.json` documents: they are part of tracelab's interface.

use serde::Serialize;
use tracelab_trace::{SpanId, TraceId};

use crate::attribution::{ErrorOrigin, OriginSpan};
use crate::critical_path::CriticalPath;
use crate::graph::ServiceGraph;
use crate::health::TraceHealth;
use crate::instances::{InstanceStats, VersionStats};
use crate::latency::LatencySummary;
use crate::timeline::TimelinePoint;

/// Everything the reports show, computed once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Totals over the whole run.
    pub overview: Overview,
    /// Per service, ranked by share of critical-path time in the slowest requests.
    pub services: Vec<ServiceStats>,
    /// Per operation (service + span name), ranked the same way.
    pub operations: Vec<OperationStats>,
    /// Which traces the critical-path shares were computed over.
    pub share_windows: ShareWindows,
    /// Each service that ran more than one instance, by instance: by service name, then by
    /// critical-path share in the slowest requests.
    pub instances: Vec<InstanceStats>,
    /// The same services by `service.version`, ranked the same way.
    pub versions: Vec<VersionStats>,
    /// Likely origins of failures, most frequent first.
    pub error_origins: Vec<ErrorOrigin>,
    /// Whether the traces are whole and believable.
    pub health: TraceHealth,
    /// Who calls whom.
    pub graph: ServiceGraph,
    /// Requests, errors and latency per second.
    pub timeline: Vec<TimelinePoint>,
    /// The slowest traces, slowest first.
    pub slowest_traces: Vec<TraceSummary>,
    /// Failing traces, picked to cover as many distinct error origins as possible.
    pub failing_traces: Vec<TraceSummary>,
    /// Critical path and span timings of the singled-out traces (slowest and failing, without
    /// repeats), or of every trace with [`crate::AnalysisOptions::keep_all_timings`].
    pub trace_timings: Vec<TraceTimings>,
}

/// Totals over the whole run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Overview {
    /// Traces analysed (requests, when each request is one trace).
    pub traces: u64,
    /// Spans analysed.
    pub spans: u64,
    /// The fewest spans one trace had (0 with no traces).
    pub min_spans_per_trace: u64,
    /// The most spans one trace had.
    pub max_spans_per_trace: u64,
    /// Traces with at least one failing span.
    pub failed_traces: u64,
    /// Distinct services.
    pub services: u64,
    /// End-to-end time of the traces (the duration of the span each critical path starts from).
    pub duration: LatencySummary,
    /// Earliest span start, nanoseconds since the Unix epoch (0 with no spans).
    pub first_start_unix_nano: u64,
    /// Latest span end, nanoseconds since the Unix epoch (0 with no spans).
    pub last_end_unix_nano: u64,
}

/// The traces critical-path shares are computed over.
///
/// Percentiles are taken over duration buckets at most 1/256 of a duration wide, so a window
/// holds whole buckets: its edges may include a few traces within that margin of the exact
/// percentile. The bounds reported are the shortest and longest durations actually inside.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ShareWindows {
    /// "Typical" requests: traces with a duration between the 45th and 55th percentile of all
    /// trace durations, inclusive. This is the lower bound, in nanoseconds.
    pub p50_low_ns: u64,
    /// Upper bound of the typical window, nanoseconds.
    pub p50_high_ns: u64,
    /// How many traces fell in the typical window.
    pub p50_traces: u64,
    /// "Slow" requests: traces with a duration at or above the 99th percentile.
    pub p99_threshold_ns: u64,
    /// How many traces are that slow.
    pub p99_traces: u64,
}

/// One service's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStats {
    /// `service.name`.
    pub service: String,
    /// Requests the service handled: its entry spans (spans whose parent is missing or in
    /// another service, plus SERVER and CONSUMER spans).
    pub requests: u64,
    /// Entry spans that failed.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Duration of the entry spans.
    pub latency: LatencySummary,
    /// All spans of the service.
    pub spans: u64,
    /// All failing spans of the service.
    pub error_spans: u64,
    /// Self time of the service's spans (duration minus time covered by the children each
    /// waited for), one sample per span.
    pub self_time: LatencySummary,
    /// Self time of all the service's spans added up, nanoseconds: the work it did itself.
    pub self_time_total_ns: u64,
    /// Fraction (0..=1) of the critical-path time of typical traces spent in this service.
    pub critical_share_p50: f64,
    /// Fraction (0..=1) of the critical-path time of the slowest traces spent in this service.
    pub critical_share_p99: f64,
}

/// One operation's numbers (service + span name).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationStats {
    /// `service.name`.
    pub service: String,
    /// Span name.
    pub operation: String,
    /// Spans of this operation.
    pub count: u64,
    /// Failing spans.
    pub errors: u64,
    /// `errors / count`.
    pub error_rate: f64,
    /// Span durations.
    pub latency: LatencySummary,
    /// Self time of the spans (duration minus time covered by the children each waited for).
    pub self_time: LatencySummary,
    /// Self time of all its spans added up, nanoseconds.
    pub self_time_total_ns: u64,
    /// Fraction (0..=1) of the critical-path time of typical traces spent in this operation.
    pub critical_share_p50: f64,
    /// Fraction (0..=1) of the critical-path time of the slowest traces spent in it.
    pub critical_share_p99: f64,
}

/// A trace singled out for a closer look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    /// The trace.
    pub trace_id: TraceId,
    /// Service of the span the critical path starts from (the root, in a whole trace).
    pub service: String,
    /// Name of that span.
    pub operation: String,
    /// Its start, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End-to-end time, nanoseconds.
    pub duration_ns: u64,
    /// Spans in the trace.
    pub spans: u64,
    /// Failing spans in the trace.
    pub error_spans: u64,
    /// One root, no orphans, no duplicated ids.
    pub complete: bool,
    /// Where the failure most likely started, for a failed trace.
    pub error_origin: Option<OriginSpan>,
}

/// Per-span timings of one trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceTimings {
    /// The trace.
    pub trace_id: TraceId,
    /// Its critical path.
    pub critical_path: CriticalPath,
    /// Per span, aligned with `Trace::spans`.
    pub spans: Vec<SpanTiming>,
}

/// Self time and critical-path time of one span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanTiming {
    /// The span.
    pub span_id: SpanId,
    /// Duration minus the union of its children's intervals, nanoseconds.
    pub self_ns: u64,
    /// Time this span's own work lies on the critical path, nanoseconds.
    pub critical_ns: u64,
}
