//! Injected waits: every wait whose length is drawn from the scenario (a route's own latency,
//! `work`, `db` and `cache` steps, retry backoff, queue lag, latency faults) goes through
//! [`injected`]. It waits on the precise timer (tokio's own sleep runs about a millisecond long,
//! which would make every configured latency wrong by that much), skips a zero draw entirely,
//! and records how far the wait overran its target in the service's [`OverrunRecorder`]: the
//! lab reports that as its injected-latency error, so a run on an overloaded machine says so
//! instead of presenting timer noise as the model.

use std::time::Duration;

use opentelemetry::KeyValue;
use tokio::time::Instant;
use tracelab_timer::{OverrunRecorder, Timer};

use crate::semconv as sc;

/// Waits `drawn` on `timer`, and records the overrun. A zero draw returns at once.
pub async fn injected(timer: Timer, timing: &OverrunRecorder, drawn: Duration) {
    if drawn.is_zero() {
        return;
    }
    let target = Instant::now() + drawn;
    timer.sleep_until(target).await;
    timing.record(target, Instant::now());
}

/// The attribute that says what was drawn for a span whose duration comes from a draw, so
/// anyone can compare the span's duration with the model.
pub fn drawn(drawn: Duration) -> KeyValue {
    KeyValue::new(sc::TRACELAB_LATENCY_DRAWN_MS, drawn.as_secs_f64() * 1000.0)
}
