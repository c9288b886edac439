//! The strategies file: named head and/or tail sampling set-ups to compare.
//!
//! ```yaml
//! slow_threshold: p99              # or a number of milliseconds, or "250ms"
//! strategies:
//!   - name: head-10pct
//!     head: {sampler: parentbased_traceidratio, arg: 0.1}
//!   - name: tail-errors-slow
//!     tail: {file: tail-policy.example.yaml}      # relative to this file
//!   - name: both
//!     head: {sampler: parentbased_traceidratio, arg: 0.5}
//!     tail:
//!       inline: {decision_wait: 5s, policies: [{name: all, type: always_sample}]}
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Visitor};
use serde_saphyr::Spanned;

use crate::head::{HeadConfigError, HeadSamplerConfig};
use crate::tail::config::parse_raw_block;
use crate::tail::raw::RawBlock;
use crate::tail::{TailConfigError, TailSamplingConfig, parse_go_duration, parse_tail_sampling};

/// Why a strategies file could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StrategiesError {
    /// Malformed YAML or a misnamed field.
    #[error("{file}: line {line}, column {column}: {message}")]
    Yaml {
        /// The strategies file.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What the reader said.
        message: String,
    },
    /// A well-formed but unacceptable value.
    #[error("{file}: line {line}, column {column}: {message}")]
    Invalid {
        /// The strategies file.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// A tail policy (inline or in a referenced file) is wrong.
    #[error("{file}: {source}")]
    Tail {
        /// The file holding the policy.
        file: String,
        /// The error in it.
        source: TailConfigError,
    },
    /// A file could not be read.
    #[error("{file}: {message}")]
    Io {
        /// The file.
        file: String,
        /// The system's message.
        message: String,
    },
}

/// How slow a request must be to count as slow.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowThreshold {
    /// Above this many milliseconds.
    Ms(f64),
    /// Above the run's 99th percentile latency.
    P99,
}

impl<'de> Deserialize<'de> for SlowThreshold {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SlowThreshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("p99, a number of milliseconds, or a duration like 250ms")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SlowThreshold, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(SlowThreshold::Ms(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SlowThreshold, E> {
                Ok(SlowThreshold::Ms(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SlowThreshold, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SlowThreshold, E> {
                if v.eq_ignore_ascii_case("p99") {
                    return Ok(SlowThreshold::P99);
                }
                parse_go_duration(v)
                    .map(|ns| SlowThreshold::Ms(ns as f64 / 1e6))
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// One strategy: head sampling, tail sampling, or head then tail.
#[derive(Debug, Clone)]
pub struct Strategy {
    /// Its name in the report.
    pub name: String,
    /// The head sampler, if any.
    pub head: Option<HeadSamplerConfig>,
    /// The tail sampler, if any (it sees only what the head kept).
    pub tail: Option<TailStrategy>,
}

/// A tail-sampling configuration and where it came from.
#[derive(Debug, Clone)]
pub struct TailStrategy {
    /// The file it was read from, or `inline`.
    pub source: String,
    /// The configuration.
    pub config: TailSamplingConfig,
    /// Warnings from reading it.
    pub warnings: Vec<String>,
}

/// A parsed strategies file.
#[derive(Debug, Clone)]
pub struct StrategiesFile {
    /// The slow threshold it asks for (`None`: the caller's default).
    pub slow_threshold: Option<SlowThreshold>,
    /// The strategies, in file order.
    pub strategies: Vec<Strategy>,
}

/// Any scalar, kept as text: `arg: 0.1` and `arg: "0.1"` mean the same.
#[derive(Debug)]
struct ScalarText(String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// `p99`, milliseconds, or a duration.
    #[serde(default)]
    slow_threshold: Option<SlowThreshold>,
    /// The strategies.
    strategies: Vec<Spanned<RawStrategy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    /// Name in the report.
    name: Spanned<String>,
    /// Head sampler.
    #[serde(default)]
    head: Option<RawHead>,
    /// Tail sampler.
    #[serde(default)]
    tail: Option<Spanned<RawTail>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHead {
    /// An `OTEL_TRACES_SAMPLER` value.
    sampler: Spanned<String>,
    /// The `OTEL_TRACES_SAMPLER_ARG` value.
    #[serde(default)]
    arg: Option<ScalarText>,
    /// Threshold precision in hex digits (1..=14, default 4).
    #[serde(default)]
    precision: Option<Spanned<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTail {
    /// A Collector configuration or `tail_sampling` block, relative to the strategies file.
    #[serde(default)]
    file: Option<Spanned<String>>,
    /// Which `tail_sampling/<name>` processor of that file, when it has several.
    #[serde(default)]
    processor: Option<String>,
    /// A `tail_sampling` block written in place.
    #[serde(default)]
    inline: Option<Spanned<RawBlock>>,
}

/// Reads a strategies file; tail `file:` references are resolved relative to it.
pub fn read_strategies_file(path: &Path) -> Result<StrategiesFile, StrategiesError> {
    let text = std::fs::read_to_string(path).map_err(|e| StrategiesError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse_strategies(&text, &path.display().to_string(), base)
}

/// Parses strategies from text; `file_label` names it in errors and `base_dir` anchors
/// relative tail files.
pub fn parse_strategies(
    yaml: &str,
    file_label: &str,
    base_dir: &Path,
) -> Result<StrategiesFile, StrategiesError> {
    let raw: RawFile = serde_saphyr::from_str(yaml).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        StrategiesError::Yaml {
            file: file_label.to_string(),
            line,
            column,
            message: e.to_string(),
        }
    })?;
    let invalid = |line: u64, column: u64, message: String| StrategiesError::Invalid {
        file: file_label.to_string(),
        line,
        column,
        message,
    };
    if raw.strategies.is_empty() {
        return Err(invalid(1, 1, "no strategies".to_string()));
    }
    let mut strategies: Vec<Strategy> = Vec::new();
    for s in raw.strategies {
        let at = &s.referenced;
        let s = s.value;
        if strategies.iter().any(|o| o.name == s.name.value) {
            return Err(invalid(
                s.name.referenced.line(),
                s.name.referenced.column(),
                format!("duplicate strategy name {:?}", s.name.value),
            ));
        }
        if s.head.is_none() && s.tail.is_none() {
            return Err(invalid(
                at.line(),
                at.column(),
                format!("strategy {:?} needs `head:`, `tail:` or both", s.name.value),
            ));
        }
        let head = match s.head {
            None => None,
            Some(h) => {
                let err = |e: HeadConfigError| {
                    invalid(
                        h.sampler.referenced.line(),
                        h.sampler.referenced.column(),
                        e.to_string(),
                    )
                };
                let mut cfg = HeadSamplerConfig::from_env_values(
                    &h.sampler.value,
                    h.arg.as_ref().map(|a| a.0.as_str()),
                )
                .map_err(err)?;
                if let Some(p) = &h.precision {
                    cfg = cfg.with_precision(p.value).map_err(|e| {
                        invalid(p.referenced.line(), p.referenced.column(), e.to_string())
                    })?;
                }
                Some(cfg)
            }
        };
        let tail = match s.tail {
            None => None,
            Some(t) => Some(read_tail(t, yaml, file_label, base_dir, &invalid)?),
        };
        strategies.push(Strategy {
            name: s.name.value,
            head,
            tail,
        });
    }
    Ok(StrategiesFile {
        slow_threshold: raw.slow_threshold,
        strategies,
    })
}

fn read_tail(
    t: Spanned<RawTail>,
    yaml: &str,
    file_label: &str,
    base_dir: &Path,
    invalid: &dyn Fn(u64, u64, String) -> StrategiesError,
) -> Result<TailStrategy, StrategiesError> {
    let at = t.referenced;
    match (t.value.file, t.value.inline) {
        (Some(file), None) => {
            let path: PathBuf = base_dir.join(&file.value);
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    file.referenced.line(),
                    file.referenced.column(),
                    format!("cannot read tail policy file {shown}: {e}"),
                )
            })?;
            let parsed =
                parse_tail_sampling(&text, t.value.processor.as_deref()).map_err(|source| {
                    StrategiesError::Tail {
                        file: shown.clone(),
                        source,
                    }
                })?;
            Ok(TailStrategy {
                source: match &parsed.processor {
                    Some(p) => format!("{} ({p})", file.value),
                    None => file.value.clone(),
                },
                config: parsed.config,
                warnings: parsed.warnings,
            })
        }
        (None, Some(block)) => {
            let parsed = parse_raw_block(block, yaml).map_err(|source| StrategiesError::Tail {
                file: file_label.to_string(),
                source,
            })?;
            Ok(TailStrategy {
                source: "inline".to_string(),
                config: parsed.config,
                warnings: parsed.warnings,
            })
        }
        _ => Err(invalid(
            at.line(),
            at.column(),
            "`tail:` needs exactly one of `file:` or `inline:`".to_string(),
        )),
    }
}
