//! The open-file budget: every connection is a file descriptor, twice over when both ends
//! are in this process.
//!
//! Linux starts most shells with a soft limit of 1024 open files and a much higher hard limit.
//! A lab at a few thousand requests per second needs more than 1024 sockets, and running out
//! shows as `accept error: Too many open files`, refused connections and broken traces. So
//! tracelab raises its soft limit to the hard limit at start (what any process may do), and
//! sizes the load generator's connections to what is left, so overload is counted and reported
//! rather than turned into socket errors.

/// Descriptors kept for everything that is not a load connection: listeners, the span and
/// request files, the runtime, OTLP export connections, the admin APIs.
pub const RESERVED: u64 = 256;

/// The process's open-file limit after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit now in force.
    pub soft: u64,
    /// What it was before, when it was raised.
    pub raised_from: Option<u64>,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Failing that (no such limit on this
/// platform), reports a limit that does not constrain.
pub fn raise() -> FdLimit {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                return FdLimit {
                    soft: hard,
                    raised_from: Some(soft),
                };
            }
            return FdLimit {
                soft,
                raised_from: None,
            };
        }
    }
    FdLimit {
        soft: u64::MAX,
        raised_from: None,
    }
}

/// How many load connections fit when each in-flight request holds `sockets_per_request`
/// descriptors, capped at `ceiling`.
pub fn connection_budget(limit: FdLimit, sockets_per_request: f64, ceiling: usize) -> usize {
    let free = limit.soft.saturating_sub(RESERVED) as f64;
    let fit = (free / sockets_per_request.max(1.0)).floor();
    (fit as usize).clamp(1, ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_room_for_every_socket_of_a_request() {
        let limit = FdLimit {
            soft: 1024,
            raised_from: None,
        };
        // 768 free descriptors, 6 per request (3 hops, both ends in process).
        assert_eq!(connection_budget(limit, 6.0, 10_000), 128);
        assert_eq!(connection_budget(limit, 1.0, 100), 100);
        let tiny = FdLimit {
            soft: 100,
            raised_from: None,
        };
        assert_eq!(connection_budget(tiny, 2.0, 100), 1);
    }
}
