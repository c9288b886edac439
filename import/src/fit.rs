//! Fitting the lab's latency models to measured times, and saying how well each fits.
//!
//! Each model's parameters come from robust statistics of the sample (medians and
//! interquartile ranges rather than means and variances), because measured times carry
//! outliers the model should not chase: a scheduler stall, a GC pause, a cut-off request. The
//! fit is judged by the Kolmogorov–Smirnov distance (the largest gap between the sample's and
//! the model's cumulative distribution) and by the 99th percentile, which a KS distance of a
//! few percent can still get badly wrong. A constant is taken when most times are the
//! same; otherwise the closest model wins if it passes both checks, and when none does the
//! times become an `empirical` quantile table, which fits any shape.

use tracelab_scenario::LatencyModel;

/// The KS distance a model may have at most (or the 1 % critical value for the sample size,
/// where that is larger: small samples cannot tell models apart more finely).
const MAX_KS: f64 = 0.03;

/// Times whose middle 80 % lie within this share of their median...
const CONSTANT_SHARE: f64 = 0.05;
/// ...or within this many milliseconds are a constant. The times outside that cluster are
/// the host's stalls (a busy scheduler, a pause), which any run of the scenario adds again by
/// itself: reproducing them as latency would count them twice. Half a millisecond is the
/// timing noise of a lab run under load (as for [`P99_MS`]).
const CONSTANT_MS: f64 = 0.5;

/// A model's 99th percentile must be within this share of the sample's...
const P99_SHARE: f64 = 0.10;
/// ...or within this many milliseconds, the timing noise of a lab run under load.
const P99_MS: f64 = 0.5;

/// An empirical table is refined until it strays from its sample by at most this...
const TABLE_KS: f64 = 0.01;
/// ...or has this many points more than the fixed ones.
const TABLE_EXTRA: usize = 24;

/// The probabilities of an empirical table, where the sample has the resolution for them.
const TABLE: &[f64] = &[
    0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7,
    0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0,
];

/// A fitted model and how it was chosen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fitted {
    /// The model.
    pub(crate) model: LatencyModel,
    /// Samples it was fitted to.
    pub(crate) n: usize,
    /// Its KS distance to the sample (0 for an empirical table at its own points).
    pub(crate) ks: f64,
    /// How it was chosen, for the comment above it: the other candidates' distances.
    pub(crate) note: String,
}

/// Fits the lab's models to `samples` (milliseconds, any order).
pub(crate) fn fit(samples: &[f64]) -> Fitted {
    let mut sorted: Vec<f64> = samples
        .iter()
        .filter(|x| x.is_finite())
        .map(|x| x.max(0.0))
        .collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return Fitted {
            model: LatencyModel::Constant { ms: 0.0 },
            n,
            ks: 0.0,
            note: "no times measured".to_owned(),
        };
    }
    let q = |p: f64| quantile_of(&sorted, p);
    let median = q(0.5);
    let spread = q(0.9) - q(0.1);
    if spread <= (CONSTANT_SHARE * median).max(CONSTANT_MS) {
        let model = LatencyModel::Constant { ms: round(median) };
        return Fitted {
            ks: ks(&sorted, &model),
            note: format!(
                "constant: 80 % of the times within {} ms of each other",
                round(spread)
            ),
            model,
            n,
        };
    }
    let mut candidates: Vec<(LatencyModel, f64)> = candidates(&sorted)
        .into_iter()
        .map(|model| {
            let distance = ks(&sorted, &model);
            (model, distance)
        })
        .collect();
    candidates.sort_by(|a, b| a.1.total_cmp(&b.1));
    let limit = MAX_KS.max(1.63 / (n as f64).sqrt());
    let (p99_low, p99_high) = p99_band(&sorted);
    let verdicts: Vec<(&LatencyModel, f64, bool)> = candidates
        .iter()
        .map(|(model, distance)| {
            let tail = (p99_low..=p99_high).contains(&quantile(model, 0.99));
            (model, *distance, *distance <= limit && tail)
        })
        .collect();
    // The others, each model once (its closest estimate), for the comment.
    let others = |chosen: Option<usize>| {
        let mut named = std::collections::HashSet::new();
        if let Some(i) = chosen {
            named.insert(verdicts[i].0.kind());
        }
        verdicts
            .iter()
            .filter(|(m, _, _)| named.insert(m.kind()))
            .map(|(m, d, ok)| {
                let tail = match *d <= limit && !ok {
                    true => " but its p99 is off",
                    false => "",
                };
                format!("{} {d:.3}{tail}", m.kind())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match verdicts.iter().position(|v| v.2) {
        Some(i) => Fitted {
            model: verdicts[i].0.clone(),
            n,
            ks: verdicts[i].1,
            note: format!(
                "{}, KS distance {:.3} (others: {})",
                verdicts[i].0.kind(),
                verdicts[i].1,
                others(Some(i))
            ),
        },
        None => {
            let model = table(&sorted);
            Fitted {
                ks: ks(&sorted, &model),
                note: format!(
                    "measured quantiles; no model within KS {limit:.3} with its p99 in range \
                     ({})",
                    others(None)
                ),
                model,
                n,
            }
        }
    }
}

/// The range a model's 99th percentile must fall in: the sample's own 99 % confidence
/// interval of its 99th percentile (order statistics, so no distribution is assumed), or
/// within [`P99_SHARE`] and [`P99_MS`] of it, whichever is wider.
fn p99_band(sorted: &[f64]) -> (f64, f64) {
    let n = sorted.len() as f64;
    let p99 = quantile_of(sorted, 0.99);
    let half = 2.576 * (n * 0.99 * 0.01).sqrt();
    let rank = |r: f64| sorted[(r.max(0.0) as usize).min(sorted.len() - 1)];
    let (low, high) = (
        rank((n * 0.99 - half).floor() - 1.0),
        rank((n * 0.99 + half).ceil()),
    );
    let slack = (P99_SHARE * p99).max(P99_MS);
    (low.min(p99 - slack), high.max(p99 + slack))
}

/// Each parametric model with parameters estimated from the sorted sample.
fn candidates(sorted: &[f64]) -> Vec<LatencyModel> {
    let q = |p: f64| quantile_of(sorted, p);
    let mut models = Vec::new();
    // The ends of a uniform, from inner quantiles pushed out by the share they leave out.
    let (lo, hi) = (q(0.005), q(0.995));
    let width = (hi - lo) / 0.99;
    models.push(LatencyModel::Uniform {
        min_ms: round((lo - 0.005 * width).max(0.0)),
        max_ms: round(hi + 0.005 * width),
    });
    // From the quartiles, which a few outliers at either end do not move: a uniform's
    // quartiles lie a quarter and three quarters of the way along it.
    let width = 2.0 * (q(0.75) - q(0.25));
    models.push(LatencyModel::Uniform {
        min_ms: round((q(0.25) - width / 4.0).max(0.0)),
        max_ms: round(q(0.25) - width / 4.0 + width),
    });
    let iqr_sigma = |a: f64, b: f64| (b - a) / 1.348_979_5;
    let (mean, sd) = mean_sd(sorted);
    // Each model twice where it matters: from robust statistics (outliers do not move them)
    // and by maximum likelihood (the most precise when the model is right).
    models.push(LatencyModel::Normal {
        mean_ms: round(q(0.5)),
        std_dev_ms: round(iqr_sigma(q(0.25), q(0.75))),
    });
    models.push(LatencyModel::Normal {
        mean_ms: round(mean),
        std_dev_ms: round(sd),
    });
    models.push(LatencyModel::Exponential {
        mean_ms: round(q(0.5) / std::f64::consts::LN_2).max(0.001),
    });
    models.push(LatencyModel::Exponential {
        mean_ms: round(mean).max(0.001),
    });
    let positive: Vec<f64> = sorted.iter().copied().filter(|x| *x > 0.0).collect();
    if positive.len() * 10 >= sorted.len() * 9 && positive.len() >= 2 {
        let logs: Vec<f64> = positive.iter().map(|x| x.ln()).collect();
        let lq = |p: f64| quantile_of(&logs, p);
        models.push(LatencyModel::LogNormal {
            median_ms: round(lq(0.5).exp()),
            sigma: round(iqr_sigma(lq(0.25), lq(0.75))),
        });
        let (log_mean, log_sd) = mean_sd(&logs);
        models.push(LatencyModel::LogNormal {
            median_ms: round(log_mean.exp()),
            sigma: round(log_sd),
        });
        // Pareto: the scale at the bottom of the sample, the shape by maximum likelihood
        // over the times above it.
        let scale = quantile_of(&positive, 0.001);
        let above: Vec<f64> = positive.iter().copied().filter(|x| *x >= scale).collect();
        let sum: f64 = above.iter().map(|x| (x / scale).ln()).sum();
        if sum > 0.0 {
            models.push(LatencyModel::Pareto {
                scale_ms: round(scale),
                shape: round(above.len() as f64 / sum),
            });
        }
    }
    models
}

/// The mean and standard deviation of values.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, variance.sqrt())
}

/// The sample's quantiles as an `empirical` table: the fixed probabilities the sample
/// resolves, then, where the table still strays from the sample by more than
/// [`TABLE_KS`] (a cliff between two humps, which interpolation smooths over), a point at the
/// worst place, up to [`TABLE_EXTRA`] more points.
fn table(sorted: &[f64]) -> LatencyModel {
    let n = sorted.len() as f64;
    let mut points: Vec<f64> = TABLE
        .iter()
        .copied()
        .filter(|&p| p == 0.0 || p == 1.0 || (p * n >= 1.0 && (1.0 - p) * n >= 1.0))
        .collect();
    let build = |points: &[f64]| {
        let mut quantiles: Vec<(f64, f64)> = Vec::with_capacity(points.len());
        for &p in points {
            let ms = round(quantile_of(sorted, p));
            // Rounding must not make the table fall.
            let ms = quantiles.last().map_or(ms, |&(_, last)| ms.max(last));
            quantiles.push((p, ms));
        }
        LatencyModel::Empirical { quantiles }
    };
    let mut model = build(&points);
    for _ in 0..TABLE_EXTRA {
        let (distance, at) = worst(sorted, &model);
        if distance <= TABLE_KS || sorted.len() < 3 {
            break;
        }
        // The sample's own quantile at the worst value: the table then passes through it.
        let p = (at as f64 / (n - 1.0) * 1e6).round() / 1e6;
        match points.binary_search_by(|q| q.total_cmp(&p)) {
            Ok(_) => break,
            Err(i) => points.insert(i, p),
        }
        model = build(&points);
    }
    model
}

/// A table's largest distance from the sample, and the index of the value where it is.
fn worst(sorted: &[f64], model: &LatencyModel) -> (f64, usize) {
    let n = sorted.len() as f64;
    let mut worst = (0.0, 0);
    for (i, &x) in sorted.iter().enumerate() {
        let f = cdf(model, x);
        let distance = (f - (i + 1) as f64 / n).abs().max((f - i as f64 / n).abs());
        if distance > worst.0 {
            worst = (distance, i);
        }
    }
    worst
}

/// The sample quantile at `p` of sorted values, interpolating between order statistics.
pub(crate) fn quantile_of(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let at = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = at.floor() as usize;
            let above = (below + 1).min(n - 1);
            sorted[below] + (sorted[above] - sorted[below]) * (at - below as f64)
        }
    }
}

/// The Kolmogorov–Smirnov distance between sorted values and a model.
pub(crate) fn ks(sorted: &[f64], model: &LatencyModel) -> f64 {
    let n = sorted.len() as f64;
    let mut distance: f64 = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        // Ties form one step of the sample's distribution.
        let x = sorted[i];
        let mut j = i;
        while j < sorted.len() && sorted[j] == x {
            j += 1;
        }
        let f = cdf(model, x);
        let below = i as f64 / n;
        let at = j as f64 / n;
        // Just below x the model may exceed the sample's `below`; at x, the sample's `at`
        // may exceed the model.
        let left = cdf(model, x - 1e-12 * x.abs().max(1e-9));
        distance = distance.max((left - below).abs()).max((at - f).abs());
        i = j;
    }
    distance
}

/// The model's cumulative distribution at `x` ms, for the draws as `sample` makes them
/// (negative draws counted as zero).
pub(crate) fn cdf(model: &LatencyModel, x: f64) -> f64 {
    if x < 0.0 {
        return 0.0;
    }
    match *model {
        LatencyModel::Constant { ms } => f64::from(u8::from(x >= ms.max(0.0))),
        LatencyModel::Uniform { min_ms, max_ms } => {
            if max_ms <= min_ms {
                f64::from(u8::from(x >= min_ms))
            } else {
                ((x - min_ms) / (max_ms - min_ms)).clamp(0.0, 1.0)
            }
        }
        LatencyModel::Normal {
            mean_ms,
            std_dev_ms,
        } => match std_dev_ms > 0.0 {
            true => phi((x - mean_ms) / std_dev_ms),
            false => f64::from(u8::from(x >= mean_ms)),
        },
        LatencyModel::LogNormal { median_ms, sigma } => {
            if x <= 0.0 || median_ms <= 0.0 {
                0.0
            } else if sigma <= 0.0 {
                f64::from(u8::from(x >= median_ms))
            } else {
                phi((x / median_ms).ln() / sigma)
            }
        }
        LatencyModel::Exponential { mean_ms } => match mean_ms > 0.0 {
            true => 1.0 - (-x / mean_ms).exp(),
            false => 1.0,
        },
        LatencyModel::Pareto { scale_ms, shape } => match x < scale_ms {
            true => 0.0,
            false => 1.0 - (scale_ms / x).powf(shape),
        },
        LatencyModel::Empirical { ref quantiles } => {
            // The table is the inverse of the distribution: find x between two times.
            let upper = quantiles.partition_point(|&(_, ms)| ms <= x);
            if upper == 0 {
                0.0
            } else if upper >= quantiles.len() {
                1.0
            } else {
                let (p0, ms0) = quantiles[upper - 1];
                let (p1, ms1) = quantiles[upper];
                p0 + (p1 - p0) * (x - ms0) / (ms1 - ms0)
            }
        }
    }
}

/// The model's quantile at `p`, in ms (negative draws counted as zero).
pub(crate) fn quantile(model: &LatencyModel, p: f64) -> f64 {
    let p = p.clamp(0.0, 1.0);
    let ms = match *model {
        LatencyModel::Constant { ms } => ms,
        LatencyModel::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * p,
        LatencyModel::Normal {
            mean_ms,
            std_dev_ms,
        } => mean_ms + std_dev_ms * phi_inverse(p),
        LatencyModel::LogNormal { median_ms, sigma } => median_ms * (sigma * phi_inverse(p)).exp(),
        LatencyModel::Exponential { mean_ms } => -mean_ms * (1.0 - p).ln(),
        LatencyModel::Pareto { scale_ms, shape } => scale_ms * (1.0 - p).powf(-1.0 / shape),
        LatencyModel::Empirical { ref quantiles } => {
            let upper = quantiles
                .partition_point(|&(q, _)| q <= p)
                .min(quantiles.len() - 1);
            let (p1, ms1) = quantiles[upper];
            let (p0, ms0) = quantiles[upper.saturating_sub(1)];
            match p1 > p0 {
                true => ms0 + (ms1 - ms0) * (p - p0) / (p1 - p0),
                false => ms1,
            }
        }
    };
    if ms.is_finite() {
        ms.max(0.0)
    } else {
        f64::MAX
    }
}

/// The standard normal distribution function.
fn phi(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// The standard normal quantile, by bisection on [`phi`]: exact to far below a microsecond
/// of latency, and simple.
fn phi_inverse(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (-40.0, 40.0);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if phi(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// Rounds a time to the microsecond, or a small dimensionless value to four significant
/// digits, so the file reads well and holds what was measured.
pub(crate) fn round(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return 0.0;
    }
    if x.abs() >= 1.0 {
        (x * 1000.0).round() / 1000.0
    } else {
        let digits = 4 - 1 - x.abs().log10().floor() as i32;
        let factor = 10f64.powi(digits.clamp(0, 12));
        (x * factor).round() / factor
    }
}

/// Rounds a rate (requests per second) to four significant digits.
pub(crate) fn round_rate(rate: f64) -> f64 {
    if !rate.is_finite() || rate <= 0.0 {
        return 1.0;
    }
    let digits = 4 - 1 - rate.log10().floor() as i32;
    let factor = 10f64.powi(digits);
    (rate * factor).round() / factor
}

#[cfg(test)]
mod tests;
