//! Latency over time: per second of the run, how many requests started, how many failed, and
//! their median and 99th-percentile end-to-end time.
//!
//! A request is a trace, timed by the span its critical path starts from, and it belongs to the
//! second in which that span started.

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

/// Accumulates requests into seconds.
#[derive(Default)]
pub(crate) struct TimelineBuilder {
    seconds: BTreeMap<u64, Second>,
}

impl TimelineBuilder {
    pub(crate) fn add(&mut self, start_unix_nano: u64, duration_ns: u64, failed: bool) {
        let second = self
            .seconds
            .entry(start_unix_nano / 1_000_000_000)
            .or_insert_with(|| Second {
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
        self.seconds
            .into_iter()
            .map(|(second_unix, s)| {
                let q = |quantile: f64| {
                    s.histogram
                        .as_ref()
                        .filter(|h| !h.is_empty())
                        .map(|h| h.value_at_quantile(quantile).min(s.max))
                        .unwrap_or(0)
                };
                TimelinePoint {
                    second_unix,
                    requests: s.requests,
                    errors: s.errors,
                    p50_ns: q(0.5),
                    p99_ns: q(0.99),
                }
            })
            .collect()
    }
}
