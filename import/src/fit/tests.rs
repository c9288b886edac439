use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn draws(model: &LatencyModel, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| model.sample(&mut rng).as_secs_f64() * 1000.0)
        .collect()
}

#[test]
fn each_model_is_recognised_from_its_own_draws() {
    let models = [
        LatencyModel::Uniform {
            min_ms: 2.0,
            max_ms: 6.0,
        },
        LatencyModel::Normal {
            mean_ms: 40.0,
            std_dev_ms: 4.0,
        },
        LatencyModel::LogNormal {
            median_ms: 120.0,
            sigma: 0.6,
        },
        LatencyModel::Exponential { mean_ms: 15.0 },
        LatencyModel::Pareto {
            scale_ms: 10.0,
            shape: 2.5,
        },
    ];
    for (i, model) in models.iter().enumerate() {
        let fitted = fit(&draws(model, 4000, i as u64));
        assert_eq!(fitted.model.kind(), model.kind(), "{model:?}: {fitted:?}");
        assert!(fitted.ks < 0.03, "{fitted:?}");
        for p in [0.5, 0.9, 0.99] {
            let (want, got) = (quantile(model, p), quantile(&fitted.model, p));
            assert!(
                (got - want).abs() <= 0.1 * want,
                "{model:?} p{p}: fitted {got}, true {want}"
            );
        }
    }
}

#[test]
fn nearly_equal_times_are_a_constant() {
    // 2 ms with the jitter of a timer, and one stall in a hundred.
    let times: Vec<f64> = (0..1000)
        .map(|i| 2.0 + (i % 7) as f64 * 0.004 + if i % 100 == 0 { 1.2 } else { 0.0 })
        .collect();
    let fitted = fit(&times);
    assert_eq!(fitted.model, LatencyModel::Constant { ms: 2.012 });
    assert!(fitted.note.starts_with("constant"), "{}", fitted.note);
}

#[test]
fn a_shape_no_model_has_becomes_a_table() {
    // Two humps: most requests hit a cache (1 ms), a third go to a database (20 ms).
    let fast = draws(
        &LatencyModel::Normal {
            mean_ms: 1.0,
            std_dev_ms: 0.1,
        },
        2000,
        1,
    );
    let slow = draws(
        &LatencyModel::Normal {
            mean_ms: 20.0,
            std_dev_ms: 2.0,
        },
        1000,
        2,
    );
    let mut times = fast;
    times.extend(slow);
    let fitted = fit(&times);
    let LatencyModel::Empirical { quantiles } = &fitted.model else {
        panic!("expected a table: {fitted:?}");
    };
    assert!(
        fitted.note.starts_with("measured quantiles"),
        "{}",
        fitted.note
    );
    assert!(tracelab_scenario::latency::table_problem(quantiles).is_none());
    assert!(fitted.ks < 0.02, "{fitted:?}");
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    for p in [0.5, 0.9, 0.99] {
        let (want, got) = (quantile_of(&sorted, p), quantile(&fitted.model, p));
        assert!((got - want).abs() <= 0.02 * want, "p{p}: {got} vs {want}");
    }
}

#[test]
fn distributions_and_quantiles_agree() {
    let models = [
        LatencyModel::Constant { ms: 3.0 },
        LatencyModel::Uniform {
            min_ms: 1.0,
            max_ms: 4.0,
        },
        LatencyModel::Normal {
            mean_ms: 5.0,
            std_dev_ms: 1.0,
        },
        LatencyModel::LogNormal {
            median_ms: 3.0,
            sigma: 0.5,
        },
        LatencyModel::Exponential { mean_ms: 3.0 },
        LatencyModel::Pareto {
            scale_ms: 2.0,
            shape: 3.0,
        },
        LatencyModel::Empirical {
            quantiles: vec![(0.0, 1.0), (0.5, 2.0), (1.0, 10.0)],
        },
    ];
    for model in &models {
        for p in [0.1, 0.5, 0.9, 0.99] {
            let x = quantile(model, p);
            let back = cdf(model, x);
            if !matches!(model, LatencyModel::Constant { .. }) {
                assert!((back - p).abs() < 1e-6, "{model:?}: cdf(q({p})) = {back}");
            }
        }
    }
    // The lab's own analytic quantiles, as its fidelity test states them.
    let normal = &models[2];
    assert!((quantile(normal, 0.9) - (5.0 + 1.281_551_6)).abs() < 1e-6);
}

#[test]
fn rounding_keeps_what_matters() {
    assert_eq!(round(4.023_456), 4.023);
    assert_eq!(round(0.412_345), 0.4123);
    assert_eq!(round(0.000_123_456), 0.000_123_5);
    assert_eq!(round(f64::NAN), 0.0);
}
