//! The terminal table of services ranked by their share of the critical path, and of the
//! instances and versions of services that ran several.

use crate::analysis::{Analysis, ServiceStats};
use crate::format::{ms, pad, percent, truncate};
use crate::instances::GroupFigures;

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
        let [share_p99, share_p50, requests, errors, p50, p99] = service_figures(s);
        out.push_str(&format!(
            "{:>3}  {}  {share_p99:>9}  {share_p50:>9}  {requests:>9}  {errors:>7}  {p50:>10}  {p99:>10}\n",
            rank + 1,
            pad(&truncate(&s.service, name_w), name_w),
        ));
    }
    if analysis.services.is_empty() {
        out.push_str("  (no spans)\n");
    }
    out.push_str(&render_instance_table(analysis));
    out
}

/// Renders the instances and versions of each service that ran more than one instance, or
/// nothing when none did.
pub fn render_instance_table(analysis: &Analysis) -> String {
    if analysis.instances.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    out.push_str("\nServices with several instances, by instance and by version\n");
    out.push_str("  origins: failed requests whose failure started on that instance (version)\n\n");
    let rows: Vec<Row> = analysis
        .instances
        .iter()
        .map(|i| Row {
            service: &i.service,
            name: if i.instance.is_empty() {
                "(no instance id)".to_owned()
            } else {
                i.instance.clone()
            },
            version: &i.version,
            figures: &i.figures,
        })
        .chain(analysis.versions.iter().map(|v| Row {
            service: &v.service,
            name: format!(
                "{} instance{}",
                v.instances,
                if v.instances == 1 { "" } else { "s" }
            ),
            version: &v.version,
            figures: &v.figures,
        }))
        .collect();
    let width = |f: fn(&Row) -> usize, header: &str| {
        rows.iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .clamp(header.len(), MAX_SERVICE_WIDTH)
    };
    let service_w = width(|r| r.service.chars().count(), "service");
    let name_w = width(|r| r.name.chars().count(), "instance");
    let version_w = width(|r| r.version.chars().count(), "version");
    out.push_str(&format!(
        "{}  {}  {}  {:>9}  {:>9}  {:>9}  {:>7}  {:>7}  {:>10}  {:>10}\n",
        pad("service", service_w),
        pad("instance", name_w),
        pad("version", version_w),
        "share p99",
        "share p50",
        "requests",
        "errors",
        "origins",
        "p50",
        "p99",
    ));
    for (i, r) in rows.iter().enumerate() {
        if i == analysis.instances.len() {
            out.push('\n');
        }
        out.push_str(&format!(
            "{}  {}  {}  {:>9}  {:>9}  {:>9}  {:>7}  {:>7}  {:>10}  {:>10}\n",
            pad(&truncate(r.service, service_w), service_w),
            pad(&truncate(&r.name, name_w), name_w),
            pad(&truncate(r.version, version_w), version_w),
            percent(r.figures.critical_share_p99),
            percent(r.figures.critical_share_p50),
            r.figures.requests,
            percent(r.figures.error_rate),
            r.figures.error_origins,
            ms(r.figures.latency.p50_ns),
            ms(r.figures.latency.p99_ns),
        ));
    }
    out
}

/// One line of the instance table: an instance, or a version with how many instances ran it.
struct Row<'a> {
    service: &'a str,
    name: String,
    version: &'a str,
    figures: &'a GroupFigures,
}

/// A service's figures as this table and the HTML report show them: its share of the critical
/// path of the slowest and of typical requests, its requests, error rate, and latency p50 and
/// p99.
pub(crate) fn service_figures(s: &ServiceStats) -> [String; 6] {
    [
        percent(s.critical_share_p99),
        percent(s.critical_share_p50),
        s.requests.to_string(),
        percent(s.error_rate),
        ms(s.latency.p50_ns),
        ms(s.latency.p99_ns),
    ]
}
