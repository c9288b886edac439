//! Replicas on real sockets: every instance is a server of its own with its own
//! `service.instance.id`; callers spread their calls by the callee's policy and name the
//! instance reached on the CLIENT span; `instances:` overrides and instance faults touch one
//! instance only.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;
use tracelab_trace::{Span, SpanId, SpanKind, Trace};

use super::harness::{Lab, all_spans, attr_i64, attr_str};

/// `front` calls `db`, which runs three instances; `{BALANCE}` and `{INSTANCES}` are filled in
/// by each test.
const SCENARIO: &str = r#"
name: instances
seed: 5
services:
  front:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: db, route: /q, timeout: 2s}
  db:
    replicas: 3
    balance: {BALANCE}
    instances: {INSTANCES}
    routes:
      /q:
        latency: {constant: 5}
load:
  rate: 1
  duration: 1s
  entries:
    - {service: front, route: /}
"#;

fn scenario(balance: &str, instances: &str) -> String {
    SCENARIO
        .replace("{BALANCE}", balance)
        .replace("{INSTANCES}", instances)
}

fn resource<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    span.resource
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_str())
}

/// The SERVER spans of `db`, by `service.instance.id`.
fn db_servers(traces: &[Trace]) -> BTreeMap<String, Vec<&Span>> {
    let mut by_instance: BTreeMap<String, Vec<&Span>> = BTreeMap::new();
    for span in all_spans(traces) {
        if span.kind == SpanKind::Server && span.service_name.as_ref() == "db" {
            let id = resource(span, "service.instance.id").expect("an instance id");
            by_instance.entry(id.to_owned()).or_default().push(span);
        }
    }
    by_instance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_robin_gives_each_instance_its_turn_and_the_client_span_names_it() {
    let lab = Lab::start(&scenario("round_robin", "{}")).await;
    let instances: Vec<(u32, String, u16)> = lab
        .host
        .services()
        .iter()
        .filter(|s| s.name == "db")
        .map(|s| (s.instance, s.instance_id.clone(), s.addr.port()))
        .collect();
    assert_eq!(instances.len(), 3, "three servers of db");
    for sequence in 0..60 {
        assert_eq!(
            lab.send("front", "/", sequence, &[]).await.status,
            Some(200)
        );
    }
    let traces = lab.finish().await;
    assert_eq!(traces.len(), 60);
    assert!(
        traces
            .iter()
            .all(|t| t.shape().is_complete() && t.spans.len() == 3)
    );
    let servers = db_servers(&traces);
    let counts: Vec<usize> = servers.values().map(Vec::len).collect();
    assert_eq!(
        counts,
        [20, 20, 20],
        "each instance once in every three requests"
    );
    let by_id: HashMap<SpanId, &Span> = all_spans(&traces)
        .into_iter()
        .map(|s| (s.span_id, s))
        .collect();
    for (instance, instance_id, port) in &instances {
        assert!(
            instance_id.starts_with(&format!("db-{instance}-")),
            "{instance_id} names the instance"
        );
        for server in &servers[instance_id] {
            let parent = by_id[&server.parent_span_id.expect("a parent")];
            assert_eq!(parent.kind, SpanKind::Client);
            assert_eq!(
                attr_i64(parent, "server.port"),
                Some(i64::from(*port)),
                "the CLIENT span names the instance it reached"
            );
            assert!(
                attr_str(parent, "url.full").is_some_and(|u| u.contains(&format!(":{port}/q")))
            );
            assert_eq!(attr_i64(server, "server.port"), Some(i64::from(*port)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sticky_keeps_a_session_on_one_instance() {
    let lab = Lab::start(&scenario("{sticky: session}", "{}")).await;
    for sequence in 0..30 {
        let session = format!("session=user{}", sequence % 3);
        let answer = lab
            .send("front", "/", sequence, &[("baggage", session.as_str())])
            .await;
        assert_eq!(answer.status, Some(200));
    }
    let traces = lab.finish().await;
    let mut instances_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (instance, spans) in db_servers(&traces) {
        for span in spans {
            let session = attr_str(span, "baggage.session").expect("baggage on the span");
            let seen = instances_of.entry(session.to_owned()).or_default();
            if !seen.contains(&instance) {
                seen.push(instance.clone());
            }
        }
    }
    assert_eq!(instances_of.len(), 3);
    for (session, instances) in instances_of {
        assert_eq!(
            instances.len(),
            1,
            "{session} stays on one instance: {instances:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn least_requests_sends_less_to_a_slow_instance() {
    let slow = "{0: {latency: {add: {constant: {ms: 100}}}}}";
    let lab = std::sync::Arc::new(Lab::start(&scenario("least_requests", slow)).await);
    // Eight callers at once keep a few calls in flight, so the slow instance is busier than
    // its siblings whenever it is one of the two candidates.
    let mut callers = Vec::new();
    for caller in 0..8u64 {
        let lab = lab.clone();
        callers.push(tokio::spawn(async move {
            for n in 0..25u64 {
                let answer = lab.send("front", "/", caller * 1000 + n, &[]).await;
                assert_eq!(answer.status, Some(200));
            }
        }));
    }
    for caller in callers {
        caller.await.expect("a caller");
    }
    let lab = std::sync::Arc::into_inner(lab).expect("the only holder");
    let slow_id = lab
        .host
        .services()
        .iter()
        .find(|s| s.name == "db" && s.instance == 0)
        .map(|s| s.instance_id.clone())
        .expect("instance 0");
    let traces = lab.finish().await;
    let servers = db_servers(&traces);
    let total: usize = servers.values().map(Vec::len).sum();
    assert_eq!(total, 200);
    let share = servers.get(&slow_id).map_or(0, Vec::len) as f64 / total as f64;
    assert!(
        share < 0.2,
        "the slow instance gets {share:.2} of the calls, well below a third"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_override_changes_its_instance_only() {
    let overrides = "{1: {version: 2.0.0-canary, latency: {multiply: 20}}, 2: {errors: {rate: 1, status: 503}}}";
    let lab = Lab::start(&scenario("round_robin", overrides)).await;
    let mut statuses = Vec::new();
    for sequence in 0..30 {
        statuses.push(lab.send("front", "/", sequence, &[]).await.status);
    }
    let ids: HashMap<u32, String> = lab
        .host
        .services()
        .iter()
        .filter(|s| s.name == "db")
        .map(|s| (s.instance, s.instance_id.clone()))
        .collect();
    let versions: Vec<(u32, String)> = lab
        .host
        .services()
        .iter()
        .filter(|s| s.name == "db")
        .map(|s| (s.instance, s.version.clone()))
        .collect();
    assert_eq!(
        versions,
        [
            (0, "1.0.0".to_owned()),
            (1, "2.0.0-canary".to_owned()),
            (2, "1.0.0".to_owned())
        ]
    );
    let traces = lab.finish().await;
    let servers = db_servers(&traces);
    for span in &servers[&ids[&0]] {
        assert!(!span.is_error() && span.duration_nanos() < 50_000_000);
        assert_eq!(resource(span, "service.version"), Some("1.0.0"));
    }
    for span in &servers[&ids[&1]] {
        assert!(!span.is_error());
        assert!(span.duration_nanos() >= 100_000_000, "5 ms × 20");
        assert_eq!(resource(span, "service.version"), Some("2.0.0-canary"));
    }
    for span in &servers[&ids[&2]] {
        assert!(span.is_error());
        assert_eq!(attr_str(span, "tracelab.injected"), Some("error"));
        assert_eq!(attr_i64(span, "http.response.status_code"), Some(503));
    }
    let failed = statuses.iter().filter(|s| **s != Some(200)).count();
    assert_eq!(failed, 10, "a third of the requests reach instance 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fault_on_one_instance_is_taken_by_that_instance_only() {
    let lab = Lab::start(&scenario("round_robin", "{}")).await;
    let admin = |instance: u32| {
        let hosted = lab
            .host
            .services()
            .iter()
            .find(|s| s.name == "db" && s.instance == instance)
            .expect("hosted");
        format!("http://{}/admin/faults", hosted.admin_addr)
    };
    let fault =
        json!({"service": "db", "instance": 2, "kind": {"error": {"rate": 1, "status": 503}}});
    let refused = lab
        .client
        .post(admin(0))
        .body(fault.to_string())
        .send()
        .await
        .expect("admin answers");
    assert_eq!(refused.status().as_u16(), 422);
    let message = refused.text().await.unwrap_or_default();
    assert!(message.contains("instance 2"), "{message}");
    let missing = json!({"service": "db", "instance": 3, "kind": "hang"});
    let refused = lab
        .client
        .post(admin(0))
        .body(missing.to_string())
        .send()
        .await
        .expect("admin answers");
    assert_eq!(refused.status().as_u16(), 422);
    let accepted = lab
        .client
        .post(admin(2))
        .body(fault.to_string())
        .send()
        .await
        .expect("admin answers");
    assert_eq!(accepted.status().as_u16(), 201);
    let mut failed = 0;
    for sequence in 0..30 {
        if lab.send("front", "/", sequence, &[]).await.status != Some(200) {
            failed += 1;
        }
    }
    assert_eq!(failed, 10, "only the calls that reach instance 2 fail");
    let instance_2 = lab
        .host
        .services()
        .iter()
        .find(|s| s.name == "db" && s.instance == 2)
        .map(|s| s.instance_id.clone())
        .expect("hosted");
    let traces = lab.finish().await;
    for (instance, spans) in db_servers(&traces) {
        let errors = spans.iter().filter(|s| s.is_error()).count();
        if instance == instance_2 {
            assert_eq!(errors, spans.len());
        } else {
            assert_eq!(errors, 0, "{instance}");
        }
    }
}
