//! `tracelab report` and the analysis part of every run: the terminal view (services ranked by
//! critical-path share, the slowest and the first failing trace as waterfalls) and the
//! self-contained `report.html`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tracelab_analysis::{
    Analysis, AnalysisOptions, HtmlReportInput, IncidentWindow, analyze, critical_path,
    render_html, render_service_table, render_waterfall,
};
use tracelab_trace::{Trace, TraceId, group_into_traces};

use crate::rundir;

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
    let mut show = |title: &str, id: TraceId| {
        if let Some(trace) = by_id.get(&id) {
            let path = critical_path(trace);
            out.push_str(&format!("\n{title} {}\n", id.to_hex()));
            out.push_str(&render_waterfall(trace, Some(&path), WATERFALL_WIDTH));
        }
    };
    if let Some(slowest) = analysis.slowest_traces.first() {
        show("Slowest trace", slowest.trace_id);
    }
    if let Some(failing) = analysis.failing_traces.first() {
        show("First failing trace", failing.trace_id);
    }
    out
}

/// Renders `report.html` for a run directory's contents.
pub fn render_run_html(
    title: &str,
    analysis: &Analysis,
    traces: &[Trace],
    summary: Option<&serde_json::Value>,
    incidents: &[IncidentWindow],
    sampling: Option<&serde_json::Value>,
) -> String {
    let mut input = HtmlReportInput::new(title, analysis, traces);
    input.summary = summary;
    input.incidents = incidents;
    input.sampling = sampling;
    render_html(&input)
}

/// Reads incident windows from `incidents.jsonl` in a run directory, if there is one.
pub fn read_incidents(dir: &Path) -> Vec<IncidentWindow> {
    let Ok(text) = std::fs::read_to_string(dir.join("incidents.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| {
            Some(IncidentWindow {
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

/// `tracelab report DIR_OR_FILE [--out FILE]`: a run directory gets `report.html` beside its
/// spans; an OTLP JSON file (a Collector file-exporter output, say) gets `FILE.html` unless
/// `--out` says otherwise. Prints the terminal view.
pub fn report_command(input: &Path, out: Option<PathBuf>, quiet: bool) -> anyhow::Result<ExitCode> {
    let (spans_file, dir) = if input.is_dir() {
        (input.join(rundir::SPANS_FILE), Some(input.to_path_buf()))
    } else {
        (input.to_path_buf(), None)
    };
    let spans = tracelab_receiver::otlp_json::read_file(&spans_file)
        .with_context(|| format!("cannot read spans from {}", spans_file.display()))?;
    anyhow::ensure!(!spans.is_empty(), "{} holds no spans", spans_file.display());
    let traces = group_into_traces(spans);
    let analysis = analyze_run(&traces, None);
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
    let html = render_run_html(
        &title,
        &analysis,
        &traces,
        summary.as_ref(),
        &incidents,
        sampling.as_ref(),
    );
    let target = out.unwrap_or_else(|| match &dir {
        Some(d) => d.join("report.html"),
        None => {
            let mut name = input.as_os_str().to_owned();
            name.push(".html");
            PathBuf::from(name)
        }
    });
    std::fs::write(&target, html).with_context(|| format!("cannot write {}", target.display()))?;
    if !quiet {
        print!("{}", render_terminal(&analysis, &traces));
    }
    println!("\n  report: {}", target.display());
    Ok(ExitCode::SUCCESS)
}
