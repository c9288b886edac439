//! The `tail_sampling` YAML exactly as the Collector spells it, before validation.
//!
//! Every field that users write carries its location (`Spanned`) so that validation errors
//! can name a line and column. A policy is read with a hand-written map visitor rather than
//! `deny_unknown_fields`: the configuration block of a policy type tracelab does not support
//! (`ottl_condition: {...}`) must be skipped and reported, while a misspelt key must still be
//! an error.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// An integer that may be written with digit separators (`100_000`), which the Collector's
/// YAML reader accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct YamlInt(pub i64);

/// A number that may be written as an integer, a float, or with digit separators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct YamlFloat(pub f64);

struct NumberVisitor {
    integer: bool,
}

impl Visitor<'_> for NumberVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.integer {
            "an integer"
        } else {
            "a number"
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        if self.integer && v.fract() != 0.0 {
            return Err(E::invalid_value(de::Unexpected::Float(v), &self));
        }
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        let cleaned: String = v.chars().filter(|c| *c != '_').collect();
        let parsed = if self.integer {
            cleaned.parse::<i64>().map(|i| i as f64).ok()
        } else {
            cleaned.parse::<f64>().ok()
        };
        parsed.ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for YamlInt {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor { integer: true })
            .map(|v| YamlInt(v as i64))
    }
}

impl<'de> Deserialize<'de> for YamlFloat {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberVisitor { integer: false })
            .map(YamlFloat)
    }
}

/// The processor block: `tail_sampling: {...}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlock {
    /// Wait after a trace's first span before deciding (Go duration, default 30s).
    #[serde(default)]
    pub decision_wait: Option<Spanned<String>>,
    /// Traces kept in memory (default 50000).
    #[serde(default)]
    pub num_traces: Option<Spanned<YamlInt>>,
    /// A sizing hint; accepted and reported, it changes no decision.
    #[serde(default)]
    pub expected_new_traces_per_sec: Option<YamlInt>,
    /// Decision caches for late spans.
    #[serde(default)]
    pub decision_cache: Option<RawDecisionCache>,
    /// Stop evaluating at the first policy that samples.
    #[serde(default)]
    pub sample_on_first_match: Option<bool>,
    /// Accepted for compatibility; the lab always decides pending traces at the end.
    #[serde(default)]
    pub drop_pending_traces_on_shutdown: Option<bool>,
    /// The policies, in evaluation order.
    pub policies: Vec<Spanned<RawPolicy>>,
}

/// `decision_cache: {...}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDecisionCache {
    /// Trace ids remembered as sampled (LRU; 0 = no cache).
    #[serde(default)]
    pub sampled_cache_size: Option<Spanned<YamlInt>>,
    /// Trace ids remembered as not sampled (LRU; 0 = no cache).
    #[serde(default)]
    pub non_sampled_cache_size: Option<Spanned<YamlInt>>,
}

/// One policy: a name, a type, and the configuration blocks (only the one named by the type
/// is used, as in the Collector).
#[derive(Debug, Default)]
pub(crate) struct RawPolicy {
    pub name: Option<Spanned<String>>,
    pub kind: Option<Spanned<String>>,
    pub latency: Option<Spanned<LatencyCfg>>,
    pub numeric_attribute: Option<Spanned<NumericCfg>>,
    pub probabilistic: Option<Spanned<ProbabilisticCfg>>,
    pub status_code: Option<Spanned<StatusCodeCfg>>,
    pub string_attribute: Option<Spanned<StringCfg>>,
    pub rate_limiting: Option<Spanned<RateLimitingCfg>>,
    pub bytes_limiting: Option<Spanned<BytesLimitingCfg>>,
    pub span_count: Option<Spanned<SpanCountCfg>>,
    pub trace_state: Option<Spanned<TraceStateCfg>>,
    pub boolean_attribute: Option<Spanned<BooleanCfg>>,
    pub and: Option<Spanned<AndCfg>>,
    pub drop: Option<Spanned<DropCfg>>,
    pub composite: Option<Spanned<CompositeCfg>>,
    /// Keys tracelab does not know, with their values skipped.
    pub other_keys: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawPolicy {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RawPolicyVisitor)
    }
}

struct RawPolicyVisitor;

impl<'de> Visitor<'de> for RawPolicyVisitor {
    type Value = RawPolicy;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a policy mapping with `name` and `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPolicy, A::Error> {
        let mut p = RawPolicy::default();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            match key.value.as_str() {
                "name" => p.name = Some(map.next_value()?),
                "type" => p.kind = Some(map.next_value()?),
                "latency" => p.latency = Some(map.next_value()?),
                "numeric_attribute" => p.numeric_attribute = Some(map.next_value()?),
                "probabilistic" => p.probabilistic = Some(map.next_value()?),
                "status_code" => p.status_code = Some(map.next_value()?),
                "string_attribute" => p.string_attribute = Some(map.next_value()?),
                "rate_limiting" => p.rate_limiting = Some(map.next_value()?),
                "bytes_limiting" => p.bytes_limiting = Some(map.next_value()?),
                "span_count" => p.span_count = Some(map.next_value()?),
                "trace_state" => p.trace_state = Some(map.next_value()?),
                "boolean_attribute" => p.boolean_attribute = Some(map.next_value()?),
                "and" => p.and = Some(map.next_value()?),
                "drop" => p.drop = Some(map.next_value()?),
                "composite" => p.composite = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    p.other_keys.push(key);
                }
            }
        }
        Ok(p)
    }
}

/// `latency: {threshold_ms, upper_threshold_ms}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LatencyCfg {
    /// Lower bound in milliseconds.
    #[serde(default)]
    pub threshold_ms: Option<YamlInt>,
    /// Upper bound in milliseconds (0 or absent: none).
    #[serde(default)]
    pub upper_threshold_ms: Option<YamlInt>,
}

/// `numeric_attribute: {key, min_value, max_value, invert_match}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumericCfg {
    /// Attribute key, looked up on spans and resources.
    pub key: String,
    /// Inclusive lower bound.
    #[serde(default)]
    pub min_value: Option<YamlInt>,
    /// Inclusive upper bound.
    #[serde(default)]
    pub max_value: Option<YamlInt>,
    /// Sample traces with no value in range instead.
    #[serde(default)]
    pub invert_match: bool,
}

/// `probabilistic: {sampling_percentage, hash_salt}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProbabilisticCfg {
    /// Percentage of traces to keep, 0 to 100.
    pub sampling_percentage: Spanned<YamlFloat>,
    /// Salt hashed before the trace id (default `default-hash-seed`).
    #[serde(default)]
    pub hash_salt: Option<String>,
}

/// `status_code: {status_codes}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusCodeCfg {
    /// `OK`, `ERROR` and/or `UNSET`.
    pub status_codes: Vec<Spanned<String>>,
}

/// `string_attribute: {...}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StringCfg {
    /// Attribute key, looked up on spans and resources.
    pub key: String,
    /// Exact values, or regular expressions with `enabled_regex_matching`.
    pub values: Vec<Spanned<String>>,
    /// Treat `values` as (unanchored) regular expressions.
    #[serde(default)]
    pub enabled_regex_matching: bool,
    /// Size of the regex match cache (default 128); it changes no decision, so it is read
    /// and ignored.
    #[serde(default, rename = "cache_max_size")]
    pub _cache_max_size: Option<YamlInt>,
    /// Sample traces where no span or resource matches instead.
    #[serde(default)]
    pub invert_match: bool,
}

/// `rate_limiting: {spans_per_second}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitingCfg {
    /// Sustained spans per second (bucket of twice that).
    pub spans_per_second: Spanned<YamlInt>,
}

/// `bytes_limiting: {bytes_per_second, burst_capacity}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BytesLimitingCfg {
    /// Sustained bytes per second.
    pub bytes_per_second: Spanned<YamlInt>,
    /// Bucket size in bytes (default twice `bytes_per_second`).
    #[serde(default)]
    pub burst_capacity: Option<YamlInt>,
}

/// `span_count: {min_spans, max_spans}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpanCountCfg {
    /// Inclusive minimum number of spans.
    #[serde(default)]
    pub min_spans: Option<YamlInt>,
    /// Inclusive maximum (0 or absent: none).
    #[serde(default)]
    pub max_spans: Option<YamlInt>,
}

/// `trace_state: {key, values}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TraceStateCfg {
    /// Tracestate member key.
    pub key: String,
    /// Values that sample.
    pub values: Vec<String>,
}

/// `boolean_attribute: {key, value, invert_match}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BooleanCfg {
    /// Attribute key, looked up on spans and resources.
    pub key: String,
    /// The value that samples.
    pub value: bool,
    /// Sample traces where no span or resource has the value instead.
    #[serde(default)]
    pub invert_match: bool,
}

/// `and: {and_sub_policy}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AndCfg {
    /// Every one must sample.
    pub and_sub_policy: Vec<Spanned<RawPolicy>>,
}

/// `drop: {drop_sub_policy}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DropCfg {
    /// When every one samples, the trace is dropped whatever other policies say.
    pub drop_sub_policy: Vec<Spanned<RawPolicy>>,
}

/// `composite: {...}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompositeCfg {
    /// Spans per second over all sub-policies.
    pub max_total_spans_per_second: Spanned<YamlInt>,
    /// Names of the sub-policies in order (validated; the Collector evaluates
    /// `composite_sub_policy` in its own order).
    #[serde(default)]
    pub policy_order: Vec<Spanned<String>>,
    /// The sub-policies.
    pub composite_sub_policy: Vec<Spanned<RawPolicy>>,
    /// Share of `max_total_spans_per_second` per sub-policy.
    #[serde(default)]
    pub rate_allocation: Vec<Spanned<RateAllocationCfg>>,
}

/// One `rate_allocation` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateAllocationCfg {
    /// Sub-policy name.
    pub policy: String,
    /// Percent of the composite's total.
    pub percent: YamlInt,
}
