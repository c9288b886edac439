//! When requests are sent: the open-loop arrival schedule.
//!
//! Every open-loop model is a *rate profile* — requests per second as a piecewise-linear
//! function of time — plus an arrival *process*. The expected number of requests up to `t` is
//! the integral of the rate, `Λ(t)`. The even process schedules request `i` at the instant
//! where `Λ(t) = i`, so a constant 20/s gives one request every 50 ms, exactly `rate ×
//! duration` in all. The Poisson process draws `Λ` targets with unit-exponential gaps (the
//! time-rescaling construction of a non-homogeneous Poisson process), so a constant profile
//! gives exponential inter-arrival gaps of mean `1 / rate`. Either way the same seed gives the
//! same instants, and one loop serves every model.

use std::time::Duration;

use rand_distr::{Distribution, Exp1};
use tracelab_scenario::seed::{self, DrawRng};

/// How a list of stages moves from one rate to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StageShape {
    /// Each stage moves linearly from the previous stage's rate (0 before the first) to its
    /// own, as k6's stages do.
    #[default]
    Linear,
    /// Each stage holds its own rate for its whole duration.
    Step,
}

/// One stage of a staged load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Requests per second at the end of the stage (linear) or throughout it (step).
    pub rate: f64,
}

/// An open-loop arrival model: when requests are due, whatever the target answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// `rate` requests per second, evenly spaced.
    Constant {
        /// Requests per second.
        rate: f64,
    },
    /// A Poisson process of mean `rate`: exponential inter-arrival gaps.
    Poisson {
        /// Mean requests per second.
        rate: f64,
    },
    /// A rate moving linearly from `from` to `to` over the run.
    Ramp {
        /// Requests per second at the start.
        from: f64,
        /// Requests per second at the end.
        to: f64,
    },
    /// A list of stages; the run lasts as long as they do.
    Stages {
        /// The stages, in order.
        stages: Vec<Stage>,
        /// Linear moves between rates, or steps.
        shape: StageShape,
    },
    /// A base rate with a burst: `height` more requests per second from `start` for `length`.
    Spike {
        /// Requests per second outside the burst.
        base: f64,
        /// Requests per second added during the burst.
        height: f64,
        /// When the burst starts.
        start: Duration,
        /// How long it lasts.
        length: Duration,
    },
}

impl Arrival {
    /// The rate profile of this model over a run of `duration`.
    pub fn profile(&self, duration: Duration) -> RateProfile {
        let total = duration.as_secs_f64();
        let mut profile = RateProfile::default();
        match self {
            Arrival::Constant { rate } | Arrival::Poisson { rate } => {
                profile.push(total, *rate, *rate);
            }
            Arrival::Ramp { from, to } => profile.push(total, *from, *to),
            Arrival::Stages { stages, shape } => {
                let mut previous = 0.0;
                for stage in stages {
                    let from = match shape {
                        StageShape::Linear => previous,
                        StageShape::Step => stage.rate,
                    };
                    profile.push(stage.duration.as_secs_f64(), from, stage.rate);
                    previous = stage.rate;
                }
            }
            Arrival::Spike {
                base,
                height,
                start,
                length,
            } => {
                let start = start.as_secs_f64().min(total);
                let end = (start + length.as_secs_f64()).min(total);
                profile.push(start, *base, *base);
                profile.push(end - start, base + height, base + height);
                profile.push(total - end, *base, *base);
            }
        }
        profile
    }

    /// The schedule of a run of `duration`, drawn from `seed` when the model is random.
    pub fn schedule(&self, duration: Duration, seed: u64) -> Schedule {
        let process = match self {
            Arrival::Poisson { .. } => {
                Process::Poisson(Box::new(seed::rng(seed, &[b"loadgen/arrivals"])))
            }
            _ => Process::Even,
        };
        Schedule::new(self.profile(duration), process)
    }

    /// A short description for reports: `constant 20/s`, `ramp 10/s → 100/s`.
    pub fn describe(&self) -> String {
        match self {
            Arrival::Constant { rate } => format!("constant {rate}/s"),
            Arrival::Poisson { rate } => format!("poisson mean {rate}/s"),
            Arrival::Ramp { from, to } => format!("ramp {from}/s → {to}/s"),
            Arrival::Stages { stages, shape } => format!(
                "{} stages ({})",
                stages.len(),
                match shape {
                    StageShape::Linear => "linear",
                    StageShape::Step => "step",
                }
            ),
            Arrival::Spike {
                base,
                height,
                start,
                length,
            } => format!(
                "{base}/s with a spike of +{height}/s at {:.1}s for {:.1}s",
                start.as_secs_f64(),
                length.as_secs_f64()
            ),
        }
    }

    /// Every rate the model names, for validation.
    pub fn rates(&self) -> Vec<f64> {
        match self {
            Arrival::Constant { rate } | Arrival::Poisson { rate } => vec![*rate],
            Arrival::Ramp { from, to } => vec![*from, *to],
            Arrival::Stages { stages, .. } => stages.iter().map(|s| s.rate).collect(),
            Arrival::Spike { base, height, .. } => vec![*base, *height],
        }
    }

    /// The run length the model implies by itself (stages), if any.
    pub fn own_duration(&self) -> Option<Duration> {
        match self {
            Arrival::Stages { stages, .. } => Some(stages.iter().map(|s| s.duration).sum()),
            _ => None,
        }
    }
}

/// One linear piece of a rate profile.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    /// Start, seconds from the start of the run.
    start: f64,
    /// Length in seconds.
    length: f64,
    /// Rate at the start and at the end of the piece.
    from: f64,
    to: f64,
    /// Expected requests before the piece, `Λ(start)`.
    before: f64,
}

impl Segment {
    fn mass(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.length
    }

    /// `Λ(start + tau) − Λ(start)`.
    fn integral(&self, tau: f64) -> f64 {
        let slope = if self.length > 0.0 {
            (self.to - self.from) / self.length
        } else {
            0.0
        };
        self.from * tau + slope * tau * tau / 2.0
    }

    /// The `tau` at which the piece has accumulated `mass` requests: the positive root of
    /// `slope/2 τ² + from τ − mass = 0`, in the form that stays accurate when the slope is 0.
    fn inverse(&self, mass: f64) -> f64 {
        if mass <= 0.0 {
            return 0.0;
        }
        let half_slope = if self.length > 0.0 {
            (self.to - self.from) / self.length / 2.0
        } else {
            0.0
        };
        let root = (self.from * self.from + 4.0 * half_slope * mass)
            .max(0.0)
            .sqrt();
        let tau = 2.0 * mass / (self.from + root);
        if tau.is_finite() {
            tau.clamp(0.0, self.length)
        } else {
            self.length
        }
    }
}

/// Requests per second as a piecewise-linear function of time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateProfile {
    segments: Vec<Segment>,
}

impl RateProfile {
    fn push(&mut self, length: f64, from: f64, to: f64) {
        if length.is_nan() || length <= 0.0 {
            return;
        }
        let (start, before) = self
            .segments
            .last()
            .map(|s| (s.start + s.length, s.before + s.mass()))
            .unwrap_or((0.0, 0.0));
        self.segments.push(Segment {
            start,
            length,
            from: from.max(0.0),
            to: to.max(0.0),
            before,
        });
    }

    /// Length of the profile in seconds.
    pub fn length_s(&self) -> f64 {
        self.segments
            .last()
            .map(|s| s.start + s.length)
            .unwrap_or(0.0)
    }

    /// Expected requests up to `t` seconds, `Λ(t)`.
    pub fn expected_by(&self, t: f64) -> f64 {
        let Some(last) = self.segments.last() else {
            return 0.0;
        };
        if t >= last.start + last.length {
            return last.before + last.mass();
        }
        self.segments
            .iter()
            .rev()
            .find(|s| s.start <= t)
            .map(|s| s.before + s.integral(t - s.start))
            .unwrap_or(0.0)
    }

    /// Expected requests over the whole profile.
    pub fn total(&self) -> f64 {
        self.expected_by(f64::INFINITY)
    }

    /// Expected requests from `from` to `to` seconds.
    pub fn expected_between(&self, from: f64, to: f64) -> f64 {
        self.expected_by(to) - self.expected_by(from)
    }
}

/// How `Λ` targets are chosen.
#[derive(Debug, Clone)]
enum Process {
    /// Targets 0, 1, 2, …
    Even,
    /// Targets with unit-exponential gaps.
    Poisson(Box<DrawRng>),
}

/// The scheduled offsets of a run, in order, from the start of the run.
#[derive(Debug, Clone)]
pub struct Schedule {
    profile: RateProfile,
    process: Process,
    /// The `Λ` value of the next request.
    next_target: f64,
    /// How many requests the even process schedules.
    even_count: u64,
    emitted: u64,
    /// Index of the segment the last target fell in; targets only grow.
    segment: usize,
}

impl Schedule {
    fn new(profile: RateProfile, mut process: Process) -> Self {
        let total = profile.total();
        // `floor`, but a product within a millionth of a whole number counts as that number,
        // so 20/s × 5 s is exactly 100 despite floating-point error.
        let rounded = total.round();
        let even_count = if (total - rounded).abs() < 1e-6 {
            rounded as u64
        } else {
            total.floor() as u64
        };
        let next_target = match &mut process {
            Process::Even => 0.0,
            Process::Poisson(rng) => Exp1.sample(rng.as_mut()),
        };
        Schedule {
            profile,
            process,
            next_target,
            even_count,
            emitted: 0,
            segment: 0,
        }
    }

    /// Expected requests in the whole schedule.
    pub fn expected_total(&self) -> f64 {
        self.profile.total()
    }

    /// The rate profile behind the schedule.
    pub fn profile(&self) -> &RateProfile {
        &self.profile
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let target = self.next_target;
        match &mut self.process {
            Process::Even => {
                if self.emitted >= self.even_count {
                    return None;
                }
                self.next_target += 1.0;
            }
            Process::Poisson(rng) => {
                if target >= self.profile.total() {
                    return None;
                }
                let gap: f64 = Exp1.sample(rng.as_mut());
                self.next_target += gap;
            }
        }
        self.emitted += 1;
        let segments = &self.profile.segments;
        while self.segment + 1 < segments.len()
            && segments[self.segment].before + segments[self.segment].mass() <= target
        {
            self.segment += 1;
        }
        let segment = segments.get(self.segment)?;
        let seconds = segment.start + segment.inverse(target - segment.before);
        // Whole nanoseconds, rounded, so that an instant computed as exactly 3 s is 3 s.
        Some(Duration::from_nanos((seconds * 1e9).round() as u64))
    }
}

#[cfg(test)]
mod tests;
