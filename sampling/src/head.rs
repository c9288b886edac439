//! Head sampling: the decision a service takes when a trace starts.
//!
//! The samplers are those of the OpenTelemetry SDK specification, chosen the way
//! `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` choose them, plus a rate-limited root
//! sampler. `traceidratio` is the consistent probability sampler of the specification's
//! "TraceState: Probability Sampling": it compares 56 bits of trace randomness with a
//! rejection threshold and records the threshold as `ot=th:…` in the tracestate.
//!
//! The decision logic is pure ([`HeadDecider`]) so the sampling lab can replay it on recorded
//! traces; [`HeadSampler`] wraps the same logic in opentelemetry_sdk's `ShouldSample` for the
//! services to install live.
//!
//! Layout:
//! - [`threshold`]: thresholds, randomness and the `ot` tracestate entry.
//! - [`rate_limit`]: the token bucket, on a caller-supplied clock.
//! - [`otel`]: the `ShouldSample` implementation.

pub mod otel;
pub mod rate_limit;
pub mod threshold;

use serde::Serialize;

pub use otel::{Clock, HeadSampler};
pub use rate_limit::TokenBucket;
pub use threshold::{
    DEFAULT_PRECISION, MAX_ADJUSTED_COUNT, OtTraceState, Randomness, Threshold, ThresholdError,
    trace_randomness,
};

/// Why an `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` pair was refused.
///
/// The specification asks SDKs to log an invalid argument and carry on as if it were unset.
/// tracelab refuses it instead: a lab run that silently samples at 100 % answers a question
/// nobody asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HeadConfigError {
    /// The sampler name is not one tracelab knows.
    #[error(
        "unknown sampler {0:?}; expected always_on, always_off, traceidratio, ratelimited, or parentbased_ followed by one of those"
    )]
    UnknownSampler(String),
    /// A sampler the specification names but tracelab does not implement.
    #[error("sampler {0:?} is not supported by tracelab")]
    UnsupportedSampler(String),
    /// The argument is not a number in the sampler's range.
    #[error("sampler {sampler}: argument {arg:?} {expected}")]
    BadArgument {
        /// The sampler name.
        sampler: String,
        /// The argument as given.
        arg: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The threshold precision is outside 1..=14.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
}

/// How a root span (or, without `parentbased_`, every span) decides.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RootSampler {
    /// Keep everything (writes `th:0`).
    AlwaysOn,
    /// Keep nothing.
    AlwaysOff,
    /// Consistent probability sampling at `ratio`.
    TraceIdRatio {
        /// Sampling probability in `[0, 1]`.
        ratio: f64,
    },
    /// At most this many new traces per second (token bucket holding one second's worth,
    /// at least one). Erases `th`, since the probability is unknown.
    RateLimited {
        /// Traces per second.
        traces_per_second: f64,
    },
}

/// A head sampler as `OTEL_TRACES_SAMPLER` describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadSamplerConfig {
    /// Children follow their parent's decision (`parentbased_*`).
    pub parent_based: bool,
    /// What roots (or every span, when not parent-based) do.
    pub root: RootSampler,
    /// Hex digits of threshold precision (1..=14, default 4).
    pub precision: u8,
}

impl HeadSamplerConfig {
    /// Interprets `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` values.
    ///
    /// Names: `always_on`, `always_off`, `traceidratio` (argument: probability, default 1.0),
    /// the `parentbased_` forms of those three, and tracelab's `ratelimited` /
    /// `parentbased_ratelimited` (argument: traces per second, required).
    pub fn from_env_values(sampler: &str, arg: Option<&str>) -> Result<Self, HeadConfigError> {
        let name = sampler.trim().to_ascii_lowercase();
        let (parent_based, base) = match name.strip_prefix("parentbased_") {
            Some(rest) => (true, rest),
            None => (false, name.as_str()),
        };
        let arg = arg.map(str::trim).filter(|a| !a.is_empty());
        let bad = |expected| HeadConfigError::BadArgument {
            sampler: name.clone(),
            arg: arg.unwrap_or_default().to_string(),
            expected,
        };
        let root = match base {
            "always_on" => RootSampler::AlwaysOn,
            "always_off" => RootSampler::AlwaysOff,
            "traceidratio" => {
                let ratio = match arg {
                    None => 1.0,
                    Some(a) => a
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| bad("must be a probability in [0, 1]"))?,
                };
                RootSampler::TraceIdRatio { ratio }
            }
            "ratelimited" => {
                let traces_per_second = arg
                    .and_then(|a| a.parse::<f64>().ok())
                    .filter(|r| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| bad("must be a positive number of traces per second"))?;
                RootSampler::RateLimited { traces_per_second }
            }
            "jaeger_remote" | "xray" => return Err(HeadConfigError::UnsupportedSampler(name)),
            _ => return Err(HeadConfigError::UnknownSampler(sampler.to_string())),
        };
        Ok(HeadSamplerConfig {
            parent_based,
            root,
            precision: DEFAULT_PRECISION,
        })
    }

    /// Reads `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`, as the specification
    /// says) and `OTEL_TRACES_SAMPLER_ARG` from the process environment.
    pub fn from_env() -> Result<Self, HeadConfigError> {
        let sampler = std::env::var("OTEL_TRACES_SAMPLER")
            .unwrap_or_else(|_| "parentbased_always_on".to_string());
        let arg = std::env::var("OTEL_TRACES_SAMPLER_ARG").ok();
        Self::from_env_values(&sampler, arg.as_deref())
    }

    /// Sets the threshold precision (1..=14 hex digits).
    pub fn with_precision(mut self, precision: u8) -> Result<Self, HeadConfigError> {
        Threshold::from_probability(0.5, precision)?;
        self.precision = precision;
        Ok(self)
    }

    /// The `OTEL_TRACES_SAMPLER` name.
    pub fn env_name(&self) -> String {
        let base = match self.root {
            RootSampler::AlwaysOn => "always_on",
            RootSampler::AlwaysOff => "always_off",
            RootSampler::TraceIdRatio { .. } => "traceidratio",
            RootSampler::RateLimited { .. } => "ratelimited",
        };
        if self.parent_based {
            format!("parentbased_{base}")
        } else {
            base.to_string()
        }
    }

    /// The `OTEL_TRACES_SAMPLER_ARG` value, when the sampler takes one.
    pub fn env_arg(&self) -> Option<String> {
        match self.root {
            RootSampler::TraceIdRatio { ratio } => Some(ratio.to_string()),
            RootSampler::RateLimited { traces_per_second } => Some(traces_per_second.to_string()),
            _ => None,
        }
    }

    /// The pure decision logic, for simulations and tests.
    pub fn decider(&self) -> HeadDecider {
        HeadDecider::new(self)
    }

    /// A live `ShouldSample` implementation on the process's monotonic clock.
    pub fn build(&self) -> HeadSampler {
        HeadSampler::new(self, otel::monotonic_clock())
    }

    /// A live `ShouldSample` implementation on the given clock (nanoseconds).
    pub fn build_with_clock(&self, clock: Clock) -> HeadSampler {
        HeadSampler::new(self, clock)
    }
}

/// What a head sampler decided for one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadDecision {
    /// Keep (record and export) the span.
    pub sampled: bool,
    /// The threshold to write as `ot=th:…`; `None` erases it.
    pub threshold: Option<Threshold>,
}

/// The decision logic of one head sampler, with its rate-limiter state.
#[derive(Debug, Clone)]
pub struct HeadDecider {
    parent_based: bool,
    rule: RootRule,
}

#[derive(Debug, Clone)]
enum RootRule {
    Threshold(Threshold),
    RateLimited(TokenBucket),
}

impl HeadDecider {
    fn new(config: &HeadSamplerConfig) -> Self {
        let rule = match config.root {
            RootSampler::AlwaysOn => RootRule::Threshold(Threshold::ALWAYS_SAMPLE),
            RootSampler::AlwaysOff => RootRule::Threshold(Threshold::NEVER_SAMPLE),
            RootSampler::TraceIdRatio { ratio } => RootRule::Threshold(
                // Both inputs were validated by the config constructors; should a caller
                // have built the struct by hand with bad values, the nearest valid sampler
                // is the default precision at the clamped ratio.
                Threshold::from_probability(ratio.clamp(0.0, 1.0), config.precision).unwrap_or(
                    Threshold::from_probability(ratio.clamp(0.0, 1.0), DEFAULT_PRECISION)
                        .unwrap_or(Threshold::ALWAYS_SAMPLE),
                ),
            ),
            RootSampler::RateLimited { traces_per_second } => RootRule::RateLimited(
                TokenBucket::new(traces_per_second, traces_per_second.max(1.0)),
            ),
        };
        HeadDecider {
            parent_based: config.parent_based,
            rule,
        }
    }

    /// True when children follow their parent.
    pub fn parent_based(&self) -> bool {
        self.parent_based
    }

    /// The fixed threshold of a probability sampler (`None` for rate limiting).
    pub fn threshold(&self) -> Option<Threshold> {
        match &self.rule {
            RootRule::Threshold(t) => Some(*t),
            RootRule::RateLimited(_) => None,
        }
    }

    /// An independent decision (a root, or any span of a non-parent-based sampler) for a
    /// trace id, given the `ot` tracestate entry it inherits and the current instant.
    pub fn decide_independent(
        &mut self,
        trace_id: &[u8; 16],
        ot: &OtTraceState,
        now_nanos: u64,
    ) -> HeadDecision {
        match &mut self.rule {
            RootRule::Threshold(t) => {
                let sampled = t.should_sample(trace_randomness(trace_id, ot));
                HeadDecision {
                    sampled,
                    threshold: sampled.then_some(*t),
                }
            }
            RootRule::RateLimited(bucket) => HeadDecision {
                sampled: bucket.try_take(now_nanos, 1.0),
                threshold: None,
            },
        }
    }

    /// The decision for a span whose parent is known, or an independent one when there is
    /// no parent or the sampler is not parent-based.
    pub fn decide(
        &mut self,
        trace_id: &[u8; 16],
        parent_sampled: Option<bool>,
        ot: &OtTraceState,
        now_nanos: u64,
    ) -> HeadDecision {
        match parent_sampled {
            Some(sampled) if self.parent_based => {
                // Propagate the parent's threshold, erasing it when it is apparently
                // inconsistent with the decision (the specification's "simple test").
                let inherited = ot
                    .threshold()
                    .filter(|t| !sampled || t.should_sample(trace_randomness(trace_id, ot)));
                HeadDecision {
                    sampled,
                    threshold: inherited,
                }
            }
            _ => self.decide_independent(trace_id, ot, now_nanos),
        }
    }
}

#[cfg(test)]
mod tests;
