//! Steps that stand for resources: local work (waiting or burning CPU, optionally under a
//! lock), simulated database queries, and caches in front of a backing route.

use std::time::Duration;

use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use rand::Rng;
use tracelab_scenario::seed::DrawRng;
use tracelab_scenario::{Cache, Db, Work};

use crate::app::ServiceState;
use crate::faults::Effects;
use crate::semconv as sc;

/// Local work in an INTERNAL span named after it.
pub(super) async fn work(
    state: &ServiceState,
    cx: &Context,
    step: usize,
    work: &Work,
    rng: &mut DrawRng,
    effects: &Effects,
) {
    let tracer = state.telemetry.tracer();
    let delay = work.latency.sample(rng);
    let mut attributes = vec![
        KeyValue::new(sc::TRACELAB_STEP, step as i64),
        crate::wait::drawn(delay),
    ];
    if work.cpu {
        attributes.push(KeyValue::new(sc::TRACELAB_WORK_CPU, true));
    }
    let span = tracer
        .span_builder(work.name.clone())
        .with_kind(SpanKind::Internal)
        .with_start_time(effects.now())
        .with_attributes(attributes)
        .start_with_context(tracer, cx);
    let cx = cx.with_span(span);
    let lock = work.lock.as_ref().map(|name| state.locks.get(name));
    let _guard = match &lock {
        Some(lock) => Some(held(&cx, lock).await),
        None => None,
    };
    if work.cpu {
        burn(&state.timing, delay).await;
    } else {
        crate::wait::injected(state.timer, &state.timing, delay).await;
    }
    cx.span().end_with_timestamp(effects.now());
}

/// A database query: one CLIENT span per repeat with the database attributes.
pub(super) async fn db(
    state: &ServiceState,
    cx: &Context,
    step: usize,
    db: &Db,
    rng: &mut DrawRng,
    effects: &Effects,
) {
    let tracer = state.telemetry.tracer();
    let name = match &db.collection {
        Some(collection) => format!("{} {collection}", db.operation),
        None => db.operation.clone(),
    };
    for _ in 0..db.repeat.max(1) {
        let delay = db.latency.sample(rng);
        let mut attributes = vec![
            KeyValue::new(sc::DB_SYSTEM_NAME, db.system.clone()),
            KeyValue::new(sc::DB_OPERATION_NAME, db.operation.clone()),
            KeyValue::new(sc::TRACELAB_STEP, step as i64),
            crate::wait::drawn(delay),
        ];
        if let Some(collection) = &db.collection {
            attributes.push(KeyValue::new(sc::DB_COLLECTION_NAME, collection.clone()));
        }
        if let Some(query) = &db.query {
            attributes.push(KeyValue::new(sc::DB_QUERY_TEXT, query.clone()));
        }
        let span = tracer
            .span_builder(name.clone())
            .with_kind(SpanKind::Client)
            .with_start_time(effects.now())
            .with_attributes(attributes)
            .start_with_context(tracer, cx);
        let cx = cx.with_span(span);
        let lock = db.lock.as_ref().map(|name| state.locks.get(name));
        let guard = match &lock {
            Some(lock) => Some(held(&cx, lock).await),
            None => None,
        };
        crate::wait::injected(state.timer, &state.timing, delay).await;
        drop(guard);
        cx.span().end_with_timestamp(effects.now());
    }
}

/// A cache lookup in an INTERNAL span; on a miss the backing route is called under it.
pub(super) async fn cache(
    state: &ServiceState,
    cx: &Context,
    step: usize,
    cache: &Cache,
    origin: &crate::origin::Origin,
    rng: &mut DrawRng,
    effects: &Effects,
) -> Result<(), String> {
    let tracer = state.telemetry.tracer();
    let ratio = effects
        .cache_hit_ratio
        .unwrap_or(cache.hit_ratio)
        .clamp(0.0, 1.0);
    let hit = rng.random_bool(ratio);
    let delay = cache.latency.sample(rng);
    let span = tracer
        .span_builder(format!("cache.get {}", cache.name))
        .with_kind(SpanKind::Internal)
        .with_start_time(effects.now())
        .with_attributes([
            KeyValue::new(sc::TRACELAB_STEP, step as i64),
            KeyValue::new(sc::TRACELAB_CACHE_HIT, hit),
            crate::wait::drawn(delay),
        ])
        .start_with_context(tracer, cx);
    let cx = cx.with_span(span);
    crate::wait::injected(state.timer, &state.timing, delay).await;
    let result = if hit {
        Ok(())
    } else {
        super::run_branch(state, &cx, &cache.miss, step, 0, origin, effects).await
    };
    cx.span().end_with_timestamp(effects.now());
    result
}

/// Waits for `lock`, recording the wait on the span in `cx`.
async fn held<'l>(
    cx: &Context,
    lock: &'l tokio::sync::Mutex<()>,
) -> tokio::sync::MutexGuard<'l, ()> {
    let started = tokio::time::Instant::now();
    let guard = lock.lock().await;
    let waited_ms = started.elapsed().as_secs_f64() * 1000.0;
    cx.span()
        .set_attribute(KeyValue::new(sc::TRACELAB_LOCK_WAIT_MS, waited_ms));
    cx.span().add_event(
        "lock acquired",
        vec![KeyValue::new(sc::TRACELAB_LOCK_WAIT_MS, waited_ms)],
    );
    guard
}

/// Burns CPU for `duration` on a blocking thread, so the async workers stay free and the
/// time shows up as CPU use rather than as waiting. The wait for a blocking thread counts
/// against the overrun, as a busy machine would make it.
async fn burn(timing: &tracelab_timer::OverrunRecorder, duration: Duration) {
    if duration.is_zero() {
        return;
    }
    let target = tokio::time::Instant::now() + duration;
    let _ = tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        let mut x: u64 = 0;
        while start.elapsed() < duration {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        x
    })
    .await;
    timing.record(target, tokio::time::Instant::now());
}
