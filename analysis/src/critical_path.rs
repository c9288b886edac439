//! The critical path of a trace and the self time of its spans.
//!
//! The critical path is the chain of work that determines a request's end-to-end time: making
//! any span off the path faster would not make the request faster. Start at the end of the top
//! span and walk back in time; at each point pick the child that ended last at or before that
//! point, attribute the gap between the child's end and the point to the parent's own work,
//! descend into that child the same way, and continue from the child's start. Children running
//! in parallel with the chosen one end after the new point and are therefore skipped: only the
//! branch that finished last was holding the parent up.
//!
//! This is the walk of Jaeger UI's critical path, and these rules decide the cases a plain
//! walk leaves open:
//!
//! - **Asynchronous children block nothing.** A child its parent does not wait for (a CONSUMER
//!   under a PRODUCER, a `follows_from` child: see [`crate::asynchrony`]) is left out of the
//!   parent's walk with everything under it, so the parent's own time covers it. Jaeger UI
//!   prunes PRODUCER → CONSUMER the same way; the `follows_from` rule is ours.
//! - **Ties on end time go to the child covering the most.** When several children end at the
//!   same instant (common after clock-skew clipping), the one that started earliest is taken:
//!   the parent was waiting for the longest of them, and "time between children belongs to the
//!   parent" must not credit it with time a child was still running. Jaeger UI, which sorts
//!   children by start and keeps the first of equal ends, agrees.
//! - **A child ending exactly where the chosen one started qualifies.** Back-to-back children
//!   are both on the path. Here Jaeger UI differs: it asks for a strictly earlier end and gives
//!   the earlier child's time to the parent.
//! - **The walk starts from the request's root**, not from a root that only links to a span of
//!   the trace (a continuation, see [`crate::asynchrony`]); Jaeger UI walks every root.
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
        let mut children: Vec<(u64, u64, usize)> = tree
            .blocking_children(index)
            .filter_map(|c| {
                let s = &spans[c];
                let cs = s.start_unix_nano.max(start);
                let ce = s.end_unix_nano.max(s.start_unix_nano).min(end);
                (cs <= ce).then_some((cs, ce, c))
            })
            .collect();
        // Latest end first; among equal ends the earliest start first: the child covering the
        // most is the one the parent was waiting for. Its siblings ending at the same instant
        // end after its start, so the walk skips them.
        children.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)).then(a.2.cmp(&b.2)));
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
/// Asynchronous children (see [`crate::asynchrony`]) do not count: the span was not waiting
/// for them, so the time is its own.
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
            intervals.extend(tree.blocking_children(i).filter_map(|c| {
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
