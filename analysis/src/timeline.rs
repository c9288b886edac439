//! Latency over time: per second of the run, how many requests started, how many failed, and
//! their median and 99th-percentile end-to-end time.
//!
//! A request is a trace, timed by the span its critical path starts from, and it belongs to the
//! second in which that span started.
//!
//! Each second keeps a histogram only while it may still receive requests: once a request
//! [`KEEP_OPEN_SECONDS`] later has been added, the second is reduced to its point. A request
//! arriving for a reduced second (much later than every other) still counts, without moving
//! its percentiles. Memory is then bounded however long the run.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelinePoint {
    /// The second, as whole seconds since the Unix epoch.
    pub second_unix: u64,
    /// Requests (traces) that started in this second.
    pub requests: u64,
    /// Of those, how many failed.
    pub errors: u64,
    /// Median end-to-end time, nanoseconds.
    pub p50_ns: u64,
    /// 99th-percentile end-to-end time, nanoseconds.
    pub p99_ns: u64,
}

struct Second {
    requests: u64,
    errors: u64,
    // Two significant digits and 32-bit counts keep one histogram per second small (a few
    // kilobytes), so an hour-long run stays cheap; a chart cannot show finer detail anyway.
    histogram: Option<Histogram<u32>>,
    max: u64,
}

/// How far behind the latest second a second stays open. Traces reach the analysis up to a
/// minute after they start (the trace assembler's longest wait), so two minutes leaves margin.
pub const KEEP_OPEN_SECONDS: u64 = 120;

/// Accumulates requests into seconds.
#[derive(Default)]
pub(crate) struct TimelineBuilder {
    open: BTreeMap<u64, Second>,
    closed: BTreeMap<u64, TimelinePoint>,
}

impl Second {
    fn point(&self, second_unix: u64) -> TimelinePoint {
        let q = |quantile: f64| {
            self.histogram
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(quantile).min(self.max))
                .unwrap_or(0)
        };
        TimelinePoint {
            second_unix,
            requests: self.requests,
            errors: self.errors,
            p50_ns: q(0.5),
            p99_ns: q(0.99),
        }
    }
}

impl TimelineBuilder {
    pub(crate) fn add(&mut self, start_unix_nano: u64, duration_ns: u64, failed: bool) {
        let second_unix = start_unix_nano / 1_000_000_000;
        if let Some(point) = self.closed.get_mut(&second_unix) {
            point.requests += 1;
            point.errors += u64::from(failed);
            return;
        }
        // Reduce the seconds that fell too far behind this one.
        let keep_from = second_unix.saturating_sub(KEEP_OPEN_SECONDS);
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= keep_from {
                break;
            }
            let (old, s) = entry.remove_entry();
            self.closed.insert(old, s.point(old));
        }
        let second = self.open.entry(second_unix).or_insert_with(|| Second {
            requests: 0,
            errors: 0,
            histogram: Histogram::new(2).ok(),
            max: 0,
        });
        second.requests += 1;
        second.errors += u64::from(failed);
        second.max = second.max.max(duration_ns);
        if let Some(h) = second.histogram.as_mut() {
            // Auto-resizing histograms accept any u64; a failure would only lose this sample
            // from the percentiles, never the count.
            let _ = h.record(duration_ns);
        }
    }

    pub(crate) fn finish(self) -> Vec<TimelinePoint> {
        let mut points = self.closed;
        points.extend(
            self.open
                .iter()
                .map(|(&second, s)| (second, s.point(second))),
        );
        points.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn old_seconds_are_reduced_and_late_requests_still_count() {
        let mut b = TimelineBuilder::default();
        let t0 = 1_700_000_000;
        for i in 0..10 {
            b.add(t0 * S, (i + 1) * 1_000_000, i == 9);
        }
        b.add((t0 + KEEP_OPEN_SECONDS + 1) * S, 5_000_000, false);
        assert_eq!(b.open.len(), 1, "the first second was reduced");
        assert!(b.closed.contains_key(&t0));
        // A very late request for the reduced second counts, its percentiles stay.
        b.add(t0 * S + 5, 900_000_000, true);
        let points = b.finish();
        assert_eq!(points.len(), 2);
        let first = &points[0];
        assert_eq!(
            (first.second_unix, first.requests, first.errors),
            (t0, 11, 2)
        );
        assert!(first.p99_ns <= 10_000_000, "{first:?}");
        assert_eq!(points[1].second_unix, t0 + KEEP_OPEN_SECONDS + 1);
    }
}
