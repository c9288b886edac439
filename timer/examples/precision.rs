//! How late do sleeps end? tokio's own sleep against tracelab's precise one, for single waits
//! and for many tasks waiting at once, with the process's CPU time beside each figure.
//!
//! Run with: `cargo run --release -p tracelab-timer --example precision`

use std::time::Duration;

use tokio::time::Instant;
use tracelab_timer::{Mode, Timer, nanos_histogram, summarize};

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

async fn measure(timer: Timer, tasks: usize, waits: usize, wait: Duration) {
    let cpu = cpu_seconds();
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            tokio::spawn(async move {
                let mut late_ns = Vec::with_capacity(waits);
                for i in 0..waits {
                    // Spread the lengths a little so tasks do not all wake in lockstep.
                    let jitter = Duration::from_micros(((t * 131 + i * 17) % 97) as u64);
                    let target = Instant::now() + wait + jitter;
                    timer.sleep_until(target).await;
                    let late = Instant::now().saturating_duration_since(target);
                    late_ns.push((late.as_nanos() as u64).max(1));
                }
                late_ns
            })
        })
        .collect();
    let mut all = nanos_histogram();
    for handle in handles {
        for ns in handle.await.unwrap_or_default() {
            all.saturating_record(ns);
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let o = summarize(&all);
    println!(
        "{:<8} {:>6} tasks  wait {:>6} µs   late p50 {:>8.1} µs  p99 {:>8.1} µs  max {:>8.1} µs   CPU {:>5.1} % of one core",
        format!("{:?}", timer.mode()),
        tasks,
        wait.as_micros(),
        o.p50_us,
        o.p99_us,
        o.max_us,
        100.0 * cpu / wall
    );
}

#[tokio::main]
async fn main() {
    for (tasks, waits, wait) in [
        (1, 500, Duration::from_micros(500)),
        (1, 200, Duration::from_millis(5)),
        (100, 100, Duration::from_millis(2)),
        (2_000, 20, Duration::from_millis(25)),
    ] {
        for mode in [Mode::Tokio, Mode::Precise] {
            measure(Timer::new(mode), tasks, waits, wait).await;
        }
    }
}
