//! The decision caches: least-recently-used sets of trace ids, and a fast hasher for ids.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use tracelab_trace::TraceId;

/// Trace ids are already random, so hashing them with SipHash buys nothing but time; this
/// folds the bytes with one multiply per word.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

pub(crate) type IdMap<V> = HashMap<TraceId, V, BuildHasherDefault<IdHasher>>;

/// An LRU set with a fixed capacity (0 = disabled), like the Collector's decision caches.
///
/// Recency is tracked with a queue of (id, stamp) pairs; a `get` re-queues the id with a
/// new stamp and the stale pair is skipped when it reaches the front.
pub(crate) struct LruSet {
    capacity: usize,
    stamps: IdMap<u64>,
    order: VecDeque<(TraceId, u64)>,
    next_stamp: u64,
}

impl LruSet {
    pub fn new(capacity: u64) -> Self {
        LruSet {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            stamps: IdMap::default(),
            order: VecDeque::new(),
            next_stamp: 0,
        }
    }

    /// True (and refreshed) when the id is cached.
    pub fn get(&mut self, id: &TraceId) -> bool {
        if self.capacity == 0 {
            return false;
        }
        match self.stamps.get_mut(id) {
            Some(stamp) => {
                self.next_stamp += 1;
                *stamp = self.next_stamp;
                self.order.push_back((*id, self.next_stamp));
                self.compact();
                true
            }
            None => false,
        }
    }

    /// Adds the id, evicting the least recently used one when full.
    pub fn put(&mut self, id: TraceId) {
        if self.capacity == 0 {
            return;
        }
        self.next_stamp += 1;
        if self.stamps.insert(id, self.next_stamp).is_none() {
            while self.stamps.len() > self.capacity {
                let Some((old, stamp)) = self.order.pop_front() else {
                    break;
                };
                if self.stamps.get(&old) == Some(&stamp) {
                    self.stamps.remove(&old);
                }
            }
        }
        self.order.push_back((id, self.next_stamp));
        self.compact();
    }

    /// Drops stale queue entries once they outnumber live ones, so the queue stays bounded.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.stamps.len() + 16 {
            let stamps = &self.stamps;
            self.order.retain(|(id, s)| stamps.get(id) == Some(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let id = |b| TraceId([b; 16]);
        let mut c = LruSet::new(2);
        c.put(id(1));
        c.put(id(2));
        assert!(c.get(&id(1)), "refreshes 1");
        c.put(id(3));
        assert!(c.get(&id(1)));
        assert!(!c.get(&id(2)), "2 was the least recently used");
        assert!(c.get(&id(3)));
        let mut off = LruSet::new(0);
        off.put(id(1));
        assert!(!off.get(&id(1)));
    }
}
