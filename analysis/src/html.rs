//! The HTML report: one self-contained file that opens offline.
//!
//! Everything is inline: CSS, vanilla JavaScript and SVG charts; a Content-Security-Policy
//! meta tag forbids the page from loading anything at all. Aggregation happens in Rust, so the
//! page embeds only the few traces it shows (as JSON in `<script type="application/json"
//! id="tracelab-data">`, with `<`, `>` and `&` escaped as `\u003c` etc.), and span details are
//! built only when a row is opened. A 100,000-span run yields a page of a few hundred kilobytes.
//!
//! # DOM hooks
//!
//! Tests and scripts may rely on these; they are part of the interface:
//! - every waterfall is `<section class="trace" data-trace-id="<32 hex>" id="trace-<32 hex>">`;
//! - every span in it is one `<div class="span-row" data-span-id="<16 hex>" data-index="<n>">`,
//!   with the extra classes `critical` (some of its time is on the critical path) and `error`
//!   (status Error), and `aria-expanded` telling whether its details are open;
//! - clicking a `.span-row` (or pressing Enter/Space on it) toggles a `<div class="span-details">`
//!   inserted right after the row on first use; it holds `<dl>` lists whose `<dt>`/`<dd>` pairs
//!   are the span's timings, attributes, then each event and link;
//! - the checkbox in `label.only-critical` of a section hides the rows off the critical path;
//! - opening the page as `report.html#span=<16 hex>` (or changing the hash to that later) opens
//!   that span's details, scrolls to its row and focuses it; every `.span-details` ends with
//!   such a link (`a.permalink`), so a span can be shared by its address;
//! - the report's sections are `section#summary`, `#diff` (only with a baseline run),
//!   `#timeline`, `#services` (with `#instances` when a service ran several), `#graph`, `#errors`, `#health`, `#sampling` (only with sampling
//!   rows) and `#traces`.

mod charts;
mod diff_view;
mod escape;
mod instances_view;
mod service_graph;
mod trace_view;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracelab_trace::{Trace, TraceId};

use crate::analysis::{Analysis, TraceSummary, trace_timings};
use crate::diff::RunDiff;
use crate::format::{ms, percent};
use crate::table::service_figures;
use crate::timeline::TimelinePoint;
use escape::html;

/// A stretch of the run during which something was deliberately broken, shaded on the charts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadedWindow {
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// What happened, e.g. `payments: +300 ms latency`.
    pub label: String,
}

/// What [`render_html`] needs. Build it with [`HtmlReportInput::new`] and set the optional
/// parts you have.
#[derive(Debug, Clone, Copy)]
pub struct HtmlReportInput<'a> {
    /// Page title, e.g. the scenario name.
    pub title: &'a str,
    /// The analysis of the run.
    pub analysis: &'a Analysis,
    /// The run's traces; only those listed in `analysis.slowest_traces` and
    /// `analysis.failing_traces` are read. Passing every trace is fine.
    pub traces: &'a [Trace],
    /// The run summary to show beside the analysis's own numbers (any JSON object; nested
    /// objects are shown one level deep).
    pub summary: Option<&'a Value>,
    /// Per-second latency; `None` uses `analysis.timeline`, computed from the root spans.
    pub timeline: Option<&'a [TimelinePoint]>,
    /// Incident windows to shade on the timeline.
    pub incidents: &'a [ShadedWindow],
    /// Sampling comparison: a JSON array of objects, each with a `strategy` (or `name`) string
    /// and numeric fields; fields whose values all lie in 0..=1 are drawn as percentage bars.
    pub sampling: Option<&'a Value>,
    /// What changed since an earlier run, shown as "Changes from the baseline".
    pub diff: Option<&'a RunDiff>,
}

impl<'a> HtmlReportInput<'a> {
    /// The required parts; everything optional left out.
    pub fn new(title: &'a str, analysis: &'a Analysis, traces: &'a [Trace]) -> Self {
        HtmlReportInput {
            title,
            analysis,
            traces,
            summary: None,
            timeline: None,
            incidents: &[],
            sampling: None,
            diff: None,
        }
    }
}

const CSS: &str = include_str!("html/report.css");
const JS: &str = include_str!("html/report.js");

/// Renders the whole report as one HTML document.
pub fn render_html(input: &HtmlReportInput) -> String {
    let a = input.analysis;
    let mut page = String::with_capacity(64 * 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
<meta name=\"color-scheme\" content=\"light dark\">\n<title>{} — tracelab report</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n\
<header><h1>{}</h1><p class=\"meta\">tracelab report · {} traces · {} spans · {} services</p>\n\
<nav><a href=\"#summary\">Summary</a>{} <a href=\"#timeline\">Timeline</a> <a href=\"#services\">Services</a> <a href=\"#graph\">Graph</a> <a href=\"#errors\">Errors</a> <a href=\"#health\">Health</a>{} <a href=\"#traces\">Traces</a></nav></header>\n<main>\n",
        html(input.title),
        html(input.title),
        a.overview.traces,
        a.overview.spans,
        a.overview.services,
        if input.diff.is_some() {
            " <a href=\"#diff\">Changes</a>"
        } else {
            ""
        },
        if input.sampling.is_some() {
            " <a href=\"#sampling\">Sampling</a>"
        } else {
            ""
        },
    );
    summary_section(&mut page, a, input.summary);
    if let Some(diff) = input.diff {
        diff_view::diff_section(&mut page, diff);
    }
    let timeline = input.timeline.unwrap_or(&a.timeline);
    let _ = write!(
        page,
        "<section id=\"timeline\"><h2>Latency over time</h2>\n<p class=\"help\">Each second of the run: the median (p50) and 99th-percentile (p99) end-to-end time of the requests that started in it, and how many of them failed. Shaded bands are incident windows.</p>\n{}</section>\n",
        charts::timeline_svg(timeline, input.incidents)
    );
    services_section(&mut page, a);
    let _ = write!(
        page,
        "<section id=\"graph\"><h2>Service graph</h2>\n<p class=\"help\">Who calls whom. Arrows go from caller to callee; thicker arrows carry more calls, red ones fail at least 5 % of the time. Hover an arrow for its numbers.</p>\n{}</section>\n",
        service_graph::service_graph_svg(&a.graph, &a.services)
    );
    errors_section(&mut page, a);
    health_section(&mut page, a);
    if let Some(rows) = input.sampling {
        let _ = write!(
            page,
            "<section id=\"sampling\"><h2>Sampling strategies compared</h2>\n<p class=\"help\">What each strategy would keep, and how many of the interesting traces (failed, slow, during an incident) it would still catch.</p>\n{}</section>\n",
            charts::sampling_section(rows)
        );
    }
    traces_section(&mut page, input);
    let _ = write!(
        page,
        "</main>\n<footer class=\"meta\">Generated by tracelab. This file is self-contained and works offline.</footer>\n<script>\n{JS}</script>\n</body>\n</html>\n"
    );
    page
}

/// One trace's waterfall as a page of its own, with the report's styles and script (the same
/// DOM hooks as a waterfall in the report), for the console. `context` leads its line of
/// facts (the run's name, say); `back` is a link (address, text) shown above it.
pub fn render_trace_page(trace: &Trace, context: &str, back: Option<(&str, &str)>) -> String {
    let timings = trace_timings(trace);
    let summary =
        crate::document::summary_with_tree(trace, &crate::tree::SpanTree::new(trace), &timings);
    let (section, json) = trace_view::trace_section(trace, &timings, &summary, context);
    let mut data = Map::new();
    data.insert(trace.trace_id.to_hex(), json);
    let data = serde_json::json!({ "traces": data });
    let mut page = String::with_capacity(16 * 1024 + section.len());
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
<meta name=\"color-scheme\" content=\"light dark\">\n<link rel=\"icon\" href=\"data:,\">\n<title>{} {} — tracelab</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<header>{}</header>\n<main>\n{section}\
<script type=\"application/json\" id=\"tracelab-data\">{}</script>\n</main>\n<script>\n{JS}</script>\n</body>\n</html>\n",
        html(&summary.operation),
        trace.trace_id.to_hex(),
        back.map(|(href, label)| format!(
            "<nav><a href=\"{}\">{}</a></nav>",
            html(href),
            html(label)
        ))
        .unwrap_or_default(),
        escape::script_json(&data),
    );
    page
}

fn card(page: &mut String, label: &str, value: &str) {
    let _ = write!(
        page,
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div></div>",
        html(label),
        html(value)
    );
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            // Integers print as they are; other numbers are rounded so that a mean of
            // 22.908480000000004 reads as 22.908.
            Some(f) if n.is_f64() => readable_float(f),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A nested summary value on one line, numbers rounded like [`scalar`]'s, keys and strings
/// unquoted: `{count: 37, latency_ms: {p50: 21.871, p99: 137.599}}`.
fn compact(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(compact).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", compact(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Null => "null".to_string(),
        scalar_value => scalar(scalar_value).unwrap_or_default(),
    }
}

/// `f` with at most three decimals and no trailing zeros; tiny values in scientific notation.
fn readable_float(f: f64) -> String {
    if f != 0.0 && f.abs() < 0.001 {
        return format!("{f:.2e}");
    }
    let text = format!("{f:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

fn summary_section(page: &mut String, a: &Analysis, summary: Option<&Value>) {
    let o = &a.overview;
    page.push_str("<section id=\"summary\"><h2>Summary</h2>\n<div class=\"cards\">");
    card(page, "requests (traces)", &o.traces.to_string());
    card(
        page,
        "failed",
        &format!(
            "{} ({})",
            o.failed_traces,
            percent(crate::graph::ratio(o.failed_traces, o.traces))
        ),
    );
    card(page, "p50", &ms(o.duration.p50_ns));
    card(page, "p90", &ms(o.duration.p90_ns));
    card(page, "p99", &ms(o.duration.p99_ns));
    card(page, "max", &ms(o.duration.max_ns));
    card(
        page,
        "complete traces",
        &a.health.complete_traces.to_string(),
    );
    card(page, "broken traces", &a.health.broken_traces.to_string());
    page.push_str("</div>\n");
    if let Some(Value::Object(fields)) = summary {
        // Closed by default: the cards above carry the headline numbers, and a run's own
        // record (load statistics per entry, per status class, per second) is long.
        page.push_str("<details class=\"run\"><summary>Run: everything the run recorded</summary>\n<dl class=\"kv\">");
        summary_fields(page, "", fields, 0);
        page.push_str("</dl></details>\n");
    }
    page.push_str("</section>\n");
}

fn summary_fields(page: &mut String, prefix: &str, fields: &Map<String, Value>, depth: usize) {
    for (k, v) in fields {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            Value::Object(inner) if depth == 0 => summary_fields(page, &key, inner, 1),
            _ => {
                let text = scalar(v).unwrap_or_else(|| compact(v));
                let _ = write!(page, "<dt>{}</dt><dd>{}</dd>", html(&key), html(&text));
            }
        }
    }
}

fn services_section(page: &mut String, a: &Analysis) {
    let w = &a.share_windows;
    let _ = write!(
        page,
        "<section id=\"services\"><h2>Where the time goes</h2>\n<p class=\"help\">Services ranked by their share of the critical path in the slowest requests: of all the critical-path time of the {} requests at or above the p99 ({}), the part spent in the service's own work. The p50 share is the same over {} typical requests ({} to {}). A service with a large share is what the slow requests wait for.</p>\n<table><thead><tr><th>#</th><th>service</th><th>share p99</th><th class=\"num\">share p50</th><th class=\"num\">requests</th><th class=\"num\">errors</th><th class=\"num\">p50</th><th class=\"num\">p99</th></tr></thead><tbody>",
        w.p99_traces,
        ms(w.p99_threshold_ns),
        w.p50_traces,
        ms(w.p50_low_ns),
        ms(w.p50_high_ns),
    );
    for (i, s) in a.services.iter().enumerate() {
        let [share_p99, share_p50, requests, errors, p50, p99] = service_figures(s);
        let _ = write!(
            page,
            "<tr><td>{}</td><td><span class=\"dot\" style=\"--hue:{}\"></span>{}</td><td><span class=\"share\"><span style=\"width:{:.1}%\"></span></span> {share_p99}</td><td class=\"num\">{share_p50}</td><td class=\"num\">{requests}</td><td class=\"num\">{errors}</td><td class=\"num\">{p50}</td><td class=\"num\">{p99}</td></tr>",
            i + 1,
            escape::hue(&s.service),
            html(&s.service),
            s.critical_share_p99 * 100.0,
        );
    }
    page.push_str("</tbody></table>\n<details><summary>Operations</summary>\n<table><thead><tr><th>service</th><th>operation</th><th class=\"num\">share p99</th><th class=\"num\">share p50</th><th class=\"num\">count</th><th class=\"num\">errors</th><th class=\"num\">p50</th><th class=\"num\">p99</th><th class=\"num\">self p50</th></tr></thead><tbody>");
    for o in a.operations.iter().take(50) {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            html(&o.service),
            html(&o.operation),
            percent(o.critical_share_p99),
            percent(o.critical_share_p50),
            o.count,
            percent(o.error_rate),
            ms(o.latency.p50_ns),
            ms(o.latency.p99_ns),
            ms(o.self_time.p50_ns),
        );
    }
    page.push_str("</tbody></table></details>\n");
    instances_view::instances_table(page, a);
    page.push_str("</section>\n");
}

fn trace_link(id: &TraceId, shown: &HashSet<TraceId>) -> String {
    if shown.contains(id) {
        format!("<a href=\"#trace-{id}\"><code>{id}</code></a>")
    } else {
        format!("<code>{id}</code>")
    }
}

fn shown_ids(a: &Analysis) -> HashSet<TraceId> {
    a.slowest_traces
        .iter()
        .chain(&a.failing_traces)
        .map(|t| t.trace_id)
        .collect()
}

fn errors_section(page: &mut String, a: &Analysis) {
    let shown = shown_ids(a);
    page.push_str("<section id=\"errors\"><h2>Where errors start</h2>\n<p class=\"help\">For each failed request, the deepest failing span none of whose children failed: the likely origin. Callers that only passed the failure on are not counted.</p>\n");
    if a.error_origins.is_empty() {
        page.push_str("<p>No failed requests.</p></section>\n");
        return;
    }
    page.push_str("<table><thead><tr><th>service</th><th>operation</th><th class=\"num\">failed requests</th><th>instances</th><th>examples</th></tr></thead><tbody>");
    for o in a.error_origins.iter().take(30) {
        let examples: Vec<String> = o
            .example_trace_ids
            .iter()
            .map(|t| trace_link(t, &shown))
            .collect();
        let instances: Vec<String> = o
            .instances
            .iter()
            .map(|i| {
                format!(
                    "<code>{}</code> ({}) {}",
                    html(&i.instance),
                    html(&i.version),
                    i.traces
                )
            })
            .collect();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            html(&o.service),
            html(&o.operation),
            o.traces,
            instances.join("<br>"),
            examples.join(" ")
        );
    }
    page.push_str("</tbody></table>\n</section>\n");
}

fn health_section(page: &mut String, a: &Analysis) {
    let h = &a.health;
    let shown = shown_ids(a);
    page.push_str("<section id=\"health\"><h2>Trace health</h2>\n<p class=\"help\">Whether the traces arrived whole. A broken trace misleads every view above, so check here first when numbers look odd.</p>\n<table><tbody>");
    let rows: [(&str, u64, &str); 9] = [
        (
            "complete traces",
            h.complete_traces,
            "one root, every parent present",
        ),
        ("broken traces", h.broken_traces, "anything else"),
        (
            "orphan spans",
            h.orphan_spans,
            "their parent span never arrived",
        ),
        (
            "traces with several roots",
            h.multi_root_traces,
            "a service did not continue the incoming context",
        ),
        (
            "rootless traces",
            h.rootless_traces,
            "only pieces arrived, no root",
        ),
        (
            "fragments",
            h.fragments,
            "pieces cut off from their root (one per missing parent)",
        ),
        (
            "duplicate span ids",
            h.duplicate_span_ids,
            "the same span id seen twice in a trace",
        ),
        (
            "children outside their parent",
            h.skewed_children,
            "clock skew between hosts, or async work",
        ),
        ("late spans", h.late_spans, "ended after the run stopped"),
    ];
    for (label, n, why) in rows {
        let _ = write!(
            page,
            "<tr{}><th>{label}</th><td class=\"num\">{n}</td><td class=\"help\">{why}</td></tr>",
            if n > 0 && label != "complete traces" {
                " class=\"warn\""
            } else {
                ""
            }
        );
    }
    page.push_str("</tbody></table>\n");
    if !h.skewed_examples.is_empty() {
        page.push_str("<h3>Children outside their parent</h3><ul>");
        for e in &h.skewed_examples {
            let _ = write!(
                page,
                "<li>{} <strong>{}</strong> {} (parent in {}): starts {} before, ends {} after its parent</li>",
                trace_link(&e.span.trace_id, &shown),
                html(&e.span.service),
                html(&e.span.operation),
                html(&e.parent_service),
                ms(e.starts_before_parent_ns),
                ms(e.ends_after_parent_ns),
            );
        }
        page.push_str("</ul>\n");
    }
    if !h.broken_examples.is_empty() {
        let ids: Vec<String> = h
            .broken_examples
            .iter()
            .map(|t| trace_link(t, &shown))
            .collect();
        let _ = writeln!(page, "<p>Broken traces, for example: {}</p>", ids.join(" "));
    }
    page.push_str("</section>\n");
}

fn traces_section(page: &mut String, input: &HtmlReportInput) {
    let a = input.analysis;
    let mut wanted: Vec<(&TraceSummary, &str)> = Vec::new();
    let mut seen = HashSet::new();
    for (list, reason) in [
        (&a.slowest_traces, "one of the slowest"),
        (&a.failing_traces, "failed"),
    ] {
        for t in list {
            if seen.insert(t.trace_id) {
                wanted.push((t, reason));
            }
        }
    }
    let by_id: HashMap<TraceId, &Trace> = input
        .traces
        .iter()
        .filter(|t| seen.contains(&t.trace_id))
        .map(|t| (t.trace_id, t))
        .collect();
    page.push_str("<section id=\"traces\"><h2>Traces worth a look</h2>\n<p class=\"help\">The slowest requests and a selection of failed ones (one per error origin first). Bars show when each span ran; the darker part of a bar is the span's own time on the critical path. Click a span for its attributes, events and links.</p>\n");
    let mut data = Map::new();
    for (summary, reason) in wanted {
        let Some(trace) = by_id.get(&summary.trace_id) else {
            continue;
        };
        let timings = a
            .trace_timings
            .iter()
            .find(|t| t.trace_id == trace.trace_id && t.spans.len() == trace.spans.len())
            .cloned()
            .unwrap_or_else(|| trace_timings(trace));
        let (section, json) = trace_view::trace_section(trace, &timings, summary, reason);
        page.push_str(&section);
        data.insert(trace.trace_id.to_hex(), json);
    }
    let data = serde_json::json!({ "traces": data });
    let _ = write!(
        page,
        "</section>\n<script type=\"application/json\" id=\"tracelab-data\">{}</script>\n",
        escape::script_json(&data)
    );
}
