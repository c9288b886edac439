//! [`analyze`]: one pass over all traces producing every table the reports show.
//!
//! Layout: `model` holds the types it produces; `selection` picks the traces worth opening
//! and tallies error origins; `shares` keeps critical-path time by duration bucket.

mod model;
mod selection;
mod shares;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use model::{
    Analysis, OperationStats, Overview, ServiceStats, ShareWindows, SpanTiming, TraceSummary,
    TraceTimings,
};
use tracelab_trace::{SpanKind, Trace};

use crate::attribution::error_origin_index;
use crate::critical_path::{critical_path_with_tree, self_times_with_tree};
use crate::graph::{GraphBuilder, ratio};
use crate::health::TraceHealth;
use crate::instances::InstanceTallies;
use crate::latency::LatencyRecorder;
use crate::timeline::TimelineBuilder;
use crate::tree::SpanTree;
use shares::{BucketShares, add_to, duration_bucket};

/// What [`analyze`] should do beyond the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisOptions {
    /// How many of the slowest traces, and how many failing traces, to single out. Default 5.
    pub top_traces: usize,
    /// When the run stopped sending load, nanoseconds since the Unix epoch. Spans ending later
    /// are reported as late. Default: unknown, no lateness check.
    pub run_end_unix_nano: Option<u64>,
    /// How many examples each trace-health finding lists. Default 5.
    pub health_examples: usize,
    /// Keep the critical path and span timings of every trace, not only of the singled-out
    /// ones. Default false: on a large run that is one entry per span.
    pub keep_all_timings: bool,
}

impl Default for AnalysisOptions {
    fn default() -> Self {
        AnalysisOptions {
            top_traces: 5,
            run_end_unix_nano: None,
            health_examples: 5,
            keep_all_timings: false,
        }
    }
}

/// Computes the critical path and self time of every span of `trace`.
pub fn trace_timings(trace: &Trace) -> TraceTimings {
    let tree = SpanTree::new(trace);
    timings_with_tree(trace, &tree)
}

fn timings_with_tree(trace: &Trace, tree: &SpanTree) -> TraceTimings {
    let critical_path = critical_path_with_tree(trace, tree);
    let self_ns = self_times_with_tree(trace, tree);
    let spans = trace
        .spans
        .iter()
        .zip(self_ns)
        .enumerate()
        .map(|(i, (s, self_ns))| SpanTiming {
            span_id: s.span_id,
            self_ns,
            critical_ns: critical_path.nanos_of(i),
        })
        .collect();
    TraceTimings {
        trace_id: trace.trace_id,
        critical_path,
        spans,
    }
}

struct OperationTally {
    service: usize,
    name: String,
    count: u64,
    errors: u64,
    latency: LatencyRecorder,
    self_time: LatencyRecorder,
    self_total_ns: u64,
    critical_p50_ns: u64,
    critical_p99_ns: u64,
}

struct ServiceTally {
    name: Arc<str>,
    requests: u64,
    errors: u64,
    latency: LatencyRecorder,
    spans: u64,
    error_spans: u64,
    self_time: LatencyRecorder,
    self_total_ns: u64,
}

/// What the first pass keeps of each trace for the report.
pub(crate) struct TraceFacts {
    pub(crate) duration_ns: u64,
    pub(crate) start_unix_nano: u64,
    pub(crate) failed: bool,
    /// Index of the span the failure most likely started at.
    pub(crate) origin: Option<usize>,
}

/// Analyses traces one at a time, keeping only what the report needs: tallies, histograms,
/// critical-path time per duration bucket, and the few traces the report opens. Memory does
/// not grow with the number of traces (unless [`AnalysisOptions::keep_all_timings`] is on),
/// so a long run can be analysed while it is received. [`analyze`] is this over a slice.
pub struct Analyzer {
    options: AnalysisOptions,
    service_ids: HashMap<Arc<str>, usize>,
    services: Vec<ServiceTally>,
    /// Per service id: operation name → operation id.
    operation_ids: Vec<HashMap<String, usize>>,
    operations: Vec<OperationTally>,
    instances: InstanceTallies,
    health: TraceHealth,
    graph: GraphBuilder,
    timeline: TimelineBuilder,
    shares: HashMap<u64, BucketShares>,
    durations: LatencyRecorder,
    all_timings: Vec<TraceTimings>,
    overview: Overview,
    first_start: u64,
    origins: selection::OriginTally,
    selection: selection::Selection,
}

impl Analyzer {
    /// An analyzer with nothing seen yet.
    pub fn new(options: &AnalysisOptions) -> Self {
        Analyzer {
            options: options.clone(),
            service_ids: HashMap::new(),
            services: Vec::new(),
            operation_ids: Vec::new(),
            operations: Vec::new(),
            instances: InstanceTallies::default(),
            health: TraceHealth::default(),
            graph: GraphBuilder::default(),
            timeline: TimelineBuilder::default(),
            shares: HashMap::new(),
            durations: LatencyRecorder::new(),
            all_timings: Vec::new(),
            overview: Overview::default(),
            first_start: u64::MAX,
            origins: selection::OriginTally::default(),
            selection: selection::Selection::new(options.top_traces),
        }
    }

    /// Traces seen so far.
    pub fn traces(&self) -> u64 {
        self.overview.traces
    }

    fn service_id(&mut self, name: &Arc<str>) -> usize {
        if let Some(&id) = self.service_ids.get(name) {
            return id;
        }
        self.services.push(ServiceTally {
            name: name.clone(),
            requests: 0,
            errors: 0,
            latency: LatencyRecorder::new(),
            spans: 0,
            error_spans: 0,
            self_time: LatencyRecorder::new(),
            self_total_ns: 0,
        });
        self.operation_ids.push(HashMap::new());
        self.service_ids
            .insert(name.clone(), self.services.len() - 1);
        self.services.len() - 1
    }

    fn operation_id(&mut self, service: usize, name: &str) -> usize {
        if let Some(&id) = self.operation_ids[service].get(name) {
            return id;
        }
        self.operations.push(OperationTally {
            service,
            name: name.to_string(),
            count: 0,
            errors: 0,
            latency: LatencyRecorder::new(),
            self_time: LatencyRecorder::new(),
            self_total_ns: 0,
            critical_p50_ns: 0,
            critical_p99_ns: 0,
        });
        self.operation_ids[service].insert(name.to_string(), self.operations.len() - 1);
        self.operations.len() - 1
    }

    /// Adds one trace.
    pub fn add(&mut self, trace: &Trace) {
        let tree = SpanTree::new(trace);
        let spans = &trace.spans;
        let path = critical_path_with_tree(trace, &tree);
        let self_ns = self_times_with_tree(trace, &tree);
        let mut span_ops = Vec::with_capacity(spans.len());
        let mut span_instances = Vec::with_capacity(spans.len());
        for (i, s) in spans.iter().enumerate() {
            let service = self.service_id(&s.service_name);
            let op = self.operation_id(service, &s.name);
            span_ops.push(op);
            let instance = self.instances.of(service, s);
            span_instances.push(instance);
            let failed = s.is_error();
            let o = &mut self.operations[op];
            o.count += 1;
            o.errors += u64::from(failed);
            o.latency.record(s.duration_nanos());
            o.self_time.record(self_ns[i]);
            o.self_total_ns += self_ns[i];
            let svc = &mut self.services[service];
            svc.spans += 1;
            svc.error_spans += u64::from(failed);
            svc.self_time.record(self_ns[i]);
            svc.self_total_ns += self_ns[i];
            let entry = match tree.parent[i] {
                None => true,
                Some(p) => {
                    spans[p].service_name != s.service_name
                        || matches!(s.kind, SpanKind::Server | SpanKind::Consumer)
                }
            };
            if entry {
                svc.requests += 1;
                svc.errors += u64::from(failed);
                svc.latency.record(s.duration_nanos());
                self.instances.request(instance, failed, s.duration_nanos());
            }
            self.first_start = self.first_start.min(s.start_unix_nano);
            self.overview.last_end_unix_nano =
                self.overview.last_end_unix_nano.max(s.end_unix_nano);
        }
        let count = spans.len() as u64;
        self.overview.min_spans_per_trace = if self.overview.traces == 0 {
            count
        } else {
            self.overview.min_spans_per_trace.min(count)
        };
        self.overview.max_spans_per_trace = self.overview.max_spans_per_trace.max(count);
        self.overview.traces += 1;
        self.overview.spans += count;

        self.health.inspect(
            trace,
            &tree,
            self.options.run_end_unix_nano,
            self.options.health_examples,
        );
        self.graph.add(trace, &tree);

        let failed = trace.has_error();
        self.overview.failed_traces += u64::from(failed);
        let origin = error_origin_index(trace, &tree);
        if let Some(o) = origin {
            self.instances.origin(span_instances[o]);
        }
        let top = tree.primary_top(spans);
        let start_unix_nano = top.map(|t| spans[t].start_unix_nano).unwrap_or(0);
        let duration_ns = path.total_nanos();
        self.durations.record(duration_ns);
        if top.is_some() {
            self.timeline.add(start_unix_nano, duration_ns, failed);
        }
        if !path.segments.is_empty() {
            let bucket = self
                .shares
                .entry(duration_bucket(duration_ns))
                .or_insert_with(|| BucketShares {
                    min_ns: duration_ns,
                    max_ns: duration_ns,
                    ..BucketShares::default()
                });
            bucket.traces += 1;
            bucket.min_ns = bucket.min_ns.min(duration_ns);
            bucket.max_ns = bucket.max_ns.max(duration_ns);
            for seg in &path.segments {
                let ns = seg.duration_nanos();
                add_to(
                    &mut bucket.critical_by_operation,
                    span_ops[seg.span_index],
                    ns,
                );
                add_to(
                    &mut bucket.critical_by_instance,
                    span_instances[seg.span_index],
                    ns,
                );
            }
        }
        if self.options.keep_all_timings {
            self.all_timings.push(timings_with_tree(trace, &tree));
        }
        let facts = TraceFacts {
            duration_ns,
            start_unix_nano,
            failed,
            origin,
        };
        let origin_instance = origin.map(|o| self.instances.identity(span_instances[o]));
        self.origins.add(trace, &facts, origin_instance);
        self.selection.offer(trace, facts);
    }

    /// The analysis, and the traces it singles out (slowest and failing, without repeats),
    /// which are all a report needs to draw its waterfalls.
    pub fn finish(self) -> (Analysis, Vec<Trace>) {
        let Analyzer {
            options,
            services,
            mut operations,
            mut instances,
            health,
            graph,
            timeline,
            shares,
            durations,
            all_timings,
            mut overview,
            first_start,
            origins,
            selection,
            ..
        } = self;

        // The share windows come from the distribution of trace durations, by bucket.
        let mut buckets: Vec<(u64, BucketShares)> = shares.into_iter().collect();
        buckets.sort_unstable_by_key(|(b, _)| *b);
        let counted: u64 = buckets.iter().map(|(_, b)| b.traces).sum();
        let bucket_at = |q: f64| -> Option<u64> {
            let rank = ((q * counted as f64).ceil() as u64).clamp(1, counted.max(1));
            let mut seen = 0;
            buckets.iter().find_map(|(key, b)| {
                seen += b.traces;
                (seen >= rank).then_some(*key)
            })
        };
        let (low, high, slow) = (bucket_at(0.45), bucket_at(0.55), bucket_at(0.99));
        let edge = |key: Option<u64>, pick: fn(&BucketShares) -> u64| {
            key.and_then(|k| buckets.iter().find(|(b, _)| *b == k))
                .map_or(0, |(_, b)| pick(b))
        };
        let mut windows = ShareWindows {
            p50_low_ns: edge(low, |b| b.min_ns),
            p50_high_ns: edge(high, |b| b.max_ns),
            p99_threshold_ns: edge(slow, |b| b.min_ns),
            ..ShareWindows::default()
        };
        let (mut total_p50, mut total_p99) = (0u64, 0u64);
        for (key, b) in &buckets {
            let typical = low.is_some_and(|l| *key >= l) && high.is_some_and(|h| *key <= h);
            let is_slow = slow.is_some_and(|s| *key >= s);
            windows.p50_traces += if typical { b.traces } else { 0 };
            windows.p99_traces += if is_slow { b.traces } else { 0 };
            for &(op, ns) in &b.critical_by_operation {
                if typical {
                    operations[op].critical_p50_ns += ns;
                    total_p50 += ns;
                }
                if is_slow {
                    operations[op].critical_p99_ns += ns;
                    total_p99 += ns;
                }
            }
            for &(instance, ns) in &b.critical_by_instance {
                let p50 = if typical { ns } else { 0 };
                let p99 = if is_slow { ns } else { 0 };
                instances.critical(instance, p50, p99);
            }
        }
        let share = |part: u64, whole: u64| ratio(part, whole);

        let mut service_critical = vec![(0u64, 0u64); services.len()];
        for o in &operations {
            service_critical[o.service].0 += o.critical_p50_ns;
            service_critical[o.service].1 += o.critical_p99_ns;
        }
        let mut service_stats: Vec<ServiceStats> = services
            .iter()
            .zip(&service_critical)
            .map(|(s, &(c50, c99))| ServiceStats {
                service: s.name.to_string(),
                requests: s.requests,
                errors: s.errors,
                error_rate: ratio(s.errors, s.requests),
                latency: s.latency.summary(),
                spans: s.spans,
                error_spans: s.error_spans,
                self_time: s.self_time.summary(),
                self_time_total_ns: s.self_total_ns,
                critical_share_p50: share(c50, total_p50),
                critical_share_p99: share(c99, total_p99),
            })
            .collect();
        service_stats.sort_by(|a, b| {
            b.critical_share_p99
                .total_cmp(&a.critical_share_p99)
                .then(b.critical_share_p50.total_cmp(&a.critical_share_p50))
                .then(a.service.cmp(&b.service))
        });
        let mut operation_stats: Vec<OperationStats> = operations
            .iter()
            .map(|o| OperationStats {
                service: services[o.service].name.to_string(),
                operation: o.name.clone(),
                count: o.count,
                errors: o.errors,
                error_rate: ratio(o.errors, o.count),
                latency: o.latency.summary(),
                self_time: o.self_time.summary(),
                self_time_total_ns: o.self_total_ns,
                critical_share_p50: share(o.critical_p50_ns, total_p50),
                critical_share_p99: share(o.critical_p99_ns, total_p99),
            })
            .collect();
        operation_stats.sort_by(|a, b| {
            b.critical_share_p99
                .total_cmp(&a.critical_share_p99)
                .then(b.critical_share_p50.total_cmp(&a.critical_share_p50))
                .then((&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
        });

        let several: Vec<bool> = (0..services.len()).map(|s| instances.several(s)).collect();
        let names: Vec<Arc<str>> = services.iter().map(|s| s.name.clone()).collect();
        let error_origins = origins.finish(|service| {
            names
                .iter()
                .position(|n| n.as_ref() == service)
                .is_some_and(|s| several[s])
        });
        let (instance_stats, version_stats) = instances.finish(&names, total_p50, total_p99);

        let (slowest, failing) = selection.pick();
        let slowest_traces: Vec<TraceSummary> = slowest.iter().map(|c| c.summarize()).collect();
        let failing_traces: Vec<TraceSummary> = failing.iter().map(|c| c.summarize()).collect();
        let mut chosen: Vec<Arc<selection::Candidate>> = slowest;
        for c in failing {
            if !chosen.iter().any(|k| Arc::ptr_eq(k, &c)) {
                chosen.push(c);
            }
        }
        let trace_timings = if options.keep_all_timings {
            all_timings
        } else {
            chosen.iter().map(|c| trace_timings(&c.trace)).collect()
        };
        let singled_out: Vec<Trace> = chosen
            .into_iter()
            .map(|c| Arc::try_unwrap(c).map_or_else(|c| c.trace.clone(), |c| c.trace))
            .collect();

        overview.services = services.len() as u64;
        overview.duration = durations.summary();
        overview.first_start_unix_nano = if first_start == u64::MAX {
            0
        } else {
            first_start
        };

        let analysis = Analysis {
            overview,
            services: service_stats,
            operations: operation_stats,
            share_windows: windows,
            instances: instance_stats,
            versions: version_stats,
            error_origins,
            health,
            graph: graph.finish(),
            timeline: timeline.finish(),
            slowest_traces,
            failing_traces,
            trace_timings,
        };
        (analysis, singled_out)
    }
}

/// Analyses `traces`: critical paths, per-service and per-operation statistics, critical-path
/// shares, error origins, trace health, the service graph, the timeline and the traces worth
/// opening.
pub fn analyze(traces: &[Trace], options: &AnalysisOptions) -> Analysis {
    let mut analyzer = Analyzer::new(options);
    for trace in traces {
        analyzer.add(trace);
    }
    analyzer.finish().0
}
