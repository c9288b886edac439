//! The terminal waterfall of one trace.
//!
//! One line per span, in tree order: the service and span name indented by depth, a bar placed
//! and sized by the span's time within the trace, and its duration. Where a span's own work lies
//! on the critical path its bar is solid (`█`); the rest of its time, when it waits on children
//! or runs beside the path, is shaded (`░`). A span lasting no time at all shows as `│`.

use tracelab_trace::Trace;

use crate::critical_path::CriticalPath;
use crate::format::{ms, pad, truncate};
use crate::tree::SpanTree;

/// The narrowest layout the waterfall supports; smaller widths are widened to it.
const MIN_WIDTH: usize = 60;

/// Renders `trace` as a text waterfall `width` columns wide (100 suits most terminals).
///
/// With `critical` (from [`crate::critical_path`](mod@crate::critical_path) of the same trace) the critical path is drawn
/// solid; without it every bar is drawn as `▒`.
pub fn render_waterfall(trace: &Trace, critical: Option<&CriticalPath>, width: usize) -> String {
    let width = width.max(MIN_WIDTH);
    let spans = &trace.spans;
    let tree = SpanTree::new(trace);
    let t0 = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(0);
    let total = t1.saturating_sub(t0);
    let errors = spans.iter().filter(|s| s.is_error()).count();

    let label_w = width * 2 / 5;
    let dur_w = 10;
    // Two separating spaces and two columns for the error mark.
    let bar_w = width - label_w - dur_w - 4;

    let mut out = String::new();
    out.push_str(&format!(
        "Trace {}\n{} end to end  ·  {} span{}  ·  {} error{}\n",
        trace.trace_id,
        ms(total),
        spans.len(),
        if spans.len() == 1 { "" } else { "s" },
        errors,
        if errors == 1 { "" } else { "s" },
    ));
    if critical.is_some() {
        out.push_str("█ on the critical path   ░ waiting or in parallel   ✗ error\n");
    } else {
        out.push_str("▒ span time   ✗ error\n");
    }
    let axis_end = ms(total);
    let axis = format!(
        "0 ms{}{}",
        " ".repeat(bar_w.saturating_sub(4 + axis_end.chars().count())),
        axis_end
    );
    out.push_str(&format!(
        "{} {} {:>dur_w$}\n",
        pad("service: operation", label_w),
        pad(&axis, bar_w),
        "duration"
    ));

    let mut on_path: Vec<Vec<(u64, u64)>> = vec![Vec::new(); spans.len()];
    if let Some(cp) = critical {
        for seg in &cp.segments {
            if let Some(v) = on_path.get_mut(seg.span_index) {
                v.push((seg.start_unix_nano, seg.end_unix_nano));
            }
        }
    }
    // Cell `c` covers [t0 + c*total/bar_w, t0 + (c+1)*total/bar_w); u128 keeps the product of
    // a long trace's nanoseconds and the column count from overflowing.
    let cell_start = |c: usize| t0 + ((c as u128 * total as u128) / bar_w.max(1) as u128) as u64;
    for (i, depth) in tree.display_order() {
        let s = &spans[i];
        let indent = "  ".repeat(depth.min(12));
        let orphan = if tree.parent[i].is_none() && s.parent_span_id.is_some() {
            " (parent missing)"
        } else {
            ""
        };
        let label = format!("{indent}{}: {}{orphan}", s.service_name, s.name);
        let (start, end) = (s.start_unix_nano, s.end_unix_nano.max(s.start_unix_nano));
        let mut bar = String::with_capacity(bar_w * 3);
        let mut drawn = false;
        for c in 0..bar_w {
            let (a, b) = (cell_start(c), cell_start(c + 1));
            let overlaps = |x: u64, y: u64| x < b.max(a + 1) && y > a;
            let ch = if !overlaps(start, end) {
                ' '
            } else if critical.is_none() {
                '▒'
            } else if on_path[i].iter().any(|&(x, y)| overlaps(x, y)) {
                '█'
            } else {
                '░'
            };
            drawn |= ch != ' ';
            bar.push(ch);
        }
        if !drawn {
            // A zero-length span still gets a mark where it happened.
            let offset = start.saturating_sub(t0) as u128 * bar_w as u128 / total.max(1) as u128;
            let col = (offset as usize).min(bar_w.saturating_sub(1));
            bar = bar
                .chars()
                .enumerate()
                .map(|(c, ch)| if c == col { '│' } else { ch })
                .collect();
        }
        let mark = if s.is_error() { " ✗" } else { "" };
        out.push_str(&format!(
            "{} {} {:>dur_w$}{mark}\n",
            pad(&truncate(&label, label_w), label_w),
            bar,
            ms(s.duration_nanos()),
        ));
    }
    out
}
