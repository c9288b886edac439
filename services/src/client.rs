//! One downstream call in a CLIENT span.

use axum::http::HeaderMap;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tracelab_scenario::Call;

use crate::app::ServiceState;
use crate::origin::{ORIGIN_HEADER, Origin};
use crate::semconv as sc;

/// How a downstream call ended, from the caller's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// A 2xx/3xx answer.
    Ok,
    /// An error status, a timeout or a connection failure, described for the caller's span.
    Failed(String),
}

/// Calls `call.route` on `call.service` under a new CLIENT span, child of the span in `cx`.
pub async fn call(
    state: &ServiceState,
    cx: &Context,
    call: &Call,
    step: usize,
    origin: &Origin,
) -> CallResult {
    let tracer = state.telemetry.tracer();
    let method = state
        .scenario
        .route(&call.service, &call.route)
        .map(|r| r.method.clone())
        .unwrap_or_else(|| "GET".to_string());
    let Some(base) = state.peers.url(&call.service) else {
        // Validation makes this unreachable for `tracelab run`; in `svc` mode start-up checks
        // the peers. Still a failed call, never a panic.
        return CallResult::Failed(format!("no address for service `{}`", call.service));
    };
    let url = format!("{base}{}", call.route);
    let (host, port) = host_and_port(base);
    let span = tracer
        .span_builder(format!("{method} {}", call.route))
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new(sc::HTTP_REQUEST_METHOD, method.clone()),
            KeyValue::new(sc::URL_FULL, url.clone()),
            KeyValue::new(sc::URL_TEMPLATE, call.route.clone()),
            KeyValue::new(sc::SERVER_ADDRESS, host),
            KeyValue::new(sc::SERVER_PORT, i64::from(port)),
            KeyValue::new(sc::PEER_SERVICE, call.service.clone()),
            KeyValue::new(sc::TRACELAB_STEP, step as i64),
        ])
        .start_with_context(tracer, cx);
    let cx = cx.with_span(span);

    let mut headers = HeaderMap::new();
    state.inject(&cx, &mut headers);
    if let Some(value) = origin.header_value().and_then(|v| v.parse().ok()) {
        headers.insert(ORIGIN_HEADER, value);
    }
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut request = state.client.request(method, &url).headers(headers);
    if let Some(timeout) = call.timeout {
        // reqwest drops the connection when the timeout fires, which cancels the callee's
        // handler: the downstream work really stops, as with a real client timeout.
        request = request.timeout(timeout);
    }
    let result = match request.send().await {
        Ok(response) => {
            let status = response.status();
            // Drain the body so the connection goes back to the pool.
            let _ = response.bytes().await;
            cx.span().set_attribute(KeyValue::new(
                sc::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
            if status.is_client_error() || status.is_server_error() {
                let code = status.as_u16().to_string();
                cx.span()
                    .set_attribute(KeyValue::new(sc::ERROR_TYPE, code.clone()));
                cx.span().set_status(Status::error(format!("HTTP {code}")));
                CallResult::Failed(format!(
                    "{} {} answered {}",
                    call.service,
                    call.route,
                    status.as_u16()
                ))
            } else {
                CallResult::Ok
            }
        }
        Err(err) => {
            let kind = if err.is_timeout() {
                "timeout"
            } else if err.is_connect() {
                "connection_failed"
            } else {
                "request_failed"
            };
            cx.span().set_attribute(KeyValue::new(sc::ERROR_TYPE, kind));
            cx.span().set_status(Status::error(kind));
            CallResult::Failed(format!("{} {}: {kind}", call.service, call.route))
        }
    };
    cx.span().end();
    result
}

/// Splits `http://host:port` into its host and port (80 when absent).
fn host_and_port(base: &str) -> (String, u16) {
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .unwrap_or(base);
    match rest.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(80)),
        None => (rest.to_string(), 80),
    }
}
