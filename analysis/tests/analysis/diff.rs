//! `tracelab diff` on hand-built runs: a service slowed or failing on its own is the one change
//! reported; its callers, slower and failing only through it, are not; runs drawn from the same
//! distribution differ in nothing.

use tracelab_analysis::diff::{Metric, Presence};
use tracelab_analysis::{AnalysisOptions, analyze, render_diff};
use tracelab_analysis::{DiffOptions, HtmlReportInput, RunDiff, RunSampler, Sources, render_html};
use tracelab_trace::{SpanKind, Trace};

use crate::document::assert_matches_schema;
use crate::support::{failed, kind, span, trace};

/// A small deterministic generator (xorshift), so each run is reproducible.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in lo..hi.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// One request: front (1–3 ms own work) calls back (2–6 ms) which calls leaf (5–15 ms, plus
/// `leaf_extra_ms`); leaf fails with probability `leaf_failure` and the failure propagates.
fn request(n: u64, draws: &mut Draws, leaf_extra_ms: u64, leaf_failure: f64) -> Trace {
    let front = draws.between(1, 4);
    let back = draws.between(2, 7);
    let leaf = draws.between(5, 16) + leaf_extra_ms;
    let fails = (draws.next() % 10_000) as f64 / 10_000.0 < leaf_failure;
    let t0 = n * 1000;
    let leaf_start = t0 + front + back;
    let leaf_end = leaf_start + leaf;
    let back_end = leaf_end + back;
    let front_end = back_end + front;
    let mark = |s, yes: bool| if yes { failed(s, "boom") } else { s };
    trace(vec![
        mark(span(n, 1, None, "front", "GET /", t0, front_end), fails),
        mark(
            kind(
                span(n, 2, Some(1), "back", "GET /b", t0 + front, back_end),
                SpanKind::Server,
            ),
            fails,
        ),
        mark(
            kind(
                span(n, 3, Some(2), "leaf", "GET /l", leaf_start, leaf_end),
                SpanKind::Server,
            ),
            fails,
        ),
    ])
}

fn run(seed: u64, requests: u64, leaf_extra_ms: u64, leaf_failure: f64) -> Vec<Trace> {
    let mut draws = Draws(seed);
    (1..=requests)
        .map(|n| request(n, &mut draws, leaf_extra_ms, leaf_failure))
        .collect()
}

fn diff(before: &[Trace], after: &[Trace]) -> RunDiff {
    let profile = |traces: &[Trace]| {
        let mut sampler = RunSampler::new();
        for t in traces {
            sampler.add(t);
        }
        sampler.finish()
    };
    RunDiff::new(
        &profile(before),
        &profile(after),
        Sources {
            before: "before",
            after: "after",
        },
        &DiffOptions::default(),
    )
}

fn changed(d: &RunDiff) -> Vec<&str> {
    d.changed_services().map(|s| s.service.as_str()).collect()
}

#[test]
fn a_slowed_service_is_the_only_change_though_its_callers_are_slower_too() {
    let d = diff(&run(1, 300, 0, 0.0), &run(2, 300, 30, 0.0));
    assert_eq!(changed(&d), ["leaf"], "{}", render_diff(&d));
    let leaf = &d.services[0];
    assert_eq!((leaf.rank, leaf.service.as_str()), (1, "leaf"));
    assert!(leaf.p_value.unwrap() < 0.01);
    assert_eq!(leaf.changed_metrics, [Metric::SelfTime]);
    // Its callers' latency moved by as much, and the table shows it, but they did not change.
    let front = d.services.iter().find(|s| s.service == "front").unwrap();
    assert!(front.after.latency_p50_ns > front.before.latency_p50_ns + 25_000_000);
    assert!(!front.changed);
    let changed_operations: Vec<&str> = d
        .operations
        .iter()
        .filter(|o| o.changed)
        .map(|o| o.service.as_str())
        .collect();
    assert_eq!(changed_operations, ["leaf"]);
    assert_matches_schema("diff.schema.json", &serde_json::to_value(&d).unwrap());
}

/// front calls leaf (5–15 ms plus `leaf_extra_ms`) and side (8–18 ms) in parallel.
fn fan_out(seed: u64, requests: u64, leaf_extra_ms: u64) -> Vec<Trace> {
    let mut draws = Draws(seed);
    (1..=requests)
        .map(|n| {
            let t0 = n * 1000;
            let leaf = draws.between(5, 16) + leaf_extra_ms;
            let side = draws.between(8, 19);
            let end = t0 + 1 + leaf.max(side) + 1;
            trace(vec![
                span(n, 1, None, "front", "GET /", t0, end),
                span(n, 2, Some(1), "leaf", "GET /l", t0 + 1, t0 + 1 + leaf),
                span(n, 3, Some(1), "side", "GET /s", t0 + 1, t0 + 1 + side),
            ])
        })
        .collect()
}

#[test]
fn a_parallel_sibling_falling_off_the_critical_path_has_not_changed() {
    let d = diff(&fan_out(11, 300, 0), &fan_out(12, 300, 30));
    assert_eq!(changed(&d), ["leaf"], "{}", render_diff(&d));
    let side = d.services.iter().find(|s| s.service == "side").unwrap();
    // Before, side was the longer branch in most requests; after, in none.
    assert!(side.before.critical_time_mean_ns > 3e6, "{side:?}");
    assert_eq!(side.after.critical_time_mean_ns, 0.0);
}

#[test]
fn failures_count_where_they_start() {
    let d = diff(&run(3, 400, 0, 0.0), &run(4, 400, 0, 0.3));
    assert_eq!(changed(&d), ["leaf"], "{}", render_diff(&d));
    assert_eq!(d.services[0].changed_metrics, [Metric::ErrorOrigin]);
    // front and back fail as often, but only by passing the leaf's failure on.
    let back = d.services.iter().find(|s| s.service == "back").unwrap();
    assert!(back.after.error_rate > 0.2);
    assert!(!back.changed);
}

#[test]
fn runs_of_the_same_system_differ_in_nothing() {
    for seed in [5, 6, 7] {
        let d = diff(&run(seed, 400, 0, 0.05), &run(seed + 100, 400, 0, 0.05));
        assert!(changed(&d).is_empty(), "{}", render_diff(&d));
        assert!(d.operations.iter().all(|o| !o.changed));
    }
}

#[test]
fn a_new_service_is_a_change_and_the_report_shows_the_diff() {
    let before = run(8, 100, 0, 0.0);
    let mut after = run(9, 100, 0, 0.0);
    for (i, t) in after.iter_mut().enumerate() {
        let n = i as u64 + 1;
        let end = t.spans[0].end_unix_nano;
        let mut cache = span(n, 4, Some(1), "cache", "GET /c", 0, 0);
        cache.start_unix_nano = end - 500_000;
        cache.end_unix_nano = end - 100_000;
        t.spans.push(cache);
    }
    let d = diff(&before, &after);
    let cache = d.services.iter().find(|s| s.service == "cache").unwrap();
    assert_eq!(cache.presence, Presence::AfterOnly);
    assert!(cache.changed && cache.tests.is_empty() && cache.p_value.is_none());
    assert!(render_diff(&d).contains("new: 100 requests"));
    assert_matches_schema("diff.schema.json", &serde_json::to_value(&d).unwrap());

    let a = analyze(&after, &AnalysisOptions::default());
    let page = render_html(&HtmlReportInput {
        diff: Some(&d),
        ..HtmlReportInput::new("after", &a, &after)
    });
    assert!(page.contains("<section id=\"diff\">"));
    assert!(page.contains("<a href=\"#diff\">Changes</a>"));
    assert!(page.contains("<tr class=\"changed\">"));
    let without = render_html(&HtmlReportInput::new("after", &a, &after));
    assert!(!without.contains("id=\"diff\""));
}
