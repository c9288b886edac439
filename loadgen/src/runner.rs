//! Scheduler (or virtual users) → connection workers → one collector.
//!
//! The open loop releases each request at its scheduled instant to the pool of its target,
//! whatever the target answers; the closed loop's virtual users send their next request after
//! the previous answer and a think time. Either way a worker owning one connection sends the
//! request, measures it from its *scheduled* instant, and hands a compact sample to the one
//! collector, which aggregates and writes `requests.jsonl`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracelab_scenario::{ArrivalModel, LatencyModel, RateProfile, seed};
use tracelab_telemetry::ServiceTelemetry;
use tracelab_timer::{Mode, Overrun, Timer};

use crate::dispatch::Dispatch;
use crate::plan::{Driver, LoadPlan};
use crate::request::Prepared;
use crate::sample::Sample;
use crate::stats::{Collector, LoadSummary, ProgressSnapshot};
#[cfg(doc)]
use crate::transport::HttpTransport;
use crate::transport::Transport;

/// Knobs of a load run.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Client timeout for one request.
    pub request_timeout: Duration,
    /// After a stop (end of schedule or Ctrl-C), how long in-flight requests may still take.
    pub drain_timeout: Duration,
    /// The most connections the open loop may open when the plan sets no limit: what the
    /// process's file-descriptor budget allows (see `tracelab`'s `fdlimit`).
    pub connection_budget: usize,
    /// How the scheduler and think times wait: precisely, or on tokio's clock only (for tests
    /// under `tokio::time::pause()`).
    pub timer: Mode,
    /// Told the instant the schedule counts from, once it is fixed (after the timer's
    /// precision is measured): what an incident timeline must count from too, so that an
    /// incident `at: 3s` starts with the request scheduled at 3 s.
    pub started: Option<watch::Sender<Option<Instant>>>,
    /// Asked before each request; while it says so, the driver holds further requests back.
    pub backpressure: Option<Backpressure>,
}

/// Whether whatever records the run's requests has fallen behind, so that the driver should
/// hold further requests back: in the lab, the span pipeline (see `tracelab`'s session). A
/// held request is late, not lost: its latency still counts from its scheduled instant, and
/// the summary says how long the driver was held ([`HoldSummary`]).
#[derive(Clone)]
pub struct Backpressure(Arc<dyn Fn() -> bool + Send + Sync>);

impl Backpressure {
    /// Holds the driver while `behind` returns true. It is asked before every request, so it
    /// should be cheap (a few atomic loads).
    pub fn new(behind: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Backpressure(Arc::new(behind))
    }

    /// Whether to hold back now.
    pub fn is_behind(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for Backpressure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Backpressure")
    }
}

/// Dropped requests the open loop gathers before it hands them to the collector, when it has
/// no wait to do that in.
const DROPS_AT_ONCE: usize = 1024;

/// How often a held driver asks again whether it may go on.
const HOLD_POLL: Duration = Duration::from_millis(5);

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            connection_budget: 10_000,
            timer: Mode::Precise,
            started: None,
            backpressure: None,
        }
    }
}

/// Sends `plan`'s load through `transport` ([`HttpTransport`] for HTTP). Each request is the
/// root of a trace when `telemetry` is given (a CLIENT span in the `loadgen` service); with
/// `None`, no span is made (the maximum-throughput measure). Records go to `records` (one JSON line each,
/// flushed at least every second so an interrupted run keeps what it measured) and into the
/// returned summary. `on_progress` is called about once a second. A record that cannot be
/// written (a full disk) is counted in the summary, never a reason to stop sending.
///
/// Cancelling `shutdown` stops the schedule; requests already due are still sent and awaited
/// (at most `options.drain_timeout`) and recorded.
pub async fn run<T: Transport>(
    transport: Arc<T>,
    plan: &LoadPlan,
    telemetry: Option<&ServiceTelemetry>,
    options: &LoadOptions,
    records: &mut (dyn Write + Send),
    shutdown: CancellationToken,
    on_progress: &mut (dyn FnMut(&ProgressSnapshot) + Send),
) -> std::io::Result<LoadSummary> {
    plan.validate().map_err(std::io::Error::other)?;
    let timer = Timer::new(options.timer);
    // How late a precise wait ends on this machine now: a request that starts later than that
    // waited for something (a connection, a busy client), anything less is timer noise.
    let precision = match options.timer {
        Mode::Precise => tracelab_timer::measure_precision(200).await,
        Mode::Tokio => Overrun::default(),
    };
    let late_threshold = late_threshold(options.timer, &precision);
    let prepared = Arc::new(
        Prepared::new(plan, telemetry.cloned(), options.request_timeout)
            .map_err(std::io::Error::other)?,
    );
    let (samples, mut incoming) = mpsc::channel::<Vec<Sample>>(1024);
    let cap = plan.connections.unwrap_or(options.connection_budget);
    let dispatch = Arc::new(Dispatch::new(
        prepared.clone(),
        transport,
        cap,
        plan.max_in_flight,
        samples,
    ));
    let clock = prepared.clock;
    let start = clock.origin;
    if let Some(started) = &options.started {
        started.send_replace(Some(start));
    }
    let drive = Drive {
        duration: plan.duration,
        seed: plan.seed,
        dispatch: dispatch.clone(),
        timer,
        shutdown: Shutdown::new(shutdown.clone()),
        backpressure: options.backpressure.clone(),
    };
    let (driver, target): (tokio::task::JoinHandle<()>, Option<RateProfile>) = match &plan.driver {
        Driver::Open { arrival, rate } => (
            tokio::spawn(open_loop(drive, arrival.clone(), *rate)),
            Some(arrival.profile(*rate, plan.duration)),
        ),
        Driver::Closed { users, think } => (
            tokio::spawn(closed_loop(drive, *users, think.clone())),
            None,
        ),
    };
    // Only the workers and the driver hold the dispatch from here: the samples channel closes
    // when the last of them is done.
    let facts = dispatch.facts();
    drop(dispatch);

    let mut collector = Collector::new(
        plan.driver.describe(),
        clock.origin_unix_nano,
        target,
        plan.mean_rate(),
        late_threshold,
        prepared.clone(),
    );
    let mut lines: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut write_failures: u64 = 0;
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut drain_deadline: Option<Instant> = None;
    let mut unfinished = 0;
    loop {
        let deadline = drain_deadline;
        tokio::select! {
            received = incoming.recv() => match received {
                Some(batch) => {
                    for sample in &batch {
                        collector.add(sample);
                        if sample.write_line(&prepared, &mut lines).is_err() {
                            write_failures += 1;
                        }
                    }
                    if records.write_all(&lines).is_err() {
                        write_failures += batch.len() as u64;
                    }
                    lines.clear();
                }
                None => break,
            },
            _ = tick.tick() => {
                if records.flush().is_err() {
                    write_failures += 1;
                }
                collector.tick(start.elapsed());
                on_progress(&collector.snapshot(start.elapsed()));
            }
            _ = shutdown.cancelled(), if drain_deadline.is_none() => {
                drain_deadline = Some(Instant::now() + options.drain_timeout);
            }
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)).await }, if deadline.is_some() => {
                unfinished = facts.in_flight();
                tracing::warn!(unfinished, "stopped waiting for requests still in flight after the drain timeout");
                break;
            }
        }
    }
    driver.abort();
    if records.flush().is_err() {
        write_failures += 1;
    }
    if write_failures > 0 {
        tracing::warn!(
            failures = write_failures,
            "some request records could not be written to requests.jsonl; the summary still counts them"
        );
    }
    let elapsed = start.elapsed();
    let mut summary = collector.summary(elapsed, shutdown.is_cancelled());
    summary.timer_precision_us = precision.p99_us;
    summary.unfinished = unfinished as u64;
    summary.record_write_failures = write_failures;
    summary.unrecorded = facts.unrecorded();
    summary.connections.peak = facts.peak_connections() as u64;
    let (holds, held) = facts.holds();
    summary.held.count = holds;
    summary.held.seconds = held.as_secs_f64();
    summary.connections.limit = match &plan.driver {
        Driver::Open { .. } => cap as u64,
        Driver::Closed { users, .. } => u64::from(*users),
    };
    summary.finish_connection_warning();
    summary.finish_hold_warning();
    on_progress(&collector.snapshot(elapsed));
    Ok(summary)
}

/// What counts as a late start: beyond the 99.9th percentile of the timer's measured lateness
/// (at least 50 µs, the hand-over from the scheduler to a worker); on tokio's clock, its
/// millisecond tick.
fn late_threshold(mode: Mode, precision: &Overrun) -> Duration {
    match mode {
        Mode::Tokio => Duration::from_millis(1),
        Mode::Precise => {
            let us = (precision.p99_us * 2.0).max(50.0) + 50.0;
            Duration::from_secs_f64(us / 1e6)
        }
    }
}

/// What a driver (open or closed loop) works with: how long it sends, the seed of its draws,
/// where its requests go, its timer, and the signal to stop early.
struct Drive<T: Transport> {
    duration: Duration,
    seed: u64,
    dispatch: Arc<Dispatch<T>>,
    timer: Timer,
    shutdown: Shutdown,
    backpressure: Option<Backpressure>,
}

/// The run's stop signal as the drivers ask it before every request: one atomic load, where
/// `CancellationToken::is_cancelled` takes a lock (0.5 % of the load generator's CPU at its
/// maximum rate). A watcher task sets the flag when the token is cancelled, so a driver may
/// start a request or two more in the meantime; waits select on the token itself.
#[derive(Debug)]
struct Shutdown {
    token: CancellationToken,
    stopped: Arc<std::sync::atomic::AtomicBool>,
    watcher: tokio::task::AbortHandle,
}

impl Shutdown {
    fn new(token: CancellationToken) -> Self {
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(token.is_cancelled()));
        let watcher = tokio::spawn({
            let (token, stopped) = (token.clone(), stopped.clone());
            async move {
                token.cancelled().await;
                stopped.store(true, Ordering::Relaxed);
            }
        })
        .abort_handle();
        Shutdown {
            token,
            stopped,
            watcher,
        }
    }

    fn is_cancelled(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    async fn cancelled(&self) {
        self.token.cancelled().await;
    }
}

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl<T: Transport> Drive<T> {
    /// Waits while the run's backpressure says so, until `end` at the latest, and counts the
    /// hold.
    async fn hold(&self, end: Instant) {
        let Some(backpressure) = &self.backpressure else {
            return;
        };
        // Past the schedule's end the rest goes out at once: a pipeline that has not caught up
        // by then would hold the run without end. Asked first, the backpressure (cached) spares
        // the common request a read of the clock.
        if !backpressure.is_behind() || Instant::now() >= end {
            return;
        }
        let facts = self.dispatch.facts();
        facts.hold_begins(Instant::now());
        while backpressure.is_behind() && Instant::now() < end {
            tokio::select! {
                _ = tokio::time::sleep(HOLD_POLL) => {}
                _ = self.shutdown.cancelled() => break,
            }
        }
        facts.hold_ends(Instant::now());
    }
}

/// Releases every scheduled request at its instant. If this loop falls behind, the delay shows
/// in the latency of the requests it releases late, which is measured from their schedule.
async fn open_loop<T: Transport>(drive: Drive<T>, arrival: ArrivalModel, rate: f64) {
    let (dispatch, timer, shutdown) = (&drive.dispatch, &drive.timer, &drive.shutdown);
    let start = dispatch.prepared.clock.origin;
    let end = start + drive.duration;
    let mut drops = Vec::new();
    let schedule = crate::schedule::schedule(&arrival, rate, drive.duration, drive.seed);
    for (sequence, offset) in schedule.enumerate() {
        let scheduled = start + offset;
        // A request already due is released without a timer: at high rates the scheduler is
        // often behind by a few microseconds, and a wait per request would cost more.
        if scheduled > Instant::now() {
            dispatch.offer_drops(&mut drops);
            tokio::select! {
                _ = timer.sleep_until(scheduled) => {}
                _ = shutdown.cancelled() => break,
            }
        } else if shutdown.is_cancelled() {
            break;
        }
        drive.hold(end).await;
        if shutdown.is_cancelled() {
            break;
        }
        dispatch.release(sequence as u64, scheduled, &mut drops);
        // A long run of overdue requests (after a stall or a hold) never waits above, where
        // drops are handed over: hand them over as they gather instead.
        if drops.len() >= DROPS_AT_ONCE {
            dispatch.offer_drops(&mut drops);
        }
    }
    dispatch.close();
    dispatch.finish_drops(drops).await;
}

/// Runs `users` virtual users until the duration is over: each sends, waits for the answer,
/// thinks, and sends again, over connections of its own.
async fn closed_loop<T: Transport>(drive: Drive<T>, users: u32, think: LatencyModel) {
    let drive = Arc::new(drive);
    let Drive {
        duration,
        seed,
        dispatch,
        ..
    } = &*drive;
    let end = dispatch.prepared.clock.origin + *duration;
    let seed = *seed;
    let sequence = Arc::new(AtomicU64::new(0));
    dispatch.count_users(users as usize);
    let mut tasks = tokio::task::JoinSet::new();
    for user in 0..users {
        let drive = drive.clone();
        let think = think.clone();
        let sequence = sequence.clone();
        tasks.spawn(async move {
            let (dispatch, timer, shutdown) = (&drive.dispatch, &drive.timer, &drive.shutdown);
            let mut rng = seed::rng(seed, &[b"loadgen/think", &user.to_le_bytes()]);
            let mut state = dispatch.user_state();
            loop {
                drive.hold(end).await;
                // One reading of the clock a request: it checks the end, and the request is
                // due (and starts) at it.
                let now = Instant::now();
                if now >= end || shutdown.is_cancelled() {
                    break;
                }
                let next = sequence.fetch_add(1, Ordering::Relaxed);
                dispatch.send_as_user(user, next, now, &mut state).await;
                let pause = think.sample(&mut rng);
                if !pause.is_zero() {
                    state.batch.flush().await;
                    tokio::select! {
                        _ = timer.sleep(pause) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
            state.batch.flush().await;
        });
    }
    drop(drive);
    while tasks.join_next().await.is_some() {}
}
