//! The sampling lab end to end: a full-capture run with a 2 % error rate and a slow tail, then
//! `compare` with 10 % head sampling against a tail policy (errors OR latency above a threshold
//! OR 5 % probabilistic), scored against the run's ground truth.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, run_lab};
use tracelab_receiver::ReceiverConfig;
use tracelab_telemetry::OtlpProtocol;

const SCENARIO: &str = r#"
# Sampling lab test: errors at 2 %, a latency tail, and a one-second latency incident.
name: sampling
seed: 11
services:
  api:
    routes:
      /:
        errors: {rate: 0.02, status: 500}
        steps:
          - {call: store, route: /read}
  store:
    routes:
      /read:
        latency: {pareto: {scale_ms: 2, shape: 1.2}}
load:
  rate: 400
  duration: 5s
  entries:
    - {service: api, route: /}
incidents:
  - at: 2s
    duration: 1s
    what: the store slows down
    fault: {service: store, route: /read, kind: {latency: {add: 60ms}}}
"#;

const STRATEGIES: &str = r#"
# Head sampling at 10 % against a tail policy.
slow_threshold: 40ms
strategies:
  - name: head-10pct
    head: {sampler: parentbased_traceidratio, arg: 0.1}
  - name: tail-errors-slow-5pct
    tail:
      inline:
        decision_wait: 2s
        num_traces: 100000
        policies:
          - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}
          # The Collector compares whole milliseconds, truncated, with an exclusive bound:
          # `threshold_ms: 39` keeps every trace lasting 40 ms or more, so every trace above
          # the 40 ms slow threshold (`threshold_ms: 40` would miss those of 40.x ms).
          - {name: slow, type: latency, latency: {threshold_ms: 39}}
          - {name: some, type: probabilistic, probabilistic: {sampling_percentage: 5}}
"#;

/// The 99 % two-sided binomial interval for `n` trials at `p`, by the exact distribution.
fn binomial_interval_99(n: u64, p: f64) -> (u64, u64) {
    binomial_interval(n, p, 0.01)
}

/// The two-sided binomial interval for `n` trials at `p` that a count falls outside with
/// probability at most `alpha`, by the exact distribution.
fn binomial_interval(n: u64, p: f64, alpha: f64) -> (u64, u64) {
    let mut pmf = vec![0.0f64; n as usize + 1];
    // Log-space to stay finite for large n.
    let ln_fact: Vec<f64> = (0..=n)
        .scan(0.0, |acc, k| {
            if k > 0 {
                *acc += (k as f64).ln();
            }
            Some(*acc)
        })
        .collect();
    for k in 0..=n {
        let ln = ln_fact[n as usize] - ln_fact[k as usize] - ln_fact[(n - k) as usize]
            + k as f64 * p.ln()
            + (n - k) as f64 * (1.0 - p).ln();
        pmf[k as usize] = ln.exp();
    }
    let mut lo = 0;
    let mut acc = 0.0;
    for (k, m) in pmf.iter().enumerate() {
        acc += m;
        if acc > alpha / 2.0 {
            lo = k as u64;
            break;
        }
    }
    let mut hi = n;
    let mut acc = 0.0;
    for (k, m) in pmf.iter().enumerate().rev() {
        acc += m;
        if acc > alpha / 2.0 {
            hi = k as u64;
            break;
        }
    }
    (lo, hi)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_10pct_versus_tail_policy_on_the_same_traffic() {
    let dir = std::env::temp_dir().join(format!(
        "tracelab-sampling-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let scenario = tracelab_scenario::parse(SCENARIO, "sampling.yaml").unwrap();
    let outcome = run_lab(
        RunOptions {
            scenario,
            scenario_source: SCENARIO.into(),
            scenario_file: "sampling.yaml".into(),
            out: dir.clone(),
            protocol: OtlpProtocol::Grpc,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(20),
            keep_traces: true,
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome.report.traces.as_ref().unwrap().broken,
        0,
        "full capture"
    );
    assert_eq!(outcome.report.pipeline.spans_lost, 0);

    let strategies = dir.join("strategies.yaml");
    std::fs::write(&strategies, STRATEGIES).unwrap();
    let report = tracelab::compare::compare_input(&dir, &strategies, None).unwrap();
    assert_eq!(report.strategies.len(), 2);
    let head = &report.strategies[0];
    let tail = &report.strategies[1];

    // Head sampling keeps errors at its own rate: within the 99 % interval around 10 %.
    let errors = head.errors.total;
    assert!(errors >= 20, "the run has error traces to score: {errors}");
    let (lo, hi) = binomial_interval_99(errors, 0.1);
    assert!(
        (lo..=hi).contains(&head.errors.kept),
        "head kept {} of {errors} error traces, outside [{lo}, {hi}]",
        head.errors.kept
    );
    // The tail policy keeps every error trace.
    assert_eq!(tail.errors.kept, tail.errors.total);
    // ... and every trace whose own duration is above the threshold. (Against the client's
    // latency, measured from the scheduled instant, it can miss some: a request that waited
    // before it was sent is slow for the user but not in its trace. The lab shows that gap.)
    let by_trace =
        tracelab::compare::compare_input(&dir.join("spans.otlp.jsonl"), &strategies, None).unwrap();
    let tail_by_trace = &by_trace.strategies[1];
    assert!(tail_by_trace.slow.total > 0, "the run has slow traces");
    assert_eq!(tail_by_trace.slow.kept, tail_by_trace.slow.total);
    assert_eq!(tail_by_trace.errors.kept, tail_by_trace.errors.total);
    assert!(tail.slow.kept <= tail.slow.total);
    // Both report what they cost, and the tail keeps more than the 5 % floor.
    assert!(head.spans_kept > 0 && tail.spans_kept > head.spans_kept / 2);
    assert!(tail.traces_kept >= tail.errors.total + tail.slow.total / 2);
    assert!(head.bytes_kept > 0 && tail.bytes_kept > 0);
    // The incident window is ground truth too. Requests inside it were slowed past the tail's
    // latency threshold, so the tail keeps them — all but the few at the window's edges, sent
    // while the fault was being switched on or off; the head keeps about 10 %.
    assert!(
        tail.incident.total >= 300,
        "about 400 requests fall in the window"
    );
    assert!(
        tail.incident.kept * 100 >= tail.incident.total * 98,
        "tail kept {} of {} incident traces",
        tail.incident.kept,
        tail.incident.total
    );
    // Trace ids are random, so every interval check fails once in a while by chance; this one
    // is not the issue's criterion, so it uses 99.9 % to keep the test's false alarms rare.
    let (lo, hi) = binomial_interval(head.incident.total, 0.1, 0.001);
    assert!(
        (lo..=hi).contains(&head.incident.kept),
        "head kept {} of {} incident traces, outside [{lo}, {hi}]",
        head.incident.kept,
        head.incident.total
    );

    // The CLI command writes sampling.json into the run directory.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .arg("compare")
        .arg(&dir)
        .arg("--strategies")
        .arg(&strategies)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("head-10pct") && table.contains("tail-errors-slow-5pct"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("sampling.json")).unwrap()).unwrap();
    assert_eq!(json["strategies"].as_array().unwrap().len(), 2);
}
