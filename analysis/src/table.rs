//! The terminal table of services ranked by their share of the critical path.

use crate::analysis::Analysis;
use crate::format::{ms, pad, percent, truncate};

/// Widest service name the table shows before cutting it.
const MAX_SERVICE_WIDTH: usize = 28;

/// Renders the services of `analysis` ranked by critical-path share in the slowest requests.
pub fn render_service_table(analysis: &Analysis) -> String {
    let w = &analysis.share_windows;
    let mut out = String::new();
    out.push_str("Where the time of slow requests goes, by service\n");
    out.push_str(&format!(
        "  share p99: part of the critical path of the {} slowest request{} (≥ {}) spent in the service\n",
        w.p99_traces,
        if w.p99_traces == 1 { "" } else { "s" },
        ms(w.p99_threshold_ns),
    ));
    out.push_str(&format!(
        "  share p50: the same for {} typical request{} ({} to {})\n",
        w.p50_traces,
        if w.p50_traces == 1 { "" } else { "s" },
        ms(w.p50_low_ns),
        ms(w.p50_high_ns),
    ));
    out.push_str(
        "  requests, errors and latency: the service's entry spans (calls it received)\n\n",
    );

    let name_w = analysis
        .services
        .iter()
        .map(|s| s.service.chars().count())
        .max()
        .unwrap_or(0)
        .clamp("service".len(), MAX_SERVICE_WIDTH);
    out.push_str(&format!(
        "{:>3}  {}  {:>9}  {:>9}  {:>9}  {:>7}  {:>10}  {:>10}\n",
        "#",
        pad("service", name_w),
        "share p99",
        "share p50",
        "requests",
        "errors",
        "p50",
        "p99",
    ));
    for (rank, s) in analysis.services.iter().enumerate() {
        out.push_str(&format!(
            "{:>3}  {}  {:>9}  {:>9}  {:>9}  {:>7}  {:>10}  {:>10}\n",
            rank + 1,
            pad(&truncate(&s.service, name_w), name_w),
            percent(s.critical_share_p99),
            percent(s.critical_share_p50),
            s.requests,
            percent(s.error_rate),
            ms(s.latency.p50_ns),
            ms(s.latency.p99_ns),
        ));
    }
    if analysis.services.is_empty() {
        out.push_str("  (no spans)\n");
    }
    out
}
