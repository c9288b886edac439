//! Critical path and self time on small traces whose answer can be worked out by hand.

use tracelab_analysis::{CriticalPath, critical_path, self_times, trace_timings};
use tracelab_trace::{SpanKind, Trace};

use crate::support::{EPOCH, MS, idx, kind, linked, micros, span, span_id, trace};

/// Critical-path milliseconds of span `id`.
fn crit_ms(t: &Trace, p: &CriticalPath, id: u64) -> u64 {
    p.nanos_of(idx(t, id)) / MS
}

/// Self-time milliseconds of span `id`.
fn self_ms(t: &Trace, id: u64) -> u64 {
    self_times(t)[idx(t, id)] / MS
}

/// The segments must cover `[start_ms, end_ms]` without gap or overlap, in order.
fn assert_tiles(p: &CriticalPath, start_ms: u64, end_ms: u64) {
    let mut at = EPOCH + start_ms * MS;
    for seg in &p.segments {
        assert_eq!(
            seg.start_unix_nano, at,
            "gap or overlap in {:?}",
            p.segments
        );
        assert!(seg.end_unix_nano > seg.start_unix_nano, "empty segment");
        at = seg.end_unix_nano;
    }
    assert_eq!(at, EPOCH + end_ms * MS, "path does not reach the end");
    assert_eq!(p.total_nanos(), (end_ms - start_ms) * MS);
}

#[test]
fn sequential_children_are_all_on_the_path() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "first", 10, 40),
        span(1, 3, Some(1), "c", "second", 50, 90),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    assert_eq!(
        [crit_ms(&t, &p, 1), crit_ms(&t, &p, 2), crit_ms(&t, &p, 3)],
        [30, 30, 40]
    );
    assert_eq!(
        [self_ms(&t, 1), self_ms(&t, 2), self_ms(&t, 3)],
        [30, 30, 40]
    );
}

#[test]
fn touching_sequential_children_are_both_on_the_path() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "first", 0, 50),
        span(1, 3, Some(1), "c", "second", 50, 100),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    assert_eq!(
        [crit_ms(&t, &p, 1), crit_ms(&t, &p, 2), crit_ms(&t, &p, 3)],
        [0, 50, 50]
    );
}

#[test]
fn only_the_longer_parallel_branch_is_critical() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "long", 10, 90),
        span(1, 3, Some(1), "c", "short", 10, 50),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    assert_eq!(crit_ms(&t, &p, 2), 80);
    assert_eq!(
        crit_ms(&t, &p, 3),
        0,
        "the faster parallel branch waits on nothing"
    );
    assert_eq!(crit_ms(&t, &p, 1), 20);
    assert!(!p.contains(idx(&t, 3)));
    assert_eq!(self_ms(&t, 1), 20);
}

#[test]
fn overlapping_children_count_once_in_self_time_but_split_on_the_path() {
    // b ends last, so the walk takes b and resumes at b's start, where a is still running: a
    // overlaps b and is skipped, and the parent's own time fills 0..30.
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "early", 10, 60),
        span(1, 3, Some(1), "c", "late", 30, 80),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    assert_eq!(
        [crit_ms(&t, &p, 1), crit_ms(&t, &p, 2), crit_ms(&t, &p, 3)],
        [50, 0, 50]
    );
    assert_eq!(self_ms(&t, 1), 30, "100 minus the union 10..80");
}

#[test]
fn a_child_outliving_its_parent_is_clipped_to_the_parent() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 10, 100),
        span(1, 2, Some(1), "b", "overrun", 20, 150),
        span(1, 3, Some(1), "c", "early bird", 0, 15),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 10, 100);
    assert_eq!(
        crit_ms(&t, &p, 2),
        80,
        "only 20..100 lies inside the parent"
    );
    assert_eq!(crit_ms(&t, &p, 3), 5, "only 10..15 lies inside the parent");
    assert_eq!(crit_ms(&t, &p, 1), 5);
    assert_eq!(self_ms(&t, 1), 5);
    assert_eq!(self_ms(&t, 2), 130, "a span's own self time is not clipped");
}

#[test]
fn a_child_entirely_outside_its_parent_is_off_the_path() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 50),
        span(1, 2, Some(1), "b", "after", 60, 90),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 50);
    assert_eq!(crit_ms(&t, &p, 2), 0);
    assert_eq!(self_ms(&t, 1), 50);
}

#[test]
fn a_missing_parent_leaves_an_orphan_and_no_panic() {
    // No root arrived: the walk starts from the longest orphan.
    let t = trace(vec![
        span(1, 2, Some(99), "b", "orphan", 0, 50),
        span(1, 3, Some(2), "c", "child", 10, 20),
        span(1, 4, Some(98), "d", "short orphan", 0, 5),
    ]);
    let p = critical_path(&t);
    assert_eq!(p.top_span_id, Some(crate::support::span_id(2)));
    assert_tiles(&p, 0, 50);
    assert_eq!([crit_ms(&t, &p, 2), crit_ms(&t, &p, 3)], [40, 10]);

    // With a root present, the root wins even if an orphan lasts longer.
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(99), "b", "orphan", 0, 300),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    assert_eq!(crit_ms(&t, &p, 2), 0);
}

#[test]
fn nested_grandchildren_follow_the_last_finishing_branch() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "child", 10, 90),
        span(1, 3, Some(2), "c", "fast grandchild", 20, 50),
        span(1, 4, Some(2), "d", "slow grandchild", 20, 80),
        span(1, 5, Some(4), "e", "great-grandchild", 30, 70),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    let got: Vec<u64> = (1..=5).map(|id| crit_ms(&t, &p, id)).collect();
    assert_eq!(got, [20, 20, 0, 20, 40]);
    let selfs: Vec<u64> = (1..=5).map(|id| self_ms(&t, id)).collect();
    assert_eq!(selfs, [20, 20, 30, 20, 40]);
}

#[test]
fn zero_duration_spans_take_no_time_and_do_not_stall_the_walk() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "work", 10, 50),
        span(1, 3, Some(1), "c", "instant", 50, 50),
        span(1, 4, Some(3), "d", "instant child", 50, 50),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    let got: Vec<u64> = (1..=4).map(|id| crit_ms(&t, &p, id)).collect();
    assert_eq!(got, [60, 40, 0, 0]);
    assert_eq!(self_ms(&t, 3), 0);

    let lone = trace(vec![span(1, 1, None, "a", "blink", 5, 5)]);
    let p = critical_path(&lone);
    assert_eq!(p.total_nanos(), 0);
    assert!(p.segments.is_empty());
}

#[test]
fn identical_timestamps_give_the_time_to_exactly_one_child() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(1), "b", "twin", 0, 100),
        span(1, 3, Some(1), "c", "twin", 0, 100),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    assert_eq!(crit_ms(&t, &p, 1), 0);
    let mut twins = [crit_ms(&t, &p, 2), crit_ms(&t, &p, 3)];
    twins.sort();
    assert_eq!(twins, [0, 100]);
    assert_eq!(self_ms(&t, 1), 0);
}

#[test]
fn cycles_and_self_parents_do_not_hang() {
    let t = trace(vec![
        span(1, 1, None, "a", "root", 0, 100),
        span(1, 2, Some(3), "b", "loop", 10, 20),
        span(1, 3, Some(2), "c", "loop", 10, 20),
        span(1, 4, Some(4), "d", "own parent", 30, 40),
    ]);
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    let timings = trace_timings(&t);
    assert_eq!(timings.spans.len(), 4);
}

#[test]
fn a_very_deep_trace_does_not_overflow_the_stack() {
    let depth = 20_000u64;
    let spans = (1..=depth)
        .map(|i| {
            let parent = (i > 1).then(|| i - 1);
            span(1, i, parent, "a", "nested", i, 2 * depth + 2 - i)
        })
        .collect();
    let t = trace(spans);
    let p = critical_path(&t);
    assert_tiles(&p, 1, 2 * depth + 1);
}

/// The path as `(span id, start, end)` in microseconds from [`EPOCH`].
fn segments_us(p: &CriticalPath) -> Vec<(u64, u64, u64)> {
    p.segments
        .iter()
        .map(|s| {
            (
                u64::from_be_bytes(s.span_id.0),
                (s.start_unix_nano - EPOCH) / 1_000,
                (s.end_unix_nano - EPOCH) / 1_000,
            )
        })
        .collect()
}

/// PRODUCER A 1–31 µs, its CONSUMER B 10–20 µs, B's child C 12–14 µs, with B of `b_kind`.
fn producer_trace(a_kind: SpanKind, b_kind: SpanKind) -> Trace {
    trace(vec![
        micros(kind(span(1, 1, None, "shop", "A", 0, 0), a_kind), 1, 31),
        micros(kind(span(1, 2, Some(1), "mail", "B", 0, 0), b_kind), 10, 20),
        micros(span(1, 3, Some(2), "mail", "C", 0, 0), 12, 14),
    ])
}

#[test]
fn a_consumer_under_a_producer_blocks_nothing() {
    let t = producer_trace(SpanKind::Producer, SpanKind::Consumer);
    let p = critical_path(&t);
    assert_eq!(segments_us(&p), [(1, 1, 31)], "A 30, nothing else");
    assert_eq!(
        self_times(&t)[idx(&t, 1)],
        30_000,
        "the producer never waited"
    );

    // The same shape with a synchronous child is the ordinary walk: A 20, B 8, C 2.
    let t = producer_trace(SpanKind::Client, SpanKind::Server);
    let p = critical_path(&t);
    assert_eq!(
        segments_us(&p),
        [
            (1, 1, 10),
            (2, 10, 12),
            (3, 12, 14),
            (2, 14, 20),
            (1, 20, 31)
        ]
    );
}

#[test]
fn a_follows_from_child_blocks_nothing() {
    // The OpenTracing shim links a span to its parent with the reference type.
    let trace_with = |ref_type: &str| {
        trace(vec![
            span(1, 1, None, "jobs", "enqueue", 0, 100),
            linked(
                span(1, 2, Some(1), "jobs", "send mail", 40, 100),
                1,
                &[("opentracing.ref_type", ref_type)],
            ),
        ])
    };
    let t = trace_with("follows_from");
    let p = critical_path(&t);
    assert_tiles(&p, 0, 100);
    assert_eq!([crit_ms(&t, &p, 1), crit_ms(&t, &p, 2)], [100, 0]);
    assert_eq!(self_ms(&t, 1), 100);

    let t = trace_with("child_of");
    let p = critical_path(&t);
    assert_eq!([crit_ms(&t, &p, 1), crit_ms(&t, &p, 2)], [40, 60]);
    assert_eq!(self_ms(&t, 1), 40);
}

#[test]
fn ties_on_end_time_go_to_the_child_covering_the_most() {
    // P 0–100 with A 10–90 and B 50–90: P waited for A from 10 on, so P's own time is 20.
    for (a_id, b_id) in [(2, 3), (3, 2)] {
        let t = trace(vec![
            span(1, 1, None, "p", "P", 0, 100),
            span(1, a_id, Some(1), "a", "A", 10, 90),
            span(1, b_id, Some(1), "b", "B", 50, 90),
        ]);
        let p = critical_path(&t);
        assert_tiles(&p, 0, 100);
        assert_eq!(
            [
                crit_ms(&t, &p, 1),
                crit_ms(&t, &p, a_id),
                crit_ms(&t, &p, b_id)
            ],
            [20, 80, 0],
            "whatever the ids' order"
        );
        assert_eq!(self_ms(&t, 1), 20);
    }
}

#[test]
fn a_root_linked_to_its_own_trace_is_not_the_request() {
    // A job started on behalf of the request, as a new root linked to the span that asked for
    // it: longer than the request, yet the request's own root is where the path starts.
    let spans = |link: bool| {
        let job = span(1, 3, None, "worker", "nightly job", 50, 400);
        vec![
            span(1, 1, None, "api", "POST /orders", 0, 100),
            span(1, 2, Some(1), "api", "schedule", 40, 50),
            if link { linked(job, 2, &[]) } else { job },
        ]
    };
    let t = trace(spans(true));
    let p = critical_path(&t);
    assert_eq!(p.top_span_id, Some(span_id(1)));
    assert_tiles(&p, 0, 100);
    assert_eq!(crit_ms(&t, &p, 3), 0);

    // Without the link it is just a second root, and the longest root is taken.
    let p = critical_path(&trace(spans(false)));
    assert_eq!(p.top_span_id, Some(span_id(3)));
}
