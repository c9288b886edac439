//! The analyzer sees traces one at a time, in whatever order they are finished, and keeps only
//! a bounded set of them: its report must not depend on that order, and must single out the
//! same traces as if it had kept every one.

use tracelab_analysis::{Analysis, AnalysisOptions, Analyzer, analyze};
use tracelab_trace::{SpanKind, Trace};

use crate::support::{failed, kind, span, trace};

/// Request `n`: a frontend calling `db`; its duration and failures vary with `n` so that the
/// slowest, failing and per-origin choices all have competitors.
fn request(n: u64) -> Trace {
    let base = n * 1000;
    let id = |k: u64| n * 100 + k;
    let db_ms = 5 + (n * 37) % 90;
    let end = base + db_ms + 4;
    let mut db = kind(
        span(
            n,
            id(3),
            Some(id(2)),
            "db",
            "SELECT",
            base + 2,
            base + 2 + db_ms,
        ),
        SpanKind::Server,
    );
    let mut call = kind(
        span(
            n,
            id(2),
            Some(id(1)),
            "frontend",
            "call db",
            base + 1,
            base + 3 + db_ms,
        ),
        SpanKind::Client,
    );
    let mut root = kind(
        span(n, id(1), None, "frontend", "GET /", base, end),
        SpanKind::Server,
    );
    match n % 7 {
        // The database fails, and the failure climbs to the root.
        0 => {
            db = failed(db, "deadlock");
            call = failed(call, "502");
            root = failed(root, "502");
        }
        // The frontend fails on its own.
        3 => root = failed(root, "bad input"),
        _ => {}
    }
    trace(vec![root, call, db])
}

fn without_order_dependent_parts(mut a: Analysis) -> Analysis {
    // Health examples are "the first few seen", by design.
    a.health.broken_examples.clear();
    a.health.skewed_examples.clear();
    a.health.late_examples.clear();
    a
}

#[test]
fn the_report_does_not_depend_on_the_order_traces_arrive_in() {
    let traces: Vec<Trace> = (1..=300).map(request).collect();
    let options = AnalysisOptions::default();
    let in_order = analyze(&traces, &options);

    let mut shuffled = Analyzer::new(&options);
    // A fixed permutation: every 7th, starting at each offset in turn.
    for offset in 0..7 {
        for t in traces.iter().skip(offset).step_by(7).rev() {
            shuffled.add(t);
        }
    }
    let (streamed, singled_out) = shuffled.finish();
    assert_eq!(
        without_order_dependent_parts(streamed),
        without_order_dependent_parts(in_order.clone())
    );

    // The traces handed back are exactly the ones the report names, once each.
    let mut named: Vec<_> = in_order
        .slowest_traces
        .iter()
        .chain(&in_order.failing_traces)
        .map(|t| t.trace_id)
        .collect();
    named.sort();
    named.dedup();
    let mut returned: Vec<_> = singled_out.iter().map(|t| t.trace_id).collect();
    returned.sort();
    assert_eq!(returned, named);
    assert!(in_order.failing_traces.len() == 5 && in_order.slowest_traces.len() == 5);
    // Both origins appear among the failing traces even though database failures are slower.
    let origins: Vec<_> = in_order
        .failing_traces
        .iter()
        .filter_map(|t| t.error_origin.as_ref().map(|o| o.service.as_str()))
        .collect();
    assert!(
        origins.contains(&"db") && origins.contains(&"frontend"),
        "{origins:?}"
    );
}

#[test]
fn the_slowest_traces_are_the_slowest_of_all_not_of_those_kept_so_far() {
    let traces: Vec<Trace> = (1..=200).map(request).collect();
    let mut durations: Vec<(u64, u64)> = traces
        .iter()
        .map(|t| {
            (
                t.duration_nanos(),
                u64::from_be_bytes(t.trace_id.0[8..].try_into().unwrap()),
            )
        })
        .collect();
    durations.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut analyzer = Analyzer::new(&AnalysisOptions::default());
    // Fastest first: every new trace pushes an older one out of the kept set.
    let mut by_speed = traces.clone();
    by_speed.sort_by_key(|t| t.duration_nanos());
    for t in &by_speed {
        analyzer.add(t);
    }
    let (analysis, _) = analyzer.finish();
    let slowest: Vec<u64> = analysis
        .slowest_traces
        .iter()
        .map(|t| t.duration_ns)
        .collect();
    let expected: Vec<u64> = durations.iter().take(5).map(|d| d.0).collect();
    assert_eq!(slowest, expected);
}
