//! The end-of-run report: one model for `run` and `load`, written as `report.json` and shown in
//! the terminal.
//!
//! Each fact has one place: the load generator's statistics once (`load`), the span pipeline's
//! counters from the exporters to the span file (`pipeline`), trace completeness and the
//! per-service numbers from the analysis (`traces`, `services`), the lab's own precision
//! (`timing`), the incidents, and plain-language `warnings`. Schema: `docs/report.schema.json`
//! (version [`SCHEMA_VERSION`]; the changes from version 1 are listed in docs/report.md).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use tracelab_analysis::{Analysis, ServiceStats};
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_loadgen::{GroupSummary, LoadSummary};
use tracelab_receiver::ReceiverStats;
use tracelab_telemetry::ExportStats;
use tracelab_timer::Overrun;

/// The version of `report.json`'s layout.
pub const SCHEMA_VERSION: u32 = 2;

/// An injected wait or a scheduled release later than this at the 99th percentile makes the
/// run's numbers untrustworthy: every latency it shows may be that much too long.
pub const TRUST_P99_US: f64 = 1000.0;

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The layout version of this file.
    pub schema_version: u32,
    /// Version of tracelab that wrote the report.
    pub tracelab_version: &'static str,
    /// Which scenario ran, and how.
    pub scenario: ScenarioInfo,
    /// True when the run was stopped early by a signal.
    pub interrupted: bool,
    /// The load generator's statistics: requests, latency from the scheduled instant, per
    /// entry, per status class, late starts, connections, the per-second timeline.
    pub load: LoadSummary,
    /// Span counts from the exporters to the span file.
    pub pipeline: Pipeline,
    /// How whole the received traces are; absent for `tracelab load`, whose spans went
    /// elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces: Option<TracesReport>,
    /// Per service, from the analysis of the received traces: requests, errors, latency of
    /// its entry spans, spans, share of the critical path.
    pub services: Vec<ServiceStats>,
    /// How precisely the lab kept the times it was given.
    pub timing: Timing,
    /// Every incident window: the scenario's timeline and faults switched on by hand.
    pub incidents: Vec<IncidentWindow>,
    /// What the reader must know before trusting the numbers, in plain words.
    pub warnings: Vec<String>,
    /// For `tracelab load`: where the spans went instead of the embedded receiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpans>,
}

/// Spans of a `tracelab load` run, which went to an external backend.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalSpans {
    /// The OTLP URL the client spans were sent to; `None` when they were not exported.
    pub endpoint: Option<String>,
    /// The root sampler (`OTEL_TRACES_SAMPLER[:ARG]`).
    pub sampler: String,
    /// Entry services and their URLs.
    pub targets: BTreeMap<String, String>,
}

/// Which scenario ran.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// Seed used.
    pub seed: u64,
    /// Mean target rate, requests per second (0 in closed loop).
    pub rate: f64,
    /// Planned duration in seconds.
    pub duration_s: f64,
    /// How spans were exported (`grpc` or `http/protobuf`); empty when they were not.
    pub otlp_protocol: String,
    /// The root sampler, as `OTEL_TRACES_SAMPLER[:ARG]` names it.
    pub sampler: String,
}

/// Span counts along the pipeline, from the processes that end spans to the span file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pipeline {
    /// Spans the services and the load generator ended and sampled.
    pub spans_ended: u64,
    /// Spans the exporters delivered (acknowledged by the receiver).
    pub spans_exported: u64,
    /// Spans the embedded receiver stored although their exporter had stopped waiting for its
    /// answer (a timed-out export on a starved machine): delivered late, not lost (absent for
    /// `tracelab load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans_stored_late: Option<u64>,
    /// Spans ended but never delivered: a full export queue, a failed or timed-out export
    /// whose spans did not arrive.
    pub spans_lost: u64,
    /// Spans the embedded receiver stored (absent for `tracelab load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans_received: Option<u64>,
    /// Spans refused inside accepted export requests (unusable ids).
    pub spans_rejected: u64,
    /// Export requests the receiver refused: malformed, too large, wrong media type, or over
    /// its memory budget (the last are retried by the exporter).
    pub requests_rejected: u64,
    /// Lines written to `spans.otlp.jsonl`.
    pub span_file_lines: u64,
    /// Writes to `spans.otlp.jsonl` that failed (a full disk); the spans still reached the
    /// analysis.
    pub span_file_write_failures: u64,
    /// Copies sent to each `--forward` endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forwarded: Vec<ForwardReport>,
    /// The priority the embedded pipeline's threads ran at, and why (absent for `tracelab
    /// load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<PipelinePriority>,
    /// The worker threads the services and the load generator ran on; the pipeline's threads
    /// are its own (absent for `tracelab load`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_workers: Option<usize>,
}

/// The scheduling priority of the embedded lab's span pipeline (receiver, span file, analysis).
#[derive(Debug, Clone, Serialize)]
pub struct PipelinePriority {
    /// `idle` (`SCHED_IDLE`), `nice 19`, or `normal` (other programs kept the cores busy as the
    /// run started).
    pub policy: String,
    /// The share of the run's cores that other programs kept busy as it started, in percent;
    /// absent where it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub others_busy_percent: Option<f64>,
}

/// What went to one `--forward` endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct ForwardReport {
    /// The endpoint.
    pub endpoint: String,
    /// `grpc` or `http/protobuf`.
    pub protocol: String,
    /// Spans it acknowledged.
    pub spans_delivered: u64,
    /// Spans that could not be delivered (refused, unreachable, or its queue full).
    pub spans_failed: u64,
}

/// Trace completeness, from the analysis of every received trace.
#[derive(Debug, Clone, Serialize)]
pub struct TracesReport {
    /// Traces received.
    pub received: u64,
    /// Traces with one root and every parent present.
    pub complete: u64,
    /// All others.
    pub broken: u64,
    /// Of the broken, traces without a root span: pieces whose root never arrived, or that
    /// arrived after the rest of their trace had been analysed (each counted as a trace).
    pub rootless: u64,
    /// Percentage of complete traces.
    pub complete_percent: f64,
    /// Spans per trace.
    pub spans_per_trace: PerTrace,
    /// The slowest trace, to open first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowest_trace_id: Option<String>,
}

/// Spans-per-trace statistics.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PerTrace {
    /// Mean.
    pub mean: f64,
    /// Smallest.
    pub min: u64,
    /// Largest.
    pub max: u64,
}

/// How precisely the lab kept the times it was given: the injected waits against what the
/// scenario drew for them, and the open loop's releases against their schedule
/// (`load.schedule_error_us`).
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// How far injected waits (route latency, work, db, cache, backoff, lag, latency faults)
    /// ran past what was drawn, in microseconds; absent for `tracelab load`, whose services
    /// report it on their admin API (`GET /admin/timing`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected_waits: Option<WaitError>,
    /// False when waits or releases ran late enough (p99 above 1 ms) to distort what the run
    /// shows; `message` says by how much.
    pub trustworthy: bool,
    /// Why the numbers cannot be trusted, when they cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Overruns of injected waits, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WaitError {
    /// Waits measured (zero draws are not waited, so not counted).
    pub count: u64,
    /// Median overrun.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl From<Overrun> for WaitError {
    fn from(o: Overrun) -> Self {
        WaitError {
            count: o.count,
            p50_us: o.p50_us,
            p99_us: o.p99_us,
            max_us: o.max_us,
            mean_us: o.mean_us,
        }
    }
}

impl Timing {
    /// The verdict on a run's precision.
    pub fn judge(injected: Option<Overrun>, load: &LoadSummary) -> Timing {
        let mut reasons = Vec::new();
        if let Some(o) = &injected
            && o.count > 0
            && o.p99_us > TRUST_P99_US
        {
            reasons.push(format!(
                "injected latencies ran up to {:.1} ms long (p99 {:.2} ms, median {:.3} ms)",
                o.max_us / 1000.0,
                o.p99_us / 1000.0,
                o.p50_us / 1000.0
            ));
        }
        let schedule = &load.schedule_error_us;
        if load.target_rate > 0.0 && schedule.p99_us > TRUST_P99_US {
            reasons.push(format!(
                "requests left up to {:.1} ms after their scheduled instants (p99 {:.2} ms)",
                schedule.max_us / 1000.0,
                schedule.p99_us / 1000.0
            ));
        }
        let message = (!reasons.is_empty()).then(|| {
            format!(
                "the machine is overloaded: {}; results are not trustworthy. Lower the rate, \
                 stop other work on this machine, or give the lab more cores.",
                reasons.join(", and ")
            )
        });
        Timing {
            injected_waits: injected.map(WaitError::from),
            trustworthy: message.is_none(),
            message,
        }
    }
}

/// What the report is built from.
#[derive(Debug)]
pub struct ReportInput<'a> {
    /// Scenario facts.
    pub scenario: ScenarioInfo,
    /// The load generator's statistics.
    pub load: LoadSummary,
    /// Exporter counters, summed over services and the load generator.
    pub export: ExportStats,
    /// Spans the embedded receiver stored beyond those acknowledged to the exporters (embedded
    /// lab only).
    pub stored_late: Option<u64>,
    /// Receiver counters (embedded lab only).
    pub receiver: Option<ReceiverStats>,
    /// The analysis of the received traces (embedded lab only).
    pub analysis: Option<&'a Analysis>,
    /// Forwarding counters.
    pub forwarded: Vec<ForwardReport>,
    /// The injected-wait overruns of the hosted services (embedded lab only).
    pub injected_waits: Option<Overrun>,
    /// Incident windows.
    pub incidents: Vec<IncidentWindow>,
    /// Warnings gathered while running (ports moved, limits, files not written).
    pub warnings: Vec<String>,
    /// For `tracelab load`.
    pub external: Option<ExternalSpans>,
}

impl RunReport {
    /// Computes the report.
    pub fn build(input: ReportInput<'_>) -> Self {
        let receiver = input.receiver.unwrap_or_default();
        let embedded = input.receiver.is_some();
        let pipeline = Pipeline {
            spans_ended: input.export.ended,
            spans_exported: input.export.exported,
            spans_stored_late: input.stored_late,
            spans_lost: input
                .export
                .lost()
                .saturating_sub(input.stored_late.unwrap_or(0)),
            spans_received: embedded.then_some(receiver.spans_accepted),
            spans_rejected: receiver.spans_rejected,
            requests_rejected: receiver.requests_rejected(),
            span_file_lines: receiver.sink_lines_written,
            span_file_write_failures: receiver.sink_write_errors,
            forwarded: input.forwarded,
            priority: None,
            service_workers: None,
        };
        let traces = input.analysis.map(|a| {
            let o = &a.overview;
            let h = &a.health;
            TracesReport {
                received: o.traces,
                complete: h.complete_traces,
                broken: h.broken_traces,
                rootless: h.rootless_traces,
                complete_percent: percent(h.complete_traces, o.traces),
                spans_per_trace: if o.traces == 0 {
                    PerTrace::default()
                } else {
                    PerTrace {
                        mean: o.spans as f64 / o.traces as f64,
                        min: o.min_spans_per_trace,
                        max: o.max_spans_per_trace,
                    }
                },
                slowest_trace_id: a.slowest_traces.first().map(|t| t.trace_id.to_hex()),
            }
        });
        let timing = Timing::judge(input.injected_waits, &input.load);
        let mut warnings = input.warnings;
        if let Some(message) = &timing.message {
            warnings.push(message.clone());
        }
        if let Some(warning) = &input.load.connections.warning {
            warnings.push(warning.clone());
        }
        if let Some(warning) = &input.load.held.warning {
            warnings.push(warning.clone());
        }
        if input.load.unrecorded > 0 {
            warnings.push(format!(
                "{} more requests were dropped at the in-flight cap while the collector was too \
                 far behind to keep their records: they are in no count above and not in \
                 requests.jsonl (report.json: load.unrecorded)",
                input.load.unrecorded
            ));
        }
        if let Some(t) = &traces
            && t.rootless > 0
        {
            warnings.push(rootless_warning(t.rootless, pipeline.spans_lost));
        }
        if let Some(late) = pipeline.spans_stored_late
            && late > 0
        {
            warnings.push(format!(
                "{late} spans reached the receiver after their exporter had stopped waiting for \
                 the answer (a timed-out export): they are counted delivered, but the machine \
                 could not keep the lab's pace"
            ));
        }
        if pipeline.spans_lost > 0 {
            warnings.push(format!(
                "{} spans were ended but never delivered (a full export queue or a failed \
                 export): traces missing them are broken",
                pipeline.spans_lost
            ));
        }
        if pipeline.span_file_write_failures > 0 {
            warnings.push(format!(
                "{} writes to spans.otlp.jsonl failed (is the disk full?): the analysis saw \
                 every span, the file does not hold them all",
                pipeline.span_file_write_failures
            ));
        }
        if input.load.record_write_failures > 0 {
            warnings.push(format!(
                "{} request records could not be written to requests.jsonl (is the disk \
                 full?): the counts above include them",
                input.load.record_write_failures
            ));
        }
        RunReport {
            schema_version: SCHEMA_VERSION,
            tracelab_version: env!("CARGO_PKG_VERSION"),
            scenario: input.scenario,
            interrupted: input.load.interrupted,
            services: input
                .analysis
                .map(|a| a.services.clone())
                .unwrap_or_default(),
            load: input.load,
            pipeline,
            traces,
            timing,
            incidents: input.incidents,
            warnings,
            external: input.external,
        }
    }

    /// The terminal view.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let load = &self.load;
        let _ = writeln!(
            out,
            "\n{} — {} requests in {:.1}s ({:.1}/s, target {:.1}/s){}",
            self.scenario.name,
            load.total,
            load.send_window_s,
            load.achieved_rate,
            load.target_rate,
            if self.interrupted {
                "  [interrupted]"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  errors      {} ({:.2} %)",
            load.errors,
            percent(load.errors, load.total)
        );
        let l = &load.latency_ms;
        let _ = writeln!(
            out,
            "  latency     p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms  (from the scheduled instant)",
            l.p50, l.p90, l.p99, l.max
        );
        render_load_stats(load, &mut out);
        render_timing(&self.timing, load, &mut out);
        if let Some(external) = &self.external {
            let _ = writeln!(
                out,
                "\n  spans       client spans sent to {} (sampler {}); the services' spans went \
                 wherever they export, so trace counts are not known here",
                external
                    .endpoint
                    .as_deref()
                    .unwrap_or("nowhere (no OTLP endpoint)"),
                external.sampler,
            );
        }
        if let Some(t) = &self.traces {
            let rootless = if t.rootless > 0 {
                format!(" ({} without a root)", t.rootless)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "\n  traces      {} received, {} complete ({:.1} %), {} broken{rootless}",
                t.received, t.complete, t.complete_percent, t.broken
            );
            let p = &self.pipeline;
            let late = match p.spans_stored_late {
                Some(late) if late > 0 => format!(" ({late} stored late)"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  spans       {} received / {} exported{late} / {} lost; per trace mean {:.1} (min {}, max {})",
                p.spans_received.unwrap_or(0),
                p.spans_exported,
                p.spans_lost,
                t.spans_per_trace.mean,
                t.spans_per_trace.min,
                t.spans_per_trace.max
            );
            for f in &p.forwarded {
                let _ = writeln!(
                    out,
                    "  forwarded   {} spans to {} ({}), {} failed",
                    f.spans_delivered, f.endpoint, f.protocol, f.spans_failed
                );
            }
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(out);
            for warning in &self.warnings {
                let _ = writeln!(out, "  warning: {warning}");
            }
        }
        out
    }
}

/// The load generator's lines of the terminal summary: how the load was driven, drops and late
/// starts, the tail percentiles, and the per-entry and per-status tables.
fn render_load_stats(load: &LoadSummary, out: &mut String) {
    let _ = writeln!(out, "  driver      {}", load.driver);
    let l = &load.latency_ms;
    let _ = writeln!(
        out,
        "  tail        p99.9 {:.1} ms   p99.99 {:.1} ms",
        l.p999, l.p9999
    );
    let _ = writeln!(
        out,
        "  client      {} dropped (in-flight cap), {} started late by more than {:.2} ms (max {:.1} ms); {} connections at most (limit {})",
        load.dropped,
        load.late_starts,
        load.late_threshold_ms,
        load.late_by_ms.max,
        load.connections.peak,
        load.connections.limit
    );
    let mut table = |title: &str, rows: &BTreeMap<String, GroupSummary>| {
        let _ = writeln!(
            out,
            "\n  {title:<32} {:>8} {:>8} {:>10} {:>10} {:>10}",
            "requests", "errors", "p50 ms", "p99 ms", "max ms"
        );
        for (name, g) in rows {
            let _ = writeln!(
                out,
                "  {name:<32} {:>8} {:>8} {:>10.1} {:>10.1} {:>10.1}",
                g.count, g.errors, g.latency_ms.p50, g.latency_ms.p99, g.latency_ms.max
            );
        }
    };
    table("entry", &load.entries);
    table("status", &load.status_classes);
}

/// The lab's own precision, on one line.
fn render_timing(timing: &Timing, load: &LoadSummary, out: &mut String) {
    let mut parts = Vec::new();
    if let Some(w) = &timing.injected_waits {
        parts.push(format!(
            "injected waits ran long by p50 {:.0} µs, p99 {:.0} µs, max {:.1} ms ({} waits)",
            w.p50_us,
            w.p99_us,
            w.max_us / 1000.0,
            w.count
        ));
    }
    if load.target_rate > 0.0 {
        let s = &load.schedule_error_us;
        parts.push(format!(
            "requests released late by p50 {:.0} µs, p99 {:.0} µs",
            s.p50_us, s.p99_us
        ));
    }
    if !parts.is_empty() {
        let _ = writeln!(out, "\n  precision   {}", parts.join("; "));
    }
}

/// What traces without a root are, and so why "received" can exceed the requests sent.
fn rootless_warning(rootless: u64, spans_lost: u64) -> String {
    let what = if spans_lost == 0 {
        ", and no span was lost: they are pieces that reached the receiver after the rest of \
         their trace had been analysed (the span pipeline fell behind, or a span ended long \
         after its root), or spans from another program"
    } else {
        ": pieces whose root was lost, or that reached the receiver after the rest of their \
         trace had been analysed"
    };
    format!(
        "{rootless} traces have no root span{what}. Each counts as a trace of its own, so \
         traces received can exceed the requests sent (report.json: traces.rootless)"
    )
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}
