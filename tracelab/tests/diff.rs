//! `tracelab diff` on two real runs: the same seeded scenario through `run_lab` (real services
//! on 127.0.0.1 port 0, real OTLP), once as it is and once with a latency incident on one
//! service. The diff ranks that service first, with p < 0.01, and reports no other service as
//! changed, though its callers are slower and its parallel sibling falls off the critical
//! path. The same two run directories then go through the command line: `diff --json` against
//! docs/diff.schema.json, `report --baseline` for the HTML section, and each run directory's
//! `analysis.json` against docs/analysis.schema.json.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, run_lab};
use tracelab_analysis::DiffOptions;
use tracelab_receiver::ReceiverConfig;
use tracelab_telemetry::OtlpProtocol;

/// frontend → checkout, which calls payment and inventory in parallel; 300 requests in 6 s.
const SCENARIO: &str = r#"
# A checkout with two parallel calls, for the diff test.
name: diffshop
seed: 21
services:
  frontend:
    routes:
      /buy:
        latency: {lognormal: {median_ms: 2, sigma: 0.3}}
        steps:
          - {call: checkout, route: /checkout}
  checkout:
    routes:
      /checkout:
        latency: {uniform: {min_ms: 2, max_ms: 5}}
        steps:
          - parallel:
              - {call: payment, route: /charge}
              - {call: inventory, route: /reserve}
  payment:
    routes:
      /charge:
        latency: {lognormal: {median_ms: 8, sigma: 0.4}}
  inventory:
    routes:
      /reserve:
        latency: {uniform: {min_ms: 3, max_ms: 10}}
        errors: {rate: 0.03}
load:
  rate: 50
  duration: 6s
  entries:
    - {service: frontend, route: /buy}
"#;

/// The incident: payment takes 40 ms more for the whole run.
const INCIDENT: &str = r#"
incidents:
  - at: 0s
    duration: 6s
    what: payment slows down
    fault:
      service: payment
      kind: {latency: {add: 40ms}}
"#;

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

async fn run(source: &str, name: &str) -> PathBuf {
    let scenario = tracelab_scenario::parse(source, "diffshop.yaml").expect("valid scenario");
    let out = tempdir(name);
    let outcome = run_lab(
        RunOptions {
            scenario,
            scenario_source: source.to_string(),
            scenario_file: "diffshop.yaml".into(),
            out: out.clone(),
            protocol: OtlpProtocol::Grpc,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(15),
            keep_traces: false,
        },
        CancellationToken::new(),
    )
    .await
    .expect("run succeeds");
    assert_eq!(outcome.report.load.total, 300);
    assert_eq!(outcome.report.pipeline.spans_lost, 0);
    out
}

fn schema(file: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(file);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

fn assert_matches(file: &str, value: &Value) {
    let errors: Vec<String> = schema(file)
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "does not match {file}: {errors:#?}");
}

fn tracelab(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .args(args)
        .output()
        .expect("tracelab runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_names_the_slowed_service_and_nothing_else() {
    let before = run(SCENARIO, "diff-before").await;
    let after = run(&format!("{SCENARIO}{INCIDENT}"), "diff-after").await;

    let diff = tracelab::diff::diff_runs(&before, &after, &DiffOptions::default()).unwrap();
    let table = tracelab_analysis::render_diff(&diff);
    let first = &diff.services[0];
    assert_eq!(first.service, "payment", "{table}");
    assert!(
        first.changed && first.p_value.is_some_and(|p| p < 0.01),
        "{table}"
    );
    let changed: Vec<&str> = diff
        .changed_services()
        .map(|s| s.service.as_str())
        .collect();
    assert_eq!(changed, ["payment"], "{table}");
    // The callers really are slower: the diff shows it without calling them changed.
    let frontend = diff
        .services
        .iter()
        .find(|s| s.service == "frontend")
        .unwrap();
    assert!(
        frontend.after.latency_p50_ns > frontend.before.latency_p50_ns + 30_000_000,
        "{table}"
    );

    // The command line: exit 1 (something changed), JSON that matches its schema.
    let out = tracelab(&[
        "diff".as_ref(),
        before.as_os_str(),
        after.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("diff --json prints JSON");
    assert_matches("diff.schema.json", &json);
    assert_eq!(json["services"][0]["service"], "payment");
    let out = tracelab(&["diff".as_ref(), before.as_os_str(), after.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Changed: payment"), "{text}");

    // The same run against itself: nothing changed, exit 0.
    let out = tracelab(&["diff".as_ref(), before.as_os_str(), before.as_os_str()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // report.html with the baseline shows the diff.
    let out = tracelab(&[
        "report".as_ref(),
        after.as_os_str(),
        "--baseline".as_ref(),
        before.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(after.join("report.html")).unwrap();
    assert!(html.contains("<section id=\"diff\">"));

    // Every run directory has analysis.json, and it matches its schema.
    for dir in [&before, &after] {
        let analysis: Value =
            serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).unwrap()).unwrap();
        assert_matches("analysis.schema.json", &analysis);
        assert_eq!(analysis["overview"]["traces"], 300);
    }
    for dir in [before, after] {
        std::fs::remove_dir_all(dir).ok();
    }
}
