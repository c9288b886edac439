//! One policy: its keys checked against what the Collector accepts where the policy is
//! nested, its type resolved (a misspelt type is refused with a suggestion), its block
//! validated and compiled.

use regex::Regex;
use serde_saphyr::Spanned;
use tracelab_trace::StatusCode;

use super::locate::locate_in_scalar;
use crate::tail::config::{DEFAULT_HASH_SALT, Policy, PolicyRule, TailConfigError};
use crate::tail::ottl::{Condition, ErrorMode, OttlConditions, OttlContext};
use crate::tail::raw::{RawPolicy, YamlInt};

/// Where a policy sits, which decides the types and blocks the Collector accepts in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Top,
    /// In `and_sub_policy` or `drop_sub_policy`.
    AndOrDrop,
    /// In `composite_sub_policy`.
    Composite,
    /// The `not_sub_policy`.
    Not,
}

impl Level {
    fn describe(self) -> &'static str {
        match self {
            Level::Top => "`policies`",
            Level::AndOrDrop => "an `and_sub_policy` or `drop_sub_policy`",
            Level::Composite => "a `composite_sub_policy`",
            Level::Not => "a `not_sub_policy`",
        }
    }

    /// The policy types accepted at this level (contrib 0.157.0).
    fn types(self) -> Vec<&'static str> {
        let mut t = SHARED.to_vec();
        match self {
            Level::Top => t.extend(["and", "not", "drop", "composite"]),
            Level::AndOrDrop => t.push("not"),
            Level::Composite => t.push("and"),
            Level::Not => {}
        }
        t
    }
}

/// The types every nesting level accepts.
const SHARED: &[&str] = &[
    "always_sample",
    "latency",
    "numeric_attribute",
    "probabilistic",
    "status_code",
    "string_attribute",
    "rate_limiting",
    "bytes_limiting",
    "span_count",
    "trace_state",
    "trace_flags",
    "boolean_attribute",
    "ottl_condition",
];

/// Every policy type of contrib 0.157.0.
const ALL_TYPES: &[&str] = &[
    "always_sample",
    "latency",
    "numeric_attribute",
    "probabilistic",
    "status_code",
    "string_attribute",
    "rate_limiting",
    "bytes_limiting",
    "span_count",
    "trace_state",
    "trace_flags",
    "boolean_attribute",
    "ottl_condition",
    "and",
    "not",
    "drop",
    "composite",
];

/// The configuration block a type reads, if it has one.
fn block_of(t: &str) -> Option<&str> {
    match t {
        "always_sample" | "trace_flags" => None,
        other => Some(other),
    }
}

/// The closest known word within two edits, for "did you mean".
pub(crate) fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn hint(word: &str, known: &[&str]) -> String {
    suggest(word, known)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// Validates and compiles one policy at a nesting level.
pub(crate) fn build_policy(
    raw: &Spanned<RawPolicy>,
    level: Level,
    source: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Policy, TailConfigError> {
    let p = &raw.value;
    let name = p
        .name
        .as_ref()
        .ok_or_else(|| TailConfigError::invalid(raw, "policy without a `name`"))?;
    let kind = p.kind.as_ref().ok_or_else(|| {
        TailConfigError::invalid(raw, format!("policy {:?} has no `type`", name.value))
    })?;
    let line = name.referenced.line().min(kind.referenced.line());
    let allowed = level.types();
    // Keys first, in the order written: the Collector refuses an unknown key, and a block
    // the nesting level does not have, before it looks at the type.
    let blocks: Vec<&str> = ALL_TYPES.iter().filter_map(|t| block_of(t)).collect();
    let allowed_blocks: Vec<&str> = allowed.iter().filter_map(|t| block_of(t)).collect();
    for key in &p.keys {
        let k = key.value.as_str();
        if k == "name" || k == "type" || allowed_blocks.contains(&k) {
            continue;
        }
        let message = if blocks.contains(&k) {
            format!(
                "`{k}:` cannot appear in {}: the Collector accepts there only {}",
                level.describe(),
                allowed.join(", ")
            )
        } else {
            let mut fields = vec!["name", "type"];
            fields.extend(&allowed_blocks);
            format!(
                "unknown field `{k}` in policy {:?}{}",
                name.value,
                hint(k, &fields)
            )
        };
        return Err(TailConfigError::invalid(key, message));
    }
    let t = kind.value.as_str();
    if !allowed.contains(&t) {
        let message = if ALL_TYPES.contains(&t) {
            format!(
                "a policy of type `{t}` cannot be nested in {}: the Collector accepts there only {}",
                level.describe(),
                allowed.join(", ")
            )
        } else {
            let mut m = format!("unknown policy type `{t}`{}", hint(t, &allowed));
            if t == "skip" {
                m.push_str(" (`skip` was proposed upstream but is not a policy type of contrib 0.157.0; a `drop` policy drops matching traces)");
            } else if suggest(t, &allowed).is_none() {
                m.push_str(&format!("; the types are {}", allowed.join(", ")));
            }
            m
        };
        return Err(TailConfigError::invalid(kind, message));
    }
    let missing = |block: &str| {
        TailConfigError::invalid(
            kind,
            format!(
                "policy {:?} (type {t}) needs a `{block}:` block",
                name.value
            ),
        )
    };
    let rule = match t {
        "always_sample" => PolicyRule::AlwaysSample,
        "trace_flags" => PolicyRule::TraceFlags,
        "latency" => {
            let c = p.latency.as_ref().ok_or_else(|| missing("latency"))?;
            let lower = c
                .value
                .threshold_ms
                .as_ref()
                .map(|v| v.value.0)
                .unwrap_or(0);
            let upper = c.value.upper_threshold_ms.as_ref();
            if let Some(u) = upper.filter(|u| u.value.0 != 0 && u.value.0 <= lower) {
                return Err(TailConfigError::invalid(
                    u,
                    format!(
                        "upper_threshold_ms {} is not above threshold_ms {lower}: the policy samples durations d with threshold_ms < d <= upper_threshold_ms, so it could never sample",
                        u.value.0
                    ),
                ));
            }
            PolicyRule::Latency {
                threshold_ms: lower,
                upper_threshold_ms: upper.map(|u| u.value.0).unwrap_or(0),
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
            if pct.is_nan() {
                return Err(TailConfigError::invalid(
                    &c.value.sampling_percentage,
                    "sampling_percentage is not a number",
                ));
            }
            if pct < 0.0 {
                warnings.push(format!(
                    "line {}: policy {:?}: a negative sampling_percentage samples nothing",
                    c.value.sampling_percentage.referenced.line(),
                    name.value
                ));
            }
            PolicyRule::Probabilistic {
                // The Collector treats 100 and above as "every trace".
                sampling_percentage: pct.clamp(0.0, 100.0),
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
            let (rate, burst) = bucket(
                &c.value.spans_per_second,
                c.value.burst_capacity.as_ref(),
                "spans_per_second",
            )?;
            PolicyRule::RateLimiting {
                spans_per_second: rate,
                burst_capacity: burst,
            }
        }
        "bytes_limiting" => {
            let c = p
                .bytes_limiting
                .as_ref()
                .ok_or_else(|| missing("bytes_limiting"))?;
            let (rate, burst) = bucket(
                &c.value.bytes_per_second,
                c.value.burst_capacity.as_ref(),
                "bytes_per_second",
            )?;
            PolicyRule::BytesLimiting {
                bytes_per_second: rate,
                burst_capacity: burst,
            }
        }
        "span_count" => {
            let c = p.span_count.as_ref().ok_or_else(|| missing("span_count"))?;
            let min = c.value.min_spans.as_ref().map(|v| v.value.0).unwrap_or(0);
            let max = c.value.max_spans.as_ref();
            if let Some(m) = max.filter(|m| m.value.0 != 0 && m.value.0 < min) {
                return Err(TailConfigError::invalid(
                    m,
                    format!(
                        "max_spans {} is below min_spans {min}: the policy could never sample",
                        m.value.0
                    ),
                ));
            }
            PolicyRule::SpanCount {
                min_spans: min,
                max_spans: max.map(|m| m.value.0).unwrap_or(0),
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
            if let Some(size) = &c.value.cache_max_size {
                warnings.push(format!(
                    "line {}: policy {:?}: cache_max_size has no effect in a replay (it sizes the Collector's regex result cache)",
                    size.referenced.line(),
                    name.value
                ));
            }
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
            // As in the Collector, a bound of 0 is no bound.
            fn bound(v: &Option<Spanned<YamlInt>>) -> Option<&Spanned<YamlInt>> {
                v.as_ref().filter(|b| b.value.0 != 0)
            }
            let (min, max) = (bound(&c.value.min_value), bound(&c.value.max_value));
            if min.is_none() && max.is_none() {
                return Err(TailConfigError::invalid(
                    c,
                    "numeric_attribute needs a non-zero min_value, max_value or both (the Collector reads 0 as \"no bound\")",
                ));
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo.value.0 > hi.value.0
            {
                return Err(TailConfigError::invalid(
                    lo,
                    format!(
                        "min_value {} is greater than max_value {}",
                        lo.value.0, hi.value.0
                    ),
                ));
            }
            PolicyRule::NumericAttribute {
                key: c.value.key.clone(),
                min_value: min.map(|v| v.value.0).unwrap_or(i64::MIN),
                max_value: max.map(|v| v.value.0).unwrap_or(i64::MAX),
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
        "ottl_condition" => {
            let c = p
                .ottl_condition
                .as_ref()
                .ok_or_else(|| missing("ottl_condition"))?;
            let error_mode = match &c.value.error_mode {
                None => ErrorMode::default(),
                Some(m) => ErrorMode::parse(&m.value).ok_or_else(|| {
                    TailConfigError::invalid(
                        m,
                        format!(
                            "error_mode {:?} is not one of propagate, ignore, silent",
                            m.value
                        ),
                    )
                })?,
            };
            if c.value.span.is_empty() && c.value.spanevent.is_empty() {
                return Err(TailConfigError::invalid(
                    c,
                    "ottl_condition needs at least one condition under `span:` or `spanevent:`",
                ));
            }
            let parse_all = |list: &[Spanned<String>], ctx: OttlContext| {
                list.iter()
                    .enumerate()
                    .map(|(i, text)| {
                        Condition::parse(&text.value, ctx).map_err(|e| {
                            let (l, col) = locate_in_scalar(source, text, e.column);
                            TailConfigError::invalid_at(
                                l,
                                col,
                                format!(
                                    "policy {:?}: ottl_condition {}[{i}]: {} (column {} of the condition `{}`)",
                                    name.value,
                                    ctx.name(),
                                    e.message,
                                    e.column,
                                    text.value
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            PolicyRule::OttlCondition(OttlConditions::new(
                parse_all(&c.value.span, OttlContext::Span)?,
                parse_all(&c.value.spanevent, OttlContext::SpanEvent)?,
                error_mode,
            ))
        }
        "and" => {
            let c = p.and.as_ref().ok_or_else(|| missing("and"))?;
            let sub_level = Level::AndOrDrop;
            PolicyRule::And(subs(
                &c.value.and_sub_policy,
                c,
                sub_level,
                source,
                warnings,
            )?)
        }
        "drop" => {
            let c = p.drop.as_ref().ok_or_else(|| missing("drop"))?;
            PolicyRule::Drop(subs(
                &c.value.drop_sub_policy,
                c,
                Level::AndOrDrop,
                source,
                warnings,
            )?)
        }
        "not" => {
            let c = p.not.as_ref().ok_or_else(|| missing("not"))?;
            PolicyRule::Not(Box::new(build_policy(
                &c.value.not_sub_policy,
                Level::Not,
                source,
                warnings,
            )?))
        }
        "composite" => composite(p, name, &missing, source, warnings)?,
        other => {
            return Err(TailConfigError::invalid(
                kind,
                format!("unknown policy type `{other}`"),
            ));
        }
    };
    Ok(Policy {
        name: name.value.clone(),
        line,
        rule,
    })
}

/// A token bucket's rate and burst: the rate must be positive; a burst of 0 or none is twice
/// the rate, as in the Collector.
fn bucket(
    rate: &Spanned<YamlInt>,
    burst: Option<&Spanned<YamlInt>>,
    what: &str,
) -> Result<(i64, i64), TailConfigError> {
    if rate.value.0 <= 0 {
        return Err(TailConfigError::invalid(
            rate,
            format!("{what} must be positive"),
        ));
    }
    let burst = match burst {
        Some(b) if b.value.0 < 0 => {
            return Err(TailConfigError::invalid(
                b,
                "burst_capacity must not be negative",
            ));
        }
        Some(b) if b.value.0 > 0 => b.value.0,
        _ => rate.value.0.saturating_mul(2),
    };
    Ok((rate.value.0, burst))
}

fn subs<T>(
    raws: &[Spanned<RawPolicy>],
    at: &Spanned<T>,
    level: Level,
    source: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Policy>, TailConfigError> {
    if raws.is_empty() {
        return Err(TailConfigError::invalid(
            at,
            "needs at least one sub-policy",
        ));
    }
    raws.iter()
        .map(|r| build_policy(r, level, source, warnings))
        .collect()
}

fn composite(
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
