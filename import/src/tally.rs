//! What the import keeps of the traces it has read: per route, counts and bounded samples,
//! never the spans. Memory grows with the number of distinct routes and steps, not with the
//! number of traces (each sample is a uniform reservoir of at most [`SAMPLES`] values, the
//! per-request step patterns are capped at [`MAX_PATTERNS`] per route, and pending
//! publish/consume pairs at [`MAX_PENDING`]).
//!
//! A route's steps are kept by *key*: what the step is ([`Sig`]) and which run of that step it
//! is in the request (a route may call the same route twice, apart). Consecutive calls to one
//! route, or queries of one kind, are one run: their count is the step's `repeat`.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use indexmap::IndexMap;
use tracelab_analysis::diff::stats::Reservoir;
use tracelab_trace::SpanId;

use crate::observe::{Element, Entry, Instance, Observed, Sig, Target};
use crate::timeline::{Request, Timeline};

/// Values kept per sample.
pub(crate) const SAMPLES: usize = 20_000;
/// Distinct step patterns kept per route; requests with another pattern beyond it are left
/// out of the step probabilities.
pub(crate) const MAX_PATTERNS: usize = 4096;
/// Distinct steps kept per route.
pub(crate) const MAX_KEYS: usize = 256;
/// Publishes waiting for their consumer (or consumers for their publish) at most.
pub(crate) const MAX_PENDING: usize = 200_000;
/// Entry start times kept for the arrival process.
pub(crate) const MAX_STARTS: usize = 1_000_000;

/// Counts of distinct values, in the order first seen.
#[derive(Debug, Clone)]
pub(crate) struct Counter<T: Hash + Eq>(pub(crate) IndexMap<T, u64>);

impl<T: Hash + Eq> Default for Counter<T> {
    fn default() -> Self {
        Counter(IndexMap::new())
    }
}

impl<T: Hash + Eq + Clone> Counter<T> {
    pub(crate) fn add(&mut self, value: T) {
        *self.0.entry(value).or_insert(0) += 1;
    }

    /// The most frequent value (the first seen among equals) and its count.
    pub(crate) fn mode(&self) -> Option<(&T, u64)> {
        let mut best: Option<(&T, u64)> = None;
        for (value, &count) in &self.0 {
            if best.is_none_or(|(_, b)| count > b) {
                best = Some((value, count));
            }
        }
        best
    }

    pub(crate) fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// A step of a route: what it is and which run of it.
pub(crate) type Key = (Sig, u32);

/// What is known of one step of a route.
#[derive(Debug)]
pub(crate) struct KeyTally {
    /// Requests it ran in.
    pub(crate) present: u64,
    /// Sum of its start after the route's start, ms (for ordering).
    pub(crate) offset_sum_ms: f64,
    /// Run lengths of runs without a failure.
    pub(crate) repeats: Counter<u32>,
    /// Run lengths of all runs.
    pub(crate) repeats_any: Counter<u32>,
    /// The most attempts one call made.
    pub(crate) attempts: u32,
    /// Waits before a retry, divided by the doubling of the backoff, ns.
    pub(crate) retry_gaps: Reservoir,
    /// Durations of attempts that timed out, ns.
    pub(crate) timeouts: Reservoir,
    /// The step's own time (work, query, lookup), ns.
    pub(crate) own: Reservoir,
    /// The same, of steps cut short when a caller above gave up: how long they would have
    /// taken is not known, so they are fitted only when no step ran to its end.
    pub(crate) own_cut: Reservoir,
    pub(crate) hits: u64,
    pub(crate) lookups: u64,
    pub(crate) miss: Counter<Target>,
    pub(crate) cpu: u64,
    pub(crate) locked: u64,
    pub(crate) query: Counter<String>,
    /// Time from publish to processing, ns.
    pub(crate) lag: Reservoir,
    pub(crate) consumers: Counter<Target>,
}

impl KeyTally {
    fn new() -> Self {
        KeyTally {
            present: 0,
            offset_sum_ms: 0.0,
            repeats: Counter::default(),
            repeats_any: Counter::default(),
            attempts: 0,
            retry_gaps: Reservoir::new(SAMPLES),
            timeouts: Reservoir::new(SAMPLES),
            own: Reservoir::new(SAMPLES),
            own_cut: Reservoir::new(SAMPLES),
            hits: 0,
            lookups: 0,
            miss: Counter::default(),
            cpu: 0,
            locked: 0,
            query: Counter::default(),
            lag: Reservoir::new(SAMPLES),
            consumers: Counter::default(),
        }
    }

    /// Mean start after the route's start, ms.
    pub(crate) fn offset_ms(&self) -> f64 {
        self.offset_sum_ms / self.present.max(1) as f64
    }
}

/// How two steps of a route related in the requests that ran both.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Pair {
    pub(crate) together: u64,
    pub(crate) overlap: u64,
    /// The first (lower key index) ended before the second started.
    pub(crate) before: u64,
    pub(crate) after: u64,
}

/// Which steps one request ran, which failed, and whether it failed before any step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Pattern {
    pub(crate) present: Vec<u16>,
    pub(crate) failed: Vec<u16>,
    pub(crate) failed_before_steps: bool,
}

/// What is known of one route.
#[derive(Debug)]
pub(crate) struct RouteTally {
    pub(crate) requests: u64,
    pub(crate) methods: Counter<String>,
    /// Requests that failed with no failed step: the route's own errors.
    pub(crate) own_errors: u64,
    pub(crate) statuses: Counter<u16>,
    pub(crate) self_time: Reservoir,
    /// When each request of `self_time` started. The two reservoirs are filled in lock step:
    /// which slot a reservoir replaces depends only on how many values it has seen, so the
    /// i-th values of both belong to one request.
    pub(crate) self_time_starts: Reservoir,
    /// Own failures, own time and cut requests over time, for the incidents.
    pub(crate) timeline: Timeline,
    pub(crate) keys: IndexMap<Key, KeyTally>,
    pub(crate) pairs: HashMap<(u16, u16), Pair>,
    pub(crate) patterns: HashMap<Pattern, u64>,
    /// Requests left out of the patterns (beyond [`MAX_PATTERNS`]).
    pub(crate) unpatterned: u64,
    /// Calls of a step made in traces of their own (the service lost the trace context), by
    /// step: they ran in requests whose patterns lack them.
    pub(crate) restored: HashMap<u16, u64>,
    /// Steps left out (beyond [`MAX_KEYS`]).
    pub(crate) dropped_keys: u64,
    pub(crate) synthetic: bool,
}

impl RouteTally {
    fn new(synthetic: bool) -> Self {
        RouteTally {
            requests: 0,
            methods: Counter::default(),
            own_errors: 0,
            statuses: Counter::default(),
            self_time: Reservoir::new(SAMPLES),
            self_time_starts: Reservoir::new(SAMPLES),
            timeline: Timeline::new(),
            keys: IndexMap::new(),
            pairs: HashMap::new(),
            patterns: HashMap::new(),
            unpatterned: 0,
            restored: HashMap::new(),
            dropped_keys: 0,
            synthetic,
        }
    }
}

/// A map that forgets its oldest entries beyond a capacity.
#[derive(Debug)]
struct Bounded<K: Hash + Eq + Clone, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    fn new() -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > MAX_PENDING {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        // The key stays in `order` until it comes up; removing it there would cost a scan.
        self.map.remove(key)
    }
}

/// Requests that entered under one service's CLIENT spans with no parent.
#[derive(Debug, Default)]
struct ClientRoots {
    targets: Counter<Target>,
    /// Starts, with the index of their target in `targets`; at most [`MAX_STARTS`].
    starts: Vec<(u64, usize)>,
    baggage: IndexMap<String, Counter<String>>,
}

impl ClientRoots {
    fn add(&mut self, entry: Entry) {
        let slot = self.targets.0.entry(entry.target);
        let index = slot.index();
        *slot.or_insert(0) += 1;
        if self.starts.len() < MAX_STARTS {
            self.starts.push((entry.start, index));
        }
        for (key, value) in entry.baggage {
            self.baggage.entry(key).or_default().add(value);
        }
    }
}

/// A service that lost its callers' trace context: its calls started traces of their own.
#[derive(Debug)]
pub(crate) struct LostContext {
    pub(crate) service: String,
    /// The first and the last of those calls' starts, ns.
    pub(crate) first: u64,
    pub(crate) last: u64,
    /// Those calls, by callee.
    pub(crate) calls: Counter<Target>,
}

/// Everything kept.
#[derive(Debug)]
pub(crate) struct Tallies {
    pub(crate) traces: u64,
    pub(crate) spans: u64,
    pub(crate) routes: IndexMap<Target, RouteTally>,
    pub(crate) versions: IndexMap<String, Counter<String>>,
    pub(crate) pool_limits: IndexMap<String, u32>,
    pub(crate) entries: Counter<Target>,
    pub(crate) entry_starts: Vec<u64>,
    pub(crate) baggage: IndexMap<String, Counter<String>>,
    /// Requests that entered under a CLIENT span with no parent, by its service: a load
    /// generator's, or a service's that lost its caller's trace context (see
    /// [`Tallies::settle_client_roots`]).
    client_roots: IndexMap<String, ClientRoots>,
    /// Publishes waiting for their consumer: producer span → (route, step, end).
    producers: Bounded<SpanId, (Target, usize, u64)>,
    /// Messages processed before their publish was read: producer span → (consumer, start).
    deliveries: Bounded<SpanId, (Target, u64)>,
}

impl Tallies {
    pub(crate) fn new() -> Self {
        Tallies {
            traces: 0,
            spans: 0,
            routes: IndexMap::new(),
            versions: IndexMap::new(),
            pool_limits: IndexMap::new(),
            entries: Counter::default(),
            entry_starts: Vec::new(),
            baggage: IndexMap::new(),
            client_roots: IndexMap::new(),
            producers: Bounded::new(),
            deliveries: Bounded::new(),
        }
    }

    /// Adds what one trace said.
    pub(crate) fn add(&mut self, observed: Observed, spans: usize) {
        self.traces += 1;
        self.spans += spans as u64;
        let mut producers = Vec::new();
        for instance in &observed.instances {
            self.add_instance(instance, &mut producers);
        }
        for (span, route, key) in producers {
            let end = observed
                .producers
                .iter()
                .find(|(id, _)| *id == span)
                .map_or(0, |(_, end)| *end);
            match self.deliveries.remove(&span) {
                Some((consumer, start)) => self.deliver(&route, key, end, consumer, start),
                None => self.producers.insert(span, (route, key, end)),
            }
        }
        for delivery in observed.deliveries {
            match self.producers.remove(&delivery.producer) {
                Some((route, key, end)) => {
                    self.deliver(&route, key, end, delivery.consumer, delivery.start)
                }
                None => self
                    .deliveries
                    .insert(delivery.producer, (delivery.consumer, delivery.start)),
            }
        }
        if let Some(entry) = observed.entry {
            match observed.client_root {
                Some(service) => self.client_roots.entry(service).or_default().add(entry),
                None => self.enter(entry),
            }
        }
    }

    /// Counts a request that entered.
    fn enter(&mut self, entry: Entry) {
        self.entries.add(entry.target);
        if self.entry_starts.len() < MAX_STARTS {
            self.entry_starts.push(entry.start);
        }
        for (key, value) in entry.baggage {
            self.baggage.entry(key).or_default().add(value);
        }
    }

    /// Sorts the requests that entered under a CLIENT span with no parent. Where that span's
    /// service has routes that make the same call, it lost its caller's trace context: the
    /// requests are its calls, which a replay makes by itself, so they are no load; they are
    /// given back to the steps that make them (shared by how often each route made the call),
    /// and the service comes back as [`LostContext`]. The rest (a load generator's requests,
    /// a service's own background calls) is the load.
    pub(crate) fn settle_client_roots(&mut self) -> Vec<LostContext> {
        let mut lost = Vec::new();
        for (service, roots) in std::mem::take(&mut self.client_roots) {
            let mut calls: Counter<Target> = Counter::default();
            let mut is_call = Vec::with_capacity(roots.targets.0.len());
            for (callee, &count) in &roots.targets.0 {
                let key = (Sig::Call(callee.clone()), 0);
                let callers: Vec<(Target, u64)> = self
                    .routes
                    .iter()
                    .filter(|(t, _)| t.service == service)
                    .filter_map(|(t, r)| r.keys.get(&key).map(|k| (t.clone(), k.present)))
                    .collect();
                is_call.push(!callers.is_empty());
                if callers.is_empty() {
                    *self.entries.0.entry(callee.clone()).or_insert(0) += count;
                    continue;
                }
                calls.0.insert(callee.clone(), count);
                let total: u64 = callers.iter().map(|(_, p)| p).sum();
                for (target, present) in callers {
                    let route = &mut self.routes[&target];
                    let k = route.keys.get_index_of(&key).expect("a key of the route") as u16;
                    let share = (count as f64 * present as f64 / total.max(1) as f64).round();
                    *route.restored.entry(k).or_insert(0) += share as u64;
                }
            }
            let (mut first, mut last) = (u64::MAX, 0);
            for (start, index) in roots.starts {
                if is_call[index] {
                    (first, last) = (first.min(start), last.max(start));
                } else if self.entry_starts.len() < MAX_STARTS {
                    self.entry_starts.push(start);
                }
            }
            // Baggage is the load's when any of it is.
            if is_call.iter().any(|c| !c) {
                for (key, values) in roots.baggage {
                    let counter = self.baggage.entry(key).or_default();
                    for (value, count) in values.0 {
                        *counter.0.entry(value).or_insert(0) += count;
                    }
                }
            }
            // (Without a kept start, past MAX_STARTS, the calls are still given back.)
            if calls.total() > 0 && first <= last {
                lost.push(LostContext {
                    service,
                    first,
                    last,
                    calls,
                });
            }
        }
        lost
    }

    fn deliver(&mut self, route: &Target, key: usize, end: u64, consumer: Target, start: u64) {
        if let Some(tally) = self
            .routes
            .get_mut(route)
            .and_then(|r| r.keys.get_index_mut(key))
        {
            tally.1.consumers.add(consumer);
            tally.1.lag.add(start.saturating_sub(end));
        }
    }

    fn add_instance(&mut self, instance: &Instance, producers: &mut Vec<(SpanId, Target, usize)>) {
        if let Some(version) = &instance.version {
            self.versions
                .entry(instance.route.service.clone())
                .or_default()
                .add(version.clone());
        }
        if let Some(limit) = instance.pool_limit {
            let known = self
                .pool_limits
                .entry(instance.route.service.clone())
                .or_insert(limit);
            *known = (*known).max(limit);
        }
        let route = self
            .routes
            .entry(instance.route.clone())
            .or_insert_with(|| RouteTally::new(instance.synthetic));
        route.requests += 1;
        if let Some(method) = &instance.method {
            route.methods.add(method.clone());
        }
        route.self_time.add(instance.self_ns);
        route.self_time_starts.add(instance.at);
        let any_failed = instance.elements.iter().any(|e| e.failed);
        let own_error = instance.failed && !any_failed;
        if own_error {
            route.own_errors += 1;
            if let Some(status) = instance.status {
                route.statuses.add(status);
            }
        }
        route.timeline.add(Request {
            start: instance.at,
            self_ns: instance.self_ns,
            own_error: own_error.then_some(instance.status),
            cut: instance.cut,
            steps: instance.elements.len() as u64,
            offset_ms: instance.offset_ms,
        });
        let runs = runs(&instance.elements);
        let mut present: Vec<(u16, u64, u64)> = Vec::with_capacity(runs.len());
        let mut failed = Vec::new();
        let mut seen: HashMap<&Sig, u32> = HashMap::new();
        for run in &runs {
            let first = &instance.elements[run[0]];
            let index = seen.entry(&first.sig).or_insert(0);
            let key = (first.sig.clone(), *index);
            *index += 1;
            let Some(k) = key_index(route, key) else {
                continue;
            };
            let tally = &mut route.keys[k];
            let elements: Vec<&Element> = run.iter().map(|&i| &instance.elements[i]).collect();
            let start = first.start;
            let end = elements.iter().map(|e| e.end).max().unwrap_or(start);
            // A run cut short by a caller giving up did not end either: the steps after it
            // did not run because of it, as after a failure.
            let run_failed = elements.iter().any(|e| e.failed || e.cut);
            record(
                tally,
                &elements,
                start.saturating_sub(instance.start),
                run_failed,
            );
            for e in &elements {
                if let Some(span) = e.producer {
                    producers.push((span, instance.route.clone(), k));
                }
            }
            present.push((k as u16, start, end));
            if run_failed {
                failed.push(k as u16);
            }
        }
        for (i, &(a, a_start, a_end)) in present.iter().enumerate() {
            for &(b, b_start, b_end) in &present[i + 1..] {
                let (lo, hi, lo_span, hi_span) = match a < b {
                    true => (a, b, (a_start, a_end), (b_start, b_end)),
                    false => (b, a, (b_start, b_end), (a_start, a_end)),
                };
                let pair = route.pairs.entry((lo, hi)).or_default();
                pair.together += 1;
                if lo_span.0 < hi_span.1 && hi_span.0 < lo_span.1 {
                    pair.overlap += 1;
                } else if lo_span.1 <= hi_span.0 {
                    pair.before += 1;
                } else {
                    pair.after += 1;
                }
            }
        }
        let mut keys: Vec<u16> = present.iter().map(|p| p.0).collect();
        keys.sort_unstable();
        keys.dedup();
        failed.sort_unstable();
        let pattern = Pattern {
            present: keys,
            failed,
            failed_before_steps: instance.failed && instance.elements.is_empty(),
        };
        if route.patterns.len() < MAX_PATTERNS || route.patterns.contains_key(&pattern) {
            *route.patterns.entry(pattern).or_insert(0) += 1;
        } else {
            route.unpatterned += 1;
        }
    }
}

/// The index of `key` in the route's steps, adding it while there is room.
fn key_index(route: &mut RouteTally, key: Key) -> Option<usize> {
    if let Some(index) = route.keys.get_index_of(&key) {
        return Some(index);
    }
    if route.keys.len() >= MAX_KEYS {
        route.dropped_keys += 1;
        return None;
    }
    Some(route.keys.insert_full(key, KeyTally::new()).0)
}

/// Records one run of a step.
fn record(tally: &mut KeyTally, run: &[&Element], offset_ns: u64, failed: bool) {
    tally.present += 1;
    tally.offset_sum_ms += offset_ns as f64 / 1e6;
    let length = run.len() as u32;
    tally.repeats_any.add(length);
    if !failed {
        tally.repeats.add(length);
    }
    for element in run {
        tally.attempts = tally.attempts.max(element.attempts.len() as u32);
        for (retry, pair) in element.attempts.windows(2).enumerate() {
            let gap = pair[1].start.saturating_sub(pair[0].end) >> retry.min(30);
            tally.retry_gaps.add(gap);
        }
        for attempt in element.attempts.iter().filter(|a| a.timed_out) {
            tally
                .timeouts
                .add(attempt.end.saturating_sub(attempt.start));
        }
        if matches!(element.sig, Sig::Work(_) | Sig::Db { .. } | Sig::Cache(_)) {
            match element.cut {
                false => tally.own.add(element.own_ns),
                true => tally.own_cut.add(element.own_ns),
            }
        }
        if let Some(hit) = element.hit {
            tally.lookups += 1;
            tally.hits += u64::from(hit);
        }
        if let Some(miss) = &element.miss {
            tally.miss.add(miss.clone());
        }
        tally.cpu += u64::from(element.cpu);
        tally.locked += u64::from(element.locked);
        if let Some(query) = &element.query {
            tally.query.add(query.clone());
        }
    }
}

/// Groups a request's steps into runs (indexes into `elements`): a call or query joins the
/// latest run of the same step when it starts after that run ended and no other step started
/// in between (a parallel sibling that started before the run ended does not count).
fn runs(elements: &[Element]) -> Vec<Vec<usize>> {
    let mut runs: Vec<(Vec<usize>, u64, bool)> = Vec::new();
    for (i, element) in elements.iter().enumerate() {
        let repeatable = matches!(element.sig, Sig::Call(_) | Sig::Db { .. });
        let joins = runs
            .iter()
            .rposition(|(run, _, _)| elements[run[0]].sig == element.sig);
        let joined = match joins {
            Some(r) if repeatable && !runs[r].2 && runs[r].1 <= element.start => {
                runs[r].0.push(i);
                runs[r].1 = element.end;
                true
            }
            _ => false,
        };
        // Another step starting after a run ended closes that run.
        for (run, end, closed) in runs.iter_mut() {
            if elements[run[0]].sig != element.sig && *end <= element.start {
                *closed = true;
            }
        }
        if !joined {
            runs.push((vec![i], element.end, false));
        }
    }
    runs.into_iter().map(|(run, _, _)| run).collect()
}
