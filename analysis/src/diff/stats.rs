//! The significance test of `tracelab diff`: the Mann–Whitney U test with the normal
//! approximation, a correction for ties and a continuity correction, and Holm's step-down
//! correction for testing many things at once.
//!
//! Mann–Whitney compares two samples by ranks only: it asks whether a value drawn from one run
//! tends to be larger than a value drawn from the other. It assumes no distribution, so the
//! long right tails of latencies do not upset it, and on values that are only 0 or 1 (did the
//! request fail here?) it is the two-proportion test.

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankTest {
    /// Probability that a value from the second sample exceeds one from the first, ties
    /// counting half (the Vargha–Delaney A, `U / (n1 n2)`): 0.5 when neither tends larger.
    pub prob_greater: f64,
    /// The standardized statistic, positive when the second sample tends larger.
    pub z: f64,
    /// Two-sided p-value from the normal approximation.
    pub p_value: f64,
}

/// Tests two samples given as tie groups in ascending order of value: each item is how many
/// values of the first and of the second sample share one value. `None` when either sample is
/// empty.
pub fn mann_whitney_groups(groups: impl IntoIterator<Item = (u64, u64)>) -> Option<RankTest> {
    let mut n1 = 0u64;
    let mut n2 = 0u64;
    // Sum of the ranks of the second sample, each tie group at its mid-rank.
    let mut rank_sum2 = 0f64;
    let mut tie_term = 0f64;
    for (a, b) in groups {
        let t = a + b;
        if t == 0 {
            continue;
        }
        let below = (n1 + n2) as f64;
        let mid_rank = below + (t as f64 + 1.0) / 2.0;
        rank_sum2 += b as f64 * mid_rank;
        let t = t as f64;
        tie_term += t * t * t - t;
        n1 += a;
        n2 += b;
    }
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1, n2) = (n1 as f64, n2 as f64);
    let n = n1 + n2;
    let u2 = rank_sum2 - n2 * (n2 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)).max(1.0));
    let prob_greater = u2 / (n1 * n2);
    if variance <= 0.0 {
        // Every value is the same: nothing to tell the samples apart.
        return Some(RankTest {
            prob_greater,
            z: 0.0,
            p_value: 1.0,
        });
    }
    // The continuity correction moves U half a step towards the mean.
    let distance = (u2 - mean).abs();
    let z = ((distance - 0.5).max(0.0) / variance.sqrt()).copysign(u2 - mean);
    let p_value = libm::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0);
    Some(RankTest {
        prob_greater,
        z,
        p_value,
    })
}

/// Tests two samples of numbers (any order; sorts copies of them).
pub fn mann_whitney(first: &[u64], second: &[u64]) -> Option<RankTest> {
    let mut a = first.to_vec();
    let mut b = second.to_vec();
    a.sort_unstable();
    b.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let groups = std::iter::from_fn(|| {
        let value = match (a.get(i), b.get(j)) {
            (None, None) => return None,
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (Some(&x), Some(&y)) => x.min(y),
        };
        let (start_i, start_j) = (i, j);
        while a.get(i) == Some(&value) {
            i += 1;
        }
        while b.get(j) == Some(&value) {
            j += 1;
        }
        Some(((i - start_i) as u64, (j - start_j) as u64))
    });
    mann_whitney_groups(groups)
}

/// Tests two samples of yes/no values given as counts: `yes1` of `n1`, `yes2` of `n2`.
pub fn mann_whitney_binary(yes1: u64, n1: u64, yes2: u64, n2: u64) -> Option<RankTest> {
    mann_whitney_groups([(n1 - yes1.min(n1), n2 - yes2.min(n2)), (yes1, yes2)])
}

/// Holm's step-down adjustment of `p_values` (same order): the smallest is multiplied by the
/// number of tests, the next by one less, and so on, each at least the one before and at most
/// 1. Rejecting every adjusted p-value below α keeps the chance of any false change below α.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 0f64;
    for (k, &i) in order.iter().enumerate() {
        running = running.max(((m - k) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// A uniform random sample of at most `capacity` values from a stream (reservoir sampling),
/// with a fixed seed so that the same input gives the same sample.
#[derive(Debug, Clone)]
pub struct Reservoir {
    capacity: usize,
    seen: u64,
    state: u64,
    values: Vec<u64>,
}

impl Reservoir {
    /// An empty reservoir keeping at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        Reservoir {
            capacity,
            seen: 0,
            state: 0x9e37_79b9_7f4a_7c15,
            values: Vec::new(),
        }
    }

    /// Offers one value.
    pub fn add(&mut self, value: u64) {
        self.seen += 1;
        if self.values.len() < self.capacity {
            self.values.push(value);
            return;
        }
        // Keep the value with probability capacity / seen, in place of a random one.
        let slot = self.next_random() % self.seen;
        if let Some(kept) = self.values.get_mut(slot as usize) {
            *kept = value;
        }
    }

    /// The sampled values.
    pub fn values(&self) -> &[u64] {
        &self.values
    }

    /// How many values were offered.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// xorshift64*: plenty for choosing sample slots, and no dependency.
    fn next_random(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    // Reference values from an independent implementation: SciPy 1.18's
    // `mannwhitneyu(second, first, use_continuity=True, method="asymptotic")`.

    #[test]
    fn mann_whitney_matches_a_reference_implementation() {
        // first = 1 2 3 4, second = 3 5 6 7 8: the second is larger in 16 pairs, tied in one.
        let t = mann_whitney(&[1, 2, 3, 4], &[3, 5, 6, 7, 8]).unwrap();
        assert!(close(t.prob_greater, 18.5 / 20.0, 1e-12), "{t:?}");
        assert!(close(t.p_value, 0.04909011632260757, 1e-9), "{t:?}");
        assert!(t.z > 0.0);

        // Many ties: integers drawn from overlapping ranges.
        let first = [
            23, 25, 37, 47, 1, 7, 41, 47, 12, 15, 43, 21, 13, 41, 12, 20, 32, 27, 4, 1, 43, 37, 41,
            26, 40, 16, 22, 39, 6, 15,
        ];
        let second = [
            11, 29, 58, 12, 26, 27, 54, 16, 32, 19, 6, 46, 8, 20, 32, 31, 11, 58, 46, 57, 10, 44,
            21, 34, 55, 20, 44, 13, 22, 58, 28, 33, 21, 11, 28, 39, 30, 47, 24, 38,
        ];
        let t = mann_whitney(&first, &second).unwrap();
        assert!(close(t.prob_greater, 702.5 / 1200.0, 1e-12), "{t:?}");
        assert!(close(t.p_value, 0.2258935975404086, 1e-9), "{t:?}");
    }

    #[test]
    fn identical_samples_show_no_difference_and_separated_ones_a_large_one() {
        let a: Vec<u64> = (0..200).collect();
        let t = mann_whitney(&a, &a).unwrap();
        assert_eq!(t.prob_greater, 0.5);
        assert!(t.p_value > 0.99, "{t:?}");

        let b: Vec<u64> = (1000..1200).collect();
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.prob_greater, 1.0);
        assert!(t.z > 17.0 && t.p_value < 1e-60, "{t:?}");
        let t = mann_whitney(&b, &a).unwrap();
        assert!(t.z < -17.0 && t.prob_greater == 0.0, "{t:?}");

        assert!(mann_whitney(&[], &a).is_none());
        let same = mann_whitney(&[5, 5, 5], &[5, 5]).unwrap();
        assert_eq!((same.z, same.p_value), (0.0, 1.0));
    }

    #[test]
    fn yes_no_values_are_tested_from_their_counts() {
        // 10 failures in 100 requests, then 25 in 100.
        let t = mann_whitney_binary(10, 100, 25, 100).unwrap();
        let as_values = mann_whitney(
            &[vec![0; 90], vec![1; 10]].concat(),
            &[vec![0; 75], vec![1; 25]].concat(),
        )
        .unwrap();
        assert_eq!(t, as_values);
        assert!(close(t.prob_greater, 0.575, 1e-12), "{t:?}");
        assert!(close(t.p_value, 0.005392375781106726, 1e-9), "{t:?}");
        assert_eq!(mann_whitney_binary(0, 50, 0, 60).unwrap().p_value, 1.0);
    }

    #[test]
    fn holm_adjusts_step_down_and_stays_monotone() {
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.005]);
        // Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → kept at 0.06.
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (got, want) in adjusted.iter().zip(expected) {
            assert!(close(*got, want, 1e-12), "{adjusted:?}");
        }
        assert_eq!(holm(&[0.9, 0.8]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn the_reservoir_keeps_a_bounded_uniform_sample() {
        let mut r = Reservoir::new(1000);
        for v in 0..100_000u64 {
            r.add(v);
        }
        assert_eq!(r.values().len(), 1000);
        assert_eq!(r.seen(), 100_000);
        let mean = r.values().iter().sum::<u64>() as f64 / 1000.0;
        // The mean of a uniform sample of 0..100000 is 50000 ± 2.9 % (3 standard errors).
        assert!((mean - 50_000.0).abs() < 2_900.0, "{mean}");
    }
}
