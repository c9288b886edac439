//! OpenTelemetry plumbing shared by the simulated services and the load generator.
//!
//! Every simulated service gets its own tracer provider with its own `service.name` resource
//! (one process can host a whole scenario, so one global provider would be wrong), exporting over
//! OTLP/gRPC or OTLP/HTTP through a bounded batch queue. A full queue drops spans rather than
//! blocking the service, and every drop is counted: completeness is what the lab measures, so a
//! silent drop would be a lie in the report.
//!
//! Layout:
//! - [`export`]: where and how spans are sent (`ExportConfig`, read from flags or the standard
//!   `OTEL_EXPORTER_OTLP_*` variables).
//! - [`coalesce`]: hands ended spans to the batch processor in bursts, so its task wakes once a
//!   burst instead of once a span.
//! - [`counting`]: the exporter and processor wrappers that count ended, exported and failed spans.
//! - [`provider`]: `ServiceTelemetry`, one tracer provider per service identity.
//! - `otlp_http` and `wire`: the OTLP/HTTP exporter, which encodes the SDK's spans straight
//!   into protobuf (gRPC export is opentelemetry-otlp's).

pub mod coalesce;
pub mod counting;
pub mod export;
mod otlp_http;
pub mod provider;
mod wire;

pub use counting::{ExportCounters, ExportStats};
pub use export::{BatchSettings, ExportConfig, OtlpProtocol};
pub use provider::{ServiceIdentity, ServiceTelemetry};

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` (or the flag) names a protocol we do not speak.
    #[error(
        "unsupported OTLP protocol {0:?}: use `grpc` or `http/protobuf` (OTEL_EXPORTER_OTLP_PROTOCOL)"
    )]
    UnsupportedProtocol(String),
    /// The endpoint is not an absolute http(s) URL.
    #[error("invalid OTLP endpoint {0:?}: expected a URL such as http://127.0.0.1:4317")]
    InvalidEndpoint(String),
    /// A batch processor variable (`OTEL_BSP_*`) that is not a positive whole number.
    #[error("{variable}={value:?} is not {expected}: unset it or give e.g. {variable}={example}")]
    InvalidSetting {
        /// The variable.
        variable: &'static str,
        /// What it was set to.
        value: String,
        /// What it takes.
        expected: &'static str,
        /// A value it takes.
        example: &'static str,
    },
    /// The OTLP exporter could not be built.
    #[error("could not build the OTLP exporter: {0}")]
    Exporter(String),
}
