//! `tracelab load`: drive a scenario's load into services that run elsewhere (compose,
//! Kubernetes) — a load session ([`crate::session`]) with external targets. tracelab is still
//! the root of every trace; its CLIENT spans go to the OTLP endpoint of the environment
//! (`OTEL_EXPORTER_OTLP_*`), the services' spans go wherever the services send them, so the
//! run directory holds requests and the report but no spans.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio_util::sync::CancellationToken;
use tracelab_sampling::head::HeadSamplerConfig;
use tracelab_scenario::Scenario;
use tracelab_telemetry::ExportConfig;

use crate::cli::SessionArgs;
use crate::rundir::RunDir;
use crate::session::{Backend, ExternalOptions, SessionOptions};
use crate::signals::Signals;
use crate::summary::RunReport;

/// `tracelab load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// What every load session takes: the scenario, overrides, run directory, output.
    #[command(flatten)]
    pub session: SessionArgs,
    /// Where an entry service listens: NAME=http://HOST:PORT (repeatable; a name given again
    /// adds an instance, balanced by the service's policy). Services not given here are read
    /// from TRACELAB_TARGET_<NAME> (upper case, `-` as `_`).
    #[arg(long = "target", value_name = "NAME=URL")]
    pub targets: Vec<String>,
    /// Where a service's admin (fault) API listens, so the scenario's incidents are played:
    /// NAME=http://HOST:PORT (repeatable; a name given again adds its next instance's, which
    /// incidents naming an instance go to; else TRACELAB_ADMIN_<NAME>).
    #[arg(long = "admin", value_name = "NAME=URL")]
    pub admin: Vec<String>,
    /// No spans and no trace context at all: the load generator's own maximum-throughput
    /// measure.
    #[arg(long)]
    pub no_tracing: bool,
}

/// What [`run_load`] needs: an external session with `tracelab load`'s defaults.
#[derive(Debug, Clone)]
pub struct LoadRunOptions {
    /// The scenario, with command-line overrides applied.
    pub scenario: Scenario,
    /// Its source text, copied into the run directory.
    pub scenario_source: String,
    /// Where it came from.
    pub scenario_file: String,
    /// Base URL of each entry service.
    pub targets: Vec<(String, String)>,
    /// Where the client spans go; `None`: made (context still propagates) but not exported.
    pub export: Option<ExportConfig>,
    /// The root sampler.
    pub sampler: HeadSamplerConfig,
    /// No spans at all.
    pub no_tracing: bool,
    /// The run directory.
    pub out: PathBuf,
    /// Show the live progress line.
    pub progress: bool,
    /// Client timeout.
    pub request_timeout: Duration,
}

/// What a finished external load run produced.
#[derive(Debug)]
pub struct LoadOutcome {
    /// The report (also in `report.json`).
    pub report: RunReport,
    /// The run directory.
    pub dir: PathBuf,
}

/// Sends the load to the external targets and writes the run directory (scenario,
/// requests.jsonl, report.json). Cancelling `shutdown` stops sending; requests in flight are
/// awaited and the directory is still written, marked as interrupted.
pub async fn run_load(
    options: LoadRunOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<LoadOutcome> {
    let session = SessionOptions {
        scenario: options.scenario,
        scenario_source: options.scenario_source,
        scenario_file: options.scenario_file,
        out: options.out,
        progress: options.progress,
        backend: Backend::External(ExternalOptions {
            targets: options.targets,
            admin: Vec::new(),
            export: options.export,
        }),
        sampler: options.sampler,
        no_tracing: options.no_tracing,
        request_timeout: options.request_timeout,
        settle_timeout: Duration::from_secs(15),
        fd_limit: None,
    };
    let outcome = crate::session::run(session, &Signals::manual(shutdown)).await?;
    Ok(LoadOutcome {
        report: outcome.report,
        dir: outcome.dir,
    })
}

/// Reads `NAME=URL` flags (`--target`, `--admin`) and completes them, for the scenario
/// services in `wanted`, from `{prefix}<NAME>` variables.
pub fn resolve_addresses(
    flag: &str,
    prefix: &str,
    wanted: &[String],
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut found: Vec<(String, String)> = Vec::new();
    for value in flags {
        let (name, url) = value
            .split_once('=')
            .with_context(|| format!("{flag} `{value}`: write NAME=http://HOST:PORT"))?;
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{flag} `{value}`: the URL must start with http:// or https://"
        );
        found.push((name.to_string(), url.trim_end_matches('/').to_string()));
    }
    for service in wanted {
        if found.iter().any(|(n, _)| n == service) {
            continue;
        }
        let var = format!("{prefix}{}", service.to_ascii_uppercase().replace('-', "_"));
        if let Some(url) = env(&var).filter(|u| !u.is_empty()) {
            found.push((service.clone(), url.trim_end_matches('/').to_string()));
        }
    }
    Ok(found)
}

/// Reads `--target` flags and completes them from `TRACELAB_TARGET_<SERVICE>`.
pub fn resolve_targets(
    scenario: &Scenario,
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let entries: Vec<String> = scenario
        .load
        .entries
        .iter()
        .map(|e| e.service.clone())
        .collect();
    resolve_addresses("--target", "TRACELAB_TARGET_", &entries, flags, env)
}

/// The `tracelab load` command.
pub async fn load_command(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let signals = Signals::install(
        "stopping the load, waiting for requests in flight, then writing the report",
    );
    let (source, scenario) =
        crate::check::read_scenario_with(&args.session.file, &args.session.overrides)?;
    let env = |k: &str| std::env::var(k).ok();
    let targets = resolve_targets(&scenario, &args.targets, env)?;
    let services: Vec<String> = scenario.services.keys().cloned().collect();
    let admin = resolve_addresses("--admin", "TRACELAB_ADMIN_", &services, &args.admin, env)?;
    let export = ExportConfig::from_lookup(env)?;
    let backend = Backend::External(ExternalOptions {
        targets,
        admin,
        export,
    });
    let options = command_session(&args.session, source, scenario, backend, args.no_tracing)?;
    let outcome = crate::session::run(options, &signals).await?;
    outcome.print_lost_writes();
    if args.session.json {
        println!("{}", serde_json::to_string_pretty(&outcome.report)?);
    } else {
        print!("{}", outcome.report.render_text());
        println!("\n  run directory: {}", outcome.dir.display());
    }
    Ok(outcome.exit_code())
}

/// The session of a `run` or `load` command line: the arguments both share, the scenario they
/// name with its overrides applied (`source` is its text), and where the services run. The
/// root sampler comes from `OTEL_TRACES_SAMPLER`; the open-file limit is raised as far as it
/// goes.
pub(crate) fn command_session(
    args: &SessionArgs,
    source: String,
    scenario: Scenario,
    backend: Backend,
    no_tracing: bool,
) -> anyhow::Result<SessionOptions> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| RunDir::default_path(&scenario.name));
    Ok(SessionOptions {
        scenario,
        scenario_source: source,
        scenario_file: args.file.display().to_string(),
        out,
        progress: !args.no_progress,
        backend,
        sampler: HeadSamplerConfig::from_env()
            .context("OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG")?,
        no_tracing,
        request_timeout: args.timeout,
        settle_timeout: Duration::from_secs(15),
        fd_limit: Some(crate::fdlimit::raise()),
    })
}
