//! One load session, whatever the backend: what `tracelab run` and `tracelab load` both are.
//!
//! A session starts its backend — the whole lab in this process ([`Backend::Lab`], `run`) or
//! services that run elsewhere ([`Backend::External`], `load`) —, creates the run directory
//! only once everything has started, drives the load with the root sampler from
//! `OTEL_TRACES_SAMPLER`, plays the incident timeline, stops the backend (always, whatever
//! failed before), and writes one report model. Signals, validation, sampling and the files
//! of the run directory are therefore the same for both commands.
//!
//! Layout: this file holds the options and the flow; `session/lab.rs` the embedded backend
//! (receiver, services, streaming analysis); `session/pipeline.rs` the runtime the span
//! pipeline runs on, apart from the services.

mod lab;
mod pipeline;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracelab_analysis::Analysis;
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_loadgen::{HttpTransport, LoadOptions, LoadPlan, LoadSummary};
use tracelab_receiver::{ForwardTarget, ReceiverConfig};
use tracelab_sampling::head::HeadSamplerConfig;
use tracelab_scenario::Scenario;
use tracelab_telemetry::{
    ExportConfig, ExportStats, OtlpProtocol, ServiceIdentity, ServiceTelemetry,
};
use tracelab_trace::Trace;

use crate::fdlimit::{self, FdLimit};
use crate::progress::Progress;
use crate::rundir::{self, RunDir};
use crate::signals::Signals;
use crate::summary::{ExternalSpans, ReportInput, RunReport, ScenarioInfo};

/// The most connections the load generator opens when nothing else limits it.
pub const CONNECTION_CEILING: usize = 10_000;

/// Everything a session needs.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The scenario, with command-line overrides applied and validated.
    pub scenario: Scenario,
    /// Its source text, copied into the run directory.
    pub scenario_source: String,
    /// Where it came from (for the report).
    pub scenario_file: String,
    /// The run directory.
    pub out: PathBuf,
    /// Show the live progress line.
    pub progress: bool,
    /// Where the services are.
    pub backend: Backend,
    /// The root sampler: the load generator starts every trace and decides first.
    pub sampler: HeadSamplerConfig,
    /// No spans and no trace context at all (`load --no-tracing`, the client's maximum
    /// throughput).
    pub no_tracing: bool,
    /// Client timeout of one request.
    pub request_timeout: Duration,
    /// How long to wait for spans still on their way after the load ends.
    pub settle_timeout: Duration,
    /// The open-file limit, which sets the default connection budget; `None` leaves the
    /// budget at [`CONNECTION_CEILING`].
    pub fd_limit: Option<FdLimit>,
}

/// Where the services of a session run.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The whole lab in this process: the embedded receiver and every service.
    Lab(LabOptions),
    /// Services running elsewhere (compose, Kubernetes): their spans go wherever they export.
    External(ExternalOptions),
}

/// The embedded lab's settings.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// How the services export to the embedded receiver.
    pub protocol: OtlpProtocol,
    /// Receiver listen addresses.
    pub receiver: ReceiverConfig,
    /// Whether the receiver addresses were asked for explicitly. When they were not and the
    /// OTLP ports are taken (a local Collector), free ports are used instead, and said so.
    pub receiver_addresses_given: bool,
    /// Keep every received trace in the outcome (tests); otherwise only the few the report
    /// opens, so memory does not grow with the run.
    pub keep_traces: bool,
    /// Other OTLP endpoints that get a copy of every span.
    pub forward: Vec<ForwardTarget>,
    /// What the services' injected waits wait on: precise unless a comparison asks for
    /// tokio's millisecond timer.
    pub timer: tracelab_timer::Mode,
    /// Serve the live console (`--ui`) on this address.
    pub ui: Option<crate::console::UiOptions>,
    /// The exporters' batch queues (the `OTEL_BSP_*` variables; see
    /// `BatchSettings::from_lookup`). The load is held while one is over a quarter full.
    pub batch: tracelab_telemetry::BatchSettings,
}

/// Services running elsewhere.
#[derive(Debug, Clone, Default)]
pub struct ExternalOptions {
    /// Base URL of each entry service; a name given again adds an instance, balanced by the
    /// service's policy.
    pub targets: Vec<(String, String)>,
    /// Base URL of the admin (fault) API of services, to play the scenario's incidents; a
    /// name given again adds the next instance's.
    pub admin: Vec<(String, String)>,
    /// Where the client spans go; `None`: made (context still propagates) but not exported.
    pub export: Option<ExportConfig>,
}

/// What a finished session produced.
#[derive(Debug)]
pub struct SessionOutcome {
    /// The report (also in `report.json`).
    pub report: RunReport,
    /// The trace analysis (also in `report.html`); embedded lab only.
    pub analysis: Option<Analysis>,
    /// The traces the report singles out, or every trace with `keep_traces`, by start.
    pub traces: Vec<Trace>,
    /// The run directory.
    pub dir: PathBuf,
    /// Files of the run directory that could not be written, with why; the run itself
    /// completed and the report holds everything.
    pub unwritten: Vec<String>,
    /// The live console, still serving the finished run (`--ui`).
    pub console: Option<crate::console::Served>,
}

impl SessionOutcome {
    /// Whether some of what the run recorded could not be written to its files (a full disk):
    /// the report and the summary still count it.
    pub fn lost_writes(&self) -> bool {
        !self.unwritten.is_empty()
            || self.report.pipeline.span_file_write_failures > 0
            || self.report.load.record_write_failures > 0
    }

    /// The exit code of the command: 130 when interrupted, 1 when some of the run could not
    /// be written to its files, 0 otherwise.
    pub fn exit_code(&self) -> std::process::ExitCode {
        if self.report.interrupted {
            std::process::ExitCode::from(130)
        } else if self.lost_writes() {
            std::process::ExitCode::from(1)
        } else {
            std::process::ExitCode::SUCCESS
        }
    }

    /// Tells the user, on stderr, what could not be written.
    pub fn print_lost_writes(&self) {
        for problem in &self.unwritten {
            eprintln!("error: {problem}");
        }
        if self.lost_writes() {
            eprintln!(
                "error: some of this run could not be written to {} (is the disk full?); the \
                 summary counts everything, the files do not hold it all",
                self.dir.display()
            );
        }
    }
}

/// Runs a session. The first signal stops the load; everything after still happens, so the
/// run directory is complete and marked interrupted.
pub async fn run(options: SessionOptions, signals: &Signals) -> anyhow::Result<SessionOutcome> {
    let mut warnings = Vec::new();
    let scenario = Arc::new(options.scenario.clone());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let others = pipeline::others_busy_share(Duration::from_millis(100)).await;
    let priority = pipeline::Priority::for_scenario(&options.scenario, cores).given_others(others);
    tracing::debug!(
        ?others,
        ?priority,
        "other programs' share of this session's cores"
    );
    let pipeline = pipeline::Pipeline::start(priority).context("cannot start the span pipeline")?;
    // The console's address is taken first: a bad one fails before anything starts.
    let ui = match &options.backend {
        Backend::Lab(LabOptions { ui: Some(ui), .. }) => Some(ui.bind()?),
        _ => None,
    };
    // Everything that can fail to start does so before the run directory exists.
    let mut backend = match &options.backend {
        Backend::Lab(lab) => Running::Lab(Box::new(
            lab::Lab::start(scenario.clone(), lab, &pipeline, &mut warnings).await?,
        )),
        Backend::External(external) => Running::External(external.clone()),
    };
    let prepared = match prepare(&options, &scenario, &backend, &pipeline, &mut warnings).await {
        Ok(prepared) => prepared,
        Err(e) => {
            backend.abandon(options.settle_timeout).await;
            return Err(e);
        }
    };
    let Prepared {
        dir,
        plan,
        root,
        connection_budget,
    } = prepared;
    if let Running::Lab(lab) = &mut backend
        && let Err(e) = lab.open_run_directory(&dir, signals)
    {
        backend.abandon(options.settle_timeout).await;
        if let Some(root) = &root {
            root.shutdown(options.settle_timeout).await;
        }
        dir.abandon();
        return Err(e);
    }
    if let Err(e) = dir.write(rundir::SCENARIO_FILE, options.scenario_source.as_bytes()) {
        warnings.push(format!("{e:#}"));
    }
    let console = match &backend {
        Running::Lab(lab) => {
            lab.write_services_file(&dir, &mut warnings);
            ui.map(|listener| lab.serve_console(listener, &scenario.name, dir.path()))
                .transpose()?
        }
        Running::External(_) => None,
    };

    // The incident player counts from the instant the load's schedule counts from, which
    // the load generator fixes once its timer is measured: an incident `at: 5s` starts with
    // the request scheduled at 5 s.
    let admin = backend.admin_urls();
    warn_unplayable_incidents(&scenario, &admin, &plan, &mut warnings);
    let incidents_stop = tokio_util::sync::CancellationToken::new();
    let (started, mut origin) = tokio::sync::watch::channel(None);
    let player = tokio::spawn({
        let timeline = scenario.incident_timeline(plan.duration);
        let stop = incidents_stop.clone();
        async move {
            let start = tokio::select! {
                start = origin.wait_for(Option::is_some) => start.ok().and_then(|s| *s),
                () = stop.cancelled() => None,
            };
            match start {
                Some(start) => {
                    tracelab_loadgen::incidents::play(timeline, admin, start, stop).await
                }
                None => Vec::new(),
            }
        }
    });
    let backpressure = match &backend {
        Running::Lab(lab) => Some(lab.watch_pipeline(root.as_ref())),
        // Another backend's queues are its own business; its losses are counted.
        Running::External(_) => None,
    };
    let load = drive(
        &options,
        &dir,
        &plan,
        root.as_ref(),
        connection_budget,
        Pacing {
            started,
            backpressure,
        },
        signals,
    )
    .await;
    incidents_stop.cancel();
    let played = player.await.unwrap_or_default();

    // On a starved machine the exports time out while the receiver still stores their spans:
    // the exporters' own shutdown sees no span exported and would count the queued rest lost.
    backend.settle(options.settle_timeout, root.as_ref()).await;
    // Always stopped, whatever the load did: a provider left running would block the
    // runtime's teardown in its own shutdown.
    let mut export: ExportStats = match &root {
        Some(root) => root.shutdown(options.settle_timeout).await,
        None => ExportStats::default(),
    };
    let root_instance = root.as_ref().map(ServiceTelemetry::instance_id);
    let stopped = backend
        .stop(options.settle_timeout, export, root_instance)
        .await;
    export = export + stopped.export;
    let load = load?;
    let mut incidents = played;
    incidents.extend(stopped.hand_made_incidents);
    incidents.sort_by_key(|w| w.start_unix_nano);

    let external = match &options.backend {
        Backend::External(external) => Some(ExternalSpans {
            endpoint: external.export.as_ref().map(ExportConfig::export_url),
            sampler: if options.no_tracing {
                "none (tracing off)".to_string()
            } else {
                sampler_name(&options.sampler)
            },
            targets: external.targets.iter().cloned().collect::<BTreeMap<_, _>>(),
        }),
        Backend::Lab(_) => None,
    };
    warnings.extend(stopped.warnings);
    let mut report = RunReport::build(ReportInput {
        scenario: scenario_info(&options, &plan),
        load,
        export,
        stored_late: stopped.stored_late,
        receiver: stopped.receiver,
        analysis: stopped.analysis.as_ref(),
        forwarded: stopped.forwarded,
        injected_waits: stopped.injected_waits,
        incidents,
        warnings,
        external,
    });
    if matches!(options.backend, Backend::Lab(_)) {
        report.pipeline.priority = Some(crate::summary::PipelinePriority {
            policy: priority.name().to_string(),
            others_busy_percent: others.map(|share| (share * 1000.0).round() / 10.0),
        });
        report.pipeline.service_workers =
            Some(tokio::runtime::Handle::current().metrics().num_workers());
    }
    if report.pipeline.spans_lost > 0 && priority == pipeline::Priority::Idle {
        report.warnings.push(
            "the span pipeline ran at the lowest priority (SCHED_IDLE, chosen because other \
             programs were quiet when the run started): programs that got busy during the run \
             may have starved it. Rerun with the machine quieter"
                .to_string(),
        );
    }
    if let Backend::Lab(lab) = &options.backend
        && lab.batch != tracelab_telemetry::BatchSettings::default()
        && (report.load.held.count > 0 || report.pipeline.spans_lost > 0)
    {
        report.warnings.push(batch_settings_warning(&lab.batch));
    }
    let mut unwritten = Vec::new();
    write_report_files(
        &dir,
        &report,
        stopped.analysis.as_ref(),
        &stopped.traces,
        &mut unwritten,
    );
    if let Some(console) = &console {
        console.console().finish();
    }
    Ok(SessionOutcome {
        report,
        analysis: stopped.analysis,
        traces: stopped.traces,
        dir: options.out,
        unwritten,
        console,
    })
}

/// A started backend.
enum Running {
    Lab(Box<lab::Lab>),
    External(ExternalOptions),
}

/// What stopping a backend leaves.
#[derive(Default)]
struct Stopped {
    export: ExportStats,
    /// Spans the receiver stored beyond those the exporters saw acknowledged (lab only).
    stored_late: Option<u64>,
    receiver: Option<tracelab_receiver::ReceiverStats>,
    analysis: Option<Analysis>,
    traces: Vec<Trace>,
    forwarded: Vec<crate::summary::ForwardReport>,
    injected_waits: Option<tracelab_timer::Overrun>,
    hand_made_incidents: Vec<IncidentWindow>,
    warnings: Vec<String>,
}

impl Running {
    /// The admin API of each instance of each service, by service, in instance order.
    fn admin_urls(&self) -> HashMap<String, Vec<String>> {
        match self {
            Running::Lab(lab) => lab.admin_urls(),
            Running::External(external) => {
                let mut urls: HashMap<String, Vec<String>> = HashMap::new();
                for (name, url) in &external.admin {
                    urls.entry(name.clone()).or_default().push(url.clone());
                }
                urls
            }
        }
    }

    /// Stops a backend that never ran load.
    async fn abandon(self, timeout: Duration) {
        if let Running::Lab(lab) = self {
            lab.abandon(timeout).await;
        }
    }

    /// Waits, after the load, while spans are still queued in the lab's exporters (`root`
    /// is the load generator's) and the receiver keeps storing spans. No wait for an external
    /// backend.
    async fn settle(&self, timeout: Duration, root: Option<&ServiceTelemetry>) {
        if let Running::Lab(lab) = self {
            lab.settle(timeout, root).await;
        }
    }

    /// Stops the backend after the load; `root` is what the load generator exported, from
    /// the instance `root_instance`.
    async fn stop(
        self,
        timeout: Duration,
        root: ExportStats,
        root_instance: Option<&str>,
    ) -> Stopped {
        match self {
            Running::Lab(lab) => lab.stop(timeout, root, root_instance).await,
            Running::External(_) => Stopped::default(),
        }
    }
}

/// What a session sets up before its run directory's files.
struct Prepared {
    dir: RunDir,
    plan: LoadPlan,
    root: Option<ServiceTelemetry>,
    connection_budget: usize,
}

async fn prepare(
    options: &SessionOptions,
    scenario: &Scenario,
    backend: &Running,
    pipeline: &pipeline::Pipeline,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Prepared> {
    let plan = match backend {
        Running::Lab(lab) => LoadPlan::from_scenario(scenario, |name| lab.urls(name))?,
        Running::External(external) => LoadPlan::from_scenario(scenario, |name| {
            external
                .targets
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, url)| url.clone())
                .collect()
        })?,
    };
    let identity = ServiceIdentity::new("loadgen", env!("CARGO_PKG_VERSION"));
    let sampler = options.sampler.build();
    // The load generator's exporter runs with the rest of the span pipeline.
    let handle = pipeline.handle();
    let _entered = handle.enter();
    let root = match backend {
        _ if options.no_tracing => None,
        Running::Lab(lab) => Some(ServiceTelemetry::new(&identity, &lab.export(), sampler)?),
        Running::External(external) => Some(match &external.export {
            Some(export) => ServiceTelemetry::new(&identity, export, sampler)?,
            None => {
                warnings.push(
                    "no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): client spans are made and \
                     context propagates, but the spans are not exported"
                        .to_string(),
                );
                ServiceTelemetry::without_export(&identity, sampler)
            }
        }),
    };
    // Each request in flight holds a socket at the load generator, and in the lab the
    // accepted end and every downstream call's pair too.
    let sockets_per_request = match backend {
        Running::Lab(_) => {
            let open = scenario
                .load
                .entries
                .iter()
                .map(|e| scenario.max_open_calls(&e.service, &e.route))
                .fold(0.0, f64::max);
            2.0 * (1.0 + open)
        }
        Running::External(_) => 1.0,
    };
    let connection_budget = match options.fd_limit {
        Some(limit) => fdlimit::connection_budget(limit, sockets_per_request, CONNECTION_CEILING),
        None => CONNECTION_CEILING,
    };
    if let Some(wanted) = plan.connections
        && wanted > connection_budget
    {
        warnings.push(format!(
            "--connections {wanted} is more than the open-file limit allows ({connection_budget} \
             with up to {sockets_per_request} sockets per request); raise `ulimit -n` or expect \
             connection errors"
        ));
    }
    drop(_entered);
    let dir = RunDir::create(&options.out)?;
    Ok(Prepared {
        dir,
        plan,
        root,
        connection_budget,
    })
}

/// What the load generator tells the session and asks it while it sends.
struct Pacing {
    /// Told the instant the schedule counts from.
    started: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
    /// Asked before each request whether the span pipeline has fallen behind.
    backpressure: Option<tracelab_loadgen::Backpressure>,
}

/// Sends the load, writing `requests.jsonl`.
async fn drive(
    options: &SessionOptions,
    dir: &RunDir,
    plan: &LoadPlan,
    root: Option<&ServiceTelemetry>,
    connection_budget: usize,
    pacing: Pacing,
    signals: &Signals,
) -> anyhow::Result<LoadSummary> {
    let progress = Progress::new(plan.duration, !options.progress);
    let mut requests = dir.requests_writer()?;
    let flushing = requests.clone();
    signals.on_forced_exit(Box::new(move || flushing.flush_now()));
    let load = tracelab_loadgen::run(
        Arc::new(HttpTransport),
        plan,
        root,
        &LoadOptions {
            request_timeout: options.request_timeout,
            connection_budget,
            started: Some(pacing.started),
            backpressure: pacing.backpressure,
            ..LoadOptions::default()
        },
        &mut requests,
        signals.token(),
        &mut |s| progress.update(s),
    )
    .await
    .context("while sending load");
    progress.finish();
    load
}

fn scenario_info(options: &SessionOptions, plan: &LoadPlan) -> ScenarioInfo {
    ScenarioInfo {
        name: options.scenario.name.clone(),
        file: options.scenario_file.clone(),
        seed: options.scenario.seed,
        rate: plan.mean_rate(),
        duration_s: plan.duration.as_secs_f64(),
        otlp_protocol: match &options.backend {
            Backend::Lab(lab) => lab.protocol.as_str().to_string(),
            Backend::External(external) => external
                .export
                .as_ref()
                .map(|e| e.protocol.as_str().to_string())
                .unwrap_or_default(),
        },
        sampler: if options.no_tracing {
            "none (tracing off)".to_string()
        } else {
            sampler_name(&options.sampler)
        },
    }
}

/// Where the exporters' batch settings were not the lab's, the holds and losses they cause
/// are theirs, not the machine's.
fn batch_settings_warning(batch: &tracelab_telemetry::BatchSettings) -> String {
    let lab = tracelab_telemetry::BatchSettings::default();
    format!(
        "the exporters ran with OTEL_BSP_* settings of their own (queue {} spans, batches of \
         {}, sent every {} ms, timeout {} ms; the lab's are {}, {}, {} ms and {} ms): the \
         holds and lost spans above may come from those settings rather than from this machine",
        batch.max_queue_size,
        batch.max_export_batch_size,
        batch.scheduled_delay.as_millis(),
        batch.export_timeout.as_millis(),
        lab.max_queue_size,
        lab.max_export_batch_size,
        lab.scheduled_delay.as_millis(),
        lab.export_timeout.as_millis(),
    )
}

/// The runtime a lab session (`tracelab run`, `tracelab learn`) runs on: as many workers as
/// `pipeline::service_workers` gives for the cores this process may use (every core but one,
/// which its span pipeline's own threads use), unless `TOKIO_WORKER_THREADS` says otherwise.
pub fn lab_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.worker_threads(pipeline::service_workers(cores));
    }
    builder.enable_all().build()
}

/// `OTEL_TRACES_SAMPLER[:ARG]`.
pub fn sampler_name(sampler: &HeadSamplerConfig) -> String {
    match sampler.env_arg() {
        Some(arg) => format!("{}:{arg}", sampler.env_name()),
        None => sampler.env_name(),
    }
}

/// Incidents whose service (or instance) has no known admin API cannot be played: say so
/// before the load.
fn warn_unplayable_incidents(
    scenario: &Scenario,
    admin: &HashMap<String, Vec<String>>,
    plan: &LoadPlan,
    warnings: &mut Vec<String>,
) {
    let known = |service: &str, instance: Option<u32>| {
        let count = admin.get(service).map_or(0, Vec::len);
        match instance {
            None => count > 0,
            Some(index) => usize::try_from(index).is_ok_and(|index| index < count),
        }
    };
    let mut missing: Vec<String> = scenario
        .incident_timeline(plan.duration)
        .iter()
        .filter(|i| !known(&i.fault.service, i.fault.instance))
        .map(|i| i.fault.service.clone())
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        let flags: Vec<String> = missing
            .iter()
            .map(|s| format!("--admin {s}=http://HOST:9091"))
            .collect();
        warnings.push(format!(
            "the scenario's incidents on {} are not played: no admin API address for them ({})",
            missing.join(", "),
            flags.join(" ")
        ));
    }
}

/// `report.json`, `incidents.jsonl`, and for the lab `report.html`. A file that cannot be
/// written is recorded, never a reason to lose the others.
fn write_report_files(
    dir: &RunDir,
    report: &RunReport,
    analysis: Option<&Analysis>,
    traces: &[Trace],
    unwritten: &mut Vec<String>,
) {
    let mut attempt = |name: &str, contents: anyhow::Result<Vec<u8>>| {
        if let Err(e) = contents.and_then(|bytes| dir.write(name, &bytes)) {
            unwritten.push(format!("{name}: {e:#}"));
        }
    };
    let mut lines = Vec::new();
    for window in &report.incidents {
        if serde_json::to_writer(&mut lines, window).is_ok() {
            lines.push(b'\n');
        }
    }
    attempt(rundir::INCIDENTS_FILE, Ok(lines));
    attempt(
        rundir::REPORT_FILE,
        serde_json::to_vec_pretty(report).map_err(Into::into),
    );
    if let Some(analysis) = analysis {
        let summary = serde_json::to_value(report).ok();
        let html = crate::report::render_run_html(
            &report.scenario.name,
            analysis,
            traces,
            summary.as_ref(),
            &crate::report::read_incidents(dir.path()),
            crate::report::read_sampling(dir.path()).as_ref(),
        );
        attempt(rundir::HTML_REPORT_FILE, Ok(html.into_bytes()));
        if let Err(e) = crate::report::write_analysis_json(dir.path(), analysis, traces) {
            unwritten.push(format!("{}: {e:#}", rundir::ANALYSIS_FILE));
        }
    }
}
