//! `tracelab diff`: what changed between two runs, per service and per operation, and whether
//! the change is more than noise.
//!
//! Each service (and operation) is tested on what it did *itself* in each request: its self
//! time, and whether the request's failure started in it (see [`samples`]). Its inclusive
//! latency, critical-path share, time on the critical path and error rate are shown beside
//! them but not tested, because each also moves when *another* service changes: a caller
//! waiting on a slow callee is slower and fails with it, and a parallel sibling of a slowed
//! call falls off the critical path. Testing them would list every service near an incident.
//! Self time does not move that way: it is the time a span was not waiting for a child.
//!
//! The test is Mann–Whitney U on the per-request values of the two runs ([`stats`]); all the
//! tests of one diff, services and operations together, are one family under Holm's
//! correction. A metric has *changed* when its adjusted p-value is below α **and** the change
//! is large enough to matter ([`DiffOptions`]): with thousands of requests a few microseconds
//! of scheduling noise would otherwise be "significant". The size of a change in time is read
//! from the medians, not the means: a busy machine stretches the tail of every service's
//! self time at once (scheduling delays), which moves means by milliseconds and medians by
//! little. A change confined to a small fraction of requests moves the median little too, so
//! it may not count; the p99 columns and `prob_greater` show it.
//!
//! Layout: [`stats`] (the tests), [`samples`] (what is kept of a run), `model` (what a diff
//! produces), [`text`] (the terminal table).

mod model;
pub mod samples;
pub mod stats;
pub mod text;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::analysis::Analysis;
pub use model::{EntityDiff, EntityStats, Method, Metric, MetricTest, Presence, RunDiff, RunSide};
pub use samples::{EntitySamples, RunProfile, RunSampler};
use stats::{RankTest, holm, mann_whitney, mann_whitney_binary};
pub use text::render_diff;

/// Layout version of [`RunDiff`] (`docs/diff.schema.json`).
pub const DIFF_SCHEMA_VERSION: u32 = 1;

/// When a change counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffOptions {
    /// Family-wise error rate: a metric is significant when its Holm-adjusted p-value is below
    /// this. Default 0.01.
    pub alpha: f64,
    /// A change must be at least this fraction of the earlier value (the median, for time).
    /// Default 0.2 (20 %).
    pub min_relative_change: f64,
    /// A change in time (of the median per request) must also be at least this many
    /// nanoseconds. Default 2 ms.
    ///
    /// The defaults leave room for what scheduling alone does to a lab run: every service
    /// shares one process and the machine's cores, and between two runs of one scenario on a
    /// busy two-core machine the median self time of a service untouched by an incident moved
    /// by up to 1.6 ms and 19 % (docs/report.md, *Comparing two runs*).
    pub min_time_change_ns: f64,
    /// A change in a rate must also be at least this much (a fraction). Default 0.01 (one
    /// percentage point).
    pub min_rate_change: f64,
    /// A service or operation needs this many requests in a run to be tested (or, seen in
    /// only one run, to count as appeared or gone). Default 5.
    pub min_requests: u64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            alpha: 0.01,
            min_relative_change: 0.2,
            min_time_change_ns: 2e6,
            min_rate_change: 0.01,
            min_requests: 5,
        }
    }
}

/// Where each run came from, for the document.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The earlier run.
    pub before: &'a str,
    /// The later run.
    pub after: &'a str,
}

type Key = (Arc<str>, Option<String>);

struct Pending {
    key: Key,
    presence: Presence,
    before: EntityStats,
    after: EntityStats,
    raw: Vec<(Metric, u64, u64, f64, f64, RankTest)>,
}

impl RunDiff {
    /// Compares two runs.
    pub fn new(
        before: &RunProfile,
        after: &RunProfile,
        sources: Sources,
        options: &DiffOptions,
    ) -> Self {
        let mut services = compare_entities(before, after, false, options);
        let mut operations = compare_entities(before, after, true, options);

        // One family: every test of the diff.
        let p_values: Vec<f64> = services
            .iter()
            .chain(&operations)
            .flat_map(|e| e.raw.iter().map(|r| r.5.p_value))
            .collect();
        let adjusted = holm(&p_values);
        let mut adjusted = adjusted.into_iter();
        let finish = |pending: Vec<Pending>, adjusted: &mut std::vec::IntoIter<f64>| {
            let mut done: Vec<EntityDiff> = pending
                .into_iter()
                .map(|p| p.finish(adjusted, options))
                .collect();
            rank(&mut done);
            done
        };
        let services_done = finish(std::mem::take(&mut services), &mut adjusted);
        let operations_done = finish(std::mem::take(&mut operations), &mut adjusted);
        RunDiff {
            schema_version: DIFF_SCHEMA_VERSION,
            tracelab_version: env!("CARGO_PKG_VERSION").to_string(),
            method: Method {
                test: "mann-whitney-u".into(),
                correction: "holm".into(),
                alpha: options.alpha,
                min_relative_change: options.min_relative_change,
                min_time_change_ns: options.min_time_change_ns,
                min_rate_change: options.min_rate_change,
                min_requests: options.min_requests,
                max_samples: samples::MAX_SAMPLES as u64,
            },
            before: side(before, sources.before),
            after: side(after, sources.after),
            services: services_done,
            operations: operations_done,
        }
    }

    /// The services that changed, in rank order.
    pub fn changed_services(&self) -> impl Iterator<Item = &EntityDiff> {
        self.services.iter().filter(|s| s.changed)
    }
}

fn side(profile: &RunProfile, source: &str) -> RunSide {
    let o = &profile.analysis.overview;
    RunSide {
        source: source.to_string(),
        traces: o.traces,
        spans: o.spans,
        failed_traces: o.failed_traces,
        duration: o.duration,
    }
}

fn entity_samples<'a>(profile: &'a RunProfile, key: &Key) -> Option<&'a EntitySamples> {
    match &key.1 {
        None => profile.services.get(&key.0),
        Some(op) => profile.operations.get(&(key.0.clone(), op.clone())),
    }
}

fn stats(analysis: &Analysis, key: &Key, samples: Option<&EntitySamples>) -> EntityStats {
    let mut stats = EntityStats {
        requests: samples.map_or(0, |s| s.requests),
        spans: 0,
        latency_p50_ns: 0,
        latency_p99_ns: 0,
        error_rate: 0.0,
        critical_share_p50: 0.0,
        critical_share_p99: 0.0,
        critical_time_mean_ns: samples.map_or(0.0, EntitySamples::critical_mean_ns),
        self_time_p50_ns: samples.map_or(0.0, EntitySamples::self_median_ns),
        self_time_mean_ns: samples.map_or(0.0, EntitySamples::self_mean_ns),
        error_origin_rate: samples.map_or(0.0, EntitySamples::origin_rate),
    };
    // A service's or an operation's row: spans, latency, error rate, critical-path shares.
    let row = match &key.1 {
        None => analysis
            .services
            .iter()
            .find(|s| *s.service == *key.0)
            .map(|s| {
                (
                    s.spans,
                    &s.latency,
                    s.error_rate,
                    s.critical_share_p50,
                    s.critical_share_p99,
                )
            }),
        Some(op) => analysis
            .operations
            .iter()
            .find(|o| *o.service == *key.0 && o.operation == *op)
            .map(|o| {
                (
                    o.count,
                    &o.latency,
                    o.error_rate,
                    o.critical_share_p50,
                    o.critical_share_p99,
                )
            }),
    };
    if let Some((spans, latency, error_rate, share_p50, share_p99)) = row {
        stats.spans = spans;
        stats.latency_p50_ns = latency.p50_ns;
        stats.latency_p99_ns = latency.p99_ns;
        stats.error_rate = error_rate;
        stats.critical_share_p50 = share_p50;
        stats.critical_share_p99 = share_p99;
    }
    stats
}

fn compare_entities(
    before: &RunProfile,
    after: &RunProfile,
    operations: bool,
    options: &DiffOptions,
) -> Vec<Pending> {
    let keys: BTreeSet<Key> = if operations {
        before
            .operations
            .keys()
            .chain(after.operations.keys())
            .map(|(s, o)| (s.clone(), Some(o.clone())))
            .collect()
    } else {
        before
            .services
            .keys()
            .chain(after.services.keys())
            .map(|s| (s.clone(), None))
            .collect()
    };
    keys.into_iter()
        .map(|key| {
            let b = entity_samples(before, &key);
            let a = entity_samples(after, &key);
            let presence = match (b, a) {
                (Some(_), None) => Presence::BeforeOnly,
                (None, Some(_)) => Presence::AfterOnly,
                _ => Presence::Both,
            };
            let mut raw = Vec::new();
            if let (Some(b), Some(a)) = (b, a)
                && b.requests >= options.min_requests
                && a.requests >= options.min_requests
            {
                let tests = [
                    (
                        Metric::SelfTime,
                        mann_whitney(b.self_time.values(), a.self_time.values()),
                        b.self_time.values().len(),
                        a.self_time.values().len(),
                        b.self_median_ns(),
                        a.self_median_ns(),
                    ),
                    (
                        Metric::ErrorOrigin,
                        mann_whitney_binary(b.origins, b.requests, a.origins, a.requests),
                        b.requests as usize,
                        a.requests as usize,
                        b.origin_rate(),
                        a.origin_rate(),
                    ),
                ];
                for (metric, test, nb, na, mb, ma) in tests {
                    if let Some(test) = test {
                        raw.push((metric, nb as u64, na as u64, mb, ma, test));
                    }
                }
            }
            Pending {
                before: stats(&before.analysis, &key, b),
                after: stats(&after.analysis, &key, a),
                key,
                presence,
                raw,
            }
        })
        .collect()
}

impl Pending {
    fn finish(self, adjusted: &mut std::vec::IntoIter<f64>, options: &DiffOptions) -> EntityDiff {
        let tests: Vec<MetricTest> = self
            .raw
            .into_iter()
            .map(|(metric, before_n, after_n, before, after, t)| {
                let p_adjusted = adjusted.next().unwrap_or(1.0);
                let (floor, relative) = match metric {
                    Metric::ErrorOrigin => (options.min_rate_change, options.min_relative_change),
                    _ => (options.min_time_change_ns, options.min_relative_change),
                };
                let change = (after - before).abs();
                let large_enough = change >= floor && change >= relative * before.abs();
                let significant = p_adjusted < options.alpha;
                MetricTest {
                    metric,
                    before_n,
                    after_n,
                    before,
                    after,
                    prob_greater: t.prob_greater,
                    z: t.z,
                    p_value: t.p_value,
                    p_adjusted,
                    significant,
                    large_enough,
                    changed: significant && large_enough,
                }
            })
            .collect();
        let changed_metrics: Vec<Metric> = tests
            .iter()
            .filter(|t| t.changed)
            .map(|t| t.metric)
            .collect();
        let appeared_or_gone = match self.presence {
            Presence::Both => false,
            Presence::BeforeOnly => self.before.requests >= options.min_requests,
            Presence::AfterOnly => self.after.requests >= options.min_requests,
        };
        EntityDiff {
            rank: 0,
            service: self.key.0.to_string(),
            operation: self.key.1,
            presence: self.presence,
            changed: !changed_metrics.is_empty() || appeared_or_gone,
            p_value: tests.iter().map(|t| t.p_adjusted).min_by(f64::total_cmp),
            changed_metrics,
            before: self.before,
            after: self.after,
            tests,
        }
    }

    /// The strength of its strongest changed metric.
    fn evidence(entity: &EntityDiff) -> f64 {
        entity
            .tests
            .iter()
            .filter(|t| t.changed)
            .map(|t| t.z.abs())
            .fold(0.0, f64::max)
    }
}

/// Changed first: tested changes by the largest |z| (then the largest change in time on the
/// critical path, the change's weight on the requests' end-to-end time), then appearances and
/// disappearances by requests; then the unchanged, by the smallest adjusted p-value.
fn rank(entities: &mut [EntityDiff]) {
    use std::cmp::Ordering;
    let group = |e: &EntityDiff| match (e.changed, e.changed_metrics.is_empty()) {
        (true, false) => 0,
        (true, true) => 1,
        (false, _) => 2,
    };
    let critical_change =
        |e: &EntityDiff| (e.after.critical_time_mean_ns - e.before.critical_time_mean_ns).abs();
    let requests = |e: &EntityDiff| e.before.requests.max(e.after.requests);
    let p_value = |e: &EntityDiff| e.p_value.unwrap_or(f64::INFINITY);
    entities.sort_by(|a, b| {
        let within = match group(a) {
            0 => Pending::evidence(b)
                .total_cmp(&Pending::evidence(a))
                .then(critical_change(b).total_cmp(&critical_change(a))),
            1 => requests(b).cmp(&requests(a)),
            _ => p_value(a).total_cmp(&p_value(b)),
        };
        group(a)
            .cmp(&group(b))
            .then(if group(a) == group(b) {
                within
            } else {
                Ordering::Equal
            })
            .then((&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    for (i, e) in entities.iter_mut().enumerate() {
        e.rank = i as u64 + 1;
    }
}
