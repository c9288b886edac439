//! How late waits end: a recorder for (actual − target) and a calibration of this machine.

use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

/// A summary of how long waits overran their target, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Overrun {
    /// Waits measured.
    pub count: u64,
    /// Median overrun.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

/// Collects overruns from many tasks. A mutex around one histogram: a record is a few tens of
/// nanoseconds under the lock, far below the waits it measures.
#[derive(Debug)]
pub struct OverrunRecorder {
    /// Nanoseconds late, from 1 ns to one hour at two significant digits.
    histogram: Mutex<Histogram<u64>>,
}

impl Default for OverrunRecorder {
    fn default() -> Self {
        OverrunRecorder {
            histogram: Mutex::new(nanos_histogram()),
        }
    }
}

impl OverrunRecorder {
    /// Records a wait that should have ended at `target` and ended at `actual`. Ending early
    /// (which a correct timer never does) counts as 0.
    pub fn record(&self, target: Instant, actual: Instant) {
        let late = actual.saturating_duration_since(target);
        let nanos = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        self.lock().saturating_record(nanos.max(1));
    }

    /// The summary so far.
    pub fn summary(&self) -> Overrun {
        summarize(&self.lock())
    }

    /// The raw histogram of nanoseconds, to merge several recorders.
    pub fn histogram(&self) -> Histogram<u64> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        // A histogram is plain counters: a panic elsewhere cannot leave it half-written.
        self.histogram.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A histogram of nanoseconds, 1 ns to one hour, two significant digits (1 % steps are finer
/// than any overrun worth reporting, and keep the histogram at about 90 kB).
pub fn nanos_histogram() -> Histogram<u64> {
    // Valid bounds: construction cannot fail; the fallback auto-resizes.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 2).unwrap_or_else(|_| {
        let mut h = Histogram::new(2).unwrap_or_else(|_| unreachable!("2 digits are valid"));
        h.auto(true);
        h
    })
}

/// The summary of a histogram of nanoseconds.
pub fn summarize(h: &Histogram<u64>) -> Overrun {
    if h.is_empty() {
        return Overrun::default();
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    Overrun {
        count: h.len(),
        p50_us: us(h.value_at_quantile(0.5)),
        p99_us: us(h.value_at_quantile(0.99)),
        max_us: us(h.max()),
        mean_us: h.mean() / 1000.0,
    }
}

/// Measures how late precise waits end on this machine now: `samples` sleeps of a few hundred
/// microseconds, one after the other. A run uses it to tell a late request from timer noise.
pub async fn measure_precision(samples: usize) -> Overrun {
    let mut h = nanos_histogram();
    for i in 0..samples {
        // Lengths spread over a tick so the phase against the kernel's scheduler varies.
        let target = Instant::now() + Duration::from_micros(200 + (i as u64 * 37) % 400);
        crate::sleep_until(target).await;
        let late = Instant::now().saturating_duration_since(target);
        h.saturating_record(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX).max(1));
    }
    summarize(&h)
}
