//! The request origin: which load-generator request this is, and where in its call tree.
//!
//! Every random choice a service makes (latency draws, injected errors, probabilistic calls)
//! comes from an RNG seeded by the scenario seed, the service, the route and this origin. The
//! load generator numbers its requests; each call appends its step/call/repeat position to the
//! path. So the same seed replays the same decisions, whatever the thread timing, and trace ids
//! (which are random per run so two runs never collide in a shared backend) play no part.
//!
//! It travels in the `tracelab-origin` header as `SEQUENCE:PATH`, e.g. `17:2-0-1.0-0-0`.

use http::HeaderMap;
use rand::SeedableRng;
use tracelab_scenario::seed::{self, DrawRng};

/// The header name.
pub const ORIGIN_HEADER: &str = "tracelab-origin";

/// A request's position: the load generator's sequence number and the call path below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Load-generator request number, or `None` for a request from elsewhere (curl, a test).
    pub sequence: Option<u64>,
    /// Dot-separated call positions from the entry service down to this request.
    pub path: String,
}

impl Origin {
    /// The origin of load-generator request `sequence`.
    pub fn root(sequence: u64) -> Self {
        Origin {
            sequence: Some(sequence),
            path: String::new(),
        }
    }

    /// Reads the header; a missing or malformed header gives an origin without a sequence.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(ORIGIN_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(Self::parse)
            .unwrap_or(Origin {
                sequence: None,
                path: String::new(),
            })
    }

    fn parse(s: &str) -> Option<Self> {
        let (seq, path) = s.split_once(':')?;
        let sequence = seq.parse().ok()?;
        let valid = path.len() <= 512
            && path
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
        valid.then(|| Origin {
            sequence: Some(sequence),
            path: path.to_string(),
        })
    }

    /// The origin of a downstream call at `step`, `call` (within a parallel group) and `repeat`.
    pub fn child(&self, step: usize, call: usize, repeat: u32) -> Self {
        let pos = format!("{step}-{call}-{repeat}");
        let path = if self.path.is_empty() {
            pos
        } else {
            format!("{}.{pos}", self.path)
        };
        Origin {
            sequence: self.sequence,
            path,
        }
    }

    /// The origin of retry `attempt` (1 for the first retry) of the request at this origin.
    /// A bare number can never be mistaken for a call position, which has three parts.
    pub fn attempt(&self, attempt: u32) -> Self {
        let path = if self.path.is_empty() {
            attempt.to_string()
        } else {
            format!("{}.{attempt}", self.path)
        };
        Origin {
            sequence: self.sequence,
            path,
        }
    }

    /// The header value, when there is a sequence to carry.
    pub fn header_value(&self) -> Option<String> {
        self.sequence.map(|s| format!("{s}:{}", self.path))
    }

    /// The RNG for this request in `service`/`route`. Requests without a sequence get an
    /// unseeded RNG: they were not scheduled by the scenario, so there is nothing to replay.
    pub fn rng(&self, seed: u64, service: &str, route: &str) -> DrawRng {
        match self.sequence {
            Some(seq) => seed::rng(
                seed,
                &[
                    service.as_bytes(),
                    route.as_bytes(),
                    &seq.to_le_bytes(),
                    self.path.as_bytes(),
                ],
            ),
            None => DrawRng::from_rng(&mut rand::rng()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    #[test]
    fn header_round_trip_and_child_paths() {
        let root = Origin::root(17);
        let child = root.child(2, 0, 1).child(0, 0, 0);
        assert_eq!(child.header_value().as_deref(), Some("17:2-0-1.0-0-0"));
        let mut headers = HeaderMap::new();
        headers.insert(
            ORIGIN_HEADER,
            child.header_value().unwrap().parse().unwrap(),
        );
        assert_eq!(Origin::from_headers(&headers), child);
    }

    #[test]
    fn malformed_header_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN_HEADER, "x:1".parse().unwrap());
        assert_eq!(Origin::from_headers(&headers).sequence, None);
        headers.insert(ORIGIN_HEADER, "1:a/b".parse().unwrap());
        assert_eq!(Origin::from_headers(&headers).sequence, None);
    }

    #[test]
    fn same_origin_same_draws_different_origin_different_draws() {
        let a = Origin::root(5).child(1, 0, 0);
        let draws = |o: &Origin, route: &str| -> Vec<u64> {
            let mut rng = o.rng(42, "svc", route);
            (0..4).map(|_| rng.random()).collect()
        };
        assert_eq!(draws(&a, "/x"), draws(&a, "/x"));
        assert_ne!(draws(&a, "/x"), draws(&a, "/y"));
        assert_ne!(
            draws(&a, "/x"),
            draws(&Origin::root(6).child(1, 0, 0), "/x")
        );
    }
}
