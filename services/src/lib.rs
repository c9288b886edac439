//! The simulated microservices.
//!
//! Each scenario service is a real axum HTTP server. A request to one of its routes becomes a
//! SERVER span; the route's latency is a timed wait; its steps run in order (downstream calls
//! through reqwest, each in its own CLIENT span, parallel groups, local work); injected errors
//! answer with the configured HTTP status and mark the span as failed. Faults injected by the
//! scenario are data on the normal response path, never Rust errors.
//!
//! Layout:
//! - [`app`]: `app(state) -> Router`, the HTTP surface of one service, apart from serving.
//! - [`handler`]: one request to a scenario route, from SERVER span to response.
//! - [`steps`]: running a route's steps (call, parallel, work).
//! - [`client`]: one downstream call in a CLIENT span, with context injection and timeout.
//! - [`conformance`]: the W3C trace-context test-harness endpoint.
//! - [`origin`]: the request origin header that makes every random draw reproducible.
//! - [`peers`]: where the other services live.
//! - [`host`]: serving one service (`tracelab svc`) or a whole scenario (`tracelab run`).
//! - [`semconv`]: the OpenTelemetry semantic-convention attribute names we emit.

pub mod app;
pub mod client;
pub mod conformance;
pub mod handler;
pub mod host;
pub mod origin;
pub mod peers;
pub mod semconv;
pub mod steps;

pub use app::{ServiceState, app};
pub use host::{HostError, HostOptions, HostedService, ServiceHost, serve_one};
pub use origin::Origin;
pub use peers::{PeerError, Peers};
