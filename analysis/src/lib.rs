//! Trace analysis for tracelab: which step, in which service, is eating the time of a run.
//!
//! The input is plain spans grouped into traces ([`tracelab_trace::Trace`]); the output is data
//! ([`Analysis`], serde-serializable) and text: a terminal waterfall, a service table and one
//! self-contained HTML report. Nothing here does I/O, so the same analysis runs on a live run,
//! a saved run directory or any OTLP JSON file the caller has decoded.
//!
//! Layout:
//! - [`tree`]: how the spans of one trace hang together, robust to orphans and cycles.
//! - [`asynchrony`]: which children their parent does not wait for (span kinds, links).
//! - [`critical_path`](mod@critical_path): the critical path of a trace and the self time of its spans.
//! - [`latency`]: HDR-histogram percentiles per group.
//! - [`attribution`]: the likely origin of each failed trace.
//! - [`health`]: orphans, extra roots, fragments, clock skew, late spans.
//! - [`instances`]: services that ran several instances, by instance and by version.
//! - [`graph`]: the service dependency graph.
//! - [`timeline`]: requests, errors and latency per second.
//! - [`analysis`]: [`analyze`], the one pass producing all of the above.
//! - [`document`]: the analysis as a document for programs (`analysis.json`, `report --json`).
//! - [`diff`]: what changed between two runs, with a significance test.
//! - [`waterfall`]: the terminal waterfall of one trace.
//! - [`table`]: the terminal table of services ranked by critical-path share.
//! - [`html`]: the offline HTML report.
//! - [`format`]: numbers as the reports write them (also the import's comments).

pub mod analysis;
pub mod asynchrony;
pub mod attribution;
pub mod critical_path;
pub mod diff;
pub mod document;
pub mod format;
pub mod graph;
pub mod health;
pub mod html;
pub mod instances;
pub mod latency;
pub mod table;
pub mod timeline;
pub mod tree;
pub mod waterfall;

pub use analysis::{
    Analysis, AnalysisOptions, Analyzer, OperationStats, Overview, ServiceStats, ShareWindows,
    SpanTiming, TraceSummary, TraceTimings, analyze, trace_timings,
};
pub use attribution::{ErrorOrigin, OriginInstance, OriginSpan, error_origin};
pub use critical_path::{CriticalPath, CriticalSegment, critical_path, self_times};
pub use diff::{DiffOptions, RunDiff, RunProfile, RunSampler, Sources, render_diff};
pub use document::{
    AnalysisDocument, DocumentError, PathSegment, SpanDocument, TraceDocument, TraceReason,
};
pub use graph::{ServiceEdge, ServiceGraph};
pub use health::{SkewedChild, SpanRef, TraceHealth};
pub use html::{HtmlReportInput, ShadedWindow, render_html, render_trace_page};
pub use instances::{GroupFigures, InstanceStats, VersionStats};
pub use latency::LatencySummary;
pub use table::render_service_table;
pub use timeline::TimelinePoint;
pub use waterfall::render_waterfall;
