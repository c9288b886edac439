//! One request's ground-truth record, one line of `requests.jsonl`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a request ended, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 1xx–3xx answer.
    Ok,
    /// A 4xx or 5xx answer.
    HttpError,
    /// No answer within the client timeout.
    Timeout,
    /// The connection could not be made.
    ConnectError,
    /// Any other transport failure.
    RequestError,
}

impl Outcome {
    /// Everything but `Ok` counts as an error.
    pub fn is_error(&self) -> bool {
        *self != Outcome::Ok
    }
}

/// One request as the load generator saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Position in the schedule, from 0.
    pub sequence: u64,
    /// Trace id of the request's root span (32 hex digits).
    pub trace_id: String,
    /// Entry label: `service METHOD /route`.
    pub entry: String,
    /// Entry service.
    pub service: String,
    /// Entry route.
    pub route: String,
    /// When the request was due, nanoseconds since the Unix epoch.
    pub scheduled_unix_nano: u64,
    /// When it was actually sent.
    pub start_unix_nano: u64,
    /// When the answer (or failure) arrived.
    pub end_unix_nano: u64,
    /// End minus *scheduled* time, in milliseconds: the latency a user would have seen.
    pub latency_ms: f64,
    /// End minus actual start, in milliseconds: what the service alone took.
    pub service_time_ms: f64,
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// Client-side outcome.
    pub outcome: Outcome,
    /// True unless the outcome is `ok`.
    pub error: bool,
    /// Baggage sent with the request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baggage: BTreeMap<String, String>,
}
