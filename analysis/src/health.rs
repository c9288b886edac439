//! Trace health: is what arrived a set of whole, believable trees?
//!
//! Every finding here points at a real-world failure of tracing itself: orphans mean a span was
//! lost (dropped by a sampler, an exporter queue, a crash); a second root means a service did not
//! pick up the incoming context; a rootless fragment is a piece of a request the backend will
//! never join to its beginning; a child outside its parent points at clock skew between hosts;
//! a span ending after the run was still in flight when the load stopped.

use std::collections::HashSet;

use serde::Serialize;
use tracelab_trace::{SpanId, Trace, TraceId};

use crate::tree::SpanTree;

/// One span named by a health finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanRef {
    /// Its trace.
    pub trace_id: TraceId,
    /// The span.
    pub span_id: SpanId,
    /// Its service.
    pub service: String,
    /// Its name.
    pub operation: String,
}

/// A child span that sticks out of its parent's interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkewedChild {
    /// The child.
    pub span: SpanRef,
    /// The parent's service.
    pub parent_service: String,
    /// How long before the parent's start the child started (0 if it did not).
    pub starts_before_parent_ns: u64,
    /// How long after the parent's end the child ended (0 if it did not).
    pub ends_after_parent_ns: u64,
}

/// What the parent links and timestamps of all traces say about their health.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TraceHealth {
    /// Traces with exactly one root, no orphans and no duplicated span ids.
    pub complete_traces: u64,
    /// All other traces.
    pub broken_traces: u64,
    /// Spans whose parent id names no span of their trace.
    pub orphan_spans: u64,
    /// Traces holding at least one orphan.
    pub traces_with_orphans: u64,
    /// Traces with more than one root span.
    pub multi_root_traces: u64,
    /// Traces with no root at all: only orphan pieces arrived.
    pub rootless_traces: u64,
    /// Pieces cut off from any root: one per distinct missing parent id in a trace (orphans
    /// naming the same missing parent are one piece).
    pub fragments: u64,
    /// Span ids seen more than once in their trace.
    pub duplicate_span_ids: u64,
    /// Spans no root or orphan reaches, which only happens when parent links form a cycle.
    pub unreachable_spans: u64,
    /// Children starting before their parent or ending after it (clock-skew suspects).
    /// Asynchronous children (a CONSUMER under a PRODUCER, a `follows_from` child) may
    /// legitimately end later and count only when they start early.
    pub skewed_children: u64,
    /// A few of them.
    pub skewed_examples: Vec<SkewedChild>,
    /// Spans ending after the run's end (only counted when the run end is known).
    pub late_spans: u64,
    /// A few of them.
    pub late_examples: Vec<SpanRef>,
    /// A few broken traces, to open in a waterfall.
    pub broken_examples: Vec<TraceId>,
}

pub(crate) fn span_ref(trace: &Trace, index: usize) -> SpanRef {
    let s = &trace.spans[index];
    SpanRef {
        trace_id: trace.trace_id,
        span_id: s.span_id,
        service: s.service_name.to_string(),
        operation: s.name.clone(),
    }
}

impl TraceHealth {
    /// Adds the findings of one trace. `examples` caps each example list.
    pub(crate) fn inspect(
        &mut self,
        trace: &Trace,
        tree: &SpanTree,
        run_end_unix_nano: Option<u64>,
        examples: usize,
    ) {
        let spans = &trace.spans;
        let shape = trace.shape();
        if shape.is_complete() {
            self.complete_traces += 1;
        } else {
            self.broken_traces += 1;
            if self.broken_examples.len() < examples {
                self.broken_examples.push(trace.trace_id);
            }
        }
        self.orphan_spans += shape.orphans as u64;
        if shape.orphans > 0 {
            self.traces_with_orphans += 1;
        }
        if shape.roots > 1 {
            self.multi_root_traces += 1;
        }
        if shape.roots == 0 && !spans.is_empty() {
            self.rootless_traces += 1;
        }
        self.duplicate_span_ids += shape.duplicate_span_ids as u64;
        let missing_parents: HashSet<SpanId> = tree
            .tops
            .iter()
            .filter_map(|&i| spans[i].parent_span_id)
            .collect();
        self.fragments += missing_parents.len() as u64;
        self.unreachable_spans += tree.depth.iter().filter(|d| d.is_none()).count() as u64;

        for (i, s) in spans.iter().enumerate() {
            if let Some(p) = tree.parent[i] {
                let parent = &spans[p];
                let early = parent.start_unix_nano.saturating_sub(s.start_unix_nano);
                let late = if tree.asynchronous[i] {
                    0
                } else {
                    s.end_unix_nano.saturating_sub(parent.end_unix_nano)
                };
                if early > 0 || late > 0 {
                    self.skewed_children += 1;
                    if self.skewed_examples.len() < examples {
                        self.skewed_examples.push(SkewedChild {
                            span: span_ref(trace, i),
                            parent_service: parent.service_name.to_string(),
                            starts_before_parent_ns: early,
                            ends_after_parent_ns: late,
                        });
                    }
                }
            }
            if run_end_unix_nano.is_some_and(|end| s.end_unix_nano > end) {
                self.late_spans += 1;
                if self.late_examples.len() < examples {
                    self.late_examples.push(span_ref(trace, i));
                }
            }
        }
    }
}
