//! `tracelab report` on OTLP JSON written by other programs: the OpenTelemetry project's own
//! example document, a Collector file-exporter output (one request per line), and the spans
//! the OpenTelemetry Python SDK sends to tracelab's receiver. The binary is run as a user would
//! run it; see `tests/data/README.md` for where each file comes from.
//!
//! The Python test needs `python3` with `opentelemetry-sdk` and
//! `opentelemetry-exporter-otlp-proto-http`; `.ci/test` installs them when missing, and the
//! test fails with that advice when they are not there (`TRACELAB_PYTHON` picks the
//! interpreter).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tracelab_receiver::{Receiver, ReceiverConfig, SpanSink, TraceStore};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "report-foreign-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tracelab report ARGS…` and returns its standard output; fails unless it exits 0.
fn report(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .arg("report")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("tracelab runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "tracelab report failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn waterfalls(html: &str) -> Vec<String> {
    html.match_indices("<section class=\"trace\" data-trace-id=\"")
        .map(|(at, needle)| html[at + needle.len()..at + needle.len() + 32].to_string())
        .collect()
}

#[test]
fn opentelemetry_proto_example() {
    // Published by the OpenTelemetry project; kept with the receiver's test data.
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../receiver/tests/data/otel-proto-example-trace.json");
    let dir = scratch_dir("example");
    let html_path = dir.join("example.html");
    let stdout = report(&[file.as_os_str(), "--out".as_ref(), html_path.as_os_str()]);

    // Its one span has upper-case hex ids and a parent that is not in the file.
    let trace_id = "5b8efff798038103d269b633813fc60c";
    assert!(
        stdout.contains(&format!("Slowest trace {trace_id}")),
        "{stdout}"
    );
    assert!(stdout.contains("my.service"), "{stdout}");
    assert!(stdout.contains("I'm a server span"), "{stdout}");
    assert!(
        stdout.contains(&html_path.display().to_string()),
        "{stdout}"
    );
    let html = std::fs::read_to_string(&html_path).expect("the report was written to --out");
    assert_eq!(waterfalls(&html), vec![trace_id.to_string()]);
    assert!(html.contains("I&#39;m a server span") || html.contains("I&#x27;m a server span"));
    assert!(
        html.contains("(parent missing)"),
        "the missing parent is shown"
    );
}

#[test]
fn collector_file_exporter_output() {
    // Copied next to a scratch directory so that the default output lands there.
    let dir = scratch_dir("collector");
    let file = dir.join("traces.jsonl");
    std::fs::copy(data("collector-file-exporter.jsonl"), &file).unwrap();
    let stdout = report(&[file.as_os_str()]);

    // Four requests over three lines; a trace's spans are spread over several lines and
    // resources. The checkout trace is the slowest (120 ms), the one through `db-proxy` fails.
    let slowest = "4bf92f3577b34da6a3ce929d0e0e4736";
    let failing = "d4c3b2a1f0e9d8c7b6a5948372615041";
    assert!(
        stdout.contains(&format!("Slowest trace {slowest}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("First failing trace {failing}")),
        "{stdout}"
    );
    // The slow request waited on the api's database query: api leads the p99 ranking.
    let first_row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .expect("a ranked first service");
    assert!(first_row.contains("api"), "{stdout}");

    let html_path = dir.join("traces.jsonl.html");
    let html = std::fs::read_to_string(&html_path).expect("FILE.html is the default output");
    let shown = waterfalls(&html);
    assert_eq!(shown.len(), 4, "every trace of the file is worth a look");
    assert_eq!(shown[0], slowest);
    assert!(shown.iter().any(|t| t == failing));
    // The failure started in db-proxy and travelled up through api and frontend.
    let errors = html
        .split("<section id=\"errors\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("errors section");
    assert!(
        errors.contains("<td>db-proxy</td><td>POST /query</td><td class=\"num\">1</td>"),
        "{errors}"
    );
    assert!(!errors.contains("<td>frontend</td>"), "{errors}");
    assert!(html.contains("connection reset by peer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_from_the_opentelemetry_python_sdk() {
    let python = std::env::var("TRACELAB_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let probe = Command::new(&python)
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        ])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "this test needs {python} with the OpenTelemetry Python SDK: run `.ci/test` (it \
         installs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http when missing) or \
         `{python} -m pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http`; {}",
        match &probe {
            Ok(o) => String::from_utf8_lossy(&o.stderr).to_string(),
            Err(e) => e.to_string(),
        }
    );

    // tracelab's receiver, writing what arrives as `tracelab run` does.
    let dir = scratch_dir("python");
    let file = dir.join("spans.otlp.jsonl");
    let store = Arc::new(TraceStore::with_sink(
        SpanSink::create(&file).expect("sink file"),
    ));
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), store.clone())
        .await
        .expect("receiver starts");
    let endpoint = format!("http://{}", receiver.http_addr());
    let script = data("python_sdk_traces.py");
    // The receiver serves on this runtime, so the producer waits on a blocking thread.
    let producer = {
        let (python, script) = (python.clone(), script.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(&python).arg(&script).arg(&endpoint).output()
        })
        .await
        .unwrap()
        .expect("the Python producer runs")
    };
    assert!(
        producer.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&producer.stderr)
    );
    let said: serde_json::Value =
        serde_json::from_slice(&producer.stdout).expect("the producer prints its trace ids");
    let expected_spans = said["spans"].as_u64().expect("span count");
    assert!(
        store
            .wait_for_spans(expected_spans, Duration::from_secs(10))
            .await,
        "only {} of {expected_spans} spans arrived",
        store.span_count()
    );
    receiver.shutdown().await;
    store.flush_sink().expect("sink flushed");

    let html_path = dir.join("python.html");
    let stdout = report(&[file.as_os_str(), "--out".as_ref(), html_path.as_os_str()]);
    let slowest = said["slowest"].as_str().unwrap();
    let failing = said["failing"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("Slowest trace {slowest}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("First failing trace {failing}")),
        "{stdout}"
    );
    // The slow checkout waited on its payment.
    let first_row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .expect("a ranked first service");
    assert!(first_row.contains("py-payment"), "{stdout}");

    let html = std::fs::read_to_string(&html_path).expect("report written");
    let shown = waterfalls(&html);
    assert_eq!(shown.len(), 5, "five traces, all worth a look: {shown:?}");
    assert_eq!(shown[0], slowest);
    let errors = html
        .split("<section id=\"errors\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("errors section");
    assert!(
        errors.contains("<td>py-payment</td><td>POST /charge</td><td class=\"num\">1</td>"),
        "the failure is traced to the payment service: {errors}"
    );
    assert!(html.contains("card declined"));
}
