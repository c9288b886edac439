//! The `tracelab` binary as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tracelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracelab"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "tracelab-cli-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

#[test]
fn check_reports_a_typo_and_a_dangling_call_with_lines_and_fails() {
    let dir = temp("check");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        "# two mistakes\nservices:\n  a:\n    routes:\n      /x:\n        latncy: {constant: 1}\n        steps:\n          - {call: b, route: /nope}\n  b:\n    routes:\n      /y: {}\nload:\n  rate: 1\n  duration: 1s\n  entries:\n    - {service: a, route: /x}\n",
    )
    .unwrap();
    let out = tracelab().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.yaml:6:9"),
        "typo with its line: {stderr}"
    );
    assert!(stderr.contains("latncy"), "{stderr}");
    assert!(
        stderr.contains("broken.yaml:8:"),
        "dangling call with its line: {stderr}"
    );
    assert!(stderr.contains("/nope"), "{stderr}");
}

#[test]
fn check_accepts_every_shipped_scenario() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let out = tracelab().arg("check").args(&files).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        files.len()
    );
}

#[test]
fn check_on_a_missing_file_or_garbage_fails_cleanly() {
    let out = tracelab()
        .args(["check", "/nonexistent/x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let dir = temp("garbage");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("g.yaml");
    std::fs::write(&file, [0xff, 0xfe, b':', b'\n', b'[', b'{']).unwrap();
    let out = tracelab().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "no panic, a clean failure");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn quickstart_runs_with_every_trace_complete_and_no_span_lost() {
    let out_dir = temp("quickstart");
    let out = tracelab()
        .current_dir(repo())
        .args([
            "run",
            "scenarios/quickstart.yaml",
            "--duration",
            "5s",
            "--no-progress",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("complete (100.0 %)"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["load"]["total"], 100);
    assert_eq!(report["traces"]["broken"], 0);
    assert_eq!(report["traces"]["received"], report["traces"]["complete"]);
    assert_eq!(
        report["pipeline"]["spans_received"],
        report["pipeline"]["spans_exported"]
    );
    assert_eq!(report["pipeline"]["spans_lost"], 0);
    // The services and the load generator ran on every core this process may use but one,
    // which was left to the span pipeline (`TOKIO_WORKER_THREADS` would override it).
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            report["pipeline"]["service_workers"],
            cores.saturating_sub(1).max(1),
            "{}",
            report["pipeline"]
        );
    }
    // The services exported over OTLP/HTTP, the default when no protocol is asked for.
    if std::env::var_os("OTEL_EXPORTER_OTLP_PROTOCOL").is_none() {
        assert_eq!(report["scenario"]["otlp_protocol"], "http/protobuf");
    }
    for f in ["spans.otlp.jsonl", "requests.jsonl", "scenario.yaml"] {
        assert!(out_dir.join(f).exists(), "{f} written");
    }
}

#[test]
fn command_line_durations_read_like_the_scenario_files() {
    // `1.5s` is how a scenario writes a duration; the command line reads it the same way.
    let quickstart = repo().join("scenarios/quickstart.yaml");
    let output = tracelab()
        .args(["render", "k8s"])
        .arg(&quickstart)
        .args(["--duration", "1.5s"])
        .output()
        .expect("tracelab runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let manifests = String::from_utf8_lossy(&output.stdout);
    assert!(manifests.contains("1500ms"), "{manifests}");
    // And a mistake is explained as in a scenario file.
    let output = tracelab()
        .args(["render", "k8s"])
        .arg(&quickstart)
        .args(["--duration", "soon"])
        .output()
        .expect("tracelab runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
}

/// The README's first set-up command, as written there: `cargo run --release -p tracelab --`
/// is this test's binary, and everything after `--` is passed unchanged, from the repository
/// root, with the default OTLP ports (moved with a warning if something holds them) and the
/// default run directory under `runs/`.
#[test]
fn the_readme_lab_command_runs_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -p tracelab -- "))
        .expect("README.md's first set-up command");
    let command = line.split('#').next().unwrap().trim();
    let args: Vec<&str> = command
        .strip_prefix("cargo run --release -p tracelab -- ")
        .unwrap()
        .split_whitespace()
        .collect();
    let out = tracelab().current_dir(repo()).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let run_dir = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("run directory: "))
        .map(|d| repo().join(d.trim()));
    if let Some(dir) = &run_dir {
        assert!(dir.join("report.html").is_file(), "{}", dir.display());
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(out.status.success(), "{command}\n{stdout}\n{stderr}");
    // What the README shows a reader: the load, every trace whole, where the time went.
    assert!(
        stdout.contains("quickstart — 200 requests in 10.0s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("traces      200 received, 200 complete (100.0 %), 0 broken"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Where the time of slow requests goes"),
        "{stdout}"
    );
    assert!(stdout.contains("Slowest trace "), "{stdout}");
    assert!(run_dir.is_some(), "{stdout}");
    // And where to go next: the report page, the console.
    let dir = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("run directory: "))
        .unwrap()
        .trim();
    assert!(
        stdout.contains(&format!("report      {dir}/report.html")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("`tracelab serve {dir}`")) && stdout.contains("add `--ui`"),
        "{stdout}"
    );
}
