//! SIGINT and SIGTERM, the same for every command.
//!
//! The first signal asks the command to stop gracefully: the load stops, requests in flight
//! finish, spans are flushed, and the run directory is completed and marked interrupted. That
//! is what `timeout`, `docker stop` and Kubernetes (SIGTERM) and a person (Ctrl-C) all expect.
//! A second signal means "now": the files being streamed are flushed as far as they got, and
//! the process exits at once with 130, so an impatient user never has to reach for SIGKILL and
//! still keeps every line already recorded.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// A hook run before a forced exit: it flushes one file being streamed.
pub type FlushHook = Box<dyn Fn() + Send + Sync>;

/// The signal handling of one command.
#[derive(Clone, Default)]
pub struct Signals {
    stop: CancellationToken,
    /// Flushes to run on a second signal. Behind a mutex because files are registered from
    /// the command's task while the signal task may be running them.
    hooks: Arc<Mutex<Vec<FlushHook>>>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("stopping", &self.stop.is_cancelled())
            .finish()
    }
}

impl Signals {
    /// Signals that nothing sends: for tests and library callers that cancel by hand.
    pub fn manual(stop: CancellationToken) -> Self {
        Signals {
            stop,
            hooks: Arc::default(),
        }
    }

    /// Starts listening for SIGINT and SIGTERM on the current runtime. `what` says what the
    /// first signal does, for the line printed when it arrives.
    pub fn install(what: &'static str) -> Self {
        let signals = Signals::default();
        let listening = signals.clone();
        tokio::spawn(async move {
            let mut stream = match SignalStream::new() {
                Ok(stream) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for signals; Ctrl-C will end the process without a report");
                    return;
                }
            };
            let name = stream.next().await;
            eprintln!("\n{name}: {what} (a second signal exits at once, keeping what is written)");
            listening.stop.cancel();
            let name = stream.next().await;
            eprintln!("\n{name} again: flushing the files written so far and exiting");
            listening.flush_all();
            std::process::exit(130);
        });
        signals
    }

    /// The token the first signal cancels.
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Registers a flush to run before a forced exit.
    pub fn on_forced_exit(&self, hook: FlushHook) {
        lock(&self.hooks).push(hook);
    }

    fn flush_all(&self) {
        for hook in lock(&self.hooks).iter() {
            hook();
        }
    }
}

fn lock(hooks: &Mutex<Vec<FlushHook>>) -> std::sync::MutexGuard<'_, Vec<FlushHook>> {
    // A hook that panicked leaves the list itself intact.
    hooks.lock().unwrap_or_else(|p| p.into_inner())
}

/// SIGINT and SIGTERM as one stream of names.
struct SignalStream {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl SignalStream {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(SignalStream {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(SignalStream {})
        }
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "interrupted (SIGINT)",
                _ = self.terminate.recv() => "terminated (SIGTERM)",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}
