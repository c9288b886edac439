//! `tracelab serve`'s console over a real run: the API a page asks, checked against the run's
//! own span file, and the page itself in headless Chromium (see `report_browser.rs` for the
//! browser set-up). Screenshots go to `target/test-artifacts/`.

mod browser;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracelab::console::Console;
use tracelab::run::{RunOptions, run_lab};
use tracelab_receiver::{ReceiverConfig, otlp_json};
use tracelab_telemetry::OtlpProtocol;
use tracelab_trace::{Trace, group_into_traces};

use browser::{CountingProxy, artifacts_dir, assert_png, browse, scratch_dir};

const SCENARIO: &str = r#"
# A shop whose database fails now and then, with a slow path: traces of several shapes,
# some failed, to search among.
name: console-shop
seed: 11
services:
  web:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: orders, route: /order}
      /slow:
        latency: {constant: 30}
  orders:
    routes:
      /order:
        latency: {uniform: {min_ms: 1, max_ms: 3}}
        steps:
          - {call: db, route: /query}
          - work: cache.get
            latency: {constant: 0.5}
  db:
    routes:
      /query:
        latency: {exponential: {mean_ms: 2}}
        errors: {rate: 0.3, status: 500}
load:
  rate: 40
  duration: 2s
  entries:
    - {service: web, route: /, weight: 3}
    - {service: web, route: /slow}
"#;

struct Served {
    base: String,
    stop: CancellationToken,
    traces: Vec<Trace>,
    requests: Vec<Value>,
}

/// Runs the scenario, indexes its run directory and serves the console on a free port.
async fn served() -> Served {
    let scenario = tracelab_scenario::parse(SCENARIO, "console-shop.yaml").expect("valid scenario");
    let outcome = run_lab(
        RunOptions {
            scenario,
            scenario_source: SCENARIO.to_string(),
            scenario_file: "console-shop.yaml".into(),
            out: scratch_dir("console-run"),
            protocol: OtlpProtocol::Grpc,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(15),
            keep_traces: false,
        },
        CancellationToken::new(),
    )
    .await
    .expect("run succeeds");
    // The truth: the span file read whole, as `tracelab report` would.
    let traces = group_into_traces(
        otlp_json::read_file(&outcome.dir.join("spans.otlp.jsonl")).expect("span file"),
    );
    let requests = std::fs::read_to_string(outcome.dir.join("requests.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let console = Console::open(&outcome.dir).expect("console opens the run directory");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(tracelab::console::serve(
        listener,
        Arc::new(console),
        stop.clone(),
    ));
    Served {
        base,
        stop,
        traces,
        requests,
    }
}

async fn get(url: &str) -> (u16, String) {
    let reply = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

async fn search(base: &str, query: &str) -> Value {
    let (status, body) = get(&format!("{base}/api/search?{query}")).await;
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn duration_ns(t: &Trace) -> u64 {
    let start = t.spans.iter().map(|s| s.start_unix_nano).min().unwrap();
    let end = t.spans.iter().map(|s| s.end_unix_nano).max().unwrap();
    end - start
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_answers_from_the_run_s_own_spans() {
    let s = served().await;
    let base = &s.base;

    let (status, body) = get(&format!("{base}/api/overview")).await;
    assert_eq!(status, 200);
    let overview: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(overview["title"], "console-shop");
    assert_eq!(overview["traces"], s.traces.len());
    let spans: usize = s.traces.iter().map(|t| t.spans.len()).sum();
    assert_eq!(overview["spans"], spans);
    let services: Vec<&str> = overview["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["db", "loadgen", "orders", "web"]);
    assert_eq!(overview["figures"].as_array().unwrap().len(), 4);

    // Every request's trace, found by its id with the spans the file holds.
    assert_eq!(s.requests.len(), 80);
    for request in &s.requests {
        let id = request["trace_id"].as_str().unwrap();
        let truth = s
            .traces
            .iter()
            .find(|t| t.trace_id.to_hex() == id)
            .expect("every request's trace is in the span file");
        let found = search(base, &format!("trace_id={id}")).await;
        assert_eq!(found["matched"], 1, "{id}");
        let hit = &found["traces"][0];
        assert_eq!(hit["trace_id"], id);
        assert_eq!(hit["spans"], truth.spans.len());
        assert_eq!(
            hit["errors"],
            truth.spans.iter().filter(|s| s.is_error()).count()
        );
        assert_eq!(hit["service"], "loadgen");
        assert_eq!(hit["duration_ns"], duration_ns(truth));
    }

    // Each filter against a count made from the file.
    let count = |keep: &dyn Fn(&Trace) -> bool| s.traces.iter().filter(|t| keep(t)).count();
    let failed = search(base, "errors=1&limit=500").await;
    assert_eq!(failed["matched"], count(&|t| t.has_error()));
    assert!(
        failed["matched"].as_u64().unwrap() > 0,
        "the scenario fails"
    );
    let db = search(base, "service=db&operation=GET%20%2Fquery").await;
    let with_db = count(&|t| {
        t.spans
            .iter()
            .any(|s| &*s.service_name == "db" && s.name == "GET /query")
    });
    assert_eq!(db["matched"], with_db);
    assert!(with_db > 0 && with_db < s.traces.len());
    let slow = search(base, "min_ms=25").await;
    assert_eq!(slow["matched"], count(&|t| duration_ns(t) >= 25_000_000));
    // Newest first, at most the limit.
    let newest = search(base, "limit=5").await;
    let starts: Vec<u64> = newest["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["start_unix_nano"].as_u64().unwrap())
        .collect();
    assert_eq!(starts.len(), 5);
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");
    // A time window: the first second of the run.
    let first = search(base, "to_s=1&limit=500").await;
    let t0 = overview["first_start_unix_nano"].as_u64().unwrap();
    assert_eq!(
        first["matched"],
        count(&|t| t.spans.iter().map(|s| s.start_unix_nano).min().unwrap() < t0 + 1_000_000_000)
    );

    // Bad input says which field and why.
    let (status, body) = get(&format!("{base}/api/search?min_ms=soon")).await;
    assert_eq!(status, 400);
    assert!(body.contains("min_ms: `soon` is not a number"), "{body}");
    let (status, body) = get(&format!("{base}/api/search?trace_id=xyz")).await;
    assert_eq!(status, 400);
    assert!(body.contains("trace_id: `xyz` is not a trace id"), "{body}");

    // A trace's page: one row per span, its critical path marked.
    let truth = s.traces.iter().find(|t| t.has_error()).unwrap();
    let id = truth.trace_id.to_hex();
    let (status, page) = get(&format!("{base}/trace/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        page.matches("<div class=\"span-row").count(),
        truth.spans.len()
    );
    assert!(page.contains("span-row critical"));
    assert!(page.contains("console-shop · trace"), "the run is named");
    let rows: HashSet<String> = truth.spans.iter().map(|s| s.span_id.to_hex()).collect();
    for span in &rows {
        assert!(page.contains(&format!("data-span-id=\"{span}\"")));
    }
    let (status, _) = get(&format!("{base}/trace/{}", "0".repeat(31) + "1")).await;
    assert_eq!(status, 404);
    let (status, report) = get(&format!("{base}/report.html")).await;
    assert_eq!(status, 200);
    assert!(report.contains("tracelab report"));
    s.stop.cancel();
}

#[test]
fn serve_refuses_what_it_cannot_serve_and_says_what_to_do() {
    let serve = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tracelab"))
            .arg("serve")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = scratch_dir("not-a-run");
    let (code, stderr) = serve(&[dir.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("no spans.otlp.jsonl here") && stderr.contains("tracelab run"),
        "{stderr}"
    );
    // Any address but loopback needs --public: the console shows the whole run.
    std::fs::write(dir.join("spans.otlp.jsonl"), "").unwrap();
    let (code, stderr) = serve(&["--listen", "0.0.0.0:0", dir.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("--public"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_in_headless_chromium() {
    let _ = browser::chromium();
    let s = served().await;
    // A failed request's trace: the most there is to see in it.
    let id = s
        .requests
        .iter()
        .find(|r| r["error"] == true)
        .expect("some request failed")["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let truth = s.traces.iter().find(|t| t.trace_id.to_hex() == id).unwrap();
    let proxy = CountingProxy::start();

    // The search page opened with a trace id, as a link to it would be.
    let run = browse(
        &format!("{}/?trace_id={id}", s.base),
        "--dump-dom",
        &proxy,
        "1280,1000",
        true,
    );
    assert_eq!(run.console_lines(), Vec::<&str>::new(), "{}", run.log);
    let dom = &run.dom;
    for service in ["db", "orders", "web", "loadgen"] {
        assert!(
            dom.contains(&format!("<tr data-service=\"{service}\">")),
            "services table lists {service}"
        );
    }
    assert_eq!(dom.matches("<tr data-trace-id=").count(), 1, "one result");
    assert!(dom.contains(&format!("<tr data-trace-id=\"{id}\"")));
    assert!(dom.contains(&format!("href=\"/trace/{id}\"")));
    assert!(dom.contains("1 traces match"), "the count is shown");

    // Its waterfall.
    let run = browse(
        &format!("{}/trace/{id}", s.base),
        "--dump-dom",
        &proxy,
        "1280,1000",
        true,
    );
    assert_eq!(run.console_lines(), Vec::<&str>::new(), "{}", run.log);
    assert_eq!(
        run.dom.matches("<div class=\"span-row").count(),
        truth.spans.len()
    );
    // Nothing but the console itself was asked for anything.
    assert_eq!(proxy.requests(), Vec::<String>::new());

    // Screenshots for people (docs/console.md shows them).
    for (url, name) in [
        (format!("{}/?errors=1", s.base), "console-search.png"),
        (format!("{}/trace/{id}", s.base), "console-trace.png"),
    ] {
        let path = artifacts_dir().join(name);
        let _ = std::fs::remove_file(&path);
        let run = browse(
            &url,
            &format!("--screenshot={}", path.display()),
            &proxy,
            "1280,900",
            true,
        );
        assert_eq!(run.console_lines(), Vec::<&str>::new(), "{}", run.log);
        assert_png(&path);
    }
    s.stop.cancel();
}
