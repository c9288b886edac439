//! Running a route's steps: calls, parallel groups, local work, and the resource steps
//! (database queries, caches, queues) in `steps/resource.rs`.

mod resource;

use std::sync::Arc;

use futures::future::join_all;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use rand::Rng;
use tokio::sync::Semaphore;
use tracelab_scenario::seed::DrawRng;
use tracelab_scenario::{Call, Route, Step};

use crate::app::ServiceState;
use crate::client::{self, CallResult};
use crate::faults::Effects;
use crate::origin::Origin;
use crate::semconv as sc;

/// How the steps of a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepsOutcome {
    /// Every step ran.
    Completed,
    /// A downstream call failed; the remaining steps were not run.
    DownstreamFailed(String),
}

/// Runs `route`'s steps in order under the SERVER span in `cx`.
///
/// All random draws of a step happen before its calls start, in scenario order, so the
/// decisions depend only on the request's RNG, never on which response arrives first.
pub async fn run(
    state: &ServiceState,
    route: &Route,
    cx: &Context,
    origin: &Origin,
    rng: &mut DrawRng,
    effects: &Effects,
) -> StepsOutcome {
    for (index, step) in route.steps.iter().enumerate() {
        let result = match step {
            Step::Work(work) => {
                resource::work(state, cx, index, work, rng, effects).await;
                Ok(())
            }
            Step::Db(db) => {
                resource::db(state, cx, index, db, rng, effects).await;
                Ok(())
            }
            Step::Cache(cache) => {
                resource::cache(state, cx, index, cache, origin, rng, effects).await
            }
            Step::Publish(publish) => {
                crate::queue::publish(state, cx, publish, index, origin, rng, effects);
                Ok(())
            }
            Step::Call(call) => {
                if takes_place(call, index, cx, rng) {
                    run_branch(state, cx, call, index, 0, origin, effects).await
                } else {
                    Ok(())
                }
            }
            Step::Parallel(group) => {
                let planned: Vec<(usize, &Call)> = group
                    .calls
                    .iter()
                    .enumerate()
                    .filter(|(_, call)| takes_place(call, index, cx, rng))
                    .collect();
                let limit = group
                    .max_parallel
                    .map(|m| m.max(1) as usize)
                    .unwrap_or(planned.len().max(1));
                // The semaphore is what makes `max_parallel` true: without it every branch
                // would start at once, whatever the scenario says.
                let permits = Arc::new(Semaphore::new(limit));
                let branches = planned.into_iter().map(|(j, call)| {
                    let permits = permits.clone();
                    async move {
                        let _permit = permits.acquire().await;
                        run_branch(state, cx, call, index, j, origin, effects).await
                    }
                });
                join_all(branches).await.into_iter().collect()
            }
        };
        if let Err(reason) = result {
            return StepsOutcome::DownstreamFailed(reason);
        }
    }
    StepsOutcome::Completed
}

/// Draws whether a call with a probability below 1 happens; a skipped call leaves an event on
/// the SERVER span, so a student can see *why* one trace has fewer spans than another.
fn takes_place(call: &Call, step: usize, cx: &Context, rng: &mut DrawRng) -> bool {
    if call.probability >= 1.0 {
        return true;
    }
    let happens = rng.random_bool(call.probability.clamp(0.0, 1.0));
    if !happens {
        cx.span().add_event(
            "call skipped",
            vec![
                KeyValue::new(sc::TRACELAB_STEP, step as i64),
                KeyValue::new(sc::PEER_SERVICE, call.service.clone()),
                KeyValue::new(sc::URL_TEMPLATE, call.route.clone()),
                KeyValue::new("tracelab.probability", call.probability),
            ],
        );
    }
    happens
}

/// One call with its repeats, one after the other (the N+1 pattern), stopping at a failure.
pub(crate) async fn run_branch(
    state: &ServiceState,
    cx: &Context,
    call: &Call,
    step: usize,
    position: usize,
    origin: &Origin,
    effects: &Effects,
) -> Result<(), String> {
    for repeat in 0..call.repeat {
        let child = origin.child(step, position, repeat);
        let site = client::CallSite {
            state,
            cx,
            call,
            step,
            effects,
        };
        match client::call(site, &child).await {
            CallResult::Ok => {}
            CallResult::Failed(reason) => return Err(reason),
        }
    }
    Ok(())
}
