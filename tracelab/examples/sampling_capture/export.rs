//! Export order: each service batches the spans it ended and writes a batch as one line of
//! OTLP/JSON, as the receiver's sink does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use tracelab_trace::Span;

use crate::SECOND;

/// Spans per export batch, at most.
const BATCH_SPANS: usize = 512;
/// A batch is written at the latest this long after its first span ended.
const BATCH_DELAY: u64 = SECOND;

/// A span waiting for its export, ordered by end time (then creation order).
pub(crate) struct Ended(pub(crate) u64, pub(crate) u64, pub(crate) Span);

impl PartialEq for Ended {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Ended {}
impl PartialOrd for Ended {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ended {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// Per-service export batches, written as the receiver's sink writes requests.
pub(crate) struct Exporter {
    pub(crate) out: BufWriter<File>,
    pub(crate) batches: HashMap<Arc<str>, (u64, Vec<Span>)>,
    pub(crate) lines: u64,
    pub(crate) spans: u64,
}

impl Exporter {
    pub(crate) fn add(&mut self, span: Span) -> anyhow::Result<()> {
        let end = span.end_unix_nano;
        let batch = self
            .batches
            .entry(span.service_name.clone())
            .or_insert_with(|| (end, Vec::new()));
        if batch.1.is_empty() {
            batch.0 = end;
        }
        batch.1.push(span);
        if batch.1.len() >= BATCH_SPANS {
            let spans = std::mem::take(&mut batch.1);
            self.write(&spans)?;
        }
        Ok(())
    }

    /// Flushes every batch whose first span ended a batch delay before `now`.
    pub(crate) fn tick(&mut self, now: u64) -> anyhow::Result<()> {
        let mut due: Vec<Vec<Span>> = Vec::new();
        for (first, spans) in self.batches.values_mut() {
            if !spans.is_empty() && *first + BATCH_DELAY <= now {
                due.push(std::mem::take(spans));
            }
        }
        due.sort_by_key(|b| b[0].end_unix_nano);
        for spans in due {
            self.write(&spans)?;
        }
        Ok(())
    }

    fn write(&mut self, spans: &[Span]) -> anyhow::Result<()> {
        self.out
            .write_all(tracelab_receiver::otlp_json::encode_request_line(spans).as_bytes())?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        self.spans += spans.len() as u64;
        Ok(())
    }
}
