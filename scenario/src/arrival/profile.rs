//! Requests per second as a piecewise-linear function of time, and its integral.
//!
//! The expected number of requests up to `t` is the integral of the rate, `Λ(t)`. An arrival
//! process places request `i` where `Λ` reaches its `i`-th target (whole numbers for an even
//! process, unit-exponential steps for a Poisson one), so the profile answers two questions:
//! how many requests are expected by `t`, and when the expected count reaches `n`.

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

    fn slope(&self) -> f64 {
        if self.length > 0.0 {
            (self.to - self.from) / self.length
        } else {
            0.0
        }
    }

    /// `Λ(start + tau) − Λ(start)`.
    fn integral(&self, tau: f64) -> f64 {
        self.from * tau + self.slope() * tau * tau / 2.0
    }

    /// The `tau` at which the piece has accumulated `mass` requests: the positive root of
    /// `slope/2 τ² + from τ − mass = 0`, in the form that stays accurate when the slope is 0.
    fn inverse(&self, mass: f64) -> f64 {
        if mass <= 0.0 {
            return 0.0;
        }
        let root = (self.from * self.from + 2.0 * self.slope() * mass)
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
    /// Appends a piece of `length` seconds moving from `from` to `to` requests per second.
    /// Empty or NaN lengths add nothing; negative rates count as zero.
    pub(crate) fn push(&mut self, length: f64, from: f64, to: f64) {
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

    /// The second at which `Λ` reaches `expected`, or `None` past the end of the profile.
    /// `cursor` remembers the piece of the previous answer: callers ask about growing counts,
    /// so each piece is passed over once in all (start it at 0).
    pub fn time_of(&self, expected: f64, cursor: &mut usize) -> Option<f64> {
        let segments = &self.segments;
        while *cursor + 1 < segments.len()
            && segments[*cursor].before + segments[*cursor].mass() <= expected
        {
            *cursor += 1;
        }
        let segment = segments.get(*cursor)?;
        Some(segment.start + segment.inverse(expected - segment.before))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::arrival::{ArrivalModel, Ramp, Spike, Stage};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn expected_counts_follow_the_integral_of_the_rate() {
        let ramp = ArrivalModel::Ramp(Ramp {
            from: 0.0,
            to: 100.0,
        });
        let profile = ramp.profile(0.0, secs(10));
        assert!((profile.expected_between(3.0, 4.0) - 35.0).abs() < 1e-9);
        assert!((profile.total() - 500.0).abs() < 1e-9);
        assert_eq!(profile.length_s(), 10.0);
        // Λ(t) = 5 t², so Λ reaches 45 at t = 3.
        let mut cursor = 0;
        let t = profile
            .time_of(45.0, &mut cursor)
            .expect("within the profile");
        assert!((t - 3.0).abs() < 1e-9, "{t}");
    }

    #[test]
    fn stages_ramp_and_steps_hold() {
        let stages = vec![
            Stage {
                duration: secs(2),
                rate: 20.0,
            },
            Stage {
                duration: secs(2),
                rate: 20.0,
            },
        ];
        let linear = ArrivalModel::Stages(stages.clone()).profile(0.0, secs(4));
        assert!((linear.total() - 60.0).abs() < 1e-9);
        let held = ArrivalModel::Steps(stages).profile(0.0, secs(4));
        assert!((held.total() - 80.0).abs() < 1e-9);
        assert_eq!(
            ArrivalModel::Steps(Vec::new()).own_duration(),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_spike_adds_its_height_on_the_base_rate() {
        let spike = ArrivalModel::Spike(Spike {
            height: 90.0,
            start: secs(3),
            length: secs(2),
        });
        let profile = spike.profile(10.0, secs(8));
        assert!((profile.total() - 260.0).abs() < 1e-9);
        assert_eq!(spike.rates(10.0), vec![10.0, 90.0]);
        assert!(
            spike
                .describe(10.0)
                .starts_with("10/s with a spike of +90/s")
        );
    }

    #[test]
    fn names_come_from_the_serde_definition() {
        assert_eq!(
            ArrivalModel::kinds(),
            ["constant", "poisson", "ramp", "stages", "steps", "spike"]
        );
        assert_eq!(ArrivalModel::Poisson.kind(), "poisson");
        assert_eq!(ArrivalModel::Steps(Vec::new()).kind(), "steps");
    }
}
