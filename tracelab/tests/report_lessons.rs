//! The lessons the analysis must teach, checked on real runs: on a scenario that slows one
//! service, that service leads the critical-path ranking at p99; on a scenario where a leaf
//! fails and the failure travels up through two callers, the leaf is named as the origin.
//!
//! Every run goes through `run_lab` over real loopback HTTP and real OTLP, as `tracelab run`
//! does, so the ranking is computed from what the services actually exported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, RunOutcome, run_lab};
use tracelab_receiver::ReceiverConfig;
use tracelab_scenario::Scenario;
use tracelab_telemetry::OtlpProtocol;
use tracelab_trace::{SpanKind, StatusCode};

fn tempdir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "tracelab-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// One lab at a time: the rankings are about the scenario's own bottleneck, and four labs
/// sharing two cores would add a bottleneck of their own (the slowest request of a run can be
/// the one a busy machine delayed).
static ONE_LAB_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run(scenario: Scenario, source: &str, file: &str) -> RunOutcome {
    let _turn = ONE_LAB_AT_A_TIME.lock().await;
    let out = tempdir(&scenario.name);
    run_lab(
        RunOptions {
            scenario,
            scenario_source: source.to_string(),
            scenario_file: file.to_string(),
            out,
            protocol: OtlpProtocol::Grpc,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(15),
            keep_traces: true,
        },
        CancellationToken::new(),
    )
    .await
    .expect("run succeeds")
}

/// Runs a scenario file from `scenarios/` for `seconds` and checks that the service the
/// scenario slows is ranked first by critical-path share at p99.
async fn check_bottleneck(file: &str, slowed: &str, seconds: u64) {
    let path = scenarios_dir().join(file);
    let source = std::fs::read_to_string(&path).expect("scenario file readable");
    let mut scenario =
        tracelab_scenario::parse(&source, &path.display().to_string()).expect("valid scenario");
    scenario.load.duration = Duration::from_secs(seconds);
    let outcome = run(scenario, &source, file).await;
    let a = &outcome.analysis;
    assert!(
        a.overview.traces >= 15,
        "{file}: too few traces ({}) to rank services",
        a.overview.traces
    );
    assert_eq!(
        a.health.broken_traces, 0,
        "{file}: every trace arrived whole"
    );
    let ranking: Vec<(&str, f64)> = a
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.critical_share_p99))
        .collect();
    assert_eq!(
        ranking.first().map(|r| r.0),
        Some(slowed),
        "{file}: the slowed service leads the p99 critical-path ranking; ranking: {ranking:?}"
    );
    // The ranking really is by p99 share, and the shares split the critical path.
    assert!(
        ranking.windows(2).all(|w| w[0].1 >= w[1].1),
        "{file}: ranked by share at p99: {ranking:?}"
    );
    let total: f64 = ranking.iter().map(|r| r.1).sum();
    assert!(
        (total - 1.0).abs() < 1e-6,
        "{file}: shares add up to 1, got {total}"
    );
    // The report that ships with the run says the same thing.
    let html = std::fs::read_to_string(outcome.dir.join("report.html")).expect("report.html");
    let services = html
        .split("<section id=\"services\">")
        .nth(1)
        .expect("services section");
    let first_row = services
        .split("<tr><td>1</td><td>")
        .nth(1)
        .expect("a first row");
    assert!(
        first_row.split("</td>").next().unwrap().ends_with(slowed),
        "{file}: report.html ranks {slowed} first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_ranks_the_slow_payment_service_first() {
    // The quickstart's own comment: "`payment` is the slow one".
    check_bottleneck("quickstart.yaml", "payment", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_exhaustion_ranks_the_starved_service_first() {
    // "`inventory` handles at most 2 requests at once": requests queue for its workers.
    check_bottleneck("pool-exhaustion.yaml", "inventory", 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_contention_ranks_the_locking_service_first() {
    // "`customer` runs a 300 ms MySQL query under a service-wide lock".
    check_bottleneck("lock-contention.yaml", "customer", 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascading_timeout_ranks_the_slow_leaf_first() {
    // "From 3 s to 6 s `bank` is 4 s slower": the slowest requests wait on it until the
    // gateway's timeout.
    check_bottleneck("cascading-timeout.yaml", "bank", 6).await;
}

/// A leaf fails half of the time; each caller answers 502 when its call fails, so every failed
/// request has error spans in three services. `api` also fails on its own, less often, before
/// it calls anyone: a second, smaller origin the ranking must put second.
const PROPAGATING_ERRORS: &str = r#"
# Errors that start in a leaf and travel up through two callers.
name: propagating-errors
seed: 11
services:
  edge:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: api, route: /items}
  api:
    routes:
      /items:
        latency: {constant: 1}
        errors: {rate: 0.1, status: 503}
        steps:
          - work: validate
            latency: {constant: 1}
          - {call: store, route: /get}
  store:
    routes:
      /get:
        latency: {constant: 2}
        errors: {rate: 0.5, status: 500}
load:
  rate: 50
  duration: 2s
  entries:
    - {service: edge, route: /}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_origin_is_the_failing_leaf_not_its_callers() {
    let scenario = tracelab_scenario::parse(PROPAGATING_ERRORS, "propagating-errors.yaml")
        .expect("valid scenario");
    let outcome = run(scenario, PROPAGATING_ERRORS, "propagating-errors.yaml").await;
    let a = &outcome.analysis;
    assert_eq!(a.health.broken_traces, 0, "every trace arrived whole");
    assert!(a.overview.failed_traces > 10, "{:?}", a.overview);

    // Ground truth from the spans themselves: which service injected the failure of each trace
    // (the runtime marks injected errors with `tracelab.injected = error`).
    let mut injected_by: HashMap<String, u64> = HashMap::new();
    let mut propagated_through_two_callers = 0;
    for trace in &outcome.traces {
        let injected: Vec<&str> = trace
            .spans
            .iter()
            .filter(|s| s.attr("tracelab.injected").and_then(|v| v.as_str()) == Some("error"))
            .map(|s| s.service_name.as_ref())
            .collect();
        assert!(injected.len() <= 1, "one injected failure per request");
        let Some(&origin) = injected.first() else {
            continue;
        };
        *injected_by.entry(origin.to_string()).or_default() += 1;
        if origin == "store" {
            // The failure shows up in all three services: the callers answer 502.
            for caller in ["api", "edge"] {
                let server = trace
                    .spans
                    .iter()
                    .find(|s| s.kind == SpanKind::Server && s.service_name.as_ref() == caller)
                    .expect("caller's server span");
                assert_eq!(server.status.code, StatusCode::Error, "{caller} failed too");
                assert_eq!(
                    server
                        .attr("http.response.status_code")
                        .and_then(|v| v.as_i64()),
                    Some(502),
                    "{caller} answers 502 on a failed call"
                );
            }
            propagated_through_two_callers += 1;
        }
    }
    assert!(
        propagated_through_two_callers > 10,
        "enough store failures to judge: {injected_by:?}"
    );

    let origins: Vec<(&str, &str, u64)> = a
        .error_origins
        .iter()
        .map(|o| (o.service.as_str(), o.operation.as_str(), o.traces))
        .collect();
    let first = origins.first().expect("some error origin");
    assert_eq!(
        first.0, "store",
        "the failing leaf comes first: {origins:?}"
    );
    assert!(first.1.contains("/get"), "{origins:?}");
    assert_eq!(first.2, injected_by["store"], "{origins:?}");
    // `api`'s own failures are attributed to `api`, and nothing to `edge`, which only passed
    // failures on.
    let api: u64 = origins.iter().filter(|o| o.0 == "api").map(|o| o.2).sum();
    assert_eq!(
        api,
        injected_by.get("api").copied().unwrap_or(0),
        "{origins:?}"
    );
    assert!(
        origins.iter().all(|o| o.0 != "edge"),
        "edge never starts a failure: {origins:?}"
    );
    assert_eq!(
        origins.iter().map(|o| o.2).sum::<u64>(),
        a.overview.failed_traces,
        "every failed trace has exactly one origin"
    );
}
