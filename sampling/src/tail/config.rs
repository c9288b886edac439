//! The validated `tail_sampling` configuration, and how it is found in a YAML file.
//!
//! Accepted shapes: a whole Collector configuration (`processors: {tail_sampling: ...}` or
//! `processors: {tail_sampling/<name>: ...}`), a file holding only `processors:`, a map whose
//! top-level keys are `tail_sampling[/<name>]`, or the processor block alone (`policies:` at
//! the top). With several `tail_sampling` processors, a name must be given.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_saphyr::Spanned;
use tracelab_trace::StatusCode;

use super::duration::parse_go_duration;
use super::raw::{RawBlock, RawPolicy, YamlInt};

/// The Collector's default `decision_wait`.
pub const DEFAULT_DECISION_WAIT_NANOS: u64 = 30_000_000_000;
/// The Collector's default `num_traces`.
pub const DEFAULT_NUM_TRACES: u64 = 50_000;
/// The Collector's salt for the `probabilistic` policy when none is configured.
pub const DEFAULT_HASH_SALT: &str = "default-hash-seed";

/// Why a tail-sampling configuration could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TailConfigError {
    /// The YAML is malformed or a field has the wrong shape or name.
    #[error("line {line}, column {column}: {message}")]
    Yaml {
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What the YAML reader said.
        message: String,
    },
    /// A field is well-formed but its value is not acceptable.
    #[error("line {line}, column {column}: {message}")]
    Invalid {
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// The file has no `tail_sampling` processor.
    #[error(
        "no tail_sampling processor found (expected processors.tail_sampling or a block with `policies:`)"
    )]
    NotFound,
    /// Several `tail_sampling` processors and no name given.
    #[error("several tail_sampling processors ({}); name the one to use", .0.join(", "))]
    Ambiguous(Vec<String>),
    /// The named processor is not in the file.
    #[error("no processor {wanted:?}; the file has {}", .available.join(", "))]
    NoSuchProcessor {
        /// The name asked for.
        wanted: String,
        /// The `tail_sampling` processors present.
        available: Vec<String>,
    },
    /// Strict mode: some policies are of types tracelab does not implement.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unsupported(Vec<UnsupportedPolicy>),
}

impl TailConfigError {
    fn invalid<T>(at: &Spanned<T>, message: impl Into<String>) -> Self {
        TailConfigError::Invalid {
            line: at.referenced.line(),
            column: at.referenced.column(),
            message: message.into(),
        }
    }

    fn from_yaml(err: serde_saphyr::Error) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        TailConfigError::Yaml {
            line,
            column,
            message: err.to_string(),
        }
    }
}

/// A policy whose type tracelab does not implement (`ottl_condition`, and any type newer
/// than this code).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnsupportedPolicy {
    /// The policy's name.
    pub name: String,
    /// Its `type`.
    pub policy_type: String,
    /// 1-based line where the policy starts.
    pub line: u64,
    /// The top-level policy left out because of it, when it is a sub-policy.
    pub within: Option<String>,
}

impl fmt::Display for UnsupportedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {:?} (type {}) at line {} is not supported by tracelab",
            self.name, self.policy_type, self.line
        )?;
        if let Some(parent) = &self.within {
            write!(f, ", so policy {parent:?} that contains it is left out")?;
        }
        Ok(())
    }
}

/// A validated `tail_sampling` configuration.
#[derive(Debug, Clone)]
pub struct TailSamplingConfig {
    /// `decision_wait` in nanoseconds.
    pub decision_wait_nanos: u64,
    /// `num_traces`: the ring of traces in memory.
    pub num_traces: u64,
    /// `expected_new_traces_per_sec` (a sizing hint only).
    pub expected_new_traces_per_sec: u64,
    /// `decision_cache.sampled_cache_size` (0 = none).
    pub sampled_cache_size: u64,
    /// `decision_cache.non_sampled_cache_size` (0 = none).
    pub non_sampled_cache_size: u64,
    /// `sample_on_first_match`.
    pub sample_on_first_match: bool,
    /// The policies honoured, in order.
    pub policies: Vec<Policy>,
}

/// One validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name.
    pub name: String,
    /// 1-based line where it starts.
    pub line: u64,
    /// What it does.
    pub rule: PolicyRule,
}

/// What a policy does, with the Collector's defaults filled in.
#[derive(Debug, Clone)]
pub enum PolicyRule {
    /// Samples every trace.
    AlwaysSample,
    /// Trace duration (earliest start to latest end, whole milliseconds): `>= threshold_ms`
    /// without an upper bound, `threshold_ms < d <= upper_threshold_ms` with one.
    Latency {
        /// Lower bound, ms.
        threshold_ms: i64,
        /// Upper bound, ms (0 = none).
        upper_threshold_ms: i64,
    },
    /// Any span's status is one of these.
    StatusCode {
        /// Accepted codes.
        codes: Vec<StatusCode>,
    },
    /// FNV-1a 64 of salt and trace id at most `percentage`% of `u64::MAX`.
    Probabilistic {
        /// 0 to 100.
        sampling_percentage: f64,
        /// Hash salt.
        hash_salt: String,
    },
    /// Token bucket of spans per second (capacity twice the rate).
    RateLimiting {
        /// Spans per second.
        spans_per_second: i64,
    },
    /// Token bucket of estimated bytes.
    BytesLimiting {
        /// Bytes per second.
        bytes_per_second: i64,
        /// Bucket size.
        burst_capacity: i64,
    },
    /// Span count within `[min_spans, max_spans]` (max 0 = none).
    SpanCount {
        /// Minimum.
        min_spans: i64,
        /// Maximum, 0 for none.
        max_spans: i64,
    },
    /// String attribute (span or resource) equal to / matching one of the values.
    StringAttribute {
        /// Attribute key.
        key: String,
        /// Exact values (when not regex matching).
        values: Vec<String>,
        /// Compiled expressions (regex matching).
        regexes: Option<Vec<Regex>>,
        /// Inverted match.
        invert_match: bool,
    },
    /// Integer attribute within `[min_value, max_value]`.
    NumericAttribute {
        /// Attribute key.
        key: String,
        /// Inclusive minimum (`i64::MIN` when unset).
        min_value: i64,
        /// Inclusive maximum (`i64::MAX` when unset).
        max_value: i64,
        /// Inverted match.
        invert_match: bool,
    },
    /// Boolean attribute equal to `value`.
    BooleanAttribute {
        /// Attribute key.
        key: String,
        /// Value.
        value: bool,
        /// Inverted match.
        invert_match: bool,
    },
    /// A tracestate member of some span has one of these values.
    TraceState {
        /// Member key.
        key: String,
        /// Accepted values.
        values: Vec<String>,
    },
    /// Some span has the sampled trace flag.
    TraceFlags,
    /// Every sub-policy samples.
    And(Vec<Policy>),
    /// Every sub-policy samples → the trace is dropped.
    Drop(Vec<Policy>),
    /// Sub-policies in order, each with its spans-per-second allocation.
    Composite {
        /// Spans per second over all of them.
        max_total_spans_per_second: i64,
        /// Sub-policies and their allocations.
        sub_policies: Vec<(Policy, i64)>,
    },
}

/// A configuration read leniently: the policies tracelab supports, plus what it left out.
#[derive(Debug, Clone)]
pub struct ParsedTailSampling {
    /// The processor's name in a Collector file (`tail_sampling`, `tail_sampling/x`), or
    /// `None` for a bare block.
    pub processor: Option<String>,
    /// The configuration with every supported policy.
    pub config: TailSamplingConfig,
    /// Policies left out because their type is not supported.
    pub unsupported: Vec<UnsupportedPolicy>,
    /// Things that are legal but probably not what the author meant.
    pub warnings: Vec<String>,
}

/// Reads a tail-sampling configuration, leaving out (and listing) unsupported policies.
///
/// `processor` picks one of several `tail_sampling/<name>` processors (full key, e.g.
/// `tail_sampling/errors`); it may be `None` when there is only one.
pub fn parse_tail_sampling(
    yaml: &str,
    processor: Option<&str>,
) -> Result<ParsedTailSampling, TailConfigError> {
    let (name, block) = locate_block(yaml, processor)?;
    let mut unsupported = Vec::new();
    let mut warnings = Vec::new();
    let config = validate_block(block, &mut unsupported, &mut warnings)?;
    Ok(ParsedTailSampling {
        processor: name,
        config,
        unsupported,
        warnings,
    })
}

/// Validates a block already read from a larger file (a strategies file's inline block), so
/// its locations are those of that file.
pub(crate) fn parse_raw_block(block: RawBlock) -> Result<ParsedTailSampling, TailConfigError> {
    let mut unsupported = Vec::new();
    let mut warnings = Vec::new();
    let config = validate_block(block, &mut unsupported, &mut warnings)?;
    Ok(ParsedTailSampling {
        processor: None,
        config,
        unsupported,
        warnings,
    })
}

/// Reads a tail-sampling configuration, refusing it when any policy is unsupported.
pub fn parse_tail_sampling_strict(
    yaml: &str,
    processor: Option<&str>,
) -> Result<TailSamplingConfig, TailConfigError> {
    let parsed = parse_tail_sampling(yaml, processor)?;
    if parsed.unsupported.is_empty() {
        Ok(parsed.config)
    } else {
        Err(TailConfigError::Unsupported(parsed.unsupported))
    }
}

fn is_tail_sampling_key(k: &str) -> bool {
    k == "tail_sampling" || k.starts_with("tail_sampling/")
}

/// Finds the processor block in any accepted shape and reads it.
fn locate_block(
    yaml: &str,
    wanted: Option<&str>,
) -> Result<(Option<String>, RawBlock), TailConfigError> {
    let top: BTreeMap<String, IgnoredAny> =
        serde_saphyr::from_str(yaml).map_err(TailConfigError::from_yaml)?;
    let (nested, names): (bool, Vec<String>) = if top.contains_key("processors") {
        #[derive(serde::Deserialize)]
        struct Processors {
            processors: Option<BTreeMap<String, IgnoredAny>>,
        }
        let p: Processors = serde_saphyr::from_str(yaml).map_err(TailConfigError::from_yaml)?;
        let names = p
            .processors
            .unwrap_or_default()
            .into_keys()
            .filter(|k| is_tail_sampling_key(k))
            .collect();
        (true, names)
    } else if top.keys().any(|k| is_tail_sampling_key(k)) {
        (
            false,
            top.keys()
                .filter(|k| is_tail_sampling_key(k))
                .cloned()
                .collect(),
        )
    } else if top.contains_key("policies") {
        let block: RawBlock = serde_saphyr::from_str(yaml).map_err(TailConfigError::from_yaml)?;
        return Ok((None, block));
    } else {
        return Err(TailConfigError::NotFound);
    };
    let chosen = match wanted {
        Some(w) => names
            .iter()
            .find(|n| *n == w || n.strip_prefix("tail_sampling/") == Some(w))
            .cloned()
            .ok_or_else(|| TailConfigError::NoSuchProcessor {
                wanted: w.to_string(),
                available: names.clone(),
            })?,
        None => match names.as_slice() {
            [] => return Err(TailConfigError::NotFound),
            [only] => only.clone(),
            _ => return Err(TailConfigError::Ambiguous(names)),
        },
    };
    let seed = BlockSeed {
        nested,
        key: chosen.clone(),
    };
    let block = serde_saphyr::with_deserializer_from_str(yaml, |d| seed.deserialize(d))
        .map_err(TailConfigError::from_yaml)?
        .ok_or(TailConfigError::NotFound)?;
    Ok((Some(chosen), block))
}

/// Walks `processors:` (when `nested`) and then to `key`, skipping everything else, so
/// locations stay those of the original file.
struct BlockSeed {
    nested: bool,
    key: String,
}

impl<'de> DeserializeSeed<'de> for BlockSeed {
    type Value = Option<RawBlock>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BlockSeed {
    type Value = Option<RawBlock>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(k) = map.next_key::<String>()? {
            if self.nested && k == "processors" {
                let inner = BlockSeed {
                    nested: false,
                    key: self.key.clone(),
                };
                found = map.next_value_seed(inner)?;
            } else if !self.nested && k == self.key {
                found = Some(map.next_value::<RawBlock>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

fn non_negative(v: &Spanned<YamlInt>, what: &str) -> Result<u64, TailConfigError> {
    u64::try_from(v.value.0)
        .map_err(|_| TailConfigError::invalid(v, format!("{what} must not be negative")))
}

fn validate_block(
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
    let mut seen = std::collections::HashSet::new();
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
