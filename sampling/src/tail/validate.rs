//! Validation of the raw `tail_sampling` YAML into [`TailSamplingConfig`]: defaults filled
//! in, values checked, regular expressions compiled, unsupported policy types set aside.

use std::collections::HashSet;

use regex::Regex;
use serde_saphyr::Spanned;
use tracelab_trace::StatusCode;

use super::config::{
    DEFAULT_DECISION_WAIT_NANOS, DEFAULT_HASH_SALT, DEFAULT_NUM_TRACES, Policy, PolicyRule,
    TailConfigError, TailSamplingConfig, UnsupportedPolicy,
};
use super::duration::parse_go_duration;
use super::raw::{RawBlock, RawPolicy, YamlInt};

fn non_negative(v: &Spanned<YamlInt>, what: &str) -> Result<u64, TailConfigError> {
    u64::try_from(v.value.0)
        .map_err(|_| TailConfigError::invalid(v, format!("{what} must not be negative")))
}

pub(crate) fn validate_block(
    block: RawBlock,
    unsupported: &mut Vec<UnsupportedPolicy>,
    warnings: &mut Vec<String>,
) -> Result<TailSamplingConfig, TailConfigError> {
    let decision_wait_nanos = match &block.decision_wait {
        Some(w) => parse_go_duration(&w.value).map_err(|m| TailConfigError::invalid(w, m))?,
        None => DEFAULT_DECISION_WAIT_NANOS,
    };
    let num_traces = match &block.num_traces {
        Some(n) => non_negative(n, "num_traces")?,
        None => DEFAULT_NUM_TRACES,
    };
    if let Some(n) = block.num_traces.as_ref().filter(|_| num_traces == 0) {
        return Err(TailConfigError::invalid(n, "num_traces must be at least 1"));
    }
    let (sampled_cache_size, non_sampled_cache_size) = match &block.decision_cache {
        Some(c) => (
            c.sampled_cache_size
                .as_ref()
                .map(|v| non_negative(v, "sampled_cache_size"))
                .transpose()?
                .unwrap_or(0),
            c.non_sampled_cache_size
                .as_ref()
                .map(|v| non_negative(v, "non_sampled_cache_size"))
                .transpose()?
                .unwrap_or(0),
        ),
        None => (0, 0),
    };
    if block.drop_pending_traces_on_shutdown == Some(true) {
        warnings.push(
            "drop_pending_traces_on_shutdown is ignored: the lab decides every pending trace at the end of the run"
                .to_string(),
        );
    }
    let mut policies = Vec::new();
    let mut seen = HashSet::new();
    for raw in &block.policies {
        let before = unsupported.len();
        let policy = build_policy(raw, unsupported, warnings)?;
        if let Some(name) = &raw.value.name
            && !seen.insert(name.value.clone())
        {
            return Err(TailConfigError::invalid(
                name,
                format!("duplicate policy name {:?}", name.value),
            ));
        }
        match policy {
            Some(p) => policies.push(p),
            None => {
                // Sub-policies that were unsupported name the top-level policy left out.
                let top = raw.value.name.as_ref().map(|n| n.value.clone());
                for u in &mut unsupported[before..] {
                    if u.within.is_none() && Some(&u.name) != top.as_ref() {
                        u.within = top.clone();
                    }
                }
            }
        }
    }
    Ok(TailSamplingConfig {
        decision_wait_nanos,
        num_traces,
        expected_new_traces_per_sec: block
            .expected_new_traces_per_sec
            .map(|v| v.0.max(0) as u64)
            .unwrap_or(0),
        sampled_cache_size,
        non_sampled_cache_size,
        sample_on_first_match: block.sample_on_first_match.unwrap_or(false),
        policies,
    })
}

/// Validates one policy; `Ok(None)` when it (or a sub-policy) is unsupported.
fn build_policy(
    raw: &Spanned<RawPolicy>,
    unsupported: &mut Vec<UnsupportedPolicy>,
    warnings: &mut Vec<String>,
) -> Result<Option<Policy>, TailConfigError> {
    let p = &raw.value;
    let name = p
        .name
        .as_ref()
        .ok_or_else(|| TailConfigError::invalid(raw, "policy without a `name`"))?;
    let kind = p.kind.as_ref().ok_or_else(|| {
        TailConfigError::invalid(raw, format!("policy {:?} has no `type`", name.value))
    })?;
    let line = name.referenced.line().min(kind.referenced.line());
    for key in &p.other_keys {
        if key.value != kind.value {
            return Err(TailConfigError::invalid(
                key,
                format!("unknown field `{}` in policy {:?}", key.value, name.value),
            ));
        }
    }
    let missing = |block: &str| {
        TailConfigError::invalid(
            kind,
            format!(
                "policy {:?} (type {}) needs a `{block}:` block",
                name.value, kind.value
            ),
        )
    };
    let rule = match kind.value.as_str() {
        "always_sample" => PolicyRule::AlwaysSample,
        "trace_flags" => PolicyRule::TraceFlags,
        "latency" => {
            let c = p.latency.as_ref().ok_or_else(|| missing("latency"))?;
            PolicyRule::Latency {
                threshold_ms: c.value.threshold_ms.map(|v| v.0).unwrap_or(0),
                upper_threshold_ms: c.value.upper_threshold_ms.map(|v| v.0).unwrap_or(0),
            }
        }
        "status_code" => {
            let c = p
                .status_code
                .as_ref()
                .ok_or_else(|| missing("status_code"))?;
            let mut codes = Vec::new();
            for s in &c.value.status_codes {
                codes.push(match s.value.as_str() {
                    "OK" => StatusCode::Ok,
                    "ERROR" => StatusCode::Error,
                    "UNSET" => StatusCode::Unset,
                    other => {
                        return Err(TailConfigError::invalid(
                            s,
                            format!("unknown status code {other:?}; expected OK, ERROR or UNSET"),
                        ));
                    }
                });
            }
            if codes.is_empty() {
                return Err(TailConfigError::invalid(
                    c,
                    "status_codes must not be empty",
                ));
            }
            PolicyRule::StatusCode { codes }
        }
        "probabilistic" => {
            let c = p
                .probabilistic
                .as_ref()
                .ok_or_else(|| missing("probabilistic"))?;
            let pct = c.value.sampling_percentage.value.0;
            if !(0.0..=100.0).contains(&pct) {
                return Err(TailConfigError::invalid(
                    &c.value.sampling_percentage,
                    "sampling_percentage must be between 0 and 100",
                ));
            }
            PolicyRule::Probabilistic {
                sampling_percentage: pct,
                hash_salt: c
                    .value
                    .hash_salt
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| DEFAULT_HASH_SALT.to_string()),
            }
        }
        "rate_limiting" => {
            let c = p
                .rate_limiting
                .as_ref()
                .ok_or_else(|| missing("rate_limiting"))?;
            let sps = &c.value.spans_per_second;
            if sps.value.0 <= 0 {
                return Err(TailConfigError::invalid(
                    sps,
                    "spans_per_second must be positive",
                ));
            }
            PolicyRule::RateLimiting {
                spans_per_second: sps.value.0,
            }
        }
        "bytes_limiting" => {
            let c = p
                .bytes_limiting
                .as_ref()
                .ok_or_else(|| missing("bytes_limiting"))?;
            let bps = &c.value.bytes_per_second;
            if bps.value.0 <= 0 {
                return Err(TailConfigError::invalid(
                    bps,
                    "bytes_per_second must be positive",
                ));
            }
            PolicyRule::BytesLimiting {
                bytes_per_second: bps.value.0,
                burst_capacity: c
                    .value
                    .burst_capacity
                    .map(|b| b.0)
                    .filter(|b| *b > 0)
                    .unwrap_or(bps.value.0.saturating_mul(2)),
            }
        }
        "span_count" => {
            let c = p.span_count.as_ref().ok_or_else(|| missing("span_count"))?;
            PolicyRule::SpanCount {
                min_spans: c.value.min_spans.map(|v| v.0).unwrap_or(0),
                max_spans: c.value.max_spans.map(|v| v.0).unwrap_or(0),
            }
        }
        "string_attribute" => {
            let c = p
                .string_attribute
                .as_ref()
                .ok_or_else(|| missing("string_attribute"))?;
            let regexes = if c.value.enabled_regex_matching {
                let mut out = Vec::new();
                for v in &c.value.values {
                    out.push(Regex::new(&v.value).map_err(|e| {
                        TailConfigError::invalid(v, format!("invalid regular expression: {e}"))
                    })?);
                }
                Some(out)
            } else {
                None
            };
            PolicyRule::StringAttribute {
                key: c.value.key.clone(),
                values: c
                    .value
                    .values
                    .iter()
                    .map(|v| v.value.clone())
                    .filter(|v| !v.is_empty())
                    .collect(),
                regexes,
                invert_match: c.value.invert_match,
            }
        }
        "numeric_attribute" => {
            let c = p
                .numeric_attribute
                .as_ref()
                .ok_or_else(|| missing("numeric_attribute"))?;
            if c.value.min_value.is_none() && c.value.max_value.is_none() {
                return Err(TailConfigError::invalid(
                    c,
                    "numeric_attribute needs min_value, max_value or both",
                ));
            }
            PolicyRule::NumericAttribute {
                key: c.value.key.clone(),
                min_value: c.value.min_value.map(|v| v.0).unwrap_or(i64::MIN),
                max_value: c.value.max_value.map(|v| v.0).unwrap_or(i64::MAX),
                invert_match: c.value.invert_match,
            }
        }
        "boolean_attribute" => {
            let c = p
                .boolean_attribute
                .as_ref()
                .ok_or_else(|| missing("boolean_attribute"))?;
            PolicyRule::BooleanAttribute {
                key: c.value.key.clone(),
                value: c.value.value,
                invert_match: c.value.invert_match,
            }
        }
        "trace_state" => {
            let c = p
                .trace_state
                .as_ref()
                .ok_or_else(|| missing("trace_state"))?;
            PolicyRule::TraceState {
                key: c.value.key.clone(),
                values: c.value.values.clone(),
            }
        }
        "and" => {
            let c = p.and.as_ref().ok_or_else(|| missing("and"))?;
            match build_subs(&c.value.and_sub_policy, c, unsupported, warnings)? {
                Some(subs) => PolicyRule::And(subs),
                None => return Ok(None),
            }
        }
        "drop" => {
            let c = p.drop.as_ref().ok_or_else(|| missing("drop"))?;
            match build_subs(&c.value.drop_sub_policy, c, unsupported, warnings)? {
                Some(subs) => PolicyRule::Drop(subs),
                None => return Ok(None),
            }
        }
        "composite" => {
            let c = p.composite.as_ref().ok_or_else(|| missing("composite"))?;
            let max_total = c.value.max_total_spans_per_second.value.0;
            if max_total <= 0 {
                return Err(TailConfigError::invalid(
                    &c.value.max_total_spans_per_second,
                    "max_total_spans_per_second must be positive",
                ));
            }
            let Some(subs) = build_subs(&c.value.composite_sub_policy, c, unsupported, warnings)?
            else {
                return Ok(None);
            };
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
            // The Collector's allocation: percent of the total when > 0, an equal share when
            // the percent is 0, and nothing at all for a sub-policy with no entry.
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
            PolicyRule::Composite {
                max_total_spans_per_second: max_total,
                sub_policies: with_rates,
            }
        }
        other => {
            unsupported.push(UnsupportedPolicy {
                name: name.value.clone(),
                policy_type: other.to_string(),
                line,
                within: None,
            });
            return Ok(None);
        }
    };
    Ok(Some(Policy {
        name: name.value.clone(),
        line,
        rule,
    }))
}

fn build_subs<T>(
    raws: &[Spanned<RawPolicy>],
    at: &Spanned<T>,
    unsupported: &mut Vec<UnsupportedPolicy>,
    warnings: &mut Vec<String>,
) -> Result<Option<Vec<Policy>>, TailConfigError> {
    if raws.is_empty() {
        return Err(TailConfigError::invalid(
            at,
            "needs at least one sub-policy",
        ));
    }
    let mut out = Vec::new();
    let mut complete = true;
    for r in raws {
        match build_policy(r, unsupported, warnings)? {
            Some(p) => out.push(p),
            None => complete = false,
        }
    }
    Ok(complete.then_some(out))
}
