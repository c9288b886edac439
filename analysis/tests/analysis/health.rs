//! Trace health: broken traces and suspicious timestamps are counted, not hidden.

use tracelab_analysis::{AnalysisOptions, analyze};
use tracelab_trace::SpanKind;

use crate::support::{EPOCH, MS, kind, span, trace, trace_id};

#[test]
fn orphans_extra_roots_fragments_skew_and_late_spans_are_counted() {
    let traces = vec![
        // Whole and healthy.
        trace(vec![
            span(1, 1, None, "a", "root", 0, 100),
            span(1, 2, Some(1), "b", "child", 10, 90),
        ]),
        // A lost span: two orphans under the same missing parent are one fragment.
        trace(vec![
            span(2, 1, None, "a", "root", 0, 100),
            span(2, 3, Some(2), "c", "orphan", 20, 30),
            span(2, 4, Some(2), "c", "orphan", 40, 50),
        ]),
        // A service that dropped the context started a second root.
        trace(vec![
            span(3, 1, None, "a", "root", 0, 100),
            span(3, 2, None, "b", "new root", 10, 20),
        ]),
        // Only a piece arrived: no root at all.
        trace(vec![span(4, 5, Some(6), "d", "piece", 0, 10)]),
        // Clock skew: the child starts 5 ms before its parent. The consumer of a PRODUCER
        // span ending later is normal messaging, not skew.
        trace(vec![
            span(5, 1, None, "a", "root", 10, 100),
            span(5, 2, Some(1), "b", "skewed", 5, 50),
            kind(
                span(5, 3, Some(1), "a", "publish", 60, 70),
                SpanKind::Producer,
            ),
            kind(
                span(5, 4, Some(3), "q", "consume", 65, 200),
                SpanKind::Consumer,
            ),
        ]),
    ];
    let options = AnalysisOptions {
        run_end_unix_nano: Some(EPOCH + 150 * MS),
        ..AnalysisOptions::default()
    };
    let a = analyze(&traces, &options);
    let h = &a.health;
    assert_eq!(h.complete_traces, 2);
    assert_eq!(h.broken_traces, 3);
    assert_eq!(h.orphan_spans, 3);
    assert_eq!(h.traces_with_orphans, 2);
    assert_eq!(h.multi_root_traces, 1);
    assert_eq!(h.rootless_traces, 1);
    assert_eq!(h.fragments, 2);
    assert_eq!(h.skewed_children, 1);
    assert_eq!(h.skewed_examples[0].span.operation, "skewed");
    assert_eq!(h.skewed_examples[0].starts_before_parent_ns, 5 * MS);
    assert_eq!(h.late_spans, 1);
    assert_eq!(h.late_examples[0].operation, "consume");
    assert_eq!(h.broken_examples, [trace_id(2), trace_id(3), trace_id(4)]);
}

#[test]
fn a_child_ending_after_its_parent_is_skew() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "overrun", 50, 120),
    ]);
    let a = analyze(&[t], &AnalysisOptions::default());
    assert_eq!(a.health.skewed_children, 1);
    assert_eq!(a.health.skewed_examples[0].ends_after_parent_ns, 20 * MS);
    assert_eq!(
        a.health.late_spans, 0,
        "no run end given, no lateness check"
    );
}

#[test]
fn an_empty_run_analyses_to_zeros() {
    let a = analyze(&[], &AnalysisOptions::default());
    assert_eq!(a.overview.traces, 0);
    assert!(a.services.is_empty());
    assert!(a.timeline.is_empty());
    assert!(a.slowest_traces.is_empty());
}
