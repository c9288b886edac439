//! The W3C trace-context test-harness endpoint.
//!
//! The harness (w3c/trace-context `test/`) POSTs a JSON array of `{"url": ..., "arguments":
//! [...]}` to the service under test. For each element, in order, the service POSTs
//! `arguments` as a JSON body to `url`, carrying the propagated context in a new CLIENT span,
//! and answers only when every callback has completed. The harness then inspects the headers it
//! received. This is how one checks a propagator against the specification's own test suite.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use serde::Deserialize;

use crate::app::{CONFORMANCE_PATH, ServiceState};
use crate::semconv as sc;

/// One callback the harness asks for.
#[derive(Debug, Deserialize)]
struct Callback {
    url: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

/// Handles `POST /conformance/trace-context`.
pub async fn handle(
    State(state): State<Arc<ServiceState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let callbacks: Vec<Callback> = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected a JSON array of {{\"url\": ..., \"arguments\": [...]}}: {e}\n"),
            )
                .into_response();
        }
    };
    let parent_cx = state.extract(&headers);
    let tracer = state.telemetry.tracer();
    let server = tracer
        .span_builder(format!("POST {CONFORMANCE_PATH}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new(sc::HTTP_REQUEST_METHOD, "POST"),
            KeyValue::new(sc::HTTP_ROUTE, CONFORMANCE_PATH),
        ])
        .start_with_context(tracer, &parent_cx);
    let cx = parent_cx.with_span(server);

    let mut failures = 0;
    for callback in callbacks {
        let span = tracer
            .span_builder("POST")
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new(sc::HTTP_REQUEST_METHOD, "POST"),
                KeyValue::new(sc::URL_FULL, callback.url.clone()),
            ])
            .start_with_context(tracer, &cx);
        let call_cx = cx.with_span(span);
        let mut out = HeaderMap::new();
        state.inject(&call_cx, &mut out);
        out.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        let sent = state
            .client
            .post(&callback.url)
            .headers(out)
            .body(callback.arguments.to_string())
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(resp) => {
                call_cx.span().set_attribute(KeyValue::new(
                    sc::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(resp.status().as_u16()),
                ));
                let _ = resp.bytes().await;
            }
            Err(e) => {
                failures += 1;
                call_cx.span().set_status(Status::error(e.to_string()));
            }
        }
        call_cx.span().end();
    }
    cx.span().end();
    if failures > 0 {
        (
            StatusCode::BAD_GATEWAY,
            format!("{failures} callback(s) failed\n"),
        )
            .into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}
