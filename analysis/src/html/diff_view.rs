//! The report's "Changes from the baseline" section (`section#diff`), when the report is
//! given an earlier run to compare with: the diff's services, then the operations that changed.

use std::fmt::Write as _;

use super::escape::{self, html};
use crate::diff::text::{
    end_to_end_change, ms_change, p_value, percent_change, verdict, what_changed,
};
use crate::diff::{EntityDiff, RunDiff};
use crate::format::ms;

fn rows(page: &mut String, entities: &[&EntityDiff], with_operation: bool) {
    // The table is wider than a narrow window: it scrolls on its own, not the page.
    page.push_str("<div class=\"wide\"><table><thead><tr><th>#</th><th>service</th>");
    if with_operation {
        page.push_str("<th>operation</th>");
    }
    page.push_str("<th>verdict</th><th class=\"num\">self time p50</th><th class=\"num\">p50 latency</th><th class=\"num\">p99 latency</th><th class=\"num\">share p99</th><th class=\"num\">errors</th><th class=\"num\">p (Holm)</th></tr></thead><tbody>");
    for e in entities {
        let _ = write!(
            page,
            "<tr{}><td>{}</td><td><span class=\"dot\" style=\"--hue:{}\"></span>{}</td>",
            if e.changed { " class=\"changed\"" } else { "" },
            e.rank,
            escape::hue(&e.service),
            html(&e.service),
        );
        if with_operation {
            let _ = write!(
                page,
                "<td>{}</td>",
                html(e.operation.as_deref().unwrap_or(""))
            );
        }
        let _ = write!(
            page,
            "<td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            verdict(e),
            html(&ms_change(
                e.before.self_time_p50_ns,
                e.after.self_time_p50_ns
            )),
            html(&ms_change(
                e.before.latency_p50_ns as f64,
                e.after.latency_p50_ns as f64
            )),
            html(&ms_change(
                e.before.latency_p99_ns as f64,
                e.after.latency_p99_ns as f64
            )),
            html(&percent_change(
                e.before.critical_share_p99,
                e.after.critical_share_p99
            )),
            html(&percent_change(e.before.error_rate, e.after.error_rate)),
            html(&p_value(e.p_value)),
        );
    }
    page.push_str("</tbody></table></div>\n");
    let changed: Vec<&&EntityDiff> = entities.iter().filter(|e| e.changed).collect();
    if !changed.is_empty() {
        page.push_str("<ul class=\"changes\">");
        for e in changed {
            let name = match &e.operation {
                Some(op) => format!("{}: {op}", e.service),
                None => e.service.clone(),
            };
            let _ = write!(
                page,
                "<li><strong>{}</strong>: {} (p {})</li>",
                html(&name),
                html(&what_changed(e)),
                html(&p_value(e.p_value)),
            );
        }
        page.push_str("</ul>\n");
    }
}

/// Writes `section#diff`.
pub(super) fn diff_section(page: &mut String, diff: &RunDiff) {
    let m = &diff.method;
    let (b, a) = (&diff.before, &diff.after);
    let _ = write!(
        page,
        "<section id=\"diff\"><h2>Changes from the baseline</h2>\n<p class=\"help\">This run against <code>{}</code>: {} → {} requests, end-to-end {}. Each service and operation is tested on what it did itself in each request: its self time (time not spent waiting for a child), and the failures that started in it (Mann–Whitney U, Holm-corrected over every test). It has <strong>changed</strong> when p &lt; {} and its median self time moved by at least {:.0} % and {} (its failure rate by {:.1} percentage points). Latency, share and errors are shown but not tested: a caller slowed by its callee has not changed itself.</p>\n",
        html(&b.source),
        b.traces,
        a.traces,
        end_to_end_change(b, a),
        m.alpha,
        m.min_relative_change * 100.0,
        ms(m.min_time_change_ns.round() as u64),
        m.min_rate_change * 100.0,
    );
    let services: Vec<&EntityDiff> = diff.services.iter().collect();
    rows(page, &services, false);
    let changed: Vec<&EntityDiff> = diff.operations.iter().filter(|o| o.changed).collect();
    if changed.is_empty() {
        page.push_str("<p>No operation changed.</p>\n");
    } else {
        page.push_str("<h3>Operations that changed</h3>\n");
        rows(page, &changed, true);
    }
    page.push_str("</section>\n");
}
