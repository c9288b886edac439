//! Random and mutated bodies through every decode path: refusals are fine, panics are not.

#[path = "support/wire.rs"]
mod support;

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use proptest::prelude::*;
use prost::Message;
use tower::ServiceExt;
use tracelab_receiver::{TraceStore, otlp_json, router};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Posts `body` to a fresh router and returns the status; a panic in the handler would
/// surface here as a failed test.
fn post(rt: &tokio::runtime::Runtime, content_type: &str, body: Vec<u8>) -> StatusCode {
    let store = Arc::new(TraceStore::new());
    let request = Request::post("/v1/traces")
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("valid request");
    rt.block_on(router(store, 1 << 20).oneshot(request))
        .expect("the router is infallible")
        .status()
}

fn valid_protobuf() -> Vec<u8> {
    support::rich_request().encode_to_vec()
}

fn valid_json() -> Vec<u8> {
    otlp_json::encode_request_line(
        &otlp_json::decode_lines(include_str!("data/otel-proto-example-trace.json"))
            .expect("fixture decodes"),
    )
    .into_bytes()
}

/// Applies (position, byte) overwrites, wrapping positions into the body.
fn mutate(mut body: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    let len = body.len();
    for (pos, byte) in edits {
        body[pos % len] = *byte;
    }
    body
}

proptest! {
    // The default reads PROPTEST_CASES (256 when unset), so bench/fuzz.sh can run millions.
    #![proptest_config(ProptestConfig::default())]

    #[test]
    fn random_protobuf_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let status = post(&runtime(), "application/x-protobuf", body);
        prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
    }

    #[test]
    fn mutated_protobuf_bodies_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let status = post(&runtime(), "application/x-protobuf", mutate(valid_protobuf(), &edits));
        prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
    }

    #[test]
    fn random_json_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let status = post(&runtime(), "application/json", body);
        prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
    }

    #[test]
    fn mutated_json_never_panics(edits in proptest::collection::vec((any::<usize>(), proptest::sample::select(b"{}[]\":,0123456789abcdefABCDEF-.eEnulltrs \\".to_vec())), 1..6)) {
        let body = mutate(valid_json(), &edits);
        let status = post(&runtime(), "application/json", body.clone());
        prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
        // The file reader takes the same text through its own entry point.
        let _ = otlp_json::decode_lines(&String::from_utf8_lossy(&body));
    }

    #[test]
    fn random_text_never_panics_the_file_reader(text in "\\PC{0,300}") {
        let _ = otlp_json::decode_lines(&text);
    }
}

#[test]
fn deeply_nested_values_are_refused_not_a_stack_overflow() {
    let depth = 5000;
    let mut value = String::from(r#"{"intValue":"1"}"#);
    for _ in 0..depth {
        value = format!(r#"{{"arrayValue":{{"values":[{value}]}}}}"#);
    }
    let body = format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","attributes":[{{"key":"deep","value":{value}}}]}}]}}]}}]}}"#
    );
    assert_eq!(
        post(&runtime(), "application/json", body.into_bytes()),
        StatusCode::BAD_REQUEST
    );
}
