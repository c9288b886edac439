//! A shortened soak (the full one is `bench/soak.sh`, 10 minutes): a steady run at full
//! capture must not hold on to what it has received. Its memory levels off once the first
//! traces are finished and analysed; a lab that kept every span would grow by about 2 kB a
//! span, 15 % of this process every few seconds.
//!
//! One test in its own binary, so that no other test shares the process whose memory it reads.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, run_lab};
use tracelab_receiver::ReceiverConfig;
use tracelab_telemetry::OtlpProtocol;

/// The robustness tests' three-service chain, at 300 req/s for 30 s.
const CHAIN: &str = include_str!("data/chain.yaml");
const RATE: f64 = 300.0;
const LOAD: Duration = Duration::from_secs(30);

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .expect("/proc/self/status has VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_levels_off_during_a_steady_full_capture_run() {
    let out = std::env::temp_dir().join(format!("tracelab-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut scenario = tracelab_scenario::parse(CHAIN, "chain.yaml").expect("the chain parses");
    scenario.load.rate = RATE;
    scenario.load.duration = LOAD;
    let load_seconds = scenario.load.duration.as_secs_f64();

    let started = Instant::now();
    let stop = CancellationToken::new();
    let sampling = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !sampling.is_cancelled() {
            samples.push((started.elapsed().as_secs_f64(), rss_kib()));
            std::thread::sleep(Duration::from_millis(250));
        }
        samples
    });
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
            keep_traces: false,
        },
        CancellationToken::new(),
    )
    .await
    .expect("the run succeeds");
    stop.cancel();
    let samples = sampler.join().expect("the sampler ran");

    let report = &outcome.report;
    assert!(
        report.load.total >= 8_000,
        "a steady run: {} requests",
        report.load.total
    );
    assert_eq!(report.pipeline.spans_lost, 0, "{:?}", report.pipeline);
    assert_eq!(report.traces.as_ref().unwrap().received, report.load.total);
    // From a third of the load to its end: after warm-up, before the end-of-run flush.
    let peak = |from: f64, to: f64| {
        samples
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|&(_, kib)| kib)
            .max()
            .expect("samples in the window")
    };
    let early = peak(load_seconds / 3.0 - 2.0, load_seconds / 3.0);
    let late = peak(load_seconds - 3.0, load_seconds);
    let growth = (late as f64 - early as f64) / early as f64;
    eprintln!(
        "RSS {} KiB at {:.0} s, {} KiB at {:.0} s: {:+.1} % over {} spans",
        early,
        load_seconds / 3.0,
        late,
        load_seconds,
        100.0 * growth,
        report.pipeline.spans_received.unwrap()
    );
    assert!(
        growth < 0.10,
        "memory grew {:.1} % from a third of the run to its end",
        100.0 * growth
    );
    let _ = std::fs::remove_dir_all(&out);
}
