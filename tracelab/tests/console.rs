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
    // The call graph: one edge per caller and callee the CLIENT spans name, with their counts.
    let edges: Vec<(String, String, u64)> = overview["graph"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["caller"].as_str().unwrap().to_string(),
                e["callee"].as_str().unwrap().to_string(),
                e["total"].as_u64().unwrap(),
            )
        })
        .collect();
    let calls = |caller: &str, callee: &str| {
        s.traces
            .iter()
            .flat_map(|t| &t.spans)
            .filter(|s| {
                &*s.service_name == caller
                    && s.kind == tracelab_trace::SpanKind::Client
                    && s.attr("peer.service").and_then(|v| v.as_str()) == Some(callee)
            })
            .count() as u64
    };
    assert_eq!(
        edges,
        [("loadgen", "web"), ("orders", "db"), ("web", "orders"),].map(|(a, b)| (
            a.to_string(),
            b.to_string(),
            calls(a, b)
        ))
    );
    assert_eq!(edges[0].2, 80);

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
    assert!(dom.contains("1 trace matches"), "the count is shown");
    assert!(
        dom.contains("data-edge=\"orders→db\""),
        "the service graph is drawn"
    );

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

/// Runs `tracelab/tests/browser/cdp.py` (headless Chromium through the DevTools protocol) on
/// `url` with `steps`; its results, one per step.
fn drive(url: &str, steps: Value) -> Vec<Value> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/cdp.py");
    let python = std::env::var("TRACELAB_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(browser::chromium())
        .arg(url)
        .arg(steps.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the browser steps failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the steps' results")
}

const LIVE_SCENARIO: &str = r#"
# The console's live test: three services in a row, a steady 40 requests a second.
name: console-live
seed: 3
services:
  web:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: orders, route: /order}
  orders:
    routes:
      /order:
        latency: {uniform: {min_ms: 1, max_ms: 3}}
        steps:
          - {call: db, route: /query}
  db:
    routes:
      /query:
        latency: {exponential: {mean_ms: 2}}
load:
  rate: 40
  duration: 15s
  entries:
    - {service: web, route: /}
"#;

/// `tracelab run FILE --ui --ui-linger 60s`, as a user types it, watched and driven in headless Chromium: the page
/// shows every service, its figures move, the fault button raises a service's error rate on
/// the page within 3 s and lands in incidents.jsonl, and a trace id from requests.jsonl opens
/// its waterfall with the span count of the span file.
#[test]
fn the_live_console_in_headless_chromium() {
    use std::io::BufRead as _;

    let _ = browser::chromium();
    let dir = scratch_dir("live");
    let scenario = dir.join("console-live.yaml");
    std::fs::write(&scenario, LIVE_SCENARIO).unwrap();
    // The command as a user types it, from the directory holding the scenario: the run
    // directory is the default one under runs/, the OTLP ports the default ones (or free
    // ones, said so, when those are taken).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .current_dir(&dir)
        .args(["run", "console-live.yaml", "--ui", "--ui-linger", "60s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The address is on stderr; the rest of stderr is kept for a failure's message.
    let (found, address) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(std::sync::Mutex::new(String::new()));
    let logging = log.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.strip_prefix("console: http://") {
                let url = url.split_whitespace().next().unwrap_or("").to_string();
                let _ = found.send(format!("http://{url}"));
            }
            logging.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let url = address
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no console address; stderr: {}", log.lock().unwrap()));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let row = |service: &str, cell: &str| {
        format!("document.querySelector('#live-services tr[data-name={service}] td.{cell}')")
    };
    let total = "document.querySelector('#live-entries tr td.total')?.textContent";
    let live = drive(
        &url,
        serde_json::json!([
            {"wait_for": "document.querySelector('#live-status')?.dataset.state === 'running' && \
                ['web', 'orders', 'db'].every(s => parseFloat(document.querySelector(\
                `#live-services tr[data-name=\"${s}\"] td.rate`)?.textContent) > 0)", "timeout": 20},
            {"eval": format!("window.before = {total}")},
            {"wait_for": format!("{total} !== window.before"), "timeout": 5},
            {"eval": format!(
                "window.db = parseFloat({}.textContent); \
                 document.querySelector('button[data-fault=error][data-service=db]').click(); window.db",
                row("db", "error-rate")
            )},
            {"wait_for": format!("parseFloat({}.textContent) >= window.db + 5", row("db", "error-rate")), "timeout": 3},
            {"wait_for": format!("{}.textContent.includes('error (console)')", row("db", "faults")), "timeout": 3},
            {"wait_for": "document.querySelectorAll('#latency-chart rect.incident').length", "timeout": 3},
            {"wait_for": "document.querySelector('#service-graph g.edge.failing[data-edge=\"orders→db\"]') !== null \
                && document.querySelector('#service-graph g.edge[data-edge=\"web→orders\"]') !== null \
                && document.querySelectorAll('#service-graph g.node').length === 4", "timeout": 3},
            {"screenshot": artifacts_dir().join("console-live.png").display().to_string()},
            {"eval": "document.querySelector('button[data-fault=clear][data-service=db]').click(), 1"},
        ]),
    );
    // The figures moved (step 3 saw the entry's total change) and nothing failed before.
    assert_eq!(live[2]["value"], true);
    assert_eq!(live[3].as_f64(), Some(0.0), "no error before the fault");
    let seconds = live[4]["seconds"].as_f64().unwrap();
    eprintln!("the page showed db's error rate rise {seconds:.2} s after the click");
    assert!(seconds <= 3.0);
    assert_png(&artifacts_dir().join("console-live.png"));

    // Once the run has ended: a request's trace, searched by its id, opens with its spans.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let run_dir = || {
        let mut dirs: Vec<_> = std::fs::read_dir(dir.join("runs"))
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(dirs.len() <= 1, "one run, one run directory: {dirs:?}");
        dirs.pop()
    };
    while !run_dir().is_some_and(|out| out.join("report.json").is_file()) {
        assert!(std::time::Instant::now() < deadline, "the run did not end");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = run_dir().expect("the run directory");
    let requests = std::fs::read_to_string(out.join("requests.jsonl")).unwrap();
    let request: Value = serde_json::from_str(requests.lines().nth(100).unwrap()).unwrap();
    let id = request["trace_id"].as_str().unwrap().to_string();
    let spans = group_into_traces(otlp_json::read_file(&out.join("spans.otlp.jsonl")).unwrap())
        .into_iter()
        .find(|t| t.trace_id.to_hex() == id)
        .expect("the request's trace")
        .spans
        .len();
    let link = format!("document.querySelector('#results tr[data-trace-id=\"{id}\"] a')");
    let opened = drive(
        &format!("{url}?trace_id={id}"),
        serde_json::json!([
            {"wait_for": "document.querySelector('#live-status')?.dataset.state === 'finished'", "timeout": 10},
            {"wait_for": format!("{link} !== null"), "timeout": 5},
            {"eval": format!("{link}.click(), 1")},
            // The trace's page as a user sees it once loaded: the parser may yield (and an
            // evaluation run) before the last rows of the page are in.
            {"wait_for": "document.readyState === 'complete' && document.querySelectorAll('div.span-row').length", "timeout": 5},
        ]),
    );
    assert_eq!(opened[3]["value"], spans);

    // Ctrl-C ends the lingering console; the run itself had succeeded.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", log.lock().unwrap());
    let incidents = std::fs::read_to_string(out.join("incidents.jsonl")).unwrap();
    let windows: Vec<Value> = incidents
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(windows.len(), 1, "{incidents}");
    assert_eq!(windows[0]["source"], "console");
    assert_eq!(windows[0]["service"], "db");
    assert!(
        windows[0]["what"]
            .as_str()
            .unwrap()
            .starts_with("error 503")
    );
}
