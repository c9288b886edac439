//! The terminal view of a diff: services ranked, then the operations that changed.

use super::{EntityDiff, Metric, Presence, RunDiff, RunSide};
use crate::format::{ms, pad, percent, truncate};

/// Widest service or operation name shown before cutting it.
const MAX_NAME_WIDTH: usize = 36;

/// Operations listed when none changed (the most nearly significant ones).
const UNCHANGED_OPERATIONS: usize = 5;

/// A p-value as people read it: `0.042`, `3.1e-12`.
pub fn p_value(p: Option<f64>) -> String {
    match p {
        None => "–".to_string(),
        Some(p) if p >= 0.001 => format!("{p:.3}"),
        Some(p) if p > 0.0 => format!("{p:.1e}"),
        Some(_) => "<1e-300".to_string(),
    }
}

/// Nanoseconds as milliseconds, for the f64 means of a diff.
fn ms_f(nanos: f64) -> String {
    ms(nanos.max(0.0).round() as u64)
}

/// `before → after` of two nanosecond values.
pub fn ms_change(before: f64, after: f64) -> String {
    format!("{} → {}", ms_f(before), ms_f(after))
}

/// `before → after` of two fractions.
pub fn percent_change(before: f64, after: f64) -> String {
    format!("{} → {}", percent(before), percent(after))
}

/// The end-to-end latency of two runs: `p50 before → after, p99 before → after`.
pub fn end_to_end_change(before: &RunSide, after: &RunSide) -> String {
    format!(
        "p50 {} → {}, p99 {} → {}",
        ms(before.duration.p50_ns),
        ms(after.duration.p50_ns),
        ms(before.duration.p99_ns),
        ms(after.duration.p99_ns),
    )
}

/// The verdict column: `changed`, `new`, `gone`, or `·`.
pub fn verdict(e: &EntityDiff) -> &'static str {
    match (e.changed, e.presence) {
        (true, Presence::AfterOnly) => "new",
        (true, Presence::BeforeOnly) => "gone",
        (true, Presence::Both) => "CHANGED",
        (false, _) => "·",
    }
}

/// What changed, in words: `self time +99.8 ms, failures starting here +3.0 points`.
pub fn what_changed(e: &EntityDiff) -> String {
    let parts: Vec<String> = e
        .tests
        .iter()
        .filter(|t| t.changed)
        .map(|t| {
            let sign = if t.after >= t.before { "+" } else { "−" };
            let size = match t.metric {
                Metric::ErrorOrigin => format!("{:.1} points", (t.after - t.before).abs() * 100.0),
                _ => ms_f((t.after - t.before).abs()),
            };
            format!("{} {sign}{size}", t.metric.describe())
        })
        .collect();
    match e.presence {
        Presence::Both => parts.join(", "),
        Presence::AfterOnly => format!("new: {} requests", e.after.requests),
        Presence::BeforeOnly => format!("gone: {} requests before", e.before.requests),
    }
}

fn name(e: &EntityDiff) -> String {
    match &e.operation {
        Some(op) => format!("{}: {op}", e.service),
        None => e.service.clone(),
    }
}

fn table(out: &mut String, entities: &[&EntityDiff], heading: &str) {
    let name_w = entities
        .iter()
        .map(|e| name(e).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(heading.len(), MAX_NAME_WIDTH);
    out.push_str(&format!(
        "{:>3}  {}  {:<7}  {:>21}  {:>21}  {:>21}  {:>17}  {:>17}  {:>8}\n",
        "#",
        pad(heading, name_w),
        "verdict",
        "self time p50",
        "p50 latency",
        "p99 latency",
        "share p99",
        "errors",
        "p",
    ));
    for e in entities {
        out.push_str(&format!(
            "{:>3}  {}  {:<7}  {:>21}  {:>21}  {:>21}  {:>17}  {:>17}  {:>8}\n",
            e.rank,
            pad(&truncate(&name(e), name_w), name_w),
            verdict(e),
            ms_change(e.before.self_time_p50_ns, e.after.self_time_p50_ns),
            ms_change(
                e.before.latency_p50_ns as f64,
                e.after.latency_p50_ns as f64
            ),
            ms_change(
                e.before.latency_p99_ns as f64,
                e.after.latency_p99_ns as f64
            ),
            percent_change(e.before.critical_share_p99, e.after.critical_share_p99),
            percent_change(e.before.error_rate, e.after.error_rate),
            p_value(e.p_value),
        ));
    }
}

/// Renders a diff for the terminal.
pub fn render_diff(diff: &RunDiff) -> String {
    let m = &diff.method;
    let (b, a) = (&diff.before, &diff.after);
    let tests: usize = diff
        .services
        .iter()
        .chain(&diff.operations)
        .map(|e| e.tests.len())
        .sum();
    let mut out = String::new();
    out.push_str(&format!("Changes from {} to {}\n", b.source, a.source));
    out.push_str(&format!(
        "  requests {} → {}, failed {} → {}, end to end {}\n",
        b.traces,
        a.traces,
        b.failed_traces,
        a.failed_traces,
        end_to_end_change(b, a),
    ));
    out.push_str(&format!(
        "  tested per request: each service's self time and the failures starting in it\n  \
         (Mann–Whitney U, Holm-corrected over {tests} tests). Changed: p < {} and a median moved\n  \
         by at least {:.0} % and {} ({:.1} percentage points for failures). Latency, share, errors\n  \
         are shown, not tested: a caller slowed by its callee has not changed itself.\n\n",
        m.alpha,
        m.min_relative_change * 100.0,
        ms_f(m.min_time_change_ns),
        m.min_rate_change * 100.0,
    ));
    let services: Vec<&EntityDiff> = diff.services.iter().collect();
    table(&mut out, &services, "service");
    let changed: Vec<&EntityDiff> = diff.changed_services().collect();
    out.push('\n');
    if changed.is_empty() {
        out.push_str("No service changed.\n");
    } else {
        for e in &changed {
            out.push_str(&format!(
                "Changed: {} ({}; p {})\n",
                e.service,
                what_changed(e),
                p_value(e.p_value)
            ));
        }
    }
    let changed_ops: Vec<&EntityDiff> = diff.operations.iter().filter(|o| o.changed).collect();
    out.push('\n');
    if changed_ops.is_empty() {
        out.push_str("No operation changed. Closest to it:\n");
        let closest: Vec<&EntityDiff> = diff.operations.iter().take(UNCHANGED_OPERATIONS).collect();
        table(&mut out, &closest, "operation");
    } else {
        out.push_str("Operations that changed:\n");
        table(&mut out, &changed_ops, "operation");
    }
    out
}
