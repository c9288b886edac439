//! Aggregation of request records into HDR histograms: overall, per entry route, per status
//! class, and per second (the timeline). One collector owns them all, so no lock is needed and
//! no sample is ever kept to be sorted.

mod timeline;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use std::sync::Arc;

use crate::record::Outcome;
use crate::request::Prepared;
use crate::sample::Sample;
use tracelab_scenario::RateProfile;

pub use timeline::SecondStats;
use timeline::Timeline;

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ResponseLatency {
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

impl ResponseLatency {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return ResponseLatency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        ResponseLatency {
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
    pub latency_ms: ResponseLatency,
}

/// How precisely the scheduler released requests at their scheduled instants, in
/// microseconds (open loop only; the release is when a request was handed to a connection).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ScheduleError {
    /// Median lateness of a release.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
}

/// How long the driver held requests back because whatever records them fell behind (the
/// lab's span pipeline; see `runner::Backpressure`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HoldSummary {
    /// Times the driver was held.
    pub count: u64,
    /// Seconds held, in all.
    pub seconds: f64,
    /// Set when the driver was held: what happened and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The connections the load went over.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ConnectionSummary {
    /// The most that could be open at once: `--connections`, or what the file-descriptor
    /// budget allows; the number of users in a closed loop.
    pub limit: u64,
    /// The most that were open at once.
    pub peak: u64,
    /// Requests that found every connection busy at the limit and waited for one, starting
    /// late (beyond the late-start threshold).
    pub waited: u64,
    /// `waited` as a percentage of the requests sent.
    pub waited_percent: f64,
    /// Set when the limit shaped the run: what happened and what to do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
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
    /// Latency from the scheduled instant, over every sent request.
    pub latency_ms: ResponseLatency,
    /// Per entry label: counts and latency.
    pub entries: BTreeMap<String, GroupSummary>,
    /// Per status class (`2xx`, `5xx`, `timeout`, `dropped`, …): counts and latency.
    pub status_classes: BTreeMap<String, GroupSummary>,
    /// Requests that started later than `late_threshold_ms` after their scheduled instant.
    pub late_starts: u64,
    /// What counts as late: beyond the timer's measured precision on this machine (see
    /// `timer_precision_us`), so that a late start means the request waited for something.
    pub late_threshold_ms: f64,
    /// How late the late starts were.
    pub late_by_ms: ResponseLatency,
    /// How precisely the open loop released requests at their scheduled instants.
    pub schedule_error_us: ScheduleError,
    /// The 99th percentile of a precise wait's lateness, measured at the start of the run.
    pub timer_precision_us: f64,
    /// The connections used, and whether their limit shaped the run.
    pub connections: ConnectionSummary,
    /// How long the driver held requests back for the span pipeline to catch up.
    pub held: HoldSummary,
    /// Mean target rate (requests per second; 0 in closed loop).
    pub target_rate: f64,
    /// Requests sent per second of the send window.
    pub achieved_rate: f64,
    /// The send window: from the start to the last request sent (at least the planned
    /// duration when the run was not interrupted), in seconds. Requests still finishing after
    /// it do not dilute the achieved rate.
    pub send_window_s: f64,
    /// Wall time from the first scheduled instant to the last answer.
    pub elapsed_s: f64,
    /// Per second of the run, by the second each request ended in.
    pub timeline: Vec<SecondStats>,
    /// True when the run was stopped early (a signal).
    pub interrupted: bool,
    /// Requests still in flight when the drain timeout ended the wait for them: sent, never
    /// recorded.
    pub unfinished: u64,
    /// Dropped requests only counted, not recorded, because the collector was far behind.
    pub unrecorded: u64,
    /// Records that could not be written to `requests.jsonl` (a full disk); they are still in
    /// every count of this summary.
    pub record_write_failures: u64,
}

impl LoadSummary {
    /// Sets `connections.warning` when requests waited for a connection at the limit.
    pub fn finish_connection_warning(&mut self) {
        let c = &mut self.connections;
        c.waited_percent = if self.sent == 0 {
            0.0
        } else {
            100.0 * c.waited as f64 / self.sent as f64
        };
        if c.waited > 0 && c.waited_percent >= 1.0 {
            c.warning = Some(format!(
                "all {} connections were busy when {} requests ({:.1} %) were due; they waited \
                 and started late (up to {:.1} ms): raise --connections, or the open-file limit \
                 that sets the default",
                c.limit, c.waited, c.waited_percent, self.late_by_ms.max
            ));
        }
    }

    /// Sets `held.warning` when the driver was held back.
    pub fn finish_hold_warning(&mut self) {
        let h = &mut self.held;
        if h.count > 0 {
            h.warning = Some(format!(
                "the span pipeline fell behind, so the load generator held its requests back \
                 {} time(s), {:.1} s in all, rather than lose spans: those requests started \
                 late (their latency counts from their scheduled instants); the lab is past its \
                 capacity on these cores: lower the rate or give it more cores",
                h.count, h.seconds
            ));
        }
    }
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

/// A histogram of microseconds from 1 µs to 1 hour at three significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    // These bounds are valid, so construction cannot fail; the fallback is auto-resizing.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| {
        let mut h = Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits are valid"));
        h.auto(true);
        h
    })
}

fn micros_of_ns(ns: u64) -> u64 {
    ((ns + 500) / 1000).max(1)
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

    fn add(&mut self, s: &Sample) {
        self.count += 1;
        self.errors += u64::from(s.outcome.is_error());
        if s.outcome != Outcome::Dropped {
            self.latency_us
                .saturating_record(micros_of_ns(s.latency_ns()));
        }
    }

    fn summary(&self) -> GroupSummary {
        GroupSummary {
            count: self.count,
            errors: self.errors,
            latency_ms: ResponseLatency::of(&self.latency_us),
        }
    }
}

/// The collector's running totals.
#[derive(Debug)]
pub(crate) struct Collector {
    driver: String,
    origin_unix_nano: u64,
    prepared: Arc<Prepared>,
    overall: Group,
    dropped: u64,
    late_threshold_ns: u64,
    late_starts: u64,
    late_us: Histogram<u64>,
    schedule_error_us: Histogram<u64>,
    waited_at_cap: u64,
    outcomes: BTreeMap<Outcome, u64>,
    entries: Vec<Group>,
    classes: BTreeMap<&'static str, Group>,
    timeline: Timeline,
    target_rate: f64,
    planned_s: f64,
    last_start_unix_nano: u64,
}

impl Collector {
    /// Empty totals for a run starting at `origin_unix_nano`. `target` is the open-loop rate
    /// profile, which gives each second its target; `None` in closed loop.
    pub(crate) fn new(
        driver: String,
        origin_unix_nano: u64,
        target: Option<RateProfile>,
        target_rate: f64,
        late_threshold: Duration,
        prepared: Arc<Prepared>,
    ) -> Self {
        Collector {
            driver,
            origin_unix_nano,
            overall: Group::new(),
            dropped: 0,
            late_threshold_ns: late_threshold.as_nanos() as u64,
            late_starts: 0,
            late_us: latency_histogram(),
            schedule_error_us: latency_histogram(),
            waited_at_cap: 0,
            outcomes: BTreeMap::new(),
            entries: prepared.entries.iter().map(|_| Group::new()).collect(),
            classes: BTreeMap::new(),
            planned_s: target.as_ref().map(|p| p.length_s()).unwrap_or(0.0),
            timeline: Timeline::new(target),
            target_rate,
            last_start_unix_nano: origin_unix_nano,
            prepared,
        }
    }

    /// Adds one sample.
    pub(crate) fn add(&mut self, s: &Sample) {
        self.overall.add(s);
        let dropped = s.outcome == Outcome::Dropped;
        if dropped {
            self.dropped += 1;
        } else {
            self.last_start_unix_nano = self.last_start_unix_nano.max(s.start_unix_nano);
            self.schedule_error_us
                .saturating_record(micros_of_ns(s.schedule_error_ns()));
        }
        let late_ns = s.late_ns();
        let late = !dropped && late_ns > self.late_threshold_ns;
        if late {
            self.late_starts += 1;
            self.late_us.saturating_record(micros_of_ns(late_ns));
            if s.queued_at_cap {
                self.waited_at_cap += 1;
            }
        }
        *self.outcomes.entry(s.outcome).or_default() += 1;
        if let Some(group) = self.entries.get_mut(usize::from(s.entry)) {
            group.add(s);
        }
        self.classes
            .entry(s.outcome.class(s.status))
            .or_insert_with(Group::new)
            .add(s);
        let second = s.end_unix_nano.saturating_sub(self.origin_unix_nano) / 1_000_000_000;
        self.timeline.add(second, s, late);
    }

    /// Closes the seconds that ended before `elapsed` minus one second of slack (records of
    /// a second may still be on their way just after it ends).
    pub(crate) fn tick(&mut self, elapsed: Duration) {
        self.timeline
            .close_before(elapsed.as_secs().saturating_sub(1));
    }

    /// The cheap view for the progress line.
    pub(crate) fn snapshot(&self, elapsed: Duration) -> ProgressSnapshot {
        ProgressSnapshot {
            elapsed_s: elapsed.as_secs_f64(),
            total: self.overall.count,
            errors: self.overall.errors,
            dropped: self.dropped,
            last_second: self.timeline.last_closed(),
        }
    }

    /// The summary; closes every second.
    pub(crate) fn summary(&mut self, elapsed: Duration, interrupted: bool) -> LoadSummary {
        self.timeline.close_all(elapsed.as_secs_f64().ceil() as u64);
        let secs = elapsed.as_secs_f64();
        let sent = self.overall.count - self.dropped;
        let last_start_s = self
            .last_start_unix_nano
            .saturating_sub(self.origin_unix_nano) as f64
            / 1e9;
        let send_window_s = if interrupted {
            last_start_s
        } else {
            last_start_s.max(self.planned_s)
        };
        let schedule = ResponseLatency::of(&self.schedule_error_us);
        LoadSummary {
            driver: self.driver.clone(),
            total: self.overall.count,
            sent,
            errors: self.overall.errors,
            dropped: self.dropped,
            outcomes: self.outcomes.clone(),
            latency_ms: ResponseLatency::of(&self.overall.latency_us),
            entries: self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, g)| g.count > 0)
                .map(|(i, g)| (self.prepared.entries[i].label.clone(), g.summary()))
                .collect(),
            status_classes: self
                .classes
                .iter()
                .map(|(k, g)| ((*k).to_string(), g.summary()))
                .collect(),
            late_starts: self.late_starts,
            late_threshold_ms: self.late_threshold_ns as f64 / 1e6,
            late_by_ms: ResponseLatency::of(&self.late_us),
            schedule_error_us: ScheduleError {
                p50_us: schedule.p50 * 1000.0,
                p99_us: schedule.p99 * 1000.0,
                max_us: schedule.max * 1000.0,
            },
            timer_precision_us: 0.0,
            connections: ConnectionSummary {
                waited: self.waited_at_cap,
                ..ConnectionSummary::default()
            },
            held: HoldSummary::default(),
            target_rate: self.target_rate,
            achieved_rate: if send_window_s > 0.0 {
                sent as f64 / send_window_s
            } else {
                0.0
            },
            send_window_s,
            elapsed_s: secs,
            timeline: self.timeline.rows().to_vec(),
            interrupted,
            unfinished: 0,
            unrecorded: 0,
            record_write_failures: 0,
        }
    }
}
