//! The service dependency graph: who calls whom, how often, how fast, how often it fails.
//!
//! An edge is drawn wherever a span's parent belongs to another service: the parent's service
//! is the caller, the span's the callee. When the parent is the caller's CLIENT or PRODUCER span
//! the edge's latency is that span's duration, the time the caller waited (network included);
//! otherwise, with no client span recorded, it is the callee span's own duration. A call
//! counts as failed when either side marked its span as an error.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use tracelab_trace::{SpanKind, Trace};

use crate::latency::{LatencyRecorder, LatencySummary};
use crate::tree::SpanTree;

/// Calls from one service to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceEdge {
    /// The calling service.
    pub caller: String,
    /// The called service.
    pub callee: String,
    /// Number of calls (spans of the callee whose parent is in the caller).
    pub calls: u64,
    /// Calls where the caller's or the callee's span failed.
    pub errors: u64,
    /// `errors / calls`.
    pub error_rate: f64,
    /// Call latency as the caller saw it (see the module docs).
    pub latency: LatencySummary,
}

/// Services and the calls between them.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ServiceGraph {
    /// Every service that emitted a span, sorted by name.
    pub services: Vec<String>,
    /// Edges sorted by caller, then callee.
    pub edges: Vec<ServiceEdge>,
}

#[derive(Default)]
struct EdgeTally {
    calls: u64,
    errors: u64,
    latency: LatencyRecorder,
}

/// Accumulates the graph trace by trace.
#[derive(Default)]
pub(crate) struct GraphBuilder {
    services: BTreeSet<Arc<str>>,
    edges: HashMap<(Arc<str>, Arc<str>), EdgeTally>,
}

impl GraphBuilder {
    pub(crate) fn add(&mut self, trace: &Trace, tree: &SpanTree) {
        let spans = &trace.spans;
        for (i, s) in spans.iter().enumerate() {
            if !self.services.contains(&s.service_name) {
                self.services.insert(s.service_name.clone());
            }
            let Some(p) = tree.parent[i] else { continue };
            let parent = &spans[p];
            if parent.service_name == s.service_name {
                continue;
            }
            let waited = if matches!(parent.kind, SpanKind::Client | SpanKind::Producer) {
                parent.duration_nanos()
            } else {
                s.duration_nanos()
            };
            let tally = self
                .edges
                .entry((parent.service_name.clone(), s.service_name.clone()))
                .or_default();
            tally.calls += 1;
            if s.is_error() || parent.is_error() {
                tally.errors += 1;
            }
            tally.latency.record(waited);
        }
    }

    pub(crate) fn finish(self) -> ServiceGraph {
        let mut edges: Vec<ServiceEdge> = self
            .edges
            .into_iter()
            .map(|((caller, callee), t)| ServiceEdge {
                caller: caller.to_string(),
                callee: callee.to_string(),
                calls: t.calls,
                errors: t.errors,
                error_rate: ratio(t.errors, t.calls),
                latency: t.latency.summary(),
            })
            .collect();
        edges.sort_by(|a, b| (&a.caller, &a.callee).cmp(&(&b.caller, &b.callee)));
        ServiceGraph {
            services: self.services.iter().map(|s| s.to_string()).collect(),
            edges,
        }
    }
}

pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
