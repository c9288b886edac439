//! What really happened: the load generator's `requests.jsonl` and the optional
//! `incidents.jsonl`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracelab_trace::TraceId;

/// Why a ground-truth file could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct GroundTruthError {
    /// 1-based line of the bad record.
    pub line: usize,
    /// What was wrong with it.
    pub message: String,
}

/// One request as the load generator recorded it. Unknown fields are ignored: the file is
/// machine-written and may grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthRequest {
    /// The trace the request started.
    pub trace_id: TraceId,
    /// The entry point, e.g. `frontend GET /`.
    #[serde(default)]
    pub entry: String,
    /// When the request was due, ns since the epoch.
    #[serde(default)]
    pub scheduled_unix_nano: u64,
    /// When it was sent, ns since the epoch.
    #[serde(default)]
    pub start_unix_nano: u64,
    /// When it completed (or gave up), ns since the epoch.
    #[serde(default)]
    pub end_unix_nano: u64,
    /// HTTP status, `None` when no response came.
    #[serde(default)]
    pub status: Option<u16>,
    /// `ok`, `http_error`, `timeout`, `connect_error`, `dropped`, …
    #[serde(default)]
    pub outcome: String,
    /// True when the request failed in any way.
    #[serde(default)]
    pub error: bool,
    /// Latency from the scheduled instant, ms.
    #[serde(default)]
    pub latency_ms: f64,
    /// Baggage the request carried.
    #[serde(default)]
    pub baggage: BTreeMap<String, String>,
}

/// A window of time during which an incident was injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentInterval {
    /// Start, ns since the epoch.
    pub start_unix_nano: u64,
    /// End, ns since the epoch.
    pub end_unix_nano: u64,
    /// What happened.
    #[serde(default)]
    pub what: String,
}

impl IncidentInterval {
    /// True when the instant is inside the window (both ends included).
    pub fn contains(&self, t: u64) -> bool {
        self.start_unix_nano <= t && t <= self.end_unix_nano
    }
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(text: &str) -> Result<Vec<T>, GroundTruthError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| GroundTruthError {
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Reads `requests.jsonl`: one JSON object per line, blank lines skipped.
pub fn read_requests_jsonl(text: &str) -> Result<Vec<GroundTruthRequest>, GroundTruthError> {
    read_jsonl(text)
}

/// Reads `incidents.jsonl`: one window per line, blank lines skipped.
pub fn read_incidents_jsonl(text: &str) -> Result<Vec<IncidentInterval>, GroundTruthError> {
    read_jsonl(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_ignoring_unknown_fields() {
        let text = r#"{"trace_id":"5b8efff798038103d269b633813fc60c","entry":"frontend GET /","scheduled_unix_nano":1,"start_unix_nano":2,"end_unix_nano":3,"status":503,"outcome":"http_error","error":true,"latency_ms":12.5,"baggage":{"user":"a"},"future":1}

{"trace_id":"00000000000000000000000000000001","entry":"x","scheduled_unix_nano":1,"start_unix_nano":2,"end_unix_nano":3,"status":null,"outcome":"timeout","error":true,"latency_ms":1000}
"#;
        let r = read_requests_jsonl(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].status, Some(503));
        assert_eq!(r[0].baggage["user"], "a");
        assert_eq!(r[1].status, None);
        assert!(r[1].baggage.is_empty());
        let err = read_requests_jsonl("{}\n{\"trace_id\":\"zz\"}").unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn reads_incident_windows() {
        let w = read_incidents_jsonl(
            "{\"start_unix_nano\":10,\"end_unix_nano\":20,\"what\":\"db slow\"}\n",
        )
        .unwrap();
        assert!(w[0].contains(10) && w[0].contains(20) && !w[0].contains(21));
    }
}
