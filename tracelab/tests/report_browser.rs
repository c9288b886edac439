//! `report.html` in a real browser: headless Chromium opens the report of a real run and we
//! check that the page loads with no console message and no network request, shows one
//! waterfall per trace the analysis picked, and that opening a span (through the page's
//! `#span=<id>` deep link) shows its attributes; the same with a baseline run shows the
//! comparison section under the same rules. Screenshots are kept under
//! `target/test-artifacts/` for a person to look at.
//!
//! Chromium comes from the system (`.ci/test` installs Debian's `chromium` when it is missing);
//! `TRACELAB_CHROMIUM=/path/to/chrome` picks another binary. Without a browser this test fails
//! rather than passing silently.
//!
//! How each property is observed, with nothing but command-line flags:
//! - the DOM after the page's script ran: `--dump-dom`;
//! - console messages: `--enable-logging=stderr` prints every one as a `…:CONSOLE(…)` line
//!   (headless Chromium logs them all at INFO, whatever their level, so any such line counts;
//!   the report has no reason to log anything);
//! - network requests: every request goes to a proxy that is a local listener counting
//!   connections, loopback included (`<-loopback>`); a `file://` page reaches it only when it
//!   fetches something. Chromium's own update, sign-in and clock services bypass the proxy and
//!   resolve to nothing, so they cannot be mistaken for the page's requests.
//!
//! A scratch page that logs, throws and fetches proves each detector can fail.

mod browser;

use std::process::Command;
use std::time::Duration;

use browser::{
    CountingProxy, artifacts_dir, assert_png, browse, chromium, file_url, scratch_dir, start_tag,
};

use tokio_util::sync::CancellationToken;
use tracelab::run::{RunOptions, run_lab};
use tracelab_receiver::ReceiverConfig;
use tracelab_telemetry::OtlpProtocol;
use tracelab_trace::{SpanKind, TraceId};

const SCENARIO: &str = r#"
# A small shop whose database (two instances) fails now and then: the report has slow and
# failed traces, and a table by instance.
name: browser-report
seed: 5
services:
  web:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: orders, route: /order}
          - work: render
            latency: {constant: 1}
  orders:
    routes:
      /order:
        latency: {uniform: {min_ms: 1, max_ms: 4}}
        steps:
          - {call: db, route: /query}
  db:
    replicas: 2
    routes:
      /query:
        latency: {exponential: {mean_ms: 3}}
        errors: {rate: 0.3, status: 500}
load:
  rate: 25
  duration: 2s
  entries:
    - {service: web, route: /}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_html_in_headless_chromium() {
    // Fail early, before the run, when there is no browser.
    let _ = chromium();
    let scenario =
        tracelab_scenario::parse(SCENARIO, "browser-report.yaml").expect("valid scenario");
    let outcome = run_lab(
        RunOptions {
            scenario,
            scenario_source: SCENARIO.to_string(),
            scenario_file: "browser-report.yaml".into(),
            out: scratch_dir("run"),
            protocol: OtlpProtocol::HttpProtobuf,
            receiver: ReceiverConfig::ephemeral(),
            progress: false,
            settle_timeout: Duration::from_secs(15),
            keep_traces: true,
        },
        CancellationToken::new(),
    )
    .await
    .expect("run succeeds");
    let a = &outcome.analysis;
    assert!(
        !a.failing_traces.is_empty(),
        "the scenario produces failures"
    );
    let report = outcome.dir.join("report.html");
    let html = std::fs::read_to_string(&report).expect("report.html written by the run");
    assert!(
        html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"),
        "the page forbids itself every request"
    );

    // The waterfalls the analysis picked: the slowest traces and the failing ones, each once.
    let mut expected: Vec<TraceId> = Vec::new();
    for t in a.slowest_traces.iter().chain(&a.failing_traces) {
        if !expected.contains(&t.trace_id) {
            expected.push(t.trace_id);
        }
    }

    // The span to open: the failing database call of the first failed trace.
    let failing_id = a.failing_traces[0].trace_id;
    let failing = outcome
        .traces
        .iter()
        .find(|t| t.trace_id == failing_id)
        .expect("failing trace received");
    let db = failing
        .spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.service_name.as_ref() == "db" && s.is_error())
        .expect("the failing trace holds the failed db span");
    let span_id = db.span_id.to_hex();

    let proxy = CountingProxy::start();
    let url = format!("{}#span={span_id}", file_url(&report));
    let run = browse(&url, "--dump-dom", &proxy, "1280,2400", false);
    let dom = &run.dom;
    assert!(
        dom.contains("</html>"),
        "a whole DOM was dumped: {dom:.200}"
    );
    let instances = start_tag(dom, "id=\"instances\"").expect("h3#instances: db ran two");
    assert!(instances.starts_with("<h3"), "{instances}");
    assert_eq!(a.instances.len(), 2, "{:?}", a.instances);

    // One waterfall per picked trace, in the order the analysis gave.
    let sections: Vec<&str> = dom
        .match_indices("<section class=\"trace")
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(at, _)| start_tag(&dom[at..], "section").unwrap())
        .collect();
    assert_eq!(sections.len(), expected.len(), "one waterfall per trace");
    for (tag, id) in sections.iter().zip(&expected) {
        assert!(tag.contains(&format!("data-trace-id=\"{id}\"")), "{tag}");
    }

    // The deep link opened the db span: its row is expanded and its details list its
    // attributes. Only that span is open.
    let row = start_tag(dom, &format!("data-span-id=\"{span_id}\"")).expect("row of the span");
    assert!(row.contains("aria-expanded=\"true\""), "{row}");
    assert_eq!(
        dom.matches("class=\"span-details\"").count(),
        1,
        "exactly the linked span is open"
    );
    let after_row = &dom[dom.find(row).unwrap() + row.len()..];
    let details_at = after_row
        .find("<div class=\"span-details\"")
        .expect("details follow the row");
    let details = &after_row[details_at..];
    let details = &details[..details.find("class=\"span-row").unwrap_or(details.len())];
    assert!(
        after_row[..details_at].find("class=\"span-row").is_none(),
        "the details sit right after their row"
    );
    for expected_pair in [
        "<dt>http.route</dt><dd>/query</dd>",
        "<dt>http.response.status_code</dt><dd>500</dd>",
        "<dt>status</dt><dd>error",
        "<dt>kind</dt><dd>SERVER</dd>",
    ] {
        assert!(
            details.contains(expected_pair),
            "span details show {expected_pair}: {details}"
        );
    }
    assert!(
        details.contains(&format!("href=\"#span={span_id}\"")),
        "the details link to themselves"
    );

    assert_eq!(
        run.console_lines(),
        Vec::<&str>::new(),
        "the page logs nothing to the console"
    );

    // Screenshots for people: the top of the report, and the opened span. Headless Chromium
    // captures a scrolled page as blank, so the deep link is shown in a frame: the frame
    // scrolls, the captured page does not.
    let artifacts = artifacts_dir();
    let top = artifacts.join("report.png");
    let opened = artifacts.join("report-span.png");
    let frame = outcome.dir.join("frame.html");
    std::fs::write(
        &frame,
        format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>frame</title>\
<style>html,body{{margin:0}}iframe{{border:0;width:100vw;height:100vh;display:block}}</style>\
</head><body><iframe src=\"{url}\"></iframe></body></html>"
        ),
    )
    .unwrap();
    for (url, path, window) in [
        (file_url(&report), &top, "1280,2400"),
        (file_url(&frame), &opened, "1280,1400"),
    ] {
        let _ = std::fs::remove_file(path);
        let run = browse(
            &url,
            &format!("--screenshot={}", path.display()),
            &proxy,
            window,
            false,
        );
        assert_eq!(run.console_lines(), Vec::<&str>::new());
        assert_png(path);
    }

    // The report with a baseline (the run against itself): the comparison section renders
    // under the same policy, with no console message and no request.
    let compared = outcome.dir.join("report-compared.html");
    let out = Command::new(env!("CARGO_BIN_EXE_tracelab"))
        .arg("report")
        .arg(&outcome.dir)
        .arg("--baseline")
        .arg(&outcome.dir)
        .arg("--out")
        .arg(&compared)
        .arg("--quiet")
        .output()
        .expect("tracelab runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = browse(
        &file_url(&compared),
        "--dump-dom",
        &proxy,
        "1280,2400",
        false,
    );
    let section = start_tag(&run.dom, "id=\"diff\"").expect("section#diff");
    assert!(section.starts_with("<section"), "{section}");
    assert!(
        run.dom.contains("No operation changed."),
        "a run does not differ from itself"
    );
    assert_eq!(run.console_lines(), Vec::<&str>::new());

    // Give a request that was still on its way time to reach the proxy.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        proxy.requests(),
        Vec::<String>::new(),
        "the report made no network request"
    );
}

/// The detectors above must be able to fail: a page that logs, throws and fetches trips all
/// of them.
#[test]
fn detectors_catch_a_misbehaving_page() {
    let dir = scratch_dir("negative");
    let page = dir.join("misbehaving.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>scratch</title></head><body>\
<p>scratch</p><img src=\"http://tracelab-test.invalid/pixel.png\" alt=\"\">\
<script>console.error(\"deliberate console error\");\
throw new Error(\"deliberate uncaught error\");</script></body></html>",
    )
    .unwrap();
    let proxy = CountingProxy::start();
    let run = browse(&file_url(&page), "--dump-dom", &proxy, "800,600", false);
    let console = run.console_lines();
    assert!(
        console
            .iter()
            .any(|l| l.contains("deliberate console error")),
        "console.error is caught: {}",
        run.log
    );
    assert!(
        console.iter().any(|l| l.contains("Uncaught")),
        "an uncaught exception is caught: {}",
        run.log
    );
    std::thread::sleep(Duration::from_millis(200));
    let requests = proxy.requests();
    assert!(
        requests.iter().any(|r| r.contains("tracelab-test.invalid")),
        "the image request reached the proxy: {requests:?}"
    );
}
