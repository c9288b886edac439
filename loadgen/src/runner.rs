//! Scheduler (or virtual users) → request tasks → one collector.
//!
//! Both drivers hand [`Ticket`]s to the same dispatch: the open loop at the instants of its
//! arrival schedule, whatever the target answers; the closed loop from each virtual user
//! after its previous answer and a think time. Everything downstream — the in-flight cap,
//! the connection limit, the span, the record, the collector — is shared.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracelab_scenario::{ArrivalModel, LatencyModel, RateProfile};
use tracelab_telemetry::ServiceTelemetry;

use crate::plan::{Driver, LoadPlan};
use crate::record::RequestRecord;
use crate::request::{Shared, Ticket};
use crate::stats::{Collector, LoadSummary, ProgressSnapshot};
use crate::transport::{HttpTransport, Transport};

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

/// Sends `plan`'s load over HTTP. Each request is the root of a trace when `telemetry` is
/// given (a CLIENT span in the `loadgen` service); with `None`, no span is made (the
/// maximum-throughput measure). See [`run_with`] for the rest.
pub async fn run(
    plan: &LoadPlan,
    telemetry: Option<&ServiceTelemetry>,
    options: &LoadOptions,
    records: &mut (dyn Write + Send),
    shutdown: CancellationToken,
    on_progress: &mut (dyn FnMut(&ProgressSnapshot) + Send),
) -> std::io::Result<LoadSummary> {
    let transport = Arc::new(HttpTransport::new(plan.effective_connections())?);
    run_with(
        transport,
        plan,
        telemetry,
        options,
        records,
        shutdown,
        on_progress,
    )
    .await
}

/// Sends `plan`'s load through `transport`. Records go to `records` (one JSON line each,
/// flushed at least every second so an interrupted run keeps what it measured) and into the
/// returned summary. `on_progress` is called about once a second.
///
/// Cancelling `shutdown` stops the schedule; requests in flight are still awaited (at most
/// `options.drain_timeout`) and recorded.
pub async fn run_with<T: Transport>(
    transport: Arc<T>,
    plan: &LoadPlan,
    telemetry: Option<&ServiceTelemetry>,
    options: &LoadOptions,
    records: &mut (dyn Write + Send),
    shutdown: CancellationToken,
    on_progress: &mut (dyn FnMut(&ProgressSnapshot) + Send),
) -> std::io::Result<LoadSummary> {
    plan.validate().map_err(std::io::Error::other)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<RequestRecord>();
    let shared = Arc::new(
        Shared::new(
            plan,
            transport,
            telemetry.cloned(),
            options.request_timeout,
            tx,
        )
        .map_err(std::io::Error::other)?,
    );
    let clock = shared.clock;
    let start = clock.origin;
    let (driver, target): (tokio::task::JoinHandle<()>, Option<RateProfile>) = match &plan.driver {
        Driver::Open { arrival, rate } => (
            tokio::spawn(open_loop(
                arrival.clone(),
                *rate,
                plan.duration,
                plan.seed,
                shared,
                shutdown.clone(),
            )),
            Some(arrival.profile(*rate, plan.duration)),
        ),
        Driver::Closed { users, think } => (
            tokio::spawn(closed_loop(
                *users,
                think.clone(),
                plan.duration,
                plan.seed,
                shared,
                shutdown.clone(),
            )),
            None,
        ),
    };

    let mut collector = Collector::new(
        plan.driver.describe(),
        clock.origin_unix_nano,
        target,
        plan.mean_rate(),
    );
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
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
                collector.tick(start.elapsed());
                on_progress(&collector.snapshot(start.elapsed()));
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
    driver.abort();
    records.flush()?;
    let elapsed = start.elapsed();
    let summary = collector.summary(elapsed, shutdown.is_cancelled());
    on_progress(&collector.snapshot(elapsed));
    Ok(summary)
}

/// Emits every scheduled request at its instant. A request task is spawned at the scheduled
/// instant and measures from it, so if this loop falls behind, the delay shows in the latency.
async fn open_loop<T: Transport>(
    arrival: ArrivalModel,
    rate: f64,
    duration: Duration,
    seed: u64,
    shared: Arc<Shared<T>>,
    shutdown: CancellationToken,
) {
    let start = shared.clock.origin;
    let schedule = crate::schedule::schedule(&arrival, rate, duration, seed);
    for (sequence, offset) in schedule.enumerate() {
        let scheduled = start + offset;
        // A request already due is dispatched without a timer: at high rates the scheduler
        // is often behind by a few microseconds, and a timer per request would cost more.
        if scheduled > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(scheduled) => {}
                _ = shutdown.cancelled() => return,
            }
        } else if shutdown.is_cancelled() {
            return;
        }
        let ticket = Ticket {
            sequence: sequence as u64,
            scheduled,
            user: None,
        };
        shared.dispatch(ticket, true).await;
    }
}

/// Runs `users` virtual users until the duration is over: each sends, waits for the answer,
/// thinks, and sends again.
async fn closed_loop<T: Transport>(
    users: u32,
    think: LatencyModel,
    duration: Duration,
    seed: u64,
    shared: Arc<Shared<T>>,
    shutdown: CancellationToken,
) {
    let end = shared.clock.origin + duration;
    let sequence = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for user in 0..users {
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let think = think.clone();
        let sequence = sequence.clone();
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x7573_6572_0000_0000 ^ u64::from(user));
            loop {
                let scheduled = Instant::now();
                if scheduled >= end || shutdown.is_cancelled() {
                    return;
                }
                let ticket = Ticket {
                    sequence: sequence.fetch_add(1, Ordering::Relaxed),
                    scheduled,
                    user: Some(user),
                };
                shared.dispatch(ticket, false).await;
                let pause = think.sample(&mut rng);
                if !pause.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        });
    }
    drop(shared);
    while tasks.join_next().await.is_some() {}
}
