//! The HTTP surface of one service, apart from serving it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry::Context;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use tracelab_propagation::{HeaderExtractor, HeaderInjector, LineInjector};
use tracelab_scenario::balance::Balancer;
use tracelab_scenario::{Instance, Scenario};
use tracelab_telemetry::ServiceTelemetry;

use crate::faults::FaultTable;
use crate::peers::Peers;
use crate::pool::{Locks, WorkerPool};
use crate::span_values::SpanValues;

/// Path of the W3C trace-context test-harness endpoint.
pub const CONFORMANCE_PATH: &str = "/conformance/trace-context";
/// Liveness path (for compose and Kubernetes probes).
pub const HEALTH_PATH: &str = "/healthz";

/// The most idle connections a service keeps to one peer instance.
const MAX_IDLE_PER_PEER: usize = 256;

/// Everything a service needs to answer requests.
#[derive(Debug)]
pub struct ServiceState {
    /// The service's name in the scenario.
    pub name: String,
    /// The whole scenario (routes of this service, and for validation of calls, the others).
    pub scenario: Arc<Scenario>,
    /// This service's tracer provider.
    pub telemetry: ServiceTelemetry,
    /// Where the other services listen.
    pub peers: Peers,
    /// Connections for downstream calls and queue deliveries, by address. One pool per
    /// service (per instance), as separate processes would have.
    pub calls: Arc<tracelab_net::client::Pool>,
    /// The HTTP client of the conformance endpoint's callbacks, which carry a body.
    pub client: reqwest::Client,
    /// W3C trace context and baggage, with the lab's own strict parsers.
    pub propagator: TextMapCompositePropagator,
    /// Address and port this service listens on (for `server.address`/`server.port`).
    pub listen_host: String,
    /// Port this service listens on.
    pub listen_port: u16,
    /// The faults switched on through the admin API, read by every request.
    pub faults: Arc<FaultTable>,
    /// The worker pool behind the service's concurrency limit (and `saturate` faults).
    pub workers: WorkerPool,
    /// The named locks of `lock:` steps.
    pub locks: Locks,
    /// Attribute values every request repeats, built once (see [`crate::span_values`]).
    pub span_values: SpanValues,
    /// How far this service's injected waits overran what was drawn (see [`crate::wait`]).
    pub timing: Arc<tracelab_timer::OverrunRecorder>,
    /// What injected waits wait on: the precise timer, unless a comparison asks for tokio's.
    pub timer: tracelab_timer::Timer,
    /// Which instance of the service this server is; `None` for a process started without
    /// one (`tracelab svc` without `--instance`), which runs the service as written.
    pub instance: Option<u32>,
    /// How this instance differs from its siblings (the scenario's `instances:` entry).
    pub overrides: Option<Instance>,
    /// How this server spreads its calls over the instances of each service it calls, by
    /// called service. Each server keeps its own, as each process of a real system would.
    pub balancers: HashMap<String, Balancer>,
}

impl ServiceState {
    /// State for `name`, with a fresh HTTP client and the lab's propagators.
    pub fn new(
        name: impl Into<String>,
        scenario: Arc<Scenario>,
        telemetry: ServiceTelemetry,
        peers: Peers,
        listen: std::net::SocketAddr,
    ) -> Self {
        let name = name.into();
        let listen_host = listen.ip().to_string();
        let span_values = SpanValues::new(&scenario, &name, &peers, &listen_host);
        let balancers = peers
            .iter()
            .map(|(callee, urls)| {
                let policy = scenario
                    .services
                    .get(callee)
                    .map(|s| s.balance.clone())
                    .unwrap_or_default();
                let balancer = Balancer::new(policy, scenario.seed, callee, urls.len());
                (callee.to_owned(), balancer)
            })
            .collect();
        ServiceState {
            name,
            scenario,
            telemetry,
            peers,
            calls: Arc::new(tracelab_net::client::Pool::new(MAX_IDLE_PER_PEER)),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(4)
                .build()
                .unwrap_or_default(),
            propagator: lab_propagator(),
            listen_host,
            listen_port: listen.port(),
            faults: Arc::new(FaultTable::new()),
            workers: WorkerPool::new(),
            locks: Locks::default(),
            span_values,
            timing: Arc::default(),
            timer: tracelab_timer::Timer::default(),
            instance: None,
            overrides: None,
            balancers,
        }
    }

    /// This state as instance `index` of its service, with that instance's overrides.
    pub fn with_instance(mut self, index: Option<u32>) -> Self {
        self.instance = index;
        self.overrides = index.and_then(|index| {
            self.scenario
                .services
                .get(&self.name)
                .and_then(|s| s.instance(index))
                .cloned()
        });
        self
    }

    /// The service's own concurrency limit from the scenario, if any.
    pub fn service_concurrency(&self) -> Option<u32> {
        self.scenario
            .services
            .get(&self.name)
            .and_then(|s| s.concurrency)
    }

    /// The context a request carries (trace context and baggage).
    pub fn extract(&self, headers: &HeaderMap) -> Context {
        // From an empty context, not the current one: an invalid traceparent must start a new
        // trace, never fall back to whatever span happens to be active on this thread.
        self.propagator
            .extract_with_context(&Context::new(), &HeaderExtractor(headers))
    }

    /// Writes `cx` into outgoing headers.
    pub fn inject(&self, cx: &Context, headers: &mut HeaderMap) {
        self.propagator
            .inject_context(cx, &mut HeaderInjector(headers))
    }

    /// Writes `cx` as the header lines of an outgoing request head.
    pub fn inject_lines(&self, cx: &Context, lines: &mut LineInjector<'_>) {
        self.propagator.inject_context(cx, lines)
    }
}

/// W3C Trace Context (Level 2) and W3C Baggage.
pub fn lab_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(tracelab_propagation::W3cTraceContextPropagator::default()),
        Box::new(tracelab_propagation::W3cBaggagePropagator::default()),
    ])
}

/// The router of one service: its scenario routes, the conformance endpoint and `/healthz`.
///
/// Scenario routes are dispatched from a fallback handler by exact path rather than registered
/// one by one: the scenario's paths are data, and registering data as axum routes would turn an
/// odd path (a `{` or a `*`) into a panic at start-up.
pub fn app(state: Arc<ServiceState>) -> Router {
    let service = state.scenario.services.get(&state.name);
    let has = |path: &str| service.is_some_and(|s| s.routes.contains_key(path));
    let mut router = Router::new();
    if !has(CONFORMANCE_PATH) {
        router = router.route(CONFORMANCE_PATH, post(crate::conformance::handle));
    }
    if !has(HEALTH_PATH) {
        router = router.route(HEALTH_PATH, get(|| async { "ok\n" }));
    }
    router.fallback(dispatch).with_state(state)
}

async fn dispatch(State(state): State<Arc<ServiceState>>, request: Request) -> Response {
    // The request taken apart rather than through the `Method`, `Uri` and `HeaderMap`
    // extractors, which clone what they extract: a copy of every header on every hop.
    let (mut parts, body) = request.into_parts();
    let (method, uri, headers) = (
        std::mem::take(&mut parts.method),
        std::mem::take(&mut parts.uri),
        std::mem::take(&mut parts.headers),
    );
    // Read to the end (within the body limit) as the `Bytes` extractor reads it, so the
    // connection can carry the next request; a body it refuses is answered as it answers.
    if let Err(rejection) = Bytes::from_request(Request::from_parts(parts, body), &()).await {
        return rejection.into_response();
    }
    let path = uri.path();
    let Some(route) = state
        .scenario
        .services
        .get(&state.name)
        .and_then(|s| s.routes.get(path))
    else {
        return (
            StatusCode::NOT_FOUND,
            format!("service `{}` has no route {path}\n", state.name),
        )
            .into_response();
    };
    if !route.method.eq_ignore_ascii_case(method.as_str()) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(axum::http::header::ALLOW, route.method.clone())],
            format!("{path} accepts {}\n", route.method),
        )
            .into_response();
    }
    crate::handler::handle(&state, path, route, &headers).await
}
