//! Running a scenario through `run_lab` and reading its run directory back.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, RunOutcome, run_lab};
use tracelab_receiver::ReceiverConfig;
use tracelab_scenario::Scenario;
use tracelab_telemetry::OtlpProtocol;
use tracelab_trace::{Span, Trace};

/// A finished run.
pub struct Run {
    pub outcome: RunOutcome,
    pub dir: PathBuf,
    /// Every line of `requests.jsonl`.
    pub requests: Vec<serde_json::Value>,
    /// Every line of `incidents.jsonl`.
    pub incidents: Vec<serde_json::Value>,
    /// `report.json`.
    pub report: serde_json::Value,
    /// When the load started (the first request's scheduled instant), Unix nanoseconds.
    pub start_unix_nano: u64,
}

/// The text of a file of the scenario library.
pub fn library(file: &str) -> String {
    let path = format!("{}/../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses a scenario, failing the test with every diagnostic.
pub fn parse(source: &str) -> Scenario {
    tracelab_scenario::parse(source, "lesson.yaml").unwrap_or_else(|d| panic!("{d}"))
}

/// How many labs run at once. Each lab is a dozen servers, a receiver and a load generator;
/// timing lessons (a 5 ms route staying under 100 ms) need the machine not to be the
/// bottleneck, and one at a time would make the suite needlessly slow.
static LABS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(3);

/// Runs `scenario` (from `source`) into a fresh run directory.
pub async fn run(scenario: Scenario, source: &str, name: &str) -> Run {
    let _turn = LABS.acquire().await.expect("the semaphore is never closed");
    let dir = std::env::temp_dir().join(format!(
        "tracelab-lesson-{name}-{}-{}",
        std::process::id(),
        tracelab_services::faults::unix_nanos(std::time::SystemTime::now())
    ));
    let outcome = run_lab(
        RunOptions {
            scenario,
            scenario_source: source.to_string(),
            scenario_file: format!("{name}.yaml"),
            out: dir.clone(),
            protocol: OtlpProtocol::Grpc,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(15),
            keep_traces: true,
        },
        CancellationToken::new(),
    )
    .await
    .expect("the run succeeds");
    let lines = |file: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    };
    let requests = lines("requests.jsonl");
    let incidents = lines("incidents.jsonl");
    let report = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    let start_unix_nano = requests
        .iter()
        .filter_map(|r| r["scheduled_unix_nano"].as_u64())
        .min()
        .expect("requests were sent");
    Run {
        outcome,
        dir,
        requests,
        incidents,
        report,
        start_unix_nano,
    }
}

impl Run {
    pub fn traces(&self) -> &[Trace] {
        &self.outcome.traces
    }

    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.outcome.traces.iter().flat_map(|t| t.spans.iter())
    }

    /// Seconds from the start of the load to `unix_nano`.
    pub fn at(&self, unix_nano: u64) -> f64 {
        (unix_nano as f64 - self.start_unix_nano as f64) / 1e9
    }

    /// The one incident window of the run, in seconds from the start of the load.
    pub fn window(&self) -> (f64, f64) {
        assert_eq!(self.incidents.len(), 1, "{:?}", self.incidents);
        let w = &self.incidents[0];
        (
            self.at(w["start_unix_nano"].as_u64().unwrap()),
            self.at(w["end_unix_nano"].as_u64().unwrap()),
        )
    }

    /// Whether `span` started inside the incident window, shrunk by `edge` seconds on each
    /// side; `Some(false)` when outside it, grown by `edge`; `None` in between.
    pub fn inside(&self, unix_nano: u64, edge: f64) -> Option<bool> {
        let (start, end) = self.window();
        let t = self.at(unix_nano);
        if t >= start + edge && t <= end - edge {
            Some(true)
        } else if t < start - edge || t > end + edge {
            Some(false)
        } else {
            None
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn attr_str<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    span.attr(key).and_then(|v| v.as_str())
}

pub fn attr_f64(span: &Span, key: &str) -> Option<f64> {
    span.attr(key).and_then(|v| v.as_f64())
}
