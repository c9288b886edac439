//! `tracelab run`: the whole lab in one process, on the embedded receiver — a load session
//! ([`crate::session`]) with the lab as its backend.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracelab_analysis::Analysis;
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_receiver::{ForwardProtocol, ForwardTarget, ReceiverConfig};
use tracelab_sampling::head::HeadSamplerConfig;
use tracelab_scenario::Scenario;
use tracelab_telemetry::{BatchSettings, OtlpProtocol};
use tracelab_trace::Trace;

use crate::cli::RunArgs;
use crate::rundir;
use crate::session::{Backend, LabOptions, SessionOptions, SessionOutcome};
use crate::signals::Signals;
use crate::summary::RunReport;

/// What [`run_lab`] needs: a lab session with the defaults of `tracelab run` for the rest
/// (root sampler from `OTEL_TRACES_SAMPLER`, no forwarding).
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
    /// The report (also in `report.json`).
    pub report: RunReport,
    /// The trace analysis (also in `report.html`).
    pub analysis: Analysis,
    /// The run directory.
    pub dir: PathBuf,
    /// The traces the report singles out (slowest and failing), or every received trace with
    /// [`RunOptions::keep_traces`], ordered by start.
    pub traces: Vec<Trace>,
    /// Every incident window (also in `incidents.jsonl` and `report.json`).
    pub incidents: Vec<IncidentWindow>,
    /// The live console, still serving the finished run (`--ui`).
    pub console: Option<crate::console::Served>,
}

impl RunOptions {
    /// The session these options describe.
    pub fn session(self) -> anyhow::Result<SessionOptions> {
        Ok(SessionOptions {
            scenario: self.scenario,
            scenario_source: self.scenario_source,
            scenario_file: self.scenario_file,
            out: self.out,
            progress: self.progress,
            backend: Backend::Lab(LabOptions {
                protocol: self.protocol,
                receiver: self.receiver,
                receiver_addresses_given: true,
                keep_traces: self.keep_traces,
                forward: Vec::new(),
                timer: tracelab_timer::Mode::Precise,
                ui: None,
                batch: batch_from_env()?,
            }),
            sampler: HeadSamplerConfig::from_env()
                .context("OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG")?,
            no_tracing: false,
            request_timeout: Duration::from_secs(30),
            settle_timeout: self.settle_timeout,
            fd_limit: None,
        })
    }
}

/// Runs the lab: receiver, services, load, then the flush that makes sure every exported span
/// has arrived, then the report. Cancelling `shutdown` stops the load early; the rest still
/// happens, so the run directory is complete and marked as interrupted.
pub async fn run_lab(
    options: RunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<RunOutcome> {
    let outcome = crate::session::run(options.session()?, &Signals::manual(shutdown)).await?;
    lab_outcome(outcome)
}

fn lab_outcome(outcome: SessionOutcome) -> anyhow::Result<RunOutcome> {
    for problem in &outcome.unwritten {
        tracing::warn!("{problem}");
    }
    Ok(RunOutcome {
        incidents: outcome.report.incidents.clone(),
        analysis: outcome.analysis.context("the lab's analysis is missing")?,
        report: outcome.report,
        dir: outcome.dir,
        traces: outcome.traces,
        console: outcome.console,
    })
}

/// The incident windows, in seconds from the run's first span (the clock the waterfalls, the
/// report and the course's explanations use), so an incident the timeline plays at 3 s reads
/// `+3.0s`.
pub(crate) fn print_incidents(incidents: &[IncidentWindow], run_start_unix_nano: u64) {
    if incidents.is_empty() {
        return;
    }
    println!(
        "\n  incidents ({}), from the start of the run:",
        incidents.len()
    );
    for window in incidents {
        let from = window.start_unix_nano.saturating_sub(run_start_unix_nano) as f64 / 1e9;
        let length = window.end_unix_nano.saturating_sub(window.start_unix_nano) as f64 / 1e9;
        println!(
            "    +{from:>6.1}s for {length:>5.1}s  {} ({})",
            window.what, window.source
        );
    }
}

/// The `tracelab run` command.
pub async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let signals = Signals::install(
        "stopping the load, waiting for requests in flight and their spans, then writing the report",
    );
    let (source, scenario) =
        crate::check::read_scenario_with(&args.session.file, &args.session.overrides)?;
    // `--forward` URLs keep gRPC unless a protocol was asked for: a Collector's 4317 is the
    // address people copy, and it speaks gRPC.
    let default_protocol = match args.otlp_protocol {
        None | Some(crate::cli::ProtocolArg::Grpc) => ForwardProtocol::Grpc,
        Some(crate::cli::ProtocolArg::HttpProtobuf) => ForwardProtocol::HttpProtobuf,
    };
    let forward = args
        .forward
        .iter()
        .map(|url| ForwardTarget::parse(url, default_protocol))
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| anyhow::anyhow!("--forward: {e}"))?;
    let defaults = ReceiverConfig::default();
    let backend = Backend::Lab(LabOptions {
        protocol: args
            .otlp_protocol
            .unwrap_or(crate::cli::ProtocolArg::HttpProtobuf)
            .into(),
        receiver: ReceiverConfig {
            grpc_addr: args.otlp_grpc.unwrap_or(defaults.grpc_addr),
            http_addr: args.otlp_http.unwrap_or(defaults.http_addr),
            ..defaults
        },
        receiver_addresses_given: args.otlp_grpc.is_some() || args.otlp_http.is_some(),
        keep_traces: false,
        forward,
        timer: tracelab_timer::Mode::Precise,
        ui: args.ui.map(|listen| crate::console::UiOptions {
            listen,
            public: args.ui_public,
        }),
        batch: batch_from_env()?,
    });
    let options = crate::load::command_session(&args.session, source, scenario, backend, false)?;
    let outcome = crate::session::run(options, &signals).await?;
    let code = outcome.exit_code();
    outcome.print_lost_writes();
    let mut outcome = lab_outcome(outcome)?;
    let sampling = match &args.strategies {
        Some(strategies) => Some(sampling_comparison(&outcome, strategies)?.to_table()),
        None => None,
    };
    if args.session.json {
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
        print_incidents(
            &outcome.incidents,
            outcome.analysis.overview.first_start_unix_nano,
        );
        println!("\n  run directory: {}", outcome.dir.display());
        if outcome.console.is_none() {
            // Where a learner goes next: the page for this run, and the console.
            let dir = outcome.dir.display();
            println!("  report      {dir}/report.html (open it in a browser)");
            println!(
                "  next        `tracelab serve {dir}` to search its traces; add `--ui` to a run \
                 to watch it live"
            );
        }
    }
    if let Some(console) = outcome.console.take() {
        console.linger(args.ui_linger, signals.token()).await;
    }
    Ok(code)
}

/// Compares sampling strategies on a finished run: writes `sampling.json`, re-renders
/// `report.html` with the comparison, and returns the comparison.
pub(crate) fn sampling_comparison(
    outcome: &RunOutcome,
    strategies: &std::path::Path,
) -> anyhow::Result<tracelab_sampling::compare::ComparisonReport> {
    let comparison = crate::compare::compare_input(&outcome.dir, strategies, None)?;
    let dir = &outcome.dir;
    rundir::write_atomically(
        &dir.join(crate::compare::SAMPLING_FILE),
        &serde_json::to_vec_pretty(&comparison)?,
    )?;
    let html = crate::report::render_run_html(
        &outcome.report.scenario.name,
        &outcome.analysis,
        &outcome.traces,
        Some(&serde_json::to_value(&outcome.report)?),
        &crate::report::read_incidents(dir),
        crate::report::read_sampling(dir).as_ref(),
    );
    rundir::write_atomically(&dir.join(rundir::HTML_REPORT_FILE), html.as_bytes())?;
    Ok(comparison)
}

/// The lab exporters' batch settings: the lab's defaults, or the standard `OTEL_BSP_*`
/// variables where they are set.
fn batch_from_env() -> anyhow::Result<BatchSettings> {
    Ok(BatchSettings::from_lookup(|k| std::env::var(k).ok())?)
}
