//! One request: its draws (entry, baggage), its root span, its send, its record.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rand_distr::Distribution;
use rand_distr::weighted::WeightedIndex;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tracelab_propagation::HeaderInjector;
use tracelab_scenario::seed;
use tracelab_telemetry::ServiceTelemetry;

use crate::plan::{EntryTarget, LoadPlan, PlanError};
use crate::record::{Outcome, RequestRecord};
use crate::transport::{Answer, Transport};

/// Header carrying the request's sequence number to the services (see `tracelab-services`'
/// `origin` module): it seeds every random draw downstream.
const ORIGIN_HEADER: &str = "tracelab-origin";

/// The baggage every generated request carries, so that faults and analyses can tell
/// generated traffic from any other.
pub const SYNTHETIC_BAGGAGE: (&str, &str) = ("synthetic_request", "true");

/// Maps an instant of this run to nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) origin: Instant,
    pub(crate) origin_unix_nano: u64,
}

impl Clock {
    pub(crate) fn now() -> Self {
        let origin_unix_nano = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Clock {
            origin: Instant::now(),
            origin_unix_nano,
        }
    }

    pub(crate) fn unix_nano(&self, at: Instant) -> u64 {
        self.origin_unix_nano + at.saturating_duration_since(self.origin).as_nanos() as u64
    }
}

/// A request due at an instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    pub(crate) sequence: u64,
    pub(crate) scheduled: Instant,
    pub(crate) user: Option<u32>,
}

/// One baggage key with its weighted values, ready to draw from.
#[derive(Debug)]
struct BaggageDraw {
    key: String,
    values: Vec<String>,
    choice: WeightedIndex<f64>,
}

/// What every request of a run shares.
#[derive(Debug)]
pub(crate) struct Shared<T> {
    pub(crate) transport: Arc<T>,
    pub(crate) telemetry: Option<ServiceTelemetry>,
    propagator: TextMapCompositePropagator,
    pub(crate) clock: Clock,
    timeout: Duration,
    seed: u64,
    entries: Vec<EntryTarget>,
    labels: Vec<String>,
    entry_choice: WeightedIndex<f64>,
    baggage: Vec<BaggageDraw>,
    /// Requests being sent at once. Without this cap a stalled target would collect an
    /// unbounded number of sockets; with it, due requests wait for a connection, start late,
    /// and that wait shows in their latency, as a user's would.
    connections: Semaphore,
    /// Requests due but not finished (waiting for a connection or being sent), checked
    /// against `max_in_flight` to drop rather than queue without bound.
    in_flight: AtomicUsize,
    max_in_flight: usize,
    /// Records on their way to the collector. The channel closes when the last holder of
    /// `Shared` is gone, which is how the collector knows every request is accounted for.
    pub(crate) records: mpsc::UnboundedSender<RequestRecord>,
}

impl<T: Transport> Shared<T> {
    pub(crate) fn new(
        plan: &LoadPlan,
        transport: Arc<T>,
        telemetry: Option<ServiceTelemetry>,
        timeout: Duration,
        records: mpsc::UnboundedSender<RequestRecord>,
    ) -> Result<Self, PlanError> {
        let invalid = |e: rand_distr::weighted::Error| PlanError::Invalid(e.to_string());
        let entry_choice =
            WeightedIndex::new(plan.entries.iter().map(|e| e.weight)).map_err(invalid)?;
        let mut baggage = Vec::new();
        for set in &plan.baggage {
            baggage.push(BaggageDraw {
                key: set.key.clone(),
                values: set.values.iter().map(|(v, _)| v.clone()).collect(),
                choice: WeightedIndex::new(set.values.iter().map(|(_, w)| *w)).map_err(invalid)?,
            });
        }
        Ok(Shared {
            transport,
            telemetry,
            propagator: TextMapCompositePropagator::new(vec![
                Box::new(tracelab_propagation::W3cTraceContextPropagator::default()),
                Box::new(tracelab_propagation::W3cBaggagePropagator::default()),
            ]),
            clock: Clock::now(),
            timeout,
            seed: plan.seed,
            labels: plan.entries.iter().map(EntryTarget::label).collect(),
            entries: plan.entries.clone(),
            entry_choice,
            baggage,
            connections: Semaphore::new(plan.effective_connections().min(Semaphore::MAX_PERMITS)),
            in_flight: AtomicUsize::new(0),
            max_in_flight: plan.max_in_flight,
            records,
        })
    }

    /// The entry and baggage of request `sequence`, from its own generator: the draws of a
    /// request do not depend on which requests were sent before it or in which order.
    fn draw(&self, sequence: u64) -> (usize, Vec<(String, String)>) {
        let mut rng = seed::rng(self.seed, &[b"loadgen/request", &sequence.to_le_bytes()]);
        let entry = self.entry_choice.sample(&mut rng);
        let mut baggage: Vec<(String, String)> = self
            .baggage
            .iter()
            .map(|b| (b.key.clone(), b.values[b.choice.sample(&mut rng)].clone()))
            .collect();
        baggage.push((
            SYNTHETIC_BAGGAGE.0.to_string(),
            SYNTHETIC_BAGGAGE.1.to_string(),
        ));
        (entry, baggage)
    }

    /// Sends the request of `ticket` unless the in-flight cap is reached, in which case it is
    /// recorded as dropped; either way exactly one record reaches the collector.
    pub(crate) async fn dispatch(self: &Arc<Self>, ticket: Ticket, spawn: bool) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = self.records.send(self.dropped(ticket));
            return;
        }
        if spawn {
            let shared = self.clone();
            tokio::spawn(async move {
                let record = shared.execute(ticket).await;
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                let _ = shared.records.send(record);
            });
        } else {
            let record = self.execute(ticket).await;
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = self.records.send(record);
        }
    }

    fn dropped(&self, ticket: Ticket) -> RequestRecord {
        let (entry, baggage) = self.draw(ticket.sequence);
        let at = self.clock.unix_nano(ticket.scheduled);
        let e = &self.entries[entry];
        RequestRecord {
            sequence: ticket.sequence,
            trace_id: String::new(),
            entry: self.labels[entry].clone(),
            service: e.service.clone(),
            route: e.route.clone(),
            scheduled_unix_nano: at,
            start_unix_nano: at,
            end_unix_nano: at,
            latency_ms: 0.0,
            service_time_ms: 0.0,
            status: None,
            outcome: Outcome::Dropped,
            error: true,
            late_by_ms: 0.0,
            sampled: None,
            user: ticket.user,
            baggage: baggage.into_iter().collect(),
        }
    }

    async fn execute(&self, ticket: Ticket) -> RequestRecord {
        let (entry_index, baggage) = self.draw(ticket.sequence);
        let entry = &self.entries[entry_index];
        // Waiting for a connection is part of the latency: it is measured from `scheduled`.
        let _permit = self.connections.acquire().await.ok();
        let started = Instant::now();

        let mut cx = Context::new().with_baggage(
            baggage
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .collect::<Vec<_>>(),
        );
        if let Some(telemetry) = &self.telemetry {
            let tracer = telemetry.tracer();
            let span = tracer
                .span_builder(format!("{} {}", entry.method, entry.route))
                .with_kind(SpanKind::Client)
                .with_attributes([
                    KeyValue::new("http.request.method", entry.method.clone()),
                    KeyValue::new("url.full", entry.url.clone()),
                    KeyValue::new("url.template", entry.route.clone()),
                    KeyValue::new("peer.service", entry.service.clone()),
                    KeyValue::new("tracelab.sequence", ticket.sequence as i64),
                ])
                .start_with_context(tracer, &cx);
            cx = cx.with_span(span);
        }
        let (trace_id, sampled) = if self.telemetry.is_some() {
            let context = cx.span().span_context().clone();
            (context.trace_id().to_string(), Some(context.is_sampled()))
        } else {
            (String::new(), None)
        };
        let mut headers = http::HeaderMap::new();
        self.propagator
            .inject_context(&cx, &mut HeaderInjector(&mut headers));
        if let Ok(v) = format!("{}:", ticket.sequence).parse() {
            headers.insert(ORIGIN_HEADER, v);
        }

        let answer = self.transport.send(entry, headers, self.timeout).await;
        let ended = Instant::now();
        let (status, outcome) = match answer {
            Answer::Status(code) if code >= 400 => (Some(code), Outcome::HttpError),
            Answer::Status(code) => (Some(code), Outcome::Ok),
            Answer::Timeout => (None, Outcome::Timeout),
            Answer::ConnectError => (None, Outcome::ConnectError),
            Answer::RequestError => (None, Outcome::RequestError),
        };
        if self.telemetry.is_some() {
            let span = cx.span();
            if let Some(code) = status {
                span.set_attribute(KeyValue::new("http.response.status_code", i64::from(code)));
            }
            if outcome.is_error() {
                let kind = match (outcome, status) {
                    (Outcome::HttpError, Some(code)) => code.to_string(),
                    (Outcome::Timeout, _) => "timeout".to_string(),
                    (Outcome::ConnectError, _) => "connection_failed".to_string(),
                    _ => "request_failed".to_string(),
                };
                span.set_attribute(KeyValue::new("error.type", kind.clone()));
                span.set_status(Status::error(kind));
            }
            span.end();
        }

        let clock = self.clock;
        RequestRecord {
            sequence: ticket.sequence,
            trace_id,
            entry: self.labels[entry_index].clone(),
            service: entry.service.clone(),
            route: entry.route.clone(),
            scheduled_unix_nano: clock.unix_nano(ticket.scheduled),
            start_unix_nano: clock.unix_nano(started),
            end_unix_nano: clock.unix_nano(ended),
            latency_ms: ms(ended.saturating_duration_since(ticket.scheduled)),
            service_time_ms: ms(ended.saturating_duration_since(started)),
            status,
            outcome,
            error: outcome.is_error(),
            late_by_ms: ms(started.saturating_duration_since(ticket.scheduled)),
            sampled,
            user: ticket.user,
            baggage: baggage.into_iter().collect(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
