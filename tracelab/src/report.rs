//! `tracelab report` and the analysis part of every run: the terminal view (services ranked by
//! critical-path share, the slowest and the first failing trace as waterfalls), the
//! self-contained `report.html`, and `analysis.json`, the same analysis for programs
//! (`docs/analysis.schema.json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tracelab_analysis::{
    Analysis, AnalysisDocument, AnalysisOptions, Analyzer, DiffOptions, HtmlReportInput, RunDiff,
    RunSampler, ShadedWindow, Sources, analyze, critical_path, render_diff, render_html,
    render_service_table, render_waterfall,
};
use tracelab_trace::{Trace, TraceId};

use crate::rundir;

/// `tracelab report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory, or a trace file: OTLP/JSON (one ExportTraceServiceRequest per line, as
    /// the Collector's file exporter writes, or one pretty-printed document), Jaeger JSON (the
    /// UI's "Download JSON") or Zipkin v2 JSON; the format is told from the content.
    pub input: PathBuf,
    /// Where to write the HTML (default: report.html in the run directory, or FILE.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only write the HTML (and a run directory's analysis.json); no terminal view.
    #[arg(long)]
    pub quiet: bool,
    /// Print the analysis as JSON on stdout instead of the terminal view (the layout of
    /// analysis.json, described by docs/analysis.schema.json).
    #[arg(long)]
    pub json: bool,
    /// Also analyse this trace in full: its critical path in the JSON, its waterfall in the
    /// terminal (32 hex digits; repeatable).
    #[arg(long = "trace", value_name = "TRACE_ID")]
    pub traces: Vec<TraceId>,
    /// An earlier run (run directory or OTLP JSON file) to compare with: adds "Changes from
    /// the baseline" to report.html and the diff table to the terminal view, as
    /// `tracelab diff BASELINE INPUT` computes them.
    #[arg(long, value_name = "DIR_OR_FILE")]
    pub baseline: Option<PathBuf>,
}

/// Width of terminal waterfalls.
const WATERFALL_WIDTH: usize = 100;

/// Analyses a run's traces. `run_end_unix_nano` turns on the late-span check.
pub fn analyze_run(traces: &[Trace], run_end_unix_nano: Option<u64>) -> Analysis {
    analyze(
        traces,
        &AnalysisOptions {
            run_end_unix_nano,
            ..AnalysisOptions::default()
        },
    )
}

/// The terminal view of an analysis.
pub fn render_terminal(analysis: &Analysis, traces: &[Trace]) -> String {
    let by_id: HashMap<TraceId, &Trace> = traces.iter().map(|t| (t.trace_id, t)).collect();
    let mut out = String::new();
    out.push_str(&render_service_table(analysis));
    let show = |out: &mut String, title: &str, id: TraceId| {
        if let Some(trace) = by_id.get(&id) {
            let path = critical_path(trace);
            out.push_str(&format!("\n{title} {}\n", id.to_hex()));
            // The title names the trace: the waterfall's own first line would say it again.
            let waterfall = render_waterfall(trace, Some(&path), WATERFALL_WIDTH);
            let body = waterfall
                .split_once('\n')
                .map_or(waterfall.as_str(), |(_, rest)| rest);
            out.push_str(body);
        }
    };
    if let Some(slowest) = analysis.slowest_traces.first() {
        show(&mut out, "Slowest trace", slowest.trace_id);
    }
    if let Some(failing) = analysis.failing_traces.first() {
        show(&mut out, "First failing trace", failing.trace_id);
    }
    let health = &analysis.health;
    if let Some(example) = health.skewed_examples.first() {
        let sticks_out = if example.starts_before_parent_ns > 0 {
            format!(
                "starts {:.1} ms before",
                example.starts_before_parent_ns as f64 / 1e6
            )
        } else {
            format!(
                "ends {:.1} ms after",
                example.ends_after_parent_ns as f64 / 1e6
            )
        };
        out.push_str(&format!(
            "\nSpans outside their parent: {} (clock skew between hosts, or asynchronous work); \
             e.g. `{}: {}` {sticks_out} its parent in `{}`\n",
            health.skewed_children,
            example.span.service,
            example.span.operation,
            example.parent_service
        ));
        show(
            &mut out,
            "Trace with a span outside its parent",
            example.span.trace_id,
        );
    }
    out
}

/// Renders `report.html` for a run directory's contents.
pub fn render_run_html(
    title: &str,
    analysis: &Analysis,
    traces: &[Trace],
    summary: Option<&serde_json::Value>,
    incidents: &[ShadedWindow],
    sampling: Option<&serde_json::Value>,
) -> String {
    let mut input = HtmlReportInput::new(title, analysis, traces);
    input.summary = summary;
    input.incidents = incidents;
    input.sampling = sampling;
    render_html(&input)
}

/// Compares the traces of `input` (all in memory) with the run at `baseline` (streamed).
fn baseline_diff(baseline: &Path, input: &Path, sampler: RunSampler) -> anyhow::Result<RunDiff> {
    let before = crate::diff::profile_run(baseline)
        .with_context(|| format!("--baseline {}", baseline.display()))?;
    Ok(RunDiff::new(
        &before,
        &sampler.finish(),
        Sources {
            before: &baseline.display().to_string(),
            after: &input.display().to_string(),
        },
        &DiffOptions::default(),
    ))
}

/// Reads incident windows from `incidents.jsonl` in a run directory, if there is one.
pub fn read_incidents(dir: &Path) -> Vec<ShadedWindow> {
    let Ok(text) = std::fs::read_to_string(dir.join("incidents.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            Some(ShadedWindow {
                start_unix_nano: v.get("start_unix_nano")?.as_u64()?,
                end_unix_nano: v.get("end_unix_nano")?.as_u64()?,
                label: v
                    .get("what")
                    .and_then(|w| w.as_str())
                    .unwrap_or("incident")
                    .to_string(),
            })
        })
        .collect()
}

/// Reads the strategy rows of `sampling.json`, if the run has one.
pub fn read_sampling(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("sampling.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    match value.get("strategies") {
        Some(rows) => Some(rows.clone()),
        None => Some(value),
    }
}

/// Writes `analysis.json` into a run directory: the analysis for programs, with the traces the
/// report singles out (all of which must be in `traces`; passing every trace is fine).
pub fn write_analysis_json(
    dir: &Path,
    analysis: &Analysis,
    traces: &[Trace],
) -> anyhow::Result<()> {
    let document = AnalysisDocument::new(analysis, traces, &[])?;
    write_document(dir, &document)
}

fn write_document(dir: &Path, document: &AnalysisDocument) -> anyhow::Result<()> {
    // Written to a temporary name and renamed, so a reader never sees half a document.
    rundir::write_atomically(
        &dir.join(rundir::ANALYSIS_FILE),
        &serde_json::to_vec_pretty(document)?,
    )
}

/// `tracelab report DIR_OR_FILE`: a run directory gets `report.html` and `analysis.json`
/// beside its spans; a trace file (a Collector file-exporter output, a Jaeger or Zipkin
/// download) gets `FILE.html` unless `--out` says otherwise. Prints the terminal view, or with `--json` the
/// analysis document.
pub fn report_command(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let input = args.input.as_path();
    let (spans_file, dir) = if input.is_dir() {
        (input.join(rundir::SPANS_FILE), Some(input.to_path_buf()))
    } else {
        (input.to_path_buf(), None)
    };
    // Read as a stream: the analysis takes one trace at a time and keeps the few it opens,
    // plus the ones asked for by id, so memory does not follow the size of the file.
    let mut analyzer = Analyzer::new(&AnalysisOptions::default());
    let mut sampler = args.baseline.as_ref().map(|_| RunSampler::new());
    let mut requested: Vec<Trace> = Vec::new();
    let count = crate::spans::for_each_trace(&spans_file, &mut |trace| {
        analyzer.add(&trace);
        if let Some(sampler) = &mut sampler {
            sampler.add(&trace);
        }
        if args.traces.contains(&trace.trace_id) {
            requested.push(trace);
        }
    })
    .with_context(|| format!("cannot read spans from {}", spans_file.display()))?;
    anyhow::ensure!(count > 0, "{} holds no spans", spans_file.display());
    let (analysis, mut traces) = analyzer.finish();
    for trace in requested {
        if !traces.iter().any(|t| t.trace_id == trace.trace_id) {
            traces.push(trace);
        }
    }
    let document = AnalysisDocument::new(&analysis, &traces, &args.traces).map_err(|e| {
        anyhow::anyhow!(
            "--trace: {e} in {}; `tracelab report {}` shows the slowest and the failing ones",
            spans_file.display(),
            input.display()
        )
    })?;
    if let Some(dir) = &dir {
        write_document(dir, &document)?;
    }
    let summary = dir.as_ref().and_then(|d| {
        std::fs::read(d.join(rundir::REPORT_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    });
    let incidents = dir.as_deref().map(read_incidents).unwrap_or_default();
    let sampling = dir.as_deref().and_then(read_sampling);
    let title = summary
        .as_ref()
        .and_then(|s| s.pointer("/scenario/name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            input
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "traces".to_string())
        });
    let diff = match (&args.baseline, sampler) {
        (Some(baseline), Some(sampler)) => Some(baseline_diff(baseline, input, sampler)?),
        _ => None,
    };
    let html = render_html(&HtmlReportInput {
        summary: summary.as_ref(),
        incidents: &incidents,
        sampling: sampling.as_ref(),
        diff: diff.as_ref(),
        ..HtmlReportInput::new(&title, &analysis, &traces)
    });
    let target = args.out.clone().unwrap_or_else(|| match &dir {
        Some(d) => d.join("report.html"),
        None => {
            let mut name = input.as_os_str().to_owned();
            name.push(".html");
            PathBuf::from(name)
        }
    });
    std::fs::write(&target, html).with_context(|| format!("cannot write {}", target.display()))?;
    if args.json {
        // Standard output carries the document alone, so that it can be piped into `jq`.
        println!("{}", serde_json::to_string_pretty(&document)?);
        eprintln!("report: {}", target.display());
        return Ok(ExitCode::SUCCESS);
    }
    if !args.quiet {
        print!("{}", render_terminal(&analysis, &traces));
        print!("{}", render_requested(&args.traces, &traces));
        if let Some(diff) = &diff {
            print!("\n{}", render_diff(diff));
        }
    }
    println!("\n  report: {}", target.display());
    Ok(ExitCode::SUCCESS)
}

/// Waterfalls of the traces asked for with `--trace`.
fn render_requested(requested: &[TraceId], traces: &[Trace]) -> String {
    let mut out = String::new();
    for id in requested {
        if let Some(trace) = traces.iter().find(|t| t.trace_id == *id) {
            // The waterfall's first line names the trace.
            let path = critical_path(trace);
            out.push('\n');
            out.push_str(&render_waterfall(trace, Some(&path), WATERFALL_WIDTH));
        }
    }
    out
}
