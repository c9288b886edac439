//! Rules for a service's instances: how many, what `instances:` overrides (only instances that
//! exist), how callers balance over them, and faults aimed at one of them.

use super::Rules;
use super::limits::{MAX_REPLICAS, baggage_key_problem};
use crate::decode::join;
use crate::fault::{Fault, LatencyFault};
use crate::model::{Balance, Instance, Scenario, Service};

impl Rules<'_> {
    pub(super) fn instances(&mut self, name: &str, service: &Service, path: &str) {
        if service.replicas > MAX_REPLICAS {
            self.report(
                join(path, "replicas"),
                format!(
                    "{} replicas is more than the lab's limit of {MAX_REPLICAS}",
                    service.replicas
                ),
                Some("the limits are listed in scenarios/README.md".to_owned()),
            );
        }
        if let Balance::Sticky(key) = &service.balance
            && let Some(problem) = baggage_key_problem(key)
        {
            self.report(
                join(&join(path, "balance"), "sticky"),
                format!("baggage key `{key}` {problem}"),
                Some("name the baggage key whose value keeps a request on one instance".to_owned()),
            );
        }
        let instances_path = join(path, "instances");
        for (index, instance) in &service.instances {
            let instance_path = join(&instances_path, &index.to_string());
            if index.0 >= service.replicas.max(1) {
                self.report(
                    instance_path.clone(),
                    format!(
                        "service `{name}` has no instance {index}: {}",
                        instance_range(service.replicas)
                    ),
                    Some(format!(
                        "raise `replicas` to {} or more, or use an index below {}",
                        index.0.saturating_add(1),
                        service.replicas.max(1)
                    )),
                );
            }
            self.instance(instance, &instance_path);
        }
    }

    fn instance(&mut self, instance: &Instance, path: &str) {
        if let Some(version) = &instance.version
            && version.trim().is_empty()
        {
            let help = "leave it out to report the service's own version".to_owned();
            self.report(
                join(path, "version"),
                "the version is empty".to_owned(),
                Some(help),
            );
        }
        if let Some(latency) = &instance.latency {
            let latency_path = join(path, "latency");
            match latency {
                LatencyFault::Add(model) => self.latency(model, &join(&latency_path, "add")),
                LatencyFault::Replace(model) => {
                    self.latency(model, &join(&latency_path, "replace"))
                }
                LatencyFault::Multiply(factor) => {
                    if !(factor.is_finite() && *factor >= 0.0) {
                        self.report(
                            join(&latency_path, "multiply"),
                            format!("the factor must be 0 or more, found {factor}"),
                            None,
                        );
                    }
                }
            }
        }
        if let Some(errors) = &instance.errors {
            self.errors(errors, &join(path, "errors"));
        }
    }

    /// A fault's `instance` must be one of its service's.
    pub(super) fn fault_instance(&mut self, scenario: &Scenario, fault: &Fault, path: &str) {
        let (Some(index), Some(service)) = (fault.instance, scenario.services.get(&fault.service))
        else {
            return;
        };
        if index >= service.replicas.max(1) {
            self.report(
                join(path, "instance"),
                format!(
                    "service `{}` has no instance {index}: {}",
                    fault.service,
                    instance_range(service.replicas)
                ),
                Some("leave `instance` out to put the fault on every instance".to_owned()),
            );
        }
    }
}

/// "it has 3 replicas (instances 0 to 2)", or the singular.
fn instance_range(replicas: u32) -> String {
    match replicas {
        0 | 1 => "it has 1 replica (instance 0)".to_owned(),
        n => format!("it has {n} replicas (instances 0 to {})", n - 1),
    }
}
