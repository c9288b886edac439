//! What `tracelab diff` keeps of one run, one trace at a time: the run's [`Analysis`] (for the
//! percentiles and shares the table shows) and, per service and per operation, one value per
//! request for the significance tests.
//!
//! The per-request values say what the service (or operation) did itself in that request, so
//! that a caller waiting on a slow callee is not counted as changed:
//! - its self time (the sum over its spans), which is tested;
//! - whether the request's failure started in it (see [`crate::attribution`]), tested;
//! - its time on the request's critical path (the sum over its spans), whose mean is shown.
//!
//! A request counts for a service when the trace holds at least one span of it. Self times
//! are kept in a bounded uniform sample per service and operation ([`MAX_SAMPLES`]); means are
//! exact.

use std::collections::HashMap;
use std::sync::Arc;

use tracelab_trace::Trace;

use super::stats::Reservoir;
use crate::analysis::{Analysis, AnalysisOptions, Analyzer};
use crate::attribution::error_origin_index;
use crate::critical_path::{critical_path_with_tree, self_times_with_tree};
use crate::tree::SpanTree;

/// The most per-request values kept per service or operation and metric. Beyond it a uniform
/// random sample is tested: 20,000 requests a side already tell apart distributions that
/// differ by a few hundredths in the probability of being larger.
pub const MAX_SAMPLES: usize = 20_000;

/// Per-request values of one service or operation.
#[derive(Debug, Clone)]
pub struct EntitySamples {
    /// Requests (traces) it took part in.
    pub requests: u64,
    /// The sum of its time on the critical path over its requests, nanoseconds.
    pub critical_sum_ns: u128,
    /// Its self time per request, nanoseconds (sampled).
    pub self_time: Reservoir,
    /// The exact sum of those times.
    pub self_sum_ns: u128,
    /// Requests whose failure started in it.
    pub origins: u64,
}

impl EntitySamples {
    fn new() -> Self {
        EntitySamples {
            requests: 0,
            critical_sum_ns: 0,
            self_time: Reservoir::new(MAX_SAMPLES),
            self_sum_ns: 0,
            origins: 0,
        }
    }

    fn add(&mut self, critical_ns: u64, self_ns: u64, origin: bool) {
        self.requests += 1;
        self.critical_sum_ns += u128::from(critical_ns);
        self.self_time.add(self_ns);
        self.self_sum_ns += u128::from(self_ns);
        self.origins += u64::from(origin);
    }

    /// Mean time on the critical path per request, nanoseconds.
    pub fn critical_mean_ns(&self) -> f64 {
        mean(self.critical_sum_ns, self.requests)
    }

    /// Median self time per request, nanoseconds (of the sample; 0 with none).
    pub fn self_median_ns(&self) -> f64 {
        let mut values = self.self_time.values().to_vec();
        values.sort_unstable();
        match values.len() {
            0 => 0.0,
            n if n % 2 == 1 => values[n / 2] as f64,
            n => (values[n / 2 - 1] as f64 + values[n / 2] as f64) / 2.0,
        }
    }

    /// Mean self time per request, nanoseconds.
    pub fn self_mean_ns(&self) -> f64 {
        mean(self.self_sum_ns, self.requests)
    }

    /// Fraction of its requests whose failure started in it.
    pub fn origin_rate(&self) -> f64 {
        mean(u128::from(self.origins), self.requests)
    }
}

fn mean(sum: u128, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum as f64 / n as f64 }
}

/// One run, as `tracelab diff` sees it.
#[derive(Debug, Clone)]
pub struct RunProfile {
    /// The run's analysis (no traces singled out).
    pub analysis: Analysis,
    /// Per service.
    pub services: HashMap<Arc<str>, EntitySamples>,
    /// Per (service, operation).
    pub operations: HashMap<(Arc<str>, String), EntitySamples>,
}

/// Builds a [`RunProfile`] from traces given one at a time; memory stays bounded whatever the
/// number of traces.
pub struct RunSampler {
    analyzer: Analyzer,
    services: HashMap<Arc<str>, EntitySamples>,
    operations: HashMap<(Arc<str>, String), EntitySamples>,
}

impl Default for RunSampler {
    fn default() -> Self {
        Self::new()
    }
}

/// One request's values for one service or operation: (critical ns, self ns, origin).
type RequestValues = (u64, u64, bool);

fn tally<K: PartialEq>(values: &mut Vec<(K, RequestValues)>, key: K, add: RequestValues) {
    match values.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => {
            v.0 += add.0;
            v.1 += add.1;
            v.2 |= add.2;
        }
        None => values.push((key, add)),
    }
}

impl RunSampler {
    /// A sampler with nothing seen yet.
    pub fn new() -> Self {
        RunSampler {
            analyzer: Analyzer::new(&AnalysisOptions {
                top_traces: 0,
                ..AnalysisOptions::default()
            }),
            services: HashMap::new(),
            operations: HashMap::new(),
        }
    }

    /// Traces seen so far.
    pub fn traces(&self) -> u64 {
        self.analyzer.traces()
    }

    /// Adds one trace.
    pub fn add(&mut self, trace: &Trace) {
        self.analyzer.add(trace);
        let tree = SpanTree::new(trace);
        let path = critical_path_with_tree(trace, &tree);
        let self_ns = self_times_with_tree(trace, &tree);
        let origin = error_origin_index(trace, &tree);
        // A trace has few services and operations: a list beats a map here.
        let mut by_service: Vec<(&Arc<str>, RequestValues)> = Vec::new();
        let mut by_operation: Vec<((&Arc<str>, &str), RequestValues)> = Vec::new();
        for (i, s) in trace.spans.iter().enumerate() {
            let values = (path.nanos_of(i), self_ns[i], origin == Some(i));
            tally(&mut by_service, &s.service_name, values);
            tally(
                &mut by_operation,
                (&s.service_name, s.name.as_str()),
                values,
            );
        }
        for (service, (c, s, o)) in by_service {
            self.services
                .entry(service.clone())
                .or_insert_with(EntitySamples::new)
                .add(c, s, o);
        }
        for ((service, operation), (c, s, o)) in by_operation {
            let key = (service.clone(), operation.to_string());
            self.operations
                .entry(key)
                .or_insert_with(EntitySamples::new)
                .add(c, s, o);
        }
    }

    /// The profile of every trace added.
    pub fn finish(self) -> RunProfile {
        RunProfile {
            analysis: self.analyzer.finish().0,
            services: self.services,
            operations: self.operations,
        }
    }
}
