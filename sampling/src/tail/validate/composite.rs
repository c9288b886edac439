//! The `composite` policy: its sub-policies and their rate allocation.

use serde_saphyr::Spanned;

use super::nesting::Level;
use super::policy::subs;
use crate::tail::config::{PolicyRule, TailConfigError};
use crate::tail::raw::RawPolicy;

/// Validates a `composite` block and allots each sub-policy its spans per second.
pub(crate) fn composite(
    p: &RawPolicy,
    name: &Spanned<String>,
    missing: &dyn Fn(&str) -> TailConfigError,
    source: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<PolicyRule, TailConfigError> {
    let c = p.composite.as_ref().ok_or_else(|| missing("composite"))?;
    let max_total = c.value.max_total_spans_per_second.value.0;
    if max_total <= 0 {
        return Err(TailConfigError::invalid(
            &c.value.max_total_spans_per_second,
            "max_total_spans_per_second must be positive",
        ));
    }
    let subs = subs(
        &c.value.composite_sub_policy,
        c,
        Level::Composite,
        source,
        warnings,
    )?;
    for order in &c.value.policy_order {
        if !subs.iter().any(|s| s.name == order.value) {
            return Err(TailConfigError::invalid(
                order,
                format!(
                    "policy_order names {:?}, which is not a composite_sub_policy",
                    order.value
                ),
            ));
        }
    }
    // The Collector's allocation: percent of the total when > 0, an equal share when the
    // percent is 0, and nothing at all for a sub-policy with no entry.
    let equal_share = max_total as f64 / subs.len() as f64;
    let mut with_rates = Vec::new();
    for sub in subs {
        let alloc = c
            .value
            .rate_allocation
            .iter()
            .find(|a| a.value.policy == sub.name);
        let sps = match alloc {
            Some(a) if a.value.percent.0 > 0 => {
                (a.value.percent.0 as f64 / 100.0 * max_total as f64) as i64
            }
            Some(_) => equal_share as i64,
            None => {
                warnings.push(format!(
                    "composite policy {:?}: sub-policy {:?} has no rate_allocation entry, so the Collector allots it 0 spans/s and it never samples",
                    name.value, sub.name
                ));
                0
            }
        };
        with_rates.push((sub, sps));
    }
    Ok(PolicyRule::Composite {
        max_total_spans_per_second: max_total,
        sub_policies: with_rates,
    })
}
