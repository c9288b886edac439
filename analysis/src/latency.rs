//! Latency distributions: an HDR histogram per group, summarised as percentiles.
//!
//! An HDR histogram keeps a fixed-size record of a distribution (three significant digits here)
//! however many samples arrive, so grouping 100,000 spans by operation never holds the samples
//! themselves. The exact maximum is tracked beside it, since a histogram only knows the bucket.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of one latency distribution, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LatencySummary {
    /// How many samples were recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest sample, exact.
    pub max_ns: u64,
}

/// Collects samples for one group.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    histogram: Option<Histogram<u64>>,
    count: u64,
    max: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        LatencyRecorder {
            // Three significant digits with auto-resize accepts any u64; `new` only fails for
            // more than five digits, which this constant never asks for.
            histogram: Histogram::new(3).ok(),
            count: 0,
            max: 0,
        }
    }

    /// Records one duration in nanoseconds.
    pub fn record(&mut self, nanos: u64) {
        if let Some(h) = self.histogram.as_mut() {
            // With auto-resize on, recording only fails for values the histogram cannot grow
            // to hold; the exact count and maximum below still see such a value.
            let _ = h.record(nanos);
        }
        self.count += 1;
        self.max = self.max.max(nanos);
    }

    /// Adds every sample of `other`, as if each had been recorded here.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        if let (Some(h), Some(o)) = (self.histogram.as_mut(), other.histogram.as_ref()) {
            // Fails only where recording one of the samples would have; count and maximum
            // below stay exact either way.
            let _ = h.add(o);
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// The percentiles so far. Each percentile is clamped to the exact maximum, because the
    /// histogram reports the top of a bucket, which can exceed every sample in it.
    pub fn summary(&self) -> LatencySummary {
        let q = |quantile: f64| -> u64 {
            self.histogram
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(quantile).min(self.max))
                .unwrap_or(0)
        };
        LatencySummary {
            count: self.count,
            p50_ns: q(0.50),
            p90_ns: q(0.90),
            p99_ns: q(0.99),
            max_ns: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_track_the_distribution_within_a_tenth_of_a_percent() {
        let mut r = LatencyRecorder::new();
        for ms in 1..=1000u64 {
            r.record(ms * 1_000_000);
        }
        let s = r.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.max_ns, 1_000_000_000);
        for (got, want) in [(s.p50_ns, 500e6), (s.p90_ns, 900e6), (s.p99_ns, 990e6)] {
            assert!((got as f64 - want).abs() / want < 0.001, "{got} vs {want}");
        }
    }
}
