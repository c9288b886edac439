//! Scheduler → request tasks → one collector.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, weighted::WeightedIndex};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracelab_propagation::HeaderInjector;
use tracelab_telemetry::ServiceTelemetry;

use crate::plan::{EntryTarget, LoadPlan};
use crate::record::{Outcome, RequestRecord};
use crate::schedule::ConstantRate;
use crate::stats::{Collector, LoadSummary};

/// Header carrying the request's sequence number to the services (see `tracelab-services`'
/// `origin` module): it seeds every random draw downstream.
const ORIGIN_HEADER: &str = "tracelab-origin";

/// Knobs of a load run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Client timeout for one request.
    pub request_timeout: Duration,
    /// After a stop (end of schedule or Ctrl-C), how long in-flight requests may still take.
    pub drain_timeout: Duration,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Maps an instant of this run to nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: Instant,
    origin_unix_nano: u64,
}

impl Clock {
    fn now() -> Self {
        let origin_unix_nano = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Clock {
            origin: Instant::now(),
            origin_unix_nano,
        }
    }

    fn unix_nano(&self, at: Instant) -> u64 {
        self.origin_unix_nano + at.saturating_duration_since(self.origin).as_nanos() as u64
    }
}

/// What each request task needs.
#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    telemetry: ServiceTelemetry,
    propagator: TextMapCompositePropagator,
    clock: Clock,
    timeout: Duration,
}

/// Sends `plan`'s load. Records go to `records` (one JSON line each, flushed at least every
/// second so an interrupted run keeps what it measured) and into the returned summary.
/// `on_progress` is called about once a second with the summary so far.
///
/// Cancelling `shutdown` stops the schedule; requests in flight are still awaited (at most
/// `options.drain_timeout`) and recorded.
pub async fn run(
    plan: &LoadPlan,
    telemetry: &ServiceTelemetry,
    options: &LoadOptions,
    records: &mut (dyn Write + Send),
    shutdown: CancellationToken,
    on_progress: &mut (dyn FnMut(&LoadSummary) + Send),
) -> std::io::Result<LoadSummary> {
    let schedule = ConstantRate {
        rate: plan.rate,
        duration: plan.duration,
    };
    let shared = Arc::new(Shared {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(std::io::Error::other)?,
        telemetry: telemetry.clone(),
        propagator: TextMapCompositePropagator::new(vec![
            Box::new(tracelab_propagation::W3cTraceContextPropagator::default()),
            Box::new(tracelab_propagation::W3cBaggagePropagator::default()),
        ]),
        clock: Clock::now(),
        timeout: options.request_timeout,
    });
    let (tx, mut rx) = mpsc::unbounded_channel::<RequestRecord>();
    let start = shared.clock.origin;
    let scheduler = tokio::spawn(schedule_requests(
        schedule,
        plan.clone(),
        shared.clone(),
        tx,
        shutdown.clone(),
    ));

    let mut collector = Collector::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let deadline = drain_deadline;
        tokio::select! {
            received = rx.recv() => match received {
                Some(record) => {
                    collector.add(&record);
                    serde_json::to_writer(&mut *records, &record).map_err(std::io::Error::other)?;
                    records.write_all(b"\n")?;
                }
                None => break,
            },
            _ = tick.tick() => {
                records.flush()?;
                on_progress(&collector.summary(plan.rate, start.elapsed(), shutdown.is_cancelled()));
            }
            _ = shutdown.cancelled(), if drain_deadline.is_none() => {
                drain_deadline = Some(Instant::now() + options.drain_timeout);
            }
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await }, if deadline.is_some() => {
                tracing::warn!("stopped waiting for requests still in flight after the drain timeout");
                break;
            }
        }
    }
    scheduler.abort();
    records.flush()?;
    let summary = collector.summary(plan.rate, start.elapsed(), shutdown.is_cancelled());
    on_progress(&summary);
    Ok(summary)
}

/// Emits every scheduled request at its instant. A request task is spawned at the scheduled
/// instant and measures from it, so if this loop falls behind, the delay shows in the latency.
async fn schedule_requests(
    schedule: ConstantRate,
    plan: LoadPlan,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<RequestRecord>,
    shutdown: CancellationToken,
) {
    let weights: Vec<f64> = plan.entries.iter().map(|e| e.weight).collect();
    let Ok(choice) = WeightedIndex::new(&weights) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x6c6f_6164_6765_6e00);
    let entries = Arc::new(plan.entries);
    let start = shared.clock.origin;
    for (sequence, offset) in schedule.offsets().enumerate() {
        let scheduled = start + offset;
        tokio::select! {
            _ = tokio::time::sleep_until(scheduled) => {}
            _ = shutdown.cancelled() => return,
        }
        let entry = choice.sample(&mut rng);
        let shared = shared.clone();
        let entries = entries.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let record = send(&shared, &entries[entry], sequence as u64, scheduled).await;
            let _ = tx.send(record);
        });
    }
}

async fn send(
    shared: &Shared,
    entry: &EntryTarget,
    sequence: u64,
    scheduled: Instant,
) -> RequestRecord {
    let tracer = shared.telemetry.tracer();
    let started = Instant::now();
    let span = tracer
        .span_builder(format!("{} {}", entry.method, entry.route))
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", entry.method.clone()),
            KeyValue::new("url.full", entry.url.clone()),
            KeyValue::new("url.template", entry.route.clone()),
            KeyValue::new("peer.service", entry.service.clone()),
            KeyValue::new("tracelab.sequence", sequence as i64),
        ])
        .start_with_context(tracer, &Context::new());
    let cx = Context::new().with_span(span);
    let trace_id = cx.span().span_context().trace_id().to_string();

    let mut headers = http::HeaderMap::new();
    shared
        .propagator
        .inject_context(&cx, &mut HeaderInjector(&mut headers));
    if let Ok(v) = format!("{sequence}:").parse() {
        headers.insert(ORIGIN_HEADER, v);
    }
    let method =
        reqwest::Method::from_bytes(entry.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let sent = shared
        .client
        .request(method, &entry.url)
        .headers(headers)
        .timeout(shared.timeout)
        .send()
        .await;
    let (status, outcome) = match sent {
        Ok(response) => {
            let status = response.status();
            let _ = response.bytes().await;
            let outcome = if status.is_client_error() || status.is_server_error() {
                Outcome::HttpError
            } else {
                Outcome::Ok
            };
            (Some(status.as_u16()), outcome)
        }
        Err(e) if e.is_timeout() => (None, Outcome::Timeout),
        Err(e) if e.is_connect() => (None, Outcome::ConnectError),
        Err(_) => (None, Outcome::RequestError),
    };
    let ended = Instant::now();
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

    let clock = shared.clock;
    RequestRecord {
        sequence,
        trace_id,
        entry: entry.label(),
        service: entry.service.clone(),
        route: entry.route.clone(),
        scheduled_unix_nano: clock.unix_nano(scheduled),
        start_unix_nano: clock.unix_nano(started),
        end_unix_nano: clock.unix_nano(ended),
        latency_ms: ended.saturating_duration_since(scheduled).as_secs_f64() * 1000.0,
        service_time_ms: ended.saturating_duration_since(started).as_secs_f64() * 1000.0,
        status,
        outcome,
        error: outcome.is_error(),
        baggage: Default::default(),
    }
}
