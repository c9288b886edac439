//! How the load arrives: the arrival models of the `load:` section.
//!
//! These are the YAML shapes only; the load generator turns them into scheduled instants.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When open-loop requests are due. YAML: `constant` (the default), `poisson`,
/// `{ramp: {from: 10, to: 100}}`, `{stages: [...]}`, `{steps: [...]}` or
/// `{spike: {height: 200, start: 10s, length: 5s}}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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

impl ArrivalModel {
    /// The names of the models as YAML writes them.
    pub const KINDS: [&'static str; 6] =
        ["constant", "poisson", "ramp", "stages", "steps", "spike"];

    /// True when the model reads `load.rate`.
    pub fn uses_rate(&self) -> bool {
        matches!(
            self,
            ArrivalModel::Constant | ArrivalModel::Poisson | ArrivalModel::Spike(_)
        )
    }

    /// The stages of a staged model.
    pub fn stages(&self) -> Option<&[Stage]> {
        match self {
            ArrivalModel::Stages(stages) | ArrivalModel::Steps(stages) => Some(stages),
            _ => None,
        }
    }
}

/// A linear ramp of the arrival rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    /// Requests per second at the start, 0 or more.
    pub from: f64,
    /// Requests per second at the end, 0 or more.
    pub to: f64,
}

/// One stage of a staged load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// How long the stage lasts (`10s`, `1m`).
    #[serde(with = "crate::duration::required")]
    pub duration: Duration,
    /// Requests per second the stage reaches (`stages`) or holds (`steps`), 0 or more.
    pub rate: f64,
}

/// A burst of extra requests on top of the base rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// Requests per second added to `load.rate` during the burst, above 0.
    pub height: f64,
    /// When the burst starts, from the start of the run (`10s`).
    #[serde(with = "crate::duration::required")]
    pub start: Duration,
    /// How long the burst lasts (`5s`).
    #[serde(with = "crate::duration::required")]
    pub length: Duration,
}
