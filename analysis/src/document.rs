//! The analysis as a document for programs: `analysis.json` in every run directory and the
//! output of `tracelab report --json`.
//!
//! One serde model, described field by field by `docs/analysis.schema.json` (a test checks
//! that what is written matches it). Field names are stable: a change that renames or removes
//! a field, or changes a unit, raises [`SCHEMA_VERSION`]; new fields may appear without.
//!
//! Times: durations are nanoseconds (`*_ns`), instants are nanoseconds since the Unix epoch
//! (`*_unix_nano`), except inside a trace, where `start` and `end` of critical-path segments
//! and spans are nanoseconds since the trace's `start_unix_nano` (the start of the span its
//! critical path starts from). Offsets stay small enough for a JSON reader that keeps numbers
//! as doubles (`jq`, JavaScript) to add and subtract them exactly; a span that started before
//! that instant (clock skew) has a negative `start`.

use std::collections::HashMap;

use serde::Serialize;
use tracelab_trace::{SpanId, SpanKind, Trace, TraceId};

use crate::analysis::{
    Analysis, OperationStats, Overview, ServiceStats, ShareWindows, TraceSummary, TraceTimings,
    trace_timings,
};
use crate::attribution::{ErrorOrigin, error_origin_index, origin_span};
use crate::health::TraceHealth;
use crate::instances::{InstanceStats, VersionStats};
use crate::tree::SpanTree;

/// Layout version of [`AnalysisDocument`].
pub const SCHEMA_VERSION: u32 = 1;

/// Why a trace could not be put in the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// A trace asked for by id is not among the traces given.
    #[error("no trace {trace_id} among the {traces} traces analysed")]
    UnknownTrace {
        /// The trace asked for.
        trace_id: TraceId,
        /// How many traces there were.
        traces: usize,
    },
}

/// Everything a program needs from an analysis (see the module documentation for units).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysisDocument {
    /// Layout version of this document ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Version of tracelab that wrote it.
    pub tracelab_version: String,
    /// Totals over all traces.
    pub overview: Overview,
    /// Which traces the critical-path shares were computed over.
    pub share_windows: ShareWindows,
    /// Per service, ranked by critical-path share at p99.
    pub services: Vec<ServiceStats>,
    /// Per operation (service + span name), ranked the same way.
    pub operations: Vec<OperationStats>,
    /// Each service that ran more than one instance, by instance (`service.instance.id`).
    pub instances: Vec<InstanceStats>,
    /// The same services by `service.version`.
    pub versions: Vec<VersionStats>,
    /// Where failures started, most frequent first.
    pub error_origins: Vec<ErrorOrigin>,
    /// Whether the traces arrived whole.
    pub health: TraceHealth,
    /// The traces asked for by id, in the order asked, then the traces the report singles
    /// out (slowest, then failing), each once.
    pub traces: Vec<TraceDocument>,
}

/// Why a trace is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceReason {
    /// Asked for by id.
    Requested,
    /// One of the slowest traces.
    Slowest,
    /// One of the failing traces the report shows.
    Failing,
}

/// One trace: its summary, critical path and span timings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceDocument {
    /// The trace.
    pub trace_id: TraceId,
    /// Why it is here, at least one reason.
    pub reasons: Vec<TraceReason>,
    /// Service of the span the critical path starts from (the root, in a whole trace).
    pub service: String,
    /// Name of that span.
    pub operation: String,
    /// Start of that span, nanoseconds since the Unix epoch: the origin of `start` and `end`
    /// below.
    pub start_unix_nano: u64,
    /// End-to-end time (that span's duration), nanoseconds.
    pub duration_ns: u64,
    /// Spans in the trace.
    pub span_count: u64,
    /// Failing spans in the trace.
    pub error_spans: u64,
    /// One root, no orphans, no duplicated ids.
    pub complete: bool,
    /// Where the failure most likely started, for a failed trace.
    pub error_origin: Option<crate::attribution::OriginSpan>,
    /// The critical path in time order; the segments tile `0..duration_ns` exactly.
    pub critical_path: Vec<PathSegment>,
    /// Every span of the trace, in start order.
    pub spans: Vec<SpanDocument>,
}

/// One stretch of a critical path, spent in one span's own work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathSegment {
    /// The span doing the work.
    pub span_id: SpanId,
    /// Its service.
    pub service: String,
    /// Its name.
    pub operation: String,
    /// Start of the stretch, nanoseconds since the trace's `start_unix_nano`.
    pub start: u64,
    /// End of the stretch, nanoseconds since the trace's `start_unix_nano`.
    pub end: u64,
}

/// One span of a trace with its timings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanDocument {
    /// The span.
    pub span_id: SpanId,
    /// Its parent, as the span names it (the parent may be missing from the trace).
    pub parent_span_id: Option<SpanId>,
    /// Its service.
    pub service: String,
    /// Its name.
    pub operation: String,
    /// Its kind.
    pub kind: SpanKind,
    /// Start, nanoseconds since the trace's `start_unix_nano` (negative when earlier).
    pub start: i64,
    /// End, nanoseconds since the trace's `start_unix_nano`.
    pub end: i64,
    /// Duration minus the time covered by the children it waited for, nanoseconds.
    pub self_ns: u64,
    /// Time its own work lies on the critical path, nanoseconds.
    pub critical_ns: u64,
    /// Status Error.
    pub error: bool,
    /// Its parent does not wait for it (a CONSUMER under a PRODUCER, a `follows_from` child),
    /// so nothing under it is on the parent's critical path.
    pub asynchronous: bool,
}

impl AnalysisDocument {
    /// The document for `analysis`, with the traces in `requested` and those the analysis
    /// singles out. `traces` must hold all of them (passing every trace is fine); a singled-out
    /// trace that is missing is left out, a requested one is an error.
    pub fn new(
        analysis: &Analysis,
        traces: &[Trace],
        requested: &[TraceId],
    ) -> Result<Self, DocumentError> {
        let by_id: HashMap<TraceId, &Trace> = traces.iter().map(|t| (t.trace_id, t)).collect();
        let mut wanted: Vec<(TraceId, Vec<TraceReason>)> = Vec::new();
        let mut add =
            |id: TraceId, reason: TraceReason| match wanted.iter_mut().find(|(w, _)| *w == id) {
                Some((_, reasons)) if !reasons.contains(&reason) => reasons.push(reason),
                Some(_) => {}
                None => wanted.push((id, vec![reason])),
            };
        for &id in requested {
            if !by_id.contains_key(&id) {
                return Err(DocumentError::UnknownTrace {
                    trace_id: id,
                    traces: traces.len(),
                });
            }
            add(id, TraceReason::Requested);
        }
        for t in &analysis.slowest_traces {
            add(t.trace_id, TraceReason::Slowest);
        }
        for t in &analysis.failing_traces {
            add(t.trace_id, TraceReason::Failing);
        }
        let documents = wanted
            .into_iter()
            .filter_map(|(id, reasons)| {
                let trace = by_id.get(&id)?;
                let timings = analysis
                    .trace_timings
                    .iter()
                    .find(|t| t.trace_id == id && t.spans.len() == trace.spans.len());
                Some(trace_document(trace, reasons, timings))
            })
            .collect();
        Ok(AnalysisDocument {
            schema_version: SCHEMA_VERSION,
            tracelab_version: env!("CARGO_PKG_VERSION").to_string(),
            overview: analysis.overview.clone(),
            share_windows: analysis.share_windows.clone(),
            services: analysis.services.clone(),
            operations: analysis.operations.clone(),
            instances: analysis.instances.clone(),
            versions: analysis.versions.clone(),
            error_origins: analysis.error_origins.clone(),
            health: analysis.health.clone(),
            traces: documents,
        })
    }
}

/// The summary of one trace as the report shows it, whether or not it was singled out.
pub(crate) fn summary_with_tree(
    trace: &Trace,
    tree: &SpanTree,
    timings: &TraceTimings,
) -> TraceSummary {
    let spans = &trace.spans;
    let top = tree.primary_top(spans).map(|t| &spans[t]);
    TraceSummary {
        trace_id: trace.trace_id,
        service: top.map(|s| s.service_name.to_string()).unwrap_or_default(),
        operation: top.map(|s| s.name.clone()).unwrap_or_default(),
        start_unix_nano: top.map_or(0, |s| s.start_unix_nano),
        duration_ns: timings.critical_path.total_nanos(),
        spans: spans.len() as u64,
        error_spans: spans.iter().filter(|s| s.is_error()).count() as u64,
        complete: trace.shape().is_complete(),
        error_origin: error_origin_index(trace, tree).map(|o| origin_span(trace, o)),
    }
}

fn trace_document(
    trace: &Trace,
    reasons: Vec<TraceReason>,
    timings: Option<&TraceTimings>,
) -> TraceDocument {
    let tree = SpanTree::new(trace);
    let computed;
    let timings = match timings {
        Some(t) => t,
        None => {
            computed = trace_timings(trace);
            &computed
        }
    };
    let summary = summary_with_tree(trace, &tree, timings);
    let origin = summary.start_unix_nano;
    let spans = &trace.spans;
    let offset = |t: u64| t.saturating_sub(origin);
    let signed = |t: u64| {
        if t >= origin {
            i64::try_from(t - origin).unwrap_or(i64::MAX)
        } else {
            i64::try_from(origin - t).map_or(i64::MIN, |d| -d)
        }
    };
    let critical_path = timings
        .critical_path
        .segments
        .iter()
        .map(|seg| {
            let s = &spans[seg.span_index];
            PathSegment {
                span_id: seg.span_id,
                service: s.service_name.to_string(),
                operation: s.name.clone(),
                start: offset(seg.start_unix_nano),
                end: offset(seg.end_unix_nano),
            }
        })
        .collect();
    let span_documents = spans
        .iter()
        .zip(&timings.spans)
        .enumerate()
        .map(|(i, (s, t))| SpanDocument {
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            service: s.service_name.to_string(),
            operation: s.name.clone(),
            kind: s.kind,
            start: signed(s.start_unix_nano),
            end: signed(s.end_unix_nano),
            self_ns: t.self_ns,
            critical_ns: t.critical_ns,
            error: s.is_error(),
            asynchronous: tree.asynchronous[i],
        })
        .collect();
    TraceDocument {
        trace_id: trace.trace_id,
        reasons,
        service: summary.service,
        operation: summary.operation,
        start_unix_nano: summary.start_unix_nano,
        duration_ns: summary.duration_ns,
        span_count: summary.spans,
        error_spans: summary.error_spans,
        complete: summary.complete,
        error_origin: summary.error_origin,
        critical_path,
        spans: span_documents,
    }
}
