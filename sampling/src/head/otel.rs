//! The head samplers as opentelemetry_sdk `ShouldSample` implementations.
//!
//! Install one with `SdkTracerProvider::builder().with_sampler(config.build())`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry::Context;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};

use super::threshold::OtTraceState;
use super::{HeadDecider, HeadSamplerConfig};

/// A source of "now" in nanoseconds. Only differences matter, so a monotonic origin is fine.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Nanoseconds since the first call, from the monotonic clock.
pub fn monotonic_clock() -> Clock {
    let origin = Instant::now();
    Arc::new(move || u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
}

/// A head sampler ready to install in an `SdkTracerProvider`.
///
/// Clones share one decider: a rate-limited sampler must count every span the process
/// starts, and a per-clone bucket would multiply the configured rate.
#[derive(Clone)]
pub struct HeadSampler {
    config: HeadSamplerConfig,
    decider: Arc<Mutex<HeadDecider>>,
    clock: Clock,
}

impl std::fmt::Debug for HeadSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadSampler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HeadSampler {
    pub(crate) fn new(config: &HeadSamplerConfig, clock: Clock) -> Self {
        HeadSampler {
            config: config.clone(),
            decider: Arc::new(Mutex::new(config.decider())),
            clock,
        }
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &HeadSamplerConfig {
        &self.config
    }
}

impl ShouldSample for HeadSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        // Borrowed, not cloned: a span context carries its tracestate, and this runs for
        // every span.
        let parent_span = parent_context.map(|cx| cx.span());
        let parent = parent_span
            .as_ref()
            .map(|span| span.span_context())
            .filter(|sc| sc.is_valid());
        let no_trace_state = TraceState::default();
        let trace_state = parent.map_or(&no_trace_state, |sc| sc.trace_state());
        let ot_value = trace_state.get("ot").unwrap_or_default();
        let mut ot = OtTraceState::parse(ot_value);
        let now = (self.clock)();
        let decision = {
            // A poisoned lock only means another thread panicked mid-decision; the decider
            // holds no invariant that a panic could break, so keep using it.
            let mut decider = self
                .decider
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            decider.decide(
                &trace_id.to_bytes(),
                parent.map(|sc| sc.is_sampled()),
                &ot,
                now,
            )
        };
        let trace_state = if ot.already_written(ot_value, decision.threshold) {
            trace_state.clone()
        } else {
            ot.set_threshold(decision.threshold);
            write_ot(trace_state, &ot)
        };
        SamplingResult {
            decision: if decision.sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state,
        }
    }
}

/// Replaces the `ot` member of a tracestate, keeping every other member. A tracestate that
/// refuses the new value (it cannot, for the values written here) is passed on unchanged.
fn write_ot(trace_state: &TraceState, ot: &OtTraceState) -> TraceState {
    let current = trace_state.get("ot").unwrap_or_default();
    let next = ot.to_string();
    if current == next {
        return trace_state.clone();
    }
    let updated = if ot.is_empty() {
        trace_state.delete("ot")
    } else {
        trace_state.insert("ot", next)
    };
    updated.unwrap_or_else(|_| trace_state.clone())
}
