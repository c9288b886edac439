//! A simulated queue between two services.
//!
//! A `publish` step records a PRODUCER span and hands the message over; after the consumer
//! lag, the message is delivered to the consumer's route over plain HTTP (standing for the
//! broker). The producer's context travels in message headers of our own, not in
//! `traceparent`, so the consumer starts a trace of its own with a CONSUMER span linked to the
//! producer, as the messaging conventions advise for work processed later.

use std::time::SystemTime;

use axum::http::HeaderMap;
use opentelemetry::trace::{Link, SpanBuilder, SpanContext, SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tracelab_net::client::Request;
use tracelab_scenario::Publish;
use tracelab_scenario::seed::DrawRng;

use crate::app::ServiceState;
use crate::faults::{Effects, unix_nanos};
use crate::origin::{ORIGIN_HEADER, Origin};
use crate::semconv as sc;
use crate::span_values::Wire;

/// The producer's `traceparent`, carried with the message.
pub const CONTEXT_HEADER: &str = "tracelab-message-context";
/// The topic the message was published to.
pub const TOPIC_HEADER: &str = "tracelab-message-topic";
/// When the message was published, in nanoseconds since the Unix epoch.
pub const SENT_HEADER: &str = "tracelab-message-sent";

/// A message delivered to a consumer route.
#[derive(Debug, Clone)]
pub struct Delivered {
    topic: String,
    producer: SpanContext,
    sent_unix_nano: Option<u64>,
}

/// The message a request delivers, if it is a delivery.
pub fn delivered(state: &ServiceState, headers: &HeaderMap) -> Option<Delivered> {
    let context = headers.get(CONTEXT_HEADER)?.clone();
    let mut carrier = HeaderMap::new();
    carrier.insert("traceparent", context);
    let producer = state.extract(&carrier).span().span_context().clone();
    let topic = headers
        .get(TOPIC_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("queue")
        .to_owned();
    let sent_unix_nano = headers
        .get(SENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Some(Delivered {
        topic,
        producer,
        sent_unix_nano,
    })
}

impl Delivered {
    /// Turns the SERVER span of the delivery into the CONSUMER span that processes it.
    pub fn consumer_span(
        &self,
        mut builder: SpanBuilder,
        attributes: &mut Vec<KeyValue>,
    ) -> SpanBuilder {
        builder.name = format!("process {}", self.topic).into();
        attributes.push(KeyValue::new(sc::MESSAGING_SYSTEM, "tracelab"));
        attributes.push(KeyValue::new(
            sc::MESSAGING_DESTINATION_NAME,
            self.topic.clone(),
        ));
        attributes.push(KeyValue::new(sc::MESSAGING_OPERATION_TYPE, "process"));
        if let Some(sent) = self.sent_unix_nano {
            let lag_ms = unix_nanos(SystemTime::now()).saturating_sub(sent) as f64 / 1e6;
            attributes.push(KeyValue::new(sc::TRACELAB_CONSUMER_LAG_MS, lag_ms));
        }
        let builder = builder.with_kind(SpanKind::Consumer);
        if self.producer.is_valid() {
            builder.with_links(vec![Link::with_context(self.producer.clone())])
        } else {
            builder
        }
    }
}

/// Publishes a message under a PRODUCER span and schedules its delivery after the lag.
/// Publishing itself cannot fail: the broker is simulated and always takes the message.
pub fn publish(
    state: &ServiceState,
    cx: &Context,
    publish: &Publish,
    step: usize,
    origin: &Origin,
    rng: &mut DrawRng,
    effects: &Effects,
) {
    let tracer = state.telemetry.tracer();
    let lag = publish.lag.sample(rng);
    let span = tracer
        .span_builder(format!("send {}", publish.topic))
        .with_kind(SpanKind::Producer)
        .with_start_time(effects.now())
        .with_attributes([
            KeyValue::new(sc::MESSAGING_SYSTEM, "tracelab"),
            KeyValue::new(sc::MESSAGING_DESTINATION_NAME, publish.topic.clone()),
            KeyValue::new(sc::MESSAGING_OPERATION_TYPE, "send"),
            KeyValue::new(sc::PEER_SERVICE, publish.consumer.service.clone()),
            KeyValue::new(sc::TRACELAB_STEP, step as i64),
        ])
        .start_with_context(tracer, cx);
    let producer_cx = cx.with_span(span);
    let mut injected = HeaderMap::new();
    if !effects.drop_context {
        state.inject(&producer_cx, &mut injected);
    }
    let mut headers = HeaderMap::new();
    if let Some(value) = injected.get("traceparent") {
        headers.insert(CONTEXT_HEADER, value.clone());
    }
    if let Ok(value) = publish.topic.parse() {
        headers.insert(TOPIC_HEADER, value);
    }
    if let Ok(value) = unix_nanos(SystemTime::now()).to_string().parse() {
        headers.insert(SENT_HEADER, value);
    }
    let delivery = origin.child(step, 0, 0);
    if let Some(value) = delivery.header_value().and_then(|v| v.parse().ok()) {
        headers.insert(ORIGIN_HEADER, value);
    }
    producer_cx.span().end_with_timestamp(effects.now());

    let consumer = &publish.consumer.service;
    let Some(base) = crate::client::instance_base(state, consumer, cx, &delivery) else {
        tracing::warn!(service = %publish.consumer.service, "no address for the consumer");
        return;
    };
    let url = format!("{base}{}", publish.consumer.route);
    let method = state
        .scenario
        .route(&publish.consumer.service, &publish.consumer.route)
        .map(|r| r.method.clone())
        .unwrap_or_else(|| "POST".to_owned());
    let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::POST);
    let Some(wire) = Wire::parse(&url) else {
        tracing::debug!(%url, "message not delivered: the consumer's address is not an http:// URL");
        return;
    };
    headers.insert(http::header::HOST, wire.host.clone());
    let calls = state.calls.clone();
    let timing = state.timing.clone();
    let timer = state.timer;
    // Detached on purpose: the producer's request does not wait for the consumer, which is
    // the whole point of a queue.
    tokio::spawn(async move {
        crate::wait::injected(timer, &timing, lag).await;
        let request = Request {
            method: &method,
            target: &wire.target,
            headers: (&headers).into(),
        };
        if let Err(error) = calls.send(&wire.address, &request, None).await {
            tracing::debug!(%url, ?error, "message delivery failed");
        }
    });
}
