//! The OTLP/HTTP (protobuf) span exporter: [`wire`](crate::wire)'s encoding, sent with reqwest.
//!
//! It does what opentelemetry-otlp's HTTP exporter does for a batch (one `POST` of an
//! `ExportTraceServiceRequest` as `application/x-protobuf` to the traces URL, the headers of
//! `OTEL_EXPORTER_OTLP_TRACES_HEADERS` or else `OTEL_EXPORTER_OTLP_HEADERS`, a failure for any
//! status but 2xx, a warning for a partial success; no compression, and a warning where
//! `OTEL_EXPORTER_OTLP_COMPRESSION` asks for one), without converting every span into
//! opentelemetry-proto's structs first; see `wire` for why. gRPC stays with opentelemetry-otlp.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use prost::Message;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::TelemetryError;
use crate::wire::{EncodedResource, export_request};

/// Exports batches of spans over OTLP/HTTP with protobuf bodies.
#[derive(Debug)]
pub(crate) struct HttpExporter {
    client: reqwest::Client,
    url: String,
    resource: EncodedResource,
    /// The size of the last request body, so the next one is allocated once.
    last_len: AtomicUsize,
    shut_down: AtomicBool,
}

impl HttpExporter {
    /// An exporter to `url` (the full traces URL) with `timeout` for each request, sending the
    /// headers that `lookup` finds in the standard variables.
    pub(crate) fn new(
        url: String,
        timeout: Duration,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let mut headers = HeaderMap::new();
        if let Some(list) = lookup("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| lookup("OTEL_EXPORTER_OTLP_HEADERS"))
        {
            headers = parse_headers(&list);
        }
        // As opentelemetry-otlp does without its compression features: said (once a process,
        // not once a service), and ignored.
        static SAID: std::sync::Once = std::sync::Once::new();
        if let Some((name, value)) = [
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ]
        .into_iter()
        .find_map(|name| lookup(name).map(|value| (name, value)))
            && !value.trim().is_empty()
            && !value.trim().eq_ignore_ascii_case("none")
        {
            SAID.call_once(|| {
                tracing::warn!(
                    "{name}={value:?} is not supported: spans are exported uncompressed (unset \
                     it, or set it to `none`)"
                );
            });
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        // Sent with every request: given to the client once rather than copied per export.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        Ok(HttpExporter {
            client,
            url,
            resource: EncodedResource::default(),
            last_len: Default::default(),
            shut_down: AtomicBool::new(false),
        })
    }
}

/// `key=value` pairs separated by commas, values percent-encoded (the specification's format
/// for `OTEL_EXPORTER_OTLP_HEADERS`); pairs that do not make a valid header are skipped, as
/// opentelemetry-otlp skips them.
fn parse_headers(list: &str) -> HeaderMap {
    list.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let (key, value) = (key.trim(), value.trim());
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_or_else(|_| value.to_string(), |v| v.into_owned());
            if key.is_empty() || value.is_empty() {
                return None;
            }
            Some((
                HeaderName::from_bytes(key.as_bytes()).ok()?,
                HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect()
}

impl SpanExporter for HttpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let mut body = Vec::with_capacity(self.last_len.load(Ordering::Relaxed));
        export_request(&mut body, &self.resource, &batch);
        drop(batch);
        self.last_len.store(body.len(), Ordering::Relaxed);
        let response = self
            .client
            .post(&self.url)
            .body(body)
            .send()
            .await
            .map_err(|e| OTelSdkError::InternalFailure(format!("HTTP export failed: {e}")))?;
        let status = response.status();
        // The body is read in full either way, so the connection can carry the next export.
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(OTelSdkError::InternalFailure(format!(
                "HTTP export failed with status code: {}",
                status.as_u16()
            )));
        }
        if let Ok(response) = ExportTraceServiceResponse::decode(body.as_ref())
            && let Some(partial) = response.partial_success
            && (partial.rejected_spans > 0 || !partial.error_message.is_empty())
        {
            tracing::warn!(
                rejected_spans = partial.rejected_spans,
                error_message = partial.error_message.as_str(),
                "the OTLP endpoint accepted only part of an export"
            );
        }
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::coalesce::tests::span;

    #[test]
    fn headers_are_pairs_with_percent_encoded_values() {
        let headers = parse_headers("api-key=a%20b%3Dc, x-tenant = lab ,broken,=v,k=");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["api-key"], "a b=c");
        assert_eq!(headers["x-tenant"], "lab");
    }

    /// One HTTP request as a server on 127.0.0.1 receives it: its head and its body.
    struct Received {
        head: String,
        body: Vec<u8>,
    }

    /// A server that answers its first request with `status` and hands the request over.
    async fn serve_once(status: u16) -> (String, tokio::task::JoinHandle<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut data = Vec::new();
            let mut chunk = [0u8; 65536];
            let (head, body) = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed before sending a whole request");
                data.extend_from_slice(&chunk[..n]);
                let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if data.len() >= end + 4 + length {
                    break (head, data[end + 4..end + 4 + length].to_vec());
                }
            };
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            socket.write_all(reply.as_bytes()).await.unwrap();
            Received { head, body }
        });
        (url, server)
    }

    fn exporter(url: String, headers: Option<&str>) -> HttpExporter {
        let headers = headers.map(str::to_string);
        let mut exporter = HttpExporter::new(url, Duration::from_secs(5), move |name| {
            (name == "OTEL_EXPORTER_OTLP_HEADERS")
                .then(|| headers.clone())
                .flatten()
        })
        .unwrap();
        exporter.set_resource(
            &Resource::builder_empty()
                .with_attributes([KeyValue::new("service.name", "cart")])
                .build(),
        );
        exporter
    }

    #[tokio::test]
    async fn a_batch_is_posted_as_protobuf_with_the_configured_headers() {
        let (url, server) = serve_once(200).await;
        let exporter = exporter(url, Some("authorization=Bearer%20t0k3n"));
        exporter.export((0..3).map(span).collect()).await.unwrap();
        let received = server.await.unwrap();
        assert!(
            received.head.starts_with("post /v1/traces http/1.1"),
            "{}",
            received.head
        );
        assert!(
            received
                .head
                .contains("content-type: application/x-protobuf")
        );
        assert!(
            received.head.contains("authorization: bearer t0k3n"),
            "{}",
            received.head
        );
        let request = ExportTraceServiceRequest::decode(received.body.as_slice()).unwrap();
        let resource_spans = &request.resource_spans[0];
        let service = &resource_spans.resource.as_ref().unwrap().attributes[0];
        assert_eq!(service.key, "service.name");
        let spans = &resource_spans.scope_spans[0].spans;
        assert_eq!(spans.len(), 3);
        // `span(2)` has span id 3.
        assert_eq!(spans[2].span_id, 3_u64.to_be_bytes());
    }

    #[tokio::test]
    async fn a_refused_export_fails_with_its_status_and_a_shut_down_exporter_sends_nothing() {
        let (url, server) = serve_once(503).await;
        let exporter = exporter(url, None);
        let error = exporter.export(vec![span(1)]).await.unwrap_err();
        assert!(error.to_string().contains("503"), "{error}");
        server.await.unwrap();
        exporter
            .shutdown_with_timeout(Duration::from_secs(1))
            .unwrap();
        assert!(matches!(
            exporter.export(vec![span(2)]).await,
            Err(OTelSdkError::AlreadyShutdown)
        ));
    }
}
