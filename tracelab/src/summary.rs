//! The end-of-run summary: `report.json` and the terminal view of it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use tracelab_loadgen::LoadSummary;
use tracelab_receiver::{ReceiverStats, TraceHealth};
use tracelab_telemetry::ExportStats;
use tracelab_trace::Trace;

/// `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Version of tracelab that wrote the report.
    pub tracelab_version: &'static str,
    /// Which scenario ran, and how.
    pub scenario: ScenarioInfo,
    /// Requests as the load generator saw them.
    pub requests: RequestsReport,
    /// Client latency from the scheduled instant, in milliseconds.
    pub latency_ms: tracelab_loadgen::LatencySummary,
    /// How whole the received traces are.
    pub traces: TracesReport,
    /// Span counts along the pipeline.
    pub spans: SpansReport,
    /// Per service: spans and durations.
    pub services: Vec<ServiceReport>,
    /// The slowest complete trace, if any.
    pub slowest_trace: Option<String>,
    /// True when the run was stopped early.
    pub interrupted: bool,
    /// The load generator's statistics: driver, drops, late starts, per entry, per status
    /// class, and the per-second timeline.
    pub load: LoadSummary,
    /// For `tracelab load`: where the spans went instead of the embedded receiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSpans>,
}

/// Spans of a `tracelab load` run, which went to an external backend.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalSpans {
    /// The OTLP URL the client spans were sent to; `None` when they were not exported.
    pub endpoint: Option<String>,
    /// The sampler of the client spans (`OTEL_TRACES_SAMPLER[:ARG]`).
    pub sampler: String,
    /// Entry services and their URLs.
    pub targets: BTreeMap<String, String>,
    /// Why the trace and span counts of this report are empty.
    pub note: String,
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
    /// Target rate, requests per second.
    pub rate: f64,
    /// Planned duration in seconds.
    pub duration_s: f64,
    /// How the services exported (`grpc` or `http/protobuf`).
    pub otlp_protocol: String,
}

/// Request counts.
#[derive(Debug, Clone, Serialize)]
pub struct RequestsReport {
    /// Requests sent.
    pub total: u64,
    /// Requests that did not end `ok`.
    pub errors: u64,
    /// Per client-side outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Per entry route.
    pub per_entry: BTreeMap<String, u64>,
    /// Requests that started more than 1 ms late.
    pub late_starts: u64,
    /// Requests dropped by the client (in-flight cap reached).
    pub dropped: u64,
    /// Target rate.
    pub target_rate: f64,
    /// Achieved rate.
    pub achieved_rate: f64,
}

/// Trace completeness.
#[derive(Debug, Clone, Serialize)]
pub struct TracesReport {
    /// Distinct trace ids received.
    pub received: u64,
    /// Traces with one root and every parent present.
    pub complete: u64,
    /// All others.
    pub broken: u64,
    /// Percentage of complete traces.
    pub complete_percent: f64,
}

/// Spans along the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct SpansReport {
    /// Spans the receiver stored.
    pub received: u64,
    /// Spans the services and the load generator ended (sampled).
    pub ended: u64,
    /// Spans the exporters had acknowledged.
    pub exported: u64,
    /// Spans lost before or during export (full queue, failed export).
    pub lost: u64,
    /// Spans per trace.
    pub per_trace: PerTrace,
    /// Export requests the receiver refused.
    pub requests_rejected: u64,
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

/// One service's spans.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// `service.name`.
    pub name: String,
    /// Spans it emitted.
    pub spans: u64,
    /// Of which failed.
    pub error_spans: u64,
    /// Mean SERVER span duration in ms (0 when it has none).
    pub mean_server_ms: f64,
    /// Mean duration of all its spans, in ms.
    pub mean_span_ms: f64,
}

/// Per-trace tallies for the summary, added one trace at a time so that a run never has to
/// hold all of its traces.
#[derive(Debug, Clone, Default)]
pub struct TraceTotals {
    /// Per service: spans, failed spans, total span time, SERVER spans, SERVER time.
    per_service: BTreeMap<String, (u64, u64, u64, u64, u64)>,
    traces: u64,
    complete: u64,
    spans: u64,
    min_spans: u64,
    max_spans: u64,
    /// Duration and id of the slowest complete trace.
    slowest: Option<(u64, String)>,
}

impl TraceTotals {
    /// Adds one trace.
    pub fn add(&mut self, trace: &Trace) {
        for span in &trace.spans {
            let e = match self.per_service.get_mut(&*span.service_name) {
                Some(e) => e,
                None => self
                    .per_service
                    .entry(span.service_name.to_string())
                    .or_default(),
            };
            e.0 += 1;
            e.1 += u64::from(span.is_error());
            e.2 += span.duration_nanos();
            if span.kind == tracelab_trace::SpanKind::Server {
                e.3 += 1;
                e.4 += span.duration_nanos();
            }
        }
        let n = trace.spans.len() as u64;
        self.min_spans = if self.traces == 0 {
            n
        } else {
            self.min_spans.min(n)
        };
        self.max_spans = self.max_spans.max(n);
        self.traces += 1;
        self.spans += n;
        if trace.shape().is_complete() {
            self.complete += 1;
            let duration = trace.duration_nanos();
            if self.slowest.as_ref().is_none_or(|(d, _)| duration > *d) {
                self.slowest = Some((duration, trace.trace_id.to_hex()));
            }
        }
    }

    /// Sums of a slice of traces.
    pub fn of(traces: &[Trace]) -> Self {
        let mut totals = TraceTotals::default();
        traces.iter().for_each(|t| totals.add(t));
        totals
    }

    /// How whole the traces were.
    pub fn health(&self) -> TraceHealth {
        TraceHealth {
            traces: self.traces,
            complete: self.complete,
            broken: self.traces - self.complete,
            spans: self.spans,
        }
    }
}

/// Everything the summary is computed from.
#[derive(Debug)]
pub struct SummaryInput<'a> {
    /// Scenario facts.
    pub scenario: ScenarioInfo,
    /// Load generator totals.
    pub load: &'a LoadSummary,
    /// Tallies of the received traces.
    pub traces: &'a TraceTotals,
    /// Completeness counts.
    pub health: TraceHealth,
    /// Exporter counters, summed over services and the load generator.
    pub export: ExportStats,
    /// Receiver counters.
    pub receiver: ReceiverStats,
}

impl RunReport {
    /// Computes the report.
    pub fn build(input: SummaryInput<'_>) -> Self {
        let totals = input.traces;
        let services = totals
            .per_service
            .iter()
            .map(
                |(name, &(spans, errors, total_ns, servers, server_ns))| ServiceReport {
                    name: name.clone(),
                    spans,
                    error_spans: errors,
                    mean_span_ms: ms(total_ns) / spans.max(1) as f64,
                    mean_server_ms: if servers == 0 {
                        0.0
                    } else {
                        ms(server_ns) / servers as f64
                    },
                },
            )
            .collect();
        let per_trace = if totals.traces == 0 {
            PerTrace::default()
        } else {
            PerTrace {
                mean: totals.spans as f64 / totals.traces as f64,
                min: totals.min_spans,
                max: totals.max_spans,
            }
        };
        let slowest_trace = totals.slowest.as_ref().map(|(_, id)| id.clone());
        let h = input.health;
        RunReport {
            tracelab_version: env!("CARGO_PKG_VERSION"),
            scenario: input.scenario,
            requests: RequestsReport {
                total: input.load.total,
                errors: input.load.errors,
                outcomes: input
                    .load
                    .outcomes
                    .iter()
                    .map(|(k, v)| (serde_plain(k), *v))
                    .collect(),
                per_entry: input.load.per_entry.clone(),
                late_starts: input.load.late_starts,
                dropped: input.load.dropped,
                target_rate: input.load.target_rate,
                achieved_rate: input.load.achieved_rate,
            },
            latency_ms: input.load.latency_ms,
            traces: TracesReport {
                received: h.traces,
                complete: h.complete,
                broken: h.broken,
                complete_percent: if h.traces == 0 {
                    0.0
                } else {
                    100.0 * h.complete as f64 / h.traces as f64
                },
            },
            spans: SpansReport {
                received: h.spans,
                ended: input.export.ended,
                exported: input.export.exported,
                lost: input.export.lost(),
                per_trace,
                requests_rejected: input.receiver.requests_rejected(),
            },
            services,
            slowest_trace,
            interrupted: input.load.interrupted,
            load: input.load.clone(),
            external: None,
        }
    }

    /// The terminal view.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let r = &self.requests;
        let _ = writeln!(
            out,
            "\n{} — {} requests in {:.1}s ({:.1}/s, target {:.1}/s){}",
            self.scenario.name,
            r.total,
            self.scenario.duration_s,
            r.achieved_rate,
            r.target_rate,
            if self.interrupted {
                "  [interrupted]"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  errors      {} ({:.2} %)",
            r.errors,
            percent(r.errors, r.total)
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "  latency     p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms  (from the scheduled instant)",
            l.p50, l.p90, l.p99, l.max
        );
        crate::load::render_load_stats(&self.load, &mut out);
        if let Some(external) = &self.external {
            let _ = writeln!(
                out,
                "\n  spans       client spans sent to {} (sampler {}); {}",
                external
                    .endpoint
                    .as_deref()
                    .unwrap_or("nowhere (no OTLP endpoint)"),
                external.sampler,
                external.note
            );
            return out;
        }
        let t = &self.traces;
        let _ = writeln!(
            out,
            "\n  traces      {} received, {} complete ({:.1} %), {} broken",
            t.received, t.complete, t.complete_percent, t.broken
        );
        let s = &self.spans;
        let _ = writeln!(
            out,
            "  spans       {} received / {} exported / {} lost; per trace mean {:.1} (min {}, max {})",
            s.received, s.exported, s.lost, s.per_trace.mean, s.per_trace.min, s.per_trace.max
        );
        let _ = writeln!(
            out,
            "\n  {:<20} {:>8} {:>8} {:>14} {:>14}",
            "service", "spans", "errors", "mean server", "mean span"
        );
        for svc in &self.services {
            let _ = writeln!(
                out,
                "  {:<20} {:>8} {:>8} {:>11.2} ms {:>11.2} ms",
                svc.name, svc.spans, svc.error_spans, svc.mean_server_ms, svc.mean_span_ms
            );
        }
        out
    }
}

fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}
