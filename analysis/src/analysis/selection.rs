//! Choosing the traces a report opens, and counting where failures start, one trace at a time.
//!
//! Both keep a bounded amount: the `n` slowest traces, the `n` slowest failing traces and the
//! slowest failing trace of each error origin, which is everything [`Selection::pick`] can
//! choose from, so the choice is the same as if every trace had been kept.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tracelab_trace::{Trace, TraceId};

use super::{TraceFacts, TraceSummary};
use crate::attribution::{ErrorOrigin, OriginInstance, origin_span};
use crate::tree::SpanTree;

/// How many example trace ids each error origin lists.
const ORIGIN_EXAMPLES: usize = 3;

/// Slowest first, then by trace id: the order traces are singled out in.
type Rank = (Reverse<u64>, TraceId);

/// Which operation a failure started at: (service, span name); ("", "") when unknown.
type OriginKey = (Arc<str>, String);

fn origin_key(trace: &Trace, facts: &TraceFacts) -> OriginKey {
    match facts.origin {
        Some(o) => {
            let s = &trace.spans[o];
            (s.service_name.clone(), s.name.clone())
        }
        None => (Arc::from(""), String::new()),
    }
}

/// Failed traces of one origin by the instance it ran on: (instance id, version) → traces.
type ByInstance = BTreeMap<(Arc<str>, Arc<str>), u64>;

/// What is kept of one origin: failed traces, the earliest few (start, id), by instance.
type OriginCounts = (u64, Vec<(u64, TraceId)>, ByInstance);

/// Counts failed traces per origin operation, with the earliest few as examples, and by the
/// instance the origin ran on.
#[derive(Default)]
pub(super) struct OriginTally {
    by_key: HashMap<OriginKey, OriginCounts>,
}

impl OriginTally {
    /// Counts `trace`, whose origin ran on `instance` (id, version).
    pub(super) fn add(
        &mut self,
        trace: &Trace,
        facts: &TraceFacts,
        instance: Option<(&Arc<str>, &Arc<str>)>,
    ) {
        if facts.origin.is_none() {
            return;
        }
        let (count, examples, by_instance) =
            self.by_key.entry(origin_key(trace, facts)).or_default();
        *count += 1;
        if let Some((id, version)) = instance {
            *by_instance
                .entry((id.clone(), version.clone()))
                .or_default() += 1;
        }
        // The earliest traces, whatever order they are added in.
        let start = trace.spans.first().map_or(0, |s| s.start_unix_nano);
        let at = examples.partition_point(|e| *e < (start, trace.trace_id));
        if at < ORIGIN_EXAMPLES {
            examples.insert(at, (start, trace.trace_id));
            examples.truncate(ORIGIN_EXAMPLES);
        }
    }

    /// Origins, most frequent first; broken down by instance where `several` says the
    /// service ran more than one.
    pub(super) fn finish(self, several: impl Fn(&str) -> bool) -> Vec<ErrorOrigin> {
        let mut origins: Vec<ErrorOrigin> = self
            .by_key
            .into_iter()
            .map(|((service, operation), (traces, examples, by_instance))| {
                let mut instances: Vec<OriginInstance> = if several(&service) {
                    by_instance
                        .into_iter()
                        .map(|((instance, version), traces)| OriginInstance {
                            instance: instance.to_string(),
                            version: version.to_string(),
                            traces,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                instances.sort_by(|a, b| b.traces.cmp(&a.traces).then(a.instance.cmp(&b.instance)));
                ErrorOrigin {
                    service: service.to_string(),
                    operation,
                    traces,
                    example_trace_ids: examples.into_iter().map(|(_, id)| id).collect(),
                    instances,
                }
            })
            .collect();
        origins.sort_by(|a, b| {
            b.traces
                .cmp(&a.traces)
                .then((&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
        });
        origins
    }
}

/// A trace kept because it may be singled out.
pub(super) struct Candidate {
    pub(super) trace: Trace,
    facts: TraceFacts,
    origin: OriginKey,
}

impl Candidate {
    fn rank(&self) -> Rank {
        (Reverse(self.facts.duration_ns), self.trace.trace_id)
    }

    pub(super) fn summarize(&self) -> TraceSummary {
        let trace = &self.trace;
        let tree = SpanTree::new(trace);
        let top = tree.primary_top(&trace.spans).map(|t| &trace.spans[t]);
        TraceSummary {
            trace_id: trace.trace_id,
            service: top.map(|s| s.service_name.to_string()).unwrap_or_default(),
            operation: top.map(|s| s.name.clone()).unwrap_or_default(),
            start_unix_nano: self.facts.start_unix_nano,
            duration_ns: self.facts.duration_ns,
            spans: trace.spans.len() as u64,
            error_spans: trace.spans.iter().filter(|s| s.is_error()).count() as u64,
            complete: trace.shape().is_complete(),
            error_origin: self.facts.origin.map(|o| origin_span(trace, o)),
        }
    }
}

/// The bounded set of traces the report may open.
pub(super) struct Selection {
    n: usize,
    slowest: BTreeMap<Rank, Arc<Candidate>>,
    slowest_failing: BTreeMap<Rank, Arc<Candidate>>,
    slowest_per_origin: HashMap<OriginKey, Arc<Candidate>>,
}

/// Whether a trace of rank `rank` belongs among the `n` best of `kept`.
fn qualifies(kept: &BTreeMap<Rank, Arc<Candidate>>, n: usize, rank: &Rank) -> bool {
    n > 0 && (kept.len() < n || kept.last_key_value().is_some_and(|(worst, _)| rank < worst))
}

fn keep(kept: &mut BTreeMap<Rank, Arc<Candidate>>, n: usize, candidate: Arc<Candidate>) {
    kept.insert(candidate.rank(), candidate);
    while kept.len() > n {
        kept.pop_last();
    }
}

impl Selection {
    pub(super) fn new(n: usize) -> Self {
        Selection {
            n,
            slowest: BTreeMap::new(),
            slowest_failing: BTreeMap::new(),
            slowest_per_origin: HashMap::new(),
        }
    }

    /// Considers one trace; it is copied only when it may be singled out.
    pub(super) fn offer(&mut self, trace: &Trace, facts: TraceFacts) {
        if trace.spans.is_empty() || self.n == 0 {
            return;
        }
        let rank: Rank = (Reverse(facts.duration_ns), trace.trace_id);
        let failed = facts.failed;
        let origin = failed.then(|| origin_key(trace, &facts));
        let to_slowest = qualifies(&self.slowest, self.n, &rank);
        let to_failing = failed && qualifies(&self.slowest_failing, self.n, &rank);
        let to_origin = origin.as_ref().is_some_and(|key| {
            self.slowest_per_origin
                .get(key)
                .is_none_or(|kept| rank < kept.rank())
        });
        if !(to_slowest || to_failing || to_origin) {
            return;
        }
        let candidate = Arc::new(Candidate {
            trace: trace.clone(),
            facts,
            origin: origin
                .clone()
                .unwrap_or_else(|| (Arc::from(""), String::new())),
        });
        if to_slowest {
            keep(&mut self.slowest, self.n, candidate.clone());
        }
        if to_failing {
            keep(&mut self.slowest_failing, self.n, candidate.clone());
        }
        if let (true, Some(key)) = (to_origin, origin) {
            self.slowest_per_origin.insert(key, candidate);
        }
    }

    /// The slowest traces, and the failing traces to show.
    ///
    /// Failing traces are taken slowest first, but one per distinct error origin before any
    /// origin repeats: ten examples of the same timeout teach less than one example of each
    /// failure.
    pub(super) fn pick(self) -> (Vec<Arc<Candidate>>, Vec<Arc<Candidate>>) {
        let n = self.n;
        let slowest: Vec<Arc<Candidate>> = self.slowest.into_values().collect();
        let mut failed: BTreeMap<Rank, Arc<Candidate>> = self.slowest_failing;
        for c in self.slowest_per_origin.into_values() {
            failed.insert(c.rank(), c);
        }
        let failed: Vec<Arc<Candidate>> = failed.into_values().collect();
        let mut failing: Vec<Arc<Candidate>> = Vec::new();
        let mut origins_seen: Vec<&OriginKey> = Vec::new();
        for c in &failed {
            if failing.len() >= n {
                break;
            }
            if !origins_seen.contains(&&c.origin) {
                origins_seen.push(&c.origin);
                failing.push(c.clone());
            }
        }
        for c in &failed {
            if failing.len() >= n {
                break;
            }
            if !failing.iter().any(|f| Arc::ptr_eq(f, c)) {
                failing.push(c.clone());
            }
        }
        (slowest, failing)
    }
}
