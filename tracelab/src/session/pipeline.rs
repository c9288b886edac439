//! The span pipeline's own runtime.
//!
//! Everything that moves spans — the exporters' batch encoding, the receiver's decoding, the
//! span file's JSON — is CPU work in chunks of milliseconds. On the runtime that also runs the
//! simulated services, such a chunk holds a worker thread while a service's wait has ended and
//! its task waits to be polled: measured on the fidelity scenario, injected waits ran 1.6 ms
//! late at p99 that way, against 0.1 ms for the same waits alone. On a runtime of its own,
//! with its threads at the lowest priority (`SCHED_IDLE` while the scenario's expected span
//! rate leaves it idle cycles, nice 19 above: [`Priority`]), the pipeline still gets every idle
//! cycle, and the kernel preempts it the moment a service whose wait ended needs a core.

use tokio::runtime::{Handle, Runtime};
use tracelab_scenario::Scenario;

/// The pipeline's runtime; dropped without waiting at the end of a session.
pub(crate) struct Pipeline {
    runtime: Option<Runtime>,
    priority: Priority,
}

impl Pipeline {
    /// Starts two worker threads named `tracelab-otlp` at `priority`.
    pub(crate) fn start(priority: Priority) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tracelab-otlp")
            .on_thread_start(move || priority.apply())
            .enable_all()
            .build()?;
        Ok(Pipeline {
            runtime: Some(runtime),
            priority,
        })
    }

    /// The priority of the pipeline's threads, for other background work of the session.
    pub(crate) fn priority(&self) -> Priority {
        self.priority
    }

    /// Where pipeline tasks are spawned.
    pub(crate) fn handle(&self) -> Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => Handle::current(),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Everything of the session has been flushed and stopped by now; dropping a runtime
        // from async code would panic, so its threads are left to finish on their own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How far the pipeline's threads step back for the lab's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// `SCHED_IDLE`: preempted the moment a service or the scheduler needs the core.
    Idle,
    /// Nice 19: the lowest share of a core among threads that all get one.
    Low,
}

/// Spans a second per core up to which the pipeline runs at [`Priority::Idle`].
///
/// `SCHED_IDLE`, not only nice 19, because a nice-19 thread that holds a core keeps it until its
/// slice ends, and a service task whose wait has ended waits that long. Measured on the
/// quickstart at 500 requests/s on two cores (about 2,300 spans a second per core): with the
/// pipeline at nice 19, most of the time the lab's workers and timer thread waited over 0.25 ms
/// for a core they waited behind a pipeline thread (`bench/sched-blame.py`), and injected waits
/// ran 1.0–1.5 ms late at p99; at `SCHED_IDLE`, which the kernel preempts as soon as any other
/// thread wakes, 0.19–0.27 ms.
///
/// The price: an idle-policy thread runs only when nothing else of its scheduling group wants
/// the core. Near the lab's capacity its own services keep the cores busy and the pipeline
/// starves: the quickstart at 3,000 requests/s (about 13,800 spans a second per core) lost
/// 88,897 of 415,655 spans at `SCHED_IDLE` and none at nice 19; at 2,000/s (9,200 a core) it
/// lost none either way. Above this many spans a second per core, so, precision yields to
/// throughput; a run that busy reports waits far later than the difference anyway. Other
/// programs are other scheduling groups (autogroups, cgroups), which share the CPU fairly: with
/// four busy loops of another session on its only core, a run delivered every span.
const IDLE_SPANS_PER_CORE: f64 = 5_000.0;

impl Priority {
    /// The priority for a session of `scenario` on `cores` cores: [`Priority::Idle`] while the
    /// spans its peak rate is expected to make leave the pipeline most of the idle time,
    /// [`Priority::Low`] above that and for a closed loop (whose rate is its services' speed).
    pub(crate) fn for_scenario(scenario: &Scenario, cores: usize) -> Priority {
        if scenario.load.users.is_some() {
            return Priority::Low;
        }
        let peak = scenario
            .load
            .arrival
            .rates(scenario.load.rate)
            .into_iter()
            .fold(scenario.load.rate, f64::max);
        let per_request = spans_per_request(scenario);
        if peak * per_request <= IDLE_SPANS_PER_CORE * cores.max(1) as f64 {
            Priority::Idle
        } else {
            Priority::Low
        }
    }

    /// The calling thread becomes a background thread at this priority. Where `SCHED_IDLE` is
    /// refused, nice 19.
    pub(crate) fn apply(self) {
        #[cfg(target_os = "linux")]
        {
            use thread_priority::unix::{
                NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
                thread_native_id,
            };
            let idle = self == Priority::Idle
                && set_thread_priority_and_policy(
                    thread_native_id(),
                    thread_priority::ThreadPriority::Min,
                    ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                )
                .is_ok();
            if !idle {
                let _ = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    BACKGROUND_NICE,
                );
            }
        }
    }
}

/// The niceness of background threads at [`Priority::Low`], or where `SCHED_IDLE` is refused.
const BACKGROUND_NICE: i32 = 19;

/// Spans one request is expected to make, the load generator's root span included
/// ([`Scenario::expected_spans`] of each entry, by the entries' weights).
fn spans_per_request(scenario: &Scenario) -> f64 {
    let entries = &scenario.load.entries;
    let total_weight: f64 = entries.iter().map(|e| e.weight).sum();
    if total_weight <= 0.0 {
        return 1.0;
    }
    let spans: f64 = entries
        .iter()
        .map(|e| e.weight * scenario.expected_spans(&e.service, &e.route))
        .sum();
    1.0 + spans / total_weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        tracelab_scenario::parse(yaml, "test.yaml").expect("valid")
    }

    const CHAIN: &str = "
name: chain
seed: 1
services:
  front:
    routes:
      /:
        steps:
          - {call: back, route: /, repeat: 2}
          - {work: render, latency: {constant: 1}}
  back:
    routes:
      /:
        steps:
          - {call: back, route: /leaf, probability: 0.5}
      /leaf: {}
load:
  rate: RATE
  duration: 1s
  entries:
    - {service: front, route: /}
";

    #[test]
    fn spans_per_request_counts_what_each_step_makes() {
        // Root 1 + front 1 + 2 × (client 1 + back 1 + 0.5 × (client 1 + leaf 1)) + work 1.
        let s = scenario(&CHAIN.replace("RATE", "10"));
        assert_eq!(
            spans_per_request(&s),
            1.0 + 1.0 + 2.0 * (2.0 + 0.5 * 2.0) + 1.0
        );
    }

    #[test]
    fn the_quickstart_s_estimate_is_near_what_its_runs_measure() {
        // Its runs measure 9.1–9.2 spans a trace (docs/performance.md).
        let quickstart = scenario(include_str!("../../../scenarios/quickstart.yaml"));
        let estimate = spans_per_request(&quickstart);
        assert!((8.5..=10.0).contains(&estimate), "{estimate}");
    }

    #[test]
    fn the_pipeline_steps_back_fully_until_the_spans_would_crowd_the_cores() {
        // 9 spans a request: 1,111 requests/s is 10,000 spans/s, two cores' worth at most.
        let light = scenario(&CHAIN.replace("RATE", "1100"));
        assert_eq!(Priority::for_scenario(&light, 2), Priority::Idle);
        let heavy = scenario(&CHAIN.replace("RATE", "1200"));
        assert_eq!(Priority::for_scenario(&heavy, 2), Priority::Low);
        assert_eq!(Priority::for_scenario(&heavy, 4), Priority::Idle);
    }
}
