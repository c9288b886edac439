//! [`W3cTraceContextPropagator`]: `traceparent` and `tracestate` in and out of an
//! OpenTelemetry [`Context`], with the Level 2 random flag kept across the SDK.
//!
//! Two things the OpenTelemetry SDK (0.33) does not carry on its own are kept in the
//! [`Context`] as an [`IncomingTraceContext`] value, which survives `cx.with_span(..)` and
//! `cx.with_value(..)`:
//!
//! - **The random flag.** The SDK builds a child span's flags from the parent's flags with the
//!   sampled bit set or cleared, which keeps `0x02`; but when the sampler drops the span it
//!   uses `TraceFlags::default()`, and `0x02` is lost. A root span never gets it either.
//!   [`inject`](TextMapPropagator::inject_context) therefore takes the random bit from the
//!   incoming header when there was one, and sets it for traces started here.
//! - **Level 2 tracestate keys.** The API's `TraceState` still validates keys with the
//!   Level 1 `tenant@system` rule, so it refuses valid Level 2 keys such as `foo@@bar` or
//!   `t@` followed by 15 letters. Members it can hold go into the span context as usual (so a
//!   sampler can read and change them); the full received list is kept alongside, and
//!   `inject` merges the two so that nothing valid is lost and the order is kept.

use opentelemetry::Context;
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use crate::traceparent::{self, FLAG_RANDOM, FLAG_SAMPLED, KNOWN_FLAGS, TraceParent};
use crate::tracestate::{self, TraceStateError, TraceStateList};

/// Header name of the trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Header name of the vendor-specific trace state.
pub const TRACESTATE_HEADER: &str = "tracestate";

/// What [`W3cTraceContextPropagator`] read from a valid `traceparent`, stored in the extracted
/// [`Context`] (read it with `cx.get::<IncomingTraceContext>()`).
///
/// It is present only when the `traceparent` was valid; a missing or invalid one leaves the
/// context as it was, so a new trace starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingTraceContext {
    /// The header as received, flags unmasked (unknown bits included).
    pub traceparent: TraceParent,
    /// The received `tracestate`, empty when none was sent or it was invalid.
    pub tracestate: TraceStateList,
    /// Why the received `tracestate` was dropped, if it was.
    pub tracestate_error: Option<TraceStateError>,
}

/// The W3C Trace Context Level 2 propagator (`traceparent`, `tracestate`).
///
/// Reads repeated headers through [`Extractor::get_all`]: an extractor that only implements
/// `get` hides a repeated `traceparent`, which must invalidate it. [`crate::HeaderExtractor`]
/// implements `get_all`.
#[derive(Clone, Debug)]
pub struct W3cTraceContextPropagator {
    fields: [String; 2],
    local_traces_random: bool,
}

impl Default for W3cTraceContextPropagator {
    fn default() -> Self {
        Self::new()
    }
}

impl W3cTraceContextPropagator {
    /// A propagator that sets the random flag on traces started locally, which is right when
    /// trace ids come from a random generator (the SDK's `RandomIdGenerator`, or a seeded
    /// uniform generator).
    pub fn new() -> Self {
        Self {
            fields: [TRACEPARENT_HEADER.to_owned(), TRACESTATE_HEADER.to_owned()],
            local_traces_random: true,
        }
    }

    /// Whether traces started in this process are sent with the random flag. Turn it off when
    /// the id generator is not random (sequential ids in a test, say), because the flag
    /// promises downstream samplers that the right-most 7 bytes of the trace id are random.
    pub fn with_local_traces_random(mut self, random: bool) -> Self {
        self.local_traces_random = random;
        self
    }

    /// The trace-flags to send for `span`: the local sampling decision, plus the random bit of
    /// the incoming header (or of a trace started here). Bits Level 2 does not define are
    /// never sent.
    fn outgoing_flags(&self, span: &SpanContext, incoming: Option<&IncomingTraceContext>) -> u8 {
        let own = span.trace_flags().to_u8();
        let random = match incoming {
            Some(incoming) => incoming.traceparent.flags & FLAG_RANDOM,
            // A remote span context that did not come through `extract` (built by hand, or by
            // another propagator): its own flags are all we know.
            None if span.is_remote() => own & FLAG_RANDOM,
            None if self.local_traces_random => FLAG_RANDOM,
            None => own & FLAG_RANDOM,
        };
        ((own & FLAG_SAMPLED) | random) & KNOWN_FLAGS
    }
}

impl TextMapPropagator for W3cTraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        let trace_id = span_context.trace_id().to_bytes();
        // Only what was received for this very trace counts: a context that carries an old
        // incoming value but a span of another trace started that trace here.
        let incoming = cx
            .get::<IncomingTraceContext>()
            .filter(|incoming| incoming.traceparent.trace_id == trace_id);

        let traceparent = TraceParent {
            version: 0,
            trace_id,
            parent_id: span_context.span_id().to_bytes(),
            flags: self.outgoing_flags(span_context, incoming),
        };
        injector.set(TRACEPARENT_HEADER, traceparent.to_header());

        let tracestate = outgoing_tracestate(
            span_context.trace_state(),
            incoming.map(|incoming| &incoming.tracestate),
        );
        if !tracestate.is_empty() {
            injector.set(TRACESTATE_HEADER, tracestate.to_header());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let traceparent_values = extractor.get_all(TRACEPARENT_HEADER).unwrap_or_default();
        let Ok(traceparent) = traceparent::parse(&traceparent_values) else {
            // No usable parent: the tracestate belongs to a parent we cannot name, so it is
            // ignored too, and the caller's context is returned unchanged.
            return cx.clone();
        };
        let tracestate_values = extractor.get_all(TRACESTATE_HEADER).unwrap_or_default();
        let (tracestate, tracestate_error) = match tracestate::parse(&tracestate_values) {
            Ok(list) => (list, None),
            Err(error) => (TraceStateList::new(), Some(error)),
        };

        let span_context = SpanContext::new(
            TraceId::from_bytes(traceparent.trace_id),
            SpanId::from_bytes(traceparent.parent_id),
            // Unknown bits stay out of the span context, so the SDK cannot copy them into
            // child spans; the raw byte is still in `IncomingTraceContext`.
            TraceFlags::new(traceparent.flags & KNOWN_FLAGS),
            true,
            api_trace_state(&tracestate),
        );
        cx.with_remote_span_context(span_context)
            .with_value(IncomingTraceContext {
                traceparent,
                tracestate,
                tracestate_error,
            })
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// Whether the API's `TraceState` accepts this member (it still applies Level 1 key rules).
///
/// A plain key (no `@` tenant) and a value the API accepts by its documented rules pass without
/// asking it: asking builds a `TraceState` (a list and two strings) for every member of every
/// extract and inject, and nearly every member the lab sees (`ot=th:…`) is plain. The test
/// `plain_members_pass_as_the_api_would_let_them` holds this to the API's own answer.
fn api_accepts(key: &str, value: &str) -> bool {
    if is_plain_member(key, value) {
        return true;
    }
    TraceState::from_key_value([(key, value)]).is_ok()
}

/// A member the API's `TraceState` accepts by its documented rules: a key of at most 256
/// lowercase letters, digits, `_`, `-`, `*` and `/`, starting with a letter or digit; a value of
/// at most 256 bytes with neither `,` nor `=`. (The W3C rules, stricter about values, were
/// applied when the header was parsed.)
fn is_plain_member(key: &str, value: &str) -> bool {
    let key = key.as_bytes();
    key.first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && key.len() <= 256
        && key
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/".contains(b))
        && value.len() <= 256
        && !value.contains([',', '='])
}

/// The members of `list` that the API's `TraceState` can hold, in order.
fn api_trace_state(list: &TraceStateList) -> TraceState {
    let members = list
        .members()
        .iter()
        .filter(|(key, value)| api_accepts(key, value));
    // Every member was checked just above, so this cannot fail; an empty state is the safe
    // answer if the API's rules ever change under us.
    TraceState::from_key_value(members.map(|(k, v)| (k.as_str(), v.as_str()))).unwrap_or_default()
}

/// The `tracestate` to send: the span's `TraceState` (which the local sampler may have
/// changed) merged with what was received, following the specification's mutation rules.
///
/// - Members the local process added or changed come first (left-most is most recent).
/// - Received members follow in received order: those the API can hold only if the span
///   still has them unchanged (a changed one is already in front, a deleted one stays
///   deleted); those it cannot hold (Level 2 keys) always, since nobody here could touch them.
/// - Repeated keys keep their first entry, invalid members are dropped, and the list is cut
///   at 32 members from the right.
pub(crate) fn outgoing_tracestate(
    current: &TraceState,
    incoming: Option<&TraceStateList>,
) -> TraceStateList {
    let current: Vec<(&str, &str)> = current.into_iter().collect();
    let Some(incoming) = incoming else {
        return TraceStateList::from_members(current);
    };
    let mut merged: Vec<(&str, &str)> = current
        .iter()
        .filter(|(key, value)| incoming.get(key) != Some(*value))
        .copied()
        .collect();
    for (key, value) in incoming.members() {
        let kept_unchanged = current.iter().any(|(k, v)| k == key && v == value);
        if kept_unchanged || !api_accepts(key, value) {
            merged.push((key, value));
        }
    }
    TraceStateList::from_members(merged)
}

#[cfg(test)]
mod tests;
