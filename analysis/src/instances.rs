//! Services broken down by instance and by version.
//!
//! A service running several instances (replicas) can be healthy on average and broken on one
//! of them: a noisy neighbour or a full disk slows one host, a canary of a new version fails
//! where its siblings do not. The service's own numbers blur that; grouping its spans by the
//! resource's `service.instance.id` and `service.version` shows it. Only services with more
//! than one instance are broken down: for the others the service's numbers already say it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;
use tracelab_trace::Span;

use crate::graph::ratio;
use crate::latency::{LatencyRecorder, LatencySummary};

/// The resource attribute naming one process of a service.
pub const INSTANCE_ID: &str = "service.instance.id";
/// The resource attribute naming the version a process runs.
pub const VERSION: &str = "service.version";

/// What is counted for a group of one service's spans: one instance, or one version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFigures {
    /// Requests the group handled (its entry spans, counted as for the service).
    pub requests: u64,
    /// Entry spans that failed.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Duration of the entry spans.
    pub latency: LatencySummary,
    /// Fraction (0..=1) of the critical-path time of typical traces spent in the group.
    pub critical_share_p50: f64,
    /// Fraction (0..=1) of the critical-path time of the slowest traces spent in it.
    pub critical_share_p99: f64,
    /// Failed traces whose likely origin (see "where errors start") is a span of the group.
    pub error_origins: u64,
}

/// One instance of a service that ran several.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStats {
    /// `service.name`.
    pub service: String,
    /// `service.instance.id` of the spans' resource; empty for spans without one.
    pub instance: String,
    /// `service.version` of the spans' resource; empty for spans without one.
    pub version: String,
    /// Its requests, errors, latency and shares (flattened into the same JSON object).
    #[serde(flatten)]
    pub figures: GroupFigures,
}

/// One version of a service that ran several instances.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionStats {
    /// `service.name`.
    pub service: String,
    /// `service.version`; empty for spans without one.
    pub version: String,
    /// Instances that ran it.
    pub instances: u64,
    /// Its instances' requests, errors, latency and shares together (flattened into the same
    /// JSON object).
    #[serde(flatten)]
    pub figures: GroupFigures,
}

/// The value of resource attribute `key` of `span`, or `""`.
pub(crate) fn resource_str<'s>(span: &'s Span, key: &str) -> &'s str {
    span.resource
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_str())
        .unwrap_or("")
}

struct InstanceTally {
    service: usize,
    id: Arc<str>,
    version: Arc<str>,
    requests: u64,
    errors: u64,
    latency: LatencyRecorder,
    critical_p50_ns: u64,
    critical_p99_ns: u64,
    error_origins: u64,
}

impl InstanceTally {
    /// Its figures; the shares are of `total_p50` and `total_p99`.
    fn figures(&self, total_p50: u64, total_p99: u64) -> GroupFigures {
        GroupFigures {
            requests: self.requests,
            errors: self.errors,
            error_rate: ratio(self.errors, self.requests),
            latency: self.latency.summary(),
            critical_share_p50: ratio(self.critical_p50_ns, total_p50),
            critical_share_p99: ratio(self.critical_p99_ns, total_p99),
            error_origins: self.error_origins,
        }
    }
}

/// Per-instance tallies, filled in one span at a time.
#[derive(Default)]
pub(crate) struct InstanceTallies {
    /// Per service id: instance id → tally index.
    ids: Vec<HashMap<String, usize>>,
    tallies: Vec<InstanceTally>,
}

impl InstanceTallies {
    /// The tally index of the instance `span` (of service id `service`) ran on.
    pub(crate) fn of(&mut self, service: usize, span: &Span) -> usize {
        if self.ids.len() <= service {
            self.ids.resize_with(service + 1, HashMap::new);
        }
        let id = resource_str(span, INSTANCE_ID);
        if let Some(&index) = self.ids[service].get(id) {
            return index;
        }
        self.tallies.push(InstanceTally {
            service,
            id: Arc::from(id),
            version: Arc::from(resource_str(span, VERSION)),
            requests: 0,
            errors: 0,
            latency: LatencyRecorder::new(),
            critical_p50_ns: 0,
            critical_p99_ns: 0,
            error_origins: 0,
        });
        self.ids[service].insert(id.to_owned(), self.tallies.len() - 1);
        self.tallies.len() - 1
    }

    /// Counts one entry span (a request the instance handled).
    pub(crate) fn request(&mut self, index: usize, failed: bool, duration_ns: u64) {
        let t = &mut self.tallies[index];
        t.requests += 1;
        t.errors += u64::from(failed);
        t.latency.record(duration_ns);
    }

    /// Counts one failed trace whose likely origin ran on the instance.
    pub(crate) fn origin(&mut self, index: usize) {
        self.tallies[index].error_origins += 1;
    }

    /// Adds critical-path time of the typical (`p50`) or slow (`p99`) window.
    pub(crate) fn critical(&mut self, index: usize, p50_ns: u64, p99_ns: u64) {
        let t = &mut self.tallies[index];
        t.critical_p50_ns += p50_ns;
        t.critical_p99_ns += p99_ns;
    }

    /// Whether the service with id `service` ran more than one instance.
    pub(crate) fn several(&self, service: usize) -> bool {
        self.ids.get(service).is_some_and(|ids| ids.len() > 1)
    }

    /// The instance id and version of a tally.
    pub(crate) fn identity(&self, index: usize) -> (&Arc<str>, &Arc<str>) {
        let t = &self.tallies[index];
        (&t.id, &t.version)
    }

    /// The breakdowns of every service with more than one instance: by instance, ranked by
    /// service name then critical-path share at p99 (then p50, then id), and by version, in
    /// the same order. `names` maps a service id to its name; the shares are of `total_p50`
    /// and `total_p99`.
    pub(crate) fn finish(
        self,
        names: &[Arc<str>],
        total_p50: u64,
        total_p99: u64,
    ) -> (Vec<InstanceStats>, Vec<VersionStats>) {
        let mut instances = Vec::new();
        let mut versions: BTreeMap<(Arc<str>, Arc<str>), (u64, InstanceTally)> = BTreeMap::new();
        for t in self.tallies {
            if self.ids.get(t.service).is_none_or(|ids| ids.len() <= 1) {
                continue;
            }
            let name = names
                .get(t.service)
                .cloned()
                .unwrap_or_else(|| Arc::from(""));
            instances.push(InstanceStats {
                service: name.to_string(),
                instance: t.id.to_string(),
                version: t.version.to_string(),
                figures: t.figures(total_p50, total_p99),
            });
            match versions.entry((name, t.version.clone())) {
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert((1, t));
                }
                std::collections::btree_map::Entry::Occupied(mut slot) => {
                    let (count, sum) = slot.get_mut();
                    *count += 1;
                    sum.requests += t.requests;
                    sum.errors += t.errors;
                    sum.latency.merge(&t.latency);
                    sum.critical_p50_ns += t.critical_p50_ns;
                    sum.critical_p99_ns += t.critical_p99_ns;
                    sum.error_origins += t.error_origins;
                }
            }
        }
        instances.sort_by(|a, b| {
            let (fa, fb) = (&a.figures, &b.figures);
            a.service
                .cmp(&b.service)
                .then(fb.critical_share_p99.total_cmp(&fa.critical_share_p99))
                .then(fb.critical_share_p50.total_cmp(&fa.critical_share_p50))
                .then(a.instance.cmp(&b.instance))
        });
        let mut versions: Vec<VersionStats> = versions
            .into_iter()
            .map(|((service, version), (count, t))| VersionStats {
                service: service.to_string(),
                version: version.to_string(),
                instances: count,
                figures: t.figures(total_p50, total_p99),
            })
            .collect();
        versions.sort_by(|a, b| {
            a.service
                .cmp(&b.service)
                .then(
                    b.figures
                        .critical_share_p99
                        .total_cmp(&a.figures.critical_share_p99),
                )
                .then(a.version.cmp(&b.version))
        });
        (instances, versions)
    }
}
