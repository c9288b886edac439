//! A lab that cannot keep its times says so. The `tracelab` binary runs, as a user runs it, on
//! one core that four busy loops are also given (`taskset`), so its workers (which also end
//! the injected waits) get a quarter of a core in slices of milliseconds: the injected waits
//! run milliseconds long.
//! The run must flag itself in the terminal summary, in report.json (`timing.trustworthy`,
//! `timing.message`) and in report.html, and still finish with every file written and every
//! span delivered, whether or not the kernel puts the busy loops in scheduling groups of their
//! own (`kernel.sched_autogroup_enabled`): where it does not, the span pipeline must not run at
//! a lowered priority, which would leave it almost none of the core.
//!
//! Linux only (`taskset` and `setsid`, from util-linux); skipped with a message where missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SCENARIO: &str = "\
# Test scenario: a route with a 2 ms wait, called often enough to measure its overrun.
name: overload
seed: 5
services:
  front:
    routes:
      /:
        latency: {constant: 2}
        steps:
          - {work: compute, latency: {constant: 1}}
load:
  rate: 100
  duration: 3s
  entries:
    - {service: front, route: /}
";

/// Busy loops pinned to `core`, killed on drop. Each runs in a session of its own (`setsid`,
/// which execs in place: the child spawned here is not a group leader), as other programs on a
/// machine do: with autogroup scheduling the kernel shares a core between sessions first.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start(core: &str, n: usize) -> Hogs {
        Hogs(
            (0..n)
                .map(|_| {
                    Command::new("setsid")
                        .args(["taskset", "-c", core, "sh", "-c", "while :; do :; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("spawn a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracelab-overload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn has_taskset() -> bool {
    ["taskset", "setsid"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn an_overloaded_run_says_its_times_are_not_trustworthy() {
    if !has_taskset() {
        eprintln!("skipped: taskset or setsid (util-linux) is not installed");
        return;
    }
    let dir = scratch();
    let scenario = dir.join("overload.yaml");
    std::fs::write(&scenario, SCENARIO).expect("write scenario");
    let out = dir.join("run");

    let _hogs = Hogs::start("0", 4);
    // Let the busy loops take their share before the lab starts.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let output = Command::new("taskset")
        .args(["-c", "0"])
        .arg(env!("CARGO_BIN_EXE_tracelab"))
        .args(["run"])
        .arg(&scenario)
        .args([
            "--out",
            out.to_str().expect("utf-8 path"),
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--no-progress",
        ])
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("run tracelab");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the run failed after {:?}:\n{stdout}\n{stderr}",
        started.elapsed()
    );

    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json written"),
    )
    .expect("report.json is JSON");
    let timing = &report["timing"];
    let waits = &timing["injected_waits"];
    assert!(
        waits["count"].as_u64().unwrap_or(0) >= 250,
        "the waits were measured: {timing}"
    );
    assert!(
        waits["p99_us"].as_f64().unwrap_or(0.0) > 1000.0,
        "on a quarter of a core the waits must run long at p99: {timing}"
    );
    assert_eq!(timing["trustworthy"], false, "{timing}");
    // Late, but whole: the span pipeline still delivered every span.
    let pipeline = &report["pipeline"];
    assert_eq!(pipeline["spans_lost"], 0, "{pipeline}");
    assert_eq!(
        pipeline["spans_received"], pipeline["spans_ended"],
        "{pipeline}"
    );
    // The busy loops were there as the run started: the pipeline took its fair share of the
    // core, not the lowest (which, where they share its scheduling group, starves it).
    assert_eq!(pipeline["priority"]["policy"], "normal", "{pipeline}");
    assert!(
        pipeline["priority"]["others_busy_percent"]
            .as_f64()
            .is_some_and(|busy| busy > 50.0),
        "{pipeline}"
    );
    let message = timing["message"].as_str().expect("a message");
    assert!(message.contains("overloaded"), "{message}");
    assert!(message.contains("not trustworthy"), "{message}");

    assert!(
        stdout.contains("results are not trustworthy"),
        "the terminal summary says so:\n{stdout}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html written");
    assert!(
        html.contains("results are not trustworthy"),
        "report.html says so"
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
