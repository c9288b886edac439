//! The by-instance and by-version table of services that ran several instances.

use std::fmt::Write as _;

use super::escape::html;
use crate::analysis::Analysis;
use crate::format::{ms, percent};
use crate::instances::GroupFigures;

/// The instances and versions of services that ran several, inside the services section.
pub(super) fn instances_table(page: &mut String, a: &Analysis) {
    if a.instances.is_empty() {
        return;
    }
    page.push_str("<h3 id=\"instances\">By instance and version</h3>\n<p class=\"help\">Services that ran more than one instance, split by <code>service.instance.id</code> and by <code>service.version</code>. One instance with a large share p99 while its siblings look like the service: one bad host. One version owning the errors: a bad release. <em>origins</em> counts the failed requests whose failure started there.</p>\n<table><thead><tr><th>service</th><th>instance</th><th>version</th><th class=\"num\">share p99</th><th class=\"num\">share p50</th><th class=\"num\">requests</th><th class=\"num\">errors</th><th class=\"num\">origins</th><th class=\"num\">p50</th><th class=\"num\">p99</th></tr></thead><tbody>");
    for i in &a.instances {
        let _ = write!(
            page,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td>{}</tr>",
            html(&i.service),
            html(&i.instance),
            html(&i.version),
            figure_cells(&i.figures),
        );
    }
    for v in &a.versions {
        let _ = write!(
            page,
            "<tr class=\"version\"><td>{}</td><td>{} instance{}</td><td>{}</td>{}</tr>",
            html(&v.service),
            v.instances,
            if v.instances == 1 { "" } else { "s" },
            html(&v.version),
            figure_cells(&v.figures),
        );
    }
    page.push_str("</tbody></table>\n");
}

/// The numeric cells of an instance's or a version's row, in the header's order.
fn figure_cells(f: &GroupFigures) -> String {
    format!(
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
        percent(f.critical_share_p99),
        percent(f.critical_share_p50),
        f.requests,
        percent(f.error_rate),
        f.error_origins,
        ms(f.latency.p50_ns),
        ms(f.latency.p99_ns),
    )
}
