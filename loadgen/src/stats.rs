//! Aggregation of request records into HDR histograms: overall, per entry route, per status
//! class, and per second (the timeline). One collector owns them all, so no lock is needed and
//! no sample is ever kept to be sorted.

mod timeline;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::record::{Outcome, RequestRecord};
use tracelab_scenario::RateProfile;

pub use timeline::SecondStats;
use timeline::Timeline;

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
    /// 99.99th percentile.
    pub p9999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl LatencySummary {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            p9999: ms(h.value_at_quantile(0.9999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// Counts and latency of one slice of the requests (an entry route, a status class).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// Requests in the slice.
    pub count: u64,
    /// Of which did not end `ok`.
    pub errors: u64,
    /// Their latency from the scheduled instant (dropped requests have none).
    pub latency_ms: LatencySummary,
}

/// What the load generator sent and saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    /// How the load was driven, e.g. `constant 20/s` or `closed loop, 8 users, …`.
    pub driver: String,
    /// Requests with a record: sent ones plus dropped ones.
    pub total: u64,
    /// Requests actually sent.
    pub sent: u64,
    /// Requests that did not end `ok` (dropped ones included).
    pub errors: u64,
    /// Requests dropped by the client because the in-flight cap was reached.
    pub dropped: u64,
    /// Requests per outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Requests per entry label.
    pub per_entry: BTreeMap<String, u64>,
    /// Latency from the scheduled instant, over every sent request.
    pub latency_ms: LatencySummary,
    /// Per entry label: counts and latency.
    pub entries: BTreeMap<String, GroupSummary>,
    /// Per status class (`2xx`, `5xx`, `timeout`, `dropped`, …): counts and latency.
    pub status_classes: BTreeMap<String, GroupSummary>,
    /// Requests that started more than 1 ms after their scheduled instant.
    pub late_starts: u64,
    /// How late the late starts were.
    pub late_by_ms: LatencySummary,
    /// Mean target rate (requests per second; 0 in closed loop).
    pub target_rate: f64,
    /// Requests sent per second of wall time.
    pub achieved_rate: f64,
    /// Wall time from the first scheduled instant to the last answer.
    pub elapsed_s: f64,
    /// Per second of the run, by the second each request ended in.
    pub timeline: Vec<SecondStats>,
    /// True when the run was stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// A cheap view of a run in progress, for the live progress line.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProgressSnapshot {
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Requests with a record so far.
    pub total: u64,
    /// Of which errors (dropped included).
    pub errors: u64,
    /// Of which dropped by the client.
    pub dropped: u64,
    /// The last whole second: requests ended, target, p99.
    pub last_second: Option<SecondStats>,
}

/// Starts more than this late count as late.
const LATE_START: Duration = Duration::from_millis(1);

/// A histogram of microseconds from 1 µs to 1 hour at three significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    // These bounds are valid, so construction cannot fail; the fallback is auto-resizing.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
        let mut h = Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits are valid"));
        h.auto(true);
        h
    })
}

fn micros(ms: f64) -> u64 {
    (ms * 1000.0).round().max(1.0) as u64
}

/// One slice's running totals.
#[derive(Debug)]
struct Group {
    count: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

impl Group {
    fn new() -> Self {
        Group {
            count: 0,
            errors: 0,
            latency_us: latency_histogram(),
        }
    }

    fn add(&mut self, r: &RequestRecord) {
        self.count += 1;
        self.errors += u64::from(r.error);
        if r.outcome != Outcome::Dropped {
            self.latency_us.saturating_record(micros(r.latency_ms));
        }
    }

    fn summary(&self) -> GroupSummary {
        GroupSummary {
            count: self.count,
            errors: self.errors,
            latency_ms: LatencySummary::of(&self.latency_us),
        }
    }
}

/// The collector's running totals.
#[derive(Debug)]
pub struct Collector {
    driver: String,
    origin_unix_nano: u64,
    overall: Group,
    dropped: u64,
    late_starts: u64,
    late_us: Histogram<u64>,
    outcomes: BTreeMap<Outcome, u64>,
    entries: BTreeMap<String, Group>,
    classes: BTreeMap<&'static str, Group>,
    timeline: Timeline,
    target_rate: f64,
}

impl Collector {
    /// Empty totals for a run starting at `origin_unix_nano`. `target` is the open-loop rate
    /// profile, which gives each second its target; `None` in closed loop.
    pub fn new(
        driver: String,
        origin_unix_nano: u64,
        target: Option<RateProfile>,
        target_rate: f64,
    ) -> Self {
        Collector {
            driver,
            origin_unix_nano,
            overall: Group::new(),
            dropped: 0,
            late_starts: 0,
            late_us: latency_histogram(),
            outcomes: BTreeMap::new(),
            entries: BTreeMap::new(),
            classes: BTreeMap::new(),
            timeline: Timeline::new(target),
            target_rate,
        }
    }

    /// Adds one record.
    pub fn add(&mut self, r: &RequestRecord) {
        self.overall.add(r);
        if r.outcome == Outcome::Dropped {
            self.dropped += 1;
        }
        let late_ns = r.start_unix_nano.saturating_sub(r.scheduled_unix_nano);
        let late = late_ns > LATE_START.as_nanos() as u64;
        if late {
            self.late_starts += 1;
            self.late_us.saturating_record((late_ns / 1000).max(1));
        }
        *self.outcomes.entry(r.outcome).or_default() += 1;
        match self.entries.get_mut(&r.entry) {
            Some(group) => group.add(r),
            None => {
                let mut group = Group::new();
                group.add(r);
                self.entries.insert(r.entry.clone(), group);
            }
        }
        self.classes
            .entry(r.outcome.class(r.status))
            .or_insert_with(Group::new)
            .add(r);
        let second = r.end_unix_nano.saturating_sub(self.origin_unix_nano) / 1_000_000_000;
        self.timeline.add(second, r, late);
    }

    /// Closes the seconds that ended before `elapsed` minus one second of slack (records of
    /// a second may still be on their way just after it ends).
    pub fn tick(&mut self, elapsed: Duration) {
        self.timeline
            .close_before(elapsed.as_secs().saturating_sub(1));
    }

    /// The cheap view for the progress line.
    pub fn snapshot(&self, elapsed: Duration) -> ProgressSnapshot {
        ProgressSnapshot {
            elapsed_s: elapsed.as_secs_f64(),
            total: self.overall.count,
            errors: self.overall.errors,
            dropped: self.dropped,
            last_second: self.timeline.last_closed(),
        }
    }

    /// The summary; closes every second.
    pub fn summary(&mut self, elapsed: Duration, interrupted: bool) -> LoadSummary {
        self.timeline.close_all(elapsed.as_secs_f64().ceil() as u64);
        let secs = elapsed.as_secs_f64();
        let sent = self.overall.count - self.dropped;
        LoadSummary {
            driver: self.driver.clone(),
            total: self.overall.count,
            sent,
            errors: self.overall.errors,
            dropped: self.dropped,
            outcomes: self.outcomes.clone(),
            per_entry: self
                .entries
                .iter()
                .map(|(k, g)| (k.clone(), g.count))
                .collect(),
            latency_ms: LatencySummary::of(&self.overall.latency_us),
            entries: self
                .entries
                .iter()
                .map(|(k, g)| (k.clone(), g.summary()))
                .collect(),
            status_classes: self
                .classes
                .iter()
                .map(|(k, g)| ((*k).to_string(), g.summary()))
                .collect(),
            late_starts: self.late_starts,
            late_by_ms: LatencySummary::of(&self.late_us),
            target_rate: self.target_rate,
            achieved_rate: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
            elapsed_s: secs,
            timeline: self.timeline.rows().to_vec(),
            interrupted,
        }
    }
}
