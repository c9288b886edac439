//! Traces: spans grouped by trace id, and whether each is whole.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::ids::{SpanId, TraceId};
use crate::span::Span;

/// All the spans received for one trace id.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The shared trace id.
    pub trace_id: TraceId,
    /// Its spans, sorted by start time (ties by span id, so the order is stable).
    pub spans: Vec<Span>,
}

/// What a trace's parent links say about its completeness.
///
/// A trace is *complete* when it has exactly one root and every parent id resolves to a span of
/// the same trace. Anything else is *broken*: a lost span leaves orphans, a service that drops
/// the context starts a second root, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceShape {
    /// Spans with no parent.
    pub roots: usize,
    /// Spans whose parent id names no span of this trace.
    pub orphans: usize,
    /// Span ids that appear more than once.
    pub duplicate_span_ids: usize,
}

impl TraceShape {
    /// Exactly one root, no orphans, no duplicated ids.
    pub fn is_complete(&self) -> bool {
        self.roots == 1 && self.orphans == 0 && self.duplicate_span_ids == 0
    }
}

impl Trace {
    /// Builds a trace from spans that all share `trace_id`, sorting them by start time.
    pub fn new(trace_id: TraceId, mut spans: Vec<Span>) -> Self {
        spans.sort_by_key(|s| (s.start_unix_nano, s.span_id));
        Trace { trace_id, spans }
    }

    /// Counts roots, orphans and duplicated ids.
    pub fn shape(&self) -> TraceShape {
        let mut ids: HashSet<SpanId> = HashSet::with_capacity(self.spans.len());
        let mut duplicate_span_ids = 0;
        for s in &self.spans {
            if !ids.insert(s.span_id) {
                duplicate_span_ids += 1;
            }
        }
        let mut roots = 0;
        let mut orphans = 0;
        for s in &self.spans {
            match s.parent_span_id {
                None => roots += 1,
                Some(p) if !ids.contains(&p) => orphans += 1,
                Some(_) => {}
            }
        }
        TraceShape {
            roots,
            orphans,
            duplicate_span_ids,
        }
    }

    /// The single root span, if the trace has exactly one.
    pub fn root(&self) -> Option<&Span> {
        let mut roots = self.spans.iter().filter(|s| s.is_root());
        match (roots.next(), roots.next()) {
            (Some(r), None) => Some(r),
            _ => None,
        }
    }

    /// Earliest start to latest end over all spans, in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        let start = self.spans.iter().map(|s| s.start_unix_nano).min();
        let end = self.spans.iter().map(|s| s.end_unix_nano).max();
        match (start, end) {
            (Some(s), Some(e)) => e.saturating_sub(s),
            _ => 0,
        }
    }

    /// Children of each span, by parent id, in start order.
    pub fn children(&self) -> HashMap<SpanId, Vec<&Span>> {
        let mut map: HashMap<SpanId, Vec<&Span>> = HashMap::new();
        for s in &self.spans {
            if let Some(p) = s.parent_span_id {
                map.entry(p).or_default().push(s);
            }
        }
        map
    }

    /// True when any span failed.
    pub fn has_error(&self) -> bool {
        self.spans.iter().any(Span::is_error)
    }
}

/// Groups spans by trace id. Traces come out ordered by their earliest span start.
pub fn group_into_traces(spans: impl IntoIterator<Item = Span>) -> Vec<Trace> {
    let mut by_id: HashMap<TraceId, Vec<Span>> = HashMap::new();
    for s in spans {
        by_id.entry(s.trace_id).or_default().push(s);
    }
    let mut traces: Vec<Trace> = by_id
        .into_iter()
        .map(|(id, spans)| Trace::new(id, spans))
        .collect();
    traces.sort_by_key(|t| {
        (
            t.spans.first().map(|s| s.start_unix_nano).unwrap_or(0),
            t.trace_id,
        )
    });
    traces
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::span::SpanKind;

    fn span(trace: u8, id: u8, parent: Option<u8>, start: u64, end: u64) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            flags: 1,
            name: format!("op{id}"),
            kind: SpanKind::Internal,
            start_unix_nano: start,
            end_unix_nano: end,
            service_name: Arc::from("svc"),
            ..Span::default()
        }
    }

    #[test]
    fn one_root_and_resolved_parents_is_complete() {
        let t = Trace::new(
            TraceId([1; 16]),
            vec![span(1, 2, Some(1), 5, 8), span(1, 1, None, 0, 10)],
        );
        assert!(t.shape().is_complete());
        assert_eq!(t.root().unwrap().span_id, SpanId([1; 8]));
        assert_eq!(t.duration_nanos(), 10);
        assert_eq!(t.spans[0].span_id, SpanId([1; 8]), "sorted by start");
    }

    #[test]
    fn orphan_and_second_root_make_it_broken() {
        let orphan = Trace::new(
            TraceId([1; 16]),
            vec![span(1, 1, None, 0, 10), span(1, 2, Some(9), 1, 2)],
        );
        assert_eq!(orphan.shape().orphans, 1);
        assert!(!orphan.shape().is_complete());

        let two_roots = Trace::new(
            TraceId([1; 16]),
            vec![span(1, 1, None, 0, 10), span(1, 2, None, 1, 2)],
        );
        assert_eq!(two_roots.shape().roots, 2);
        assert!(two_roots.root().is_none());
        assert!(!two_roots.shape().is_complete());
    }

    #[test]
    fn grouping_splits_by_trace_id() {
        let traces = group_into_traces(vec![
            span(2, 1, None, 50, 60),
            span(1, 1, None, 0, 10),
            span(1, 2, Some(1), 1, 2),
        ]);
        assert_eq!(traces.len(), 2);
        assert_eq!(traces[0].trace_id, TraceId([1; 16]));
        assert_eq!(traces[0].spans.len(), 2);
    }
}
