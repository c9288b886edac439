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
use rand::rngs::SmallRng;

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
    pub fn rng(&self, seed: u64, service: &str, route: &str) -> SmallRng {
        match self.sequence {
            Some(seq) => SmallRng::seed_from_u64(derive_seed(
                seed,
                &[
                    service.as_bytes(),
                    route.as_bytes(),
                    &seq.to_le_bytes(),
                    self.path.as_bytes(),
                ],
            )),
            None => SmallRng::from_rng(&mut rand::rng()),
        }
    }
}

/// Mixes a seed with some byte strings into a new seed: FNV-1a over the parts (with a separator
/// so `["ab","c"]` and `["a","bc"]` differ), finished with SplitMix64 so nearby inputs give
/// unrelated seeds. Written out rather than using `std::hash` because std's hasher may change
/// between Rust releases, and seeds must replay across builds.
pub fn derive_seed(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(h)
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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

    #[test]
    fn derive_seed_separates_parts() {
        assert_ne!(
            derive_seed(1, &[b"ab", b"c"]),
            derive_seed(1, &[b"a", b"bc"])
        );
        assert_ne!(derive_seed(1, &[b"a"]), derive_seed(2, &[b"a"]));
    }
}
