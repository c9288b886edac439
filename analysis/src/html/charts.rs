//! Inline SVG charts: latency over time with incident windows, and the sampling comparison.

use std::fmt::Write as _;

use serde_json::Value;

use super::ShadedWindow;
use super::escape::html;
use crate::format::ms;
use crate::timeline::TimelinePoint;

const W: f64 = 900.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 52.0;
const TOP: f64 = 18.0;
const BOTTOM: f64 = 30.0;

/// Above this many seconds the per-second hover tooltips are left out to keep the page light.
const MAX_TOOLTIPS: usize = 3_600;

fn clock(second_unix: u64) -> String {
    let s = second_unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// Requests' p50 and p99 latency and their errors per second, with incident windows shaded.
pub fn timeline_svg(points: &[TimelinePoint], incidents: &[ShadedWindow]) -> String {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return "<p class=\"meta\">No requests to chart.</p>".to_string();
    };
    let x0 = first.second_unix as f64;
    let span = (last.second_unix + 1 - first.second_unix) as f64;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let max_ns = points.iter().map(|p| p.p99_ns).max().unwrap_or(0).max(1) as f64 * 1.1;
    let max_err = points.iter().map(|p| p.errors).max().unwrap_or(0).max(1) as f64;
    let x = |sec: f64| LEFT + (sec - x0) / span * plot_w;
    let y = |ns: f64| TOP + plot_h - ns / max_ns * plot_h;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"timeline-title\"><title id=\"timeline-title\">Latency p50 and p99 and errors per second</title>"
    );
    for w in incidents {
        let a = (w.start_unix_nano as f64 / 1e9).max(x0);
        let b = (w.end_unix_nano as f64 / 1e9).min(x0 + span);
        if b <= a {
            continue;
        }
        let _ = write!(
            s,
            "<g class=\"incident\"><rect x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h}\"><title>{}</title></rect><text x=\"{:.1}\" y=\"{}\">{}</text></g>",
            x(a),
            (x(b) - x(a)).max(1.0),
            html(&w.label),
            x(a) + 4.0,
            TOP + 12.0,
            html(&w.label),
        );
    }
    for k in 0..=4 {
        let v = max_ns / 4.0 * k as f64;
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            ms(v as u64),
        );
    }
    // Whole-second ticks at an even step, about six of them.
    let step = (span as u64).div_ceil(6).max(1);
    for k in 0..=(span as u64 / step) {
        let sec = x0 + (k * step) as f64;
        let _ = write!(
            s,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">+{:.0} s</text>",
            x(sec),
            H - 10.0,
            sec - x0
        );
    }
    let _ = write!(
        s,
        "<text class=\"tick err\" x=\"{:.1}\" y=\"{:.1}\">{} err</text>",
        W - RIGHT + 4.0,
        TOP + 8.0,
        max_err as u64
    );
    // Errors as bars against the right-hand scale, under the latency lines.
    let bar_w = (plot_w / span).max(1.0);
    for p in points.iter().filter(|p| p.errors > 0) {
        let h = p.errors as f64 / max_err * plot_h * 0.35;
        let _ = write!(
            s,
            "<rect class=\"errbar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>",
            x(p.second_unix as f64),
            TOP + plot_h - h,
            (bar_w - 1.0).max(1.0),
        );
    }
    for (class, pick) in [("p99", 1), ("p50", 0)] {
        let mut run: Vec<String> = Vec::new();
        let mut prev: Option<u64> = None;
        let flush = |run: &mut Vec<String>, s: &mut String| {
            if run.len() == 1 {
                // A lone second has no neighbour to join; a dot keeps it visible.
                let _ = write!(
                    s,
                    "<polyline class=\"{class}\" points=\"{} {}\"/>",
                    run[0], run[0]
                );
            } else if run.len() > 1 {
                let _ = write!(
                    s,
                    "<polyline class=\"{class}\" points=\"{}\"/>",
                    run.join(" ")
                );
            }
            run.clear();
        };
        for p in points {
            if prev.is_some_and(|q| q + 1 != p.second_unix) {
                flush(&mut run, &mut s);
            }
            let v = if pick == 1 { p.p99_ns } else { p.p50_ns };
            run.push(format!(
                "{:.1},{:.1}",
                x(p.second_unix as f64 + 0.5),
                y(v as f64)
            ));
            prev = Some(p.second_unix);
        }
        flush(&mut run, &mut s);
    }
    if points.len() <= MAX_TOOLTIPS {
        for p in points {
            let _ = write!(
                s,
                "<rect class=\"hover\" x=\"{:.1}\" y=\"{TOP}\" width=\"{bar_w:.1}\" height=\"{plot_h}\"><title>{} (+{} s): {} requests, {} errors, p50 {}, p99 {}</title></rect>",
                x(p.second_unix as f64),
                clock(p.second_unix),
                p.second_unix - first.second_unix,
                p.requests,
                p.errors,
                ms(p.p50_ns),
                ms(p.p99_ns),
            );
        }
    }
    s.push_str("</svg>\n<p class=\"legend\"><span class=\"key p99\"></span>p99 <span class=\"key p50\"></span>p50 <span class=\"key errbar\"></span>errors per second (right scale) <span class=\"key incident\"></span>incident window</p>\n");
    s
}

/// The name of a sampling row: its `strategy` or `name` field, else its first string field.
fn row_name(row: &serde_json::Map<String, Value>) -> String {
    ["strategy", "name"]
        .iter()
        .find_map(|k| row.get(*k).and_then(Value::as_str))
        .or_else(|| row.values().find_map(Value::as_str))
        .unwrap_or("?")
        .to_string()
}

/// The sampling comparison: a table of every field, and bars for every field whose values are
/// fractions (0..=1), such as the share of spans kept or the recall of error traces.
pub fn sampling_section(rows: &Value) -> String {
    let rows: Vec<&serde_json::Map<String, Value>> = match rows {
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        _ => Vec::new(),
    };
    if rows.is_empty() {
        return "<p class=\"meta\">No sampling comparison rows.</p>".to_string();
    }
    let mut columns: Vec<&str> = Vec::new();
    for r in &rows {
        for (k, v) in r.iter() {
            if v.is_number() && !columns.contains(&k.as_str()) {
                columns.push(k);
            }
        }
    }
    let fractions: Vec<&str> = columns
        .iter()
        .copied()
        .filter(|c| {
            rows.iter()
                .filter_map(|r| r.get(*c).and_then(Value::as_f64))
                .all(|v| (0.0..=1.0).contains(&v))
        })
        .collect();

    let mut s = String::from("<table><thead><tr><th>strategy</th>");
    for c in &columns {
        let _ = write!(s, "<th class=\"num\">{}</th>", html(&c.replace('_', " ")));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &rows {
        let _ = write!(s, "<tr><td>{}</td>", html(&row_name(r)));
        for c in &columns {
            let cell = match r.get(*c).and_then(Value::as_f64) {
                Some(v) if fractions.contains(c) => format!("{:.1} %", v * 100.0),
                Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
                Some(v) => format!("{v:.3}"),
                None => "–".to_string(),
            };
            let _ = write!(s, "<td class=\"num\">{cell}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>\n");

    if fractions.is_empty() {
        return s;
    }
    let row_h = 14.0;
    let group_h = row_h * fractions.len() as f64 + 14.0;
    let label_w = 180.0;
    let height = group_h * rows.len() as f64 + 10.0;
    let _ = write!(
        s,
        "<svg class=\"chart bars\" viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"Sampling strategies compared\">"
    );
    for (g, r) in rows.iter().enumerate() {
        let gy = 6.0 + g as f64 * group_h;
        let _ = write!(
            s,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            label_w - 8.0,
            gy + group_h / 2.0,
            html(&row_name(r))
        );
        for (m, c) in fractions.iter().enumerate() {
            let v = r.get(*c).and_then(Value::as_f64).unwrap_or(0.0);
            let w = v * (W - label_w - 120.0);
            let by = gy + m as f64 * row_h;
            let _ = write!(
                s,
                "<rect class=\"metric m{}\" x=\"{label_w}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"{:.1}\"><title>{}: {:.1} %</title></rect><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{} {:.1} %</text>",
                m % 6,
                row_h - 3.0,
                html(c),
                v * 100.0,
                label_w + w + 4.0,
                by + row_h - 4.0,
                html(&c.replace('_', " ")),
                v * 100.0,
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
