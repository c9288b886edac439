//! A scenario hosted on loopback with its spans collected by an embedded receiver.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracelab_receiver::{Receiver, ReceiverConfig, TraceStore};
use tracelab_services::{HostOptions, ServiceHost};
use tracelab_telemetry::{ExportConfig, OtlpProtocol};
use tracelab_trace::{Span, Trace};

/// A running lab.
pub struct Lab {
    pub host: ServiceHost,
    store: Arc<TraceStore>,
    receiver: Receiver,
    pub client: reqwest::Client,
}

/// One answer, as the test's client saw it.
#[derive(Debug)]
pub struct Answer {
    /// The status, or `None` when the connection failed.
    pub status: Option<u16>,
    /// How long it took.
    pub took: Duration,
}

impl Lab {
    pub async fn start(yaml: &str) -> Lab {
        let scenario = tracelab_scenario::parse(yaml, "test.yaml").expect("valid scenario");
        let store = Arc::new(TraceStore::new());
        let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
            .await
            .expect("receiver starts");
        let export = ExportConfig::new(receiver.grpc_endpoint(), OtlpProtocol::Grpc);
        let host = ServiceHost::start(
            Arc::new(scenario),
            &HostOptions {
                export: Some(export),
                ..HostOptions::default()
            },
        )
        .await
        .expect("services start");
        Lab {
            host,
            store,
            receiver,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, service: &str, path: &str) -> String {
        format!("{}{path}", self.host.peers().url(service).expect("hosted"))
    }

    pub fn admin(&self, service: &str) -> String {
        let hosted = self
            .host
            .services()
            .iter()
            .find(|s| s.name == service)
            .expect("hosted");
        format!("http://{}/admin/faults", hosted.admin_addr)
    }

    /// Switches a fault on through the admin API and returns its id.
    pub async fn fault_on(&self, service: &str, fault: serde_json::Value) -> u64 {
        let response = self
            .client
            .post(self.admin(service))
            .body(fault.to_string())
            .send()
            .await
            .expect("admin answers");
        assert_eq!(
            response.status().as_u16(),
            201,
            "{:?}",
            response.text().await
        );
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        body["id"].as_u64().expect("an id")
    }

    /// Switches every fault of `service` off.
    pub async fn faults_off(&self, service: &str) {
        let response = self
            .client
            .delete(self.admin(service))
            .send()
            .await
            .expect("admin answers");
        assert_eq!(response.status().as_u16(), 200);
    }

    /// Sends request number `sequence` (its origin, so its spans can be found) with extra
    /// headers.
    pub async fn send(
        &self,
        service: &str,
        path: &str,
        sequence: u64,
        headers: &[(&str, &str)],
    ) -> Answer {
        let started = Instant::now();
        let mut request = self
            .client
            .get(self.url(service, path))
            .header("tracelab-origin", format!("{sequence}:"))
            .timeout(Duration::from_secs(10));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let status = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                Some(status)
            }
            Err(_) => None,
        };
        Answer {
            status,
            took: started.elapsed(),
        }
    }

    /// Stops the services, waits for every exported span and returns the traces.
    pub async fn finish(self) -> Vec<Trace> {
        let stats: tracelab_telemetry::ExportStats = self
            .host
            .shutdown(Duration::from_secs(10))
            .await
            .into_iter()
            .map(|(_, s)| s)
            .sum();
        assert!(
            self.store
                .wait_for_spans(stats.exported, Duration::from_secs(10))
                .await,
            "every exported span arrives"
        );
        self.receiver.shutdown().await;
        self.store.traces()
    }
}

/// Every span of every trace.
pub fn all_spans(traces: &[Trace]) -> Vec<&Span> {
    traces.iter().flat_map(|t| t.spans.iter()).collect()
}

/// The SERVER (or CONSUMER) span that request `sequence` made in `service`.
pub fn entry_span<'t>(traces: &'t [Trace], service: &str, sequence: u64) -> &'t Span {
    let origin = format!("{sequence}:");
    all_spans(traces)
        .into_iter()
        .find(|s| {
            s.service_name.as_ref() == service && attr_str(s, "tracelab.origin") == Some(&origin)
        })
        .unwrap_or_else(|| panic!("no span of request {sequence} in {service}"))
}

/// The trace that holds `span`.
pub fn trace_of<'t>(traces: &'t [Trace], span: &Span) -> &'t Trace {
    traces
        .iter()
        .find(|t| t.trace_id == span.trace_id)
        .expect("the span's trace")
}

/// The children of `span`, by parent id.
pub fn children<'t>(trace: &'t Trace, span: &Span) -> Vec<&'t Span> {
    trace
        .spans
        .iter()
        .filter(|s| s.parent_span_id == Some(span.span_id))
        .collect()
}

pub fn attr_str<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    span.attr(key).and_then(|v| v.as_str())
}

pub fn attr_f64(span: &Span, key: &str) -> Option<f64> {
    span.attr(key).and_then(|v| v.as_f64())
}

pub fn attr_i64(span: &Span, key: &str) -> Option<i64> {
    span.attr(key).and_then(|v| v.as_i64())
}

/// Spans of `service` named `name`, by trace.
pub fn named<'t>(traces: &'t [Trace], service: &str, name: &str) -> Vec<&'t Span> {
    all_spans(traces)
        .into_iter()
        .filter(|s| s.service_name.as_ref() == service && s.name == name)
        .collect()
}
