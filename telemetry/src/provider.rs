//! One tracer provider per simulated service.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, SdkTracer, SdkTracerProvider, ShouldSample, SpanData, SpanExporter,
};

use crate::TelemetryError;
use crate::coalesce::CoalescingProcessor;
use crate::counting::{CountingExporter, CountingProcessor, ExportCounters, ExportStats};
use crate::export::{ExportConfig, OtlpProtocol};
use crate::otlp_http::HttpExporter;

/// Who is emitting the spans: becomes the resource of every span the provider creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIdentity {
    /// `service.name`.
    pub name: String,
    /// `service.version`.
    pub version: String,
    /// `service.instance.id`: unique per process and service, so replicas are told apart.
    pub instance_id: String,
    /// Extra resource attributes (e.g. from `OTEL_RESOURCE_ATTRIBUTES`), applied first so the
    /// three attributes above always win.
    pub extra: Vec<(String, String)>,
}

impl ServiceIdentity {
    /// An identity with a fresh random instance id.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        ServiceIdentity {
            name: name.into(),
            version: version.into(),
            instance_id: random_instance_id(),
            extra: Vec::new(),
        }
    }

    /// The identity of instance `index` of a service that runs several: its instance id
    /// names the service and the index (`api-2-3f9a1c0e`), so a report grouped by instance is
    /// readable, and ends with random digits, so two runs never share one.
    pub fn instance(name: impl Into<String>, version: impl Into<String>, index: u32) -> Self {
        let name = name.into();
        let suffix: [u8; 4] = rand::random();
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        ServiceIdentity {
            instance_id: format!("{name}-{index}-{suffix}"),
            name,
            version: version.into(),
            extra: Vec::new(),
        }
    }

    fn resource(&self) -> Resource {
        let mut attrs: Vec<KeyValue> = self
            .extra
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        attrs.push(KeyValue::new("service.name", self.name.clone()));
        attrs.push(KeyValue::new("service.version", self.version.clone()));
        attrs.push(KeyValue::new(
            "service.instance.id",
            self.instance_id.clone(),
        ));
        // `builder_empty` rather than `builder`: the default builder reads OTEL_SERVICE_NAME,
        // which would give every service hosted in this process the same name.
        Resource::builder_empty()
            .with_attributes([
                KeyValue::new("telemetry.sdk.name", "opentelemetry"),
                KeyValue::new("telemetry.sdk.language", "rust"),
                KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
            ])
            .with_attributes(attrs)
            .build()
    }
}

/// Parses `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k2=v2`, values percent-decoded is not needed for the
/// simple values people put there; malformed pairs are skipped as the specification allows).
pub fn parse_resource_attributes(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn random_instance_id() -> String {
    let bytes: [u8; 8] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A tracer provider, its tracer and its export counters.
#[derive(Debug, Clone)]
pub struct ServiceTelemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    counters: Arc<ExportCounters>,
    exporting: bool,
    /// The resource's `service.instance.id`.
    instance_id: String,
}

impl ServiceTelemetry {
    /// A provider exporting to `export`, sampling with `sampler`.
    ///
    /// Must be called inside a tokio runtime: the batch processor and the gRPC channel are
    /// spawned on it.
    pub fn new(
        identity: &ServiceIdentity,
        export: &ExportConfig,
        sampler: impl ShouldSample + 'static,
    ) -> Result<Self, TelemetryError> {
        export.validate()?;
        let counters = Arc::new(ExportCounters::default());
        let url = export.export_url();
        let timeout = export.batch.export_timeout;
        let exporter = match export.protocol {
            OtlpProtocol::Grpc => Exporter::Grpc(Box::new(
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(url)
                    .with_timeout(timeout)
                    .build()
                    .map_err(|e| TelemetryError::Exporter(e.to_string()))?,
            )),
            OtlpProtocol::HttpProtobuf => {
                Exporter::Http(HttpExporter::new(url, timeout, |name| {
                    std::env::var(name).ok()
                })?)
            }
        };
        let exporter = CountingExporter::new(exporter, counters.clone());
        // `CountingProcessor` keeps the queue within `max_queue_size` and counts what it
        // drops; the SDK's own bound, which drops without a count, is never reached (the
        // margin is for its flush and shutdown messages, which share the channel).
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(export.batch.max_queue_size + 64)
            .with_max_export_batch_size(export.batch.max_export_batch_size)
            .with_scheduled_delay(export.batch.scheduled_delay)
            .with_max_export_timeout(timeout)
            .build();
        // The async-runtime processor, not the thread-based default: the reqwest HTTP client
        // needs a tokio reactor, which the default processor's own thread does not have.
        let processor = BatchSpanProcessor::builder(exporter, Tokio)
            .with_batch_config(batch)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_resource(identity.resource())
            .with_sampler(sampler)
            .with_span_processor(CountingProcessor::new(
                CoalescingProcessor::new(processor, export.batch.max_export_batch_size),
                counters.clone(),
                export.batch.max_queue_size,
            ))
            .build();
        Ok(Self::from_provider(provider, counters, true, identity))
    }

    /// A provider that creates spans (so context still propagates) but exports nothing.
    pub fn without_export(
        identity: &ServiceIdentity,
        sampler: impl ShouldSample + 'static,
    ) -> Self {
        let provider = SdkTracerProvider::builder()
            .with_resource(identity.resource())
            .with_sampler(sampler)
            .build();
        Self::from_provider(
            provider,
            Arc::new(ExportCounters::default()),
            false,
            identity,
        )
    }

    fn from_provider(
        provider: SdkTracerProvider,
        counters: Arc<ExportCounters>,
        exporting: bool,
        identity: &ServiceIdentity,
    ) -> Self {
        let tracer = provider.tracer("tracelab");
        ServiceTelemetry {
            provider,
            tracer,
            counters,
            exporting,
            instance_id: identity.instance_id.clone(),
        }
    }

    /// The `service.instance.id` every span of this provider carries: a receiver can tell by
    /// it which of the spans it stored came from here.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The tracer spans are started with.
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// True when spans leave the process.
    pub fn is_exporting(&self) -> bool {
        self.exporting
    }

    /// Current counters.
    pub fn stats(&self) -> ExportStats {
        self.counters.snapshot()
    }

    /// Exports everything queued so far. The SDK call blocks, so it runs on a blocking thread.
    pub async fn force_flush(&self) {
        let provider = self.provider.clone();
        let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
    }

    /// Flushes and stops the provider, and returns the counts at that moment. It waits as long
    /// as the backend keeps acknowledging spans, and gives up once `timeout` passes without one
    /// (a backend that hangs): spans still queued then are counted lost, the returned
    /// `ended - exported` includes them. A slow pipeline is not a hung one: on a machine whose
    /// cores other programs keep busy, the lab's low-priority pipeline drains slowly, and a
    /// fixed deadline would drop spans it was about to deliver.
    pub async fn shutdown(&self, timeout: Duration) -> ExportStats {
        let provider = self.provider.clone();
        let counters = self.counters.clone();
        let mut stop = tokio::task::spawn_blocking(move || {
            // A full queue refuses the processor's shutdown message outright, which would
            // strand every queued span. A flush is retried until the queue accepts it; once it
            // has run, the queue has room for the shutdown message.
            let mut progress = Progress::new(counters.snapshot().exported);
            while provider.force_flush().is_err()
                && !progress.stalled(counters.snapshot().exported, timeout)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            provider.shutdown_with_timeout(timeout)
        });
        // The SDK's batch processor ignores the timeout it is given and waits for every queued
        // batch to be exported, each up to the export timeout: against a backend that accepts
        // connections and never answers, that is minutes. The wait is bounded here instead;
        // the blocking thread finishes on its own once the exports time out.
        let mut progress = Progress::new(self.counters.snapshot().exported);
        loop {
            match tokio::time::timeout(timeout.min(Duration::from_millis(500)), &mut stop).await {
                Ok(_) => break,
                Err(_) if !progress.stalled(self.counters.snapshot().exported, timeout) => {}
                Err(_) => {
                    tracing::warn!(
                        ?timeout,
                        "the span exporter delivered nothing for the shutdown timeout; queued spans are counted lost"
                    );
                    break;
                }
            }
        }
        self.counters.snapshot()
    }
}

/// Whether a count has stopped moving: `timeout` since it last grew.
struct Progress {
    last: u64,
    since: std::time::Instant,
}

impl Progress {
    fn new(count: u64) -> Self {
        Progress {
            last: count,
            since: std::time::Instant::now(),
        }
    }

    fn stalled(&mut self, count: u64, timeout: Duration) -> bool {
        if count > self.last {
            self.last = count;
            self.since = std::time::Instant::now();
        }
        self.since.elapsed() >= timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_stalled_only_once_it_has_not_grown_for_the_timeout() {
        let mut progress = Progress::new(5);
        assert!(!progress.stalled(5, Duration::from_secs(60)));
        assert!(progress.stalled(5, Duration::ZERO));
        // Growth starts the clock again.
        assert!(!progress.stalled(6, Duration::from_millis(50)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(progress.stalled(6, Duration::from_millis(50)));
        assert!(!progress.stalled(7, Duration::from_millis(50)));
    }
}

/// The exporter of the configured protocol.
#[derive(Debug)]
enum Exporter {
    /// Boxed: the tonic exporter is several times the size of the HTTP one.
    Grpc(Box<opentelemetry_otlp::SpanExporter>),
    Http(HttpExporter),
}

impl SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self {
            Exporter::Grpc(e) => e.export(batch).await,
            Exporter::Http(e) => e.export(batch).await,
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self {
            Exporter::Grpc(e) => e.shutdown_with_timeout(timeout),
            Exporter::Http(e) => e.shutdown_with_timeout(timeout),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self {
            Exporter::Grpc(e) => e.force_flush(),
            Exporter::Http(e) => e.force_flush(),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            Exporter::Grpc(e) => e.set_resource(resource),
            Exporter::Http(e) => e.set_resource(resource),
        }
    }
}
