//! Validation of the raw `tail_sampling` YAML into [`TailSamplingConfig`]: defaults filled
//! in, values checked, regular expressions and OTTL conditions compiled, and everything the
//! Collector (contrib 0.157.0) refuses refused, with its line and column.
//!
//! Layout:
//! - `policy`: one policy, by type.
//! - `composite`: the `composite` policy's allocation.
//! - `nesting`: the types and blocks each nesting level accepts; suggestions for misspellings.
//! - `locate`: where in the YAML file a column of an OTTL condition is.

mod composite;
mod locate;
mod nesting;
mod policy;

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::config::{
    DEFAULT_DECISION_WAIT_NANOS, DEFAULT_NUM_TRACES, Policy, PolicyRule, SamplingStrategy,
    TailConfigError, TailSamplingConfig,
};
use super::duration::parse_go_duration;
use super::raw::{RawBlock, YamlInt};
use policy::{Level, build_policy};

fn non_negative(v: &Spanned<YamlInt>, what: &str) -> Result<u64, TailConfigError> {
    u64::try_from(v.value.0)
        .map_err(|_| TailConfigError::invalid(v, format!("{what} must not be negative")))
}

/// An optional count that must not be negative; 0 when absent.
fn non_negative_or_zero(v: &Option<Spanned<YamlInt>>, what: &str) -> Result<u64, TailConfigError> {
    match v {
        Some(v) => non_negative(v, what),
        None => Ok(0),
    }
}

fn duration(v: &Spanned<String>, what: &str) -> Result<u64, TailConfigError> {
    parse_go_duration(&v.value).map_err(|m| TailConfigError::invalid(v, format!("{what}: {m}")))
}

/// Validates a processor block found at `at` (line, column) of its file.
pub(crate) fn validate_block(
    block: RawBlock,
    at: (u64, u64),
    source: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<TailSamplingConfig, TailConfigError> {
    if let Some(n) = &block.num_shards {
        return Err(TailConfigError::invalid(
            n,
            "num_shards is a setting of contrib 0.159.0 and later; the Collector this lab pins \
             (otel/opentelemetry-collector-contrib 0.157.0) refuses it as an unknown key. \
             Remove it, or upgrade the Collector first",
        ));
    }
    let decision_wait_nanos = match &block.decision_wait {
        Some(w) => {
            let nanos = duration(w, "decision_wait")?;
            if nanos == 0 {
                return Err(TailConfigError::invalid(
                    w,
                    "decision_wait must be longer than 0s",
                ));
            }
            nanos
        }
        None => DEFAULT_DECISION_WAIT_NANOS,
    };
    let decision_wait_after_root_nanos = match &block.decision_wait_after_root_received {
        Some(w) => duration(w, "decision_wait_after_root_received")?,
        None => 0,
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
            non_negative_or_zero(&c.sampled_cache_size, "sampled_cache_size")?,
            non_negative_or_zero(&c.non_sampled_cache_size, "non_sampled_cache_size")?,
        ),
        None => (0, 0),
    };
    let maximum_trace_size_bytes =
        non_negative_or_zero(&block.maximum_trace_size_bytes, "maximum_trace_size_bytes")?;
    let expected_new_traces_per_sec = non_negative_or_zero(
        &block.expected_new_traces_per_sec,
        "expected_new_traces_per_sec",
    )?;
    let sampling_strategy = match &block.sampling_strategy {
        None => SamplingStrategy::TraceComplete,
        Some(s) => match s.value.as_str() {
            "trace-complete" => SamplingStrategy::TraceComplete,
            "span-ingest" => SamplingStrategy::SpanIngest,
            other => {
                return Err(TailConfigError::invalid(
                    s,
                    format!(
                        "sampling_strategy {other:?} is not one of trace-complete, span-ingest"
                    ),
                ));
            }
        },
    };
    let Some(raw_policies) = &block.policies else {
        return Err(TailConfigError::invalid_at(
            at.0,
            at.1,
            "the tail_sampling processor has no `policies:`; the Collector requires at least one",
        ));
    };
    if raw_policies.value.is_empty() {
        return Err(TailConfigError::invalid(
            raw_policies,
            "`policies` is empty; the Collector requires at least one",
        ));
    }
    let mut policies = Vec::new();
    let mut seen = HashSet::new();
    for raw in &raw_policies.value {
        let policy = build_policy(raw, Level::Top, source, warnings)?;
        if let Some(name) = &raw.value.name
            && !seen.insert(name.value.clone())
        {
            return Err(TailConfigError::invalid(
                name,
                format!("duplicate policy name {:?}", name.value),
            ));
        }
        policies.push(policy);
    }
    if sampling_strategy == SamplingStrategy::SpanIngest
        && let Some(p) = policies.iter().find(|p| stateful(p))
    {
        let at = block
            .sampling_strategy
            .as_ref()
            .map(|s| (s.referenced.line(), s.referenced.column()));
        let (line, column) = at.unwrap_or((p.line, 1));
        return Err(TailConfigError::invalid_at(
            line,
            column,
            format!(
                "sampling_strategy span-ingest cannot run stateful policies, and policy {:?} (line {}) is one (rate_limiting, bytes_limiting and composite keep state between decisions)",
                p.name, p.line
            ),
        ));
    }
    notes(&block, warnings);
    Ok(TailSamplingConfig {
        decision_wait_nanos,
        decision_wait_after_root_nanos,
        num_traces,
        expected_new_traces_per_sec,
        sampled_cache_size,
        non_sampled_cache_size,
        sample_on_first_match: block.sample_on_first_match.unwrap_or(false),
        maximum_trace_size_bytes,
        block_on_overflow: block.block_on_overflow.as_ref().is_some_and(|b| b.value),
        sampling_strategy,
        drop_pending_traces_on_shutdown: block
            .drop_pending_traces_on_shutdown
            .as_ref()
            .is_some_and(|b| b.value),
        tail_storage: block.tail_storage.as_ref().map(|s| s.value.clone()),
        policies,
    })
}

/// Whether a policy keeps state between decisions (the Collector's `IsStateful`).
fn stateful(p: &Policy) -> bool {
    match &p.rule {
        PolicyRule::RateLimiting { .. }
        | PolicyRule::BytesLimiting { .. }
        | PolicyRule::Composite { .. } => true,
        PolicyRule::And(subs) | PolicyRule::Drop(subs) => subs.iter().any(stateful),
        PolicyRule::Not(sub) => stateful(sub),
        _ => false,
    }
}

/// One line for each setting that is accepted but changes nothing, or not everything, in a
/// replay.
fn notes(block: &RawBlock, warnings: &mut Vec<String>) {
    let at = |line: u64| format!("line {line}: ");
    if let Some(v) = &block.expected_new_traces_per_sec {
        warnings.push(format!(
            "{}expected_new_traces_per_sec has no effect in a replay: it sizes the Collector's memory, not its decisions",
            at(v.referenced.line())
        ));
    }
    if let Some(v) = block
        .drop_pending_traces_on_shutdown
        .as_ref()
        .filter(|v| v.value)
    {
        warnings.push(format!(
            "{}drop_pending_traces_on_shutdown has no effect in a replay: the replay ends without a shutdown and decides every pending trace",
            at(v.referenced.line())
        ));
    }
    if let Some(v) = &block.tail_storage {
        warnings.push(format!(
            "{}tail_storage has no effect in a replay (it changes where spans wait, not when they are decided); note that the Collector refuses it unless started with --feature-gates=processor.tailsamplingprocessor.tailstorageextension",
            at(v.referenced.line())
        ));
    }
    if let Some(v) = block.block_on_overflow.as_ref().filter(|v| v.value) {
        warnings.push(format!(
            "{}block_on_overflow: the replay never evicts an undecided trace and decides the oldest one at its deadline to make room; the delay blocking imposes on senders is not modelled",
            at(v.referenced.line())
        ));
    }
}
