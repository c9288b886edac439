//! OTLP/gRPC: the `opentelemetry.proto.collector.trace.v1.TraceService/Export` method.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::CompressionEncoding;

use crate::store::TraceStore;

/// The gRPC trace service, storing into one [`TraceStore`].
pub(crate) struct GrpcTraceService {
    store: Arc<TraceStore>,
}

/// The tonic service with its limits set: tonic's own 4 MiB decode limit would refuse the
/// large batches a load test produces, so it is raised to `max_body_bytes` explicitly.
pub(crate) fn service(
    store: Arc<TraceStore>,
    max_body_bytes: usize,
) -> TraceServiceServer<GrpcTraceService> {
    TraceServiceServer::new(GrpcTraceService { store })
        .max_decoding_message_size(max_body_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
}

#[tonic::async_trait]
impl TraceService for GrpcTraceService {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        // A body tonic cannot decode never reaches this method: tonic answers it with an error
        // status itself, so such requests are not in the store's rejection counters.
        let request = request.into_inner();
        let encoded_len = request.encoded_len();
        let partial_success = self.store.ingest_request(request, encoded_len);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}
