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
    /// Never sent: the cap on requests in flight was reached when it was due. Such a record
    /// has an empty `trace_id` (no trace was started), no status, and start = end = the
    /// scheduled instant.
    Dropped,
}

impl Outcome {
    /// Everything but `Ok` counts as an error.
    pub fn is_error(&self) -> bool {
        *self != Outcome::Ok
    }

    /// The status class a request is reported under: `2xx`…`5xx` when there was an answer,
    /// else the outcome's name.
    pub fn class(&self, status: Option<u16>) -> &'static str {
        match (self, status) {
            (Outcome::Ok | Outcome::HttpError, Some(code)) => match code / 100 {
                1 => "1xx",
                2 => "2xx",
                3 => "3xx",
                4 => "4xx",
                _ => "5xx",
            },
            (Outcome::Timeout, _) => "timeout",
            (Outcome::ConnectError, _) => "connect_error",
            (Outcome::Dropped, _) => "dropped",
            _ => "request_error",
        }
    }
}

/// One request as the load generator saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Position in the schedule, from 0.
    pub sequence: u64,
    /// Trace id of the request's root span (32 hex digits); empty when no span was made
    /// (a dropped request, or a run with tracing off).
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
    /// How long after its scheduled instant the request actually started, in milliseconds
    /// (waiting for a free connection or a busy scheduler).
    #[serde(default)]
    pub late_by_ms: f64,
    /// Whether the root span was sampled (recorded and exported); absent when no span was
    /// made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<bool>,
    /// Closed-loop virtual user that sent the request; absent in open loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<u32>,
    /// Baggage sent with the request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baggage: BTreeMap<String, String>,
}
