//! Aggregation of request records into HDR histograms.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::record::{Outcome, RequestRecord};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// What the load generator sent and saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    /// Requests sent (those with a record).
    pub total: u64,
    /// Requests that did not end `ok`.
    pub errors: u64,
    /// Requests per outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Requests per entry label.
    pub per_entry: BTreeMap<String, u64>,
    /// Latency from the scheduled instant.
    pub latency_ms: LatencySummary,
    /// Requests that started more than 1 ms after their scheduled instant.
    pub late_starts: u64,
    /// Target rate (requests per second).
    pub target_rate: f64,
    /// Requests completed per second of wall time.
    pub achieved_rate: f64,
    /// Wall time from the first scheduled instant to the last answer.
    pub elapsed_s: f64,
    /// True when the run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// The collector's running totals.
#[derive(Debug)]
pub struct Collector {
    latency_us: Histogram<u64>,
    total: u64,
    errors: u64,
    late_starts: u64,
    outcomes: BTreeMap<Outcome, u64>,
    per_entry: BTreeMap<String, u64>,
}

/// Starts more than this late count as late.
const LATE_START: Duration = Duration::from_millis(1);

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    /// Empty totals. The histogram covers 1 µs to 1 hour at three significant digits.
    pub fn new() -> Self {
        Collector {
            // 1 µs .. 1 h at 3 significant digits cannot fail to construct.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| Histogram::new(3).expect("3 significant digits is valid")),
            total: 0,
            errors: 0,
            late_starts: 0,
            outcomes: BTreeMap::new(),
            per_entry: BTreeMap::new(),
        }
    }

    /// Adds one record.
    pub fn add(&mut self, r: &RequestRecord) {
        self.total += 1;
        if r.error {
            self.errors += 1;
        }
        if r.start_unix_nano.saturating_sub(r.scheduled_unix_nano) > LATE_START.as_nanos() as u64 {
            self.late_starts += 1;
        }
        *self.outcomes.entry(r.outcome).or_default() += 1;
        *self.per_entry.entry(r.entry.clone()).or_default() += 1;
        let us = (r.latency_ms * 1000.0).round().max(1.0) as u64;
        self.latency_us.saturating_record(us);
    }

    /// The summary so far.
    pub fn summary(&self, target_rate: f64, elapsed: Duration, interrupted: bool) -> LoadSummary {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.latency_us;
        let latency_ms = if self.total == 0 {
            LatencySummary::default()
        } else {
            LatencySummary {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                p999: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            }
        };
        let secs = elapsed.as_secs_f64();
        LoadSummary {
            total: self.total,
            errors: self.errors,
            outcomes: self.outcomes.clone(),
            per_entry: self.per_entry.clone(),
            latency_ms,
            late_starts: self.late_starts,
            target_rate,
            achieved_rate: if secs > 0.0 {
                self.total as f64 / secs
            } else {
                0.0
            },
            elapsed_s: secs,
            interrupted,
        }
    }
}
