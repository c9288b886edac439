//! One request to a scenario route, from SERVER span to response.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rand::Rng;
use tracelab_scenario::Route;

use crate::app::ServiceState;
use crate::faults::Effects;
use crate::origin::Origin;
use crate::queue;
use crate::semconv as sc;
use crate::span_values::RouteValues;
use crate::steps::{self, StepsOutcome};

/// Handles one request to `route` (at `path`) of this service.
///
/// Order of events, which the scenario documentation promises: the request waits for a
/// worker when the service has a concurrency limit; the route's own latency is waited; then
/// either an injected error ends the request, or the steps run in order; a failed downstream
/// call stops the remaining steps and the request answers 502. Active faults change this
/// (see [`crate::faults`]); every fault that took effect is named in `tracelab.injected`.
pub async fn handle(
    state: &ServiceState,
    path: &str,
    route: &Route,
    headers: &HeaderMap,
) -> Response {
    let message = queue::delivered(state, headers);
    let carried = state.extract(headers);
    // A delivered message starts a trace of its own, linked to its producer: the consumer
    // processes it later, outside the request that published it.
    let parent_cx = match &message {
        Some(_) => Context::new(),
        None => carried.clone(),
    };
    let origin = Origin::from_headers(headers);
    let mut rng = origin.rng(state.scenario.seed, &state.name, path);
    // Fault draws come from a generator of their own, so switching a fault on leaves every
    // other draw of the request (latency, errors, probabilities) as it was.
    let mut fault_rng = origin.rng(state.scenario.seed, &state.name, &format!("{path}#faults"));
    let baggage: Vec<(String, String)> = carried
        .baggage()
        .iter()
        .map(|(k, (v, _))| (k.to_string(), v.to_string()))
        .collect();
    let effects = state.faults.effects(path, &baggage, &mut fault_rng);

    let tracer = state.telemetry.tracer();
    let route_values = match state.span_values.route(path) {
        Some(values) => values.clone(),
        None => RouteValues {
            span_name: format!("{} {path}", route.method),
            method: route.method.clone().into(),
            path: path.to_string().into(),
        },
    };
    // Room for what a sampled span gets later (status code, error type), so that recording
    // them does not grow the vector again.
    let mut attributes = Vec::with_capacity(12 + baggage.len());
    attributes.extend([
        KeyValue::new(sc::HTTP_REQUEST_METHOD, route_values.method),
        KeyValue::new(sc::HTTP_ROUTE, route_values.path.clone()),
        KeyValue::new(sc::URL_PATH, route_values.path),
        KeyValue::new(sc::URL_SCHEME, "http"),
        KeyValue::new(sc::SERVER_ADDRESS, state.span_values.server_address.clone()),
        KeyValue::new(sc::SERVER_PORT, i64::from(state.listen_port)),
        KeyValue::new(sc::NETWORK_PROTOCOL_VERSION, "1.1"),
    ]);
    if let Some(value) = origin.header_value() {
        attributes.push(KeyValue::new(sc::TRACELAB_ORIGIN, value));
    }
    if let Some(value) = effects.injected_value() {
        attributes.push(KeyValue::new(sc::TRACELAB_INJECTED, value));
    }
    // Baggage is copied onto the SERVER span so analyses can slice traffic by it (tenant,
    // synthetic requests) without a second data path.
    for (key, value) in &baggage {
        attributes.push(KeyValue::new(format!("baggage.{key}"), value.clone()));
    }
    let mut builder = tracer
        .span_builder(route_values.span_name)
        .with_kind(SpanKind::Server)
        .with_start_time(effects.now());
    if let Some(message) = &message {
        builder = message.consumer_span(builder, &mut attributes);
    }
    let span = builder
        .with_attributes(attributes)
        .start_with_context(tracer, &parent_cx);
    let cx = parent_cx.with_span(span);

    let limit = match (state.service_concurrency(), effects.concurrency) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let _worker = match limit {
        Some(limit) => Some(wait_for_worker(state, &cx, limit, &effects).await),
        None => None,
    };

    if effects.hang {
        // Never answers: the caller's timeout (or its disconnect, which drops this future and
        // ends the span) is the only way out, as with a stuck thread.
        std::future::pending::<()>().await;
    }

    // An instance's own difference draws from a generator of its own too, so the same
    // request draws the same everywhere else on every instance.
    let mut instance_rng = state.overrides.as_ref().map(|_| {
        origin.rng(
            state.scenario.seed,
            &state.name,
            &format!("{path}#instance"),
        )
    });
    let mut base = route.latency.sample(&mut rng);
    if let (Some(change), Some(draws)) = (
        state.overrides.as_ref().and_then(|o| o.latency.as_ref()),
        instance_rng.as_mut(),
    ) {
        base = crate::faults::changed_latency(change, base, draws);
    }
    let own = effects.own_latency(base, &mut fault_rng);
    if !own.is_zero() {
        cx.span().set_attribute(crate::wait::drawn(own));
    }
    crate::wait::injected(state.timer, &state.timing, own).await;

    let mut injected = route
        .errors
        .as_ref()
        .filter(|e| e.rate > 0.0 && rng.random_bool(e.rate.clamp(0.0, 1.0)));
    if injected.is_none()
        && let (Some(errors), Some(draws)) = (
            state.overrides.as_ref().and_then(|o| o.errors.as_ref()),
            instance_rng.as_mut(),
        )
        && errors.rate > 0.0
        && draws.random_bool(errors.rate.clamp(0.0, 1.0))
    {
        injected = Some(errors);
    }
    let (status, message) = match (injected, effects.error) {
        (Some(errors), _) => {
            cx.span()
                .set_attribute(KeyValue::new(sc::TRACELAB_INJECTED, "error"));
            (
                StatusCode::from_u16(errors.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                format!("injected error from scenario (rate {})", errors.rate),
            )
        }
        (None, Some(status)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "injected error from an active fault".to_string(),
        ),
        (None, None) => match steps::run(state, route, &cx, &origin, &mut rng, &effects).await {
            StepsOutcome::Completed => (StatusCode::OK, String::new()),
            StepsOutcome::DownstreamFailed(reason) => (StatusCode::BAD_GATEWAY, reason),
        },
    };
    finish_server_span(&cx, status, &message, &effects);
    respond(state, path, status, &message, &cx)
}

/// Waits for a worker of the service's pool; the wait is a span of its own under the SERVER
/// span (and an attribute on both), so queueing shows on the critical path.
async fn wait_for_worker<'s>(
    state: &'s ServiceState,
    cx: &Context,
    limit: u32,
    effects: &Effects,
) -> crate::pool::Worker<'s> {
    let tracer = state.telemetry.tracer();
    let mut span = tracer
        .span_builder("worker pool wait")
        .with_kind(SpanKind::Internal)
        .with_start_time(effects.now())
        .with_attributes([KeyValue::new("tracelab.pool.limit", i64::from(limit))])
        .start_with_context(tracer, cx);
    let started = tokio::time::Instant::now();
    let worker = state.workers.acquire(limit).await;
    let waited_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.set_attribute(KeyValue::new(sc::TRACELAB_QUEUE_WAIT_MS, waited_ms));
    span.end_with_timestamp(effects.now());
    cx.span()
        .set_attribute(KeyValue::new(sc::TRACELAB_QUEUE_WAIT_MS, waited_ms));
    worker
}

/// Records the response status on the SERVER span and ends it. Server spans count only 5xx as
/// errors, as the HTTP semantic conventions say (a 4xx is the client's fault).
fn finish_server_span(cx: &Context, status: StatusCode, message: &str, effects: &Effects) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        sc::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_attribute(KeyValue::new(sc::ERROR_TYPE, status.as_u16().to_string()));
        span.set_status(Status::error(message.to_string()));
    }
    span.end_with_timestamp(effects.now());
}

fn respond(
    state: &ServiceState,
    path: &str,
    status: StatusCode,
    message: &str,
    cx: &Context,
) -> Response {
    let body = Answer {
        error: (!message.is_empty()).then_some(message),
        route: path,
        service: &state.name,
        status: status.as_u16(),
        trace_id: Hex(cx.span().span_context().trace_id()),
    };
    (status, axum::Json(body)).into_response()
}

/// The body of every answer, written straight from borrowed fields rather than through a
/// `serde_json::Value` (a map and a string for every key, on every request). The fields are in
/// the order a `Value` wrote them (by name), so the body is the same bytes.
#[derive(serde::Serialize)]
struct Answer<'a> {
    error: Option<&'a str>,
    route: &'a str,
    service: &'a str,
    status: u16,
    trace_id: Hex<opentelemetry::trace::TraceId>,
}

/// Serializes an id as its lowercase hex string, without a `String` in between.
struct Hex<T>(T);

impl<T: std::fmt::Display> serde::Serialize for Hex<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_the_json_a_value_would_write() {
        let trace_id = opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")
            .expect("a trace id");
        for error in [None, Some("injected \"503\"")] {
            let written = serde_json::to_string(&Answer {
                error,
                route: "/checkout",
                service: "frontend",
                status: 503,
                trace_id: Hex(trace_id),
            })
            .expect("serializes");
            let value = serde_json::json!({
                "service": "frontend",
                "route": "/checkout",
                "status": 503,
                "trace_id": trace_id.to_string(),
                "error": error,
            });
            assert_eq!(written, value.to_string());
        }
    }
}
