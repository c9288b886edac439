//! The decision caches (least-recently-used sets of traces) and the map type for trace ids.

use std::collections::{HashMap, VecDeque};

use tracelab_trace::TraceId;

/// A map keyed by trace id. Ids are already random, so SipHash's protection against chosen
/// keys buys nothing but time; foldhash's fixed-seed hasher is a few multiplies per id.
pub(crate) type IdMap<V> = HashMap<TraceId, V, foldhash::fast::FixedState>;

/// What an [`LruSet`] can hold: a trace id, or the dense number the engine gives each trace
/// of a replay (its recency stamps are then a plain vector, with no hashing at all).
pub(crate) trait LruKey: Copy {
    /// Recency stamp per key; 0 means absent.
    type Stamps: Default;
    fn stamp(stamps: &Self::Stamps, key: &Self) -> u64;
    /// Sets the stamp (0 removes the key) and returns the previous one.
    fn set(stamps: &mut Self::Stamps, key: Self, stamp: u64) -> u64;
}

impl LruKey for TraceId {
    type Stamps = IdMap<u64>;

    fn stamp(stamps: &IdMap<u64>, key: &TraceId) -> u64 {
        stamps.get(key).copied().unwrap_or(0)
    }

    fn set(stamps: &mut IdMap<u64>, key: TraceId, stamp: u64) -> u64 {
        if stamp == 0 {
            stamps.remove(&key).unwrap_or(0)
        } else {
            stamps.insert(key, stamp).unwrap_or(0)
        }
    }
}

impl LruKey for u32 {
    type Stamps = Vec<u64>;

    #[inline]
    fn stamp(stamps: &Vec<u64>, key: &u32) -> u64 {
        stamps.get(*key as usize).copied().unwrap_or(0)
    }

    #[inline]
    fn set(stamps: &mut Vec<u64>, key: u32, stamp: u64) -> u64 {
        let i = key as usize;
        if i >= stamps.len() {
            stamps.resize(i + 1, 0);
        }
        std::mem::replace(&mut stamps[i], stamp)
    }
}

/// An LRU set with a fixed capacity (0 = disabled), like the Collector's decision caches.
///
/// Recency is tracked with a queue of (key, stamp) pairs; a `get` re-queues the key with a
/// new stamp and the stale pair is skipped when it reaches the front.
pub(crate) struct LruSet<K: LruKey> {
    capacity: usize,
    stamps: K::Stamps,
    len: usize,
    order: VecDeque<(K, u64)>,
    next_stamp: u64,
}

impl<K: LruKey> LruSet<K> {
    pub fn new(capacity: u64) -> Self {
        LruSet {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            stamps: K::Stamps::default(),
            len: 0,
            order: VecDeque::new(),
            next_stamp: 0,
        }
    }

    /// True (and refreshed) when the key is cached.
    #[inline]
    pub fn get(&mut self, key: &K) -> bool {
        if self.capacity == 0 || K::stamp(&self.stamps, key) == 0 {
            return false;
        }
        self.next_stamp += 1;
        K::set(&mut self.stamps, *key, self.next_stamp);
        self.order.push_back((*key, self.next_stamp));
        self.compact();
        true
    }

    /// Adds the key, evicting the least recently used one when full.
    pub fn put(&mut self, key: K) {
        if self.capacity == 0 {
            return;
        }
        self.next_stamp += 1;
        if K::set(&mut self.stamps, key, self.next_stamp) == 0 {
            self.len += 1;
            while self.len > self.capacity {
                let Some((old, stamp)) = self.order.pop_front() else {
                    break;
                };
                if K::stamp(&self.stamps, &old) == stamp {
                    K::set(&mut self.stamps, old, 0);
                    self.len -= 1;
                }
            }
        }
        self.order.push_back((key, self.next_stamp));
        self.compact();
    }

    /// Drops stale queue entries once they outnumber live ones, so the queue stays bounded.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.len + 16 {
            let stamps = &self.stamps;
            self.order.retain(|(key, s)| K::stamp(stamps, key) == *s);
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
