//! `tracelab run` and `tracelab load` are one load session with two backends: the same cases
//! go through both commands, as a user runs them — the binary, real signals, real files.
//!
//! - SIGTERM (what `timeout`, `docker stop` and Kubernetes send) and SIGINT end a run
//!   gracefully: exit 130, a complete run directory, `report.json` marked interrupted.
//! - A second signal exits at once, keeping every line already recorded.
//! - Command-line overrides go through the scenario's validation, and the message names the
//!   flag.
//! - The root sampler comes from `OTEL_TRACES_SAMPLER` in both.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SCENARIO: &str = "\
# Test scenario: two services, a long steady load to be stopped by a signal.
name: session
seed: 5
services:
  front:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: back, route: /work}
  back:
    routes:
      /work:
        latency: {uniform: {min_ms: 1, max_ms: 5}}
load:
  rate: 40
  duration: 60s
  entries:
    - {service: front, route: /}
";

/// The two commands under test, with what each needs to run the scenario.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    Run,
    Load,
}

struct Setup {
    dir: PathBuf,
    scenario: PathBuf,
    /// For `load`: a trivial target serving the entry route, on its own runtime.
    _target: Option<tokio::runtime::Runtime>,
    target_url: Option<String>,
}

fn setup(name: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("tracelab-session-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = dir.join("session.yaml");
    std::fs::write(&scenario, SCENARIO).expect("scenario file");
    Setup {
        dir,
        scenario,
        _target: None,
        target_url: None,
    }
}

impl Setup {
    fn with_target(mut self) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        runtime.spawn(async move {
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
            axum::serve(listener, app).await
        });
        self.target_url = Some(format!("http://{addr}"));
        self._target = Some(runtime);
        self
    }

    /// The command line of `flavor` for this setup, writing into `out`.
    fn command(&self, flavor: Flavor, out: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tracelab"));
        match flavor {
            Flavor::Run => {
                command.arg("run").arg(&self.scenario).args([
                    "--otlp-grpc",
                    "127.0.0.1:0",
                    "--otlp-http",
                    "127.0.0.1:0",
                ]);
            }
            Flavor::Load => {
                let url = self.target_url.as_deref().expect("load needs a target");
                command
                    .arg("load")
                    .arg(&self.scenario)
                    .arg("--target")
                    .arg(format!("front={url}"));
            }
        }
        command
            .arg("--out")
            .arg(out)
            .arg("--no-progress")
            .args(extra)
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_TRACES_SAMPLER_ARG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the run has recorded at least `n` requests.
fn wait_for_requests(child: &mut Child, out: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&out.join("requests.jsonl")).len() < n {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("exited early with {status}: {err}");
        }
        assert!(Instant::now() < deadline, "no requests recorded in time");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json parses")
}

fn every_line_is_a_record(out: &Path) -> usize {
    let all = lines(&out.join("requests.jsonl"));
    for line in &all {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("cut or bad line {line:?}: {e}"));
        assert!(record["sequence"].is_u64());
    }
    all.len()
}

fn stopped_by(signal: Signal, flavor: Flavor) {
    let name = format!("{flavor:?}-{signal:?}").to_lowercase();
    let setup = match flavor {
        Flavor::Run => setup(&name),
        Flavor::Load => setup(&name).with_target(),
    };
    let out = setup.dir.join("run");
    let mut child = setup.command(flavor, &out, &[]).spawn().expect("spawn");
    wait_for_requests(&mut child, &out, 20);
    kill(Pid::from_raw(child.id() as i32), signal).expect("signal");
    let status = wait_with_timeout(&mut child, Duration::from_secs(45));
    assert_eq!(status.code(), Some(130), "{flavor:?} after {signal:?}");
    let report = report(&out);
    assert_eq!(report["interrupted"], true);
    let recorded = every_line_is_a_record(&out);
    assert_eq!(report["load"]["total"].as_u64(), Some(recorded as u64));
    assert!(out.join("incidents.jsonl").exists());
    assert!(
        report["load"]["send_window_s"].as_f64().unwrap_or(60.0) < 30.0,
        "the summary tells the time actually run: {}",
        report["load"]["send_window_s"]
    );
    if let Flavor::Run = flavor {
        assert_eq!(report["traces"]["broken"], 0);
        assert_eq!(report["traces"]["received"].as_u64(), Some(recorded as u64));
        assert!(out.join("report.html").exists());
    }
    let _ = std::fs::remove_dir_all(&setup.dir);
}

#[test]
fn sigterm_ends_run_and_load_with_a_complete_report() {
    stopped_by(Signal::SIGTERM, Flavor::Run);
    stopped_by(Signal::SIGTERM, Flavor::Load);
}

#[test]
fn sigint_ends_run_and_load_with_a_complete_report() {
    stopped_by(Signal::SIGINT, Flavor::Run);
    stopped_by(Signal::SIGINT, Flavor::Load);
}

#[test]
fn a_second_signal_exits_at_once_keeping_every_recorded_line() {
    for flavor in [Flavor::Run, Flavor::Load] {
        let name = format!("twice-{flavor:?}").to_lowercase();
        let setup = match flavor {
            Flavor::Run => setup(&name),
            Flavor::Load => setup(&name).with_target(),
        };
        let out = setup.dir.join("run");
        // A long client timeout and a stalled drain would keep a graceful stop busy; the
        // second signal must not wait for any of it.
        let mut child = setup.command(flavor, &out, &[]).spawn().expect("spawn");
        wait_for_requests(&mut child, &out, 20);
        let pid = Pid::from_raw(child.id() as i32);
        kill(pid, Signal::SIGINT).expect("first signal");
        std::thread::sleep(Duration::from_millis(20));
        kill(pid, Signal::SIGINT).expect("second signal");
        let status = wait_with_timeout(&mut child, Duration::from_secs(5));
        assert_eq!(status.code(), Some(130), "{flavor:?}");
        assert!(every_line_is_a_record(&out) >= 20, "{flavor:?}");
        let _ = std::fs::remove_dir_all(&setup.dir);
    }
}

#[test]
fn overrides_are_validated_like_the_file_and_name_their_flag() {
    for flavor in [Flavor::Run, Flavor::Load] {
        let name = format!("validate-{flavor:?}").to_lowercase();
        let setup = match flavor {
            Flavor::Run => setup(&name),
            Flavor::Load => setup(&name).with_target(),
        };
        let out = setup.dir.join("run");
        let output = setup
            .command(
                flavor,
                &out,
                &["--arrival", "spike:10@20s+1s", "--duration", "5s"],
            )
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flavor:?}: {stderr}");
        assert!(
            stderr.contains("load.arrival.spike.start (set by --arrival)")
                && stderr.contains("after the load ends"),
            "{flavor:?}: {stderr}"
        );
        assert!(!out.exists(), "no run directory for a refused run");
        let _ = std::fs::remove_dir_all(&setup.dir);
    }
}

#[test]
fn both_commands_sample_roots_with_otel_traces_sampler() {
    for flavor in [Flavor::Run, Flavor::Load] {
        let name = format!("sampler-{flavor:?}").to_lowercase();
        let setup = match flavor {
            Flavor::Run => setup(&name),
            Flavor::Load => setup(&name).with_target(),
        };
        let out = setup.dir.join("run");
        let output = setup
            .command(flavor, &out, &["--rate", "200", "--duration", "2s"])
            .env("OTEL_TRACES_SAMPLER", "traceidratio")
            .env("OTEL_TRACES_SAMPLER_ARG", "0.25")
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{flavor:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = report(&out);
        assert_eq!(report["scenario"]["sampler"], "traceidratio:0.25");
        let records: Vec<serde_json::Value> = lines(&out.join("requests.jsonl"))
            .iter()
            .map(|l| serde_json::from_str(l).expect("record"))
            .collect();
        assert_eq!(records.len(), 400);
        let sampled = records.iter().filter(|r| r["sampled"] == true).count();
        // Binomial(400, 0.25): mean 100, sd 8.7; ±4.5 sd.
        assert!(
            (61..=139).contains(&sampled),
            "{flavor:?}: {sampled} of 400 sampled at 0.25"
        );
        if let Flavor::Run = flavor {
            // Only sampled roots make traces; every one of them arrives whole.
            assert_eq!(report["traces"]["received"].as_u64(), Some(sampled as u64));
            assert_eq!(report["traces"]["broken"], 0);
        }
        let _ = std::fs::remove_dir_all(&setup.dir);
    }
}
