//! Ctrl-C mid-run and the report's schema: a run cancelled half-way still leaves a complete,
//! valid run directory, and report.json — of `run` and of `load` — matches
//! docs/report.schema.json.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracelab::load::{LoadRunOptions, run_load};
use tracelab::run::{RunOptions, run_lab};
use tracelab_receiver::ReceiverConfig;
use tracelab_telemetry::OtlpProtocol;

const SCENARIO: &str = r#"
# Test scenario: two services and a long load, to be interrupted.
name: interrupted
seed: 3
services:
  front:
    routes:
      /:
        latency: {constant: 2}
        steps:
          - {call: back, route: /work}
  back:
    routes:
      /work:
        latency: {uniform: {min_ms: 1, max_ms: 20}}
load:
  rate: 50
  duration: 30s
  arrival: poisson
  baggage:
    tenant: {acme: 0.1, globex: 0.9}
  entries:
    - {service: front, route: /}
"#;

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report.schema.json");
    let text = std::fs::read_to_string(&path).expect("docs/report.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

fn check_report(report: &serde_json::Value) {
    let validator = schema();
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json does not match the schema: {errors:#?}"
    );
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_leaves_a_complete_valid_run_directory() {
    let scenario = tracelab_scenario::parse(SCENARIO, "interrupted.yaml").expect("valid scenario");
    let dir = std::env::temp_dir().join(format!("tracelab-interrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = RunOptions {
        scenario,
        scenario_source: SCENARIO.to_string(),
        scenario_file: "interrupted.yaml".to_string(),
        out: dir.clone(),
        protocol: OtlpProtocol::Grpc,
        receiver: ReceiverConfig {
            grpc_addr: "127.0.0.1:0".parse().expect("addr"),
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            ..ReceiverConfig::default()
        },
        progress: false,
        settle_timeout: Duration::from_secs(10),
        keep_traces: false,
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stop.cancel();
    });
    let started = std::time::Instant::now();
    let outcome = run_lab(options, shutdown)
        .await
        .expect("the run ends cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped long before the 30 s"
    );

    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("report.json")).expect("report.json written"),
    )
    .expect("report.json parses");
    check_report(&report);
    assert_eq!(report["interrupted"], true);
    assert!(outcome.report.interrupted);
    let requests = json_lines(&dir.join("requests.jsonl"));
    let spans = json_lines(&dir.join("spans.otlp.jsonl"));
    let total = report["load"]["total"].as_u64().expect("total");
    assert!(
        total > 20 && total < 500,
        "{total} requests in about 1.5 s at 50/s"
    );
    assert_eq!(requests.len() as u64, total);
    assert!(!spans.is_empty());
    for r in &requests {
        assert_eq!(r["baggage"]["synthetic_request"], "true");
        assert!(r["trace_id"].as_str().is_some_and(|t| t.len() == 32));
    }
    // Every request in flight at the interrupt was awaited: its trace arrived whole.
    assert_eq!(report["traces"]["received"].as_u64(), Some(total));
    assert_eq!(report["traces"]["broken"].as_u64(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_command_writes_requests_and_a_valid_report_without_spans() {
    use axum::Router;
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().route("/", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut scenario = tracelab_scenario::parse(SCENARIO, "interrupted.yaml").expect("valid");
    scenario.load.duration = Duration::from_secs(1);
    let dir = std::env::temp_dir().join(format!("tracelab-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let outcome = run_load(
        LoadRunOptions {
            scenario,
            scenario_source: SCENARIO.to_string(),
            scenario_file: "interrupted.yaml".to_string(),
            targets: vec![("front".to_string(), format!("http://{addr}"))],
            export: None,
            sampler: tracelab_sampling::head::HeadSamplerConfig::from_env_values(
                "parentbased_traceidratio",
                Some("0.5"),
            )
            .expect("a valid sampler"),
            no_tracing: false,
            out: dir.clone(),
            progress: false,
            request_timeout: Duration::from_secs(5),
        },
        CancellationToken::new(),
    )
    .await
    .expect("load run");
    assert!(!outcome.report.interrupted);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json"))
            .expect("parses");
    check_report(&report);
    assert!(report["external"].is_object(), "{report:#}");
    assert!(
        report.get("traces").is_none(),
        "no trace counts for external services"
    );
    assert!(!dir.join("spans.otlp.jsonl").exists());
    let requests = json_lines(&dir.join("requests.jsonl"));
    assert_eq!(
        requests.len() as u64,
        report["load"]["total"].as_u64().expect("total")
    );
    // The ratio sampler keeps about half of the traces, and says which.
    let sampled = requests.iter().filter(|r| r["sampled"] == true).count();
    assert!(
        sampled > 0 && sampled < requests.len(),
        "{sampled} of {} sampled",
        requests.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
