//! Shared resources of one service: its worker pool (a concurrency limit that a `saturate`
//! fault can lower while requests are running) and its named locks (HotROD's mutex).

use crate::lock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A concurrency limit whose size can change per request. A tokio `Semaphore` has a fixed
/// number of permits; a `saturate` fault must lower the limit for the requests it hits
/// without losing track of the ones already running, so the pool counts what is in flight
/// and each request says which limit it is held to.
#[derive(Debug, Default)]
pub struct WorkerPool {
    in_flight: Mutex<u32>,
    /// Wakes the waiting requests when one finishes; without it they would never learn that
    /// a worker became free.
    freed: Notify,
}

/// A worker of the pool; dropping it frees the worker.
#[derive(Debug)]
pub struct Worker<'p> {
    pool: &'p WorkerPool,
}

impl WorkerPool {
    /// An empty pool.
    pub fn new() -> Self {
        WorkerPool::default()
    }

    /// Waits until fewer than `limit` requests are in flight, then counts this one in.
    pub async fn acquire(&self, limit: u32) -> Worker<'_> {
        let limit = limit.max(1);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the check and the wait
            // still wakes this request.
            freed.as_mut().enable();
            {
                let mut in_flight = lock(&self.in_flight);
                if *in_flight < limit {
                    *in_flight += 1;
                    return Worker { pool: self };
                }
            }
            freed.await;
        }
    }

    /// How many requests hold a worker.
    pub fn in_flight(&self) -> u32 {
        *lock(&self.in_flight)
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.pool.in_flight);
        *in_flight = in_flight.saturating_sub(1);
        drop(in_flight);
        self.pool.freed.notify_waiters();
    }
}

/// The named locks of a service, created on first use.
#[derive(Debug, Default)]
pub struct Locks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Locks {
    /// The lock called `name`.
    pub fn get(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.locks)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn limit_holds_and_release_wakes() {
        let pool = Arc::new(WorkerPool::new());
        let first = pool.acquire(1).await;
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let _w = pool.acquire(1).await;
                tokio::time::Instant::now()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.in_flight(), 1);
        let released = tokio::time::Instant::now();
        drop(first);
        let got = waiter.await.unwrap();
        assert!(got >= released);
        assert_eq!(pool.in_flight(), 0);
    }
}
