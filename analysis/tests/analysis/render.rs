//! Snapshots of the terminal views, on hand-built traces.

use tracelab_analysis::{
    AnalysisOptions, analyze, critical_path, render_service_table, render_waterfall,
};
use tracelab_trace::{SpanKind, Trace};

use crate::support::{failed, kind, span, trace};

/// A checkout request: the frontend calls cart and payments in turn while a recommendation
/// call runs in parallel; payments fails and the failure travels up.
fn checkout(n: u64, payments_ms: u64) -> Trace {
    let b = n * 1000;
    let p_end = b + 40 + payments_ms;
    trace(vec![
        failed(
            kind(
                span(n, 1, None, "frontend", "GET /checkout", b, p_end + 5),
                SpanKind::Server,
            ),
            "500",
        ),
        kind(
            span(n, 2, Some(1), "frontend", "GET cart", b + 2, b + 30),
            SpanKind::Client,
        ),
        kind(
            span(n, 3, Some(2), "cart", "GET /cart", b + 4, b + 28),
            SpanKind::Server,
        ),
        span(n, 4, Some(3), "cart", "redis GET", b + 6, b + 12),
        kind(
            span(
                n,
                5,
                Some(1),
                "frontend",
                "GET recommendations",
                b + 2,
                b + 60,
            ),
            SpanKind::Client,
        ),
        kind(
            span(n, 6, Some(5), "recs", "GET /recs", b + 3, b + 58),
            SpanKind::Server,
        ),
        failed(
            kind(
                span(n, 7, Some(1), "frontend", "POST pay", b + 35, p_end + 2),
                SpanKind::Client,
            ),
            "502",
        ),
        failed(
            kind(
                span(n, 8, Some(7), "payments", "POST /pay", b + 40, p_end),
                SpanKind::Server,
            ),
            "card declined",
        ),
    ])
}

#[test]
fn waterfall_marks_the_critical_path_and_errors() {
    let t = checkout(1, 80);
    let cp = critical_path(&t);
    insta::assert_snapshot!("waterfall_checkout", render_waterfall(&t, Some(&cp), 100));
}

#[test]
fn waterfall_without_a_critical_path_and_with_an_orphan() {
    let t = trace(vec![
        span(2, 1, None, "frontend", "GET /", 0, 40),
        span(2, 2, Some(1), "api", "handler", 5, 35),
        span(2, 3, Some(77), "db", "SELECT (its parent was lost)", 10, 20),
        span(2, 4, Some(2), "api", "instant", 20, 20),
    ]);
    let text = render_waterfall(&t, None, 80);
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line:?}");
    }
    insta::assert_snapshot!("waterfall_orphan_plain", text);
}

#[test]
fn waterfall_lines_fit_the_requested_width() {
    let t = checkout(1, 80);
    let cp = critical_path(&t);
    for width in [60, 100, 140] {
        for line in render_waterfall(&t, Some(&cp), width).lines() {
            assert!(line.chars().count() <= width, "{width}: {line:?}");
        }
    }
}

#[test]
fn service_table_ranks_by_share_in_slow_requests() {
    // Payments is usually quick (20..39 ms) but is the one that makes slow requests slow.
    let traces: Vec<Trace> = (1..=100)
        .map(|n| {
            checkout(
                n,
                if n.is_multiple_of(25) {
                    300
                } else {
                    20 + n % 20
                },
            )
        })
        .collect();
    let a = analyze(&traces, &AnalysisOptions::default());
    let table = render_service_table(&a);
    let first_row = table
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(first_row.contains("payments"), "{table}");
    insta::assert_snapshot!("service_table", table);
}
