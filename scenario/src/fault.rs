//! Faults and incidents: what can go wrong with a service, and when.
//!
//! A [`Fault`] is data shared by two readers: the `incidents:` section of a scenario and the
//! runtime admin API of every service (`/admin/faults`), which takes the same JSON. A fault
//! names its service, optionally one of its instances, optionally one route and optionally a
//! slice of traffic (a baggage `key=value` and a fraction of requests), and says what happens
//! ([`FaultKind`]).
//!
//! An [`Incident`] is a fault switched on for a window of the run. [`RandomIncidents`] draws a
//! timeline of incidents from a seed, the way flagd's scheduler toggles the OpenTelemetry
//! Demo's failure flags, so a "random" outage replays exactly.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::latency::LatencyModel;

/// A fault on one service: where it applies and what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The service the fault is on.
    pub service: String,
    /// The one instance (by index, from 0) the fault is on, for a service with `replicas`
    /// above 1; every instance when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// The route (path) the fault is on; every route of the service when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Only requests carrying this baggage entry, written `key=value` (such as `tenant=acme`);
    /// every request when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baggage: Option<String>,
    /// The fraction of the matching requests the fault hits, from 0 to 1; all of them when
    /// absent. The draw comes from the request's seeded random generator.
    #[serde(default = "default_fraction")]
    pub fraction: f64,
    /// What the fault does.
    pub kind: FaultKind,
}

/// What a fault does. In YAML and JSON, a mapping with one key naming the kind (`{error:
/// {rate: 1, status: 503}}`), or the bare name for the kinds without parameters (`hang`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Changes the route's own latency.
    Latency(LatencyFault),
    /// Fails requests with an HTTP status, on the normal response path.
    Error {
        /// The fraction of hit requests that fail, from 0 to 1.
        rate: f64,
        /// The HTTP status of a failed request, from 400 to 599.
        #[serde(default = "default_fault_status")]
        status: u16,
    },
    /// Never answers: the request waits until the caller gives up.
    Hang,
    /// The service is down: connections are refused or reset. It applies to the whole
    /// service, whatever `route`, `baggage` and `fraction` say, as a crashed process would.
    Down,
    /// The service stops propagating trace context: its downstream calls start new traces.
    DropContext,
    /// The service's clock is off: every span it records is shifted by the offset.
    ClockSkew {
        /// The shift in milliseconds; negative puts spans in the past.
        offset_ms: f64,
    },
    /// The service's concurrency limit (its worker pool) shrinks to `limit`.
    Saturate {
        /// How many requests may run at once, at least 1.
        limit: u32,
    },
    /// The service's caches hit less often: every `cache` step uses this hit ratio instead.
    CacheFailure {
        /// The hit ratio during the fault, from 0 to 1.
        hit_ratio: f64,
    },
}

/// How a latency fault changes a route's own latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LatencyFault {
    /// Adds a draw of this model to the route's latency.
    Add(LatencyModel),
    /// Multiplies the route's latency by this factor (at least 0).
    Multiply(f64),
    /// Draws the route's latency from this model instead.
    Replace(LatencyModel),
}

/// A fault switched on for a window of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// When the fault switches on, from the start of the load (`5s`).
    #[serde(with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub at: Duration,
    /// How long it stays on.
    #[serde(with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub duration: Duration,
    /// A short description for reports; made from the fault when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// The fault.
    pub fault: Fault,
}

/// Incidents drawn from a seed: after a gap around `interval`, one of `faults` switches on
/// for `hold`, then the next gap starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomIncidents {
    /// The mean gap between one incident's end and the next one's start; each gap is drawn
    /// between half and one and a half times this.
    #[serde(with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub interval: Duration,
    /// How long each incident lasts.
    #[serde(with = "crate::duration::required")]
    #[schemars(schema_with = "crate::duration::schema")]
    pub hold: Duration,
    /// The seed of the draws; the scenario seed when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The faults to pick from, with equal chances; at least one.
    pub faults: Vec<Fault>,
}

impl Fault {
    /// The baggage entry the fault is limited to, split at the first `=`.
    pub fn baggage_entry(&self) -> Option<(&str, &str)> {
        self.baggage
            .as_deref()
            .and_then(|entry| entry.split_once('='))
            .map(|(key, value)| (key.trim(), value.trim()))
    }

    /// Whether the fault is on instance `index` of its service: the instance it names, or
    /// every instance when it names none.
    pub fn on_instance(&self, index: u32) -> bool {
        self.instance.is_none_or(|instance| instance == index)
    }

    /// Whether a request to `route` with this baggage is in the fault's slice of traffic,
    /// before the `fraction` draw. `baggage` looks a key up in the request's baggage.
    pub fn targets<'b>(&self, route: &str, baggage: impl Fn(&str) -> Option<&'b str>) -> bool {
        if self.route.as_deref().is_some_and(|r| r != route) {
            return false;
        }
        match self.baggage_entry() {
            Some((key, value)) => baggage(key) == Some(value),
            None => true,
        }
    }

    /// A one-line description, such as `error 503 (rate 1) on payment /charge for tenant=acme`.
    pub fn describe(&self) -> String {
        let what = match &self.kind {
            FaultKind::Latency(LatencyFault::Add(model)) => {
                format!("latency +{} ms (mean)", round(model.mean_ms()))
            }
            FaultKind::Latency(LatencyFault::Multiply(factor)) => format!("latency x{factor}"),
            FaultKind::Latency(LatencyFault::Replace(model)) => {
                format!("latency = {} ms (mean)", round(model.mean_ms()))
            }
            FaultKind::Error { rate, status } => format!("error {status} (rate {rate})"),
            FaultKind::Hang => "hang".to_owned(),
            FaultKind::Down => "down".to_owned(),
            FaultKind::DropContext => "drop_context".to_owned(),
            FaultKind::ClockSkew { offset_ms } => format!("clock_skew {offset_ms} ms"),
            FaultKind::Saturate { limit } => format!("saturate to {limit}"),
            FaultKind::CacheFailure { hit_ratio } => format!("cache_failure hit ratio {hit_ratio}"),
        };
        let mut out = format!("{what} on {}", self.service);
        if let Some(instance) = self.instance {
            out.push_str(&format!(" instance {instance}"));
        }
        if let Some(route) = &self.route {
            out.push(' ');
            out.push_str(route);
        }
        if let Some(baggage) = &self.baggage {
            out.push_str(" for ");
            out.push_str(baggage);
        }
        if self.fraction < 1.0 {
            out.push_str(&format!(" ({}% of requests)", round(self.fraction * 100.0)));
        }
        out
    }

    /// The kind's name as YAML and JSON write it (`latency`, `error`, ...), also the value of
    /// the `tracelab.injected` span attribute.
    pub fn kind_name(&self) -> &'static str {
        crate::names::variant(|probe| self.kind.serialize(probe))
    }

    /// Every out-of-range value, as (field path below the fault, message). The scenario
    /// validation and the admin API both use it, so a fault refused by one is refused by the
    /// other.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut fraction = |field: &str, value: f64| {
            if !(0.0..=1.0).contains(&value) {
                out.push((
                    field.to_owned(),
                    format!("{field} must be between 0 and 1, found {value}"),
                ));
            }
        };
        fraction("fraction", self.fraction);
        match &self.kind {
            FaultKind::Error { rate, .. } => fraction("kind.error.rate", *rate),
            FaultKind::CacheFailure { hit_ratio } => {
                fraction("kind.cache_failure.hit_ratio", *hit_ratio);
            }
            _ => {}
        }
        if self.service.trim().is_empty() {
            out.push(("service".to_owned(), "a fault needs a service".to_owned()));
        }
        if let Some(route) = &self.route
            && !route.starts_with('/')
        {
            out.push((
                "route".to_owned(),
                format!("a route starts with `/`, found `{route}`"),
            ));
        }
        if self.baggage.is_some() && self.baggage_entry().is_none_or(|(k, _)| k.is_empty()) {
            out.push((
                "baggage".to_owned(),
                "baggage must be written `key=value`, such as `tenant=acme`".to_owned(),
            ));
        }
        match &self.kind {
            FaultKind::Error { status, .. } if !(400..=599).contains(status) => out.push((
                "kind.error.status".to_owned(),
                format!("status must be from 400 to 599, found {status}"),
            )),
            FaultKind::Saturate { limit: 0 } => out.push((
                "kind.saturate.limit".to_owned(),
                "limit must be at least 1".to_owned(),
            )),
            FaultKind::ClockSkew { offset_ms } if !offset_ms.is_finite() => out.push((
                "kind.clock_skew.offset_ms".to_owned(),
                "offset_ms must be a finite number".to_owned(),
            )),
            FaultKind::Latency(LatencyFault::Multiply(f)) if !(f.is_finite() && *f >= 0.0) => {
                out.push((
                    "kind.latency.multiply".to_owned(),
                    format!("the factor must be 0 or more, found {f}"),
                ));
            }
            _ => {}
        }
        out
    }
}

impl Incident {
    /// The incident's description: `what`, or one made from the fault.
    pub fn description(&self) -> String {
        self.what.clone().unwrap_or_else(|| self.fault.describe())
    }
}

impl RandomIncidents {
    /// The incidents drawn for a run of `length`, in time order, without overlaps. The same
    /// seed always gives the same timeline.
    pub fn timeline(&self, scenario_seed: u64, length: Duration) -> Vec<Incident> {
        let mut rng = crate::seed::rng(self.seed.unwrap_or(scenario_seed), &[b"random_incidents"]);
        let mut out = Vec::new();
        let mut at = Duration::ZERO;
        if self.faults.is_empty() || self.interval.is_zero() || self.hold.is_zero() {
            return out;
        }
        loop {
            let gap = self.interval.mul_f64(rng.random_range(0.5..1.5));
            at += gap;
            if at >= length {
                return out;
            }
            let fault = &self.faults[rng.random_range(0..self.faults.len())];
            out.push(Incident {
                at,
                duration: self.hold,
                what: Some(format!("random: {}", fault.describe())),
                fault: fault.clone(),
            });
            at += self.hold;
        }
    }
}

impl crate::model::Scenario {
    /// Every incident of a run of `length`: the listed ones, then the random ones, sorted by
    /// start time.
    pub fn incident_timeline(&self, length: Duration) -> Vec<Incident> {
        let mut all = self.incidents.clone();
        if let Some(random) = &self.random_incidents {
            all.extend(random.timeline(self.seed, length));
        }
        all.sort_by_key(|incident| incident.at);
        all
    }
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn default_fraction() -> f64 {
    1.0
}

fn default_fault_status() -> u16 {
    503
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind) -> Fault {
        Fault {
            service: "payment".into(),
            instance: None,
            route: Some("/charge".into()),
            baggage: Some("tenant=acme".into()),
            fraction: 1.0,
            kind,
        }
    }

    #[test]
    fn json_round_trip_and_unit_kinds() {
        let f = fault(FaultKind::Hang);
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.contains(r#""kind":"hang""#), "{json}");
        assert_eq!(serde_json::from_str::<Fault>(&json).unwrap(), f);
        let f: Fault = serde_json::from_str(
            r#"{"service":"a","kind":{"latency":{"add":{"constant":{"ms":300}}}}}"#,
        )
        .unwrap();
        assert_eq!(f.fraction, 1.0);
        assert_eq!(
            f.kind,
            FaultKind::Latency(LatencyFault::Add(LatencyModel::Constant { ms: 300.0 }))
        );
        assert!(serde_json::from_str::<Fault>(r#"{"service":"a","kind":"hang","x":1}"#).is_err());
    }

    #[test]
    fn targets_route_and_baggage() {
        let f = fault(FaultKind::Down);
        assert!(f.targets("/charge", |k| (k == "tenant").then_some("acme")));
        assert!(!f.targets("/charge", |k| (k == "tenant").then_some("other")));
        assert!(!f.targets("/refund", |k| (k == "tenant").then_some("acme")));
        assert!(!f.targets("/charge", |_| None));
    }

    #[test]
    fn problems_are_found() {
        let mut f = fault(FaultKind::Error {
            rate: 2.0,
            status: 200,
        });
        f.baggage = Some("acme".into());
        let fields: Vec<String> = f.problems().into_iter().map(|(p, _)| p).collect();
        assert_eq!(fields, ["kind.error.rate", "baggage", "kind.error.status"]);
        assert!(fault(FaultKind::Hang).problems().is_empty());
    }

    #[test]
    fn random_timeline_is_seeded_and_never_overlaps() {
        let random = RandomIncidents {
            interval: Duration::from_secs(10),
            hold: Duration::from_secs(3),
            seed: Some(9),
            faults: vec![fault(FaultKind::Hang), fault(FaultKind::Down)],
        };
        let a = random.timeline(1, Duration::from_secs(120));
        assert_eq!(a, random.timeline(2, Duration::from_secs(120)));
        assert!(a.len() >= 6, "{}", a.len());
        for pair in a.windows(2) {
            assert!(pair[0].at + pair[0].duration <= pair[1].at);
        }
        assert!(a.iter().all(|i| i.at < Duration::from_secs(120)));
    }
}
