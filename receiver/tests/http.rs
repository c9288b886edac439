//! OTLP/HTTP: a real server over loopback for the protocol, and the router alone (no socket)
//! for the refusals.

#[path = "support/wire.rs"]
mod support;

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tower::ServiceExt;
use tracelab_receiver::{Receiver, ReceiverConfig, TraceStore, router};
use tracelab_trace::{AttrValue, SpanId, SpanKind, TraceId};

const FIXTURE: &str = include_str!("data/otel-proto-example-trace.json");

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, String, Vec<u8>) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request reaches the server");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("valid status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response.bytes().await.expect("body").to_vec();
    (status, content_type, body)
}

/// The rich request in OTLP/JSON, as a foreign producer would write it: upper-case ids,
/// enum names, integers as numbers.
fn rich_request_as_foreign_json() -> String {
    let request = support::rich_request();
    let mut json: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
    // `opentelemetry-proto`'s own serde output, then made as unlike ours as OTLP/JSON allows.
    let spans = json["resourceSpans"][0]["scopeSpans"][0]["spans"]
        .as_array_mut()
        .unwrap();
    for span in spans.iter_mut() {
        for key in ["traceId", "spanId", "parentSpanId"] {
            if let Some(id) = span[key].as_str() {
                span[key] = id.to_uppercase().into();
            }
        }
        let kind = span["kind"].as_i64().unwrap();
        span["kind"] = [
            "SPAN_KIND_UNSPECIFIED",
            "SPAN_KIND_INTERNAL",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
        ][kind as usize]
            .into();
        span["startTimeUnixNano"] = span["startTimeUnixNano"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            .into();
        span["someFutureField"] = serde_json::json!({"ignored": true});
    }
    json.to_string()
}

#[tokio::test]
async fn protobuf_export_over_a_real_socket() {
    let store = Arc::new(TraceStore::new());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), Arc::clone(&store))
        .await
        .unwrap();
    assert_eq!(
        receiver.http_traces_endpoint(),
        format!("http://127.0.0.1:{}/v1/traces", receiver.http_addr().port())
    );
    let (status, content_type, body) = post(
        &receiver.http_traces_endpoint(),
        "application/x-protobuf",
        support::rich_request().encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-protobuf");
    let response = ExportTraceServiceResponse::decode(body.as_slice()).expect("protobuf response");
    assert_eq!(response.partial_success, None);
    support::assert_rich_spans(&store.spans());
    receiver.shutdown().await;
}

#[tokio::test]
async fn json_export_over_a_real_socket() {
    let store = Arc::new(TraceStore::new());
    let receiver = Receiver::start(ReceiverConfig::ephemeral(), Arc::clone(&store))
        .await
        .unwrap();
    let (status, content_type, body) = post(
        &receiver.http_traces_endpoint(),
        "application/json; charset=utf-8",
        rich_request_as_foreign_json().into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/json");
    assert_eq!(body, b"{}");
    support::assert_rich_spans(&store.spans());
    receiver.shutdown().await;
}

#[tokio::test]
async fn the_opentelemetry_example_is_accepted() {
    let store = Arc::new(TraceStore::new());
    let response = router(Arc::clone(&store), 1 << 20)
        .oneshot(json_request(FIXTURE.as_bytes().to_vec()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let spans = store.spans();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(
        span.trace_id,
        "5b8efff798038103d269b633813fc60c"
            .parse::<TraceId>()
            .unwrap()
    );
    assert_eq!(span.span_id, "eee19b7ec3c1b174".parse::<SpanId>().unwrap());
    assert_eq!(
        span.parent_span_id,
        Some("eee19b7ec3c1b173".parse().unwrap())
    );
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(&*span.service_name, "my.service");
    assert_eq!(span.scope_name, "my.library");
    assert_eq!(span.duration_nanos(), 1_000_000_000);
    assert_eq!(
        span.attr("my.span.attr"),
        Some(&AttrValue::Str("some value".into()))
    );
}

fn request_with(content_type: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::post("/v1/traces");
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(Body::from(body)).unwrap()
}

fn json_request(body: Vec<u8>) -> Request<Body> {
    request_with(Some("application/json"), body)
}

async fn status_and_body(
    store: &Arc<TraceStore>,
    limit: usize,
    request: Request<Body>,
) -> (StatusCode, Vec<u8>) {
    let response = router(Arc::clone(store), limit)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_status_in_the_request_encoding() {
    let store = Arc::new(TraceStore::new());
    let (status, body) = status_and_body(
        &store,
        1 << 20,
        request_with(Some("application/x-protobuf"), vec![0xff; 32]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // google.rpc.Status: field 1 (code) = 3 (InvalidArgument), then the message.
    assert_eq!(&body[..2], &[0x08, 0x03]);

    for bad_json in [
        &b"{not json"[..],
        br#"{"resourceSpans": 5}"#,
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#,
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_BOGUS"}]}]}]}"#,
    ] {
        let (status, body) =
            status_and_body(&store, 1 << 20, json_request(bad_json.to_vec())).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(bad_json)
        );
        let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON error body");
        assert_eq!(error["code"], 3);
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(store.stats().requests_rejected_malformed, 5);
    assert_eq!(store.span_count(), 0);
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let store = Arc::new(TraceStore::new());
    let big = vec![b' '; 2048];
    // Declared by Content-Length...
    let mut declared = json_request(big.clone());
    declared
        .headers_mut()
        .insert("content-length", http::HeaderValue::from_static("2048"));
    assert_eq!(
        status_and_body(&store, 1024, declared).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // ...or only discovered while reading.
    assert_eq!(
        status_and_body(&store, 1024, json_request(big)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A small gzip body that inflates past the limit.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 64 * 1024]).unwrap();
    let mut bomb = json_request(gz.finish().unwrap());
    bomb.headers_mut()
        .insert("content-encoding", http::HeaderValue::from_static("gzip"));
    assert_eq!(
        status_and_body(&store, 1024, bomb).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(store.stats().requests_rejected_too_large, 3);
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let store = Arc::new(TraceStore::new());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&support::rich_request().encode_to_vec())
        .unwrap();
    let mut request = request_with(Some("application/x-protobuf"), gz.finish().unwrap());
    request
        .headers_mut()
        .insert("content-encoding", http::HeaderValue::from_static("gzip"));
    assert_eq!(
        status_and_body(&store, 1 << 20, request).await.0,
        StatusCode::OK
    );
    support::assert_rich_spans(&store.spans());
}

#[tokio::test]
async fn wrong_content_type_method_or_path_is_refused() {
    let store = Arc::new(TraceStore::new());
    let limit = 1 << 20;
    for ct in [None, Some("text/plain"), Some("application/xml")] {
        let (status, _) = status_and_body(&store, limit, request_with(ct, b"{}".to_vec())).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
    }
    let mut brotli = json_request(b"{}".to_vec());
    brotli
        .headers_mut()
        .insert("content-encoding", http::HeaderValue::from_static("br"));
    assert_eq!(
        status_and_body(&store, limit, brotli).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(store.stats().requests_rejected_media_type, 4);

    let get = Request::get("/v1/traces").body(Body::empty()).unwrap();
    assert_eq!(
        status_and_body(&store, limit, get).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let metrics = Request::post("/v1/metrics")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(
        status_and_body(&store, limit, metrics).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn partial_success_is_reported_in_json() {
    let store = Arc::new(TraceStore::new());
    let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[
        {"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"ok"},
        {"traceId":"0101","spanId":"0202020202020202","name":"short"}]}]}]}"#;
    let (status, body) = status_and_body(&store, 1 << 20, json_request(body.to_vec())).await;
    assert_eq!(status, StatusCode::OK);
    let response: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(response["partialSuccess"]["rejectedSpans"], "1");
    assert_eq!(store.span_count(), 1);
}

#[tokio::test]
async fn the_server_still_serves_after_refusals() {
    let store = Arc::new(TraceStore::new());
    let config = ReceiverConfig {
        max_body_bytes: 64 * 1024,
        ..ReceiverConfig::ephemeral()
    };
    let receiver = Receiver::start(config, Arc::clone(&store)).await.unwrap();
    let url = receiver.http_traces_endpoint();
    assert_eq!(
        post(&url, "application/x-protobuf", vec![0xff; 16]).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&url, "application/json", b"[".to_vec()).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(&url, "application/json", vec![b' '; 128 * 1024])
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        post(&url, "text/plain", b"hi".to_vec()).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let (status, _, _) = post(&url, "application/json", FIXTURE.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(store.span_count(), 1);
    let stats = store.stats();
    assert_eq!((stats.requests_accepted, stats.requests_rejected()), (1, 4));
    receiver.shutdown().await;
}
