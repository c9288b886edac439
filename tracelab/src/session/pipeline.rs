//! The span pipeline's own runtime.
//!
//! Everything that moves spans — the exporters' batch encoding, the receiver's decoding, the
//! span file's JSON — is CPU work in chunks of milliseconds. On the runtime that also runs the
//! simulated services, such a chunk holds a worker thread while a service's wait has ended and
//! its task waits to be polled: measured on the fidelity scenario, injected waits ran 1.6 ms
//! late at p99 that way, against 0.1 ms for the same waits alone. On a runtime of its own,
//! with its threads at the lowest priority (`SCHED_IDLE`), the pipeline still gets every idle
//! cycle, and the kernel preempts it the moment a service whose wait ended needs a core.

use tokio::runtime::{Handle, Runtime};

/// The pipeline's runtime; dropped without waiting at the end of a session.
pub(crate) struct Pipeline {
    runtime: Option<Runtime>,
}

impl Pipeline {
    /// Starts two worker threads named `tracelab-otlp`.
    pub(crate) fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tracelab-otlp")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()?;
        Ok(Pipeline {
            runtime: Some(runtime),
        })
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

/// The niceness of background threads where `SCHED_IDLE` is refused: the lowest.
const BACKGROUND_NICE: i32 = 19;

/// The calling thread becomes a background thread that yields to the lab's own.
///
/// `SCHED_IDLE`, not only nice 19: a nice-19 thread that holds a core keeps it until its slice
/// ends, and a service task whose wait has ended waits that long. Measured on the quickstart at
/// 500 requests/s on two cores: with the pipeline at nice 19, most of the time the lab's workers
/// and timer thread waited over 0.25 ms for a core they waited behind a pipeline thread
/// (`perf sched`), and injected waits ran 1.0–1.5 ms late at p99; at `SCHED_IDLE`, which the
/// kernel preempts the moment any other thread wakes, 0.21–0.26 ms.
///
/// The price: an idle-policy thread runs only when nothing else of its scheduling group wants
/// the core. Other programs are normally other groups (each session is an autogroup, each
/// service or container a cgroup), and groups share the CPU fairly, so the pipeline still gets
/// the lab's share once the load has been sent: with four busy loops of another session on the
/// lab's only core, a run delivered all of its spans. Busy loops in the lab's own group starve
/// it; the session then waits for spans as long as they keep arriving, and counts what never
/// arrived as lost (docs/performance.md, "Timing precision").
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if idle.is_err() {
            let _ = rustix::process::setpriority_process(
                Some(rustix::thread::gettid()),
                BACKGROUND_NICE,
            );
        }
    }
}
