//! `tracelab load`: drive a scenario's load into services that run elsewhere (compose,
//! Kubernetes). tracelab is still the root of every trace; its CLIENT spans go to the OTLP
//! endpoint of the environment (`OTEL_EXPORTER_OTLP_*`), the services' spans go wherever the
//! services send them, so the run directory holds requests and the report but no spans.
//!
//! Also here: the load-shape flags `run` and `load` share, and the terminal lines for the
//! load statistics.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use opentelemetry_sdk::trace::Sampler;
use tokio_util::sync::CancellationToken;
use tracelab_loadgen::{LoadOptions, LoadPlan, LoadSummary};
use tracelab_scenario::{ArrivalModel, LatencyModel, Load, Scenario};
use tracelab_telemetry::{ExportConfig, ServiceIdentity, ServiceTelemetry};

use crate::cli::parse_duration;
use crate::progress::Progress;
use crate::rundir::{self, RunDir};
use crate::summary::{ExternalSpans, RunReport, ScenarioInfo, SummaryInput};

/// How the load is shaped, on `run` and `load` (each overrides the scenario).
#[derive(Debug, Clone, Default, Args)]
pub struct LoadShapeArgs {
    /// Arrival model: constant, poisson, ramp:FROM:TO, stages:DUR@RATE,..,
    /// steps:DUR@RATE,.., spike:HEIGHT@START+LENGTH.
    #[arg(long, value_parser = tracelab_loadgen::parse_arrival)]
    pub arrival: Option<ArrivalModel>,
    /// Closed loop with N virtual users instead of an arrival model. Without --think each user
    /// sends as soon as its previous answer arrives: the maximum-throughput mode.
    #[arg(long, conflicts_with = "arrival")]
    pub users: Option<u32>,
    /// Think time of a closed-loop user between an answer and its next request, e.g. 100ms.
    #[arg(long, value_parser = parse_duration, requires = "users")]
    pub think: Option<Duration>,
    /// Requests sent at once (connections); due requests beyond wait and start late.
    #[arg(long)]
    pub connections: Option<u32>,
    /// Cap on requests in flight (waiting included); beyond it requests are dropped by the
    /// client and recorded as dropped.
    #[arg(long)]
    pub max_in_flight: Option<u32>,
}

impl LoadShapeArgs {
    /// Applies the flags to the scenario's `load:` section.
    pub fn apply(&self, load: &mut Load) {
        if let Some(arrival) = &self.arrival {
            load.arrival = arrival.clone();
            load.users = None;
            load.think = None;
            if let Some(stages) = arrival.stages() {
                load.duration = stages.iter().map(|s| s.duration).sum();
            }
        }
        if let Some(users) = self.users {
            load.users = Some(users);
            load.arrival = ArrivalModel::Constant;
            load.think = None;
        }
        if let Some(think) = self.think {
            load.think = Some(LatencyModel::Constant {
                ms: think.as_secs_f64() * 1000.0,
            });
        }
        if let Some(c) = self.connections {
            load.connections = Some(c);
        }
        if let Some(m) = self.max_in_flight {
            load.max_in_flight = Some(m);
        }
    }
}

/// `tracelab load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The scenario file (its `load:` section and entry routes are used).
    pub file: PathBuf,
    /// Where an entry service listens: NAME=http://HOST:PORT (repeatable). Services not given
    /// here are read from TRACELAB_TARGET_<NAME> (upper case, `-` as `_`).
    #[arg(long = "target", value_name = "NAME=URL")]
    pub targets: Vec<String>,
    /// Seed and load overrides.
    #[command(flatten)]
    pub overrides: crate::check::Overrides,
    /// Run directory to write (default: runs/<scenario>-<UTC time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
    /// No spans and no trace context at all: the load generator's own maximum-throughput
    /// measure.
    #[arg(long)]
    pub no_tracing: bool,
    /// Client timeout of one request.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Print report.json to stdout instead of the terminal summary.
    #[arg(long)]
    pub json: bool,
}

/// Everything [`run_load`] needs.
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
    /// The sampler's name and argument, as `OTEL_TRACES_SAMPLER` / `_ARG` write them.
    pub sampler: (String, Option<String>),
    /// No spans at all.
    pub no_tracing: bool,
    /// The run directory.
    pub out: PathBuf,
    /// Show the live progress line.
    pub progress: bool,
    /// Client timeout.
    pub request_timeout: Duration,
}

/// The SDK sampler named by `OTEL_TRACES_SAMPLER` (and its argument).
pub fn sampler_from_env(name: &str, arg: Option<&str>) -> anyhow::Result<Sampler> {
    let ratio = || -> anyhow::Result<f64> {
        let ratio = match arg {
            Some(a) => a
                .trim()
                .parse::<f64>()
                .with_context(|| format!("OTEL_TRACES_SAMPLER_ARG `{a}` is not a number"))?,
            None => 1.0,
        };
        anyhow::ensure!(
            (0.0..=1.0).contains(&ratio),
            "OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got {ratio}"
        );
        Ok(ratio)
    };
    Ok(match name.trim() {
        "" | "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio()?),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio()?)))
        }
        other => anyhow::bail!(
            "OTEL_TRACES_SAMPLER `{other}` is not supported: use always_on, always_off, \
             traceidratio, parentbased_always_on, parentbased_always_off or \
             parentbased_traceidratio"
        ),
    })
}

/// What a finished external load run produced.
#[derive(Debug)]
pub struct LoadOutcome {
    /// The summary (also in `report.json`).
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
    let dir = RunDir::create(&options.out)?;
    dir.write(rundir::SCENARIO_FILE, options.scenario_source.as_bytes())?;
    let scenario = &options.scenario;
    let plan = LoadPlan::from_scenario(scenario, |name| {
        options
            .targets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, url)| url.clone())
    })?;
    let sampler = sampler_from_env(&options.sampler.0, options.sampler.1.as_deref())?;
    let identity = ServiceIdentity::new("loadgen", env!("CARGO_PKG_VERSION"));
    let telemetry = match (&options.export, options.no_tracing) {
        (_, true) => None,
        (Some(export), false) => Some(ServiceTelemetry::new(&identity, export, sampler)?),
        (None, false) => {
            tracing::warn!(
                "no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): client spans are made, and \
                 context propagates, but they are not exported"
            );
            Some(ServiceTelemetry::without_export(&identity, sampler))
        }
    };

    let progress = Progress::new(plan.duration, !options.progress);
    let mut requests = dir.requests_writer()?;
    let load = tracelab_loadgen::run(
        &plan,
        telemetry.as_ref(),
        &LoadOptions {
            request_timeout: options.request_timeout,
            ..LoadOptions::default()
        },
        &mut requests,
        shutdown.clone(),
        &mut |s| progress.update(s),
    )
    .await
    .context("while sending load")?;
    progress.finish();
    let export = match &telemetry {
        Some(t) => t.shutdown(Duration::from_secs(15)).await,
        None => Default::default(),
    };

    let mut report = RunReport::build(SummaryInput {
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            file: options.scenario_file.clone(),
            seed: scenario.seed,
            rate: plan.mean_rate(),
            duration_s: plan.duration.as_secs_f64(),
            otlp_protocol: options
                .export
                .as_ref()
                .map(|e| e.protocol.as_str().to_string())
                .unwrap_or_default(),
        },
        load: &load,
        traces: &crate::summary::TraceTotals::default(),
        health: Default::default(),
        export,
        receiver: Default::default(),
    });
    report.external = Some(ExternalSpans {
        endpoint: options.export.as_ref().map(ExportConfig::export_url),
        sampler: if options.no_tracing {
            "none (tracing off)".to_string()
        } else {
            match &options.sampler.1 {
                Some(arg) => format!("{}:{arg}", options.sampler.0),
                None => options.sampler.0.clone(),
            }
        },
        targets: options.targets.iter().cloned().collect(),
        note: "the spans went to the external OTLP backend; this run directory holds no \
               spans.otlp.jsonl and the trace counts are not known here"
            .to_string(),
    });
    dir.write(
        rundir::REPORT_FILE,
        serde_json::to_vec_pretty(&report)?.as_slice(),
    )?;
    Ok(LoadOutcome {
        report,
        dir: options.out,
    })
}

/// Reads `--target` flags and completes them from `TRACELAB_TARGET_<SERVICE>`.
pub fn resolve_targets(
    scenario: &Scenario,
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut targets: Vec<(String, String)> = Vec::new();
    for flag in flags {
        let (name, url) = flag
            .split_once('=')
            .with_context(|| format!("--target `{flag}`: write NAME=http://HOST:PORT"))?;
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "--target `{flag}`: the URL must start with http:// or https://"
        );
        targets.push((name.to_string(), url.trim_end_matches('/').to_string()));
    }
    for entry in &scenario.load.entries {
        if targets.iter().any(|(n, _)| *n == entry.service) {
            continue;
        }
        let var = format!(
            "TRACELAB_TARGET_{}",
            entry.service.to_ascii_uppercase().replace('-', "_")
        );
        if let Some(url) = env(&var).filter(|u| !u.is_empty()) {
            targets.push((entry.service.clone(), url.trim_end_matches('/').to_string()));
        }
    }
    Ok(targets)
}

/// The `tracelab load` command.
pub async fn load_command(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let (source, scenario) = crate::check::read_scenario_with(&args.file, &args.overrides)?;
    let env = |k: &str| std::env::var(k).ok();
    let targets = resolve_targets(&scenario, &args.targets, env)?;
    let export = ExportConfig::from_lookup(env)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| RunDir::default_path(&scenario.name));
    let options = LoadRunOptions {
        scenario,
        scenario_source: source,
        scenario_file: args.file.display().to_string(),
        targets,
        export,
        sampler: (
            env("OTEL_TRACES_SAMPLER").unwrap_or_else(|| "parentbased_always_on".to_string()),
            env("OTEL_TRACES_SAMPLER_ARG"),
        ),
        no_tracing: args.no_tracing,
        out,
        progress: !args.no_progress,
        request_timeout: args.timeout,
    };
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        crate::svc::stop_on_signal(on_signal.clone()).await;
        eprintln!("\ninterrupted: stopping the load, waiting for requests in flight…");
    });
    let outcome = run_load(options, shutdown).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.report)?);
    } else {
        print!("{}", outcome.report.render_text());
        println!("\n  run directory: {}", outcome.dir.display());
    }
    Ok(if outcome.report.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

/// The load generator's lines of the terminal summary: how the load was driven, drops and
/// late starts, the tail percentiles, and the per-entry and per-status tables.
pub fn render_load_stats(load: &LoadSummary, out: &mut String) {
    let _ = writeln!(out, "  driver      {}", load.driver);
    let l = &load.latency_ms;
    let _ = writeln!(
        out,
        "  tail        p99.9 {:.1} ms   p99.99 {:.1} ms",
        l.p999, l.p9999
    );
    let _ = writeln!(
        out,
        "  client      {} dropped (in-flight cap), {} started late (max {:.1} ms late)",
        load.dropped, load.late_starts, load.late_by_ms.max
    );
    let mut table =
        |title: &str, rows: &std::collections::BTreeMap<String, tracelab_loadgen::GroupSummary>| {
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
