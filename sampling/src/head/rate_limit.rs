//! A token bucket driven by a caller-supplied clock.
//!
//! Both the rate-limited head sampler and the tail policies `rate_limiting`/`bytes_limiting`
//! use it. Time is passed in as nanoseconds rather than read from the system, so the same
//! code runs live (wall clock) and in the sampling lab (recorded span timestamps), and tests
//! never sleep.

/// Tokens refill continuously at `rate` per second up to `capacity`; a request for `n`
/// tokens passes only when `n` are available. The bucket starts full, like Go's
/// `rate.Limiter` that the Collector uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate_per_sec: f64,
    capacity: f64,
    tokens: f64,
    last_nanos: Option<u64>,
}

impl TokenBucket {
    /// A bucket refilling at `rate_per_sec` and holding at most `capacity` tokens.
    pub fn new(rate_per_sec: f64, capacity: f64) -> Self {
        let rate_per_sec = rate_per_sec.max(0.0);
        let capacity = capacity.max(0.0);
        TokenBucket {
            rate_per_sec,
            capacity,
            tokens: capacity,
            last_nanos: None,
        }
    }

    /// Takes `n` tokens at instant `now_nanos` if there are enough. Instants that go
    /// backwards (out-of-order timestamps) add nothing rather than removing tokens.
    pub fn try_take(&mut self, now_nanos: u64, n: f64) -> bool {
        if let Some(last) = self.last_nanos {
            if now_nanos > last {
                let elapsed = (now_nanos - last) as f64 / 1e9;
                self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.capacity);
                self.last_nanos = Some(now_nanos);
            }
        } else {
            self.last_nanos = Some(now_nanos);
        }
        if n <= self.tokens {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// The refill rate per second.
    pub fn rate_per_sec(&self) -> f64 {
        self.rate_per_sec
    }

    /// The bucket size.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_and_caps_at_capacity() {
        let mut b = TokenBucket::new(10.0, 10.0);
        let kept = (0..100).filter(|_| b.try_take(0, 1.0)).count();
        assert_eq!(kept, 10, "a full bucket, then empty");
        // Half a second later: five tokens.
        let kept = (0..100).filter(|_| b.try_take(500_000_000, 1.0)).count();
        assert_eq!(kept, 5);
        // A long pause refills only up to the capacity.
        let kept = (0..100)
            .filter(|_| b.try_take(100_000_000_000, 1.0))
            .count();
        assert_eq!(kept, 10);
    }

    #[test]
    fn a_request_larger_than_the_bucket_never_passes() {
        let mut b = TokenBucket::new(5.0, 10.0);
        assert!(!b.try_take(0, 11.0));
        assert!(b.try_take(0, 10.0));
    }
}
