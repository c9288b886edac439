//! What one span costs the service that records it: start, four attributes, end, and the
//! hand-off to the batch queue, through the same processor chain a lab service uses
//! (`CountingProcessor` around the SDK's async-runtime `BatchSpanProcessor`, a
//! `CountingExporter` behind it). The exporter discards the batches, so the figure is the cost
//! on the request path, not the network's.
//!
//! Run with `cargo bench -p tracelab-telemetry --bench span_cost`. Dapper's table is the
//! anchor: 204 ns for a root span, 176 ns for a child; the lab's target is at most 1 µs.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::{
    Span as _, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tracelab_telemetry::ExportCounters;
use tracelab_telemetry::counting::{CountingExporter, CountingProcessor};

/// Accepts every batch and drops it.
#[derive(Debug)]
struct DiscardingExporter;

impl SpanExporter for DiscardingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

/// The lab's processor chain with the lab's batch settings, exporting nowhere.
fn provider(sampler: Sampler) -> (SdkTracerProvider, Arc<ExportCounters>) {
    let counters = Arc::new(ExportCounters::default());
    let exporter = CountingExporter::new(DiscardingExporter, counters.clone());
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(65_536 + 64)
        .with_max_export_batch_size(512)
        .with_scheduled_delay(Duration::from_millis(200))
        .build();
    let processor = BatchSpanProcessor::builder(exporter, Tokio)
        .with_batch_config(batch)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(CountingProcessor::new(processor, counters.clone(), 65_536))
        .build();
    (provider, counters)
}

fn attributes(i: u64) -> [KeyValue; 4] {
    [
        KeyValue::new("http.request.method", "GET"),
        KeyValue::new("http.route", "/checkout"),
        KeyValue::new("http.response.status_code", 200),
        KeyValue::new("tracelab.origin", i as i64),
    ]
}

fn span_cost(c: &mut Criterion) {
    // The batch processor's worker runs on this runtime, on its own thread, as in a service.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let _guard = runtime.enter();

    let mut group = c.benchmark_group("span");
    let (sampled, counters) = provider(Sampler::AlwaysOn);
    let tracer = sampled.tracer("tracelab");
    let mut i = 0u64;
    group.bench_function("root: start + 4 attributes + end + enqueue", |b| {
        b.iter(|| {
            i += 1;
            let mut span = tracer
                .span_builder("GET /checkout")
                .with_kind(SpanKind::Server)
                .start(&tracer);
            for kv in attributes(i) {
                span.set_attribute(kv);
            }
            span.end();
        })
    });
    let parent = tracer.start("parent");
    let parent_cx = Context::new().with_span(parent);
    group.bench_function("child: start + 4 attributes + end + enqueue", |b| {
        b.iter(|| {
            i += 1;
            let mut span = tracer
                .span_builder("POST /charge")
                .with_kind(SpanKind::Client)
                .start_with_context(&tracer, &parent_cx);
            for kv in attributes(i) {
                span.set_attribute(kv);
            }
            span.end();
        })
    });

    // The same span with no processor at all: what the SDK's span itself costs, so the
    // hand-off to the queue can be read as the difference.
    let bare = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .build();
    let bare_tracer = bare.tracer("tracelab");
    group.bench_function("root without a processor", |b| {
        b.iter(|| {
            i += 1;
            let mut span = bare_tracer.start("GET /checkout");
            for kv in attributes(i) {
                span.set_attribute(kv);
            }
            span.end();
        })
    });

    // Head sampling at 1/16: what an unsampled span still costs (ids, the sampler, no export).
    let (ratio, _) = provider(Sampler::TraceIdRatioBased(1.0 / 16.0));
    let ratio_tracer = ratio.tracer("tracelab");
    group.bench_function("root at 1/16 sampling", |b| {
        b.iter(|| {
            i += 1;
            let mut span = ratio_tracer.start("GET /checkout");
            for kv in attributes(i) {
                span.set_attribute(kv);
            }
            span.end();
        })
    });
    group.finish();

    let _ = sampled.force_flush();
    let stats = counters.snapshot();
    // A queue that overflowed would make the figure a measure of dropping, not of recording.
    eprintln!(
        "spans ended {}, exported {}, dropped {}",
        stats.ended,
        stats.exported,
        stats.dropped()
    );
    let _ = sampled.shutdown();
    let _ = ratio.shutdown();
}

criterion_group!(benches, span_cost);
criterion_main!(benches);
