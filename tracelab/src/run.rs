//! `tracelab run`: the whole lab in one process, on the embedded receiver.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracelab_analysis::{AnalysisOptions, Analyzer};
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_loadgen::{LoadOptions, LoadPlan};
use tracelab_receiver::{AssemblyOptions, Receiver, ReceiverConfig, SpanSink, TraceStore};
use tracelab_sampling::head::HeadSamplerConfig;
use tracelab_scenario::Scenario;
use tracelab_services::{HostOptions, ServiceHost};
use tracelab_telemetry::{ExportConfig, OtlpProtocol, ServiceIdentity, ServiceTelemetry};
use tracelab_trace::Trace;

use crate::cli::RunArgs;
use crate::progress::Progress;
use crate::rundir::{self, RunDir};
use crate::summary::{RunReport, ScenarioInfo, SummaryInput, TraceTotals};

/// Everything `run_lab` needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario, with command-line overrides applied.
    pub scenario: Scenario,
    /// Its source text, copied into the run directory.
    pub scenario_source: String,
    /// Where it came from (for the report).
    pub scenario_file: String,
    /// The run directory.
    pub out: PathBuf,
    /// How the services export to the receiver.
    pub protocol: OtlpProtocol,
    /// Receiver listen addresses.
    pub receiver: ReceiverConfig,
    /// Show the live progress line.
    pub progress: bool,
    /// How long to wait for spans still on their way after the load ends.
    pub settle_timeout: Duration,
    /// Keep every received trace in [`RunOutcome::traces`]. Off, a run keeps only the traces
    /// its report singles out, so its memory does not grow with its length; every span is in
    /// `spans.otlp.jsonl` either way.
    pub keep_traces: bool,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The summary (also in `report.json`).
    pub report: RunReport,
    /// The trace analysis (also in `report.html`).
    pub analysis: tracelab_analysis::Analysis,
    /// The run directory.
    pub dir: PathBuf,
    /// The traces the report singles out (slowest and failing), or every received trace with
    /// [`RunOptions::keep_traces`], ordered by start.
    pub traces: Vec<Trace>,
    /// Every incident window (also in `incidents.jsonl` and `report.json`).
    pub incidents: Vec<IncidentWindow>,
}

/// Runs the lab: receiver, services, load, then the flush that makes sure every exported span
/// has arrived, then the summary. Cancelling `shutdown` (Ctrl-C) stops the load early; the rest
/// still happens, so the run directory is complete and marked as interrupted.
pub async fn run_lab(
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let dir = RunDir::create(&options.out)?;
    dir.write(rundir::SCENARIO_FILE, options.scenario_source.as_bytes())?;
    let sink = SpanSink::create(&dir.file(rundir::SPANS_FILE))
        .with_context(|| format!("cannot create {}", dir.file(rundir::SPANS_FILE).display()))?;
    // Traces are analysed as they finish arriving, not kept: see `RunTraces`.
    let collected = Arc::new(Mutex::new(RunTraces::new(options.keep_traces)));
    let consumer = collected.clone();
    let store = Arc::new(TraceStore::streaming(
        Some(sink),
        AssemblyOptions::default(),
        move |trace| lock(&consumer).add(trace),
    ));
    let receiver = Receiver::start(options.receiver.clone(), store.clone()).await?;
    let endpoint = match options.protocol {
        OtlpProtocol::Grpc => receiver.grpc_endpoint(),
        OtlpProtocol::HttpProtobuf => format!("http://{}", receiver.http_addr()),
    };
    let export = ExportConfig::new(endpoint, options.protocol);

    let scenario = Arc::new(options.scenario.clone());
    let host = ServiceHost::start(
        scenario.clone(),
        &HostOptions {
            export: Some(export.clone()),
            ..HostOptions::default()
        },
    )
    .await?;
    // The root of every trace decides, as an OpenTelemetry SDK would: from
    // OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, keeping everything by default.
    let root_sampler = HeadSamplerConfig::from_env()
        .context("OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG")?
        .build();
    let loadgen = ServiceTelemetry::new(
        &ServiceIdentity::new("loadgen", env!("CARGO_PKG_VERSION")),
        &export,
        root_sampler,
    )?;
    let plan =
        LoadPlan::from_scenario(&scenario, |name| host.peers().url(name).map(str::to_string))?;

    // Where each service and its admin (fault) API listen, so faults can be switched on by
    // hand during the run (`curl -X POST <admin_url>/admin/faults -d '{...}'`).
    let addresses: Vec<serde_json::Value> = host
        .services()
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "url": format!("http://{}", s.addr),
                "admin_url": format!("http://{}", s.admin_addr),
            })
        })
        .collect();
    dir.write(
        rundir::SERVICES_FILE,
        serde_json::to_vec_pretty(&addresses)?.as_slice(),
    )?;
    tracing::info!(services = %serde_json::Value::from(addresses), "services and their admin APIs");
    // The incident player starts with the load, so an incident `at: 5s` starts 5 s into it.
    let incidents_stop = CancellationToken::new();
    let player = tokio::spawn(tracelab_loadgen::incidents::play(
        scenario.incident_timeline(plan.duration),
        host.services()
            .iter()
            .map(|s| (s.name.clone(), format!("http://{}", s.admin_addr)))
            .collect(),
        tokio::time::Instant::now(),
        incidents_stop.clone(),
    ));
    let progress = Progress::new(plan.duration, !options.progress);
    let mut requests = dir.requests_writer()?;
    let load = tracelab_loadgen::run(
        &plan,
        Some(&loadgen),
        &LoadOptions::default(),
        &mut requests,
        shutdown.clone(),
        &mut |s| progress.update(s),
    )
    .await
    .context("while sending load")?;
    progress.finish();
    incidents_stop.cancel();
    let incidents = record_incidents(&host, player.await.unwrap_or_default());
    let mut lines = Vec::new();
    for window in &incidents {
        serde_json::to_writer(&mut lines, window)?;
        lines.push(b'\n');
    }
    dir.write(rundir::INCIDENTS_FILE, &lines)?;

    // Flush every exporter, then wait until the receiver holds every span they delivered.
    let mut export_stats: tracelab_telemetry::ExportStats = host
        .shutdown(options.settle_timeout)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .sum();
    export_stats = export_stats + loadgen.shutdown(options.settle_timeout).await;
    if !store
        .wait_for_spans(export_stats.exported, options.settle_timeout)
        .await
    {
        tracing::warn!(
            expected = export_stats.exported,
            received = store.span_count(),
            "not every exported span arrived before the settle timeout"
        );
    }
    receiver.shutdown().await;
    store
        .flush_sink()
        .context("cannot flush spans.otlp.jsonl")?;
    store.finish_traces();
    let RunTraces {
        analyzer,
        totals,
        kept,
    } = std::mem::replace(&mut *lock(&collected), RunTraces::new(false));
    let (analysis, singled_out) = analyzer.finish();
    let mut traces = kept.unwrap_or(singled_out);
    traces.sort_by_key(|t| {
        (
            t.spans.first().map(|s| s.start_unix_nano).unwrap_or(0),
            t.trace_id,
        )
    });

    let report = RunReport::build(SummaryInput {
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: options.scenario_file.clone(),
            seed: scenario.seed,
            rate: plan.mean_rate(),
            duration_s: plan.duration.as_secs_f64(),
            otlp_protocol: options.protocol.as_str().to_string(),
        },
        load: &load,
        traces: &totals,
        health: totals.health(),
        export: export_stats,
        receiver: store.stats(),
    });
    // The incident windows go into report.json beside the summary, so one file says what was
    // injected and what the traffic saw.
    let mut report_json = serde_json::to_value(&report)?;
    if let Some(object) = report_json.as_object_mut() {
        object.insert("incidents".into(), serde_json::to_value(&incidents)?);
    }
    dir.write(
        rundir::REPORT_FILE,
        serde_json::to_vec_pretty(&report_json)?.as_slice(),
    )?;
    let html = crate::report::render_run_html(
        &scenario.name,
        &analysis,
        &traces,
        Some(&serde_json::to_value(&report)?),
        &crate::report::read_incidents(dir.path()),
        crate::report::read_sampling(dir.path()).as_ref(),
    );
    dir.write(rundir::HTML_REPORT_FILE, html.as_bytes())?;
    crate::report::write_analysis_json(dir.path(), &analysis, &traces)?;
    Ok(RunOutcome {
        report,
        analysis,
        dir: options.out,
        traces,
        incidents,
    })
}

/// What a run keeps of its traces: the analysis and summary tallies, fed one finished trace at
/// a time by the store, and the traces themselves only when asked to.
struct RunTraces {
    analyzer: Analyzer,
    totals: TraceTotals,
    kept: Option<Vec<Trace>>,
}

impl RunTraces {
    fn new(keep: bool) -> Self {
        RunTraces {
            analyzer: Analyzer::new(&AnalysisOptions::default()),
            totals: TraceTotals::default(),
            kept: keep.then(Vec::new),
        }
    }

    fn add(&mut self, trace: Trace) {
        self.analyzer.add(&trace);
        self.totals.add(&trace);
        if let Some(kept) = &mut self.kept {
            kept.push(trace);
        }
    }
}

fn lock(traces: &Mutex<RunTraces>) -> std::sync::MutexGuard<'_, RunTraces> {
    // A panic while adding one trace leaves the tallies of the others intact.
    traces.lock().unwrap_or_else(|p| p.into_inner())
}

/// Every incident window of the run: the timeline's, as the player applied them, and the
/// faults switched on by hand through an admin API (from each service's fault history). A
/// fault still on when the load ends gets the end of the load as its end.
fn record_incidents(host: &ServiceHost, mut windows: Vec<IncidentWindow>) -> Vec<IncidentWindow> {
    let now = tracelab_services::faults::unix_nanos(std::time::SystemTime::now());
    for service in host.services() {
        for window in service.faults.history() {
            if window.source == "timeline" {
                continue;
            }
            windows.push(IncidentWindow {
                start_unix_nano: window.start_unix_nano,
                end_unix_nano: window.end_unix_nano.unwrap_or(now),
                what: window.what,
                service: window.service,
                route: window.route,
                source: window.source,
                fault: window.fault,
            });
        }
    }
    windows.sort_by_key(|w| w.start_unix_nano);
    windows
}

/// The incident windows, in seconds from the first one's start when there is no better
/// anchor: the report's reader wants to see what was injected, and roughly when.
fn print_incidents(outcome: &RunOutcome) {
    if outcome.incidents.is_empty() {
        return;
    }
    println!("\n  incidents ({}):", outcome.incidents.len());
    let first = outcome.incidents[0].start_unix_nano;
    for window in &outcome.incidents {
        let from = window.start_unix_nano.saturating_sub(first) as f64 / 1e9;
        let length = window.end_unix_nano.saturating_sub(window.start_unix_nano) as f64 / 1e9;
        println!(
            "    +{from:>6.1}s for {length:>5.1}s  {} ({})",
            window.what, window.source
        );
    }
}

/// The `tracelab run` command: options from the command line, Ctrl-C handling, printing.
pub async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (source, scenario) = crate::check::read_scenario_with(&args.file, &args.overrides)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| RunDir::default_path(&scenario.name));
    let options = RunOptions {
        scenario,
        scenario_source: source,
        scenario_file: args.file.display().to_string(),
        out,
        protocol: args.otlp_protocol.into(),
        receiver: ReceiverConfig {
            grpc_addr: args.otlp_grpc,
            http_addr: args.otlp_http,
            ..ReceiverConfig::default()
        },
        progress: !args.no_progress,
        settle_timeout: Duration::from_secs(15),
        keep_traces: false,
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\ninterrupted: stopping the load, waiting for requests in flight and spans…"
            );
            on_signal.cancel();
        }
    });
    let outcome = run_lab(options, shutdown).await?;
    let sampling = match &args.strategies {
        Some(strategies) => Some(sampling_comparison(&outcome, strategies)?),
        None => None,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.report)?);
    } else {
        print!("{}", outcome.report.render_text());
        print!(
            "\n{}",
            crate::report::render_terminal(&outcome.analysis, &outcome.traces)
        );
        if let Some(table) = &sampling {
            print!("\n{table}");
        }
        print_incidents(&outcome);
        println!("\n  run directory: {}", outcome.dir.display());
    }
    Ok(if outcome.report.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// Compares sampling strategies on a finished run: writes `sampling.json`, re-renders
/// `report.html` with the comparison, and returns the table for the terminal.
fn sampling_comparison(
    outcome: &RunOutcome,
    strategies: &std::path::Path,
) -> anyhow::Result<String> {
    let comparison = crate::compare::compare_input(&outcome.dir, strategies, None)?;
    let dir = &outcome.dir;
    std::fs::write(
        dir.join(crate::compare::SAMPLING_FILE),
        serde_json::to_vec_pretty(&comparison)?,
    )
    .with_context(|| {
        format!(
            "cannot write {}",
            dir.join(crate::compare::SAMPLING_FILE).display()
        )
    })?;
    let html = crate::report::render_run_html(
        &outcome.report.scenario.name,
        &outcome.analysis,
        &outcome.traces,
        Some(&serde_json::to_value(&outcome.report)?),
        &crate::report::read_incidents(dir),
        crate::report::read_sampling(dir).as_ref(),
    );
    std::fs::write(dir.join(rundir::HTML_REPORT_FILE), html).with_context(|| {
        format!(
            "cannot write {}",
            dir.join(rundir::HTML_REPORT_FILE).display()
        )
    })?;
    Ok(comparison.to_table())
}
