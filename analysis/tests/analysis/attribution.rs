//! Error attribution names the span where the failure started, not the ones it passed through.

use tracelab_analysis::{AnalysisOptions, analyze, error_origin};

use crate::support::{failed, span, span_id, trace};

#[test]
fn an_error_propagating_through_two_callers_is_blamed_on_the_deepest() {
    let chain = |n: u64| {
        trace(vec![
            failed(span(n, 1, None, "frontend", "GET /checkout", 0, 100), "500"),
            failed(span(n, 2, Some(1), "checkout", "POST /pay", 10, 90), "502"),
            failed(
                span(n, 3, Some(2), "payments", "charge card", 20, 80),
                "card declined",
            ),
            span(n, 4, Some(3), "payments", "load card", 25, 30),
            span(n, 5, Some(1), "inventory", "reserve", 10, 20),
        ])
    };
    let t = chain(1);
    let origin = error_origin(&t).expect("the trace failed");
    assert_eq!(origin.span_id, span_id(3));
    assert_eq!(origin.service, "payments");
    assert_eq!(origin.operation, "charge card");
    assert_eq!(origin.message, "card declined");

    let ok = trace(vec![span(9, 1, None, "frontend", "GET /", 0, 10)]);
    assert!(error_origin(&ok).is_none());

    let traces = vec![chain(1), chain(2), chain(3), ok];
    let a = analyze(&traces, &AnalysisOptions::default());
    assert_eq!(a.overview.failed_traces, 3);
    assert_eq!(a.error_origins.len(), 1, "{:?}", a.error_origins);
    assert_eq!(a.error_origins[0].service, "payments");
    assert_eq!(a.error_origins[0].operation, "charge card");
    assert_eq!(a.error_origins[0].traces, 3);
    assert_eq!(a.failing_traces.len(), 3);
    let front = a.services.iter().find(|s| s.service == "frontend").unwrap();
    assert_eq!((front.requests, front.errors), (4, 3));
}

#[test]
fn the_deeper_of_two_independent_failures_wins() {
    let t = trace(vec![
        failed(span(1, 1, None, "frontend", "GET /", 0, 100), "500"),
        failed(span(1, 2, Some(1), "search", "query", 10, 20), "timeout"),
        span(1, 3, Some(1), "cart", "load", 10, 90),
        failed(span(1, 4, Some(3), "db", "SELECT", 20, 30), "deadlock"),
    ]);
    let origin = error_origin(&t).unwrap();
    assert_eq!(origin.service, "db");
}

#[test]
fn failing_traces_cover_distinct_origins_first() {
    let db = |n: u64, dur: u64| {
        trace(vec![
            failed(span(n, 1, None, "frontend", "GET /", 0, dur), "500"),
            failed(span(n, 2, Some(1), "db", "SELECT", 1, 2), "deadlock"),
        ])
    };
    let cache = trace(vec![
        failed(span(50, 1, None, "frontend", "GET /", 0, 10), "500"),
        failed(span(50, 2, Some(1), "cache", "GET", 1, 2), "miss storm"),
    ]);
    let mut traces: Vec<_> = (1..=5).map(|n| db(n, 100 + n)).collect();
    traces.push(cache);
    let options = AnalysisOptions {
        top_traces: 2,
        ..AnalysisOptions::default()
    };
    let a = analyze(&traces, &options);
    let origins: Vec<String> = a
        .failing_traces
        .iter()
        .map(|t| t.error_origin.as_ref().unwrap().service.clone())
        .collect();
    assert_eq!(origins, ["db", "cache"]);
    assert_eq!(a.failing_traces[0].duration_ns, 105 * crate::support::MS);
}
