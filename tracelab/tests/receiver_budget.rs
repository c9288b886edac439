//! The receiver's memory stays bounded under a burst of the largest bodies it accepts: sixteen
//! 16 MiB OTLP bodies at once, half over each protocol, keep a running `tracelab run` under
//! 512 MB, and every sender sees an answer it can act on — accepted, or refused with the status
//! OTLP exporters retry (HTTP 429 with `Retry-After`, gRPC `RESOURCE_EXHAUSTED` with
//! `RetryInfo`) — never a dropped connection. Retrying as exporters do, every body gets in.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// Largest body the receiver accepts.
const LIMIT: usize = 16 * 1024 * 1024;

/// A valid export request just under the limit: many one-span traces with some attributes.
fn big_request(salt: u8) -> Vec<u8> {
    let attribute = |key: &str, value: String| KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    };
    let mut spans = Vec::new();
    let mut size = 0;
    let mut n: u64 = 0;
    while size < LIMIT - 64 * 1024 {
        n += 1;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&n.to_be_bytes());
        trace_id[15] = salt.max(1);
        let span = Span {
            trace_id: trace_id.to_vec(),
            span_id: (n | 1 << 63).to_be_bytes().to_vec(),
            name: "GET /burst".to_string(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + n,
            end_time_unix_nano: 1_700_000_000_000_100_000 + n,
            attributes: vec![
                attribute("http.route", "/burst".into()),
                attribute(
                    "tracelab.test",
                    format!("a burst span of body {salt}, number {n}"),
                ),
            ],
            ..Default::default()
        };
        size += span.encoded_len() + 4;
        spans.push(span);
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", "burst".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let bytes = request.encode_to_vec();
    assert!(bytes.len() <= LIMIT, "{} bytes", bytes.len());
    bytes
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn peak_rss_mb(child: &Child) -> f64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What one sender saw.
#[derive(Debug)]
enum Seen {
    Accepted,
    RetryLater,
    Other(String),
}

/// Sends until accepted, waiting the one second the receiver asks for after each refusal, as
/// an OTLP exporter with retries does; returns every answer seen.
async fn retrying<F, S>(mut send: S) -> Vec<Seen>
where
    S: FnMut() -> F,
    F: std::future::Future<Output = Seen>,
{
    let mut seen = Vec::new();
    for _ in 0..60 {
        let answer = send().await;
        let again = matches!(answer, Seen::RetryLater);
        seen.push(answer);
        if !again {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_the_largest_bodies_is_slowed_down_not_dropped() {
    let (grpc, http) = (free_port(), free_port());
    let out = std::env::temp_dir().join(format!("tracelab-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chain.yaml");
    let mut lab = Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .arg("run")
        .arg(&scenario)
        .args(["--rate", "1", "--duration", "120s", "--no-progress"])
        .args(["--otlp-grpc", &format!("127.0.0.1:{grpc}")])
        .args(["--otlp-http", &format!("127.0.0.1:{http}")])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tracelab run");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", http)).is_err()
        || !out.join("requests.jsonl").exists()
    {
        assert!(Instant::now() < deadline, "the lab did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let baseline = peak_rss_mb(&lab);

    let bodies: Vec<Vec<u8>> = (0..8u8).map(big_request).collect();
    let client = reqwest::Client::new();
    let http_sends = bodies.iter().map(|body| {
        let client = client.clone();
        let body = body.clone();
        retrying(move || {
            let client = client.clone();
            let body = body.clone();
            async move {
                match client
                    .post(format!("http://127.0.0.1:{http}/v1/traces"))
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => Seen::Accepted,
                    Ok(r) if r.status() == 429 && r.headers().contains_key("retry-after") => {
                        Seen::RetryLater
                    }
                    Ok(r) => Seen::Other(format!("HTTP {}", r.status())),
                    Err(e) => Seen::Other(format!("HTTP error: {e}")),
                }
            }
        })
    });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("gRPC connection");
    let grpc_sends = bodies.iter().map(|body| {
        let client = TraceServiceClient::new(channel.clone())
            .max_encoding_message_size(LIMIT + 1024)
            .max_decoding_message_size(LIMIT + 1024);
        let request = ExportTraceServiceRequest::decode(body.as_slice()).expect("decodes");
        retrying(move || {
            let mut client = client.clone();
            let request = request.clone();
            async move {
                match client.export(request).await {
                    Ok(_) => Seen::Accepted,
                    Err(status)
                        if status.code() == tonic::Code::ResourceExhausted
                            && !status.details().is_empty() =>
                    {
                        Seen::RetryLater
                    }
                    Err(status) => Seen::Other(format!("gRPC {status:?}")),
                }
            }
        })
    });
    let (over_http, over_grpc) = tokio::join!(
        futures::future::join_all(http_sends),
        futures::future::join_all(grpc_sends)
    );
    let peak = peak_rss_mb(&lab);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(lab.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = lab.wait();
    let _ = std::fs::remove_dir_all(&out);

    let all: Vec<&Seen> = over_http
        .iter()
        .chain(over_grpc.iter())
        .flat_map(|tries| tries.iter())
        .collect();
    let others: Vec<&str> = all
        .iter()
        .filter_map(|s| match s {
            Seen::Other(what) => Some(what.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        others.is_empty(),
        "every sender got an answer it can act on: {others:?}"
    );
    let accepted = all.iter().filter(|s| matches!(s, Seen::Accepted)).count();
    let refused = all.iter().filter(|s| matches!(s, Seen::RetryLater)).count();
    assert!(accepted >= 2, "{accepted} accepted, {refused} refused");
    assert!(
        refused >= 1,
        "the budget never engaged: {accepted} accepted"
    );
    println!(
        "baseline {baseline:.0} MB, peak {peak:.0} MB; {accepted} accepted, {refused} refused"
    );
    assert!(
        peak < 512.0,
        "peak RSS {peak:.0} MB (baseline {baseline:.0} MB)"
    );
}
