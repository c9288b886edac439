//! `tracelab svc`: one scenario service per process, for compose and Kubernetes.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tracelab_services::{HostOptions, Peers, serve_one};
use tracelab_telemetry::{ExportConfig, OtlpProtocol};

use crate::cli::SvcArgs;

/// Serves the service until Ctrl-C or SIGTERM, then flushes its spans.
pub async fn svc_command(args: SvcArgs) -> anyhow::Result<ExitCode> {
    let scenario = Arc::new(crate::check::load_scenario(&args.file)?);
    let mut peers = Peers::new();
    for flag in &args.peers {
        peers.insert_flag(flag)?;
    }
    peers
        .complete_from(
            tracelab_services::host::callees(&scenario, &args.service),
            |k| std::env::var(k).ok(),
        )
        .with_context(|| format!("service `{}` cannot reach its peers", args.service))?;

    let env = |k: &str| std::env::var(k).ok();
    let mut export = ExportConfig::from_lookup(env)?;
    if let Some(endpoint) = &args.otlp_endpoint {
        let protocol = export
            .as_ref()
            .map(|e| e.protocol)
            .unwrap_or(OtlpProtocol::Grpc);
        export = Some(ExportConfig {
            batch: tracelab_telemetry::BatchSettings::from_lookup(env)?,
            ..ExportConfig::new(endpoint.clone(), protocol)
        });
    }
    if let (Some(p), Some(e)) = (args.otlp_protocol, export.as_mut()) {
        e.protocol = p.into();
    }
    if let Some(e) = &export {
        e.validate()?;
    } else {
        tracing::warn!(
            "no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or --otlp-endpoint): spans are created but not exported"
        );
    }
    let options = HostOptions {
        bind_ip: args.listen.ip(),
        export,
        resource_attributes: std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .map(|s| tracelab_telemetry::provider::parse_resource_attributes(&s))
            .unwrap_or_default(),
        admin_listen: Some(args.admin_listen),
        sampler: Some(
            tracelab_sampling::head::HeadSamplerConfig::from_env()
                .context("OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG")?,
        ),
        timer: tracelab_timer::Mode::Precise,
        telemetry_runtime: None,
        instance: args.instance,
    };
    let signals = crate::signals::Signals::install(
        "stopping: finishing requests in flight and flushing spans",
    );
    let shutdown = signals.token();
    let name = args.service.clone();
    let stats = serve_one(
        scenario,
        &args.service,
        args.listen,
        peers,
        &options,
        shutdown,
        |addr| eprintln!("tracelab svc: `{name}` listening on http://{addr}"),
    )
    .await?;
    eprintln!(
        "tracelab svc: stopped; spans exported {}, lost {}",
        stats.exported,
        stats.lost()
    );
    Ok(ExitCode::SUCCESS)
}
