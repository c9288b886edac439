//! The `tail_sampling` YAML exactly as the Collector spells it, before validation.
//!
//! Every field that users write carries its location (`Spanned`) so that validation errors
//! can name a line and column. A policy is read with a hand-written map visitor rather than
//! `deny_unknown_fields`: which configuration blocks a policy may carry depends on where it
//! is nested (an `and` sub-policy cannot hold a `composite:` block), so the visitor records
//! every key and validation decides, with the key's location.

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

/// The processor block: `tail_sampling: {...}`, with every key of contrib 0.157.0.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlock {
    /// Wait after a trace's first span before deciding (Go duration, default 30s).
    #[serde(default)]
    pub decision_wait: Option<Spanned<String>>,
    /// Wait after a trace's root span arrives before deciding, when sooner (default 0s: off).
    #[serde(default)]
    pub decision_wait_after_root_received: Option<Spanned<String>>,
    /// Traces kept in memory (default 50000).
    #[serde(default)]
    pub num_traces: Option<Spanned<YamlInt>>,
    /// A sizing hint; accepted and reported, it changes no decision.
    #[serde(default)]
    pub expected_new_traces_per_sec: Option<Spanned<YamlInt>>,
    /// Decision caches for late spans.
    #[serde(default)]
    pub decision_cache: Option<RawDecisionCache>,
    /// Stop evaluating at the first policy that samples.
    #[serde(default)]
    pub sample_on_first_match: Option<bool>,
    /// Drop pending traces at shutdown instead of deciding them.
    #[serde(default)]
    pub drop_pending_traces_on_shutdown: Option<Spanned<bool>>,
    /// Traces whose buffered spans grow past this many bytes are dropped at once (0: off).
    #[serde(default)]
    pub maximum_trace_size_bytes: Option<Spanned<YamlInt>>,
    /// Wait for room instead of evicting the oldest trace when `num_traces` is reached.
    #[serde(default)]
    pub block_on_overflow: Option<Spanned<bool>>,
    /// `trace-complete` (default) or `span-ingest`.
    #[serde(default)]
    pub sampling_strategy: Option<Spanned<String>>,
    /// A tail storage extension holding the buffered spans (feature-gated in the Collector).
    #[serde(default)]
    pub tail_storage: Option<Spanned<String>>,
    /// Read only to refuse it with a precise message: it arrived in contrib 0.159.0.
    #[serde(default)]
    pub num_shards: Option<Spanned<YamlInt>>,
    /// The policies, in evaluation order.
    #[serde(default)]
    pub policies: Option<Spanned<Vec<Spanned<RawPolicy>>>>,
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
/// is used, as in the Collector, but every block present must be one the Collector accepts
/// at the policy's nesting level).
#[derive(Debug, Default)]
pub(crate) struct RawPolicy {
    /// `name`: unique among the top-level policies.
    pub name: Option<Spanned<String>>,
    /// `type`: which block is read.
    pub kind: Option<Spanned<String>>,
    // One field per configuration block, named as the block is.
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
    pub not: Option<Spanned<NotCfg>>,
    pub ottl_condition: Option<Spanned<OttlCfg>>,
    /// Every key present, in order, so validation can refuse the blocks the Collector does
    /// not accept at this nesting level and the keys that are no policy field at all (their
    /// values are skipped when read).
    pub keys: Vec<Spanned<String>>,
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
            p.keys.push(key.clone());
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
                "not" => p.not = Some(map.next_value()?),
                "ottl_condition" => p.ottl_condition = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
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
    /// Lower bound in milliseconds (exclusive).
    #[serde(default)]
    pub threshold_ms: Option<Spanned<YamlInt>>,
    /// Upper bound in milliseconds, inclusive (0 or absent: none).
    #[serde(default)]
    pub upper_threshold_ms: Option<Spanned<YamlInt>>,
}

/// `numeric_attribute: {key, min_value, max_value, invert_match}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumericCfg {
    /// Attribute key, looked up on spans and resources.
    pub key: String,
    /// Inclusive lower bound (0 or absent: none, as in the Collector).
    #[serde(default)]
    pub min_value: Option<Spanned<YamlInt>>,
    /// Inclusive upper bound (0 or absent: none, as in the Collector).
    #[serde(default)]
    pub max_value: Option<Spanned<YamlInt>>,
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
    /// Size of the regex match cache (default 128); it changes no decision.
    #[serde(default)]
    pub cache_max_size: Option<Spanned<YamlInt>>,
    /// Sample traces where no span or resource matches instead.
    #[serde(default)]
    pub invert_match: bool,
}

/// `rate_limiting: {spans_per_second, burst_capacity}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimitingCfg {
    /// Sustained spans per second.
    pub spans_per_second: Spanned<YamlInt>,
    /// Bucket size in spans (default twice `spans_per_second`).
    #[serde(default)]
    pub burst_capacity: Option<Spanned<YamlInt>>,
}

/// `bytes_limiting: {bytes_per_second, burst_capacity}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BytesLimitingCfg {
    /// Sustained bytes per second.
    pub bytes_per_second: Spanned<YamlInt>,
    /// Bucket size in bytes (default twice `bytes_per_second`).
    #[serde(default)]
    pub burst_capacity: Option<Spanned<YamlInt>>,
}

/// `span_count: {min_spans, max_spans}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpanCountCfg {
    /// Inclusive minimum number of spans.
    #[serde(default)]
    pub min_spans: Option<Spanned<YamlInt>>,
    /// Inclusive maximum (0 or absent: none).
    #[serde(default)]
    pub max_spans: Option<Spanned<YamlInt>>,
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

/// `not: {not_sub_policy}`: one policy whose decision is inverted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotCfg {
    /// The policy to invert.
    pub not_sub_policy: Box<Spanned<RawPolicy>>,
}

/// `ottl_condition: {error_mode, span, spanevent}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OttlCfg {
    /// `propagate` (default), `ignore` or `silent`.
    #[serde(default)]
    pub error_mode: Option<Spanned<String>>,
    /// Conditions on each span; any true one samples.
    #[serde(default)]
    pub span: Vec<Spanned<String>>,
    /// Conditions on each span event; any true one samples.
    #[serde(default)]
    pub spanevent: Vec<Spanned<String>>,
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
