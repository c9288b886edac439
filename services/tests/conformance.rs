//! `POST /conformance/trace-context`, driven as the W3C test harness drives it: the harness
//! sends headers, the service calls back, the harness reads what arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use tokio::net::TcpListener;
use tracelab_services::{HostOptions, ServiceHost};

const SCENARIO: &str = r#"
# One service, enough to host the conformance endpoint.
name: conformance
services:
  svc:
    routes:
      /: {}
load:
  rate: 1
  duration: 1s
  entries:
    - {service: svc, route: /}
"#;

/// What the harness's callback endpoint received: every header value, per name, in order.
type Received = Arc<Mutex<Vec<Vec<(String, String)>>>>;

async fn harness() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/callback",
        post(move |headers: HeaderMap| {
            let store = store.clone();
            async move {
                let pairs = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                store.lock().unwrap().push(pairs);
                "ok"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/callback"), received)
}

struct Lab {
    host: ServiceHost,
    callback: String,
    received: Received,
    client: reqwest::Client,
}

impl Lab {
    async fn start() -> Self {
        let scenario = Arc::new(tracelab_scenario::parse(SCENARIO, "conformance.yaml").unwrap());
        let host = ServiceHost::start(scenario, &HostOptions::default())
            .await
            .unwrap();
        let (callback, received) = harness().await;
        Lab {
            host,
            callback,
            received,
            client: reqwest::Client::new(),
        }
    }

    /// Sends one harness request with `headers` and returns the headers the callback got.
    async fn roundtrip(&self, headers: &[(&str, &str)]) -> Vec<(String, String)> {
        let url = format!(
            "{}/conformance/trace-context",
            self.host.peers().url("svc").unwrap()
        );
        let body = format!(r#"[{{"url": "{}", "arguments": []}}]"#, self.callback);
        let mut req = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let before = self.received.lock().unwrap().len();
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        let got = self.received.lock().unwrap();
        assert_eq!(
            got.len(),
            before + 1,
            "the service answers after its callback"
        );
        got[before].clone()
    }
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

struct Parent<'a> {
    version: &'a str,
    trace_id: &'a str,
    parent_id: &'a str,
    flags: &'a str,
}

fn traceparent(headers: &[(String, String)]) -> Parent<'_> {
    let tp = values(headers, "traceparent");
    assert_eq!(tp.len(), 1, "exactly one traceparent goes out: {tp:?}");
    let parts: Vec<&str> = tp[0].split('-').collect();
    assert_eq!(parts.len(), 4, "{tp:?}");
    assert_eq!(tp[0].len(), 55);
    Parent {
        version: parts[0],
        trace_id: parts[1],
        parent_id: parts[2],
        flags: parts[3],
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn level2_random_flag_and_tracestate_are_propagated() {
    let lab = Lab::start().await;
    let got = lab
        .roundtrip(&[
            ("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-03")),
            ("tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"),
        ])
        .await;
    let tp = traceparent(&got);
    assert_eq!(tp.version, "00");
    assert_eq!(tp.trace_id, TRACE_ID, "the trace continues");
    assert_ne!(
        tp.parent_id, PARENT_ID,
        "the service's own span is the new parent"
    );
    assert_eq!(tp.flags, "03", "sampled and random flags survive");
    assert_eq!(
        values(&got, "tracestate"),
        vec!["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]
    );
    lab.host.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn duplicated_traceparent_starts_a_new_trace_and_drops_tracestate() {
    let lab = Lab::start().await;
    let got = lab
        .roundtrip(&[
            ("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01")),
            (
                "traceparent",
                "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01",
            ),
            ("tracestate", "foo=1"),
        ])
        .await;
    let tp = traceparent(&got);
    assert_ne!(tp.trace_id, TRACE_ID);
    assert_ne!(tp.trace_id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_eq!(
        tp.flags, "03",
        "a new trace is sampled here and its id is random"
    );
    // The incoming tracestate is ignored; the new trace carries only the local root sampler's
    // own entry (keep-all is threshold 0 in OpenTelemetry's probability sampling).
    assert_eq!(
        values(&got, "tracestate"),
        vec!["ot=th:0"],
        "tracestate is ignored with a new trace"
    );
    lab.host.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn invalid_traceparents_start_new_traces() {
    let lab = Lab::start().await;
    let invalid = [
        format!("00-{}-{PARENT_ID}-01", TRACE_ID.to_uppercase()),
        format!("ff-{TRACE_ID}-{PARENT_ID}-01"),
        format!("00-{TRACE_ID}-{PARENT_ID}-01-extra"),
        format!("00-00000000000000000000000000000000-{PARENT_ID}-01"),
        format!("00-{TRACE_ID}-0000000000000000-01"),
        format!("00-{TRACE_ID}-{PARENT_ID}-1"),
        format!("cc-{TRACE_ID}-{PARENT_ID}-01.extra"),
    ];
    for header in &invalid {
        let got = lab
            .roundtrip(&[("traceparent", header), ("tracestate", "foo=1")])
            .await;
        let tp = traceparent(&got);
        assert_ne!(tp.trace_id, TRACE_ID, "{header} must be rejected");
        assert_eq!(values(&got, "tracestate"), vec!["ot=th:0"], "{header}");
    }
    lab.host.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_higher_version_is_read_by_its_first_four_fields_and_answered_as_00() {
    let lab = Lab::start().await;
    let got = lab
        .roundtrip(&[(
            "traceparent",
            &format!("cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-holds"),
        )])
        .await;
    let tp = traceparent(&got);
    assert_eq!(tp.version, "00");
    assert_eq!(tp.trace_id, TRACE_ID);
    assert_eq!(tp.flags, "01", "no random flag was claimed upstream");
    lab.host.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn tracestate_headers_combine_and_an_invalid_member_drops_all_of_it() {
    let lab = Lab::start().await;
    let tp = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let got = lab
        .roundtrip(&[
            ("traceparent", &tp),
            ("tracestate", "a=1,,"),
            ("tracestate", " b@vendor=2 ,c=3"),
        ])
        .await;
    assert_eq!(values(&got, "tracestate"), vec!["a=1,b@vendor=2,c=3"]);
    assert_eq!(traceparent(&got).trace_id, TRACE_ID);

    let got = lab
        .roundtrip(&[("traceparent", &tp), ("tracestate", "a=1,FOO=2")])
        .await;
    assert!(values(&got, "tracestate").is_empty());
    assert_eq!(
        traceparent(&got).trace_id,
        TRACE_ID,
        "a bad tracestate keeps the traceparent"
    );

    let too_many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
    let got = lab
        .roundtrip(&[("traceparent", &tp), ("tracestate", &too_many.join(","))])
        .await;
    assert!(
        values(&got, "tracestate").is_empty(),
        "33 members invalidate it"
    );
    lab.host.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn baggage_travels_with_the_context() {
    let lab = Lab::start().await;
    let got = lab
        .roundtrip(&[
            ("traceparent", &format!("00-{TRACE_ID}-{PARENT_ID}-01")),
            ("baggage", "tenant=acme,note=hello%20world"),
        ])
        .await;
    let baggage = values(&got, "baggage").join(",");
    assert!(baggage.contains("tenant=acme"), "{baggage}");
    assert!(baggage.contains("note=hello%20world"), "{baggage}");
    lab.host.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn malformed_harness_body_gets_400() {
    let lab = Lab::start().await;
    let url = format!(
        "{}/conformance/trace-context",
        lab.host.peers().url("svc").unwrap()
    );
    let resp = lab.client.post(url).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    lab.host.shutdown(Duration::from_secs(1)).await;
}
