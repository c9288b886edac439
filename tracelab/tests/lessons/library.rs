//! The scenario library: every file passes `tracelab check`, and each lesson's effect shows
//! on a short run.

use super::lab::{library, parse};

#[test]
fn every_library_scenario_is_valid() {
    let dir = format!("{}/../scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let text = library(&name);
            assert!(
                text.starts_with('#'),
                "{name} begins with its header comment"
            );
            parse(&text);
            checked += 1;
        }
    }
    assert!(checked >= 2);
}

use std::collections::HashMap;
use std::time::Duration;

use tracelab_scenario::Step;
use tracelab_trace::{Span, SpanId, SpanKind};

use super::lab::{Run, attr_f64, attr_str, run};

async fn lesson(file: &str, duration: Option<Duration>) -> Run {
    let source = library(file);
    let mut scenario = parse(&source);
    if let Some(duration) = duration {
        scenario.load.duration = duration;
    }
    run(scenario, &source, file.trim_end_matches(".yaml")).await
}

fn by_id(run: &Run) -> HashMap<SpanId, &Span> {
    run.spans().map(|s| (s.span_id, s)).collect()
}

fn servers<'r>(run: &'r Run, service: &str) -> Vec<&'r Span> {
    run.spans()
        .filter(|s| s.kind == SpanKind::Server && s.service_name.as_ref() == service)
        .collect()
}

/// Spans per request inside and outside the incident window (by start time, with `edge`
/// seconds of margin).
fn per_request_in_and_out(run: &Run, spans: &[&Span], requests: &[&Span], edge: f64) -> (f64, f64) {
    let count = |set: &[&Span], want: bool| {
        set.iter()
            .filter(|s| run.inside(s.start_unix_nano, edge) == Some(want))
            .count() as f64
    };
    (
        count(spans, true) / count(requests, true).max(1.0),
        count(spans, false) / count(requests, false).max(1.0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pool_exhaustion_queueing_dominates() {
    let run = lesson("pool-exhaustion.yaml", Some(Duration::from_secs(4))).await;
    let inventory = servers(&run, "inventory");
    assert!(inventory.len() >= 200);
    let waited: f64 = inventory
        .iter()
        .map(|s| attr_f64(s, "tracelab.queue.wait_ms").expect("every request waits for a worker"))
        .sum();
    let total: f64 = inventory
        .iter()
        .map(|s| s.duration_nanos() as f64 / 1e6)
        .sum();
    assert!(
        waited > (total - waited),
        "queueing ({waited:.0} ms) dominates the work ({:.0} ms)",
        total - waited
    );
    let pool_waits = run.spans().filter(|s| s.name == "worker pool wait").count();
    assert_eq!(pool_waits, inventory.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_storm_multiplies_downstream_load_during_the_incident() {
    let run = lesson("retry-storm.yaml", Some(Duration::from_secs(7))).await;
    let (inside, outside) = per_request_in_and_out(
        &run,
        &servers(&run, "ledger"),
        &servers(&run, "frontend"),
        0.3,
    );
    assert!(
        outside <= 1.1,
        "one ledger call per request outside: {outside}"
    );
    assert!(
        inside >= 6.0,
        "retries multiply the ledger load: {inside} per request"
    );
    let resent = run
        .spans()
        .filter(|s| s.attr("http.request.resend_count").is_some())
        .count();
    assert!(resent > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cascading_timeout_fails_at_the_outermost_timeout() {
    let run = lesson("cascading-timeout.yaml", Some(Duration::from_secs(8))).await;
    let (mut failed_in, mut total_in, mut failed_out, mut total_out) = (0, 0, 0, 0);
    for request in &run.requests {
        let failed = request["status"].as_u64() != Some(200);
        match run.inside(request["scheduled_unix_nano"].as_u64().unwrap(), 1.2) {
            Some(true) => {
                total_in += 1;
                failed_in += usize::from(failed);
            }
            Some(false) => {
                total_out += 1;
                failed_out += usize::from(failed);
            }
            None => {}
        }
    }
    assert!(
        total_in >= 5 && total_out >= 20,
        "{total_in} in, {total_out} out"
    );
    assert_eq!(failed_out, 0, "no failure outside the incident");
    assert_eq!(failed_in, total_in, "every request inside it fails");
    let timeouts: Vec<&Span> = run
        .spans()
        .filter(|s| {
            s.service_name.as_ref() == "gateway" && attr_str(s, "error.type") == Some("timeout")
        })
        .collect();
    assert!(!timeouts.is_empty());
    for span in timeouts {
        let ms = span.duration_nanos() / 1_000_000;
        assert!(
            (950..1500).contains(&ms),
            "the gateway's 1 s timeout fired: {ms} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn n_plus_one_span_count_grows_with_the_repeat() {
    let spans_per_trace = |run: &Run| {
        let counts: Vec<usize> = run.traces().iter().map(|t| t.spans.len()).collect();
        assert!(!counts.is_empty());
        assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
        counts[0]
    };
    let source = library("n-plus-one.yaml");
    let mut scenario = parse(&source);
    scenario.load.duration = Duration::from_secs(2);
    let ten = run(scenario.clone(), &source, "n-plus-one-10").await;
    let route = scenario
        .services
        .get_mut("orders")
        .and_then(|s| s.routes.get_mut("/order"))
        .unwrap();
    let Step::Call(call) = &mut route.steps[0] else {
        panic!("the N+1 call");
    };
    call.repeat = 20;
    let twenty = run(scenario, &source, "n-plus-one-20").await;
    let (a, b) = (spans_per_trace(&ten), spans_per_trace(&twenty));
    assert_eq!(
        a,
        2 + 10 * 3,
        "loadgen + orders, then CLIENT, SERVER, db per item"
    );
    assert_eq!(b - a, 10 * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_failure_sends_the_load_to_the_database() {
    let run = lesson("cache-failure.yaml", Some(Duration::from_secs(8))).await;
    let (inside, outside) = per_request_in_and_out(
        &run,
        &servers(&run, "productdb"),
        &servers(&run, "recommendation"),
        0.3,
    );
    assert!(inside >= 0.95, "every request misses: {inside}");
    assert!(outside <= 0.25, "about one in ten misses: {outside}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenant_outage_fails_only_acme() {
    let run = lesson("tenant-outage.yaml", Some(Duration::from_secs(4))).await;
    let tenant = |r: &serde_json::Value| r["baggage"]["tenant"].as_str().map(str::to_owned);
    let acme: Vec<_> = run
        .requests
        .iter()
        .filter(|r| tenant(r).as_deref() == Some("acme"))
        .collect();
    let others: Vec<_> = run
        .requests
        .iter()
        .filter(|r| tenant(r).as_deref() != Some("acme"))
        .collect();
    assert!(acme.len() >= 5 && others.len() >= 20);
    assert!(others.iter().all(|r| r["status"].as_u64() == Some(200)));
    let failed = acme
        .iter()
        .filter(|r| r["status"].as_u64() != Some(200))
        .count();
    assert!(
        failed + 1 >= acme.len(),
        "{failed} of {} acme requests fail",
        acme.len()
    );
    for span in servers(&run, "billing")
        .into_iter()
        .filter(|s| s.is_error())
    {
        assert_eq!(attr_str(span, "baggage.tenant"), Some("acme"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_propagation_splits_traces_into_fragments() {
    let run = lesson("broken-propagation.yaml", Some(Duration::from_secs(8))).await;
    let fragments: Vec<&Span> = run
        .spans()
        .filter(|s| s.parent_span_id.is_none() && s.service_name.as_ref() == "api")
        .collect();
    assert!(fragments.len() >= 15, "{} fragments", fragments.len());
    for fragment in &fragments {
        assert_eq!(
            attr_str(fragment, "tracelab.injected"),
            Some("drop_context")
        );
        assert_ne!(run.inside(fragment.start_unix_nano, 0.1), Some(false));
    }
    assert_eq!(
        run.traces().len(),
        run.requests.len() + fragments.len(),
        "each broken request leaves one more trace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clock_skew_puts_children_outside_their_parents_inside_the_window_only() {
    let run = lesson("clock-skew.yaml", Some(Duration::from_secs(8))).await;
    let spans = by_id(&run);
    let (mut skewed, mut straight) = (0, 0);
    for child in servers(&run, "payments") {
        let parent = spans[&child.parent_span_id.expect("a parent")];
        let outside = child.start_unix_nano > parent.end_unix_nano;
        match run.inside(parent.start_unix_nano, 0.3) {
            Some(true) => {
                assert!(
                    outside,
                    "inside the window the child starts after its parent ends"
                );
                skewed += 1;
            }
            Some(false) => {
                assert!(!outside && child.end_unix_nano <= parent.end_unix_nano);
                straight += 1;
            }
            None => {}
        }
    }
    assert!(
        skewed >= 10 && straight >= 20,
        "{skewed} skewed, {straight} straight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_lag_consumers_start_long_after_their_producers() {
    let run = lesson("queue-lag.yaml", Some(Duration::from_secs(4))).await;
    let spans = by_id(&run);
    let producers = run.spans().filter(|s| s.kind == SpanKind::Producer).count();
    let mut lags: Vec<f64> = Vec::new();
    for consumer in run.spans().filter(|s| s.kind == SpanKind::Consumer) {
        assert_eq!(consumer.name, "process orders");
        assert_eq!(consumer.links.len(), 1);
        let producer = spans[&consumer.links[0].span_id];
        assert_eq!(producer.kind, SpanKind::Producer);
        assert_ne!(producer.trace_id, consumer.trace_id);
        lags.push((consumer.start_unix_nano - producer.start_unix_nano) as f64 / 1e6);
    }
    assert!(
        lags.len() * 2 >= producers,
        "{} of {producers} consumed",
        lags.len()
    );
    lags.sort_by(f64::total_cmp);
    assert!(lags[0] >= 400.0, "{lags:?}");
    assert!(
        lags[lags.len() / 2] >= 650.0,
        "median lag {}",
        lags[lags.len() / 2]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_contention_serialises_the_query() {
    let run = lesson("lock-contention.yaml", Some(Duration::from_secs(5))).await;
    let queries: Vec<&Span> = run
        .spans()
        .filter(|s| s.name == "SELECT customer")
        .collect();
    assert!(queries.len() >= 15);
    let waits: Vec<f64> = queries
        .iter()
        .map(|q| attr_f64(q, "tracelab.lock.wait_ms").expect("the lock wait"))
        .collect();
    let max_wait = waits.iter().copied().fold(0.0, f64::max);
    assert!(
        max_wait >= 300.0,
        "requests queue behind the lock: {max_wait} ms"
    );
    let longest = queries.iter().map(|q| q.duration_nanos()).max().unwrap();
    assert!(longest >= 600_000_000, "{longest} ns");
    let mut acquired: Vec<u64> = queries
        .iter()
        .filter_map(|q| q.events.iter().find(|e| e.name == "lock acquired"))
        .map(|e| e.time_unix_nano)
        .collect();
    acquired.sort_unstable();
    for pair in acquired.windows(2) {
        assert!(pair[1] - pair[0] >= 295_000_000, "one query at a time");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flagd_chaos_replays_its_seeded_timeline_and_errors_stay_inside_it() {
    let source = library("flagd-chaos.yaml");
    let mut scenario = parse(&source);
    scenario.load.duration = Duration::from_secs(12);
    let expected = scenario.incident_timeline(scenario.load.duration);
    assert!(expected.len() >= 2, "{expected:?}");
    let run = run(scenario, &source, "flagd-chaos").await;
    assert_eq!(run.incidents.len(), expected.len(), "{:?}", run.incidents);
    let mut windows = Vec::new();
    for (window, incident) in run.incidents.iter().zip(&expected) {
        assert_eq!(window["what"].as_str(), incident.what.as_deref());
        assert_eq!(window["source"], "timeline");
        let start = run.at(window["start_unix_nano"].as_u64().unwrap());
        let end = run.at(window["end_unix_nano"].as_u64().unwrap());
        assert!(
            (start - incident.at.as_secs_f64()).abs() < 0.3,
            "{start} vs {incident:?}"
        );
        windows.push((start, end));
    }
    // Every failed request started inside an error window (with a little edge).
    let failed: Vec<_> = run
        .requests
        .iter()
        .filter(|r| r["status"].as_u64() != Some(200))
        .collect();
    let error_incidents = expected
        .iter()
        .filter(|i| i.fault.kind_name() == "error")
        .count();
    assert_eq!(error_incidents > 0, !failed.is_empty(), "{expected:?}");
    for request in failed {
        let t = run.at(request["scheduled_unix_nano"].as_u64().unwrap());
        assert!(
            windows.iter().any(|(s, e)| t >= s - 0.3 && t <= e + 0.3),
            "a failure at {t} s outside every window {windows:?}"
        );
    }
}
