//! `tracelab render compose|k8s FILE`: deployment files for a scenario, on stdout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tracelab_deploy::{ComposeOptions, HeadSampling, K8sOptions, scenario_path_in_image};

/// What to render.
#[derive(Debug, Subcommand)]
pub enum RenderTarget {
    /// A docker compose file: the backend stack plus one service per scenario service and the
    /// load generator (`compose/docker-compose.yaml` is this, for the quickstart).
    Compose(ComposeArgs),
    /// Kubernetes manifests: Namespace, ConfigMap, a Deployment and Service per scenario service,
    /// the load generator as a Job.
    K8s(K8sArgs),
}

/// `tracelab render compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The scenario file (its path inside the image is /scenarios/<file name>).
    pub file: PathBuf,
    /// Image of the lab services and load generator.
    #[arg(long)]
    pub image: Option<String>,
    /// Do not add a `build:` section (use a pre-built image).
    #[arg(long)]
    pub no_build: bool,
    /// Mount this host file over the scenario inside the containers.
    #[arg(long, value_name = "HOST_PATH")]
    pub mount_scenario: Option<String>,
    /// How long the load generator runs (default 30m; `scenario` keeps the scenario's own).
    #[arg(long)]
    pub duration: Option<String>,
    /// Head-sampling ratio at the root of every trace (1 = keep all).
    #[arg(long, value_name = "RATIO")]
    pub head_sampling: Option<f64>,
    /// Do not publish the lab services' ports on the host.
    #[arg(long)]
    pub no_ports: bool,
}

/// `tracelab render k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// The scenario file (stored in a ConfigMap).
    pub file: PathBuf,
    /// Namespace for everything.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Image of the lab services and load generator.
    #[arg(long)]
    pub image: Option<String>,
    /// OTLP endpoint of the Collector (default http://otel-collector.<namespace>:4317).
    #[arg(long)]
    pub collector_endpoint: Option<String>,
    /// How long the load Job runs (default: the scenario's duration).
    #[arg(long, value_parser = crate::cli::parse_duration)]
    pub duration: Option<Duration>,
    /// Head-sampling ratio at the root of every trace (1 = keep all).
    #[arg(long, value_name = "RATIO")]
    pub head_sampling: Option<f64>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "scenario.yaml".to_string())
}

/// Renders the requested files to a string.
pub fn render(target: &RenderTarget) -> anyhow::Result<String> {
    match target {
        RenderTarget::Compose(args) => {
            let scenario = crate::check::load_scenario(&args.file)?;
            let mut options = ComposeOptions::default();
            if let Some(image) = &args.image {
                options.image = image.clone();
            }
            if args.no_build {
                options.build_context = None;
            }
            options.scenario_mount = args.mount_scenario.clone();
            match args.duration.as_deref() {
                Some("scenario") => options.load_duration = None,
                Some(d) => {
                    options.load_duration = Some(
                        crate::cli::parse_duration(d)
                            .map_err(|e| anyhow::anyhow!("--duration: {e}"))?,
                    )
                }
                None => {}
            }
            if let Some(r) = args.head_sampling {
                options.head_sampling = HeadSampling::from_ratio(r);
            }
            options.publish_lab_ports = !args.no_ports;
            Ok(tracelab_deploy::render_compose(
                &scenario,
                &scenario_path_in_image(&file_name(&args.file)),
                &options,
            ))
        }
        RenderTarget::K8s(args) => {
            let source = std::fs::read_to_string(&args.file)
                .with_context(|| format!("cannot read {}", args.file.display()))?;
            let scenario = crate::check::load_scenario(&args.file)?;
            let mut options = K8sOptions::default();
            if let Some(ns) = &args.namespace {
                options.namespace = ns.clone();
            }
            if let Some(image) = &args.image {
                options.image = image.clone();
            }
            options.collector_endpoint = args.collector_endpoint.clone();
            options.load_duration = args.duration;
            if let Some(r) = args.head_sampling {
                options.head_sampling = HeadSampling::from_ratio(r);
            }
            Ok(tracelab_deploy::render_k8s(&scenario, &source, &options))
        }
    }
}
