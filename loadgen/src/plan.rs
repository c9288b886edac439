//! What the load generator sends, resolved against where the services listen.

use std::time::Duration;

use tracelab_scenario::{ArrivalModel, Balance, LatencyModel, Load, Scenario};

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
    /// Full URL of each instance of the service, e.g. `http://127.0.0.1:40123/checkout`; at
    /// least one.
    pub urls: Vec<String>,
    /// How requests spread over the instances when there are several: the service's policy.
    pub balance: Balance,
}

impl EntryTarget {
    /// How the entry is named in records and reports: `service METHOD /route`.
    pub fn label(&self) -> String {
        format!("{} {} {}", self.service, self.method, self.route)
    }
}

/// Where requests go: one `host:port`, which gets its own pool of connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, also the `Host` header.
    pub authority: String,
}

impl Target {
    /// The target of an `http://host:port/path` URL, and the path to request there.
    pub fn of_url(url: &str) -> Result<(Target, http::Uri), PlanError> {
        let invalid = || PlanError::Invalid(format!("`{url}` is not an http://HOST:PORT/PATH URL"));
        let uri: http::Uri = url.parse().map_err(|_| invalid())?;
        if uri.scheme_str() != Some("http") {
            return Err(PlanError::Invalid(format!(
                "`{url}`: only http:// targets are supported (the lab speaks plain HTTP/1.1)"
            )));
        }
        let authority = uri.authority().ok_or_else(invalid)?;
        let host_port = match authority.port_u16() {
            Some(_) => authority.as_str().to_string(),
            None => format!("{}:80", authority.host()),
        };
        let path = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|_| invalid())?;
        Ok((
            Target {
                authority: host_port,
            },
            path,
        ))
    }
}

/// One baggage key and the weighted values it is drawn from, e.g. `tenant: {acme: 0.1,
/// globex: 0.9}`.
#[derive(Debug, Clone, PartialEq)]
pub struct BaggageSet {
    /// The baggage key.
    pub key: String,
    /// Values with their relative weights.
    pub values: Vec<(String, f64)>,
}

impl BaggageSet {
    /// The baggage sets of a `load:` section, in file order.
    pub fn of(load: &Load) -> Vec<BaggageSet> {
        load.baggage
            .iter()
            .map(|(key, values)| BaggageSet {
                key: key.clone(),
                values: values.iter().map(|(v, w)| (v.clone(), *w)).collect(),
            })
            .collect()
    }
}

/// Who decides when the next request goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Driver {
    /// Open loop: requests are due at the instants of an arrival model, whatever the target
    /// answers.
    Open {
        /// The scenario's model.
        arrival: ArrivalModel,
        /// The load's base rate (`load.rate`), read by the models that use one.
        rate: f64,
    },
    /// Closed loop: `users` virtual users, each sending its next request after the previous
    /// answer plus a think time.
    Closed {
        /// Virtual users.
        users: u32,
        /// Pause between an answer and the user's next request.
        think: LatencyModel,
    },
}

impl Driver {
    /// The driver a `load:` section describes.
    pub fn of(load: &Load) -> Driver {
        match load.users {
            Some(users) => Driver::Closed {
                users,
                think: load.think.clone().unwrap_or_default(),
            },
            None => Driver::Open {
                arrival: load.arrival.clone(),
                rate: load.rate,
            },
        }
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Driver::Open { arrival, rate } => arrival.describe(*rate),
            Driver::Closed { users, think } => {
                format!(
                    "closed loop, {users} users, think {} (mean {:.1} ms)",
                    think.kind(),
                    think.mean_ms()
                )
            }
        }
    }
}

/// Requests in flight (sending or waiting for a connection) allowed by default; beyond it a
/// request is dropped by the client.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;

/// The load to send.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Seed for the schedule and every per-request draw (the scenario seed).
    pub seed: u64,
    /// How long to send.
    pub duration: Duration,
    /// Open or closed loop.
    pub driver: Driver,
    /// Weighted entry routes.
    pub entries: Vec<EntryTarget>,
    /// Baggage drawn per request (every request also carries `synthetic_request=true`).
    pub baggage: Vec<BaggageSet>,
    /// Connections open at once at most; further due requests wait for one to finish and
    /// start late. `None`: as many as the schedule needs, within the run's file-descriptor
    /// budget (`LoadOptions::connection_budget`); in closed loop each user has its own.
    pub connections: Option<usize>,
    /// Cap on requests in flight, waiting ones included; a due request beyond it is dropped
    /// by the client (and recorded as such).
    pub max_in_flight: usize,
}

impl LoadPlan {
    /// Builds the plan from the scenario's `load:` section; `target` gives the base URL of
    /// each instance of a service (`http://host:port`), none when it is unknown.
    pub fn from_scenario(
        scenario: &Scenario,
        target: impl Fn(&str) -> Vec<String>,
    ) -> Result<Self, PlanError> {
        let mut entries = Vec::new();
        for entry in &scenario.load.entries {
            let bases = target(&entry.service);
            if bases.is_empty() {
                return Err(PlanError::MissingTarget(entry.service.clone()));
            }
            let method = scenario
                .route(&entry.service, &entry.route)
                .map(|r| r.method.clone())
                .unwrap_or_else(|| "GET".to_string());
            entries.push(EntryTarget {
                service: entry.service.clone(),
                route: entry.route.clone(),
                method,
                weight: entry.weight,
                urls: bases
                    .iter()
                    .map(|base| format!("{}{}", base.trim_end_matches('/'), entry.route))
                    .collect(),
                balance: scenario
                    .services
                    .get(&entry.service)
                    .map(|s| s.balance.clone())
                    .unwrap_or_default(),
            });
        }
        let load = &scenario.load;
        let driver = Driver::of(load);
        let duration = match &driver {
            Driver::Open { arrival, .. } => arrival.own_duration().unwrap_or(load.duration),
            Driver::Closed { .. } => load.duration,
        };
        let plan = LoadPlan {
            seed: scenario.seed,
            duration,
            driver,
            entries,
            baggage: BaggageSet::of(load),
            connections: load.connections.map(|c| c as usize),
            max_in_flight: load
                .max_in_flight
                .map(|m| m as usize)
                .unwrap_or(DEFAULT_MAX_IN_FLIGHT),
        };
        plan.validate()?;
        Ok(plan)
    }

    /// The mean target rate over the run (0 in closed loop, which has no target).
    pub fn mean_rate(&self) -> f64 {
        match &self.driver {
            Driver::Open { arrival, rate } => {
                let secs = self.duration.as_secs_f64();
                if secs > 0.0 {
                    arrival.profile(*rate, self.duration).total() / secs
                } else {
                    0.0
                }
            }
            Driver::Closed { .. } => 0.0,
        }
    }

    /// Checks what the generator cannot run without, for a plan built in code rather than
    /// from a scenario: entries and baggage with positive weights, finite rates, at least one
    /// request. The scenario's rules (limits, a spike inside the run, …) are not repeated
    /// here: they are the scenario's validation, which runs once after command-line overrides.
    pub fn validate(&self) -> Result<(), PlanError> {
        let invalid = |m: String| Err(PlanError::Invalid(m));
        match &self.driver {
            Driver::Open { arrival, rate } => {
                if let Some(bad) = arrival
                    .rates(*rate)
                    .into_iter()
                    .find(|r| !(r.is_finite() && *r >= 0.0))
                {
                    return invalid(format!("rates must be finite and not negative, got {bad}"));
                }
                if arrival
                    .profile(*rate, self.duration)
                    .total()
                    .partial_cmp(&0.0)
                    != Some(std::cmp::Ordering::Greater)
                {
                    return invalid("the arrival model schedules no request at all".into());
                }
            }
            Driver::Closed { users, .. } => {
                if *users == 0 {
                    return invalid("a closed loop needs at least one user".into());
                }
            }
        }
        if self.duration.is_zero() {
            return invalid("duration must be longer than 0s".into());
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight must be at least 1".into());
        }
        if self.entries.is_empty()
            || self
                .entries
                .iter()
                .any(|e| !(e.weight.is_finite() && e.weight > 0.0))
        {
            return invalid("at least one entry with a positive weight is needed".into());
        }
        if let Some(entry) = self.entries.iter().find(|e| e.urls.is_empty()) {
            return invalid(format!("entry `{}` has no URL", entry.label()));
        }
        for set in &self.baggage {
            if set.values.is_empty() || set.values.iter().any(|(_, w)| !(w.is_finite() && *w > 0.0))
            {
                return invalid(format!(
                    "baggage `{}` needs values with positive weights",
                    set.key
                ));
            }
        }
        Ok(())
    }
}
