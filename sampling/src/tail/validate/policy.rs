//! One policy: its keys checked against what the Collector accepts where the policy is
//! nested, its type resolved (a misspelt type is refused with a suggestion), its block
//! validated and compiled.

use regex::Regex;
use serde_saphyr::Spanned;
use tracelab_trace::StatusCode;

use super::locate::locate_in_scalar;
pub(crate) use super::nesting::Level;
use super::nesting::{block_of, hint, suggest};
use crate::tail::config::{DEFAULT_HASH_SALT, Policy, PolicyRule, TailConfigError};
use crate::tail::ottl::{Condition, ErrorMode, OttlConditions, OttlContext};
use crate::tail::raw::{RawPolicy, YamlInt};

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
    let all_types = Level::Top.types();
    let blocks: Vec<&str> = all_types.iter().filter_map(|t| block_of(t)).collect();
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
        let message = if all_types.contains(&t) {
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
        "composite" => super::composite::composite(p, name, &missing, source, warnings)?,
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

pub(crate) fn subs<T>(
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
