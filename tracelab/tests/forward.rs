//! `tracelab run` next to other OTLP backends, through the binary as users run it:
//! `--forward` delivers every span to other receivers as well as the embedded one (one over
//! gRPC, one over OTLP/HTTP), and the embedded receiver moves to free ports, saying which,
//! when a Collector already holds 4317 and 4318.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use tracelab_receiver::{Receiver, ReceiverConfig, TraceStore};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

fn out_dir(label: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "tracelab-forward-{label}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ))
}

/// `tracelab run scenarios/quickstart.yaml` for two seconds with `args`, into `out`.
fn tracelab_run(out: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .current_dir(repo())
        .args(["run", "scenarios/quickstart.yaml", "--duration", "2s"])
        .args(["--no-progress", "--out"])
        .arg(out)
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_TRACES_SAMPLER_ARG")
        .output()
        .expect("tracelab runs")
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// (trace id, span id) of every span in the run's own copy, `spans.otlp.jsonl`.
fn embedded_copy(out: &Path) -> BTreeSet<(String, String)> {
    tracelab_receiver::otlp_json::read_file(&out.join("spans.otlp.jsonl"))
        .expect("spans.otlp.jsonl reads back")
        .iter()
        .map(|s| (s.trace_id.to_hex(), s.span_id.to_hex()))
        .collect()
}

fn ids(store: &TraceStore) -> BTreeSet<(String, String)> {
    store
        .spans()
        .iter()
        .map(|s| (s.trace_id.to_hex(), s.span_id.to_hex()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_delivers_every_span_to_other_receivers() {
    let over_grpc = Arc::new(TraceStore::new());
    let over_http = Arc::new(TraceStore::new());
    let grpc_receiver = Receiver::start(ReceiverConfig::ephemeral(), over_grpc.clone())
        .await
        .expect("a second receiver starts");
    let http_receiver = Receiver::start(ReceiverConfig::ephemeral(), over_http.clone())
        .await
        .expect("a third receiver starts");
    let grpc_url = grpc_receiver.grpc_endpoint();
    let http_url = http_receiver.http_traces_endpoint();

    let out = out_dir("two-receivers");
    let args = [
        "--otlp-grpc".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--otlp-http".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--forward".to_owned(),
        grpc_url.clone(),
        "--forward".to_owned(),
        http_url.clone(),
    ];
    let run = tokio::task::spawn_blocking(move || {
        let output = tracelab_run(&out, &args);
        (out, output)
    });
    let (out, output) = run.await.expect("the run finishes");
    assert!(
        output.status.success(),
        "tracelab run --forward failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let embedded = embedded_copy(&out);
    assert!(
        embedded.len() > 100,
        "the run made spans: {}",
        embedded.len()
    );
    let report = report(&out);
    let traces = &report["traces"];
    assert_eq!(
        traces["complete"], traces["received"],
        "the completeness check runs on the embedded copy: {traces}"
    );
    // The run waits for its forwarders before it reports, so the copies are all there.
    for (store, url) in [(&over_grpc, &grpc_url), (&over_http, &http_url)] {
        let got = ids(store);
        let missing = embedded.difference(&got).count();
        let foreign = got.difference(&embedded).count();
        assert!(
            missing == 0 && foreign == 0,
            "{url} lacks {missing} of the run's {} spans and has {foreign} others",
            embedded.len()
        );
        assert_eq!(
            store.span_count(),
            embedded.len() as u64,
            "{url} received each span once"
        );
    }
    let forwarded = report["pipeline"]["forwarded"]
        .as_array()
        .expect("report.json counts what was forwarded")
        .clone();
    assert_eq!(forwarded.len(), 2, "{forwarded:?}");
    for (entry, (url, protocol)) in forwarded
        .iter()
        .zip([(&grpc_url, "grpc"), (&http_url, "http/protobuf")])
    {
        assert_eq!(entry["endpoint"], url.as_str());
        assert_eq!(entry["protocol"], protocol);
        assert_eq!(entry["spans_delivered"], embedded.len() as u64);
        assert_eq!(entry["spans_failed"], 0);
    }
    grpc_receiver.shutdown().await;
    http_receiver.shutdown().await;
    let _ = std::fs::remove_dir_all(&out);
}

/// Holds `port` on loopback, or leaves it to whoever holds it already: either way it is taken.
fn take(port: u16) -> Option<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).ok()
}

#[test]
fn the_embedded_receiver_moves_off_ports_a_collector_holds() {
    // A local Collector's ports. The listeners never accept: a span sent there is lost, and
    // the run's completeness check would fail.
    let _grpc = take(4317);
    let _http = take(4318);
    assert!(
        take(4317).is_none() && take(4318).is_none(),
        "4317 and 4318 are taken"
    );

    let out = out_dir("fallback");
    let output = tracelab_run(&out, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tracelab run failed: {stderr}");
    let note = stderr
        .lines()
        .find(|line| line.contains("the OTLP ports 4317 and 4318 are taken"))
        .unwrap_or_else(|| panic!("no note about the ports: {stderr}"));
    // The note names the ports it chose, and they are other ports.
    let chosen: Vec<&str> = note
        .split_whitespace()
        .filter(|word| word.starts_with("127.0.0.1:"))
        .collect();
    assert_eq!(chosen.len(), 2, "{note}");
    for address in &chosen {
        assert!(
            !address.ends_with(":4317") && !address.ends_with(":4318"),
            "{note}"
        );
    }
    let report = report(&out);
    assert!(
        report["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str() == Some(note.trim_start_matches("note: ")))),
        "report.json keeps the note: {}",
        report["warnings"]
    );
    let traces = &report["traces"];
    assert!(traces["received"].as_u64().unwrap_or(0) >= 20, "{traces}");
    assert_eq!(traces["complete"], traces["received"], "{traces}");
    assert_eq!(report["pipeline"]["spans_lost"], 0);

    // Asked for explicitly, a taken port is an error, not a silent move.
    let explicit = out_dir("explicit");
    let output = tracelab_run(
        &explicit,
        &["--otlp-grpc".to_owned(), "127.0.0.1:4317".to_owned()],
    );
    assert!(!output.status.success(), "an explicit taken port must fail");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("4317"),
        "the error names the port: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&explicit);
}
