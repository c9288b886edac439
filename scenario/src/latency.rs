//! Latency models: how long a route or a piece of work takes, as a distribution in
//! milliseconds.

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal, Pareto};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod empirical;
mod written;

/// The longest latency a model ever samples. Heavy tails (a Pareto with a small shape) can
/// draw absurd values; a simulated request that sleeps for days only hangs a run, and an hour
/// is already far beyond any timeout a scenario sets.
pub const MAX_SAMPLE: Duration = Duration::from_secs(3600);

/// A latency distribution. Every parameter is in milliseconds except the dimensionless
/// `sigma` and `shape`. YAML: `{<model>: {<parameters>}}`, or for a fixed latency the
/// shorthands `{constant: 5}` and `5ms`.
//
// This enum is the one definition of the models: the YAML reader, `kinds()`, `kind()` and the
// JSON Schema all follow from its serde attributes, and every `match` on it is exhaustive, so
// a new model is a compile error wherever it must be handled (sampling, its mean, validation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
// The derives are the full form; the trait impls in `latency/written.rs` add the shorthands.
#[serde(remote = "Self", rename_all = "lowercase", deny_unknown_fields)]
#[schemars(rename = "LatencyModel", transform = written::add_shorthands)]
pub enum LatencyModel {
    /// Always the same time. YAML: `{constant: {ms: 2}}` or the shorthand `{constant: 2}`.
    #[serde(deserialize_with = "written::constant_ms")]
    #[schemars(schema_with = "written::constant_schema")]
    Constant {
        /// The time, in milliseconds.
        ms: f64,
    },
    /// Any time between two bounds, equally likely.
    Uniform {
        /// The shortest time, in milliseconds.
        min_ms: f64,
        /// The longest time, in milliseconds; at least `min_ms`.
        max_ms: f64,
    },
    /// A bell curve; draws below zero count as zero.
    Normal {
        /// The centre of the curve, in milliseconds.
        mean_ms: f64,
        /// The spread, in milliseconds.
        std_dev_ms: f64,
    },
    /// The usual shape of service latency: most requests near the median, a long right tail.
    LogNormal {
        /// The median time, in milliseconds.
        median_ms: f64,
        /// The spread of the underlying normal; 0.2 is tight, 1 is a heavy tail.
        sigma: f64,
    },
    /// Memoryless waiting, as for a queue.
    Exponential {
        /// The mean time, in milliseconds.
        mean_ms: f64,
    },
    /// A power-law tail: rare but very slow requests.
    Pareto {
        /// The minimum time, in milliseconds.
        scale_ms: f64,
        /// The tail index; the smaller, the heavier the tail (the mean is infinite at 1 or
        /// below).
        shape: f64,
    },
    /// A measured shape that no formula above fits: a table of quantiles, drawn by picking a
    /// probability at random and reading the time off the table between its two neighbours.
    /// `tracelab import` writes it for latencies none of the other models fits.
    Empirical {
        /// Pairs `[p, ms]`: the time in milliseconds that a share `p` of draws stays under.
        /// At least two pairs, `p` rising from 0 (the first pair, the shortest time) to 1
        /// (the last pair, the longest time), and the times never falling.
        quantiles: Vec<(f64, f64)>,
    },
}

impl Default for LatencyModel {
    fn default() -> Self {
        LatencyModel::Constant { ms: 0.0 }
    }
}

impl Serialize for LatencyModel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        LatencyModel::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for LatencyModel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        written::deserialize(deserializer)
    }
}

/// What is wrong with the quantile table of an `empirical` model, if anything: the index of
/// the offending pair (`None` for the table as a whole) and what to change.
pub fn table_problem(table: &[(f64, f64)]) -> Option<(Option<usize>, String)> {
    empirical::problem(table)
}

impl LatencyModel {
    /// The names of the models as YAML writes them, in declaration order.
    pub fn kinds() -> &'static [&'static str] {
        crate::names::variants(LatencyModel::deserialize)
    }

    /// The name of this model as YAML writes it.
    pub fn kind(&self) -> &'static str {
        crate::names::variant(|probe| LatencyModel::serialize(self, probe))
    }

    /// Draws one latency. Draws below zero become zero and draws above [`MAX_SAMPLE`] become
    /// `MAX_SAMPLE`. Parameters that validation rejects (negative, NaN, `min_ms > max_ms`)
    /// draw zero rather than panic, so a hand-built model can never crash a run.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let ms = self.sample_ms(rng).unwrap_or(0.0);
        to_duration(ms)
    }

    fn sample_ms<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<f64> {
        match *self {
            LatencyModel::Empirical { ref quantiles } => {
                empirical::quantile(quantiles, rng.random::<f64>())
            }
            LatencyModel::Constant { ms } => Some(ms),
            LatencyModel::Uniform { min_ms, max_ms } => {
                // Drawing by hand rather than with `rand_distr::Uniform` keeps `min == max`
                // legal, which `Uniform::new` refuses.
                (min_ms <= max_ms).then(|| min_ms + (max_ms - min_ms) * rng.random::<f64>())
            }
            LatencyModel::Normal {
                mean_ms,
                std_dev_ms,
            } => Normal::new(mean_ms, std_dev_ms)
                .ok()
                .map(|normal| normal.sample(rng)),
            LatencyModel::LogNormal { median_ms, sigma } => (median_ms > 0.0)
                .then(|| LogNormal::new(median_ms.ln(), sigma).ok())
                .flatten()
                .map(|log_normal| log_normal.sample(rng)),
            LatencyModel::Exponential { mean_ms } => (mean_ms > 0.0)
                .then(|| Exp::new(1.0 / mean_ms).ok())
                .flatten()
                .map(|exp| exp.sample(rng)),
            LatencyModel::Pareto { scale_ms, shape } => Pareto::new(scale_ms, shape)
                .ok()
                .map(|pareto| pareto.sample(rng)),
        }
    }

    /// The mean of what [`sample`](Self::sample) draws, in milliseconds, ignoring the
    /// [`MAX_SAMPLE`] cap: the analytic mean where it is finite, `f64::INFINITY` for a Pareto
    /// with `shape <= 1`, and 0 for parameters that validation rejects. For a normal model
    /// this is the mean after negative draws become zero, which is above `mean_ms` when the
    /// spread is wide compared to the mean.
    pub fn mean_ms(&self) -> f64 {
        // One arm per model, so that a new model cannot fall into a default.
        let mean = match *self {
            LatencyModel::Constant { ms } => ms.max(0.0),
            LatencyModel::Empirical { ref quantiles } => empirical::mean(quantiles).unwrap_or(0.0),
            LatencyModel::Uniform { min_ms, max_ms } => {
                if min_ms <= max_ms {
                    clamped_uniform_mean(min_ms, max_ms)
                } else {
                    0.0
                }
            }
            LatencyModel::Normal {
                mean_ms,
                std_dev_ms,
            } => {
                if std_dev_ms >= 0.0 {
                    clamped_normal_mean(mean_ms, std_dev_ms)
                } else {
                    0.0
                }
            }
            LatencyModel::LogNormal { median_ms, sigma } => {
                if median_ms > 0.0 && sigma >= 0.0 {
                    median_ms * (sigma * sigma / 2.0).exp()
                } else {
                    0.0
                }
            }
            LatencyModel::Exponential { mean_ms } => mean_ms.max(0.0),
            LatencyModel::Pareto { scale_ms, shape } => {
                if !(scale_ms > 0.0 && shape > 0.0) {
                    0.0
                } else if shape <= 1.0 {
                    f64::INFINITY
                } else {
                    shape * scale_ms / (shape - 1.0)
                }
            }
        };
        if mean.is_nan() { 0.0 } else { mean }
    }
}

/// Milliseconds to a `Duration`, clamped to `[0, MAX_SAMPLE]`; NaN becomes zero.
fn to_duration(ms: f64) -> Duration {
    if ms.is_nan() || ms <= 0.0 {
        return Duration::ZERO;
    }
    let seconds = ms / 1000.0;
    if seconds >= MAX_SAMPLE.as_secs_f64() {
        return MAX_SAMPLE;
    }
    Duration::try_from_secs_f64(seconds).unwrap_or(MAX_SAMPLE)
}

/// The mean of `max(0, U)` for `U` uniform on `[min, max]`.
fn clamped_uniform_mean(min: f64, max: f64) -> f64 {
    if min >= 0.0 {
        (min + max) / 2.0
    } else if max <= 0.0 {
        0.0
    } else {
        // Only the part of the interval above zero contributes, with its own mean max/2.
        (max / (max - min)) * (max / 2.0)
    }
}

/// The mean of `max(0, X)` for `X ~ Normal(mean, std_dev)`: `μΦ(μ/σ) + σφ(μ/σ)`.
fn clamped_normal_mean(mean: f64, std_dev: f64) -> f64 {
    if std_dev == 0.0 {
        return mean.max(0.0);
    }
    let z = mean / std_dev;
    let density = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cumulative = 0.5 * erfc(-z / std::f64::consts::SQRT_2);
    mean * cumulative + std_dev * density
}

/// The complementary error function, with a fractional error below 1.2e-7 everywhere
/// (the Chebyshev fit from Numerical Recipes, section 6.2). That is far finer than any
/// latency estimate needs, and it saves a dependency.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 { value } else { 2.0 - value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        // Reference values of erfc from standard tables.
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (-1.0, 1.842_700_793),
        ] {
            assert!((erfc(x) - expected).abs() < 1e-6, "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn durations_are_clamped() {
        assert_eq!(to_duration(-5.0), Duration::ZERO);
        assert_eq!(to_duration(f64::NAN), Duration::ZERO);
        assert_eq!(to_duration(f64::INFINITY), MAX_SAMPLE);
        assert_eq!(to_duration(1e300), MAX_SAMPLE);
        assert_eq!(to_duration(1.5), Duration::from_micros(1500));
    }
}
