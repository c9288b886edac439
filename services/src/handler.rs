//! One request to a scenario route, from SERVER span to response.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rand::Rng;
use tracelab_scenario::Route;

use crate::app::ServiceState;
use crate::origin::Origin;
use crate::semconv as sc;
use crate::steps::{self, StepsOutcome};

/// Handles one request to `route` (at `path`) of this service.
///
/// Order of events, which the scenario documentation promises: the route's own latency is
/// waited first; then either an injected error ends the request, or the steps run in order; a
/// failed downstream call stops the remaining steps and the request answers 502.
pub async fn handle(
    state: &ServiceState,
    path: &str,
    route: &Route,
    headers: &HeaderMap,
) -> Response {
    let parent_cx = state.extract(headers);
    let origin = Origin::from_headers(headers);
    let mut rng = origin.rng(state.scenario.seed, &state.name, path);

    let tracer = state.telemetry.tracer();
    let mut attributes = vec![
        KeyValue::new(sc::HTTP_REQUEST_METHOD, route.method.clone()),
        KeyValue::new(sc::HTTP_ROUTE, path.to_string()),
        KeyValue::new(sc::URL_PATH, path.to_string()),
        KeyValue::new(sc::URL_SCHEME, "http"),
        KeyValue::new(sc::SERVER_ADDRESS, state.listen_host.clone()),
        KeyValue::new(sc::SERVER_PORT, i64::from(state.listen_port)),
        KeyValue::new(sc::NETWORK_PROTOCOL_VERSION, "1.1"),
    ];
    if let Some(value) = origin.header_value() {
        attributes.push(KeyValue::new(sc::TRACELAB_ORIGIN, value));
    }
    // Baggage is copied onto the SERVER span so analyses can slice traffic by it (tenant,
    // synthetic requests) without a second data path.
    for (key, (value, _)) in parent_cx.baggage().iter() {
        attributes.push(KeyValue::new(format!("baggage.{key}"), value.to_string()));
    }
    let span = tracer
        .span_builder(format!("{} {path}", route.method))
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent_cx);
    let cx = parent_cx.with_span(span);

    let own = route.latency.sample(&mut rng);
    tokio::time::sleep(own).await;

    let injected = route
        .errors
        .as_ref()
        .filter(|e| e.rate > 0.0 && rng.random_bool(e.rate.clamp(0.0, 1.0)));
    let (status, message) = match injected {
        Some(errors) => {
            cx.span()
                .set_attribute(KeyValue::new(sc::TRACELAB_INJECTED, "error"));
            (
                StatusCode::from_u16(errors.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                format!("injected error from scenario (rate {})", errors.rate),
            )
        }
        None => match steps::run(state, route, &cx, &origin, &mut rng).await {
            StepsOutcome::Completed => (StatusCode::OK, String::new()),
            StepsOutcome::DownstreamFailed(reason) => (StatusCode::BAD_GATEWAY, reason),
        },
    };
    finish_server_span(&cx, status, &message);
    respond(state, path, status, &message, &cx)
}

/// Records the response status on the SERVER span and ends it. Server spans count only 5xx as
/// errors, as the HTTP semantic conventions say (a 4xx is the client's fault).
fn finish_server_span(cx: &Context, status: StatusCode, message: &str) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        sc::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_attribute(KeyValue::new(sc::ERROR_TYPE, status.as_u16().to_string()));
        span.set_status(Status::error(message.to_string()));
    }
    span.end();
}

fn respond(
    state: &ServiceState,
    path: &str,
    status: StatusCode,
    message: &str,
    cx: &Context,
) -> Response {
    let trace_id = cx.span().span_context().trace_id().to_string();
    let body = serde_json::json!({
        "service": state.name,
        "route": path,
        "status": status.as_u16(),
        "trace_id": trace_id,
        "error": (!message.is_empty()).then_some(message),
    });
    (status, axum::Json(body)).into_response()
}
