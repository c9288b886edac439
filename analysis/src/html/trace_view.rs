//! The interactive waterfall of one trace: rows rendered here, span details built by the page's
//! script from embedded JSON only when a row is opened.

use std::fmt::Write as _;

use serde_json::{Value, json};
use tracelab_trace::{Attribute, Trace};

use super::escape::{html, hue};
use crate::analysis::{TraceSummary, TraceTimings};
use crate::format::ms;
use crate::tree::SpanTree;

/// Rows beyond this are left out of one waterfall (with a note), so a trace with a runaway
/// fan-out cannot make the page unusable.
pub const MAX_ROWS: usize = 2_000;

fn attributes_json(attributes: &[Attribute]) -> Value {
    Value::Array(
        attributes
            .iter()
            .map(|a| json!([a.key, a.value.to_string()]))
            .collect(),
    )
}

/// The `<section class="trace">` of one trace, and the JSON its rows' details are built from.
pub fn trace_section(
    trace: &Trace,
    timings: &TraceTimings,
    summary: &TraceSummary,
    reason: &str,
) -> (String, Value) {
    let spans = &trace.spans;
    let tree = SpanTree::new(trace);
    let t0 = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(0);
    let total = t1.saturating_sub(t0).max(1) as f64;
    let pct = |t: u64| (t.saturating_sub(t0) as f64 / total * 100.0).clamp(0.0, 100.0);
    let id = trace.trace_id.to_hex();

    let mut out = String::new();
    let _ = write!(
        out,
        "<section class=\"trace\" data-trace-id=\"{id}\" id=\"trace-{id}\">\n<h3>{} <span class=\"svc-name\">{}</span> <span class=\"num\">{}</span>{}</h3>\n",
        html(&summary.operation),
        html(&summary.service),
        ms(summary.duration_ns),
        if summary.error_spans > 0 {
            " <span class=\"badge error\">failed</span>"
        } else {
            ""
        },
    );
    let _ = write!(
        out,
        "<p class=\"meta\">{} · trace <code>{id}</code> · {} spans{}",
        html(reason),
        summary.spans,
        if summary.complete {
            ""
        } else {
            " · <strong>broken trace</strong>"
        },
    );
    if let Some(o) = &summary.error_origin {
        let _ = write!(
            out,
            " · likely error origin: <strong>{}</strong> {}{}",
            html(&o.service),
            html(&o.operation),
            if o.message.is_empty() {
                String::new()
            } else {
                format!(" “{}”", html(&o.message))
            },
        );
    }
    out.push_str("</p>\n<label class=\"only-critical\"><input type=\"checkbox\"> show only the critical path</label>\n");
    let _ = write!(
        out,
        "<div class=\"axis\"><span>0 ms</span><span>{}</span></div>\n<div class=\"waterfall\" role=\"list\">\n",
        ms(t1.saturating_sub(t0))
    );

    let mut data_spans = Vec::new();
    let order = tree.display_order();
    for &(i, depth) in order.iter().take(MAX_ROWS) {
        let s = &spans[i];
        let timing = &timings.spans[i];
        let critical = timing.critical_ns > 0;
        let mut classes = String::from("span-row");
        if critical {
            classes.push_str(" critical");
        }
        if s.is_error() {
            classes.push_str(" error");
        }
        let (left, right) = (
            pct(s.start_unix_nano),
            pct(s.end_unix_nano.max(s.start_unix_nano)),
        );
        let _ = write!(
            out,
            "<div class=\"{classes}\" data-span-id=\"{}\" data-index=\"{}\" role=\"listitem\" tabindex=\"0\" aria-expanded=\"false\" style=\"--depth:{};--hue:{}\">\
<span class=\"label\"><span class=\"svc\">{}</span> {}{}{}</span>\
<span class=\"track\"><span class=\"bar\" style=\"left:{left:.3}%;width:{:.3}%\"></span>",
            s.span_id,
            data_spans.len(),
            depth.min(16),
            hue(&s.service_name),
            html(&s.service_name),
            html(&s.name),
            if s.is_error() {
                " <span class=\"x\" aria-label=\"error\">✗</span>"
            } else {
                ""
            },
            if tree.parent[i].is_none() && s.parent_span_id.is_some() {
                " <em>(parent missing)</em>"
            } else {
                ""
            },
            (right - left).max(0.0),
        );
        for seg in timings
            .critical_path
            .segments
            .iter()
            .filter(|g| g.span_index == i)
        {
            let (a, b) = (pct(seg.start_unix_nano), pct(seg.end_unix_nano));
            let _ = write!(
                out,
                "<span class=\"crit\" style=\"left:{a:.3}%;width:{:.3}%\"></span>",
                b - a
            );
        }
        let _ = writeln!(
            out,
            "</span><span class=\"dur num\">{}</span></div>",
            ms(s.duration_nanos())
        );

        data_spans.push(json!({
            "name": s.name,
            "service": &*s.service_name,
            "kind": s.kind.as_str(),
            "status": match s.status.code {
                tracelab_trace::StatusCode::Unset => "unset",
                tracelab_trace::StatusCode::Ok => "ok",
                tracelab_trace::StatusCode::Error => "error",
            },
            "message": s.status.message,
            "start_ms": s.start_unix_nano.saturating_sub(t0) as f64 / 1e6,
            "duration_ms": s.duration_nanos() as f64 / 1e6,
            "self_ms": timing.self_ns as f64 / 1e6,
            "critical_ms": timing.critical_ns as f64 / 1e6,
            "parent": s.parent_span_id.map(|p| p.to_hex()),
            "attributes": attributes_json(&s.attributes),
            "events": s.events.iter().map(|e| json!({
                "name": e.name,
                "at_ms": e.time_unix_nano.saturating_sub(t0) as f64 / 1e6,
                "attributes": attributes_json(&e.attributes),
            })).collect::<Vec<_>>(),
            "links": s.links.iter().map(|l| json!({
                "trace_id": l.trace_id.to_hex(),
                "span_id": l.span_id.to_hex(),
                "attributes": attributes_json(&l.attributes),
            })).collect::<Vec<_>>(),
        }));
    }
    out.push_str("</div>\n");
    if order.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"meta\">{} more spans not shown.</p>",
            order.len() - MAX_ROWS
        );
    }
    out.push_str("</section>\n");
    (out, json!({ "spans": data_spans }))
}
