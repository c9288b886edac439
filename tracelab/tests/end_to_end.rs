//! End to end over real loopback HTTP and real OTLP: a scenario with a sequence, a parallel
//! group, a `repeat`, a probabilistic call and an error route runs through `run_lab`, and every
//! request's trace is checked against what the topology predicts for the calls that request
//! actually made.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, run_lab};
use tracelab_receiver::ReceiverConfig;
use tracelab_scenario::{Scenario, Step};
use tracelab_telemetry::OtlpProtocol;
use tracelab_trace::{Span, SpanKind, StatusCode, Trace};

const SCENARIO: &str = r#"
# Test topology: a sequence, a parallel group with a probabilistic call, an N+1 repeat,
# local work and an error route.
name: topology
seed: 7
services:
  gateway:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: orders, route: /order}
          - parallel:
              - {call: inventory, route: /stock}
              - {call: pricing, route: /price}
              - {call: ads, route: /ad, probability: 0.5}
            max_parallel: 2
          - work: render
            latency: {constant: 1}
  orders:
    routes:
      /order:
        method: POST
        steps:
          - {call: db, route: /query, repeat: 3}
  inventory:
    routes:
      /stock:
        latency: {uniform: {min_ms: 1, max_ms: 3}}
  pricing:
    routes:
      /price:
        errors: {rate: 0.25, status: 503}
  ads:
    routes:
      /ad:
        latency: {constant: 2}
  db:
    routes:
      /query:
        latency: {exponential: {mean_ms: 1}}
load:
  rate: 40
  duration: 2s
  entries:
    - {service: gateway, route: /}
"#;

fn attr_str<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attr(key).and_then(|v| v.as_str())
}

fn attr_i64(span: &Span, key: &str) -> Option<i64> {
    span.attr(key).and_then(|v| v.as_i64())
}

/// Checks the subtree under a SERVER span against the scenario and returns how many spans it
/// holds (itself included). Probabilistic calls are judged by the "call skipped" event the
/// service records; a failed call ends the step sequence, as the runtime promises.
fn check_server_span(
    scenario: &Scenario,
    trace: &Trace,
    children: &HashMap<tracelab_trace::SpanId, Vec<&Span>>,
    server: &Span,
    errors_seen: &mut u32,
) -> usize {
    assert_eq!(server.kind, SpanKind::Server, "{server:?}");
    let service = server.service_name.to_string();
    let route_path = attr_str(server, "http.route").expect("SERVER span has http.route");
    let route = scenario
        .route(&service, route_path)
        .unwrap_or_else(|| panic!("no route {service} {route_path}"));
    let kids: Vec<&Span> = children.get(&server.span_id).cloned().unwrap_or_default();
    let status = attr_i64(server, "http.response.status_code").expect("status code recorded");

    if attr_str(server, "tracelab.injected") == Some("error") {
        let injected = route
            .errors
            .as_ref()
            .expect("only routes with errors inject them");
        assert_eq!(status, i64::from(injected.status));
        assert_eq!(server.status.code, StatusCode::Error);
        assert_eq!(
            attr_str(server, "error.type"),
            Some(injected.status.to_string().as_str())
        );
        assert!(
            kids.is_empty(),
            "an injected error answers before any step runs"
        );
        *errors_seen += 1;
        return 1;
    }

    let mut count = 1;
    let mut accounted = 0;
    let mut failed = false;
    for (index, step) in route.steps.iter().enumerate() {
        if failed {
            break;
        }
        let at_step: Vec<&Span> = kids
            .iter()
            .copied()
            .filter(|k| attr_i64(k, "tracelab.step") == Some(index as i64))
            .collect();
        match step {
            Step::Work(work) => {
                assert_eq!(at_step.len(), 1, "one span for work `{}`", work.name);
                assert_eq!(at_step[0].kind, SpanKind::Internal);
                assert_eq!(at_step[0].name, work.name);
                count += 1;
                accounted += 1;
            }
            Step::Call(_) | Step::Parallel(_) => {
                for call in step.calls() {
                    let skipped = server.events.iter().any(|e| {
                        e.name == "call skipped"
                            && e.attributes.iter().any(|a| {
                                a.key == "peer.service" && a.value.as_str() == Some(&call.service)
                            })
                    });
                    let clients: Vec<&Span> = at_step
                        .iter()
                        .copied()
                        .filter(|k| attr_str(k, "peer.service") == Some(call.service.as_str()))
                        .collect();
                    if skipped {
                        assert!(
                            call.probability < 1.0,
                            "only probabilistic calls are skipped"
                        );
                        assert!(clients.is_empty());
                        continue;
                    }
                    // A failing repeat stops its branch, so fewer than `repeat` is allowed only
                    // when the last one failed.
                    let expected = call.repeat as usize;
                    let last_failed = clients.last().is_some_and(|c| c.is_error());
                    assert!(
                        clients.len() == expected || (last_failed && clients.len() < expected),
                        "{} CLIENT spans to {} {} (repeat {})",
                        clients.len(),
                        call.service,
                        call.route,
                        call.repeat
                    );
                    for client in clients {
                        assert_eq!(client.kind, SpanKind::Client);
                        assert_eq!(client.service_name.as_ref(), service);
                        assert_eq!(attr_str(client, "url.template"), Some(call.route.as_str()));
                        let callee = children.get(&client.span_id).cloned().unwrap_or_default();
                        assert_eq!(callee.len(), 1, "each CLIENT span has exactly one child");
                        let callee = callee[0];
                        assert_eq!(callee.kind, SpanKind::Server);
                        assert_eq!(callee.service_name.as_ref(), call.service);
                        assert_eq!(attr_str(callee, "http.route"), Some(call.route.as_str()));
                        assert_eq!(callee.trace_id, trace.trace_id);
                        accounted += 1;
                        count +=
                            1 + check_server_span(scenario, trace, children, callee, errors_seen);
                        if callee.is_error() {
                            assert!(client.is_error(), "a failed callee fails the CLIENT span");
                            let code = attr_i64(callee, "http.response.status_code").unwrap();
                            assert_eq!(attr_i64(client, "http.response.status_code"), Some(code));
                            assert_eq!(
                                attr_str(client, "error.type"),
                                Some(code.to_string().as_str())
                            );
                            failed = true;
                        }
                    }
                }
            }
            other => panic!("this topology has no {other:?} step"),
        }
    }
    if failed {
        assert_eq!(
            status, 502,
            "a failed downstream call makes the caller answer 502"
        );
        assert_eq!(server.status.code, StatusCode::Error);
    } else {
        assert_eq!(status, 200);
        assert_ne!(server.status.code, StatusCode::Error);
    }
    assert_eq!(
        kids.len(),
        accounted,
        "every child of {service} {route_path} belongs to a step that ran"
    );
    count
}

async fn run_topology(protocol: OtlpProtocol) {
    let scenario = tracelab_scenario::parse(SCENARIO, "topology.yaml").expect("valid scenario");
    let out = tempdir(&format!("e2e-{}", protocol.as_str().replace('/', "-")));
    let outcome = run_lab(
        RunOptions {
            scenario: scenario.clone(),
            scenario_source: SCENARIO.to_string(),
            scenario_file: "topology.yaml".into(),
            out: out.clone(),
            protocol,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(15),
            keep_traces: true,
        },
        CancellationToken::new(),
    )
    .await
    .expect("run succeeds");
    let report = &outcome.report;
    assert_eq!(report.load.total, 80);
    assert_eq!(
        report.traces.as_ref().unwrap().received,
        80,
        "one trace per request"
    );
    assert_eq!(report.traces.as_ref().unwrap().complete, 80);
    assert_eq!(report.traces.as_ref().unwrap().broken, 0);
    assert_eq!(
        report.pipeline.spans_received.unwrap(),
        report.pipeline.spans_exported
    );
    assert_eq!(report.pipeline.spans_lost, 0);

    // Ground truth: one line per request, each naming its trace.
    let requests = std::fs::read_to_string(out.join("requests.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = requests
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 80);
    let by_id: HashMap<String, &Trace> = outcome
        .traces
        .iter()
        .map(|t| (t.trace_id.to_hex(), t))
        .collect();

    let mut errors_seen = 0;
    let mut skipped_seen = 0;
    let mut total_spans = 0;
    for record in &records {
        let trace_id = record["trace_id"].as_str().unwrap();
        let trace = by_id.get(trace_id).expect("every request has its trace");
        assert!(trace.shape().is_complete());
        assert!(trace.spans.iter().all(|s| s.trace_id.to_hex() == trace_id));
        let root = trace.root().unwrap();
        assert_eq!(root.service_name.as_ref(), "loadgen");
        assert_eq!(root.kind, SpanKind::Client);
        let children = trace.children();
        let entry = children
            .get(&root.span_id)
            .expect("the root has the entry span");
        assert_eq!(entry.len(), 1);
        let predicted =
            1 + check_server_span(&scenario, trace, &children, entry[0], &mut errors_seen);
        assert_eq!(
            trace.spans.len(),
            predicted,
            "span count of trace {trace_id}"
        );
        total_spans += predicted;
        skipped_seen += entry[0]
            .events
            .iter()
            .filter(|e| e.name == "call skipped")
            .count();
        // The client saw what the entry service answered.
        let status = record["status"].as_u64().unwrap();
        assert_eq!(
            Some(status as i64),
            attr_i64(entry[0], "http.response.status_code")
        );
        assert_eq!(record["error"].as_bool().unwrap(), status >= 500);
    }
    assert_eq!(total_spans as u64, report.pipeline.spans_received.unwrap());
    // With 80 requests, a 25 % error rate and a 50 % call, both happen (seeded: deterministic).
    assert!(errors_seen > 5, "errors injected: {errors_seen}");
    assert!(
        skipped_seen > 10,
        "probabilistic calls skipped: {skipped_seen}"
    );

    // The run directory holds every span as OTLP/JSON lines that decode back.
    let spans = tracelab_receiver::otlp_json::read_file(&out.join("spans.otlp.jsonl")).unwrap();
    assert_eq!(spans.len() as u64, report.pipeline.spans_received.unwrap());
    let report_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report_json["load"]["total"], 80);
    assert_eq!(report_json["traces"]["broken"], 0);
    assert!(report_json["load"]["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "tracelab-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_over_otlp_grpc() {
    run_topology(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_over_otlp_http_protobuf() {
    run_topology(OtlpProtocol::HttpProtobuf).await;
}
