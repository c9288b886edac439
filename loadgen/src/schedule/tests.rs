//! Arrival model tests: counts, per-second shapes, goodness of fit, determinism.

use std::time::Duration;

use tracelab_scenario::{Ramp, Spike, Stage};

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ramp(from: f64, to: f64) -> ArrivalModel {
    ArrivalModel::Ramp(Ramp { from, to })
}

/// Requests scheduled in each whole second of a run of `seconds`.
fn per_second(offsets: &[Duration], seconds: usize) -> Vec<u64> {
    let mut counts = vec![0; seconds];
    for offset in offsets {
        let second = offset.as_secs() as usize;
        assert!(second < seconds, "offset {offset:?} past the end");
        counts[second] += 1;
    }
    counts
}

#[test]
fn constant_produces_exactly_rate_times_duration_evenly_spaced() {
    for (rate, duration, expected) in [
        (20.0, secs(5), 100),
        (1000.0, secs(10), 10_000),
        (3.0, Duration::from_millis(1500), 4),
    ] {
        let offsets: Vec<_> = schedule(&ArrivalModel::Constant, rate, duration, 1).collect();
        assert_eq!(offsets.len(), expected, "{rate}/s for {duration:?}");
        assert!(offsets.last().is_some_and(|o| *o < duration));
    }
    let offsets: Vec<_> = schedule(&ArrivalModel::Constant, 20.0, secs(5), 1).collect();
    assert_eq!(offsets[0], Duration::ZERO);
    assert_eq!(offsets[1] - offsets[0], Duration::from_millis(50));
    assert_eq!(per_second(&offsets, 5), vec![20; 5]);
}

/// Kolmogorov–Smirnov test of the inter-arrival gaps against the exponential distribution of
/// mean `1 / rate`, at α = 0.01 (critical value 1.628 / √n for large n).
#[test]
fn poisson_gaps_fit_the_exponential_distribution() {
    let rate = 200.0;
    let offsets: Vec<f64> = schedule(&ArrivalModel::Poisson, rate, secs(50), 7)
        .map(|d| d.as_secs_f64())
        .collect();
    let n_expected = rate * 50.0;
    assert!(
        (offsets.len() as f64 - n_expected).abs() < 4.0 * n_expected.sqrt(),
        "{} arrivals, expected about {n_expected}",
        offsets.len()
    );
    let mut gaps: Vec<f64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let n = gaps.len() as f64;
    let mut d: f64 = 0.0;
    for (i, gap) in gaps.iter().enumerate() {
        let cdf = 1.0 - (-rate * gap).exp();
        d = d
            .max((cdf - i as f64 / n).abs())
            .max(((i + 1) as f64 / n - cdf).abs());
    }
    let critical = 1.628 / n.sqrt();
    assert!(d < critical, "KS statistic {d} ≥ {critical}");

    // The same test rejects evenly spaced arrivals, so it can fail.
    let even: Vec<f64> = schedule(&ArrivalModel::Constant, rate, secs(50), 7)
        .map(|d| d.as_secs_f64())
        .collect();
    let gap = even[1] - even[0];
    let even_d = 1.0 - (-rate * gap).exp();
    assert!(even_d.max(1.0 - even_d) > critical);
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let a: Vec<_> = schedule(&ArrivalModel::Poisson, 50.0, secs(10), 3).collect();
    let b: Vec<_> = schedule(&ArrivalModel::Poisson, 50.0, secs(10), 3).collect();
    let c: Vec<_> = schedule(&ArrivalModel::Poisson, 50.0, secs(10), 4).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn ramp_counts_follow_the_integral_of_the_rate() {
    // 0 → 100/s over 10 s: Λ(t) = 5 t², so second k holds 5 (2k + 1) requests.
    let offsets: Vec<_> = schedule(&ramp(0.0, 100.0), 0.0, secs(10), 1).collect();
    let expected: Vec<u64> = (0..10).map(|k| 5 * (2 * k + 1)).collect();
    assert_eq!(per_second(&offsets, 10), expected);
    assert_eq!(offsets.len(), 500);
    // And downwards: 100 → 0.
    let down: Vec<_> = schedule(&ramp(100.0, 0.0), 0.0, secs(10), 1).collect();
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(per_second(&down, 10), reversed);
}

#[test]
fn step_stages_hold_each_rate() {
    let arrival = ArrivalModel::Steps(vec![
        Stage {
            duration: secs(2),
            rate: 10.0,
        },
        Stage {
            duration: secs(3),
            rate: 40.0,
        },
        Stage {
            duration: secs(1),
            rate: 5.0,
        },
    ]);
    assert_eq!(arrival.own_duration(), Some(secs(6)));
    let offsets: Vec<_> = schedule(&arrival, 0.0, secs(6), 1).collect();
    assert_eq!(per_second(&offsets, 6), vec![10, 10, 40, 40, 40, 5]);
}

#[test]
fn linear_stages_ramp_between_rates() {
    // 0 → 20 over 2 s (10 requests, 5 then 15), hold 20 for 2 s, 20 → 0 over 2 s.
    let arrival = ArrivalModel::Stages(vec![
        Stage {
            duration: secs(2),
            rate: 20.0,
        },
        Stage {
            duration: secs(2),
            rate: 20.0,
        },
        Stage {
            duration: secs(2),
            rate: 0.0,
        },
    ]);
    let offsets: Vec<_> = schedule(&arrival, 0.0, secs(6), 1).collect();
    assert_eq!(per_second(&offsets, 6), vec![5, 15, 20, 20, 15, 5]);
}

#[test]
fn spike_adds_its_height_during_the_burst() {
    let arrival = ArrivalModel::Spike(Spike {
        height: 90.0,
        start: secs(3),
        length: secs(2),
    });
    let offsets: Vec<_> = schedule(&arrival, 10.0, secs(8), 1).collect();
    assert_eq!(
        per_second(&offsets, 8),
        vec![10, 10, 10, 100, 100, 10, 10, 10]
    );
    assert!((arrival.profile(10.0, secs(8)).total() - 260.0).abs() < 1e-9);
}
