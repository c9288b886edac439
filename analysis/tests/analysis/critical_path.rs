//! Critical path and self time on small traces whose answer can be worked out by hand.

use tracelab_analysis::{CriticalPath, critical_path, self_times, trace_timings};
use tracelab_trace::Trace;

use crate::support::{EPOCH, MS, idx, span, trace};

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
