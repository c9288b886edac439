//! The per-second timeline: achieved against target rate, errors, drops and latency of
//! every second of the run.
//!
//! Only the seconds still receiving records keep a histogram; a closed second keeps its
//! percentiles only, so a long run costs a few numbers per second, not a histogram each.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{ResponseLatency, latency_histogram, micros_of_ns};
use crate::record::Outcome;
use crate::sample::Sample;
use tracelab_scenario::RateProfile;

/// One second of the run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct SecondStats {
    /// Seconds since the start of the run.
    pub second: u64,
    /// Requests the arrival model expected to be due in this second (open loop only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Requests sent that ended in this second: the achieved rate.
    pub completed: u64,
    /// Of which did not end `ok`.
    pub errors: u64,
    /// Requests dropped by the client in this second.
    pub dropped: u64,
    /// Requests that ended in this second and had started late.
    pub late: u64,
    /// Median latency of the requests that ended in this second, ms.
    pub p50_ms: f64,
    /// Their 99th percentile, ms.
    pub p99_ms: f64,
    /// Their largest latency, ms.
    pub max_ms: f64,
}

#[derive(Debug)]
struct OpenSecond {
    row: SecondStats,
    latency_us: Histogram<u64>,
}

#[derive(Debug)]
pub(super) struct Timeline {
    target: Option<RateProfile>,
    closed: Vec<SecondStats>,
    open: BTreeMap<u64, OpenSecond>,
}

impl Timeline {
    pub(super) fn new(target: Option<RateProfile>) -> Self {
        Timeline {
            target,
            closed: Vec::new(),
            open: BTreeMap::new(),
        }
    }

    fn empty_row(&self, second: u64) -> SecondStats {
        SecondStats {
            second,
            target: self
                .target
                .as_ref()
                .map(|p| p.expected_between(second as f64, (second + 1) as f64)),
            ..SecondStats::default()
        }
    }

    pub(super) fn add(&mut self, second: u64, r: &Sample, late: bool) {
        let count = |row: &mut SecondStats| {
            if r.outcome == Outcome::Dropped {
                row.dropped += 1;
            } else {
                row.completed += 1;
                row.errors += u64::from(r.outcome.is_error());
            }
            row.late += u64::from(late);
        };
        if let Some(row) = self.closed.get_mut(second as usize) {
            // A straggler for a second already closed: its counts still matter; its latency
            // can no longer change that second's percentiles.
            count(row);
            return;
        }
        let row = self.empty_row(second);
        let open = self.open.entry(second).or_insert_with(|| OpenSecond {
            row,
            latency_us: latency_histogram(),
        });
        count(&mut open.row);
        if r.outcome != Outcome::Dropped {
            open.latency_us
                .saturating_record(micros_of_ns(r.latency_ns()));
        }
    }

    /// Closes every second before `second`, gaps included.
    pub(super) fn close_before(&mut self, second: u64) {
        while (self.closed.len() as u64) < second {
            let next = self.closed.len() as u64;
            let row = match self.open.remove(&next) {
                Some(open) => {
                    let l = ResponseLatency::of(&open.latency_us);
                    SecondStats {
                        p50_ms: l.p50,
                        p99_ms: l.p99,
                        max_ms: l.max,
                        ..open.row
                    }
                }
                None => self.empty_row(next),
            };
            self.closed.push(row);
        }
    }

    /// Closes every second that has a record, and every second the target covers.
    pub(super) fn close_all(&mut self, until: u64) {
        let last_open = self.open.keys().next_back().map(|s| s + 1).unwrap_or(0);
        let planned = self
            .target
            .as_ref()
            .map(|p| (p.length_s().ceil() as u64).min(until))
            .unwrap_or(0);
        self.close_before(last_open.max(planned).max(self.closed.len() as u64));
    }

    pub(super) fn last_closed(&self) -> Option<SecondStats> {
        self.closed.last().copied()
    }

    pub(super) fn rows(&self) -> &[SecondStats] {
        &self.closed
    }
}
