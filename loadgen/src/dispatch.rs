//! From released tickets to connections, and from finished requests to the collector.
//!
//! There is one pool per target (`host:port`): a queue of released tickets and the workers
//! that serve it, each owning one connection. A pool grows a worker whenever a ticket arrives
//! and no worker is idle, so the open loop opens as many connections as its schedule needs, up
//! to the run's connection cap. At the cap a ticket waits in the queue for the next free
//! connection; it is marked, so the summary can say how often the cap bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::request::{Prepared, Ticket};
use crate::sample::Sample;
use crate::transport::Transport;

/// Samples are handed to the collector in batches of this many (or fewer, when a worker is
/// about to wait), so the collector's channel is touched once per batch, not per request.
const BATCH: usize = 64;

/// A partly filled batch is handed over after this long at the latest, so the progress line
/// and an interrupted run stay current at low rates.
const BATCH_AGE: Duration = Duration::from_millis(50);

/// The scheduler keeps at most this many dropped samples while the collector's channel is
/// full; beyond it a drop is only counted (`LoadSummary::unrecorded`), never waited for.
const MAX_PENDING_DROPS: usize = 65_536;

/// One target's queue and workers.
#[derive(Debug)]
struct Pool {
    queue: async_channel::Sender<Ticket>,
    tickets: async_channel::Receiver<Ticket>,
    /// Workers waiting for a ticket. A release that finds none adds a worker (below the cap).
    idle: AtomicUsize,
}

/// Counters of a dispatch, kept by the runner after the workers are gone.
#[derive(Debug, Default)]
pub(crate) struct DispatchFacts {
    /// Connections (workers) open now, and the most there ever were.
    workers: AtomicUsize,
    peak_workers: AtomicUsize,
    /// Requests due and not finished (queued or being sent), against `max_in_flight`: beyond
    /// it a request is dropped rather than queued without bound.
    in_flight: AtomicUsize,
    /// Drops that could not even be kept for the collector (see [`MAX_PENDING_DROPS`]).
    unrecorded: AtomicU64,
    /// When the driver held its requests back for the run's [`crate::Backpressure`].
    holds: std::sync::Mutex<Holds>,
}

/// The driver's holds: a closed loop's users hold at once, and their overlapping holds count
/// as one, as long as the longest.
#[derive(Debug, Default)]
struct Holds {
    /// Callers holding now, since when.
    holding: usize,
    since: Option<Instant>,
    /// Holds ended so far, and their total length.
    count: u64,
    total: std::time::Duration,
}

impl DispatchFacts {
    /// The most connections that were open at once.
    pub(crate) fn peak_connections(&self) -> usize {
        self.peak_workers.load(Ordering::Relaxed)
    }

    /// Requests queued or being sent now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Drops only counted, not recorded.
    pub(crate) fn unrecorded(&self) -> u64 {
        self.unrecorded.load(Ordering::Relaxed)
    }

    fn lock_holds(&self) -> std::sync::MutexGuard<'_, Holds> {
        // Counts only: a panic elsewhere cannot leave them in a state worth refusing.
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A caller starts holding at `now`.
    pub(crate) fn hold_begins(&self, now: Instant) {
        let mut holds = self.lock_holds();
        if holds.holding == 0 {
            holds.since = Some(now);
        }
        holds.holding += 1;
    }

    /// A caller stops holding at `now`; the hold ends with the last one.
    pub(crate) fn hold_ends(&self, now: Instant) {
        let mut holds = self.lock_holds();
        holds.holding = holds.holding.saturating_sub(1);
        if holds.holding == 0
            && let Some(since) = holds.since.take()
        {
            holds.count += 1;
            holds.total += now.saturating_duration_since(since);
        }
    }

    /// The driver's holds so far, and their total length.
    pub(crate) fn holds(&self) -> (u64, std::time::Duration) {
        let holds = self.lock_holds();
        (holds.count, holds.total)
    }
}

/// What the driver, the workers and the runner share.
#[derive(Debug)]
pub(crate) struct Dispatch<T> {
    pub(crate) prepared: Arc<Prepared>,
    pub(crate) transport: Arc<T>,
    pools: Vec<Pool>,
    /// Most connections open at once over all targets.
    cap: usize,
    max_in_flight: usize,
    /// Counters the runner reads after the dispatch is gone.
    facts: Arc<DispatchFacts>,
    /// Batches of samples on their way to the collector. Bounded: a collector that falls
    /// behind (a slow disk) makes workers wait before their next request, which shows as late
    /// starts, instead of memory growing without limit. The channel closes when the last
    /// holder of `Dispatch` is gone, which is how the collector knows every request is in.
    samples: mpsc::Sender<Vec<Sample>>,
}

impl<T: Transport> Dispatch<T> {
    pub(crate) fn new(
        prepared: Arc<Prepared>,
        transport: Arc<T>,
        cap: usize,
        max_in_flight: usize,
        samples: mpsc::Sender<Vec<Sample>>,
    ) -> Self {
        let pools = prepared
            .targets
            .iter()
            .map(|_| {
                let (queue, tickets) = async_channel::unbounded();
                Pool {
                    queue,
                    tickets,
                    idle: AtomicUsize::new(0),
                }
            })
            .collect();
        Dispatch {
            prepared,
            transport,
            pools,
            cap: cap.max(1),
            max_in_flight,
            facts: Arc::default(),
            samples,
        }
    }

    /// The counters, to read after the run.
    pub(crate) fn facts(&self) -> Arc<DispatchFacts> {
        self.facts.clone()
    }

    /// Releases the open-loop request `sequence`, due at `scheduled`: to its target's queue,
    /// or, over the in-flight cap, to `drops`.
    pub(crate) fn release(
        self: &Arc<Self>,
        sequence: u64,
        scheduled: Instant,
        drops: &mut Vec<Sample>,
    ) {
        let mut ticket = self
            .prepared
            .ticket(sequence, scheduled, Instant::now(), None);
        if self.facts.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.facts.in_flight.fetch_sub(1, Ordering::AcqRel);
            if drops.len() < MAX_PENDING_DROPS {
                drops.push(self.prepared.dropped(ticket));
            } else {
                self.facts.unrecorded.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let target = self.prepared.target_of(ticket.entry, ticket.instance);
        let pool = &self.pools[target];
        if pool.idle.load(Ordering::Acquire) == 0 {
            if self.open_worker() {
                let dispatch = self.clone();
                tokio::spawn(async move { dispatch.pool_worker(target).await });
            } else {
                ticket.queued_at_cap = true;
            }
        }
        // Unbounded, and open until `close`: the in-flight cap bounds what it holds.
        let _ = pool.queue.try_send(ticket);
    }

    /// Hands pending drops to the collector without waiting; what does not fit stays pending.
    pub(crate) fn offer_drops(&self, drops: &mut Vec<Sample>) {
        if drops.is_empty() {
            return;
        }
        match self.samples.try_send(std::mem::take(drops)) {
            Ok(()) => {}
            Err(
                mpsc::error::TrySendError::Full(back) | mpsc::error::TrySendError::Closed(back),
            ) => {
                *drops = back;
            }
        }
    }

    /// Hands the last drops over, waiting for room: the schedule is over.
    pub(crate) async fn finish_drops(&self, drops: Vec<Sample>) {
        if !drops.is_empty() {
            let _ = self.samples.send(drops).await;
        }
    }

    /// No more tickets: workers finish what is queued and stop.
    pub(crate) fn close(&self) {
        for pool in &self.pools {
            pool.queue.close();
        }
    }

    /// Counts a new worker if the cap allows it.
    fn open_worker(&self) -> bool {
        let before = self.facts.workers.fetch_add(1, Ordering::AcqRel);
        if before >= self.cap {
            self.facts.workers.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.facts
            .peak_workers
            .fetch_max(before + 1, Ordering::Relaxed);
        true
    }

    /// One connection of a target's pool: takes the queue's tickets one at a time until the
    /// queue is closed and empty.
    async fn pool_worker(self: Arc<Self>, target: usize) {
        let pool = &self.pools[target];
        let mut connection = None;
        let mut head = Vec::with_capacity(HEAD);
        let mut batch = Batch::new(self.samples.clone());
        loop {
            let ticket = match pool.tickets.try_recv() {
                Ok(ticket) => ticket,
                Err(async_channel::TryRecvError::Closed) => break,
                Err(async_channel::TryRecvError::Empty) => {
                    // About to wait: hand over what this worker measured first.
                    batch.flush().await;
                    pool.idle.fetch_add(1, Ordering::AcqRel);
                    let next = pool.tickets.recv().await;
                    pool.idle.fetch_sub(1, Ordering::AcqRel);
                    match next {
                        Ok(ticket) => ticket,
                        Err(_) => break,
                    }
                }
            };
            let (sample, ended) = self
                .prepared
                .execute(
                    &self.transport,
                    ticket,
                    Instant::now(),
                    &mut connection,
                    &mut head,
                )
                .await;
            self.facts.in_flight.fetch_sub(1, Ordering::AcqRel);
            batch.push(sample, ended).await;
        }
        batch.flush().await;
        self.facts.workers.fetch_sub(1, Ordering::AcqRel);
    }

    /// One closed-loop request of `user`, due `now` (the caller's reading of the clock), over
    /// the user's own connections.
    pub(crate) async fn send_as_user(
        &self,
        user: u32,
        sequence: u64,
        now: Instant,
        state: &mut UserState<T::Connection>,
    ) {
        let ticket = self.prepared.ticket(sequence, now, now, Some(user));
        let target = self.prepared.target_of(ticket.entry, ticket.instance);
        self.facts.in_flight.fetch_add(1, Ordering::AcqRel);
        let (sample, ended) = self
            .prepared
            .execute(
                &self.transport,
                ticket,
                now,
                &mut state.connections[target],
                &mut state.head,
            )
            .await;
        self.facts.in_flight.fetch_sub(1, Ordering::AcqRel);
        state.batch.push(sample, ended).await;
    }

    /// What one closed-loop user keeps between its requests.
    pub(crate) fn user_state(&self) -> UserState<T::Connection> {
        UserState {
            connections: (0..self.prepared.targets.len()).map(|_| None).collect(),
            head: Vec::with_capacity(HEAD),
            batch: Batch::new(self.samples.clone()),
        }
    }

    /// Counts the closed loop's users as connections.
    pub(crate) fn count_users(&self, users: usize) {
        self.facts.workers.store(users, Ordering::Relaxed);
        self.facts.peak_workers.store(users, Ordering::Relaxed);
    }
}

/// Room for a request's header lines, enough for most without growing.
const HEAD: usize = 512;

/// A closed-loop user's own connections (one per target it has sent to), header buffer and
/// batch.
#[derive(Debug)]
pub(crate) struct UserState<C> {
    connections: Vec<Option<C>>,
    head: Vec<u8>,
    pub(crate) batch: Batch,
}

/// Samples of one worker on their way to the collector.
#[derive(Debug)]
pub(crate) struct Batch {
    samples: Vec<Sample>,
    since: Option<Instant>,
    to: mpsc::Sender<Vec<Sample>>,
}

impl Batch {
    fn new(to: mpsc::Sender<Vec<Sample>>) -> Self {
        Batch {
            samples: Vec::with_capacity(BATCH),
            since: None,
            to,
        }
    }

    /// Adds a sample of a request that ended at `now`.
    pub(crate) async fn push(&mut self, sample: Sample, now: Instant) {
        let since = *self.since.get_or_insert(now);
        self.samples.push(sample);
        if self.samples.len() >= BATCH || now.saturating_duration_since(since) >= BATCH_AGE {
            self.flush().await;
        }
    }

    pub(crate) async fn flush(&mut self) {
        self.since = None;
        if self.samples.is_empty() {
            return;
        }
        let full = std::mem::replace(&mut self.samples, Vec::with_capacity(BATCH));
        // Closed only when the collector stopped waiting (drain timeout): nothing to do then.
        let _ = self.to.send(full).await;
    }
}
