//! Extract → SDK child span → inject, with the real OpenTelemetry SDK: the Level 2 random flag
//! and Level 2 `tracestate` keys must survive whatever the sampler decides.

use http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span, TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracelab_propagation::{
    HeaderExtractor, HeaderInjector, IncomingTraceContext, W3cTraceContextPropagator, composite,
};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn incoming(flags: &str, tracestate: Option<&str>) -> HeaderMap {
    let mut map = HeaderMap::new();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-{flags}");
    map.insert(
        "traceparent",
        HeaderValue::from_str(&traceparent).expect("valid"),
    );
    if let Some(tracestate) = tracestate {
        map.insert(
            "tracestate",
            HeaderValue::from_str(tracestate).expect("valid"),
        );
    }
    map
}

/// One hop through a service: extract the incoming headers, start a server span as the SDK
/// would, inject into an outgoing call. Returns the outgoing headers and the span's own flags.
fn hop(sampler: Sampler, incoming: &HeaderMap) -> (HeaderMap, String, u8) {
    let provider = SdkTracerProvider::builder().with_sampler(sampler).build();
    let tracer = provider.tracer("propagation-test");
    let propagator = W3cTraceContextPropagator::new();
    let parent_cx = propagator.extract_with_context(&Context::new(), &HeaderExtractor(incoming));
    let span = tracer.start_with_context("server", &parent_cx);
    let span_id = format!("{:016x}", span.span_context().span_id());
    let sdk_flags = span.span_context().trace_flags().to_u8();
    let cx = parent_cx.with_span(span);
    let mut outgoing = HeaderMap::new();
    propagator.inject_context(&cx, &mut HeaderInjector(&mut outgoing));
    cx.span().end();
    (outgoing, span_id, sdk_flags)
}

fn header(map: &HeaderMap, name: &str) -> Option<String> {
    map.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[test]
fn sdk_keeps_random_flag_for_sampled_children_but_drops_it_for_dropped_ones() {
    // The investigation this crate is built around, kept as a test so an SDK upgrade that
    // changes the behaviour is noticed.
    let (_, _, sampled_flags) = hop(Sampler::AlwaysOn, &incoming("03", None));
    assert_eq!(sampled_flags, 0x03);
    let (_, _, dropped_flags) = hop(Sampler::AlwaysOff, &incoming("03", None));
    assert_eq!(
        dropped_flags, 0x00,
        "the SDK uses TraceFlags::default() when it drops"
    );
}

#[test]
fn random_flag_survives_a_sampled_child() {
    let (out, span_id, _) = hop(Sampler::AlwaysOn, &incoming("03", None));
    assert_eq!(
        header(&out, "traceparent"),
        Some(format!("00-{TRACE_ID}-{span_id}-03"))
    );
    assert_ne!(span_id, PARENT_ID, "the parent-id sent is our own span");
}

#[test]
fn random_flag_survives_a_dropped_child() {
    let (out, span_id, _) = hop(Sampler::AlwaysOff, &incoming("03", None));
    assert_eq!(
        header(&out, "traceparent"),
        Some(format!("00-{TRACE_ID}-{span_id}-02"))
    );
}

#[test]
fn random_flag_survives_a_parent_based_decision() {
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOff));
    let (out, _, _) = hop(sampler, &incoming("03", None));
    assert!(header(&out, "traceparent").is_some_and(|h| h.ends_with("-03")));
    let sampler = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    let (out, _, _) = hop(sampler, &incoming("02", None));
    assert!(header(&out, "traceparent").is_some_and(|h| h.ends_with("-02")));
}

#[test]
fn unknown_flag_bits_do_not_reach_the_sdk_or_the_next_hop() {
    let (out, _, sdk_flags) = hop(Sampler::AlwaysOn, &incoming("ff", None));
    assert_eq!(sdk_flags, 0x03);
    assert!(header(&out, "traceparent").is_some_and(|h| h.ends_with("-03")));
}

#[test]
fn incoming_trace_without_random_flag_stays_without_it() {
    let (out, _, _) = hop(Sampler::AlwaysOn, &incoming("01", None));
    assert!(header(&out, "traceparent").is_some_and(|h| h.ends_with("-01")));
}

#[test]
fn new_trace_gets_the_random_flag() {
    let (out, _, sdk_flags) = hop(Sampler::AlwaysOn, &HeaderMap::new());
    assert_eq!(
        sdk_flags, 0x01,
        "the SDK itself never sets the random flag on a root"
    );
    let sent = header(&out, "traceparent").expect("a new trace is propagated");
    assert!(sent.ends_with("-03"), "{sent}");
    assert!(!sent.contains(TRACE_ID));
}

#[test]
fn invalid_incoming_starts_a_new_random_trace() {
    let mut map = incoming("03", Some("a=1"));
    map.append(
        "traceparent",
        HeaderValue::from_str(&format!("00-{TRACE_ID}-{PARENT_ID}-03")).expect("valid"),
    );
    let (out, _, _) = hop(Sampler::AlwaysOn, &map);
    let sent = header(&out, "traceparent").expect("new trace");
    assert!(
        !sent.contains(TRACE_ID),
        "repeated traceparent must not be trusted"
    );
    assert!(sent.ends_with("-03"));
    assert_eq!(header(&out, "tracestate"), None);
}

#[test]
fn level2_tracestate_survives_an_sdk_child() {
    let received = format!("foo@@bar=1,congo=t61rcWkgMzE,t@{}=x", "q".repeat(15));
    let (out, _, _) = hop(Sampler::AlwaysOn, &incoming("01", Some(&received)));
    assert_eq!(header(&out, "tracestate"), Some(received));
}

#[test]
fn random_flag_survives_a_chain_of_services() {
    let first = incoming("03", Some("a=1"));
    let (second, _, _) = hop(Sampler::AlwaysOff, &first);
    let (third, _, _) = hop(Sampler::AlwaysOn, &second);
    let (fourth, span_id, _) = hop(Sampler::AlwaysOn, &third);
    assert_eq!(
        header(&fourth, "traceparent"),
        Some(format!("00-{TRACE_ID}-{span_id}-03"))
    );
    assert_eq!(header(&fourth, "tracestate").as_deref(), Some("a=1"));
}

#[test]
fn composite_carries_trace_context_and_baggage() {
    use opentelemetry::baggage::BaggageExt;

    let mut map = incoming("03", Some("a=1"));
    map.insert("baggage", HeaderValue::from_static("tenant=acme%20corp"));
    let propagator = composite();
    let cx = propagator.extract_with_context(&Context::new(), &HeaderExtractor(&map));
    assert!(cx.get::<IncomingTraceContext>().is_some());
    assert_eq!(
        cx.baggage().get("tenant").map(|v| v.as_str().to_owned()),
        Some("acme corp".to_owned())
    );
    let mut out = HeaderMap::new();
    propagator.inject_context(&cx, &mut HeaderInjector(&mut out));
    assert_eq!(
        header(&out, "baggage").as_deref(),
        Some("tenant=acme%20corp")
    );
    assert_eq!(header(&out, "tracestate").as_deref(), Some("a=1"));
    assert!(header(&out, "traceparent").is_some_and(|h| h.ends_with("-03")));
    let mut fields: Vec<&str> = propagator.fields().collect();
    fields.sort_unstable();
    assert_eq!(fields, ["baggage", "traceparent", "tracestate"]);
}
