//! `tracelab report --json`: the analysis document on standard output, as a program reads it
//! (`tracelab report --json FILE | jq '.traces[] | select(.trace_id == "…") | .critical_path'`),
//! matching docs/analysis.schema.json; and `analysis.json` in a run directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "report-json-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_matches_schema(value: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/analysis.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema");
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "does not match the schema: {errors:#?}");
}

/// Runs `tracelab report ARGS…`; returns (status success, stdout, stderr).
fn report(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .arg("report")
        .args(args)
        .output()
        .expect("tracelab runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The trace with `id` in an analysis document, as `jq 'select(.trace_id == ID)'` finds it.
fn trace<'a>(document: &'a Value, id: &str) -> &'a Value {
    document["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trace_id"] == id)
        .unwrap_or_else(|| panic!("trace {id} in {document:#}"))
}

#[test]
fn report_json_gives_the_segments_of_a_trace_by_id() {
    let dir = scratch_dir("file");
    let file = dir.join("traces.jsonl");
    std::fs::copy(data("collector-file-exporter.jsonl"), &file).unwrap();
    let id = "0af7651916cd43dd8448eb211c80319c";
    let (ok, stdout, stderr) = report(&[
        "--json".as_ref(),
        file.as_os_str(),
        "--trace".as_ref(),
        id.as_ref(),
    ]);
    assert!(ok, "{stderr}");
    let document: Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_matches_schema(&document);

    let t = trace(&document, id);
    assert_eq!(
        document["traces"][0]["trace_id"], id,
        "asked-for traces come first"
    );
    assert_eq!(t["reasons"][0], "requested");
    // frontend GET / 0–30 ms → its client GET 3–27 → api GET /items 5–25 → SELECT items 7–20.
    let segments: Vec<(String, String, u64, u64)> = t["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["span_id"].as_str().unwrap().to_string(),
                s["operation"].as_str().unwrap().to_string(),
                s["start"].as_u64().unwrap() / 1_000_000,
                s["end"].as_u64().unwrap() / 1_000_000,
            )
        })
        .collect();
    let expected = [
        ("b7ad6b7169203331", "GET /", 0, 3),
        ("b7ad6b7169203332", "GET", 3, 5),
        ("b7ad6b7169203333", "GET /items", 5, 7),
        ("b7ad6b7169203334", "SELECT items", 7, 20),
        ("b7ad6b7169203333", "GET /items", 20, 25),
        ("b7ad6b7169203332", "GET", 25, 27),
        ("b7ad6b7169203331", "GET /", 27, 30),
    ];
    let expected: Vec<(String, String, u64, u64)> = expected
        .iter()
        .map(|(s, o, a, b)| (s.to_string(), o.to_string(), *a, *b))
        .collect();
    assert_eq!(segments, expected);
    assert_eq!(t["duration_ns"], 30_000_000);
    assert_eq!(t["critical_path"][0]["service"], "frontend");
    assert!(
        stderr.contains("report:"),
        "the HTML path goes to stderr: {stderr}"
    );
    assert!(dir.join("traces.jsonl.html").exists());

    // The failing trace is there without asking, with its origin.
    let failing = trace(&document, "d4c3b2a1f0e9d8c7b6a5948372615041");
    assert_eq!(
        failing["reasons"],
        serde_json::json!(["slowest", "failing"])
    );
    assert_eq!(
        failing["error_origin"]["message"],
        "connection reset by peer"
    );

    // An id that is not in the file is an error that says so.
    let missing = "0123456789abcdef0123456789abcdef";
    let (ok, stdout, stderr) = report(&[
        "--json".as_ref(),
        file.as_os_str(),
        "--trace".as_ref(),
        missing.as_ref(),
    ]);
    assert!(!ok && stdout.is_empty());
    assert!(
        stderr.contains(missing) && stderr.contains("traces.jsonl"),
        "{stderr}"
    );
}

#[test]
fn a_run_directory_gets_analysis_json() {
    let dir = scratch_dir("dir");
    std::fs::copy(
        data("collector-file-exporter.jsonl"),
        dir.join("spans.otlp.jsonl"),
    )
    .unwrap();
    let (ok, _, stderr) = report(&[dir.as_os_str(), "--quiet".as_ref()]);
    assert!(ok, "{stderr}");
    let written: Value =
        serde_json::from_slice(&std::fs::read(dir.join("analysis.json")).unwrap()).unwrap();
    assert_matches_schema(&written);
    assert_eq!(written["overview"]["traces"], 4);
    let slowest = trace(&written, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(slowest["reasons"][0], "slowest");
    assert_eq!(written["services"][0]["service"], "api");
}
