//! Tracing overhead, Dapper-style: a 3-hop chain (front → mid → leaf) saturated by a
//! closed-loop client, with head sampling at 1/1, 1/2, 1/4, 1/16, 1/1024 and with tracing off,
//! the modes alternating in short windows within one run so that machine noise hits them all
//! alike. Prints throughput, latency and the process's CPU time per request of each mode and
//! their change against tracing off, and the CPU time tracing costs per span. (Spans are
//! exported up to 200 ms after they end, so a small part of one window's export and receive
//! work lands in the next window's CPU time.)
//!
//! The chain injects no waits at all (every route's latency is the default `constant: 0`,
//! which does not wait), so a request costs only CPU: HTTP, routing and, when sampled,
//! tracing. A throughput ratio means something only when the chain saturates the cores it is
//! given; the example reads how busy the cores of its affinity mask were (`/proc/stat`) and how
//! much of that busy time was its own (the rest is mostly the kernel's loopback TCP work on its
//! behalf, and any other program), and refuses to print the ratio unless in every mode the
//! cores were at least 95 % busy and at least 85 % of that was this process (otherwise a timer,
//! a peer or another program would be what limits the throughput, not the chain).
//!
//! Run with `bash bench/overhead.sh` (release build, pinned with `taskset`), or
//! `cargo run --release -p tracelab --example overhead -- [ROUNDS] [WINDOW_SECONDS] [CLIENTS]`.
//!
//! The client is the root of every trace: it sends a `traceparent` whose sampled flag is set
//! with probability 1/N, and the services follow it (parent-based sampling), as they follow the
//! load generator in a lab run. "Off" is the same chain with no exporter and every request
//! unsampled. The OTLP receiver runs in this process (on the same cores), as in `tracelab run`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tracelab_receiver::{Receiver, ReceiverConfig, TraceStore};
use tracelab_services::{HostOptions, ServiceHost};
use tracelab_telemetry::{ExportConfig, ExportStats, OtlpProtocol};

const CHAIN: &str = r#"
name: overhead-chain
seed: 3
services:
  front:
    routes:
      /:
        steps:
          - {call: mid, route: /mid}
  mid:
    routes:
      /mid:
        steps:
          - {call: leaf, route: /leaf}
  leaf:
    routes:
      /leaf: {}
load:
  rate: 1
  duration: 1s
  entries:
    - {service: front, route: /}
"#;

/// One sampling mode: `None` is tracing off.
#[derive(Debug, Clone, Copy)]
struct Mode {
    one_in: Option<u64>,
}

impl Mode {
    fn label(&self) -> String {
        match self.one_in {
            None => "off".to_string(),
            Some(n) => format!("1/{n}"),
        }
    }
}

/// What one mode measured over all its windows.
struct Tally {
    requests: u64,
    errors: u64,
    busy: Duration,
    /// CPU time this process used during the mode's windows (services, client, receiver).
    cpu: Duration,
    /// Spans the mode's services ended during its windows.
    spans: u64,
    /// Busy and total time of the process's cores during the mode's windows, in clock ticks.
    cores_busy: u64,
    cores_total: u64,
    latency_us: Histogram<u64>,
}

/// How busy the process's cores must be in every mode for the ratio to be printed.
const SATURATED: f64 = 0.95;
/// The least share of that busy time that must be this process's own.
const OWN_SHARE: f64 = 0.85;

/// The CPUs this process may run on, from `Cpus_allowed_list` in /proc/self/status (Linux).
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(list) = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
    else {
        return Vec::new();
    };
    list.trim()
        .split(',')
        .flat_map(|range| {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            let (a, b) = (a.trim().parse().unwrap_or(0), b.trim().parse().unwrap_or(0));
            a..=b
        })
        .collect()
}

/// Busy and total clock ticks of `cpus` so far, from /proc/stat (idle and iowait are not busy).
fn cores_ticks(cpus: &[usize]) -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut busy = 0;
    let mut total = 0;
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields
            .next()
            .and_then(|name| name.strip_prefix("cpu"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&cpu) {
            continue;
        }
        let ticks: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
        let all: u64 = ticks.iter().sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        busy += all - idle;
        total += all;
    }
    (busy, total)
}

/// CPU time this process's threads have used so far, from each thread's `schedstat` (Linux);
/// zero elsewhere. Throughput depends on how much of the two cores other programs leave us;
/// CPU time per request does not, so it shows the cost of tracing on a shared machine too.
fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos = tasks
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(nanos)
}

/// splitmix64, enough for trace ids and sampling draws.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn histogram() -> Histogram<u64> {
    // Three significant digits, auto-resizing: cannot fail.
    Histogram::new(3).unwrap_or_else(|_| unreachable!())
}

/// Drives `url` from `clients` closed loops for `span`; returns requests, errors and the
/// latency histogram in microseconds.
async fn window(
    client: &reqwest::Client,
    url: &str,
    mode: Mode,
    clients: u64,
    span: Duration,
    seed: u64,
) -> (u64, u64, Histogram<u64>) {
    let deadline = Instant::now() + span;
    let errors = Arc::new(AtomicU64::new(0));
    let mut loops = tokio::task::JoinSet::new();
    for c in 0..clients {
        let client = client.clone();
        let url = url.to_string();
        let errors = errors.clone();
        loops.spawn(async move {
            let mut rng = seed ^ (c + 1).wrapping_mul(0x5851_f42d_4c95_7f2d);
            let mut latency = histogram();
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let sampled = mode
                    .one_in
                    .is_some_and(|n| next(&mut rng).is_multiple_of(n));
                let traceparent = format!(
                    "00-{:016x}{:016x}-{:016x}-{}",
                    next(&mut rng),
                    next(&mut rng),
                    next(&mut rng) | 1,
                    if sampled { "01" } else { "00" }
                );
                let t = Instant::now();
                let ok = client
                    .get(&url)
                    .header("traceparent", traceparent)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let _ = latency.record(t.elapsed().as_micros() as u64);
                sent += 1;
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            (sent, latency)
        });
    }
    let mut total = 0;
    let mut latency = histogram();
    while let Some(Ok((sent, h))) = loops.join_next().await {
        total += sent;
        let _ = latency.add(h);
    }
    (total, errors.load(Ordering::Relaxed), latency)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: u64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let window_s: f64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let clients: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(16);
    let modes =
        [None, Some(1), Some(2), Some(4), Some(16), Some(1024)].map(|one_in| Mode { one_in });

    let scenario = Arc::new(
        tracelab_scenario::parse(CHAIN, "overhead.yaml").map_err(|d| anyhow::anyhow!("{d:?}"))?,
    );
    let store = Arc::new(TraceStore::new());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone()).await?;
    // One host per mode, all started up front: the modes then differ only in sampling.
    let mut hosts = Vec::new();
    for mode in &modes {
        let export = mode
            .one_in
            .map(|_| ExportConfig::new(receiver.grpc_endpoint(), OtlpProtocol::Grpc));
        let host = ServiceHost::start(
            scenario.clone(),
            &HostOptions {
                export,
                ..HostOptions::default()
            },
        )
        .await?;
        hosts.push(host);
    }
    let ended = |host: &ServiceHost| -> u64 {
        host.services()
            .iter()
            .map(|s| s.telemetry.stats().ended)
            .sum()
    };
    // The cores this process may run on (its `taskset` mask).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpus = allowed_cpus();
    let urls: Vec<String> = hosts
        .iter()
        .map(|h| format!("{}/", h.peers().url("front").unwrap_or_default()))
        .collect();
    let client = reqwest::Client::new();
    let mut tallies: Vec<Tally> = modes
        .iter()
        .map(|_| Tally {
            requests: 0,
            errors: 0,
            busy: Duration::ZERO,
            cpu: Duration::ZERO,
            spans: 0,
            cores_busy: 0,
            cores_total: 0,
            latency_us: histogram(),
        })
        .collect();
    // A warm-up window per mode: connections, allocator, the receiver's first growth.
    for (i, mode) in modes.iter().enumerate() {
        window(
            &client,
            &urls[i],
            *mode,
            clients,
            Duration::from_millis(500),
            1,
        )
        .await;
    }
    let span = Duration::from_secs_f64(window_s);
    for round in 0..rounds {
        for k in 0..modes.len() {
            // Rotating the order each round keeps any drift from favouring one mode.
            let i = (k + round as usize) % modes.len();
            let started = Instant::now();
            let cpu_before = process_cpu();
            let spans_before = ended(&hosts[i]);
            let ticks_before = cores_ticks(&cpus);
            let seed = round * 7919 + i as u64;
            let (n, errors, h) = window(&client, &urls[i], modes[i], clients, span, seed).await;
            let t = &mut tallies[i];
            t.busy += started.elapsed();
            t.cpu += process_cpu().saturating_sub(cpu_before);
            t.spans += ended(&hosts[i]).saturating_sub(spans_before);
            let ticks_after = cores_ticks(&cpus);
            t.cores_busy += ticks_after.0.saturating_sub(ticks_before.0);
            t.cores_total += ticks_after.1.saturating_sub(ticks_before.1);
            t.requests += n;
            t.errors += errors;
            let _ = t.latency_us.add(h);
        }
    }

    let base = &tallies[0];
    let base_rate = base.requests as f64 / base.busy.as_secs_f64();
    let base_mean = base.latency_us.mean();
    let cpu_per_request = |t: &Tally| t.cpu.as_secs_f64() * 1e6 / t.requests.max(1) as f64;
    let utilisation = |t: &Tally| t.cpu.as_secs_f64() / (t.busy.as_secs_f64() * cores as f64);
    let cores_busy = |t: &Tally| t.cores_busy as f64 / t.cores_total.max(1) as f64;
    let own_share = |t: &Tally| utilisation(t) / cores_busy(t).max(f64::MIN_POSITIVE);
    let base_cpu = cpu_per_request(base);
    println!(
        "3-hop chain, no injected waits, {clients} closed-loop clients, {rounds} rounds of {window_s} s windows per mode, receiver in process, {cores} core(s)"
    );
    println!(
        "{:<8} {:>10} {:>11} {:>12} {:>11} {:>10} {:>8} {:>7} {:>7} {:>11} {:>9} {:>9} {:>12}",
        "sampling",
        "req/s",
        "Δ req/s",
        "mean lat ms",
        "Δ latency",
        "p99 ms",
        "errors",
        "busy %",
        "own %",
        "CPU µs/req",
        "Δ CPU",
        "spans/req",
        "CPU µs/span"
    );
    for (mode, t) in modes.iter().zip(&tallies) {
        let rate = t.requests as f64 / t.busy.as_secs_f64();
        let mean = t.latency_us.mean();
        let cpu = cpu_per_request(t);
        let spans_per_request = t.spans as f64 / t.requests.max(1) as f64;
        // What tracing adds per request, spread over the spans it recorded; at the sparse
        // rates the few spans would carry all of the noise, so only from one span in two.
        let per_span = if spans_per_request >= 0.5 {
            format!("{:.2}", (cpu - base_cpu) / spans_per_request)
        } else {
            "-".to_string()
        };
        println!(
            "{:<8} {:>10.0} {:>+10.2}% {:>12.3} {:>+10.2}% {:>10.3} {:>8} {:>6.1}% {:>6.1}% {:>11.1} {:>+8.2}% {:>9.2} {:>12}",
            mode.label(),
            rate,
            100.0 * (rate / base_rate - 1.0),
            mean / 1000.0,
            100.0 * (mean / base_mean - 1.0),
            t.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
            t.errors,
            100.0 * cores_busy(t),
            100.0 * own_share(t),
            cpu,
            100.0 * (cpu / base_cpu - 1.0),
            spans_per_request,
            per_span
        );
    }
    let full = &tallies[1];
    let least_busy = tallies.iter().map(cores_busy).fold(f64::INFINITY, f64::min);
    let least_own = tallies.iter().map(own_share).fold(f64::INFINITY, f64::min);
    if least_busy < SATURATED || least_own < OWN_SHARE {
        println!(
            "NOT SATURATED: in some mode the {cores} core(s) were only {:.1} % busy (need {:.0} %) or only {:.1} % of that was this process (need {:.0} %): something other than the chain limited throughput (another program on these cores, too few clients); no ratio printed. Pin the run to idle cores (bench/overhead.sh does) or add clients.",
            100.0 * least_busy,
            100.0 * SATURATED,
            100.0 * least_own,
            100.0 * OWN_SHARE
        );
    } else {
        let ratio = (full.requests as f64 / full.busy.as_secs_f64()) / base_rate;
        println!(
            "saturated: in every mode the {cores} core(s) were >= {:.1} % busy, >= {:.1} % of that this process",
            100.0 * least_busy,
            100.0 * least_own
        );
        println!(
            "throughput at 1/1 = {ratio:.3} × tracing off (target >= 0.90): {}; CPU per request at 1/1 = {:+.1} % ({:.2} µs per span)",
            if ratio >= 0.90 { "met" } else { "NOT met" },
            100.0 * (cpu_per_request(full) / base_cpu - 1.0),
            (cpu_per_request(full) - base_cpu) / (full.spans as f64 / full.requests.max(1) as f64)
        );
    }
    let mut stats = ExportStats::default();
    for host in hosts {
        let per_service = host.shutdown(Duration::from_secs(15)).await;
        stats = stats + per_service.into_iter().map(|(_, s)| s).sum::<ExportStats>();
    }
    store
        .wait_for_spans(stats.exported, Duration::from_secs(15))
        .await;
    println!(
        "spans ended {}, exported {}, lost {}, received {}",
        stats.ended,
        stats.exported,
        stats.lost(),
        store.span_count()
    );
    receiver.shutdown().await;
    Ok(())
}
