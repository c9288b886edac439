//! The sending half of the ingest benchmark: batches of 512 realistic spans (a resource of
//! five attributes, nine span attributes, one event on every eighth span, fresh ids in every
//! batch) sent to `ingest_receiver` over OTLP/gRPC, then over OTLP/HTTP (protobuf), with a few
//! requests in flight, as several exporters would. It prints spans per second for each
//! transport, the same per second of the receiver's own CPU time (what one core ingests when the
//! machine is shared), and the receiver's resident memory per stored span, read from `/proc`.
//!
//! Run with `bash bench/receiver-ingest.sh`. By hand:
//! `cargo run --release -p tracelab-receiver --example ingest_sender -- RECEIVER_PID http://127.0.0.1:14317 http://127.0.0.1:14318/v1/traces [BATCHES] [IN_FLIGHT]`

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message as _;

const BATCH: usize = 512;
/// Spans per simulated trace: a batch holds 64 whole traces.
const TRACE_LEN: usize = 8;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}

/// splitmix64: fast, good enough to make every id distinct.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One export request of [`BATCH`] spans with ids no other batch uses.
fn batch(seed: u64) -> ExportTraceServiceRequest {
    let mut rng = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let routes = ["/", "/checkout", "/cart", "/product/{id}"];
    let now = 1_764_000_000_000_000_000u64 + seed * 1_000_000;
    let mut spans = Vec::with_capacity(BATCH);
    let mut trace_id = Vec::new();
    let mut parent: Vec<u8> = Vec::new();
    for i in 0..BATCH {
        if i % TRACE_LEN == 0 {
            trace_id = [next(&mut rng).to_le_bytes(), next(&mut rng).to_le_bytes()].concat();
            parent.clear();
        }
        let span_id = next(&mut rng).to_le_bytes().to_vec();
        let route = routes[i % routes.len()];
        let server = i % 2 == 0;
        let start = now + (i as u64) * 1_000;
        let events = if i % 8 == 7 {
            vec![span::Event {
                time_unix_nano: start + 500,
                name: "retry".to_string(),
                attributes: vec![int("attempt", 2)],
                dropped_attributes_count: 0,
            }]
        } else {
            Vec::new()
        };
        spans.push(Span {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            trace_state: String::new(),
            parent_span_id: parent.clone(),
            flags: 0x301,
            name: format!("GET {route}"),
            kind: if server {
                span::SpanKind::Server as i32
            } else {
                span::SpanKind::Client as i32
            },
            start_time_unix_nano: start,
            end_time_unix_nano: start + 2_000_000 + (next(&mut rng) % 5_000_000),
            attributes: vec![
                text("http.request.method", "GET"),
                text("http.route", route),
                text("url.path", route),
                text("url.scheme", "http"),
                int("http.response.status_code", 200),
                text("server.address", "checkout"),
                int("server.port", 8080),
                text("network.protocol.version", "1.1"),
                text("tracelab.origin", &format!("{seed}/{i}")),
            ],
            dropped_attributes_count: 0,
            events,
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Some(Status::default()),
        });
        parent = span_id;
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "checkout"),
                    text("service.version", "1.4.2"),
                    text("service.instance.id", "5f1c9a7e3b2d4c10"),
                    text("telemetry.sdk.name", "opentelemetry"),
                    text("telemetry.sdk.language", "rust"),
                ],
                dropped_attributes_count: 0,
                entity_refs: Vec::new(),
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "tracelab".to_string(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn rss_bytes(pid: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS line")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .ok_or("empty VmRSS line")?
        .parse()?;
    Ok(kib * 1024)
}

/// CPU time the receiver's threads have used, in nanoseconds (the first field of each
/// thread's `schedstat`). On a shared machine the receiver does not get its core to itself,
/// so spans per second of its CPU time is the figure that says what one core can ingest.
fn cpu_nanos(pid: &str) -> Result<u64, Error> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread may end between the listing and the read; it no longer counts.
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .ok_or("empty schedstat")?
                .parse::<u64>()?;
        }
    }
    Ok(total)
}

#[derive(Clone, Copy)]
enum Transport {
    Grpc,
    Http,
}

/// Sends `batches` requests from `in_flight` concurrent loops; returns the elapsed time.
async fn send(
    transport: Transport,
    grpc: &str,
    http: &str,
    first_seed: u64,
    batches: u64,
    in_flight: u64,
) -> Result<Duration, Error> {
    let channel = tonic::transport::Endpoint::from_shared(grpc.to_string())?
        .connect()
        .await?;
    let http_client = reqwest::Client::new();
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for l in 0..in_flight {
        let mut grpc_client =
            TraceServiceClient::new(channel.clone()).max_encoding_message_size(64 << 20);
        let http_client = http_client.clone();
        let http = http.to_string();
        loops.spawn(async move {
            let mut seed = first_seed + l;
            while seed < first_seed + batches {
                let request = batch(seed);
                match transport {
                    Transport::Grpc => {
                        grpc_client.export(request).await?;
                    }
                    Transport::Http => {
                        let response = http_client
                            .post(&http)
                            .header("content-type", "application/x-protobuf")
                            .body(request.encode_to_vec())
                            .send()
                            .await?;
                        if !response.status().is_success() {
                            return Err::<(), Error>(
                                format!("HTTP export answered {}", response.status()).into(),
                            );
                        }
                    }
                }
                seed += in_flight;
            }
            Ok(())
        });
    }
    while let Some(done) = loops.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(pid), Some(grpc), Some(http)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(
            "usage: ingest_sender RECEIVER_PID GRPC_URL HTTP_TRACES_URL [BATCHES] [IN_FLIGHT]"
                .into(),
        );
    };
    let batches: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let in_flight: u64 = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let encoded = batch(0).encode_to_vec().len();
    println!(
        "batches of {BATCH} spans ({encoded} bytes of protobuf, {} bytes a span), {batches} batches per transport, {in_flight} in flight",
        encoded / BATCH
    );

    // Warm-up: connections, allocator, the store's first growth.
    send(Transport::Grpc, grpc, http, 1 << 40, 20, in_flight).await?;
    let base_rss = rss_bytes(pid)?;
    let mut stored = 0u64;
    let mut seed = 0u64;
    for (name, transport) in [
        ("OTLP/gRPC", Transport::Grpc),
        ("OTLP/HTTP", Transport::Http),
    ] {
        let cpu_before = cpu_nanos(pid)?;
        let took = send(transport, grpc, http, seed, batches, in_flight).await?;
        let cpu = Duration::from_nanos(cpu_nanos(pid)?.saturating_sub(cpu_before));
        seed += batches;
        let spans = batches * BATCH as u64;
        stored += spans;
        println!(
            "{name:<10} {spans} spans in {:.2} s: {:.0} spans/s; receiver CPU {:.2} s: {:.0} spans per CPU-second ({:.2} µs a span)",
            took.as_secs_f64(),
            spans as f64 / took.as_secs_f64(),
            cpu.as_secs_f64(),
            spans as f64 / cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / spans as f64
        );
    }
    let rss = rss_bytes(pid)?;
    println!(
        "receiver RSS {:.1} MiB -> {:.1} MiB for {stored} stored spans: {:.0} bytes per stored span",
        base_rss as f64 / 1048576.0,
        rss as f64 / 1048576.0,
        rss.saturating_sub(base_rss) as f64 / stored as f64
    );
    Ok(())
}
