//! Choosing the traces a report opens, and counting where failures start.

use std::collections::HashMap;
use std::sync::Arc;

use tracelab_trace::Trace;

use super::{TraceFacts, TraceSummary};
use crate::attribution::{ErrorOrigin, origin_span};
use crate::tree::SpanTree;

pub(super) fn tally_origins(traces: &[Trace], facts: &[TraceFacts]) -> Vec<ErrorOrigin> {
    let mut by_key: HashMap<(Arc<str>, &str), ErrorOrigin> = HashMap::new();
    for (trace, f) in traces.iter().zip(facts) {
        let Some(i) = f.origin else { continue };
        let s = &trace.spans[i];
        let origin = by_key
            .entry((s.service_name.clone(), s.name.as_str()))
            .or_insert_with(|| ErrorOrigin {
                service: s.service_name.to_string(),
                operation: s.name.clone(),
                traces: 0,
                example_trace_ids: Vec::new(),
            });
        origin.traces += 1;
        if origin.example_trace_ids.len() < 3 {
            origin.example_trace_ids.push(trace.trace_id);
        }
    }
    let mut origins: Vec<ErrorOrigin> = by_key.into_values().collect();
    origins.sort_by(|a, b| {
        b.traces
            .cmp(&a.traces)
            .then((&a.service, &a.operation).cmp(&(&b.service, &b.operation)))
    });
    origins
}

/// Indices of the slowest traces and of the failing traces to show.
///
/// Failing traces are taken slowest first, but one per distinct error origin before any origin
/// repeats: ten examples of the same timeout teach less than one example of each failure.
pub(super) fn pick_traces(
    traces: &[Trace],
    facts: &[TraceFacts],
    n: usize,
) -> (Vec<usize>, Vec<usize>) {
    let mut by_duration: Vec<usize> = (0..traces.len())
        .filter(|&i| !traces[i].spans.is_empty())
        .collect();
    by_duration.sort_by(|&a, &b| {
        facts[b]
            .duration_ns
            .cmp(&facts[a].duration_ns)
            .then(traces[a].trace_id.cmp(&traces[b].trace_id))
    });
    let slowest: Vec<usize> = by_duration.iter().copied().take(n).collect();

    let failed: Vec<usize> = by_duration
        .iter()
        .copied()
        .filter(|&i| facts[i].failed)
        .collect();
    let mut failing = Vec::new();
    let mut origins_seen: Vec<(&str, &str)> = Vec::new();
    for &i in &failed {
        if failing.len() >= n {
            break;
        }
        let key = facts[i]
            .origin
            .map(|o| {
                let s = &traces[i].spans[o];
                (&*s.service_name, s.name.as_str())
            })
            .unwrap_or(("", ""));
        if !origins_seen.contains(&key) {
            origins_seen.push(key);
            failing.push(i);
        }
    }
    for &i in &failed {
        if failing.len() >= n {
            break;
        }
        if !failing.contains(&i) {
            failing.push(i);
        }
    }
    (slowest, failing)
}

pub(super) fn summarize_trace(trace: &Trace, facts: &TraceFacts) -> TraceSummary {
    let tree = SpanTree::new(trace);
    let top = tree.primary_top(&trace.spans).map(|t| &trace.spans[t]);
    TraceSummary {
        trace_id: trace.trace_id,
        service: top.map(|s| s.service_name.to_string()).unwrap_or_default(),
        operation: top.map(|s| s.name.clone()).unwrap_or_default(),
        start_unix_nano: facts.start_unix_nano,
        duration_ns: facts.duration_ns,
        spans: trace.spans.len() as u64,
        error_spans: trace.spans.iter().filter(|s| s.is_error()).count() as u64,
        complete: trace.shape().is_complete(),
        error_origin: facts.origin.map(|o| origin_span(trace, o)),
    }
}
