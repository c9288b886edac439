//! When requests are sent: the open-loop arrival process over a rate profile.
//!
//! The scenario crate turns an arrival model into a *rate profile* — requests per second as a
//! piecewise-linear function of time, whose integral `Λ(t)` is the expected number of
//! requests up to `t` ([`tracelab_scenario::RateProfile`]). This module is the arrival
//! *process* over it. The even process schedules request `i` at the instant where `Λ(t) = i`,
//! so a constant 20/s gives one request every 50 ms, exactly `rate × duration` in all. The
//! Poisson process draws `Λ` targets with unit-exponential gaps (the time-rescaling
//! construction of a non-homogeneous Poisson process), so a constant profile gives
//! exponential inter-arrival gaps of mean `1 / rate`. Either way the same seed gives the same
//! instants, and one loop serves every model.

use std::time::Duration;

use rand_distr::{Distribution, Exp1};
use tracelab_scenario::seed::{self, DrawRng};
use tracelab_scenario::{ArrivalModel, RateProfile};

/// The schedule of `arrival` (with `rate` as the load's base rate) over a run of `duration`,
/// drawn from `seed` when the process is random.
pub fn schedule(arrival: &ArrivalModel, rate: f64, duration: Duration, seed: u64) -> Schedule {
    let process = match arrival.process() {
        tracelab_scenario::Process::Poisson => {
            Process::Poisson(Box::new(seed::rng(seed, &[b"loadgen/arrivals"])))
        }
        tracelab_scenario::Process::Even => Process::Even,
    };
    Schedule::new(arrival.profile(rate, duration), process)
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
    /// The profile's cursor: the piece the last target fell in (targets only grow).
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
        let seconds = self.profile.time_of(target, &mut self.segment)?;
        // Whole nanoseconds, rounded, so that an instant computed as exactly 3 s is 3 s.
        Some(Duration::from_nanos((seconds * 1e9).round() as u64))
    }
}

#[cfg(test)]
mod tests;
