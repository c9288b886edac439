//! The HTML report: self-contained, safe against hostile span data, and light on big runs.

use std::collections::HashSet;

use serde_json::json;
use tracelab_analysis::{AnalysisOptions, HtmlReportInput, ShadedWindow, analyze, render_html};
use tracelab_trace::{AttrValue, Attribute, Event, SpanKind, Trace};

use crate::support::{EPOCH, MS, failed, kind, span, trace};

/// Trace `n` of a synthetic run: ten spans over four services, a failure in every 7th trace,
/// one request started every millisecond.
fn synthetic(n: u64) -> Trace {
    let b = n; // one request per millisecond
    let slow = (n * 7919) % 97;
    let id = |k: u64| k;
    let mut spans = vec![
        kind(
            span(n, id(1), None, "frontend", "GET /", b, b + 60 + slow),
            SpanKind::Server,
        ),
        kind(
            span(
                n,
                id(2),
                Some(1),
                "frontend",
                "call api",
                b + 1,
                b + 50 + slow,
            ),
            SpanKind::Client,
        ),
        kind(
            span(n, id(3), Some(2), "api", "GET /api", b + 2, b + 49 + slow),
            SpanKind::Server,
        ),
        span(n, id(4), Some(3), "api", "validate", b + 3, b + 5),
        kind(
            span(n, id(5), Some(3), "api", "call db", b + 6, b + 40 + slow),
            SpanKind::Client,
        ),
        kind(
            span(n, id(6), Some(5), "db", "SELECT", b + 7, b + 39 + slow),
            SpanKind::Server,
        ),
        kind(
            span(n, id(7), Some(3), "api", "call cache", b + 6, b + 10),
            SpanKind::Client,
        ),
        kind(
            span(n, id(8), Some(7), "cache", "GET", b + 7, b + 9),
            SpanKind::Server,
        ),
        span(
            n,
            id(9),
            Some(1),
            "frontend",
            "render",
            b + 51 + slow,
            b + 58 + slow,
        ),
        span(
            n,
            id(10),
            Some(9),
            "frontend",
            "template",
            b + 52 + slow,
            b + 57 + slow,
        ),
    ];
    if n.is_multiple_of(7) {
        spans[5] = failed(spans[5].clone(), "deadlock");
        spans[4] = failed(spans[4].clone(), "db error");
    }
    trace(spans)
}

#[test]
fn a_100k_span_run_embeds_only_the_traces_it_shows() {
    let traces: Vec<Trace> = (1..=10_000).map(synthetic).collect();
    assert_eq!(traces.iter().map(|t| t.spans.len()).sum::<usize>(), 100_000);
    let a = analyze(&traces, &AnalysisOptions::default());
    let incidents = [ShadedWindow {
        start_unix_nano: EPOCH + 2_000 * MS,
        end_unix_nano: EPOCH + 4_000 * MS,
        label: "db: +50 ms".into(),
    }];
    let sampling = json!([
        {"strategy": "head 10%", "spans_kept": 0.1, "recall_errors": 0.1, "recall_slow": 0.09, "recall_incident": 0.11},
        {"strategy": "tail errors+slow", "spans_kept": 0.2, "recall_errors": 1.0, "recall_slow": 0.95, "recall_incident": 0.6},
    ]);
    let summary =
        json!({"requests": 10000, "errors": 1428, "latency_ms": {"p50": 100, "p99": 150}});
    let input = HtmlReportInput {
        summary: Some(&summary),
        incidents: &incidents,
        sampling: Some(&sampling),
        ..HtmlReportInput::new("synthetic run", &a, &traces)
    };
    let page = render_html(&input);
    // Set this to look at the page in a browser, or to run browser checks against it.
    if let Some(path) = std::env::var_os("TRACELAB_REPORT_SAMPLE") {
        std::fs::write(path, &page).expect("write the sample report");
    }

    let expected: HashSet<_> = a
        .slowest_traces
        .iter()
        .chain(&a.failing_traces)
        .map(|t| t.trace_id.to_hex())
        .collect();
    assert_eq!(a.slowest_traces.len(), 5);
    assert_eq!(a.failing_traces.len(), 5);
    let sections = page
        .matches("<section class=\"trace\" data-trace-id=")
        .count();
    assert_eq!(sections, expected.len());
    for id in &expected {
        assert!(
            page.contains(&format!("data-trace-id=\"{id}\"")),
            "{id} missing"
        );
    }
    let data_start = page
        .find("<script type=\"application/json\" id=\"tracelab-data\">")
        .unwrap();
    let data_json = &page[data_start..];
    let data_json =
        &data_json[data_json.find('>').unwrap() + 1..data_json.find("</script>").unwrap()];
    let data: serde_json::Value = serde_json::from_str(data_json).unwrap();
    let embedded = data["traces"].as_object().unwrap();
    assert_eq!(
        embedded.len(),
        expected.len(),
        "only the shown traces are embedded"
    );
    assert_eq!(
        page.matches("class=\"span-row").count(),
        expected.len() * 10
    );

    assert!(page.contains("db: +50 ms"), "incident window label");
    assert!(page.contains("class=\"incident\""));
    assert!(page.contains("<polyline class=\"p99\""));
    assert!(page.contains("id=\"sampling\"") && page.contains("tail errors+slow"));
    assert!(
        page.contains("latency_ms.p99"),
        "nested summary fields are shown"
    );
    assert!(
        page.len() < 2_000_000,
        "page stays light: {} bytes",
        page.len()
    );
    assert_no_external_references(&page);
}

/// Every `src`/`href` must stay inside the page, and nothing may name a network location.
fn assert_no_external_references(page: &str) {
    // Attribute values are always quoted in the page; escaped text such as `src=x` taken from
    // a span name is not an attribute, since its `<` was escaped.
    for attr in ["src=\"", "href=\"", "src='", "href='", "action=\""] {
        for (at, _) in page.match_indices(attr) {
            let value = &page[at + attr.len()..];
            assert!(
                value.starts_with('#'),
                "external {attr} at {at}: {:?}",
                &value[..value.len().min(40)]
            );
        }
    }
    assert!(!page.contains("@import") && !page.contains("url(http"));
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
}

#[test]
fn hostile_span_data_cannot_break_out_of_the_page() {
    let payload = "</script><script>alert(1)</script>";
    let mut root = failed(
        span(
            1,
            1,
            None,
            "svc\"><img src=x onerror=alert(1)>",
            payload,
            0,
            10,
        ),
        payload,
    );
    root.attributes.push(Attribute {
        key: "http.url".into(),
        value: AttrValue::Str(format!("https://example.invalid/{payload}")),
    });
    root.events.push(Event {
        name: payload.into(),
        time_unix_nano: EPOCH + 5 * MS,
        attributes: vec![],
    });
    let traces = vec![trace(vec![
        root,
        span(1, 2, Some(1), "b", "<!-- child", 1, 9),
    ])];
    let a = analyze(&traces, &AnalysisOptions::default());
    let incidents = [ShadedWindow {
        start_unix_nano: EPOCH,
        end_unix_nano: EPOCH + 5 * MS,
        label: payload.into(),
    }];
    let input = HtmlReportInput {
        incidents: &incidents,
        ..HtmlReportInput::new(payload, &a, &traces)
    };
    let page = render_html(&input);
    assert!(!page.contains(payload), "raw payload must not appear");
    assert!(!page.contains("<img"));
    assert_eq!(
        page.matches("</script>").count(),
        2,
        "only the data and code elements close"
    );
    assert_eq!(page.matches("<script").count(), 2);
    assert!(
        page.contains("\\u003c/script\\u003e"),
        "the JSON keeps the text, escaped"
    );
    assert!(
        page.contains("&lt;/script&gt;"),
        "the HTML keeps the text, escaped"
    );
    assert_no_external_references(&page);
}

#[test]
fn span_rows_carry_the_documented_hooks() {
    let traces = vec![trace(vec![
        failed(span(3, 1, None, "a", "root", 0, 100), "boom"),
        span(3, 2, Some(1), "b", "fast", 10, 20),
        failed(span(3, 3, Some(1), "c", "slow", 10, 90), "boom"),
    ])];
    let a = analyze(&traces, &AnalysisOptions::default());
    let page = render_html(&HtmlReportInput::new("hooks", &a, &traces));
    let tid = traces[0].trace_id.to_hex();
    assert!(page.contains(&format!(
        "<section class=\"trace\" data-trace-id=\"{tid}\" id=\"trace-{tid}\">"
    )));
    let row = |id: u64| {
        let hook = format!("data-span-id=\"{}\"", crate::support::span_id(id));
        let at = page.find(&hook).unwrap_or_else(|| panic!("row {id}"));
        let open = page[..at].rfind("<div class=\"").unwrap();
        page[open..at].to_string()
    };
    assert_eq!(row(1), "<div class=\"span-row critical error\" ");
    assert_eq!(row(2), "<div class=\"span-row\" ");
    assert_eq!(row(3), "<div class=\"span-row critical error\" ");
    assert!(page.contains("label class=\"only-critical\""));
    // The script toggles details built with dt/dd from the embedded data.
    assert!(page.contains("span-details") && page.contains("\"dt\"") && page.contains("\"dd\""));
}

#[test]
fn summary_numbers_read_well() {
    let traces = vec![trace(vec![span(4, 1, None, "a", "root", 0, 100)])];
    let a = analyze(&traces, &AnalysisOptions::default());
    let summary = json!({
        "latency_ms": {"mean": 22.908480000000004, "p50": 15.5, "max": 77.0},
        "requests": 50,
        "rate": 0.0000125,
    });
    let mut input = HtmlReportInput::new("numbers", &a, &traces);
    input.summary = Some(&summary);
    let page = render_html(&input);
    for (key, shown) in [
        ("latency_ms.mean", "22.908"),
        ("latency_ms.p50", "15.5"),
        ("latency_ms.max", "77"),
        ("requests", "50"),
        ("rate", "1.25e-5"),
    ] {
        assert!(
            page.contains(&format!("<dt>{key}</dt><dd>{shown}</dd>")),
            "{key} shown as {shown}"
        );
    }
    assert!(!page.contains("22.90848"));
}

/// The quickstart's shape: a caller fanning out to three services, one of which is also called
/// two columns away. No edge label may cover a node or another label.
#[test]
fn service_graph_labels_do_not_overlap() {
    let traces = vec![trace(vec![
        span(5, 1, None, "frontend", "GET /buy", 0, 100),
        span(5, 2, Some(1), "checkout", "POST /checkout", 1, 99),
        span(5, 3, Some(2), "cart", "GET /cart", 2, 10),
        span(5, 4, Some(2), "payment", "POST /charge", 11, 80),
        span(5, 5, Some(2), "catalog", "GET /product", 81, 90),
        span(5, 6, Some(1), "catalog", "GET /products", 1, 5),
        span(5, 7, Some(1), "recommendations", "GET /recommend", 1, 6),
    ])];
    let a = analyze(&traces, &AnalysisOptions::default());
    let page = render_html(&HtmlReportInput::new("graph", &a, &traces));
    let svg = page
        .split("<section id=\"graph\">")
        .nth(1)
        .and_then(|s| s.split("</svg>").next())
        .expect("graph svg");
    let number = |tag: &str, attr: &str| -> f64 {
        let at = tag.find(&format!(" {attr}=\"")).expect(attr) + attr.len() + 3;
        tag[at..tag[at..].find('"').unwrap() + at].parse().unwrap()
    };
    // Boxes as (left, top, right, bottom): nodes from their rects, labels from their two
    // lines of text (10 px, about 5.5 px per character).
    let mut boxes: Vec<(String, [f64; 4])> = Vec::new();
    for node in svg.split("<g class=\"node\"").skip(1) {
        let rect = &node[node.find("<rect").unwrap()..];
        let (x, y) = (number(rect, "x"), number(rect, "y"));
        let (w, h) = (number(rect, "width"), number(rect, "height"));
        boxes.push(("node".into(), [x, y, x + w, y + h]));
    }
    let mut edges = 0;
    for edge in svg.split("<g class=\"edge").skip(1) {
        let texts: Vec<&str> = edge.split("<text").skip(1).collect();
        let first = texts[0];
        let label = &first[first.find('>').unwrap() + 1..first.find("</text>").unwrap()];
        let (x, y) = (number(first, "x"), number(first, "y"));
        let half = label.chars().count() as f64 * 5.5 / 2.0;
        boxes.push((label.to_string(), [x - half, y - 10.0, x + half, y + 12.0]));
        edges += 1;
    }
    assert_eq!(edges, 6);
    for (i, (a_name, a)) in boxes.iter().enumerate() {
        for (b_name, b) in &boxes[i + 1..] {
            let overlap = a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
            assert!(
                !overlap,
                "`{a_name}` {a:?} overlaps `{b_name}` {b:?} in\n{svg}"
            );
        }
    }
}

#[test]
fn nested_summary_values_are_compact_and_rounded() {
    let traces = vec![trace(vec![span(6, 1, None, "a", "root", 0, 100)])];
    let a = analyze(&traces, &AnalysisOptions::default());
    let summary = json!({
        "load": {
            "status_classes": {"2xx": {"count": 37, "latency_ms": {"mean": 32.688399999999994}}},
            "timeline": [{"second": 0, "p99_ms": 137.5991}, {"second": 1, "p99_ms": null}],
        },
    });
    let mut input = HtmlReportInput::new("nested", &a, &traces);
    input.summary = Some(&summary);
    let page = render_html(&input);
    assert!(
        page.contains(
            "<dt>load.status_classes</dt><dd>{2xx: {count: 37, latency_ms: {mean: 32.688}}}</dd>"
        ),
        "{page}"
    );
    assert!(page.contains(
        "<dt>load.timeline</dt><dd>[{p99_ms: 137.599, second: 0}, {p99_ms: null, second: 1}]</dd>"
    ));
    assert!(page.contains("<details class=\"run\">"));
}
