//! Every fault kind, switched on through the admin API: it changes what the traffic sees and
//! what the traces record; switched off, behaviour returns.

use std::time::Duration;

use serde_json::json;

use super::harness::{Lab, attr_str, children, entry_span, named, trace_of};

const SCENARIO: &str = r#"
# Two services: front calls back with a timeout.
name: faults
seed: 3
services:
  front:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: back, route: /work, timeout: 400ms}
  back:
    routes:
      /work:
        latency: {constant: 20}
      /slow:
        latency: {constant: 100}
load:
  rate: 1
  duration: 1s
  entries:
    - {service: front, route: /}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_fault_adds_time_and_is_recorded() {
    let lab = Lab::start(SCENARIO).await;
    let before = lab.send("back", "/work", 1, &[]).await;
    let fault = json!({"service": "back", "route": "/work", "kind": {"latency": {"add": "300ms"}}});
    lab.fault_on("back", fault).await;
    let during = lab.send("back", "/work", 2, &[]).await;
    lab.faults_off("back").await;
    let after = lab.send("back", "/work", 3, &[]).await;
    assert_eq!(
        (before.status, during.status, after.status),
        (Some(200), Some(200), Some(200))
    );
    assert!(during.took >= Duration::from_millis(300), "{during:?}");
    assert!(after.took < Duration::from_millis(250), "{after:?}");

    let traces = lab.finish().await;
    let during = entry_span(&traces, "back", 2);
    assert_eq!(attr_str(during, "tracelab.injected"), Some("latency"));
    assert!(during.duration_nanos() >= 300_000_000);
    for sequence in [1, 3] {
        let span = entry_span(&traces, "back", sequence);
        assert_eq!(attr_str(span, "tracelab.injected"), None);
        assert!(span.duration_nanos() < 250_000_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn error_fault_answers_with_its_status_on_the_normal_path() {
    let lab = Lab::start(SCENARIO).await;
    let fault = json!({"service": "back", "kind": {"error": {"rate": 1.0, "status": 503}}});
    lab.fault_on("back", fault).await;
    let direct = lab.send("back", "/work", 10, &[]).await;
    let through = lab.send("front", "/", 11, &[]).await;
    lab.faults_off("back").await;
    let after = lab.send("front", "/", 12, &[]).await;
    assert_eq!(direct.status, Some(503));
    assert_eq!(through.status, Some(502), "the caller sees a failed call");
    assert_eq!(after.status, Some(200));

    let traces = lab.finish().await;
    let failed = entry_span(&traces, "back", 10);
    assert!(failed.is_error());
    assert_eq!(attr_str(failed, "tracelab.injected"), Some("error"));
    let front = entry_span(&traces, "front", 11);
    let client = &children(trace_of(&traces, front), front)[0];
    assert!(client.is_error(), "the CLIENT span records the 503");
    let ok = entry_span(&traces, "front", 12);
    assert!(!ok.is_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hang_fault_waits_until_the_callers_timeout() {
    let lab = Lab::start(SCENARIO).await;
    lab.fault_on("back", json!({"service": "back", "kind": "hang"}))
        .await;
    let hung = lab.send("front", "/", 20, &[]).await;
    lab.faults_off("back").await;
    let after = lab.send("front", "/", 21, &[]).await;
    assert_eq!(hung.status, Some(502));
    assert!(hung.took >= Duration::from_millis(400), "{hung:?}");
    assert!(hung.took < Duration::from_secs(3), "{hung:?}");
    assert_eq!(after.status, Some(200));

    let traces = lab.finish().await;
    let front = entry_span(&traces, "front", 20);
    let trace = trace_of(&traces, front);
    let client = children(trace, front)[0];
    assert_eq!(attr_str(client, "error.type"), Some("timeout"));
    let callee = children(trace, client);
    assert_eq!(callee.len(), 1, "the hung SERVER span is still recorded");
    assert_eq!(attr_str(callee[0], "tracelab.injected"), Some("hang"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn down_fault_refuses_connections_until_switched_off() {
    let lab = Lab::start(SCENARIO).await;
    // A connection opened before the outage must fail too, not only new ones.
    assert_eq!(lab.send("back", "/work", 29, &[]).await.status, Some(200));
    lab.fault_on("back", json!({"service": "back", "kind": "down"}))
        .await;
    let direct = lab.send("back", "/work", 30, &[]).await;
    let through = lab.send("front", "/", 31, &[]).await;
    lab.faults_off("back").await;
    let direct_after = lab.send("back", "/work", 32, &[]).await;
    let through_after = lab.send("front", "/", 33, &[]).await;
    assert_eq!(direct.status, None, "no HTTP answer while down");
    assert_eq!(through.status, Some(502));
    assert_eq!(direct_after.status, Some(200));
    assert_eq!(through_after.status, Some(200));

    let traces = lab.finish().await;
    let front = entry_span(&traces, "front", 31);
    let trace = trace_of(&traces, front);
    let client = children(trace, front)[0];
    assert!(client.is_error());
    assert!(
        children(trace, client).is_empty(),
        "back never saw the request"
    );
    let front = entry_span(&traces, "front", 33);
    assert_eq!(trace_of(&traces, front).spans.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drop_context_splits_the_trace() {
    let lab = Lab::start(SCENARIO).await;
    lab.fault_on("front", json!({"service": "front", "kind": "drop_context"}))
        .await;
    assert_eq!(lab.send("front", "/", 40, &[]).await.status, Some(200));
    lab.faults_off("front").await;
    assert_eq!(lab.send("front", "/", 41, &[]).await.status, Some(200));

    let traces = lab.finish().await;
    let broken = entry_span(&traces, "front", 40);
    let broken_trace = trace_of(&traces, broken);
    assert_eq!(
        broken_trace.spans.len(),
        1,
        "the caller's trace ends at its SERVER span"
    );
    let fragments: Vec<_> = named(&traces, "front", "GET /work")
        .into_iter()
        .filter(|s| attr_str(s, "tracelab.injected") == Some("drop_context"))
        .collect();
    assert_eq!(fragments.len(), 1);
    assert!(fragments[0].parent_span_id.is_none(), "a new root");
    assert_ne!(fragments[0].trace_id, broken.trace_id);
    assert_eq!(
        trace_of(&traces, fragments[0]).spans.len(),
        2,
        "CLIENT + back SERVER"
    );
    let whole = entry_span(&traces, "front", 41);
    assert_eq!(trace_of(&traces, whole).spans.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clock_skew_puts_children_outside_their_parents() {
    let lab = Lab::start(SCENARIO).await;
    lab.fault_on(
        "back",
        json!({"service": "back", "kind": {"clock_skew": {"offset_ms": 5000.0}}}),
    )
    .await;
    assert_eq!(lab.send("front", "/", 50, &[]).await.status, Some(200));
    lab.faults_off("back").await;
    assert_eq!(lab.send("front", "/", 51, &[]).await.status, Some(200));

    let traces = lab.finish().await;
    let child_of = |sequence| {
        let front = entry_span(&traces, "front", sequence);
        let trace = trace_of(&traces, front);
        let client = children(trace, front)[0];
        (client.clone(), children(trace, client)[0].clone())
    };
    let (client, server) = child_of(50);
    assert!(
        server.start_unix_nano > client.end_unix_nano + 4_000_000_000,
        "the skewed child starts seconds after its parent ended"
    );
    assert_eq!(attr_str(&server, "tracelab.injected"), Some("clock_skew"));
    let (client, server) = child_of(51);
    assert!(server.start_unix_nano >= client.start_unix_nano);
    assert!(server.end_unix_nano <= client.end_unix_nano);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saturate_fault_queues_requests() {
    let lab = Lab::start(SCENARIO).await;
    let burst = |first: u64| {
        let lab = &lab;
        async move {
            let started = tokio::time::Instant::now();
            let answers = futures::future::join_all(
                (first..first + 5).map(|s| lab.send("back", "/slow", s, &[])),
            )
            .await;
            assert!(answers.iter().all(|a| a.status == Some(200)));
            started.elapsed()
        }
    };
    lab.fault_on(
        "back",
        json!({"service": "back", "kind": {"saturate": {"limit": 1}}}),
    )
    .await;
    let saturated = burst(60).await;
    lab.faults_off("back").await;
    let free = burst(70).await;
    assert!(
        saturated >= Duration::from_millis(500),
        "{saturated:?}: one at a time"
    );
    assert!(free < Duration::from_millis(450), "{free:?}: all at once");

    let traces = lab.finish().await;
    let waits = named(&traces, "back", "worker pool wait");
    assert_eq!(
        waits.len(),
        5,
        "only the saturated requests wait for a worker"
    );
    let longest = waits
        .iter()
        .filter_map(|s| super::harness::attr_f64(s, "tracelab.queue.wait_ms"))
        .fold(0.0, f64::max);
    assert!(
        longest >= 300.0,
        "the last one queued behind four: {longest} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_target_a_tenant_by_baggage() {
    let lab = Lab::start(SCENARIO).await;
    let fault =
        json!({"service": "back", "baggage": "tenant=acme", "kind": {"error": {"rate": 1.0}}});
    lab.fault_on("back", fault).await;
    let acme = lab
        .send("back", "/work", 80, &[("baggage", "tenant=acme")])
        .await;
    let other = lab
        .send("back", "/work", 81, &[("baggage", "tenant=globex")])
        .await;
    let none = lab.send("back", "/work", 82, &[]).await;
    assert_eq!(acme.status, Some(503));
    assert_eq!((other.status, none.status), (Some(200), Some(200)));
    let traces = lab.finish().await;
    assert_eq!(
        attr_str(entry_span(&traces, "back", 80), "baggage.tenant"),
        Some("acme")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_api_lists_records_history_and_refuses_bad_requests() {
    let lab = Lab::start(SCENARIO).await;
    let admin = lab.admin("back");
    let client = &lab.client;
    let status_of = |response: reqwest::Response| response.status().as_u16();

    // Never on the traffic port.
    let traffic = client
        .get(lab.url("back", "/admin/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(traffic), 404);

    let bad = [
        ("not json", 400),
        (r#"{"service": "back", "kind": "explode"}"#, 400),
        (r#"{"service": "back", "kind": "hang", "extra": 1}"#, 400),
        (r#"{"service": "front", "kind": "hang"}"#, 422),
        (
            r#"{"service": "back", "kind": {"error": {"rate": 2}}}"#,
            422,
        ),
        (
            r#"{"service": "back", "route": "/nope", "kind": "hang"}"#,
            422,
        ),
    ];
    for (body, expected) in bad {
        let response = client.post(&admin).body(body).send().await.unwrap();
        assert_eq!(status_of(response), expected, "{body}");
    }
    let response = client.delete(format!("{admin}/99")).send().await.unwrap();
    assert_eq!(status_of(response), 404);

    let id = lab
        .fault_on("back", json!({"service": "back", "kind": "drop_context"}))
        .await;
    let list: serde_json::Value = serde_json::from_slice(
        &client
            .get(&admin)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["source"], "api");
    let replaced = client
        .put(&admin)
        .body(r#"[{"service": "back", "kind": "hang"}, {"service": "back", "kind": "down"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(replaced), 200);
    let response = client.delete(format!("{admin}/{id}")).send().await.unwrap();
    assert_eq!(status_of(response), 404, "replaced faults are gone");
    lab.faults_off("back").await;
    let history: serde_json::Value = serde_json::from_slice(
        &client
            .get(format!("{admin}/history"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let windows = history.as_array().unwrap();
    assert_eq!(windows.len(), 3);
    for window in windows {
        let start = window["start_unix_nano"].as_u64().unwrap();
        let end = window["end_unix_nano"]
            .as_u64()
            .expect("every fault is off");
        assert!(end >= start);
    }
    assert_eq!(windows[2]["what"], "down on back");
    lab.finish().await;
}
