//! Tried as a hostile or careless user would: each case runs the `tracelab` binary as a user
//! does and checks what the user would see. Each is one row of the robustness review:
//!
//! - B1: a disk that fills up mid-run (a small `RLIMIT_FSIZE`) ends the run, with the summary,
//!   the report and exit code 1, never a hang;
//! - B2/B3: what the lab cannot honour (`--rate 1e12`, incidents every microsecond) is refused
//!   before anything starts, naming the flag or the field;
//! - B5/B6: `report` and `compare` read a run whose last lines a crash cut short;
//! - B7: with few file descriptors the load generator stays within them: no "Too many open
//!   files", every trace whole, and the report says the connection limit shaped the run;
//! - a failed start leaves no run directory behind;
//! - a piece of a trace sent by another program mid-run is counted as a rootless trace, and
//!   the summary says what that is and why more traces than requests were received;
//! - exporters given small queues sent seldom (`OTEL_BSP_*`) fall behind the load: the load
//!   is held while their queues drain, no span is lost, and the summary says so and why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn tracelab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tracelab"));
    command
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_TRACES_SAMPLER_ARG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    command
}

fn chain() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chain.yaml")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracelab-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The run flags every lab run here takes: free receiver ports, no progress line.
const LAB: [&str; 5] = [
    "--otlp-grpc",
    "127.0.0.1:0",
    "--otlp-http",
    "127.0.0.1:0",
    "--no-progress",
];

/// Runs `command` (through `bash -c` when `shell` is given, for `ulimit`), at most `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_bounded(child, limit)
}

/// Waits for `child` (spawned with its output piped), at most `limit`.
fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {limit:?}: the run hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The standard output of a run that must have succeeded.
fn succeeded(output: &Output) -> String {
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    stdout
}

fn report(dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join("report.json")).expect("report.json");
    serde_json::from_slice(&bytes).expect("report.json parses")
}

/// `bash -c` with `ulimit` before `exec`ing tracelab with `args`.
fn limited(setup: &str, args: &[&str]) -> Command {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_tracelab").to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("{setup}; exec {}", quoted.join(" ")))
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    command
}

#[test]
fn b1_a_full_disk_ends_the_run_with_its_report_and_exit_1() {
    let out = scratch("disk");
    let out_s = out.display().to_string();
    let chain_s = chain().display().to_string();
    // 200 KiB per file: the span file fills within the first second, requests.jsonl by the
    // end. SIGXFSZ is ignored, as a shell's `ulimit -f` leaves it on a real full disk: the
    // writes fail with an error instead of killing the process.
    let mut args = vec![
        "run",
        &chain_s,
        "--rate",
        "200",
        "--duration",
        "3s",
        "--out",
        &out_s,
    ];
    args.extend(LAB);
    let output = run_bounded(
        limited("trap '' XFSZ; ulimit -f 200", &args),
        Duration::from_secs(90),
    );
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("chain — "),
        "the summary is printed: {stdout}"
    );
    let report = report(&out);
    assert!(
        report["pipeline"]["span_file_write_failures"].as_u64() > Some(0),
        "{:#}",
        report["pipeline"]
    );
    assert!(report["load"]["record_write_failures"].as_u64() > Some(0));
    // The analysis saw every span even though the file could not hold them.
    assert_eq!(report["traces"]["broken"], 0);
    assert_eq!(report["load"]["total"], 600);
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("disk full"), "{warnings}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn b2_b3_what_the_lab_cannot_honour_is_refused_up_front() {
    let out = scratch("limits");
    let started = Instant::now();
    let output = tracelab()
        .args(["run", &chain().display().to_string(), "--rate", "1e12"])
        .arg("--out")
        .arg(&out)
        .args(LAB)
        .output()
        .expect("run");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("load.rate (set by --rate)") && stderr.contains("limit"),
        "{stderr}"
    );
    let output = tracelab()
        .args([
            "run",
            &chain().display().to_string(),
            "--arrival",
            "ramp:1:1e12",
        ])
        .arg("--out")
        .arg(&out)
        .args(LAB)
        .output()
        .expect("run");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("load.arrival.ramp.to (set by --arrival)"),
        "{stderr}"
    );
    // Incidents every microsecond: `check` and `run` refuse the file, with its line.
    let file = scratch("flood.yaml");
    std::fs::write(
        &file,
        std::fs::read_to_string(chain()).unwrap()
            + "random_incidents:\n  interval: 1us\n  hold: 1us\n  faults:\n    - {service: leaf, kind: hang}\n",
    )
    .unwrap();
    let output = tracelab().arg("check").arg(&file).output().expect("check");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("random_incidents.interval") && stderr.contains("shorter than the limit"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!out.exists(), "no run directory for a refused run");
    let _ = std::fs::remove_file(&file);
}

/// A finished short run of the chain, to damage.
fn short_run(name: &str) -> PathBuf {
    let out = scratch(name);
    let output = tracelab()
        .args([
            "run",
            &chain().display().to_string(),
            "--rate",
            "100",
            "--duration",
            "2s",
        ])
        .arg("--out")
        .arg(&out)
        .args(LAB)
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", text(&output.stderr));
    out
}

fn cut(path: &Path, bytes: u64) {
    let len = std::fs::metadata(path).expect("file").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    file.set_len(len - bytes).expect("truncate");
}

#[test]
fn b5_b6_report_and_compare_read_a_run_a_crash_cut_short() {
    let out = short_run("cut");
    cut(&out.join("spans.otlp.jsonl"), 100);
    cut(&out.join("requests.jsonl"), 40);
    let output = tracelab()
        .arg("report")
        .arg(&out)
        .arg("--quiet")
        .output()
        .expect("report");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("spans.otlp.jsonl was cut short") && stderr.contains("bytes were skipped"),
        "{stderr}"
    );
    let strategies =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../sampling/strategies.example.yaml");
    let output = tracelab()
        .arg("compare")
        .arg(&out)
        .arg("--strategies")
        .arg(&strategies)
        .output()
        .expect("compare");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("requests.jsonl was cut short"), "{stderr}");
    assert!(out.join("sampling.json").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn b7_few_file_descriptors_bound_the_connections_not_the_traces() {
    let out = scratch("nofile");
    let out_s = out.display().to_string();
    // 300 descriptors: 44 left after the reserve, 6 per request of a 3-hop chain in one
    // process, 7 connections. 400 requests/s with 25 ms each need 10 at once.
    let slow_chain = scratch("slow-chain.yaml");
    std::fs::write(
        &slow_chain,
        std::fs::read_to_string(chain())
            .unwrap()
            .replace("latency: {constant: 1}", "latency: {constant: 12}"),
    )
    .unwrap();
    let slow_s = slow_chain.display().to_string();
    let mut args = vec![
        "run",
        &slow_s,
        "--rate",
        "400",
        "--duration",
        "3s",
        "--out",
        &out_s,
    ];
    args.extend(LAB);
    let output = run_bounded(limited("ulimit -n 300", &args), Duration::from_secs(120));
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    let report = report(&out);
    let connections = &report["load"]["connections"];
    assert!(
        connections["limit"].as_u64().is_some_and(|l| l <= 10),
        "{connections:#}"
    );
    assert!(
        connections["warning"]
            .as_str()
            .is_some_and(|w| w.contains("raise --connections")),
        "{connections:#}"
    );
    assert_eq!(
        report["load"]["outcomes"]["ok"], 1200,
        "{:#}",
        report["load"]
    );
    assert_eq!(report["traces"]["broken"], 0);
    assert_eq!(report["pipeline"]["spans_lost"], 0);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&slow_chain);
}

#[test]
fn a_failed_start_leaves_no_run_directory() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = scratch("failed-start");
    let run = |grpc: String| {
        tracelab()
            .args(["run", &chain().display().to_string(), "--duration", "1s"])
            .arg("--out")
            .arg(&out)
            .args([
                "--otlp-grpc",
                &grpc,
                "--otlp-http",
                "127.0.0.1:0",
                "--no-progress",
            ])
            .output()
            .expect("run")
    };
    let output = run(format!("127.0.0.1:{port}"));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("port {port} in use")), "{stderr}");
    assert!(!out.exists(), "a failed start left {}", out.display());
    // The same --out works once the port is free.
    let output = run("127.0.0.1:0".to_string());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_stray_piece_of_a_trace_is_counted_rootless_and_explained() {
    let out = scratch("stray");
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = tracelab()
        .args(["run", &chain().display().to_string()])
        .args(["--rate", "20", "--duration", "3s", "--no-progress"])
        .args(["--otlp-grpc", "127.0.0.1:0"])
        .args(["--otlp-http", &format!("127.0.0.1:{http}")])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", http)) {
            Ok(stream) => break stream,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the receiver never listened: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    // One span whose parent no one will ever send, as OTLP/JSON.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"stray"}}}}]}},"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173","name":"piece","kind":2,"startTimeUnixNano":"{}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
        now - 1_000_000,
        now
    );
    use std::io::{Read, Write};
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("sent");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let stdout = succeeded(&wait_bounded(child, Duration::from_secs(90)));
    let report = report(&out);
    let traces = &report["traces"];
    assert_eq!(traces["rootless"], 1, "{traces:#}");
    assert_eq!(traces["broken"], 1, "{traces:#}");
    assert_eq!(
        traces["received"].as_u64(),
        report["load"]["total"].as_u64().map(|n| n + 1),
        "{traces:#}"
    );
    assert!(stdout.contains("1 broken (1 without a root)"), "{stdout}");
    assert!(
        stdout.contains(
            "warning: 1 traces have no root span, and no span was lost: they are pieces that \
             reached the receiver after the rest of their trace had been analysed"
        ),
        "{stdout}"
    );
    assert!(
        report["warnings"].to_string().contains("traces.rootless"),
        "{:#}",
        report["warnings"]
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn exporters_that_fall_behind_hold_the_load_and_lose_no_span() {
    let out = scratch("held");
    let mut args = vec![
        "run".to_string(),
        chain().display().to_string(),
        "--rate".into(),
        "100".into(),
        "--duration".into(),
        "4s".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(LAB.iter().map(|a| a.to_string()));
    // Queues of 1,024 spans sent every 2 s: `front` ends 200 spans a second, so its queue
    // passes a quarter full (the lab's threshold) well before each export.
    let mut command = tracelab();
    command
        .args(&args)
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "1024")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024")
        .env("OTEL_BSP_SCHEDULE_DELAY", "2000");
    let stdout = succeeded(&run_bounded(command, Duration::from_secs(90)));
    let report = report(&out);
    let held = &report["load"]["held"];
    assert!(held["count"].as_u64() >= Some(1), "{held:#}");
    assert!(held["seconds"].as_f64() > Some(0.0), "{held:#}");
    assert_eq!(
        report["load"]["total"], 400,
        "held requests start late, none is skipped"
    );
    assert_eq!(
        report["pipeline"]["spans_lost"], 0,
        "{:#}",
        report["pipeline"]
    );
    assert_eq!(report["traces"]["complete"], 400, "{:#}", report["traces"]);
    assert!(
        stdout.contains(
            "the span pipeline fell behind, so the load generator held its requests back"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "the exporters ran with OTEL_BSP_* settings of their own (queue 1024 spans, \
             batches of 1024, sent every 2000 ms"
        ),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&out);
}
