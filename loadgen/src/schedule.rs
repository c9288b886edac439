//! When requests are sent: the arrival schedule.

use std::time::Duration;

/// A constant arrival rate: request `i` is scheduled at `i / rate` seconds, for as long as that
/// falls inside the duration. Exactly `floor(rate × duration)` requests (rounded to the nearest
/// whole request when the product is within a millionth of one, so 20/s × 5 s is exactly 100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConstantRate {
    /// Requests per second.
    pub rate: f64,
    /// Length of the run.
    pub duration: Duration,
}

impl ConstantRate {
    /// How many requests the schedule holds.
    pub fn count(&self) -> u64 {
        let exact = self.rate * self.duration.as_secs_f64();
        let rounded = exact.round();
        if (exact - rounded).abs() < 1e-6 {
            rounded as u64
        } else {
            exact.floor() as u64
        }
    }

    /// Offset of request `i` from the start.
    pub fn offset(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// All offsets, in order.
    pub fn offsets(&self) -> impl Iterator<Item = Duration> + '_ {
        (0..self.count()).map(|i| self.offset(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_produces_rate_times_duration_evenly_spaced() {
        let s = ConstantRate {
            rate: 20.0,
            duration: Duration::from_secs(5),
        };
        let offsets: Vec<_> = s.offsets().collect();
        assert_eq!(offsets.len(), 100);
        assert_eq!(offsets[1] - offsets[0], Duration::from_millis(50));
        assert!(offsets.last().unwrap() < &Duration::from_secs(5));
        let odd = ConstantRate {
            rate: 3.0,
            duration: Duration::from_millis(1500),
        };
        assert_eq!(odd.count(), 4);
    }
}
