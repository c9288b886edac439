//! OTLP/HTTP: `POST /v1/traces` with a protobuf or JSON body, optionally gzip-compressed.
//!
//! Responses follow the OTLP/HTTP specification: success is an `ExportTraceServiceResponse`
//! in the request's encoding; a refused body gets a `google.rpc.Status` in the request's
//! encoding, with a short message for the producer's logs.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::budget::{Budget, DEFAULT_IN_FLIGHT_BYTES, RETRY_AFTER, reservation};
use crate::otlp_json;
use crate::store::{Rejection, TraceStore};

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// The OTLP/HTTP router: `POST /v1/traces` into `store`, bodies (compressed and decompressed)
/// up to `max_body_bytes`. Other paths answer 404, other methods 405.
pub fn router(store: Arc<TraceStore>, max_body_bytes: usize) -> Router {
    router_with_budget(store, max_body_bytes, Budget::new(DEFAULT_IN_FLIGHT_BYTES))
}

pub(crate) fn router_with_budget(
    store: Arc<TraceStore>,
    max_body_bytes: usize,
    budget: Budget,
) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        .with_state(HttpState {
            store,
            max_body_bytes,
            budget,
        })
        // axum's own 2 MiB default would answer 413 before the handler could count it; the
        // handler enforces `max_body_bytes` itself.
        .layer(DefaultBodyLimit::disable())
}

#[derive(Clone)]
struct HttpState {
    store: Arc<TraceStore>,
    max_body_bytes: usize,
    /// Bytes of bodies being decoded at once; see [`crate::budget`].
    budget: Budget,
}

/// The body encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn from_headers(headers: &HeaderMap) -> Option<Encoding> {
        let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case(PROTOBUF)
            || essence.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Encoding::Protobuf)
        } else if essence.eq_ignore_ascii_case(JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        })
    }
}

/// A refused request: the status, and the body encoding the producer asked for, if known.
#[derive(Debug)]
struct HttpRejection {
    status: StatusCode,
    encoding: Option<Encoding>,
    message: String,
}

impl HttpRejection {
    fn new(status: StatusCode, encoding: Option<Encoding>, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
        }
        HttpRejection {
            status,
            encoding,
            message,
        }
    }

    fn reason(&self) -> Rejection {
        match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => Rejection::TooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Rejection::MediaType,
            StatusCode::TOO_MANY_REQUESTS => Rejection::Busy,
            _ => Rejection::Malformed,
        }
    }
}

/// `google.rpc.Status`, the error body OTLP/HTTP specifies; only the fields we fill.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

impl IntoResponse for HttpRejection {
    fn into_response(self) -> Response {
        let code = match self.status {
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
                tonic::Code::ResourceExhausted
            }
            _ => tonic::Code::InvalidArgument,
        } as i32;
        let (content_type, body) = match self.encoding {
            Some(Encoding::Protobuf) => {
                let status = RpcStatus {
                    code,
                    message: self.message,
                };
                (PROTOBUF, status.encode_to_vec())
            }
            Some(Encoding::Json) => {
                let status = serde_json::json!({"code": code, "message": self.message});
                (JSON, status.to_string().into_bytes())
            }
            None => ("text/plain; charset=utf-8", self.message.into_bytes()),
        };
        let mut response = (
            self.status,
            [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // OTLP/HTTP: 429 is retryable, after `Retry-After` seconds when given.
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER.as_secs()),
            );
        }
        response
    }
}

async fn export(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    match accept(&state, &headers, body).await {
        Ok(response) => response,
        Err(rejection) => {
            tracing::debug!(status = %rejection.status, message = %rejection.message, "refused an OTLP/HTTP export");
            state.store.record_rejection(rejection.reason());
            rejection.into_response()
        }
    }
}

async fn accept(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, HttpRejection> {
    let limit = state.max_body_bytes;
    let Some(encoding) = Encoding::from_headers(headers) else {
        return Err(HttpRejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            format!("Content-Type must be {PROTOBUF} or {JSON}"),
        ));
    };
    let gzip = match headers.get(CONTENT_ENCODING).map(HeaderValue::to_str) {
        None => false,
        Some(Ok(v)) if v.trim().eq_ignore_ascii_case("identity") => false,
        Some(Ok(v)) if v.trim().eq_ignore_ascii_case("gzip") => true,
        Some(_) => {
            return Err(HttpRejection::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some(encoding),
                "Content-Encoding must be gzip or absent",
            ));
        }
    };
    let too_large = || {
        HttpRejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(encoding),
            format!("body is over the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // Held until the request is stored: what this body costs while it is decoded.
    let Some(_reserved) = state.budget.try_reserve(reservation(declared, gzip, limit)) else {
        // Read and drop the body, a frame at a time, before answering: an HTTP/1 client that
        // is still sending when the answer comes sees a broken connection, not the 429.
        discard(body, limit).await;
        return Err(HttpRejection::new(
            StatusCode::TOO_MANY_REQUESTS,
            Some(encoding),
            "the receiver is decoding as much as it may at once; retry shortly",
        ));
    };

    let raw = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large()),
        Err(e) => {
            return Err(HttpRejection::new(
                StatusCode::BAD_REQUEST,
                Some(encoding),
                format!("cannot read the body: {e}"),
            ));
        }
    };
    let body = if gzip {
        gunzip(&raw, limit).map_err(|e| match e {
            GunzipError::TooLarge => too_large(),
            GunzipError::Invalid(e) => HttpRejection::new(
                StatusCode::BAD_REQUEST,
                Some(encoding),
                format!("invalid gzip body: {e}"),
            ),
        })?
    } else {
        raw
    };

    let request = match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body.as_ref())
            .map_err(|e| format!("invalid protobuf ExportTraceServiceRequest: {e}")),
        Encoding::Json => otlp_json::decode_request_body(&body),
    }
    .map_err(|message| HttpRejection::new(StatusCode::BAD_REQUEST, Some(encoding), message))?;

    let partial_success = state.store.ingest_request(request, body.len());
    let response = ExportTraceServiceResponse { partial_success };
    let bytes = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => otlp_json::encode_response(&response).into_bytes(),
    };
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, encoding.content_type())],
        bytes,
    )
        .into_response())
}

/// Reads a body to its end (at most `limit` bytes, at most a few seconds) and drops it.
async fn discard(mut body: Body, limit: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut read = 0usize;
    while read <= limit {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                read += frame.data_ref().map_or(0, |d| d.len());
            }
            _ => return,
        }
    }
}

enum GunzipError {
    TooLarge,
    Invalid(std::io::Error),
}

/// Decompresses at most `limit` bytes, so that a small "gzip bomb" cannot exhaust memory.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, GunzipError> {
    let mut out = Vec::new();
    let reader = flate2::read::GzDecoder::new(compressed);
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(GunzipError::Invalid)?;
    if out.len() > limit {
        return Err(GunzipError::TooLarge);
    }
    Ok(Bytes::from(out))
}
