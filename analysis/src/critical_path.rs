//! The critical path of a trace and the self time of its spans.
//!
//! The critical path is the chain of work that determines a request's end-to-end time: making
//! any span off the path faster would not make the request faster. The walk is the one Jaeger's
//! UI uses. Start at the end of the top span and walk back in time; at each point pick the child
//! that ended last before that point, attribute the gap between the child's end and the point to
//! the parent's own work, descend into that child the same way, and continue from the child's
//! start. Children running in parallel with the chosen one end after the new point and are
//! therefore skipped: only the branch that finished last was holding the parent up.
//!
//! Clock skew and asynchronous work can put a child partly outside its parent. Such a child is
//! clipped to the parent's bounds before the walk (a child entirely outside contributes nothing),
//! because the parent's interval is the only time the request provably spent.

use serde::Serialize;
use tracelab_trace::{SpanId, Trace};

use crate::tree::SpanTree;

/// One stretch of the critical path, spent in one span's own work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CriticalSegment {
    /// Index of the span in `Trace::spans`.
    pub span_index: usize,
    /// The span's id.
    pub span_id: SpanId,
    /// Start of the stretch, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End of the stretch, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
}

impl CriticalSegment {
    /// Length of the stretch in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano - self.start_unix_nano
    }
}

/// The critical path of one trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CriticalPath {
    /// The span the walk started from (see [`SpanTree::primary_top`]); `None` for an empty trace.
    pub top_span_id: Option<SpanId>,
    /// Time on the path per span, aligned with `Trace::spans` (0 for spans off the path).
    pub span_nanos: Vec<u64>,
    /// The stretches of the path in time order; they tile the top span's interval exactly.
    pub segments: Vec<CriticalSegment>,
}

impl CriticalPath {
    /// The end-to-end time the path explains: the sum of its segments, which equals the top
    /// span's duration.
    pub fn total_nanos(&self) -> u64 {
        self.segments
            .iter()
            .map(CriticalSegment::duration_nanos)
            .sum()
    }

    /// Time on the path of the span at `span_index` (0 when off the path or out of range).
    pub fn nanos_of(&self, span_index: usize) -> u64 {
        self.span_nanos.get(span_index).copied().unwrap_or(0)
    }

    /// True when the span at `span_index` has any time on the path.
    pub fn contains(&self, span_index: usize) -> bool {
        self.nanos_of(span_index) > 0
    }
}

/// A span being walked: its clipped interval, the current point walking back from its end,
/// and its children still to consider, latest end first.
struct Frame {
    index: usize,
    start: u64,
    point: u64,
    /// `(clipped start, clipped end, index)`, sorted by end descending.
    children: Vec<(u64, u64, usize)>,
    next_child: usize,
}

/// Computes the critical path of `trace`.
pub fn critical_path(trace: &Trace) -> CriticalPath {
    let tree = SpanTree::new(trace);
    critical_path_with_tree(trace, &tree)
}

/// Same as [`critical_path`], reusing an already resolved tree.
pub(crate) fn critical_path_with_tree(trace: &Trace, tree: &SpanTree) -> CriticalPath {
    let spans = &trace.spans;
    let mut span_nanos = vec![0u64; spans.len()];
    let mut segments = Vec::new();
    let Some(top) = tree.primary_top(spans) else {
        return CriticalPath {
            top_span_id: None,
            span_nanos,
            segments,
        };
    };

    let make_frame = |index: usize, start: u64, end: u64| -> Frame {
        let mut children: Vec<(u64, u64, usize)> = tree.children[index]
            .iter()
            .filter_map(|&c| {
                let s = &spans[c];
                let cs = s.start_unix_nano.max(start);
                let ce = s.end_unix_nano.max(s.start_unix_nano).min(end);
                (cs <= ce).then_some((cs, ce, c))
            })
            .collect();
        // Latest end first; among equal ends the later start first, so a zero-length child
        // sitting at the point is walked before a longer sibling ending at the same instant.
        children.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)).then(b.2.cmp(&a.2)));
        Frame {
            index,
            start,
            point: end,
            children,
            next_child: 0,
        }
    };

    let top_span = &spans[top];
    let top_end = top_span.end_unix_nano.max(top_span.start_unix_nano);
    // An explicit stack instead of recursion: a pathological trace thousands of levels deep
    // must not overflow the thread's stack.
    let mut stack = vec![make_frame(top, top_span.start_unix_nano, top_end)];
    let mut push_segment = |index: usize, start: u64, end: u64, out: &mut Vec<CriticalSegment>| {
        if end > start {
            span_nanos[index] += end - start;
            out.push(CriticalSegment {
                span_index: index,
                span_id: spans[index].span_id,
                start_unix_nano: start,
                end_unix_nano: end,
            });
        }
    };
    while let Some(frame) = stack.last_mut() {
        // Find the next child that ended at or before the current point. Children are sorted
        // by end, and the point only moves back, so a child skipped once can never qualify
        // later: it overlapped a later-ending sibling that was already chosen.
        let mut chosen = None;
        while frame.next_child < frame.children.len() {
            let (cs, ce, c) = frame.children[frame.next_child];
            frame.next_child += 1;
            if ce <= frame.point {
                chosen = Some((cs, ce, c));
                break;
            }
        }
        match chosen {
            Some((cs, ce, c)) => {
                push_segment(frame.index, ce, frame.point, &mut segments);
                frame.point = cs;
                stack.push(make_frame(c, cs, ce));
            }
            None => {
                let (index, start, point) = (frame.index, frame.start, frame.point);
                push_segment(index, start, point, &mut segments);
                stack.pop();
            }
        }
    }
    segments.reverse();
    CriticalPath {
        top_span_id: Some(top_span.span_id),
        span_nanos,
        segments,
    }
}

/// Self time of every span, aligned with `Trace::spans`: its duration minus the union of its
/// children's intervals, each child clipped to the span. Time where two children overlap is
/// counted once, so a span whose parallel children cover it fully has no self time.
pub fn self_times(trace: &Trace) -> Vec<u64> {
    let tree = SpanTree::new(trace);
    self_times_with_tree(trace, &tree)
}

/// Same as [`self_times`], reusing an already resolved tree.
pub(crate) fn self_times_with_tree(trace: &Trace, tree: &SpanTree) -> Vec<u64> {
    let spans = &trace.spans;
    let mut intervals: Vec<(u64, u64)> = Vec::new();
    spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (start, end) = (s.start_unix_nano, s.end_unix_nano.max(s.start_unix_nano));
            intervals.clear();
            intervals.extend(tree.children[i].iter().filter_map(|&c| {
                let cs = spans[c].start_unix_nano.max(start);
                let ce = spans[c].end_unix_nano.min(end);
                (cs < ce).then_some((cs, ce))
            }));
            intervals.sort_unstable();
            let mut covered = 0u64;
            let mut current: Option<(u64, u64)> = None;
            for &(cs, ce) in intervals.iter() {
                match current {
                    Some((a, b)) if cs <= b => current = Some((a, b.max(ce))),
                    Some((a, b)) => {
                        covered += b - a;
                        current = Some((cs, ce));
                    }
                    None => current = Some((cs, ce)),
                }
            }
            if let Some((a, b)) = current {
                covered += b - a;
            }
            (end - start).saturating_sub(covered)
        })
        .collect()
}
