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

use super::raw::RawBlock;
use super::validate::validate_block;

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
}

impl TailConfigError {
    pub(crate) fn invalid<T>(at: &Spanned<T>, message: impl Into<String>) -> Self {
        TailConfigError::Invalid {
            line: at.referenced.line(),
            column: at.referenced.column(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid_at(line: u64, column: u64, message: impl Into<String>) -> Self {
        TailConfigError::Invalid {
            line,
            column,
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

/// How the processor times its decisions (`sampling_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplingStrategy {
    /// Decide on the spans buffered when the decision wait ends (the default).
    #[default]
    TraceComplete,
    /// Evaluate each arriving batch on its own: a sample or drop vote decides at once, and a
    /// trace still undecided when its wait ends is not sampled.
    SpanIngest,
}

/// A validated `tail_sampling` configuration.
#[derive(Debug, Clone)]
pub struct TailSamplingConfig {
    /// `decision_wait` in nanoseconds.
    pub decision_wait_nanos: u64,
    /// `decision_wait_after_root_received` in nanoseconds (0 = off).
    pub decision_wait_after_root_nanos: u64,
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
    /// `maximum_trace_size_bytes` (0 = no limit), compared with tracelab's byte estimate.
    pub maximum_trace_size_bytes: u64,
    /// `block_on_overflow`: undecided traces are never evicted from the ring.
    pub block_on_overflow: bool,
    /// `sampling_strategy`.
    pub sampling_strategy: SamplingStrategy,
    /// `drop_pending_traces_on_shutdown` (no effect in a replay, which ends without one).
    pub drop_pending_traces_on_shutdown: bool,
    /// `tail_storage` (no effect in a replay: it changes where spans wait, not when).
    pub tail_storage: Option<String>,
    /// The policies, in order.
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
    /// Trace duration (earliest start to latest end, whole milliseconds) above
    /// `threshold_ms`; with an upper bound, the duration of the spans received so far, taken
    /// after each span in arrival order, within `threshold_ms < d <= upper_threshold_ms` at
    /// some point.
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
    /// Token bucket of spans.
    RateLimiting {
        /// Spans per second.
        spans_per_second: i64,
        /// Bucket size in spans.
        burst_capacity: i64,
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
        /// Sample when no span or resource matches instead.
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
    /// The sub-policy's "sampled" and "not sampled" swapped.
    Not(Box<Policy>),
    /// OTTL conditions on spans and span events; any true one samples.
    OttlCondition(crate::tail::ottl::OttlConditions),
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

/// A configuration as read, with what the reader has to say about it.
#[derive(Debug, Clone)]
pub struct ParsedTailSampling {
    /// The processor's name in a Collector file (`tail_sampling`, `tail_sampling/x`), or
    /// `None` for a bare block.
    pub processor: Option<String>,
    /// The configuration.
    pub config: TailSamplingConfig,
    /// Things that are legal but probably not what the author meant, and settings that have
    /// no effect in a replay; each said once.
    pub warnings: Vec<String>,
}

/// Reads a tail-sampling configuration. Everything the Collector 0.157.0 refuses is refused
/// here too, with its line and column.
///
/// `processor` picks one of several `tail_sampling/<name>` processors (full key, e.g.
/// `tail_sampling/errors`); it may be `None` when there is only one.
pub fn parse_tail_sampling(
    yaml: &str,
    processor: Option<&str>,
) -> Result<ParsedTailSampling, TailConfigError> {
    let (name, block) = locate_block(yaml, processor)?;
    Ok(ParsedTailSampling {
        processor: name,
        ..parse_raw_block(block, yaml)?
    })
}

/// Validates a block already read from a larger file (a strategies file's inline block), so
/// its locations are those of that file, whose text is `source`.
pub(crate) fn parse_raw_block(
    block: Spanned<RawBlock>,
    source: &str,
) -> Result<ParsedTailSampling, TailConfigError> {
    let mut warnings = Vec::new();
    let at = (block.referenced.line(), block.referenced.column());
    let config = validate_block(block.value, at, Some(source), &mut warnings)?;
    Ok(ParsedTailSampling {
        processor: None,
        config,
        warnings,
    })
}

fn is_tail_sampling_key(k: &str) -> bool {
    k == "tail_sampling" || k.starts_with("tail_sampling/")
}

/// Finds the processor block in any accepted shape and reads it.
fn locate_block(
    yaml: &str,
    wanted: Option<&str>,
) -> Result<(Option<String>, Spanned<RawBlock>), TailConfigError> {
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
        let block: Spanned<RawBlock> =
            serde_saphyr::from_str(yaml).map_err(TailConfigError::from_yaml)?;
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
    type Value = Option<Spanned<RawBlock>>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BlockSeed {
    type Value = Option<Spanned<RawBlock>>;

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
                found = Some(map.next_value::<Spanned<RawBlock>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}
