//! Serving services: one per process (`tracelab svc`) or a whole scenario in one process
//! (`tracelab run`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracelab_net::Limits;
use tracelab_sampling::head::HeadSamplerConfig;
use tracelab_scenario::Scenario;
use tracelab_telemetry::{ExportConfig, ExportStats, ServiceIdentity, ServiceTelemetry};

use crate::admin::{AdminState, admin_app};
use crate::app::{ServiceState, app};
use crate::faults::FaultTable;
use crate::listener::FaultyListener;
use crate::peers::Peers;

/// Why services could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A listener could not bind.
    #[error("could not listen on {addr} for service `{service}`: {source}")]
    Bind {
        /// Service name.
        service: String,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The service is not in the scenario.
    #[error("no service `{name}` in the scenario (services: {known})")]
    UnknownService {
        /// What was asked for.
        name: String,
        /// The scenario's services, comma-separated.
        known: String,
    },
    /// The instance asked for is not one of the service's.
    #[error("service `{name}` has no instance {instance}: it has {replicas} (0 to {last})", last = .replicas.saturating_sub(1))]
    UnknownInstance {
        /// The service.
        name: String,
        /// What was asked for.
        instance: u32,
        /// How many instances the scenario gives it.
        replicas: u32,
    },
    /// Telemetry could not be set up.
    #[error(transparent)]
    Telemetry(#[from] tracelab_telemetry::TelemetryError),
}

/// How to host the services.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Address the listeners bind to (each on its own free port).
    pub bind_ip: IpAddr,
    /// Where spans go; `None` creates spans without exporting them (tracing off).
    pub export: Option<ExportConfig>,
    /// Extra resource attributes for every service (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource_attributes: Vec<(String, String)>,
    /// Where `serve_one` serves the admin (fault) API; none when `None`. `ServiceHost`
    /// always serves it, on 127.0.0.1 with a free port per service.
    pub admin_listen: Option<SocketAddr>,
    /// Head sampler of every service; `None` is `parentbased_always_on`: services follow the
    /// decision of their caller, and the root (the load generator) decides.
    pub sampler: Option<HeadSamplerConfig>,
    /// What injected waits wait on. Precise by default; tokio's millisecond wheel only to show
    /// what it costs (the lab's fidelity tests compare the two).
    pub timer: tracelab_timer::Mode,
    /// The runtime the services' span exporters run on. `None`: the current one. A separate
    /// runtime keeps the exporters' batch encoding, milliseconds of CPU at a time, off the
    /// threads whose timing the lab is about.
    pub telemetry_runtime: Option<tokio::runtime::Handle>,
    /// Which instance of its service `serve_one` serves (`tracelab svc --instance`): that
    /// instance's overrides and version apply. `None` runs the service as written.
    /// `ServiceHost` starts every instance of every service and ignores it.
    pub instance: Option<u32>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            export: None,
            resource_attributes: Vec::new(),
            admin_listen: None,
            sampler: None,
            timer: tracelab_timer::Mode::Precise,
            telemetry_runtime: None,
            instance: None,
        }
    }
}

/// One instance of a service being served.
#[derive(Debug)]
pub struct HostedService {
    /// Its scenario name.
    pub name: String,
    /// Which instance of the service it is, from 0.
    pub instance: u32,
    /// Its `service.instance.id`.
    pub instance_id: String,
    /// The `service.version` it reports (its own, for a canary).
    pub version: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its tracer provider.
    pub telemetry: ServiceTelemetry,
    /// Where its admin (fault) API listens, on 127.0.0.1.
    pub admin_addr: SocketAddr,
    /// Its faults, for tests and tools in the same process.
    pub faults: Arc<FaultTable>,
    /// How far its injected waits overran what was drawn.
    pub timing: Arc<tracelab_timer::OverrunRecorder>,
}

/// All services of a scenario, every instance of each, served from this process.
#[derive(Debug)]
pub struct ServiceHost {
    services: Vec<HostedService>,
    peers: Peers,
    /// Cancelling it makes every server stop accepting and finish its in-flight requests.
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Who instance `instance` of `name` is: its version (its own, for a canary) and an
/// instance id that names the index; a process without an index gets a random id.
fn identity_for(scenario: &Scenario, name: &str, instance: Option<u32>) -> ServiceIdentity {
    let version = match (scenario.services.get(name), instance) {
        (Some(service), Some(index)) => service.version_of(index).to_owned(),
        (Some(service), None) => service.version.clone(),
        (None, _) => "0.0.0".to_string(),
    };
    match instance {
        Some(index) => ServiceIdentity::instance(name, version, index),
        None => ServiceIdentity::new(name, version),
    }
}

fn telemetry_for(
    identity: &ServiceIdentity,
    options: &HostOptions,
) -> Result<ServiceTelemetry, HostError> {
    let mut identity = identity.clone();
    identity.extra = options.resource_attributes.clone();
    let sampler = options
        .sampler
        .clone()
        .unwrap_or_else(follow_the_caller)
        .build();
    // The batch processor and the exporter's connections are spawned on the runtime current
    // while the provider is built.
    let _entered = options.telemetry_runtime.as_ref().map(|h| h.enter());
    Ok(match &options.export {
        Some(export) => ServiceTelemetry::new(&identity, export, sampler)?,
        None => ServiceTelemetry::without_export(&identity, sampler),
    })
}

/// Where instance `instance` of `name` listens.
struct Bound {
    name: String,
    instance: u32,
    listener: TcpListener,
    addr: SocketAddr,
}

impl ServiceHost {
    /// Binds one listener per instance of each scenario service on `options.bind_ip` (free
    /// ports), then serves them all. Every listener is bound before any server starts, so
    /// each knows every instance of its peers.
    pub async fn start(scenario: Arc<Scenario>, options: &HostOptions) -> Result<Self, HostError> {
        let mut bound = Vec::new();
        for (name, service) in &scenario.services {
            for instance in 0..service.replicas.max(1) {
                let addr = SocketAddr::new(options.bind_ip, 0);
                let listener = bind(name, addr).await?;
                let addr = local_addr(name, &listener, addr)?;
                bound.push(Bound {
                    name: name.clone(),
                    instance,
                    listener,
                    addr,
                });
            }
        }
        let mut peers = Peers::new();
        for b in &bound {
            // Bound addresses always form a valid URL.
            let _ = peers.add_instance(&b.name, &format!("http://{}", b.addr));
        }
        let shutdown = CancellationToken::new();
        let mut services = Vec::new();
        let mut tasks = Vec::new();
        for Bound {
            name,
            instance,
            listener,
            addr,
        } in bound
        {
            let identity = identity_for(&scenario, &name, Some(instance));
            let telemetry = telemetry_for(&identity, options)?;
            let mut state = ServiceState::new(
                name.clone(),
                scenario.clone(),
                telemetry.clone(),
                peers.clone(),
                addr,
            )
            .with_instance(Some(instance));
            state.timer = tracelab_timer::Timer::new(options.timer);
            let state = Arc::new(state);
            let admin_bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            let admin = bind(&name, admin_bind).await?;
            let admin_addr = local_addr(&name, &admin, admin_bind)?;
            tasks.push(tokio::spawn(serve_admin(
                admin,
                admin_state(&state),
                shutdown.clone(),
            )));
            let faults = state.faults.clone();
            let timing = state.timing.clone();
            tasks.push(tokio::spawn(serve(listener, state, shutdown.clone())));
            services.push(HostedService {
                name,
                instance,
                instance_id: identity.instance_id,
                version: identity.version,
                addr,
                telemetry,
                admin_addr,
                faults,
                timing,
            });
        }
        Ok(ServiceHost {
            services,
            peers,
            shutdown,
            tasks,
        })
    }

    /// Where each instance of each service listens.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// The hosted instances, by service in scenario order, then by instance.
    pub fn services(&self) -> &[HostedService] {
        &self.services
    }

    /// How far the injected waits of every service overran their draws, together.
    pub fn timing(&self) -> tracelab_timer::Overrun {
        let mut all = tracelab_timer::nanos_histogram();
        for service in &self.services {
            let _ = all.add(service.timing.histogram());
        }
        tracelab_timer::summarize(&all)
    }

    /// Export counters of every service, summed.
    pub fn export_stats(&self) -> ExportStats {
        self.services.iter().map(|s| s.telemetry.stats()).sum()
    }

    /// Stops accepting, waits (at most `timeout`) for in-flight requests, then flushes every
    /// tracer provider. Returns each service's final export counters.
    pub async fn shutdown(self, timeout: Duration) -> Vec<(String, ExportStats)> {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(timeout, futures::future::join_all(self.tasks)).await;
        let flushes = self
            .services
            .iter()
            .map(|s| async { (s.name.clone(), s.telemetry.shutdown(timeout).await) });
        futures::future::join_all(flushes).await
    }
}

async fn serve(listener: TcpListener, state: Arc<ServiceState>, shutdown: CancellationToken) {
    let listener = FaultyListener::new(listener, state.faults.clone());
    tracelab_net::serve(listener, app(state), Limits::default(), shutdown).await;
}

async fn serve_admin(listener: TcpListener, state: AdminState, shutdown: CancellationToken) {
    tracelab_net::serve(listener, admin_app(state), Limits::default(), shutdown).await;
}

fn admin_state(state: &ServiceState) -> AdminState {
    AdminState {
        service: state.name.clone(),
        instance: state.instance,
        scenario: state.scenario.clone(),
        faults: state.faults.clone(),
        timing: state.timing.clone(),
    }
}

async fn bind(service: &str, addr: SocketAddr) -> Result<TcpListener, HostError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HostError::Bind {
            service: service.to_string(),
            addr,
            source,
        })
}

fn local_addr(
    service: &str,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<SocketAddr, HostError> {
    listener.local_addr().map_err(|source| HostError::Bind {
        service: service.to_string(),
        addr,
        source,
    })
}

/// Serves one service of `scenario` on `listen` until `shutdown` is cancelled (the
/// `tracelab svc` mode), as instance `options.instance` when set. `peers` must hold every
/// service it calls (several addresses of one are balanced by its policy). The admin API is
/// served on `options.admin_listen` when set.
pub async fn serve_one(
    scenario: Arc<Scenario>,
    name: &str,
    listen: SocketAddr,
    peers: Peers,
    options: &HostOptions,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<ExportStats, HostError> {
    let Some(service) = scenario.services.get(name) else {
        return Err(HostError::UnknownService {
            name: name.to_string(),
            known: scenario
                .services
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    if let Some(instance) = options.instance
        && instance >= service.replicas.max(1)
    {
        return Err(HostError::UnknownInstance {
            name: name.to_string(),
            instance,
            replicas: service.replicas.max(1),
        });
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| HostError::Bind {
            service: name.to_string(),
            addr: listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| HostError::Bind {
        service: name.to_string(),
        addr: listen,
        source,
    })?;
    let identity = identity_for(&scenario, name, options.instance);
    let telemetry = telemetry_for(&identity, options)?;
    let state = Arc::new(
        ServiceState::new(name, scenario.clone(), telemetry.clone(), peers, addr)
            .with_instance(options.instance),
    );
    let admin = match options.admin_listen {
        Some(admin_listen) => Some(bind(name, admin_listen).await?),
        None => None,
    };
    if let Some(admin) = admin {
        if let Ok(admin_addr) = admin.local_addr() {
            tracing::info!(service = %name, %admin_addr, "admin (fault) API listening");
        }
        tokio::spawn(serve_admin(admin, admin_state(&state), shutdown.clone()));
    }
    on_ready(addr);
    serve(listener, state, shutdown).await;
    Ok(telemetry.shutdown(Duration::from_secs(10)).await)
}

/// The services `name` calls, directly, in scenario order without duplicates.
pub fn callees(scenario: &Scenario, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(service) = scenario.services.get(name) {
        for route in service.routes.values() {
            for step in &route.steps {
                for call in step.calls() {
                    if !out.contains(&call.service) {
                        out.push(call.service.clone());
                    }
                }
            }
        }
    }
    out
}

/// `parentbased_always_on`: a service keeps what its caller kept, and keeps traces it starts.
fn follow_the_caller() -> HeadSamplerConfig {
    HeadSamplerConfig {
        parent_based: true,
        root: tracelab_sampling::head::RootSampler::AlwaysOn,
        precision: 4,
    }
}
