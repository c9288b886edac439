//! OTLP/gRPC: the `opentelemetry.proto.collector.trace.v1.TraceService/Export` method.
//!
//! The service is written out here rather than taken from `opentelemetry-proto`'s generated
//! `TraceServiceServer`, whose fixed codec answers an undecodable body with `INTERNAL` and an
//! oversized one with `OUT_OF_RANGE`. OTLP asks for `INVALID_ARGUMENT` on a malformed request,
//! and `OUT_OF_RANGE` is on OTLP's list of retryable codes, so an SDK would resend a batch that
//! can never fit. Owning the codec also lets both refusals reach the store's counters and gives
//! the exact size of each accepted body.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use futures::StreamExt as _;
use http::HeaderValue;
use http_body::Frame;
use http_body_util::{BodyExt as _, BodyStream, StreamBody};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::{NamedService, UnaryService};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::budget::{Budget, RETRY_AFTER, reservation};
use crate::store::{Rejection, TraceStore};

const SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The gRPC trace service, storing into one [`TraceStore`].
#[derive(Clone)]
pub(crate) struct GrpcTraceService {
    store: Arc<TraceStore>,
    max_body_bytes: usize,
    /// Bytes of bodies being decoded at once; see [`crate::budget`].
    budget: Budget,
}

/// The service with its limits set: tonic's own 4 MiB decode limit would refuse the large
/// batches a load test produces, so it is set to `max_body_bytes` explicitly.
pub(crate) fn service(
    store: Arc<TraceStore>,
    max_body_bytes: usize,
    budget: Budget,
) -> GrpcTraceService {
    GrpcTraceService {
        store,
        max_body_bytes,
        budget,
    }
}

impl NamedService for GrpcTraceService {
    const NAME: &'static str = SERVICE;
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for GrpcTraceService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if request.uri().path() != EXPORT_PATH {
                return Ok(Status::unimplemented("only Export is served").into_http());
            }
            // The message's length is in the first five bytes of the body: reserve for it
            // before the rest is read, and refuse at once (retryably) when the budget is spent.
            let (request, declared, compressed) = peek_length(request).await;
            let reserve = reservation(declared.map(u64::from), compressed, this.max_body_bytes);
            let Some(_reserved) = this.budget.try_reserve(reserve) else {
                this.store.record_rejection(Rejection::Busy);
                let busy = Status::with_error_details(
                    Code::ResourceExhausted,
                    "the receiver is decoding as much as it may at once; retry shortly",
                    ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
                );
                return Ok(busy.into_http());
            };
            let codec = ExportCodec {
                store: Arc::clone(&this.store),
            };
            let mut grpc = tonic::server::Grpc::new(codec)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(this.max_body_bytes);
            let export = Export {
                store: Arc::clone(&this.store),
            };
            let mut response = grpc.unary(export, request).await;
            // tonic checks the size limit before the codec sees the body, and reports it as
            // OUT_OF_RANGE in the headers of a trailers-only response; Export itself never
            // returns that code.
            let status = response.headers().get("grpc-status");
            if status == Some(&HeaderValue::from(Code::OutOfRange as i32)) {
                this.store.record_rejection(Rejection::TooLarge);
                response.headers_mut().insert(
                    "grpc-status",
                    HeaderValue::from(Code::ResourceExhausted as i32),
                );
            }
            Ok(response)
        })
    }
}

/// Reads the first frames of a gRPC request body until the 5-byte message prefix (compression
/// flag and length) is in hand, and gives back the request with those bytes put back in front.
async fn peek_length(
    request: http::Request<tonic::body::Body>,
) -> (http::Request<tonic::body::Body>, Option<u32>, bool) {
    let (parts, mut body) = request.into_parts();
    let mut head = bytes::BytesMut::new();
    let mut trailers = None;
    while head.len() < 5 {
        match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => head.extend_from_slice(&data),
                Err(frame) => {
                    trailers = Some(frame);
                    break;
                }
            },
            Some(Err(_)) | None => break,
        }
    }
    let (declared, compressed) = if head.len() >= 5 {
        (
            Some(u32::from_be_bytes([head[1], head[2], head[3], head[4]])),
            head[0] == 1,
        )
    } else {
        (None, false)
    };
    let first = futures::stream::iter(
        std::iter::once(Ok::<_, tonic::Status>(Frame::data(head.freeze()))).chain(trailers.map(Ok)),
    );
    let rest = BodyStream::new(body);
    let body = tonic::body::Body::new(StreamBody::new(first.chain(rest)));
    (http::Request::from_parts(parts, body), declared, compressed)
}

/// A decoded request and the size of its encoded body.
struct Decoded {
    request: ExportTraceServiceRequest,
    encoded_len: usize,
}

struct Export {
    store: Arc<TraceStore>,
}

impl UnaryService<Decoded> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = Ready<Result<tonic::Response<ExportTraceServiceResponse>, Status>>;

    fn call(&mut self, request: tonic::Request<Decoded>) -> Self::Future {
        let Decoded {
            request,
            encoded_len,
        } = request.into_inner();
        let partial_success = self.store.ingest_request(request, encoded_len);
        ready(Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        })))
    }
}

/// Protobuf in and out; a body that does not decode is `INVALID_ARGUMENT` and is counted.
struct ExportCodec {
    store: Arc<TraceStore>,
}

impl Codec for ExportCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Decoded;
    type Encoder = ResponseEncoder;
    type Decoder = RequestDecoder;

    fn encoder(&mut self) -> ResponseEncoder {
        ResponseEncoder
    }

    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder {
            store: Arc::clone(&self.store),
        }
    }
}

struct ResponseEncoder;

impl Encoder for ResponseEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(
        &mut self,
        item: ExportTraceServiceResponse,
        dst: &mut EncodeBuf<'_>,
    ) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode the response: {e}")))
    }
}

struct RequestDecoder {
    store: Arc<TraceStore>,
}

impl Decoder for RequestDecoder {
    type Item = Decoded;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Decoded>, Status> {
        let encoded_len = src.remaining();
        // The message is one contiguous buffer; taking it out (a split, not a copy) lets prost
        // read from a plain slice, which is markedly cheaper per field than going through
        // `DecodeBuf`'s `Buf` implementation.
        let message = src.copy_to_bytes(encoded_len);
        match ExportTraceServiceRequest::decode(message.as_ref()) {
            Ok(request) => Ok(Some(Decoded {
                request,
                encoded_len,
            })),
            Err(e) => {
                self.store.record_rejection(Rejection::Malformed);
                Err(Status::invalid_argument(format!(
                    "invalid protobuf ExportTraceServiceRequest: {e}"
                )))
            }
        }
    }
}
