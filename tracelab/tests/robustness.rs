//! The lab survives what it simulates.
//!
//! - Backend faults: the OTLP endpoint is absent at start, comes up, is killed mid-run and
//!   restarted. The services keep answering every request, lost spans are counted while the
//!   backend is down, and export resumes into the restarted receiver. A backend that accepts
//!   connections and never answers fills the bounded queue: spans are dropped and counted,
//!   requests are not slowed down, and shutdown returns within its timeout.
//! - Service faults: `tracelab svc` processes form a chain; the leaf is killed mid-run, the
//!   caller keeps answering (502, recorded on its spans) and the other services stay up.
//! - A backend too slow to answer: spans whose export timed out at the exporter yet arrived
//!   are found by the receiver's tally per `service.instance.id`.
//! - No loss at a graceful end: a high-rate `run_lab` of a 3-hop chain reports as many spans
//!   received as exported, and none lost.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, run_lab};
use tracelab_receiver::{Receiver, ReceiverConfig, TraceStore};
use tracelab_scenario::Scenario;
use tracelab_services::{HostOptions, ServiceHost};
use tracelab_telemetry::{BatchSettings, ExportConfig, ExportStats, OtlpProtocol};
use tracelab_trace::{SpanKind, StatusCode};

/// A 3-hop chain: front calls mid, mid calls leaf. Latencies are small so a request costs
/// little more than its spans and its three HTTP hops.
const CHAIN: &str = include_str!("data/chain.yaml");

fn chain(rate: f64, duration: Duration) -> Scenario {
    let mut scenario = tracelab_scenario::parse(CHAIN, "chain.yaml").expect("the chain parses");
    scenario.load.rate = rate;
    scenario.load.duration = duration;
    scenario
}

/// The 3-hop chain's services, exporting to `endpoint` over `protocol` with `batch`.
async fn chain_exporting_to(
    endpoint: String,
    protocol: OtlpProtocol,
    batch: BatchSettings,
) -> ServiceHost {
    let mut export = ExportConfig::new(endpoint, protocol);
    export.batch = batch;
    ServiceHost::start(
        Arc::new(chain(10.0, Duration::from_secs(1))),
        &HostOptions {
            export: Some(export),
            ..HostOptions::default()
        },
    )
    .await
    .expect("services start")
}

/// A loopback port nobody listens on right now, for a server that must come back on the same
/// port later. It is taken below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`): a port from `bind(0)` is in that range, and so is the
/// local port of every outgoing connection, so while the server is down (the very case these
/// tests make) any connection the tests open could take it, and the restart would fail.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|low| *low > 20_000);
    let Some(low) = ephemeral_low else {
        return StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
    };
    // Spread over 10,000 ports below the range, from a start that differs per process.
    let span = 10_000;
    let start = std::process::id().wrapping_mul(7_919);
    (0..span)
        .map(|_| {
            let n = start.wrapping_add(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            u16::try_from(low - span + n % span).expect("a port number")
        })
        .find(|port| StdListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free loopback port below the ephemeral range")
}

fn fixed_receiver_config() -> ReceiverConfig {
    ReceiverConfig {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        http_addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
        ..ReceiverConfig::ephemeral()
    }
}

/// What a burst of requests saw.
#[derive(Debug)]
struct Burst {
    ok: u64,
    failed: u64,
    /// The slowest request.
    max_latency: Duration,
    /// Requests per second over the burst.
    rate: f64,
}

/// Sends `count` GET requests to `url` from `workers` concurrent loops (closed loop).
async fn burst(client: &reqwest::Client, url: &str, count: u64, workers: u64) -> Burst {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = client.clone();
        let url = url.to_string();
        let share = count / workers + u64::from(w < count % workers);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut max) = (0u64, 0u64, Duration::ZERO);
            for _ in 0..share {
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => ok += 1,
                    _ => failed += 1,
                }
                max = max.max(t.elapsed());
            }
            (ok, failed, max)
        }));
    }
    let mut out = Burst {
        ok: 0,
        failed: 0,
        max_latency: Duration::ZERO,
        rate: 0.0,
    };
    for t in tasks {
        let (ok, failed, max) = t.await.expect("a request loop");
        out.ok += ok;
        out.failed += failed;
        out.max_latency = out.max_latency.max(max);
    }
    out.rate = count as f64 / started.elapsed().as_secs_f64();
    out
}

fn delta(after: ExportStats, before: ExportStats) -> ExportStats {
    ExportStats {
        ended: after.ended - before.ended,
        exported: after.exported - before.exported,
        failed: after.failed - before.failed,
        queue_full: after.queue_full - before.queue_full,
    }
}

/// Waits until `done` holds, polling; false after `timeout`.
async fn eventually(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// Once a backend is (back) up: sends one request at a time until spans reach `store`, then
/// waits until the exporters hold no span. An export already under way when the backend came
/// up can still fail, and its spans are counted failed; what is sent after this returns goes to
/// a backend the exporters have reached. False when no span arrives within `timeout`.
async fn until_exporting(
    host: &ServiceHost,
    client: &reqwest::Client,
    url: &str,
    store: &TraceStore,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    let first = store.span_count();
    while Instant::now() < deadline {
        let _ = client.get(url).send().await;
        if store
            .wait_for_spans(first + 1, Duration::from_millis(500))
            .await
        {
            let left = deadline.saturating_duration_since(Instant::now());
            return eventually(left, || host.export_stats().queued() == 0).await;
        }
    }
    false
}

/// With a backend (back) up and storing into `store`: export resumes (see
/// [`until_exporting`]), then every span of a burst of `requests` requests is stored. The burst,
/// and what the exporters counted during it.
async fn export_resumes(
    host: &ServiceHost,
    client: &reqwest::Client,
    url: &str,
    store: &TraceStore,
    requests: u64,
) -> (Burst, ExportStats) {
    assert!(
        until_exporting(host, client, url, store, Duration::from_secs(15)).await,
        "export resumes once the backend is up: {} spans stored, {:?}",
        store.span_count(),
        host.export_stats()
    );
    let stored = store.span_count();
    let before = host.export_stats();
    let sent = burst(client, url, requests, 4).await;
    assert!(
        store
            .wait_for_spans(stored + 5 * requests, Duration::from_secs(15))
            .await,
        "every span of the requests sent once export resumed is stored: {} of {}, {:?}",
        store.span_count() - stored,
        5 * requests,
        delta(host.export_stats(), before)
    );
    (sent, delta(host.export_stats(), before))
}

async fn backend_absent_killed_and_restarted(protocol: OtlpProtocol) {
    let config = fixed_receiver_config();
    let endpoint = match protocol {
        OtlpProtocol::Grpc => format!("http://{}", config.grpc_addr),
        OtlpProtocol::HttpProtobuf => format!("http://{}", config.http_addr),
    };
    let host = chain_exporting_to(
        endpoint,
        protocol,
        BatchSettings {
            max_queue_size: 256,
            max_export_batch_size: 64,
            scheduled_delay: Duration::from_millis(50),
            export_timeout: Duration::from_secs(2),
        },
    )
    .await;
    let url = format!("{}/", host.peers().url("front").expect("front is hosted"));
    let client = reqwest::Client::new();
    let requests = 150;

    // 1. No backend at all: every request is still answered, and the spans are counted lost.
    let before = host.export_stats();
    let absent = burst(&client, &url, requests, 4).await;
    assert_eq!(absent.ok, requests, "backend absent: {absent:?}");
    let settled = eventually(Duration::from_secs(10), || {
        delta(host.export_stats(), before).failed > 0
    })
    .await;
    let down = delta(host.export_stats(), before);
    assert!(settled, "failed exports are counted: {down:?}");
    assert!(
        down.ended >= 5 * requests,
        "every hop ended its spans: {down:?}"
    );
    assert_eq!(down.exported, 0, "nothing can be exported: {down:?}");

    // 2. The backend comes up: export starts without restarting anything.
    let store = Arc::new(TraceStore::new());
    let receiver = Receiver::start(config.clone(), store.clone())
        .await
        .expect("the receiver starts on its fixed ports");
    let (up, exported_up) = export_resumes(&host, &client, &url, &store, requests).await;
    assert_eq!(up.ok, requests, "backend up: {up:?}");

    // 3. The backend is killed mid-run: requests keep succeeding, failures are counted.
    receiver.shutdown().await;
    let before = host.export_stats();
    let killed = burst(&client, &url, requests, 4).await;
    assert_eq!(killed.ok, requests, "backend killed: {killed:?}");
    let settled = eventually(Duration::from_secs(10), || {
        delta(host.export_stats(), before).failed > 0
    })
    .await;
    assert!(
        settled,
        "lost spans are counted after the kill: {:?}",
        delta(host.export_stats(), before)
    );

    // 4. Restarted (a new, empty store): export resumes.
    let restarted = Arc::new(TraceStore::new());
    let receiver = Receiver::start(config, restarted.clone())
        .await
        .expect("the receiver restarts on the same ports");
    let (again, _) = export_resumes(&host, &client, &url, &restarted, requests).await;
    assert_eq!(again.ok, requests, "backend restarted: {again:?}");

    // The service kept its pace while the backend was away. The bound is loose because a
    // shared CI machine is noisy; an exporter that blocked requests would miss it by far.
    for (phase, b) in [
        ("absent", &absent),
        ("killed", &killed),
        ("restarted", &again),
    ] {
        assert!(
            b.rate >= 0.3 * up.rate,
            "{phase}: {:.0} req/s against {:.0} req/s with the backend up",
            b.rate,
            up.rate
        );
    }
    eprintln!(
        "{protocol:?}: req/s absent {:.0}, up {:.0}, killed {:.0}, restarted {:.0}; \
         exported while up {}",
        absent.rate, up.rate, killed.rate, again.rate, exported_up.exported
    );

    let stats: ExportStats = host
        .shutdown(Duration::from_secs(10))
        .await
        .into_iter()
        .map(|(_, s)| s)
        .sum();
    receiver.shutdown().await;
    assert!(stats.lost() > 0 && stats.exported > 0, "{stats:?}");
    assert_eq!(
        stats.exported,
        store.span_count() + restarted.span_count(),
        "every acknowledged span is in one of the two stores"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_backend_absent_killed_and_restarted() {
    backend_absent_killed_and_restarted(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_backend_absent_killed_and_restarted() {
    backend_absent_killed_and_restarted(OtlpProtocol::HttpProtobuf).await;
}

/// A loopback backend that hands every connection it accepts to `handle`, on a task of its own,
/// until the token is cancelled; those tasks are aborted then.
async fn fake_backend<F, Fut>(handle: F) -> (SocketAddr, CancellationToken)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        // Dropped when the loop ends, which aborts every connection's task.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = until.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, _)) => {
                        connections.spawn(handle(socket));
                    }
                    Err(_) => break,
                },
            }
        }
    });
    (addr, stop)
}

/// Accepts TCP connections and never answers: the worst backend, one that makes every export
/// wait for its timeout.
async fn black_hole() -> (SocketAddr, CancellationToken) {
    fake_backend(|socket| async move {
        // Keeping the socket open (and unread) is what makes the exporter wait.
        let _held = socket;
        std::future::pending::<()>().await
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_backend_fills_the_bounded_queue_without_slowing_requests() {
    let (addr, stop) = black_hole().await;
    let queue = 64u64;
    let batch = 16u64;
    let host = chain_exporting_to(
        format!("http://{addr}"),
        OtlpProtocol::HttpProtobuf,
        BatchSettings {
            max_queue_size: queue as usize,
            max_export_batch_size: batch as usize,
            scheduled_delay: Duration::from_millis(20),
            export_timeout: Duration::from_secs(3),
        },
    )
    .await;
    let url = format!("{}/", host.peers().url("front").expect("front is hosted"));
    let client = reqwest::Client::new();
    let requests = 300;
    let hung = burst(&client, &url, requests, 4).await;
    assert_eq!(hung.ok, requests, "{hung:?}");
    // An exporter that blocked the request path would make requests wait for the export
    // timeout (3 s).
    assert!(
        hung.max_latency < Duration::from_secs(2),
        "no request waits for the exporter: {hung:?}"
    );

    // Every provider holds at most one queue and one batch in flight; the rest is dropped. The
    // shutdown budget is shorter than one export timeout, so it must not wait for the queue to
    // drain into the hung backend.
    let started = Instant::now();
    let per_service = host.shutdown(Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "shutdown honours its timeout against a hung backend: took {took:?}"
    );
    stop.cancel();
    eprintln!("hung backend: {hung:?}; shutdown took {took:?}; {per_service:?}");
    for (name, s) in per_service {
        assert_eq!(
            s.exported, 0,
            "{name}: nothing reaches a hung backend: {s:?}"
        );
        // Spans the provider could be holding: the queue, the batch being built and the batch
        // in flight. Everything beyond that was dropped rather than kept in memory.
        let held_at_most = queue + 2 * batch;
        assert!(
            s.ended > held_at_most,
            "{name}: the test overflows the queue: {s:?}"
        );
        assert!(
            s.dropped() + s.failed >= s.ended - held_at_most,
            "{name}: the queue stays bounded, overflow is dropped and counted: {s:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_against_a_hung_backend_returns_within_its_timeout() {
    let (addr, stop) = black_hole().await;
    let host = chain_exporting_to(
        format!("http://{addr}"),
        OtlpProtocol::Grpc,
        BatchSettings {
            max_queue_size: 4096,
            max_export_batch_size: 16,
            scheduled_delay: Duration::from_millis(20),
            export_timeout: Duration::from_secs(5),
        },
    )
    .await;
    let url = format!("{}/", host.peers().url("front").expect("front is hosted"));
    let sent = burst(&reqwest::Client::new(), &url, 40, 2).await;
    assert_eq!(sent.ok, 40, "{sent:?}");
    // The queue now holds several batches, each of which would wait 5 s for the hung backend.
    let started = Instant::now();
    let per_service = host.shutdown(Duration::from_millis(500)).await;
    let took = started.elapsed();
    stop.cancel();
    assert!(
        took < Duration::from_secs(3),
        "shutdown honours its timeout against a hung backend: took {took:?}, {per_service:?}"
    );
    for (name, s) in per_service {
        assert_eq!(s.exported, 0, "{name}: {s:?}");
        assert!(
            s.lost() > 0,
            "{name}: the stranded spans are counted lost: {s:?}"
        );
    }
}

/// Relays connections to `upstream` but never passes its answers back: every request arrives,
/// and every client waits for its timeout. A backend that is merely too slow to answer in time
/// looks the same to an exporter.
async fn answerless_relay(upstream: SocketAddr) -> (SocketAddr, CancellationToken) {
    fake_backend(move |mut client| async move {
        let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        let (mut answers, mut to_server) = server.into_split();
        // Requests go through; answers are read and thrown away.
        let forward = tokio::io::copy(&mut client, &mut to_server);
        let mut nowhere = tokio::io::sink();
        let discard = tokio::io::copy(&mut answers, &mut nowhere);
        let _ = tokio::join!(forward, discard);
    })
    .await
}

/// An exporter that gives up waiting for an answer counts its spans failed, yet they may have
/// arrived: the receiver's tally by `service.instance.id` says which did, and `tracelab run`
/// counts those delivered (`pipeline.spans_stored_late`), not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_whose_export_timed_out_but_arrived_are_told_apart_by_the_receiver() {
    let store = Arc::new(TraceStore::new());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .expect("the receiver starts");
    let (relay, stop) = answerless_relay(receiver.http_addr()).await;
    let host = chain_exporting_to(
        format!("http://{relay}"),
        OtlpProtocol::HttpProtobuf,
        BatchSettings {
            max_queue_size: 4096,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(20),
            export_timeout: Duration::from_millis(700),
        },
    )
    .await;
    let instances: Vec<String> = host
        .services()
        .iter()
        .map(|s| s.instance_id.clone())
        .collect();
    let url = format!("{}/", host.peers().url("front").expect("front is hosted"));
    let sent = burst(&reqwest::Client::new(), &url, 30, 2).await;
    assert_eq!(sent.ok, 30, "{sent:?}");
    let per_service = host.shutdown(Duration::from_secs(5)).await;
    eprintln!("{per_service:?}");
    let stats: ExportStats = per_service.into_iter().map(|(_, s)| s).sum();
    stop.cancel();
    assert!(
        stats.ended >= 5 * 30,
        "every hop ended its spans: {stats:?}"
    );
    assert_eq!(stats.exported, 0, "no answer ever came back: {stats:?}");
    assert_eq!(
        stats.failed, stats.ended,
        "every export timed out: {stats:?}"
    );
    assert!(
        store
            .wait_for_spans(stats.ended, Duration::from_secs(5))
            .await,
        "yet every span arrived: {} of {stats:?}",
        store.span_count()
    );
    let stored = store.spans_from_instances(instances.iter().map(String::as_str));
    assert_eq!(stored, stats.ended, "the tally by instance finds them all");
    assert_eq!(
        store.spans_from_instances(["some-other-process"]),
        0,
        "and only them"
    );
    receiver.shutdown().await;
}

/// A `tracelab svc` child process, killed on drop so a failing test leaves nothing behind.
struct SvcProcess {
    child: Child,
    url: String,
}

impl Drop for SvcProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_svc(
    file: &std::path::Path,
    service: &str,
    peers: &[(&str, &str)],
    otlp: &str,
) -> SvcProcess {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tracelab"));
    command
        .arg("svc")
        .arg(file)
        .args(["--service", service])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        // Each process's admin API on its own free port (the default port is shared).
        .env("TRACELAB_ADMIN_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, url) in peers {
        command.args(["--peer", &format!("{name}={url}")]);
    }
    let child = command.spawn().expect("tracelab svc starts");
    SvcProcess {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn wait_listening(svc: &SvcProcess) {
    let addr = svc.url.trim_start_matches("http://").to_string();
    let ok = eventually(Duration::from_secs(20), || {
        std::net::TcpStream::connect(&addr).is_ok()
    })
    .await;
    assert!(ok, "{} never started listening", svc.url);
}

/// Sends SIGTERM (what `docker stop` sends) and waits for the process to finish flushing.
fn terminate(mut svc: SvcProcess) -> (std::process::ExitStatus, String) {
    let pid = svc.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "SIGTERM sent to {pid}");
    let mut stderr = String::new();
    if let Some(mut pipe) = svc.child.stderr.take() {
        use std::io::Read as _;
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = svc.child.wait().expect("the service exits");
    (status, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_service_process_leaves_the_rest_serving() {
    let dir = std::env::temp_dir().join(format!("tracelab-robustness-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("chain.yaml");
    std::fs::write(&file, CHAIN).expect("scenario file");

    let store = Arc::new(TraceStore::new());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .expect("receiver");
    let otlp = receiver.grpc_endpoint();
    let leaf = spawn_svc(&file, "leaf", &[], &otlp);
    let mid = spawn_svc(&file, "mid", &[("leaf", &leaf.url)], &otlp);
    let front = spawn_svc(&file, "front", &[("mid", &mid.url)], &otlp);
    for svc in [&leaf, &mid, &front] {
        wait_listening(svc).await;
    }
    let client = reqwest::Client::new();
    let url = format!("{}/", front.url);

    let before = burst(&client, &url, 40, 2).await;
    assert_eq!(before.ok, 40, "the whole chain answers: {before:?}");

    // The leaf dies abruptly (SIGKILL: no flush, no goodbye).
    drop(leaf);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for _ in 0..40 {
        let response = client.get(&url).send().await.expect("front still answers");
        *statuses.entry(response.status().as_u16()).or_default() += 1;
    }
    assert_eq!(
        statuses.get(&502).copied(),
        Some(40),
        "every request answers 502 while the leaf is gone: {statuses:?}"
    );
    // `mid` itself is still up and answers its own route with the downstream failure.
    let mid_status = client
        .get(format!("{}/mid", mid.url))
        .send()
        .await
        .expect("mid still answers")
        .status();
    assert_eq!(mid_status.as_u16(), 502);

    // Graceful stop of the survivors: they flush and report their counts.
    for svc in [front, mid] {
        let (status, stderr) = terminate(svc);
        assert!(status.success(), "clean exit: {status:?}\n{stderr}");
        assert!(
            stderr.contains("lost 0"),
            "a graceful stop loses no span: {stderr}"
        );
    }
    // The failures are recorded on the survivors' spans: mid's CLIENT span to the dead leaf and
    // front's SERVER span both carry an error status.
    let ok = eventually(Duration::from_secs(10), || {
        let spans = store.spans();
        let failed_calls = spans
            .iter()
            .filter(|s| s.kind == SpanKind::Client && s.status.code == StatusCode::Error)
            .count();
        failed_calls >= 40
    })
    .await;
    let errors = store
        .spans()
        .iter()
        .filter(|s| s.status.code == StatusCode::Error)
        .count();
    assert!(
        ok,
        "the failed calls are on error spans: {errors} error spans"
    );
    receiver.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_end_at_full_capture_loses_no_span() {
    let out = std::env::temp_dir().join(format!("tracelab-no-loss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let scenario = chain(400.0, Duration::from_secs(3));
    let outcome = run_lab(
        RunOptions {
            scenario,
            scenario_source: CHAIN.to_string(),
            scenario_file: "chain.yaml".into(),
            out: out.clone(),
            protocol: OtlpProtocol::Grpc,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(30),
            // As `tracelab run` does: traces are analysed as they finish and not kept.
            keep_traces: false,
        },
        CancellationToken::new(),
    )
    .await
    .expect("the run succeeds");
    let report = &outcome.report;
    let spans = &report.pipeline;
    assert!(
        report.load.total >= 1_000,
        "the run is high-rate: {} requests",
        report.load.total
    );
    // Load generator root + front SERVER/CLIENT + mid SERVER/CLIENT + leaf SERVER.
    assert!(
        spans.spans_ended >= 6 * report.load.total,
        "every request's spans ended: {spans:?}"
    );
    assert_eq!(spans.spans_lost, 0, "{spans:?}");
    assert_eq!(spans.spans_exported, spans.spans_ended, "{spans:?}");
    assert_eq!(
        spans.spans_received,
        Some(spans.spans_exported),
        "{spans:?}"
    );
    assert_eq!(
        report.traces.as_ref().unwrap().broken,
        0,
        "{:?}",
        report.traces
    );
    // Assembled one at a time, every request is still one whole trace, counted once.
    assert_eq!(
        report.traces.as_ref().unwrap().received,
        report.load.total,
        "{:?}",
        report.traces
    );
    assert_eq!(outcome.analysis.overview.traces, report.load.total);
    assert_eq!(Some(outcome.analysis.overview.spans), spans.spans_received);
    // Only the traces the report opens are kept in memory.
    assert!(
        !outcome.traces.is_empty() && outcome.traces.len() <= 10,
        "{} traces kept",
        outcome.traces.len()
    );
    let _ = std::fs::remove_dir_all(&out);
}
