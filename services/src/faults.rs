//! The faults active on one service, their history, and what they do to one request.
//!
//! The admin API ([`crate::admin`]) changes the [`FaultTable`]; every request reads it once,
//! at its start, and turns the faults that hit it into [`Effects`]. Every draw (is this
//! request in the fault's fraction? does this one fail?) comes from the request's seeded
//! generator, so the same seed gives the same fault decisions.

use crate::lock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};
use tracelab_scenario::seed::DrawRng;
use tracelab_scenario::{Fault, FaultKind, LatencyFault, LatencyModel};

/// A fault switched on, with its id for `DELETE /admin/faults/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// The id, unique within this service's lifetime.
    pub id: u64,
    /// When it was switched on, in nanoseconds since the Unix epoch.
    pub since_unix_nano: u64,
    /// Who switched it on: `api` (by hand) or what the caller said (`timeline`).
    pub source: String,
    /// The fault.
    pub fault: Fault,
}

/// One fault's window, for the history: when it was on and what it was. The field names are
/// those of a line of the run directory's `incidents.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault's id on its service.
    pub id: u64,
    /// When it was switched on, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// When it was switched off; `None` while it is still on.
    pub end_unix_nano: Option<u64>,
    /// A one-line description.
    pub what: String,
    /// Who switched it on (`api`, `timeline`).
    pub source: String,
    /// The service.
    pub service: String,
    /// The route, when the fault is on one route.
    pub route: Option<String>,
    /// The fault.
    pub fault: Fault,
}

/// The faults of one service. Shared by the admin listener and every request handler.
#[derive(Debug, Default)]
pub struct FaultTable {
    next_id: AtomicU64,
    active: Mutex<Vec<ActiveFault>>,
    history: Mutex<Vec<FaultWindow>>,
    /// Whether a `down` fault is on. Kept apart from the list so that the listener and every
    /// read of every connection can check it without taking a lock.
    down: AtomicBool,
}

impl FaultTable {
    /// An empty table.
    pub fn new() -> Self {
        FaultTable::default()
    }

    /// The active faults, oldest first.
    pub fn list(&self) -> Vec<ActiveFault> {
        lock(&self.active).clone()
    }

    /// Every window so far, oldest first; active faults have no end yet.
    pub fn history(&self) -> Vec<FaultWindow> {
        lock(&self.history).clone()
    }

    /// Whether the service is down.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Switches `fault` on and returns its id. The caller has checked it.
    pub fn add(&self, fault: Fault, source: &str) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = unix_nanos(SystemTime::now());
        lock(&self.history).push(FaultWindow {
            id,
            start_unix_nano: now,
            end_unix_nano: None,
            what: fault.describe(),
            source: source.to_owned(),
            service: fault.service.clone(),
            route: fault.route.clone(),
            fault: fault.clone(),
        });
        let mut active = lock(&self.active);
        active.push(ActiveFault {
            id,
            since_unix_nano: now,
            source: source.to_owned(),
            fault,
        });
        self.update_down(&active);
        id
    }

    /// Switches off fault `id`; false when no such fault is on.
    pub fn remove(&self, id: u64) -> bool {
        let mut active = lock(&self.active);
        let before = active.len();
        active.retain(|f| f.id != id);
        let removed = active.len() != before;
        self.update_down(&active);
        drop(active);
        if removed {
            self.close(&[id]);
        }
        removed
    }

    /// Switches every fault off; returns how many were on.
    pub fn clear(&self) -> usize {
        let mut active = lock(&self.active);
        let ids: Vec<u64> = active.drain(..).map(|f| f.id).collect();
        self.update_down(&active);
        drop(active);
        self.close(&ids);
        ids.len()
    }

    fn close(&self, ids: &[u64]) {
        let now = unix_nanos(SystemTime::now());
        for window in lock(&self.history).iter_mut() {
            if ids.contains(&window.id) && window.end_unix_nano.is_none() {
                window.end_unix_nano = Some(now);
            }
        }
    }

    fn update_down(&self, active: &[ActiveFault]) {
        let down = active.iter().any(|f| f.fault.kind == FaultKind::Down);
        self.down.store(down, Ordering::Release);
    }

    /// What the active faults do to one request to `route` with `baggage`. The draws come
    /// from `rng`, one per fault with a fraction below 1 and one per error fault, in the
    /// order the faults were switched on.
    pub fn effects(&self, route: &str, baggage: &[(String, String)], rng: &mut DrawRng) -> Effects {
        let active = lock(&self.active).clone();
        let mut effects = Effects::default();
        for entry in &active {
            let fault = &entry.fault;
            let lookup = |key: &str| {
                baggage
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            if !fault.targets(route, lookup) {
                continue;
            }
            if fault.fraction < 1.0 && !rng.random_bool(fault.fraction.clamp(0.0, 1.0)) {
                continue;
            }
            let took_effect = match &fault.kind {
                FaultKind::Latency(change) => {
                    effects.latency = Some(change.clone());
                    true
                }
                FaultKind::Error { rate, status } => {
                    let fails = *rate >= 1.0 || rng.random_bool(rate.clamp(0.0, 1.0));
                    if fails {
                        effects.error = Some(*status);
                    }
                    fails
                }
                FaultKind::Hang => {
                    effects.hang = true;
                    true
                }
                // Connections are refused by the listener; a request that got through on an
                // open connection before the fault is not touched.
                FaultKind::Down => false,
                FaultKind::DropContext => {
                    effects.drop_context = true;
                    true
                }
                FaultKind::ClockSkew { offset_ms } => {
                    effects.clock_skew_ms = *offset_ms;
                    true
                }
                FaultKind::Saturate { limit } => {
                    let limit = (*limit).max(1);
                    effects.concurrency = Some(effects.concurrency.map_or(limit, |l| l.min(limit)));
                    true
                }
                FaultKind::CacheFailure { hit_ratio } => {
                    effects.cache_hit_ratio = Some(*hit_ratio);
                    true
                }
            };
            if took_effect && !effects.injected.contains(&fault.kind_name()) {
                effects.injected.push(fault.kind_name());
            }
        }
        effects
    }
}

/// What the faults do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// A change to the route's own latency.
    pub latency: Option<LatencyFault>,
    /// Fail with this status.
    pub error: Option<u16>,
    /// Never answer.
    pub hang: bool,
    /// Start the downstream calls' spans in new traces and send no context.
    pub drop_context: bool,
    /// Shift every span of the request by this many milliseconds.
    pub clock_skew_ms: f64,
    /// The service's concurrency limit, lowered.
    pub concurrency: Option<u32>,
    /// The hit ratio of every cache step.
    pub cache_hit_ratio: Option<f64>,
    /// The kinds that took effect, for the `tracelab.injected` attribute.
    pub injected: Vec<&'static str>,
}

impl Effects {
    /// The time to record on a span now: the wall clock, shifted by the clock skew.
    pub fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        let offset = Duration::try_from_secs_f64(self.clock_skew_ms.abs() / 1000.0)
            .unwrap_or(Duration::ZERO);
        if self.clock_skew_ms >= 0.0 {
            now.checked_add(offset).unwrap_or(now)
        } else {
            now.checked_sub(offset).unwrap_or(now)
        }
    }

    /// The route's own latency after a latency fault; `base` is the draw from the route's
    /// model, and any further draw comes from `rng`.
    pub fn own_latency(&self, base: Duration, rng: &mut DrawRng) -> Duration {
        match &self.latency {
            None => base,
            Some(change) => changed_latency(change, base, rng),
        }
    }

    /// The `tracelab.injected` value: the kinds that took effect, comma-separated.
    pub fn injected_value(&self) -> Option<String> {
        (!self.injected.is_empty()).then(|| self.injected.join(","))
    }
}

/// A latency `base` after `change` (a latency fault, or an instance's own difference); any
/// further draw comes from `rng`.
pub fn changed_latency(change: &LatencyFault, base: Duration, rng: &mut DrawRng) -> Duration {
    match change {
        LatencyFault::Add(model) => base + sample(model, rng),
        LatencyFault::Multiply(factor) => base
            .mul_f64(factor.clamp(0.0, 1e6))
            .min(tracelab_scenario::MAX_SAMPLE),
        LatencyFault::Replace(model) => sample(model, rng),
    }
}

fn sample(model: &LatencyModel, rng: &mut DrawRng) -> Duration {
    model.sample(rng)
}

/// Nanoseconds since the Unix epoch (0 before it).
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn fault(kind: FaultKind) -> Fault {
        Fault {
            service: "svc".into(),
            instance: None,
            route: None,
            baggage: None,
            fraction: 1.0,
            kind,
        }
    }

    #[test]
    fn history_records_every_window() {
        let table = FaultTable::new();
        let a = table.add(fault(FaultKind::Down), "api");
        assert!(table.is_down());
        let b = table.add(fault(FaultKind::Hang), "timeline");
        assert!(table.remove(a));
        assert!(!table.is_down());
        assert!(!table.remove(a));
        assert_eq!(table.clear(), 1);
        let history = table.history();
        assert_eq!(history.len(), 2);
        assert_eq!((history[0].id, history[1].id), (a, b));
        assert!(history.iter().all(|w| w.end_unix_nano.is_some()));
        assert_eq!(history[1].source, "timeline");
    }

    #[test]
    fn same_seed_same_decisions() {
        let table = FaultTable::new();
        let mut f = fault(FaultKind::Error {
            rate: 0.5,
            status: 503,
        });
        f.fraction = 0.5;
        table.add(f, "api");
        let decide = |seed: u64| -> Vec<Option<u16>> {
            (0..64)
                .map(|i| {
                    let mut rng = DrawRng::seed_from_u64(seed + i);
                    table.effects("/", &[], &mut rng).error
                })
                .collect()
        };
        assert_eq!(decide(1), decide(1));
        let hits = decide(1).iter().filter(|e| e.is_some()).count();
        assert!((4..=30).contains(&hits), "{hits} of 64 at 25%");
    }
}
