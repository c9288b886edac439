//! The propagator's rules, on contexts built by hand (the SDK round trips live in
//! `tests/sdk_random_flag.rs`).

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

use super::*;
use crate::{HeaderExtractor, HeaderInjector};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const LOCAL_SPAN_ID: &str = "b7ad6b7169203331";

fn traceparent(flags: &str) -> String {
    format!("00-{TRACE_ID}-{PARENT_ID}-{flags}")
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).expect("test header"));
    }
    map
}

fn extract(pairs: &[(&'static str, &str)]) -> Context {
    let map = headers(pairs);
    W3cTraceContextPropagator::new().extract_with_context(&Context::new(), &HeaderExtractor(&map))
}

fn inject_with(propagator: &W3cTraceContextPropagator, cx: &Context) -> HashMap<String, String> {
    let mut out = HashMap::new();
    propagator.inject_context(cx, &mut out);
    out
}

fn inject(cx: &Context) -> HashMap<String, String> {
    inject_with(&W3cTraceContextPropagator::new(), cx)
}

/// Stands in for the SDK starting a local child span of whatever `cx` holds.
fn with_local_child(cx: &Context, flags: u8, trace_state: TraceState) -> Context {
    let parent_trace = cx.span().span_context().trace_id();
    let trace_id = if parent_trace == TraceId::INVALID {
        TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("hex")
    } else {
        parent_trace
    };
    let child = SpanContext::new(
        trace_id,
        SpanId::from_hex(LOCAL_SPAN_ID).expect("hex"),
        TraceFlags::new(flags),
        false,
        trace_state,
    );
    cx.with_remote_span_context(child)
}

#[test]
fn valid_traceparent_becomes_the_remote_parent() {
    let cx = extract(&[("traceparent", &traceparent("01"))]);
    let span = cx.span();
    let parent = span.span_context();
    assert!(parent.is_valid());
    assert!(parent.is_remote());
    assert!(parent.is_sampled());
    assert_eq!(format!("{:032x}", parent.trace_id()), TRACE_ID);
    assert_eq!(format!("{:016x}", parent.span_id()), PARENT_ID);
}

#[test]
fn invalid_traceparent_starts_a_new_trace_and_ignores_tracestate() {
    let bad = traceparent("01").to_uppercase();
    let cx = extract(&[("traceparent", &bad), ("tracestate", "a=1")]);
    assert!(!cx.has_active_span());
    assert!(!cx.span().span_context().is_valid());
    assert!(cx.get::<IncomingTraceContext>().is_none());
    assert!(inject(&cx).is_empty());
}

#[test]
fn missing_traceparent_starts_a_new_trace_and_ignores_tracestate() {
    let cx = extract(&[("tracestate", "a=1")]);
    assert!(!cx.span().span_context().is_valid());
    assert!(cx.get::<IncomingTraceContext>().is_none());
}

#[test]
fn repeated_traceparent_headers_make_the_context_invalid() {
    let one = traceparent("01");
    let cx = extract(&[("traceparent", &one), ("traceparent", &one)]);
    assert!(!cx.span().span_context().is_valid());
    assert!(cx.get::<IncomingTraceContext>().is_none());
}

#[test]
fn extractor_without_get_all_cannot_show_repeats() {
    // The contract this crate documents: `get_all` must return every value. `HeaderExtractor`
    // does, while an extractor relying on the default `get_all` only returns the first.
    let one = traceparent("01");
    let map = headers(&[("traceparent", &one), ("traceparent", &one)]);
    assert_eq!(
        HeaderExtractor(&map)
            .get_all("traceparent")
            .map(|v| v.len()),
        Some(2)
    );
}

#[test]
fn ows_around_traceparent_is_trimmed() {
    let padded = format!(" \t{}\t ", traceparent("01"));
    let cx = extract(&[("traceparent", &padded)]);
    assert!(cx.span().span_context().is_valid());
}

#[test]
fn invalid_tracestate_is_dropped_and_traceparent_kept() {
    let cx = extract(&[
        ("traceparent", &traceparent("01")),
        ("tracestate", "a=1,B=2"),
    ]);
    assert!(cx.span().span_context().is_valid());
    assert_eq!(cx.span().span_context().trace_state().header(), "");
    let incoming = cx.get::<IncomingTraceContext>().expect("valid traceparent");
    assert!(incoming.tracestate.is_empty());
    assert!(matches!(
        incoming.tracestate_error,
        Some(TraceStateError::InvalidKeyStart { .. })
    ));
    let out = inject(&cx);
    assert!(out.contains_key("traceparent"));
    assert!(!out.contains_key("tracestate"));
}

#[test]
fn repeated_tracestate_headers_are_combined_in_order() {
    let cx = extract(&[
        ("traceparent", &traceparent("01")),
        ("tracestate", "a=1, b=2"),
        ("tracestate", ""),
        ("tracestate", "c=3"),
    ]);
    assert_eq!(
        inject(&cx).get("tracestate").map(String::as_str),
        Some("a=1,b=2,c=3")
    );
}

#[test]
fn level2_tracestate_keys_survive_in_order() {
    let long_system = format!("t@{}", "a".repeat(15));
    let received = format!("foo@@bar=1,a=2,{long_system}=3,foo@=4");
    let cx = extract(&[
        ("traceparent", &traceparent("01")),
        ("tracestate", &received),
    ]);
    // The API's TraceState keeps what it can hold (Level 1 keys)...
    let api_header = cx.span().span_context().trace_state().header();
    assert!(api_header.contains("a=2"), "{api_header}");
    assert!(!api_header.contains("foo@@bar"), "{api_header}");
    // ...and the header sent on still carries everything, in the received order.
    let child = with_local_child(&cx, 0x01, cx.span().span_context().trace_state().clone());
    assert_eq!(inject(&child).get("tracestate"), Some(&received));
}

#[test]
fn tracestate_changes_made_locally_go_first_and_deletions_stick() {
    let cx = extract(&[
        ("traceparent", &traceparent("01")),
        ("tracestate", "a=1,foo@@bar=2,b=3,c=4"),
    ]);
    let received = cx.span().span_context().trace_state().clone();
    let changed = received
        .insert("b", "updated")
        .and_then(|ts| ts.delete("c"))
        .and_then(|ts| ts.insert("mine", "x"))
        .expect("valid edits");
    let child = with_local_child(&cx, 0x01, changed);
    assert_eq!(
        inject(&child).get("tracestate").map(String::as_str),
        Some("mine=x,b=updated,a=1,foo@@bar=2")
    );
}

#[test]
fn incoming_random_flag_is_sent_on() {
    let cx = extract(&[("traceparent", &traceparent("03"))]);
    let child = with_local_child(&cx, 0x01, TraceState::NONE);
    let out = inject(&child);
    assert_eq!(
        out.get("traceparent"),
        Some(&format!("00-{TRACE_ID}-{LOCAL_SPAN_ID}-03"))
    );
}

#[test]
fn random_flag_survives_a_child_the_sdk_built_without_it() {
    // What the SDK does when its sampler drops the span: flags become 00.
    let cx = extract(&[("traceparent", &traceparent("03"))]);
    let dropped = with_local_child(&cx, 0x00, TraceState::NONE);
    assert_eq!(
        inject(&dropped).get("traceparent"),
        Some(&format!("00-{TRACE_ID}-{LOCAL_SPAN_ID}-02"))
    );
}

#[test]
fn sampled_bit_reflects_the_local_decision() {
    let cx = extract(&[("traceparent", &traceparent("02"))]);
    let sampled_here = with_local_child(&cx, 0x01, TraceState::NONE);
    assert!(inject(&sampled_here)["traceparent"].ends_with("-03"));
    let cx = extract(&[("traceparent", &traceparent("03"))]);
    let dropped_here = with_local_child(&cx, 0x00, TraceState::NONE);
    assert!(inject(&dropped_here)["traceparent"].ends_with("-02"));
}

#[test]
fn incoming_without_random_flag_is_not_made_random() {
    let cx = extract(&[("traceparent", &traceparent("01"))]);
    let child = with_local_child(&cx, 0x01, TraceState::NONE);
    assert!(inject(&child)["traceparent"].ends_with("-01"));
}

#[test]
fn unknown_flag_bits_are_not_propagated() {
    let cx = extract(&[("traceparent", &traceparent("ff"))]);
    assert_eq!(
        cx.span().span_context().trace_flags(),
        TraceFlags::new(0x03)
    );
    let incoming = cx.get::<IncomingTraceContext>().expect("valid");
    assert_eq!(incoming.traceparent.flags, 0xff);
    // Passing the received context straight on (no local span) still drops them.
    assert_eq!(inject(&cx)["traceparent"], traceparent("03"));
}

#[test]
fn outgoing_version_is_always_00() {
    let future = format!("cc-{TRACE_ID}-{PARENT_ID}-01-extra");
    let cx = extract(&[("traceparent", &future)]);
    assert_eq!(inject(&cx)["traceparent"], traceparent("01"));
}

#[test]
fn locally_started_trace_gets_the_random_flag() {
    let root = with_local_child(&Context::new(), 0x01, TraceState::NONE);
    assert!(inject(&root)["traceparent"].ends_with("-03"));
    let unsampled_root = with_local_child(&Context::new(), 0x00, TraceState::NONE);
    assert!(inject(&unsampled_root)["traceparent"].ends_with("-02"));
}

#[test]
fn local_random_flag_can_be_turned_off() {
    let propagator = W3cTraceContextPropagator::new().with_local_traces_random(false);
    let root = with_local_child(&Context::new(), 0x01, TraceState::NONE);
    assert!(inject_with(&propagator, &root)["traceparent"].ends_with("-01"));
}

#[test]
fn incoming_value_of_another_trace_is_ignored() {
    // A context that still carries what was received for trace A, but whose span belongs to
    // trace B started here: B is local, so it is random, and A's tracestate does not leak.
    let cx = extract(&[("traceparent", &traceparent("01")), ("tracestate", "a=1")]);
    let other_trace = SpanContext::new(
        TraceId::from_hex("11111111111111111111111111111111").expect("hex"),
        SpanId::from_hex(LOCAL_SPAN_ID).expect("hex"),
        TraceFlags::SAMPLED,
        false,
        TraceState::NONE,
    );
    let cx = cx.with_remote_span_context(other_trace);
    let out = inject(&cx);
    assert!(out["traceparent"].ends_with("-03"));
    assert!(!out.contains_key("tracestate"));
}

#[test]
fn nothing_is_injected_without_a_valid_span() {
    assert!(inject(&Context::new()).is_empty());
}

#[test]
fn tracestate_sent_never_exceeds_32_members() {
    let incoming: Vec<String> = (0..32).map(|i| format!("k{i}=v")).collect();
    let cx = extract(&[
        ("traceparent", &traceparent("01")),
        ("tracestate", &incoming.join(",")),
    ]);
    let added = cx
        .span()
        .span_context()
        .trace_state()
        .insert("mine", "x")
        .expect("valid");
    let child = with_local_child(&cx, 0x01, added);
    let sent = inject(&child)["tracestate"].clone();
    assert_eq!(sent.split(',').count(), 32);
    assert!(sent.starts_with("mine=x,k0=v"));
}

#[test]
fn fields_are_traceparent_and_tracestate() {
    let propagator = W3cTraceContextPropagator::new();
    assert_eq!(
        propagator.fields().collect::<Vec<_>>(),
        ["traceparent", "tracestate"]
    );
}

#[test]
fn headers_round_trip_through_the_http_carrier() {
    let cx = extract(&[
        ("traceparent", &traceparent("03")),
        ("tracestate", "a=1,b=2"),
    ]);
    let mut map = HeaderMap::new();
    W3cTraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut map));
    assert_eq!(map.get_all("traceparent").iter().count(), 1);
    let again = W3cTraceContextPropagator::new()
        .extract_with_context(&Context::new(), &HeaderExtractor(&map));
    assert_eq!(
        again.get::<IncomingTraceContext>(),
        cx.get::<IncomingTraceContext>()
    );
}

#[test]
fn plain_members_pass_as_the_api_would_let_them() {
    let long = "a".repeat(256);
    let too_long = "a".repeat(257);
    let keys = [
        "ot",
        "rojo",
        "congo",
        "k0",
        "0k",
        "a_b-c*d/e",
        "vendor@tenant",
        "t@v",
        "Upper",
        "-a",
        "a b",
        "",
        &long,
        &too_long,
        "é",
    ];
    let values = [
        "th:8",
        "00f067aa0ba902b7",
        "t61rcWkgMzE",
        "a b",
        "x=y",
        "x,y",
        "",
        &long,
        &too_long,
        " trailing ",
        "é",
    ];
    let mut plain = 0;
    for key in keys {
        for value in values {
            let api = TraceState::from_key_value([(key, value)]).is_ok();
            if is_plain_member(key, value) {
                plain += 1;
                assert!(
                    api,
                    "{key:?}={value:?} passed without the API, which refuses it"
                );
            }
            assert_eq!(api_accepts(key, value), api, "{key:?}={value:?}");
        }
    }
    assert!(plain > 40, "the fast path took {plain} members");
}
