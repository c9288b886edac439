//! The receiver's memory budget: the bytes of export bodies being decoded at once.
//!
//! A decoded export request takes several times its encoded size (measured: 90–150 MB for one
//! 16 MiB body), so sixteen large bodies at once cost gigabytes. Each request reserves its
//! encoded size (compressed bodies four times theirs) before its body is read; when the budget
//! is spent the request is refused at once with the status OTLP exporters retry — HTTP 429 with
//! `Retry-After`, gRPC `RESOURCE_EXHAUSTED` with `RetryInfo` — instead of reading it, so a
//! burst is slowed down, not dropped, and memory stays bounded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default budget: 16 MiB of encoded bodies, one body of the largest size accepted or
/// about 150 MB decoded. Ordinary batches are a few hundred kilobytes, so dozens fit at once.
pub const DEFAULT_IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;

/// How long a refused exporter is asked to wait before it tries again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The budget, shared by both protocols. Counted in kibibytes, the unit of its permits.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    permits: Arc<Semaphore>,
    total_kib: u32,
}

/// A reservation, returned to the budget when dropped (after the request is stored).
#[derive(Debug)]
pub(crate) struct Reserved {
    _permit: OwnedSemaphorePermit,
}

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        let total_kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        Budget {
            permits: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Reserves room for a body of `bytes` (a body larger than the whole budget takes all of
    /// it), or `None` when the budget is spent.
    pub(crate) fn try_reserve(&self, bytes: usize) -> Option<Reserved> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        self.permits
            .clone()
            .try_acquire_many_owned(kib)
            .ok()
            .map(|permit| Reserved { _permit: permit })
    }
}

/// What to reserve for a body of `declared` bytes on the wire (`None`: not known before it is
/// read), at most `limit`.
pub(crate) fn reservation(declared: Option<u64>, compressed: bool, limit: usize) -> usize {
    let on_wire = declared.map_or(limit as u64, |n| {
        if compressed { n.saturating_mul(4) } else { n }
    });
    usize::try_from(on_wire).unwrap_or(limit).min(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_come_back_when_dropped() {
        let budget = Budget::new(10 * 1024);
        let first = budget.try_reserve(6 * 1024).expect("room");
        assert!(budget.try_reserve(6 * 1024).is_none());
        drop(first);
        assert!(budget.try_reserve(6 * 1024).is_some());
        // A body larger than the budget takes all of it, alone.
        assert!(budget.try_reserve(1 << 30).is_some());
    }

    #[test]
    fn compressed_and_unknown_sizes_reserve_more() {
        assert_eq!(reservation(Some(1000), false, 1 << 20), 1000);
        assert_eq!(reservation(Some(1000), true, 1 << 20), 4000);
        assert_eq!(reservation(None, false, 1 << 20), 1 << 20);
        assert_eq!(reservation(Some(1 << 30), true, 1 << 20), 1 << 20);
    }
}
