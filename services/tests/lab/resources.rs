//! The span trees of retries, timeouts, the worker pool, locks, CPU work, caches, database
//! steps and queues.

use std::time::Duration;

use serde_json::json;
use tracelab_trace::{Span, SpanKind};

use super::harness::{Lab, attr_f64, attr_i64, attr_str, children, entry_span, named, trace_of};

const SCENARIO: &str = r#"
# One route per resource behaviour.
name: resources
seed: 5
services:
  api:
    routes:
      /retry:
        steps:
          - call: flaky
            route: /fail
            timeout: 1s
            retry: {attempts: 3, backoff: 40ms, jitter: 0.5}
      /timeout:
        steps:
          - {call: flaky, route: /slow, timeout: 100ms}
      /cache:
        steps:
          - cache: products
            hit_ratio: 0.5
            latency: 1ms
            miss: {call: store, route: /query}
      /publish:
        steps:
          - publish: orders
            consumer: {call: worker, route: /consume}
            lag: 300ms
      /db:
        steps:
          - db: postgresql
            operation: SELECT
            collection: customers
            query: "SELECT * FROM customers WHERE id = ?"
            latency: 5ms
            repeat: 2
  flaky:
    routes:
      /fail:
        errors: {rate: 1.0, status: 503}
      /slow:
        latency: {constant: 1000}
  store:
    routes:
      /query:
        steps:
          - {db: postgresql, operation: SELECT, collection: products, latency: 2ms}
  worker:
    routes:
      /consume:
        method: POST
        latency: 1ms
  pool:
    concurrency: 1
    routes:
      /:
        latency: 100ms
  locked:
    routes:
      /:
        steps:
          - work: query
            lock: db
            latency: 100ms
          - work: hash
            cpu: true
            latency: 5ms
load:
  rate: 1
  duration: 1s
  entries:
    - {service: api, route: /db}
"#;

fn sorted_by_start(mut spans: Vec<&Span>) -> Vec<&Span> {
    spans.sort_by_key(|s| s.start_unix_nano);
    spans
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_are_client_spans_with_resend_count_and_backoff() {
    let lab = Lab::start(SCENARIO).await;
    assert_eq!(lab.send("api", "/retry", 1, &[]).await.status, Some(502));
    let traces = lab.finish().await;
    let server = entry_span(&traces, "api", 1);
    let trace = trace_of(&traces, server);
    let attempts = sorted_by_start(children(trace, server));
    assert_eq!(attempts.len(), 3, "one CLIENT span per attempt");
    for (n, attempt) in attempts.iter().enumerate() {
        assert_eq!(attempt.kind, SpanKind::Client);
        assert!(attempt.is_error());
        let resend = attr_i64(attempt, "http.request.resend_count");
        assert_eq!(resend, (n > 0).then_some(n as i64));
        let callee = children(trace, attempt);
        assert_eq!(callee.len(), 1, "each attempt reaches the callee");
        assert_eq!(attr_str(callee[0], "tracelab.injected"), Some("error"));
    }
    // Backoff 40 ms then 80 ms, each at least half of that after jitter.
    let gap = |a: &Span, b: &Span| (b.start_unix_nano - a.end_unix_nano) / 1_000_000;
    assert!(gap(attempts[0], attempts[1]) >= 20);
    assert!(gap(attempts[1], attempts[2]) >= 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timeout_cancels_the_downstream_request() {
    let lab = Lab::start(SCENARIO).await;
    let answer = lab.send("api", "/timeout", 2, &[]).await;
    assert_eq!(answer.status, Some(502));
    assert!(answer.took < Duration::from_millis(800), "{answer:?}");
    // Give the callee's span time to end had it not been cancelled.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let traces = lab.finish().await;
    let server = entry_span(&traces, "api", 2);
    let trace = trace_of(&traces, server);
    let client = children(trace, server)[0];
    assert_eq!(attr_str(client, "error.type"), Some("timeout"));
    assert!(client.duration_nanos() < 500_000_000);
    let callee = children(trace, client);
    assert_eq!(callee.len(), 1);
    assert!(
        callee[0].duration_nanos() < 800_000_000,
        "the callee stopped when the caller gave up, well before its 1 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_pool_queues_and_shows_the_wait() {
    let lab = Lab::start(SCENARIO).await;
    let answers = futures::future::join_all((10..13).map(|s| lab.send("pool", "/", s, &[]))).await;
    assert!(answers.iter().all(|a| a.status == Some(200)));
    assert!(answers.iter().any(|a| a.took >= Duration::from_millis(290)));
    let traces = lab.finish().await;
    let mut waits = Vec::new();
    for sequence in 10..13 {
        let server = entry_span(&traces, "pool", sequence);
        let kids = children(trace_of(&traces, server), server);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].name, "worker pool wait");
        assert_eq!(kids[0].kind, SpanKind::Internal);
        let wait = attr_f64(kids[0], "tracelab.queue.wait_ms").unwrap();
        assert_eq!(attr_f64(server, "tracelab.queue.wait_ms"), Some(wait));
        waits.push(wait);
    }
    waits.sort_by(f64::total_cmp);
    assert!(waits[0] < 50.0, "{waits:?}");
    assert!(waits[1] >= 90.0 && waits[2] >= 190.0, "{waits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_serialises_its_step_and_cpu_work_is_marked() {
    let lab = Lab::start(SCENARIO).await;
    let answers =
        futures::future::join_all((20..23).map(|s| lab.send("locked", "/", s, &[]))).await;
    assert!(answers.iter().all(|a| a.status == Some(200)));
    let traces = lab.finish().await;
    let queries = named(&traces, "locked", "query");
    assert_eq!(queries.len(), 3);
    let mut acquired: Vec<u64> = queries
        .iter()
        .map(|q| {
            q.events
                .iter()
                .find(|e| e.name == "lock acquired")
                .expect("a lock event")
                .time_unix_nano
        })
        .collect();
    acquired.sort_unstable();
    for pair in acquired.windows(2) {
        assert!(pair[1] - pair[0] >= 95_000_000, "one holder at a time");
    }
    let waits: Vec<f64> = queries
        .iter()
        .filter_map(|q| attr_f64(q, "tracelab.lock.wait_ms"))
        .collect();
    assert!(waits.iter().any(|w| *w >= 190.0), "{waits:?}");
    for hash in named(&traces, "locked", "hash") {
        assert_eq!(
            hash.attr("tracelab.work.cpu").and_then(|v| v.as_bool()),
            Some(true)
        );
        assert!(hash.duration_nanos() >= 5_000_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cache_miss_calls_the_backing_route_and_cache_failure_drops_the_hit_ratio() {
    let lab = Lab::start(SCENARIO).await;
    for sequence in 100..130 {
        assert_eq!(
            lab.send("api", "/cache", sequence, &[]).await.status,
            Some(200)
        );
    }
    lab.fault_on(
        "api",
        json!({"service": "api", "kind": {"cache_failure": {"hit_ratio": 0.0}}}),
    )
    .await;
    for sequence in 200..210 {
        assert_eq!(
            lab.send("api", "/cache", sequence, &[]).await.status,
            Some(200)
        );
    }
    let traces = lab.finish().await;
    let lookup = |sequence: u64| {
        let server = entry_span(&traces, "api", sequence);
        let trace = trace_of(&traces, server);
        let kids = children(trace, server);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].name, "cache.get products");
        let hit = kids[0]
            .attr("tracelab.cache.hit")
            .and_then(|v| v.as_bool())
            .unwrap();
        let below = children(trace, kids[0]);
        if hit {
            assert!(below.is_empty(), "a hit calls nothing");
        } else {
            assert_eq!(below.len(), 1, "a miss calls the backing route");
            assert_eq!(below[0].kind, SpanKind::Client);
            let store = children(trace, below[0]);
            assert_eq!(store[0].service_name.as_ref(), "store");
            let db = children(trace, store[0]);
            assert_eq!(db[0].name, "SELECT products");
        }
        hit
    };
    let hits = (100..130).filter(|s| lookup(*s)).count();
    assert!((5..=25).contains(&hits), "about half of 30 hit: {hits}");
    assert_eq!(
        (200..210).filter(|s| lookup(*s)).count(),
        0,
        "no hit during the fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn db_steps_are_client_spans_with_database_attributes() {
    let lab = Lab::start(SCENARIO).await;
    assert_eq!(lab.send("api", "/db", 30, &[]).await.status, Some(200));
    let traces = lab.finish().await;
    let server = entry_span(&traces, "api", 30);
    let queries = children(trace_of(&traces, server), server);
    assert_eq!(queries.len(), 2, "repeat: 2");
    for query in queries {
        assert_eq!(query.kind, SpanKind::Client);
        assert_eq!(query.name, "SELECT customers");
        assert_eq!(attr_str(query, "db.system.name"), Some("postgresql"));
        assert_eq!(attr_str(query, "db.operation.name"), Some("SELECT"));
        assert_eq!(attr_str(query, "db.collection.name"), Some("customers"));
        assert_eq!(
            attr_str(query, "db.query.text"),
            Some("SELECT * FROM customers WHERE id = ?")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_links_a_later_consumer_to_its_producer() {
    let lab = Lab::start(SCENARIO).await;
    let answer = lab.send("api", "/publish", 40, &[]).await;
    assert_eq!(answer.status, Some(200));
    assert!(
        answer.took < Duration::from_millis(250),
        "the producer does not wait"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let traces = lab.finish().await;
    let server = entry_span(&traces, "api", 40);
    let trace = trace_of(&traces, server);
    let producer = children(trace, server);
    assert_eq!(producer.len(), 1);
    assert_eq!(producer[0].kind, SpanKind::Producer);
    assert_eq!(producer[0].name, "send orders");
    let consumers = named(&traces, "worker", "process orders");
    assert_eq!(consumers.len(), 1);
    let consumer = consumers[0];
    assert_eq!(consumer.kind, SpanKind::Consumer);
    assert_ne!(consumer.trace_id, server.trace_id, "a trace of its own");
    assert_eq!(consumer.links.len(), 1);
    assert_eq!(consumer.links[0].span_id, producer[0].span_id);
    assert_eq!(consumer.links[0].trace_id, producer[0].trace_id);
    assert!(consumer.start_unix_nano >= producer[0].start_unix_nano + 290_000_000);
    assert!(attr_f64(consumer, "tracelab.consumer.lag_ms").unwrap() >= 290.0);
}
