//! Forwarding: every accepted export request is also sent on to other OTLP endpoints (a
//! Collector, Jaeger, Tempo), as the Collector's own fan-out would, so a lab run can feed a
//! real backend while its completeness check stays on the embedded copy.
//!
//! Each endpoint has a bounded queue and one task sending from it. A slow or dead endpoint
//! fills its queue and then loses copies, counted per endpoint; it never slows the receiver,
//! the services, or the embedded copy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Export requests waiting for one endpoint at most.
const QUEUE: usize = 1024;

/// How one endpoint is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, to the URL as given (`…/v1/traces`).
    HttpProtobuf,
}

impl ForwardProtocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardProtocol::Grpc => "grpc",
            ForwardProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// One endpoint to forward to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    /// `http://host:port` for gRPC, the full `http://host:port/v1/traces` URL for HTTP.
    pub endpoint: String,
    /// How to speak to it.
    pub protocol: ForwardProtocol,
}

impl ForwardTarget {
    /// Reads `--forward`'s value: a URL whose path is `/v1/traces` is OTLP/HTTP; any other is
    /// spoken to with `default` (from `OTEL_EXPORTER_OTLP_PROTOCOL`, gRPC when unset), and an
    /// OTLP/HTTP URL without a path gets `/v1/traces`, as the OTLP exporters do.
    pub fn parse(url: &str, default: ForwardProtocol) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| format!("`{url}` is not a URL; write e.g. http://127.0.0.1:4317"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(format!(
                "`{url}` must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:4317"
            ));
        }
        let path = uri.path();
        let trimmed = url.trim_end_matches('/');
        Ok(if path.ends_with("/v1/traces") {
            ForwardTarget {
                endpoint: trimmed.to_string(),
                protocol: ForwardProtocol::HttpProtobuf,
            }
        } else if default == ForwardProtocol::HttpProtobuf {
            ForwardTarget {
                endpoint: format!("{trimmed}/v1/traces"),
                protocol: ForwardProtocol::HttpProtobuf,
            }
        } else {
            ForwardTarget {
                endpoint: trimmed.to_string(),
                protocol: ForwardProtocol::Grpc,
            }
        })
    }
}

/// What reached one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardStats {
    /// The endpoint.
    pub target: ForwardTarget,
    /// Spans it acknowledged.
    pub delivered: u64,
    /// Spans it refused, could not be reached for, or that found its queue full.
    pub failed: u64,
}

#[derive(Debug, Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug)]
struct Link {
    target: ForwardTarget,
    /// Taken by [`Forwarder::finish`]: once the sender is gone, the task drains the queue and
    /// ends.
    queue: Mutex<Option<mpsc::Sender<Arc<ExportTraceServiceRequest>>>>,
    counts: Arc<Counts>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// Sends copies of accepted requests to the `--forward` endpoints.
#[derive(Debug)]
pub struct Forwarder {
    links: Vec<Link>,
}

/// Why forwarding could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot forward to {endpoint}: {reason}")]
pub struct ForwardError {
    endpoint: String,
    reason: String,
}

impl Forwarder {
    /// Starts one sender per target, on the current tokio runtime. Connections are made on
    /// first use, so an endpoint that is not up yet only costs the copies sent before it is.
    pub fn start(targets: &[ForwardTarget], timeout: Duration) -> Result<Self, ForwardError> {
        let mut links = Vec::new();
        for target in targets {
            let (queue, incoming) = mpsc::channel(QUEUE);
            let counts = Arc::new(Counts::default());
            let sender = Sender::new(target, timeout)?;
            let task = tokio::spawn(sender.run(incoming, counts.clone()));
            links.push(Link {
                target: target.clone(),
                queue: Mutex::new(Some(queue)),
                counts,
                task: Mutex::new(Some(task)),
            });
        }
        Ok(Forwarder { links })
    }

    /// Queues a copy of `request` for every endpoint; a full queue loses the copy (counted).
    pub(crate) fn offer(&self, request: &ExportTraceServiceRequest) {
        if self.links.is_empty() {
            return;
        }
        let shared = Arc::new(request.clone());
        for link in &self.links {
            let sent = lock(&link.queue)
                .as_ref()
                .is_some_and(|queue| queue.try_send(shared.clone()).is_ok());
            if !sent {
                link.counts
                    .failed
                    .fetch_add(span_count(&shared), Ordering::Relaxed);
            }
        }
    }

    /// Stops taking copies, waits (at most `timeout`) until every queued copy is sent, and
    /// returns what each endpoint got. Copies still queued at the deadline count as failed.
    pub async fn finish(&self, timeout: Duration) -> Vec<ForwardStats> {
        let mut stats = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        for link in &self.links {
            drop(lock(&link.queue).take());
            let task = lock(&link.task).take();
            if let Some(mut task) = task
                && tokio::time::timeout_at(deadline, &mut task).await.is_err()
            {
                task.abort();
                tracing::warn!(endpoint = %link.target.endpoint, "forwarding did not finish in time");
            }
            stats.push(ForwardStats {
                target: link.target.clone(),
                delivered: link.counts.delivered.load(Ordering::Relaxed),
                failed: link.counts.failed.load(Ordering::Relaxed),
            });
        }
        stats
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // An `Option` swap cannot be left half-done by a panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn span_count(request: &ExportTraceServiceRequest) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

/// The client of one endpoint.
enum Sender {
    Grpc(TraceServiceClient<tonic::transport::Channel>, Duration),
    Http(reqwest::Client, String),
}

impl Sender {
    fn new(target: &ForwardTarget, timeout: Duration) -> Result<Self, ForwardError> {
        let error = |reason: String| ForwardError {
            endpoint: target.endpoint.clone(),
            reason,
        };
        Ok(match target.protocol {
            ForwardProtocol::Grpc => {
                let channel = tonic::transport::Endpoint::from_shared(target.endpoint.clone())
                    .map_err(|e| error(e.to_string()))?
                    .timeout(timeout)
                    .connect_lazy();
                Sender::Grpc(TraceServiceClient::new(channel), timeout)
            }
            ForwardProtocol::HttpProtobuf => Sender::Http(
                reqwest::Client::builder()
                    .timeout(timeout)
                    .build()
                    .map_err(|e| error(e.to_string()))?,
                target.endpoint.clone(),
            ),
        })
    }

    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Arc<ExportTraceServiceRequest>>,
        counts: Arc<Counts>,
    ) {
        while let Some(request) = incoming.recv().await {
            let spans = span_count(&request);
            let delivered = match &mut self {
                Sender::Grpc(client, timeout) => {
                    let mut call = tonic::Request::new((*request).clone());
                    call.set_timeout(*timeout);
                    client.export(call).await.is_ok()
                }
                Sender::Http(client, url) => client
                    .post(url.as_str())
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success()),
            };
            let counter = if delivered {
                &counts.delivered
            } else {
                &counts.failed
            };
            counter.fetch_add(spans, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_follows_the_url_then_the_default() {
        let grpc = ForwardProtocol::Grpc;
        let http = ForwardProtocol::HttpProtobuf;
        assert_eq!(
            ForwardTarget::parse("http://c:4318/v1/traces", grpc),
            Ok(ForwardTarget {
                endpoint: "http://c:4318/v1/traces".into(),
                protocol: http
            })
        );
        assert_eq!(
            ForwardTarget::parse("http://c:4317", grpc),
            Ok(ForwardTarget {
                endpoint: "http://c:4317".into(),
                protocol: grpc
            })
        );
        assert_eq!(
            ForwardTarget::parse("http://c:4318/", http),
            Ok(ForwardTarget {
                endpoint: "http://c:4318/v1/traces".into(),
                protocol: http
            })
        );
        assert!(ForwardTarget::parse("c:4317", grpc).is_err());
        assert!(ForwardTarget::parse("ftp://c", grpc).is_err());
    }
}
