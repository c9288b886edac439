//! One downstream call in a CLIENT span, to the instance of the called service its balancing
//! policy picks (named on the span by `server.address`, `server.port` and `url.full`).

use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rand::Rng;
use tracelab_net::client::{Failure, Headers, Request};
use tracelab_propagation::LineInjector;
use tracelab_scenario::Call;
use tracelab_scenario::balance::{self, Balancer};

use crate::app::ServiceState;
use crate::faults::Effects;
use crate::origin::{ORIGIN_HEADER, Origin};
use crate::semconv as sc;
use crate::span_values::CallValues;

/// How a downstream call ended, from the caller's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// A 2xx/3xx answer.
    Ok,
    /// An error status, a timeout or a connection failure, described for the caller's span.
    Failed(String),
}

/// Where a call is made: the calling service, the request's context (the span the call's
/// spans go under), the call, its step's place in the route, and the faults in force.
#[derive(Clone, Copy)]
pub struct CallSite<'a> {
    pub state: &'a ServiceState,
    pub cx: &'a Context,
    pub call: &'a Call,
    pub step: usize,
    pub effects: &'a Effects,
}

/// Room for a call's header lines (`traceparent`, `tracestate`, `baggage`, the origin and
/// `Host`: about 200 bytes in the lab), so that writing them does not grow the buffer.
const HEAD_CAPACITY: usize = 256;

/// Calls `call.route` on `call.service`, each attempt under a new CLIENT span, child of the
/// span in `cx`. With a retry policy, a failed attempt that is worth repeating (a 5xx, a
/// timeout, a connection failure) is repeated after an exponential backoff with jitter; each
/// retry carries `http.request.resend_count` and an origin of its own, so the callee draws
/// afresh for it.
pub async fn call(site: CallSite<'_>, origin: &Origin) -> CallResult {
    let CallSite { state, call, .. } = site;
    let attempts = call.retry.as_ref().map_or(1, |r| r.attempts.max(1));
    // Jitter draws from a generator of this call's own, so they replay with the seed and
    // leave the request's other draws alone.
    let mut rng = origin.rng(state.scenario.seed, &state.name, "#retry");
    let mut attempt = 0;
    loop {
        let attempt_origin = if attempt == 0 {
            origin.clone()
        } else {
            origin.attempt(attempt)
        };
        let (result, retryable) = send(site, &attempt_origin, attempt).await;
        attempt += 1;
        let Some(retry) = call
            .retry
            .as_ref()
            .filter(|_| retryable && attempt < attempts)
        else {
            return result;
        };
        let full = retry.backoff_before(attempt);
        let jitter = retry.jitter.clamp(0.0, 1.0);
        let wait = full.mul_f64(1.0 - jitter * rng.random::<f64>());
        crate::wait::injected(state.timer, &state.timing, wait).await;
    }
}

/// The base URL of the instance of `service` a request from `cx` at `origin` goes to, by the
/// service's balancing policy; `None` when the service has no address.
pub(crate) fn instance_base<'s>(
    state: &'s ServiceState,
    service: &str,
    cx: &Context,
    origin: &Origin,
) -> Option<&'s str> {
    let urls = state.peers.urls(service);
    let index = state
        .balancers
        .get(service)
        .map_or(0, |balancer| choose(state, balancer, cx, origin));
    urls.get(index).or_else(|| urls.first()).map(String::as_str)
}

/// The instance of the called service one attempt goes to, by the callee's policy: drawn from
/// the request's number and the attempt's place in the call tree, so it replays with the seed.
fn choose(state: &ServiceState, balancer: &Balancer, cx: &Context, origin: &Origin) -> usize {
    if balancer.instances() < 2 {
        return 0;
    }
    let baggage = cx.baggage();
    let sticky = balancer
        .sticky_key()
        .and_then(|key| baggage.get(key))
        .map(|value| value.as_str());
    balancer.choose(&balance::Call {
        caller: &state.name,
        site: &origin.path,
        sequence: origin.sequence,
        sticky,
    })
}

/// One attempt of a call; also says whether its failure is worth a retry.
async fn send(site: CallSite<'_>, origin: &Origin, resend: u32) -> (CallResult, bool) {
    let CallSite {
        state,
        cx,
        call,
        step,
        effects,
    } = site;
    let tracer = state.telemetry.tracer();
    let built;
    let values = match state.span_values.call(&call.service, &call.route) {
        Some(values) => values,
        None => match CallValues::new(&state.scenario, &state.peers, call) {
            Some(values) => {
                built = values;
                &built
            }
            None => {
                // Validation makes this unreachable for `tracelab run`; in `svc` mode start-up
                // checks the peers. Still a failed call, never a panic.
                let reason = format!("no address for service `{}`", call.service);
                return (CallResult::Failed(reason), false);
            }
        },
    };
    let balancer = state.balancers.get(&call.service);
    let instance = balancer.map_or(0, |balancer| choose(state, balancer, cx, origin));
    let Some(target) = values.instance(instance) else {
        let reason = format!("no address for service `{}`", call.service);
        return (CallResult::Failed(reason), false);
    };
    // Counted from here to the answer, for the `least_requests` policy of later calls.
    let _in_flight = balancer.map(|balancer| balancer.start(instance));
    // Room for what the span gets later (status code, error type), so that recording them
    // does not grow the vector again.
    let mut attributes = Vec::with_capacity(10);
    attributes.extend([
        KeyValue::new(sc::HTTP_REQUEST_METHOD, values.method.clone()),
        KeyValue::new(sc::URL_FULL, target.url_full.clone()),
        KeyValue::new(sc::URL_TEMPLATE, values.url_template.clone()),
        KeyValue::new(sc::SERVER_ADDRESS, target.server_address.clone()),
        KeyValue::new(sc::SERVER_PORT, target.server_port),
        KeyValue::new(sc::PEER_SERVICE, values.peer_service.clone()),
        KeyValue::new(sc::TRACELAB_STEP, step as i64),
    ]);
    if resend > 0 {
        attributes.push(KeyValue::new(
            sc::HTTP_REQUEST_RESEND_COUNT,
            i64::from(resend),
        ));
    }
    // With propagation broken, the call starts from an empty context: its span begins a new
    // trace, and so does everything downstream of it.
    let parent = if effects.drop_context {
        attributes.push(KeyValue::new(sc::TRACELAB_INJECTED, "drop_context"));
        Context::new()
    } else {
        cx.clone()
    };
    let span = tracer
        .span_builder(values.span_name.clone())
        .with_kind(SpanKind::Client)
        .with_start_time(effects.now())
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    let cx = parent.with_span(span);

    let sent = match &target.wire {
        Some(wire) => {
            // The head's header lines written straight from the propagators, in the order a
            // map would have kept them: no map, and no copy of each value into it.
            let mut head = Vec::with_capacity(HEAD_CAPACITY);
            let mut lines = LineInjector(&mut head);
            state.inject_lines(&cx, &mut lines);
            if let Some(value) = origin.header_value() {
                lines.line(ORIGIN_HEADER, value.as_bytes());
            }
            lines.line(http::header::HOST.as_str(), wire.host.as_bytes());
            let request = Request {
                method: &values.http_method,
                target: &wire.target,
                headers: Headers::Lines(&head),
            };
            // A timeout drops the connection, which cancels the callee's handler: the
            // downstream work really stops, as with a real client timeout.
            state
                .calls
                .send(&wire.address, &request, call.timeout)
                .await
        }
        None => Err(Failure::Request),
    };
    let mut retryable = false;
    let result = match sent {
        Ok(status) => {
            cx.span().set_attribute(KeyValue::new(
                sc::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status),
            ));
            if (400..600).contains(&status) {
                retryable = status >= 500;
                let code = status.to_string();
                cx.span()
                    .set_attribute(KeyValue::new(sc::ERROR_TYPE, code.clone()));
                cx.span().set_status(Status::error(format!("HTTP {code}")));
                CallResult::Failed(format!("{} {} answered {status}", call.service, call.route))
            } else {
                CallResult::Ok
            }
        }
        Err(failure) => {
            retryable = true;
            let kind = match failure {
                Failure::Timeout => "timeout",
                Failure::Connect => "connection_failed",
                Failure::Request => "request_failed",
            };
            cx.span().set_attribute(KeyValue::new(sc::ERROR_TYPE, kind));
            cx.span().set_status(Status::error(kind));
            CallResult::Failed(format!("{} {}: {kind}", call.service, call.route))
        }
    };
    cx.span().end_with_timestamp(effects.now());
    (result, retryable)
}
