//! What the load generator sends, resolved against where the services listen.

use std::time::Duration;

use tracelab_scenario::Scenario;

/// Why a plan cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// An entry's service has no address.
    #[error(
        "no address for entry service `{0}`: pass --target {0}=http://HOST:PORT (or TRACELAB_TARGET_{upper})",
        upper = .0.to_ascii_uppercase().replace('-', "_")
    )]
    MissingTarget(String),
    /// Rate or duration unusable.
    #[error("invalid load: {0}")]
    Invalid(String),
}

/// One entry route and where to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryTarget {
    /// Scenario service name.
    pub service: String,
    /// Route path.
    pub route: String,
    /// HTTP method of the route.
    pub method: String,
    /// Relative weight in the mix.
    pub weight: f64,
    /// Full URL, e.g. `http://127.0.0.1:40123/checkout`.
    pub url: String,
}

impl EntryTarget {
    /// How the entry is named in records and reports: `service METHOD /route`.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.service, self.method, self.route)
    }
}

/// The load to send.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Seed for the entry draws (the scenario seed).
    pub seed: u64,
    /// Requests per second.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// Weighted entry routes.
    pub entries: Vec<EntryTarget>,
}

impl LoadPlan {
    /// Builds the plan from the scenario's `load:` section; `target` gives the base URL of a
    /// service (`http://host:port`).
    pub fn from_scenario(
        scenario: &Scenario,
        target: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, PlanError> {
        let mut entries = Vec::new();
        for entry in &scenario.load.entries {
            let base = target(&entry.service)
                .ok_or_else(|| PlanError::MissingTarget(entry.service.clone()))?;
            let method = scenario
                .route(&entry.service, &entry.route)
                .map(|r| r.method.clone())
                .unwrap_or_else(|| "GET".to_string());
            entries.push(EntryTarget {
                service: entry.service.clone(),
                route: entry.route.clone(),
                method,
                weight: entry.weight,
                url: format!("{}{}", base.trim_end_matches('/'), entry.route),
            });
        }
        let plan = LoadPlan {
            seed: scenario.seed,
            rate: scenario.load.rate,
            duration: scenario.load.duration,
            entries,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// Checks rate, duration and weights (command-line overrides bypass scenario validation).
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(PlanError::Invalid(format!(
                "rate must be a positive number of requests per second, got {}",
                self.rate
            )));
        }
        if self.duration.is_zero() {
            return Err(PlanError::Invalid("duration must be longer than 0s".into()));
        }
        if self.entries.is_empty() || self.entries.iter().any(|e| !(e.weight > 0.0)) {
            return Err(PlanError::Invalid(
                "at least one entry with a positive weight is needed".into(),
            ));
        }
        Ok(())
    }
}
