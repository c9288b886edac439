//! Lesson "pool-exhaustion": a worker pool too small for its traffic. Requests queue for a
//! worker (the `worker pool wait` span), the wait takes over the critical path, while the
//! work itself never gets slower.

use tracelab_trace::{Span, Trace};

use super::{Answer, Evidence, Question};

/// The span a service with a bounded pool records while a request waits for a worker.
const POOL_WAIT: &str = "worker pool wait";

/// The pool-wait span of `trace` with the longest wait, if any.
fn longest_wait(trace: &Trace) -> Option<&Span> {
    trace
        .spans
        .iter()
        .filter(|s| s.name == POOL_WAIT)
        .max_by_key(|s| s.duration_nanos())
}

/// Total pool wait of `trace`, in nanoseconds.
fn waited(trace: &Trace) -> u64 {
    trace
        .spans
        .iter()
        .filter(|s| s.name == POOL_WAIT)
        .map(|s| s.duration_nanos())
        .sum()
}

/// The questions: whose pool is the bottleneck, how much of the slowest request was waiting,
/// and how long the work itself takes.
pub fn pool_exhaustion(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let analysis = evidence.analysis;
    let pool = analysis
        .operations
        .iter()
        .filter(|o| o.operation == POOL_WAIT)
        .max_by_key(|o| o.self_time_total_ns)
        .ok_or("no request waited for a worker in this run")?;
    let slowest = analysis
        .slowest_traces
        .first()
        .ok_or("the run produced no traces")?;
    let slowest_trace =
        super::trace(evidence, slowest.trace_id).ok_or("the slowest trace is missing")?;
    let wait = longest_wait(slowest_trace).ok_or("the slowest trace never waited for a worker")?;
    let total = slowest_trace.duration_nanos().max(1);
    let share = (waited(slowest_trace) as f64 / total as f64 * 100.0).round() as u64;
    // The work: the pool service's SERVER operation other than the wait, by its own time.
    let work = analysis
        .operations
        .iter()
        .filter(|o| o.service == pool.service && o.operation != POOL_WAIT)
        .max_by_key(|o| o.count)
        .ok_or("the pool's service did no work")?;
    let work_ms = (work.self_time.p50_ns as f64 / 1e6).round() as u64;
    Ok(vec![
        Question {
            prompt: "Which service's worker pool is the bottleneck (whose requests wait for a \
                     worker)?"
                .into(),
            answer: Answer::Service(pool.service.clone()),
            explanation: format!(
                "The operation `{}: {POOL_WAIT}` holds {:.1} % of the critical path of the \
                 slowest requests, in {} requests: they queued for one of `{}`'s workers. In \
                 the slowest trace, {}, it is the long bar under `{}`'s SERVER span.",
                pool.service,
                pool.critical_share_p99 * 100.0,
                pool.count,
                pool.service,
                slowest.trace_id.to_hex(),
                pool.service
            ),
        },
        Question {
            prompt: format!(
                "What share of the slowest trace, {}, was spent waiting for a worker, in whole \
                 percent?",
                slowest.trace_id.to_hex()
            ),
            answer: Answer::Count(share),
            explanation: format!(
                "Its `{POOL_WAIT}` span lasted {:.1} ms of the trace's {:.1} ms ({share} %); \
                 the rest is the work and the calls around it. Waiting, not working, is what \
                 made it slow.",
                wait.duration_nanos() as f64 / 1e6,
                total as f64 / 1e6
            ),
        },
        Question {
            prompt: format!(
                "How long does `{}: {}` itself work on a request (its self time at p50), in \
                 whole milliseconds?",
                work.service, work.operation
            ),
            answer: Answer::Count(work_ms),
            explanation: format!(
                "The operations table: `{}: {}` has a self time of {:.1} ms at p50 and {:.1} ms \
                 at p99, while its latency reaches {:.1} ms at p99. No span got slower; the \
                 queue in front of the workers did the damage.",
                work.service,
                work.operation,
                work.self_time.p50_ns as f64 / 1e6,
                work.self_time.p99_ns as f64 / 1e6,
                work.latency.p99_ns as f64 / 1e6
            ),
        },
    ])
}
