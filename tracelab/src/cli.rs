//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracelab_telemetry::OtlpProtocol;

/// A distributed-tracing lab: real services, real OTLP, on your laptop.
#[derive(Debug, Parser)]
#[command(name = "tracelab", version, about, long_about = None)]
pub struct Cli {
    /// More diagnostics on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// tracelab's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario end to end: services, load, embedded OTLP receiver, summary and run
    /// directory.
    Run(RunArgs),
    /// Validate scenario files; prints every problem with file:line:column and exits non-zero.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Serve one service of a scenario in this process (for compose and Kubernetes).
    Svc(SvcArgs),
    /// Drive a scenario's load into services running elsewhere (compose, Kubernetes); client
    /// spans go to OTEL_EXPORTER_OTLP_ENDPOINT. Writes requests.jsonl and report.json.
    Load(crate::load::LoadArgs),
    /// Analyse a run directory or a trace file (OTLP/JSON, Jaeger JSON, Zipkin v2 JSON):
    /// critical path, services ranked by their
    /// share of it, waterfalls, a self-contained report.html, and (--json, and analysis.json in
    /// a run directory) the same analysis for programs.
    Report(crate::report::ReportArgs),
    /// Replay a full-capture run through head and tail sampling strategies and score what each
    /// keeps against the ground truth: errors, slow requests, incident traces, span volume.
    Compare {
        /// A run directory (ground truth from requests.jsonl and incidents.jsonl), or a trace
        /// file in any format report reads (scored on what the traces themselves show).
        input: PathBuf,
        /// The strategies file (see sampling/strategies.example.yaml).
        #[arg(long)]
        strategies: PathBuf,
        /// What counts as slow: p99 (default), milliseconds, or a duration like 250ms.
        #[arg(long, value_parser = crate::compare::parse_slow)]
        slow: Option<tracelab_sampling::compare::SlowThreshold>,
        /// Where to write sampling.json (default: into the run directory, and nowhere for an OTLP
        /// file); `none` writes nothing.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What changed between two runs, per service and per operation: latency, critical-path
    /// share and error rate, and whether each service's own work changed beyond noise
    /// (Mann–Whitney U, Holm-corrected). Exits 1 when something changed.
    Diff(crate::diff::DiffArgs),
    /// Infer a scenario from traces (OTLP/JSON, Jaeger JSON or Zipkin v2 JSON): services,
    /// routes, calls, latency fits, error rates and load, as a commented file that passes
    /// check. Run it, change it, and compare with diff.
    Import(crate::import::ImportArgs),
    /// The course: lessons in order and which are done; with a lesson's name, its brief, a
    /// run of its scenario, and questions about that run.
    Learn(crate::learn::LearnArgs),
    /// A local web console over a run directory: search its traces (by id, service,
    /// operation, duration, errors, time) and open any of them as a waterfall.
    Serve(crate::console::ServeArgs),
    /// Print deployment files for a scenario: a docker compose file or Kubernetes manifests.
    #[command(subcommand)]
    Render(crate::render::RenderTarget),
}

/// OTLP transport names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    #[value(name = "http/protobuf", alias = "http")]
    HttpProtobuf,
}

impl From<ProtocolArg> for OtlpProtocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Grpc => OtlpProtocol::Grpc,
            ProtocolArg::HttpProtobuf => OtlpProtocol::HttpProtobuf,
        }
    }
}

/// What `run` and `load` share: they are the same load session with another backend.
#[derive(Debug, Args)]
pub struct SessionArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Seed and load overrides.
    #[command(flatten)]
    pub overrides: crate::check::Overrides,
    /// Run directory to write (default: runs/<scenario>-<UTC time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No live progress line.
    #[arg(long)]
    pub no_progress: bool,
    /// Client timeout of one request.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Print report.json to stdout instead of the terminal summary.
    #[arg(long)]
    pub json: bool,
}

/// `tracelab run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What every load session takes: the scenario, overrides, run directory, output.
    #[command(flatten)]
    pub session: SessionArgs,
    /// How the services export to the embedded receiver [default: http/protobuf, the OTLP
    /// exporters' recommended default; in the lab it costs less CPU per span than gRPC's
    /// HTTP/2 framing]. Also the default for `--forward` URLs without a path (gRPC when this is
    /// not given).
    #[arg(long, value_enum, env = "OTEL_EXPORTER_OTLP_PROTOCOL")]
    pub otlp_protocol: Option<ProtocolArg>,
    /// Address of the embedded receiver's OTLP/gRPC listener (port 0 picks a free port).
    /// Default 127.0.0.1:4317, or a free port when that is taken (say, by a local Collector).
    #[arg(long)]
    pub otlp_grpc: Option<SocketAddr>,
    /// Address of the embedded receiver's OTLP/HTTP listener (port 0 picks a free port).
    /// Default 127.0.0.1:4318, or a free port when that is taken.
    #[arg(long)]
    pub otlp_http: Option<SocketAddr>,
    /// Also send a copy of every span to this OTLP endpoint (repeatable), e.g. a Collector:
    /// http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318/v1/traces (HTTP). The
    /// completeness check stays on the embedded copy.
    #[arg(long, value_name = "URL")]
    pub forward: Vec<String>,
    /// After the run, compare these sampling strategies on its full capture (writes
    /// sampling.json and adds the comparison to report.html).
    #[arg(long, value_name = "FILE")]
    pub strategies: Option<PathBuf>,
    /// Serve the live console while the run goes: figures per service and entry every second,
    /// latency over time with incident windows, fault controls, trace search and waterfalls.
    /// Default address 127.0.0.1 on a free port, printed at start.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    pub ui: Option<SocketAddr>,
    /// Keep serving the console this long after the run has ended (Ctrl-C stops it sooner).
    #[arg(long, value_parser = parse_duration, default_value = "0s", value_name = "DURATION")]
    pub ui_linger: Duration,
    /// Allow --ui on an address other than loopback: anyone who can reach it can read the run
    /// and switch faults on.
    #[arg(long, requires = "ui")]
    pub ui_public: bool,
}

/// `tracelab svc`.
#[derive(Debug, Args)]
pub struct SvcArgs {
    /// The scenario file.
    pub file: PathBuf,
    /// Which service of the scenario to serve.
    #[arg(long, env = "TRACELAB_SERVICE")]
    pub service: String,
    /// Address to listen on.
    #[arg(long, env = "TRACELAB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the admin (fault) API, never the traffic port. Loopback by default, so
    /// only this host can switch faults on; a container sets 0.0.0.0:9091 to expose it.
    #[arg(long, env = "TRACELAB_ADMIN_LISTEN", default_value = "127.0.0.1:9091")]
    pub admin_listen: SocketAddr,
    /// Which instance of the service this process is (0 to replicas - 1): that instance's
    /// `instances:` overrides (version, latency, errors) apply, and its admin API takes the
    /// faults aimed at it. Without it the service runs as written.
    #[arg(long, env = "TRACELAB_INSTANCE")]
    pub instance: Option<u32>,
    /// Where a peer service listens: NAME=http://HOST:PORT (repeatable; a name given again
    /// adds an instance, balanced by that service's policy). Peers not given here are read
    /// from TRACELAB_PEER_<NAME> (upper case, `-` as `_`).
    #[arg(long = "peer", value_name = "NAME=URL")]
    pub peers: Vec<String>,
    /// OTLP endpoint (default: OTEL_EXPORTER_OTLP_ENDPOINT; without one, spans are not exported).
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport (default: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc).
    #[arg(long, value_enum)]
    pub otlp_protocol: Option<ProtocolArg>,
}

/// Parses every duration of the command line as a scenario file writes one (`30s`, `1.5s`,
/// `1m 30s`, `250ms`), or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("{s:?} is not a positive number of seconds"));
    }
    tracelab_scenario::parse_duration(s)
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { files } => {
            let failed = crate::check::check_files(&files);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Run(args) => on_lab_workers(crate::run::run_command(args)),
        Command::Svc(args) => on_workers(crate::svc::svc_command(args)),
        Command::Load(args) => on_workers(crate::load::load_command(args)),
        Command::Report(args) => crate::report::report_command(&args),
        Command::Compare {
            input,
            strategies,
            slow,
            out,
            json,
        } => crate::compare::compare_command(&input, &strategies, slow, out, json),
        Command::Diff(args) => crate::diff::diff_command(&args),
        Command::Import(args) => crate::import::import_command(&args),
        Command::Learn(args) => crate::learn::learn_command(&args),
        Command::Serve(args) => on_workers(crate::console::serve_command(args)),
        Command::Render(target) => {
            print!("{}", crate::render::render(&target)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a command's future as a task on the runtime's workers rather than on the main thread
/// that `block_on` would poll it on. The load generator's collector lives in that future: on
/// the main thread, every batch of samples a worker hands over woke a second thread (a
/// futex wake and a context switch per batch, several per cent of a pinned client's core);
/// on a worker it runs beside the requests it collects.
fn on_workers(
    command: impl std::future::Future<Output = anyhow::Result<ExitCode>> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    run_on(runtime()?, command)
}

/// [`on_workers`] for a lab session: a core is left to its span pipeline
/// ([`crate::session::lab_runtime`]).
fn on_lab_workers(
    command: impl std::future::Future<Output = anyhow::Result<ExitCode>> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    run_on(crate::session::lab_runtime()?, command)
}

fn run_on(
    runtime: tokio::runtime::Runtime,
    command: impl std::future::Future<Output = anyhow::Result<ExitCode>> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    runtime.block_on(async move {
        match tokio::spawn(command).await {
            Ok(result) => result,
            Err(failure) if failure.is_panic() => std::panic::resume_unwind(failure.into_panic()),
            Err(failure) => Err(anyhow::anyhow!("the command was cancelled: {failure}")),
        }
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        // Read like a scenario file's durations.
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.5ms").unwrap(), Duration::from_micros(500));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
