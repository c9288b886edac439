//! Rules for the resilience and resource parts of a scenario (retries, worker pools, database,
//! cache and queue steps) and for its incidents.

use std::time::Duration;

use super::Rules;
use crate::decode::{index, join};
use crate::fault::{Fault, FaultKind};
use crate::model::{Call, Scenario};
use crate::resource::{Cache, Db, Publish};

impl Rules<'_> {
    pub(super) fn retry(&mut self, call: &Call, path: &str) {
        let Some(retry) = &call.retry else {
            return;
        };
        let path = join(path, "retry");
        if retry.attempts == 0 {
            let help = "1 means no retry; leave `retry` out for that".to_owned();
            self.report(
                join(&path, "attempts"),
                "attempts must be at least 1".to_owned(),
                Some(help),
            );
        }
        self.fraction(retry.jitter, &join(&path, "jitter"), "jitter");
    }

    pub(super) fn concurrency(&mut self, limit: Option<u32>, path: &str) {
        if limit == Some(0) {
            let help = "leave it out for no limit".to_owned();
            self.report(
                join(path, "concurrency"),
                "concurrency must be at least 1".to_owned(),
                Some(help),
            );
        }
    }

    pub(super) fn db(&mut self, db: &Db, path: &str) {
        for (field, value) in [("db", &db.system), ("operation", &db.operation)] {
            if value.trim().is_empty() {
                self.report(join(path, field), format!("`{field}` is empty"), None);
            }
        }
        if db.repeat == 0 {
            self.report(
                join(path, "repeat"),
                "repeat must be at least 1".to_owned(),
                None,
            );
        }
        self.latency(&db.latency, &join(path, "latency"));
    }

    pub(super) fn cache(&mut self, scenario: &Scenario, cache: &Cache, path: &str) {
        self.fraction(cache.hit_ratio, &join(path, "hit_ratio"), "hit_ratio");
        self.latency(&cache.latency, &join(path, "latency"));
        self.call(scenario, &cache.miss, &join(path, "miss"));
    }

    pub(super) fn publish(&mut self, scenario: &Scenario, publish: &Publish, path: &str) {
        if publish.topic.trim().is_empty() {
            self.report(join(path, "publish"), "the topic is empty".to_owned(), None);
        }
        self.latency(&publish.lag, &join(path, "lag"));
        self.call(scenario, &publish.consumer, &join(path, "consumer"));
    }

    pub(super) fn incidents(&mut self, scenario: &Scenario) {
        for (position, incident) in scenario.incidents.iter().enumerate() {
            let path = index("incidents", position);
            if incident.duration == Duration::ZERO {
                self.report(
                    join(&path, "duration"),
                    "an incident must last longer than zero".to_owned(),
                    None,
                );
            }
            self.fault(scenario, &incident.fault, &join(&path, "fault"));
        }
        if let Some(random) = &scenario.random_incidents {
            let path = "random_incidents";
            for (field, value) in [("interval", random.interval), ("hold", random.hold)] {
                if value == Duration::ZERO {
                    self.report(
                        join(path, field),
                        format!("{field} must be longer than zero"),
                        None,
                    );
                }
            }
            if random.faults.is_empty() {
                self.report_empty(
                    join(path, "faults"),
                    "random incidents need at least one fault".to_owned(),
                );
            }
            for (position, fault) in random.faults.iter().enumerate() {
                self.fault(scenario, fault, &index(&join(path, "faults"), position));
            }
        }
    }

    fn fault(&mut self, scenario: &Scenario, fault: &Fault, path: &str) {
        for (field, message) in fault.problems() {
            self.report(join(path, &field), message, None);
        }
        match &fault.route {
            Some(route) => {
                self.reference(
                    scenario,
                    &fault.service,
                    route,
                    &join(path, "service"),
                    &join(path, "route"),
                );
            }
            None if !scenario.services.contains_key(&fault.service) => {
                self.report(
                    join(path, "service"),
                    format!("no service `{}`", fault.service),
                    None,
                );
            }
            None => {}
        }
        self.fault_instance(scenario, fault, path);
        if let FaultKind::Latency(crate::fault::LatencyFault::Add(model))
        | FaultKind::Latency(crate::fault::LatencyFault::Replace(model)) = &fault.kind
        {
            self.latency(model, &join(path, "kind.latency"));
        }
    }
}
