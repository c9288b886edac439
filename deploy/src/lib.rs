//! Renders a tracelab scenario as something that runs outside tracelab's own process: a docker
//! compose stack (lab services, load generator, OpenTelemetry Collector, Jaeger, Tempo,
//! Prometheus and Grafana) or Kubernetes manifests.
//!
//! Rendering is pure: a [`Scenario`](tracelab_scenario::Scenario) and options in, text out. The
//! `tracelab render compose|k8s` subcommands call [`render_compose`] and [`render_k8s`]; the
//! checked-in `compose/docker-compose.yaml` is `render_compose`'s output for
//! `scenarios/quickstart.yaml`, and a test keeps it that way.
//!
//! Layout:
//! - [`lab`]: how a scenario becomes `tracelab svc` / `tracelab load` processes (arguments,
//!   `TRACELAB_*` and `OTEL_*` environment), shared by both renderers.
//! - [`compose`]: the compose file, backends included.
//! - [`k8s`]: Namespace, ConfigMap, Deployments, Services and the load Job.
//! - [`yaml`]: the ordered YAML tree and block-style writer both renderers use.

pub mod compose;
pub mod k8s;
pub mod lab;
pub mod yaml;

pub use compose::{ComposeOptions, render_compose};
pub use k8s::{K8sOptions, render_k8s};
pub use lab::{HeadSampling, scenario_path_in_image};
