//! The baggage propagator against OpenTelemetry's `Baggage` in the `Context`.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};
use opentelemetry::baggage::{Baggage, BaggageExt, BaggageMetadata};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::{Context, StringValue};

use super::*;
use crate::{HeaderExtractor, HeaderInjector};

fn extract(values: &[&str]) -> Context {
    let mut map = HeaderMap::new();
    for value in values {
        map.append(
            "baggage",
            HeaderValue::from_str(value).expect("test header"),
        );
    }
    W3cBaggagePropagator::new().extract_with_context(&Context::new(), &HeaderExtractor(&map))
}

fn inject(cx: &Context) -> Option<String> {
    let mut out: HashMap<String, String> = HashMap::new();
    W3cBaggagePropagator::new().inject_context(cx, &mut out);
    out.remove("baggage")
}

fn value(cx: &Context, key: &str) -> Option<String> {
    cx.baggage().get(key).map(|v| v.as_str().to_owned())
}

#[test]
fn extracted_baggage_is_in_the_context() {
    let cx = extract(&["user=alice,region=eu%20west;ttl=5"]);
    assert_eq!(value(&cx, "user").as_deref(), Some("alice"));
    assert_eq!(value(&cx, "region").as_deref(), Some("eu west"));
    assert_eq!(
        cx.baggage()
            .get_with_metadata("region")
            .map(|(_, m)| m.clone()),
        Some(BaggageMetadata::from("ttl=5"))
    );
}

#[test]
fn repeated_baggage_headers_are_combined() {
    let cx = extract(&["a=1", "b=2, c=3"]);
    assert_eq!(cx.baggage().len(), 3);
    assert_eq!(value(&cx, "c").as_deref(), Some("3"));
}

#[test]
fn invalid_members_are_skipped_and_valid_ones_kept() {
    let cx = extract(&["a=1,bad key=2,c=%zz,d=4"]);
    let mut keys: Vec<String> = cx.baggage().iter().map(|(k, _)| k.to_string()).collect();
    keys.sort();
    assert_eq!(keys, ["a", "d"]);
}

#[test]
fn only_invalid_input_leaves_the_context_unchanged() {
    let before = Context::new().with_baggage([opentelemetry::KeyValue::new("kept", "yes")]);
    let mut map = HeaderMap::new();
    map.insert("baggage", HeaderValue::from_static("no equals here,=x"));
    let after = W3cBaggagePropagator::new().extract_with_context(&before, &HeaderExtractor(&map));
    assert_eq!(value(&after, "kept").as_deref(), Some("yes"));
}

#[test]
fn injected_members_are_sorted_and_percent_encoded() {
    let mut baggage = Baggage::new();
    baggage.insert("z", "last");
    baggage.insert("a", "hello world, ok; \"quoted\" 100%");
    baggage.insert("u", "café ✓");
    let cx = Context::new().with_baggage(baggage);
    assert_eq!(
        inject(&cx).as_deref(),
        Some(
            "a=hello%20world%2C%20ok%3B%20%22quoted%22%20100%25,\
             u=caf%C3%A9%20%E2%9C%93,z=last"
        )
    );
}

#[test]
fn round_trip_keeps_values_and_properties() {
    let mut baggage = Baggage::new();
    baggage.insert_with_metadata("user", "Jürgen, M.", "ttl=60;secret");
    baggage.insert("empty", "");
    let sent = inject(&Context::new().with_baggage(baggage)).expect("header");
    let received = extract(&[&sent]);
    assert_eq!(value(&received, "user").as_deref(), Some("Jürgen, M."));
    assert_eq!(value(&received, "empty").as_deref(), Some(""));
    assert_eq!(
        received
            .baggage()
            .get_with_metadata("user")
            .map(|(_, m)| m.as_str().to_owned()),
        Some("ttl=60;secret".to_owned())
    );
}

#[test]
fn invalid_properties_set_by_code_are_not_sent() {
    let mut baggage = Baggage::new();
    baggage.insert_with_metadata("k", "v", "ok;not valid;x=y z");
    let cx = Context::new().with_baggage(baggage);
    assert_eq!(inject(&cx).as_deref(), Some("k=v;ok"));
}

#[test]
fn injected_header_never_exceeds_8192_bytes() {
    // 30 values of 250 spaces fit OpenTelemetry's own limit (which counts decoded bytes) but
    // triple in size once percent-encoded.
    let baggage: Baggage = (0..30)
        .map(|i| opentelemetry::KeyValue::new(format!("k{i:02}"), " ".repeat(250)))
        .collect();
    assert_eq!(baggage.len(), 30);
    let sent = inject(&Context::new().with_baggage(baggage)).expect("header");
    assert!(sent.len() <= baggage::MAX_BYTES, "{}", sent.len());
    assert_eq!(sent.split(',').count(), 10);
    assert!(baggage::parse(&[&sent]).rejected.is_empty());
}

#[test]
fn at_most_64_members_are_extracted() {
    let header: Vec<String> = (0..80).map(|i| format!("k{i}=v")).collect();
    let cx = extract(&[&header.join(",")]);
    assert_eq!(cx.baggage().len(), 64);
    assert!(cx.baggage().get("k63").is_some());
    assert!(cx.baggage().get("k64").is_none());
}

#[test]
fn duplicate_key_keeps_the_first_value() {
    let cx = extract(&["a=first", "a=second"]);
    assert_eq!(cx.baggage().get("a"), Some(&StringValue::from("first")));
}

#[test]
fn empty_baggage_sends_no_header() {
    assert_eq!(inject(&Context::new()), None);
}

#[test]
fn http_carrier_round_trip() {
    let cx = Context::new().with_baggage([opentelemetry::KeyValue::new("tenant", "a b")]);
    let mut map = HeaderMap::new();
    W3cBaggagePropagator::new().inject_context(&cx, &mut HeaderInjector(&mut map));
    assert_eq!(
        map.get("baggage").map(|v| v.as_bytes()),
        Some(&b"tenant=a%20b"[..])
    );
    let back =
        W3cBaggagePropagator::new().extract_with_context(&Context::new(), &HeaderExtractor(&map));
    assert_eq!(value(&back, "tenant").as_deref(), Some("a b"));
}

#[test]
fn fields_are_baggage() {
    assert_eq!(
        W3cBaggagePropagator::new().fields().collect::<Vec<_>>(),
        ["baggage"]
    );
}
