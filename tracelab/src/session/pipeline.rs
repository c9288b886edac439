//! The span pipeline's own runtime.
//!
//! Everything that moves spans — the exporters' batch encoding, the receiver's decoding, the
//! span file's JSON — is CPU work in chunks of milliseconds. On the runtime that also runs the
//! simulated services, such a chunk holds a worker thread while a service's wait has ended and
//! its task waits to be polled: measured on the fidelity scenario, injected waits ran 1.6 ms
//! late at p99 that way, against 0.1 ms for the same waits alone. On a runtime of its own,
//! with its threads at the lowest priority (nice 19), the pipeline still gets every idle cycle, and
//! the kernel's wake-up preemption runs a service whose wait ended as soon as a core is free.

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

/// The niceness of background threads: the lowest, so that whenever a service or the
/// scheduler has work, the kernel runs it first; the pipeline still has every idle cycle.
const BACKGROUND_NICE: i32 = 19;

/// The calling thread becomes a background thread that yields to the lab's own.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let _ =
            rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKGROUND_NICE);
    }
}
