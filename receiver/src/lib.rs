//! The embedded OTLP receiver and the trace store.
//!
//! tracelab's simulated services export their spans over OTLP to this receiver, which decodes
//! them into the `tracelab-trace` model, keeps them in a [`TraceStore`] and appends every
//! accepted request to the run directory through a [`SpanSink`]. This is the only crate that
//! knows the OTLP wire types (`opentelemetry-proto`); everything downstream reads
//! `tracelab_trace::Span`.
//!
//! Layout:
//! - [`receiver`]: [`Receiver`] starts and stops the two servers; [`ReceiverConfig`].
//! - `grpc`: the OTLP/gRPC `TraceService`.
//! - [`http`]: the OTLP/HTTP `POST /v1/traces` router (protobuf and JSON, optional gzip).
//! - [`store`]: [`TraceStore`], its counters ([`ReceiverStats`]) and [`Completeness`].
//! - `assembly`: the store's streaming mode, finished traces handed to a consumer
//!   ([`AssemblyOptions`]).
//! - [`sink`]: [`SpanSink`], the OTLP/JSON lines file of a run.
//! - [`otlp_json`]: OTLP/JSON files in and out (run directories, Collector output, examples).
//! - [`trace_file`]: trace files in any format tracelab reads (OTLP/JSON, Jaeger JSON, Zipkin
//!   v2 JSON), detected from their content and read as streams.
//! - [`trace_index`]: [`TraceIndex`], where each trace's spans are in a run's span file, and
//!   trace search over it (the console's).
//! - `convert`: OTLP wire types to and from the model.
//! - `budget`: the bytes of export bodies decoded at once, and the retryable refusal beyond.
//! - [`forward`]: copies of every accepted request to other OTLP endpoints (`--forward`).

mod assembly;
mod budget;
mod convert;
pub mod forward;
mod grpc;
pub mod http;
pub mod otlp_json;
pub mod receiver;
pub mod sink;
pub mod store;
pub mod trace_file;
pub mod trace_index;

pub use assembly::{AssemblyOptions, DeliveredUpTo};
pub use budget::{DEFAULT_IN_FLIGHT_BYTES, RETRY_AFTER};
pub use forward::{ForwardProtocol, ForwardStats, ForwardTarget, Forwarder};
pub use http::router;
pub use otlp_json::DecodeError;
pub use receiver::{
    BoundReceiver, DEFAULT_MAX_BODY_BYTES, Receiver, ReceiverConfig, ReceiverError,
};
pub use sink::SpanSink;
pub use store::{Completeness, ReceiverStats, TraceStore};
pub use trace_file::{ReadSummary, TraceFileError, TraceFormat};
pub use trace_index::{
    IndexSummary, SearchResult, TraceHit, TraceIndex, TraceLocation, TraceQuery,
};
