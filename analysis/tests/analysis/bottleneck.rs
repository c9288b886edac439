//! The question the service ranking answers: which service eats the time of slow requests?

use tracelab_analysis::{AnalysisOptions, analyze};
use tracelab_trace::{SpanKind, Trace};

use crate::support::{kind, span, trace};

/// A request fanning out in parallel to `b` (one call of `b_ms`) and to `c` (four parallel
/// calls of 45 ms each). `c` spends more span time in total, but `b` ends last.
fn request(n: u64, b_ms: u64) -> Trace {
    let base = n * 1000;
    let id = |k: u64| n * 100 + k;
    let end = base + 5 + b_ms + 5;
    let mut spans = vec![
        kind(
            span(n, id(1), None, "frontend", "GET /", base, end),
            SpanKind::Server,
        ),
        kind(
            span(
                n,
                id(2),
                Some(id(1)),
                "frontend",
                "call b",
                base + 4,
                base + 6 + b_ms,
            ),
            SpanKind::Client,
        ),
        kind(
            span(
                n,
                id(3),
                Some(id(2)),
                "b",
                "GET /slow",
                base + 5,
                base + 5 + b_ms,
            ),
            SpanKind::Server,
        ),
    ];
    for k in 0..4 {
        spans.push(kind(
            span(
                n,
                id(10 + k),
                Some(id(1)),
                "frontend",
                "call c",
                base + 4,
                base + 51,
            ),
            SpanKind::Client,
        ));
        spans.push(kind(
            span(
                n,
                id(20 + k),
                Some(id(10 + k)),
                "c",
                "GET /fast",
                base + 5,
                base + 50,
            ),
            SpanKind::Server,
        ));
    }
    trace(spans)
}

#[test]
fn the_slow_service_on_the_critical_path_ranks_first_at_p99() {
    // 200 requests; b takes 50..99 ms, and every 50th request it takes 400 ms.
    let traces: Vec<Trace> = (1..=200)
        .map(|n| {
            request(
                n,
                if n.is_multiple_of(50) {
                    400
                } else {
                    50 + n % 50
                },
            )
        })
        .collect();
    let a = analyze(&traces, &AnalysisOptions::default());

    let ranked: Vec<&str> = a.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(ranked[0], "b", "ranking: {ranked:?}");
    let share = |name: &str| {
        a.services
            .iter()
            .find(|s| s.service == name)
            .map(|s| (s.critical_share_p50, s.critical_share_p99))
            .unwrap()
    };
    let (b50, b99) = share("b");
    let (c50, c99) = share("c");
    assert!(b99 > 0.95, "b holds up the slow requests: {b99}");
    assert!(
        b99 > b50,
        "b matters more in slow requests than in typical ones"
    );
    assert_eq!((c50, c99), (0.0, 0.0), "c always finishes first");
    let total: f64 = a.services.iter().map(|s| s.critical_share_p99).sum();
    assert!((total - 1.0).abs() < 1e-9, "shares add up to one: {total}");

    // c spends more span time than b overall, so a plain time-spent ranking would blame it.
    let c = a.services.iter().find(|s| s.service == "c").unwrap();
    let b = a.services.iter().find(|s| s.service == "b").unwrap();
    assert_eq!(c.requests, 800);
    assert_eq!(b.requests, 200);

    assert_eq!(a.share_windows.p99_traces, 4, "the four 400 ms requests");
    assert!(a.share_windows.p50_traces >= 1);
    assert_eq!(a.slowest_traces.len(), 5);
    assert_eq!(a.slowest_traces[0].duration_ns, 410 * crate::support::MS);

    // The graph sees frontend -> b once per request and frontend -> c four times.
    let edge = |callee: &str| {
        a.graph
            .edges
            .iter()
            .find(|e| e.caller == "frontend" && e.callee == callee)
            .unwrap()
    };
    assert_eq!(edge("b").calls, 200);
    assert_eq!(edge("c").calls, 800);
    assert_eq!(
        edge("c").latency.max_ns,
        47 * crate::support::MS,
        "the client span's time"
    );
    assert_eq!(a.graph.edges.len(), 2);
}
