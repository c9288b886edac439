//! How the load arrives: the arrival models of the `load:` section, and the rate profile each
//! one draws over a run.
//!
//! [`ArrivalModel`] is the one definition of the open-loop models: the YAML reader, the
//! command line's `--arrival`, the JSON Schema and the load generator all take it as it is.
//! Each model is a *rate profile* (requests per second as a piecewise-linear function of time,
//! [`RateProfile`], pure math in `arrival/profile.rs`) plus an arrival *process* ([`Process`]:
//! evenly spaced or Poisson), which the load generator turns into scheduled instants. Every
//! `match` on the model is exhaustive, so a new model is a compile error wherever it needs an
//! answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

mod profile;

pub use profile::RateProfile;

/// When open-loop requests are due. YAML: `constant` (the default), `poisson`,
/// `{ramp: {from: 10, to: 100}}`, `{stages: [...]}`, `{steps: [...]}` or
/// `{spike: {height: 200, start: 10s, length: 5s}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalModel {
    /// `load.rate` requests per second, evenly spaced.
    #[default]
    Constant,
    /// A Poisson process of mean `load.rate`: exponential gaps between requests.
    Poisson,
    /// A rate moving linearly over the whole duration.
    Ramp(Ramp),
    /// Stages, each moving linearly from the previous stage's rate (0 before the first) to
    /// its own; the run lasts as long as the stages.
    Stages(Vec<Stage>),
    /// Stages, each holding its own rate; the run lasts as long as the stages.
    Steps(Vec<Stage>),
    /// `load.rate` with a burst on top.
    Spike(Spike),
}

/// How the instants of a rate profile are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// Request `i` at the instant where the expected count reaches `i`: exactly even.
    Even,
    /// A Poisson process over the profile: exponential gaps in expected count, seeded.
    Poisson,
}

impl ArrivalModel {
    /// The names of the models as YAML writes them, in declaration order.
    pub fn kinds() -> &'static [&'static str] {
        crate::names::variants(<ArrivalModel as Deserialize>::deserialize)
    }

    /// The name of this model as YAML writes it.
    pub fn kind(&self) -> &'static str {
        crate::names::variant(|probe| self.serialize(probe))
    }

    /// True when the model reads `load.rate`.
    pub fn uses_rate(&self) -> bool {
        match self {
            ArrivalModel::Constant | ArrivalModel::Poisson | ArrivalModel::Spike(_) => true,
            ArrivalModel::Ramp(_) | ArrivalModel::Stages(_) | ArrivalModel::Steps(_) => false,
        }
    }

    /// The stages of a staged model.
    pub fn stages(&self) -> Option<&[Stage]> {
        match self {
            ArrivalModel::Stages(stages) | ArrivalModel::Steps(stages) => Some(stages),
            ArrivalModel::Constant
            | ArrivalModel::Poisson
            | ArrivalModel::Ramp(_)
            | ArrivalModel::Spike(_) => None,
        }
    }

    /// The run length the model implies by itself (the sum of its stages), if any.
    pub fn own_duration(&self) -> Option<Duration> {
        self.stages()
            .map(|stages| stages.iter().map(|stage| stage.duration).sum())
    }

    /// How the instants are drawn from the profile.
    pub fn process(&self) -> Process {
        match self {
            ArrivalModel::Poisson => Process::Poisson,
            ArrivalModel::Constant
            | ArrivalModel::Ramp(_)
            | ArrivalModel::Stages(_)
            | ArrivalModel::Steps(_)
            | ArrivalModel::Spike(_) => Process::Even,
        }
    }

    /// The rate profile over a run of `duration`; `rate` is `load.rate`, read by the models
    /// that [use it](Self::uses_rate).
    pub fn profile(&self, rate: f64, duration: Duration) -> RateProfile {
        let total = duration.as_secs_f64();
        let mut profile = RateProfile::default();
        match self {
            ArrivalModel::Constant | ArrivalModel::Poisson => profile.push(total, rate, rate),
            ArrivalModel::Ramp(ramp) => profile.push(total, ramp.from, ramp.to),
            ArrivalModel::Stages(stages) => {
                let mut previous = 0.0;
                for stage in stages {
                    profile.push(stage.duration.as_secs_f64(), previous, stage.rate);
                    previous = stage.rate;
                }
            }
            ArrivalModel::Steps(stages) => {
                for stage in stages {
                    profile.push(stage.duration.as_secs_f64(), stage.rate, stage.rate);
                }
            }
            ArrivalModel::Spike(spike) => {
                let start = spike.start.as_secs_f64().min(total);
                let end = (start + spike.length.as_secs_f64()).min(total);
                let peak = rate + spike.height;
                profile.push(start, rate, rate);
                profile.push(end - start, peak, peak);
                profile.push(total - end, rate, rate);
            }
        }
        profile
    }

    /// A short description for reports: `constant 20/s`, `ramp 10/s → 100/s`.
    pub fn describe(&self, rate: f64) -> String {
        match self {
            ArrivalModel::Constant => format!("constant {rate}/s"),
            ArrivalModel::Poisson => format!("poisson mean {rate}/s"),
            ArrivalModel::Ramp(ramp) => format!("ramp {}/s → {}/s", ramp.from, ramp.to),
            ArrivalModel::Stages(stages) => format!("{} stages (linear)", stages.len()),
            ArrivalModel::Steps(stages) => format!("{} stages (step)", stages.len()),
            ArrivalModel::Spike(spike) => format!(
                "{rate}/s with a spike of +{}/s at {:.1}s for {:.1}s",
                spike.height,
                spike.start.as_secs_f64(),
                spike.length.as_secs_f64()
            ),
        }
    }

    /// Every rate the model names, `load.rate` included where it is read.
    pub fn rates(&self, rate: f64) -> Vec<f64> {
        match self {
            ArrivalModel::Constant | ArrivalModel::Poisson => vec![rate],
            ArrivalModel::Ramp(ramp) => vec![ramp.from, ramp.to],
            ArrivalModel::Stages(stages) | ArrivalModel::Steps(stages) => {
                stages.iter().map(|stage| stage.rate).collect()
            }
            ArrivalModel::Spike(spike) => vec![rate, spike.height],
        }
    }
}

/// A linear ramp of the arrival rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Requests per second at the start, 0 or more.
    pub from: f64,
    /// Requests per second at the end, 0 or more.
    pub to: f64,
}

/// One stage of a staged load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the stage lasts (`10s`, `1m`).
    #[serde(with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub duration: Duration,
    /// Requests per second the stage reaches (`stages`) or holds (`steps`), 0 or more.
    pub rate: f64,
}

/// A burst of extra requests on top of the base rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// Requests per second added to `load.rate` during the burst, above 0.
    pub height: f64,
    /// When the burst starts, from the start of the run (`10s`).
    #[serde(with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub start: Duration,
    /// How long the burst lasts (`5s`).
    #[serde(with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub length: Duration,
}
