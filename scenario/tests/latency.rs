//! Latency models sample reproducibly, around their analytic mean, and never below zero.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tracelab_scenario::{LatencyModel, MAX_SAMPLE};

const DRAWS: usize = 100_000;

fn models() -> Vec<LatencyModel> {
    vec![
        LatencyModel::Constant { ms: 7.5 },
        LatencyModel::Uniform {
            min_ms: 2.0,
            max_ms: 10.0,
        },
        LatencyModel::Normal {
            mean_ms: 50.0,
            std_dev_ms: 5.0,
        },
        LatencyModel::LogNormal {
            median_ms: 20.0,
            sigma: 0.5,
        },
        LatencyModel::Exponential { mean_ms: 15.0 },
        LatencyModel::Pareto {
            scale_ms: 10.0,
            shape: 3.0,
        },
        LatencyModel::Empirical {
            quantiles: vec![
                (0.0, 1.0),
                (0.5, 2.0),
                (0.9, 4.0),
                (0.99, 30.0),
                (1.0, 80.0),
            ],
        },
    ]
}

fn sample_mean_ms(model: &LatencyModel, seed: u64) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let total: f64 = (0..DRAWS)
        .map(|_| model.sample(&mut rng).as_secs_f64() * 1000.0)
        .sum();
    total / DRAWS as f64
}

#[test]
fn same_seed_same_samples() {
    for model in models() {
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..100)
                .map(|_| model.sample(&mut rng))
                .collect::<Vec<Duration>>()
        };
        assert_eq!(draw(7), draw(7), "{model:?}");
        if !matches!(model, LatencyModel::Constant { .. }) {
            assert_ne!(draw(7), draw(8), "{model:?} ignores the seed");
        }
    }
}

#[test]
fn sample_means_match_the_analytic_means() {
    for model in models() {
        let expected = model.mean_ms();
        let measured = sample_mean_ms(&model, 42);
        let tolerance = expected * 0.02;
        assert!(
            (measured - expected).abs() <= tolerance,
            "{model:?}: sample mean {measured:.3} ms, analytic {expected:.3} ms"
        );
    }
}

#[test]
fn analytic_means() {
    assert_eq!(LatencyModel::Constant { ms: 3.0 }.mean_ms(), 3.0);
    assert_eq!(
        LatencyModel::Uniform {
            min_ms: 2.0,
            max_ms: 4.0
        }
        .mean_ms(),
        3.0
    );
    assert_eq!(LatencyModel::Exponential { mean_ms: 9.0 }.mean_ms(), 9.0);
    assert_eq!(
        LatencyModel::Pareto {
            scale_ms: 10.0,
            shape: 2.0
        }
        .mean_ms(),
        20.0
    );
    assert_eq!(
        LatencyModel::Pareto {
            scale_ms: 10.0,
            shape: 1.0
        }
        .mean_ms(),
        f64::INFINITY
    );
    assert_eq!(
        LatencyModel::Pareto {
            scale_ms: 10.0,
            shape: 0.5
        }
        .mean_ms(),
        f64::INFINITY
    );
    let log_normal = LatencyModel::LogNormal {
        median_ms: 10.0,
        sigma: 1.0,
    }
    .mean_ms();
    assert!((log_normal - 10.0 * 0.5f64.exp()).abs() < 1e-9);
    // Far from zero, clamping changes nothing measurable.
    let normal = LatencyModel::Normal {
        mean_ms: 100.0,
        std_dev_ms: 10.0,
    }
    .mean_ms();
    assert!((normal - 100.0).abs() < 1e-6, "{normal}");
}

#[test]
fn normal_is_clamped_at_zero_and_its_mean_says_so() {
    let model = LatencyModel::Normal {
        mean_ms: 1.0,
        std_dev_ms: 10.0,
    };
    let mut rng = StdRng::seed_from_u64(3);
    let mut zeros = 0;
    for _ in 0..DRAWS {
        let sample = model.sample(&mut rng);
        // A Duration cannot be negative; what matters is how often the clamp applies.
        if sample.is_zero() {
            zeros += 1;
        }
    }
    // About 46% of Normal(1, 10) lies below zero.
    let share = zeros as f64 / DRAWS as f64;
    assert!((share - 0.46).abs() < 0.01, "share of zero draws {share}");
    // E[max(0, X)] = μΦ(μ/σ) + σφ(μ/σ) = 0.5398 + 10 × 0.3970 ≈ 4.509 ms, well above the 1 ms of the unclamped curve.
    let expected = model.mean_ms();
    assert!((expected - 4.5094).abs() < 1e-3, "{expected}");
    let measured = sample_mean_ms(&model, 5);
    assert!(
        (measured - expected).abs() < expected * 0.02,
        "sample {measured}, analytic {expected}"
    );
}

#[test]
fn invalid_parameters_never_panic() {
    let nan = f64::NAN;
    let broken = [
        LatencyModel::Constant { ms: -5.0 },
        LatencyModel::Constant { ms: nan },
        LatencyModel::Constant { ms: f64::INFINITY },
        LatencyModel::Uniform {
            min_ms: 5.0,
            max_ms: 1.0,
        },
        LatencyModel::Uniform {
            min_ms: nan,
            max_ms: 1.0,
        },
        LatencyModel::Normal {
            mean_ms: 1.0,
            std_dev_ms: -1.0,
        },
        LatencyModel::Normal {
            mean_ms: nan,
            std_dev_ms: nan,
        },
        LatencyModel::LogNormal {
            median_ms: 0.0,
            sigma: 1.0,
        },
        LatencyModel::LogNormal {
            median_ms: -1.0,
            sigma: -1.0,
        },
        LatencyModel::Exponential { mean_ms: 0.0 },
        LatencyModel::Exponential { mean_ms: -3.0 },
        LatencyModel::Pareto {
            scale_ms: 0.0,
            shape: 0.0,
        },
        LatencyModel::Pareto {
            scale_ms: 1.0,
            shape: 0.01,
        },
        LatencyModel::Pareto {
            scale_ms: f64::MAX,
            shape: 1.0,
        },
        LatencyModel::Empirical { quantiles: vec![] },
        LatencyModel::Empirical {
            quantiles: vec![(0.0, 5.0), (0.5, 1.0), (1.0, 2.0)],
        },
        LatencyModel::Empirical {
            quantiles: vec![(0.0, nan), (1.0, f64::INFINITY)],
        },
    ];
    let mut rng = StdRng::seed_from_u64(1);
    for model in broken {
        for _ in 0..1000 {
            let sample = model.sample(&mut rng);
            assert!(sample <= MAX_SAMPLE, "{model:?} drew {sample:?}");
        }
        let mean = model.mean_ms();
        assert!(!mean.is_nan(), "{model:?} has a NaN mean");
        assert!(mean >= 0.0, "{model:?} has a negative mean");
    }
    assert_eq!(
        LatencyModel::Constant { ms: -5.0 }.sample(&mut rng),
        Duration::ZERO
    );
    assert_eq!(
        LatencyModel::Constant { ms: f64::INFINITY }.sample(&mut rng),
        MAX_SAMPLE
    );
}

#[test]
fn empirical_draws_follow_the_table() {
    // A shape no formula has: 60 % of draws between 1 and 2 ms, the rest between 20 and 40.
    let model = LatencyModel::Empirical {
        quantiles: vec![(0.0, 1.0), (0.6, 2.0), (0.6000001, 20.0), (1.0, 40.0)],
    };
    let mut rng = StdRng::seed_from_u64(3);
    let mut draws: Vec<f64> = (0..DRAWS)
        .map(|_| model.sample(&mut rng).as_secs_f64() * 1000.0)
        .collect();
    draws.sort_by(f64::total_cmp);
    let at = |p: f64| draws[((DRAWS as f64 - 1.0) * p) as usize];
    assert!((at(0.3) - 1.5).abs() < 0.02, "p30 {}", at(0.3));
    assert!(
        at(0.59) < 2.0 && at(0.61) > 20.0,
        "{} {}",
        at(0.59),
        at(0.61)
    );
    assert!((at(0.8) - 30.0).abs() < 0.3, "p80 {}", at(0.8));
    assert!(draws.iter().all(|&d| (1.0..=40.0).contains(&d)));
}
