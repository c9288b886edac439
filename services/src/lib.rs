//! The simulated microservices.
//!
//! Each scenario service is a real axum HTTP server. A request to one of its routes becomes a
//! SERVER span; the route's latency is a precisely timed wait; its steps run in order
//! (downstream calls through the lab's HTTP/1.1 client, `tracelab_net::client`, each in its own
//! CLIENT span; parallel groups; local work); injected errors answer with the configured HTTP
//! status and mark the span as failed. Faults injected by the scenario are data on the normal
//! response path, never Rust errors.
//!
//! Layout:
//! - [`app`]: `app(state) -> Router`, the HTTP surface of one service, apart from serving.
//! - [`admin`]: the runtime fault API, on its own listener.
//! - [`faults`]: the active faults of a service and what they do to a request.
//! - [`listener`]: the traffic listener that a `down` fault takes down.
//! - [`pool`]: the worker pool (concurrency limit) and the named locks of a service.
//! - [`handler`]: one request to a scenario route, from SERVER span to response.
//! - [`steps`]: running a route's steps (call, parallel, work, db, cache, publish).
//! - [`queue`]: the simulated queue between a PRODUCER and a later CONSUMER span.
//! - [`client`]: one downstream call in a CLIENT span, with context injection and timeout.
//! - [`conformance`]: the W3C trace-context test-harness endpoint.
//! - [`origin`]: the request origin header that makes every random draw reproducible.
//! - [`peers`]: where the other services live.
//! - [`host`]: serving one service (`tracelab svc`) or a whole scenario (`tracelab run`).
//! - [`semconv`]: the OpenTelemetry semantic-convention attribute names we emit.
//! - [`span_values`]: the attribute values every request repeats, built once per service.
//! - [`wait`]: injected waits, on the precise timer, with their overrun recorded.

pub mod admin;
pub mod app;
pub mod client;
pub mod conformance;
pub mod faults;
pub mod handler;
pub mod host;
pub mod listener;
pub mod origin;
pub mod peers;
pub mod pool;
pub mod queue;
pub mod semconv;
pub mod span_values;
pub mod steps;
pub mod wait;

/// Locks `mutex`, carrying on after a panic elsewhere: every state the services keep behind a
/// lock (fault lists, pool counters) is whole at every step, so a poisoned lock is still valid.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub use app::{ServiceState, app};
pub use host::{HostError, HostOptions, HostedService, ServiceHost, serve_one};
pub use origin::Origin;
pub use peers::{PeerError, Peers};
