//! A route's steps, from what its requests did: which steps run side by side (a `parallel`
//! group), in which order the groups come, how often each step runs when it can, how many
//! times in a row, with what retries and timeouts, and what its own time looks like.
//!
//! Two steps are parallel when they overlapped in most requests that ran both. Groups are
//! ordered by which ended before which started, most requests deciding, and by their mean
//! start where no request ran both. A step's probability counts only the requests that could
//! have run it: those that did not fail on their own before their steps (a route that fails
//! itself runs none) and in which no earlier step failed (a failed step ends the route's
//! steps). A step seen in fewer than [`RARE`] of a route's requests is left out.

use std::collections::HashMap;
use std::time::Duration;

use tracelab_scenario::{Cache, Call, Db, Parallel, Publish, Retry, Step, Work};

use crate::fit::{self, Fitted};
use crate::naming::Naming;
use crate::notes::Notes;
use crate::observe::{Sig, Target};
use crate::tally::{KeyTally, RouteTally};

/// Steps seen in fewer than this share of a route's requests are left out.
pub(crate) const RARE: f64 = 0.005;

/// The lock of the steps that waited for one: traces do not name locks, so the locked steps
/// of a service share one.
const LOCK: &str = "lock";

/// Overlapping in more than this share of the requests that ran both makes two steps parallel.
const PARALLEL: f64 = 0.5;

/// The route's steps; comments about them go under `path` (the route's YAML path).
pub(crate) fn build(
    route: &RouteTally,
    naming: &mut Naming,
    path: &str,
    notes: &mut Notes,
) -> Vec<Step> {
    let kept: Vec<usize> = (0..route.keys.len())
        .filter(|&k| route.keys[k].present as f64 >= RARE * route.requests as f64)
        .collect();
    let left_out = route.keys.len() - kept.len();
    if left_out > 0 {
        notes.add(
            &format!("{path}.steps"),
            format!(
                "{left_out} rare step(s) seen in under {} % of requests are left out",
                RARE * 100.0
            ),
        );
    }
    let groups = order(route, groups(route, &kept));
    let group_of: HashMap<usize, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, members)| members.iter().map(move |&k| (k, g)))
        .collect();
    let mut steps = Vec::new();
    for (g, members) in groups.iter().enumerate() {
        let reach: Vec<(usize, u64, u64)> = members
            .iter()
            .map(|&k| {
                let (present, reached) = reach(route, k, g, &group_of);
                (k, present, reached)
            })
            .collect();
        let all_calls = members
            .iter()
            .all(|&k| matches!(route.keys.get_index(k).map(|e| &e.0.0), Some(Sig::Call(_))));
        if members.len() > 1 && all_calls {
            let at = format!("{path}.steps[{}]", steps.len());
            let calls = reach
                .iter()
                .enumerate()
                .map(|(i, &(k, present, reached))| {
                    let (key, tally) = route.keys.get_index(k).expect("kept key");
                    let Sig::Call(target) = &key.0 else {
                        unreachable!("all members are calls")
                    };
                    call(
                        target,
                        tally,
                        present,
                        reached,
                        naming,
                        &format!("{at}.parallel[{i}]"),
                        notes,
                    )
                })
                .collect();
            notes.add(
                &at,
                "these calls overlapped in time in most requests".to_owned(),
            );
            steps.push(Step::Parallel(Parallel {
                calls,
                max_parallel: None,
            }));
            continue;
        }
        if members.len() > 1 {
            notes.add(
                &format!("{path}.steps[{}]", steps.len()),
                "the next steps overlapped in the traces; only calls can run side by side, so they run one after the other"
                    .to_owned(),
            );
        }
        for (k, present, reached) in reach {
            let at = format!("{path}.steps[{}]", steps.len());
            if let Some(step) = step(route, k, present, reached, naming, &at, notes) {
                steps.push(step);
            }
        }
    }
    steps
}

/// Kept steps joined into parallel groups.
fn groups(route: &RouteTally, kept: &[usize]) -> Vec<Vec<usize>> {
    let mut group: HashMap<usize, usize> = kept.iter().map(|&k| (k, k)).collect();
    fn root(group: &mut HashMap<usize, usize>, k: usize) -> usize {
        let mut r = k;
        while group[&r] != r {
            r = group[&r];
        }
        group.insert(k, r);
        r
    }
    for (&(a, b), pair) in &route.pairs {
        let (a, b) = (usize::from(a), usize::from(b));
        if group.contains_key(&a)
            && group.contains_key(&b)
            && pair.overlap as f64 > PARALLEL * pair.together as f64
        {
            let (ra, rb) = (root(&mut group, a), root(&mut group, b));
            group.insert(ra.max(rb), ra.min(rb));
        }
    }
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    for &k in kept {
        let r = root(&mut group, k);
        let g = *index.entry(r).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[g].push(k);
    }
    members
}

/// Orders groups: a group goes before another when, over the requests that ran a member of
/// each, ending before the other started was more common than the reverse; the mean start
/// breaks ties and cycles.
fn order(route: &RouteTally, mut groups: Vec<Vec<usize>>) -> Vec<Vec<usize>> {
    let offset = |g: &[usize]| {
        g.iter()
            .map(|&k| route.keys[k].offset_ms())
            .fold(f64::INFINITY, f64::min)
    };
    groups.sort_by(|a, b| offset(a).total_cmp(&offset(b)));
    let n = groups.len();
    let mut votes = vec![vec![0i64; n]; n];
    for (i, a) in groups.iter().enumerate() {
        for (j, b) in groups.iter().enumerate() {
            for &x in a {
                for &y in b {
                    let (lo, hi) = (x.min(y) as u16, x.max(y) as u16);
                    if let Some(pair) = route.pairs.get(&(lo, hi)) {
                        let (first, second) = match x < y {
                            true => (pair.before, pair.after),
                            false => (pair.after, pair.before),
                        };
                        votes[i][j] += first as i64 - second as i64;
                    }
                }
            }
        }
    }
    // Kahn's algorithm over "i must come before j", earliest mean start first.
    let before = |i: usize, j: usize| votes[i][j] > 0;
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        let ready =
            (0..n).find(|&j| !done[j] && (0..n).all(|i| done[i] || i == j || !before(i, j)));
        // A cycle (only possible with contradictory requests): take the earliest.
        let next = ready.unwrap_or_else(|| (0..n).find(|&j| !done[j]).unwrap_or(0));
        done[next] = true;
        order.push(next);
    }
    order
        .into_iter()
        .map(|g| std::mem::take(&mut groups[g]))
        .collect()
}

/// Requests that ran step `k` (of group `g`), and requests that could have.
fn reach(route: &RouteTally, k: usize, g: usize, group_of: &HashMap<usize, usize>) -> (u64, u64) {
    let k = k as u16;
    let (mut present, mut reached) = (0, 0);
    for (pattern, &count) in &route.patterns {
        if pattern.present.binary_search(&k).is_ok() {
            present += count;
            reached += count;
            continue;
        }
        let blocked = pattern.failed_before_steps
            || pattern
                .failed
                .iter()
                .any(|f| group_of.get(&usize::from(*f)).is_some_and(|&fg| fg < g));
        if !blocked {
            reached += count;
        }
    }
    let restored = route.restored.get(&k).copied().unwrap_or(0);
    (present + restored.min(reached - present), reached)
}

/// The step's own times: of the runs that ended on their own, or of all when every run was
/// cut short by a caller giving up (a lock's queue that never drained).
fn own_times<'t>(tally: &'t KeyTally, at: &str, notes: &mut Notes) -> &'t [u64] {
    let cut = tally.own_cut.seen();
    if tally.own.seen() == 0 {
        return tally.own_cut.values();
    }
    if cut > 0 {
        notes.add(
            at,
            format!(
                "{cut} runs cut short when a caller gave up (a timeout above) are left out of its \
                 time"
            ),
        );
    }
    tally.own.values()
}

/// The chance of a step, rounded; 1 when it always ran.
fn probability(present: u64, reached: u64) -> f64 {
    if reached == 0 || present >= reached {
        1.0
    } else {
        (present as f64 / reached as f64 * 1000.0).round() / 1000.0
    }
}

fn share(present: u64, reached: u64) -> String {
    format!(
        "in {present} of {reached} requests that could run it ({:.1} %)",
        100.0 * present as f64 / reached.max(1) as f64
    )
}

/// How many in a row: the most common run length of runs that did not fail.
fn repeat(tally: &KeyTally) -> (u32, String) {
    let counts = if tally.repeats.total() > 0 {
        &tally.repeats
    } else {
        &tally.repeats_any
    };
    match counts.mode() {
        Some((&n, seen)) if n > 1 => (
            n.min(tracelab_scenario::limits::MAX_REPEAT),
            format!("{n} in a row in {seen} of {} runs", counts.total()),
        ),
        _ => (1, String::new()),
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Fits a step's own time.
pub(crate) fn fit_ns(values: &[u64]) -> Fitted {
    let ms: Vec<f64> = values.iter().map(|&v| ms(v)).collect();
    fit::fit(&ms)
}

fn call(
    target: &Target,
    tally: &KeyTally,
    present: u64,
    reached: u64,
    naming: &mut Naming,
    at: &str,
    notes: &mut Notes,
) -> Call {
    let (service, route) = naming.target(target);
    let (repeat, repeat_note) = repeat(tally);
    let mut said = vec![share(present, reached)];
    if !repeat_note.is_empty() {
        said.push(repeat_note);
    }
    let timeout = timeout(tally);
    if let Some(t) = timeout {
        said.push(format!(
            "{} attempts timed out, after {:.0} ms (median)",
            tally.timeouts.seen(),
            t.as_secs_f64() * 1000.0
        ));
    }
    let retry = retry(tally);
    if let Some(r) = &retry {
        said.push(format!(
            "up to {} attempts; waits between them {} (n = {})",
            r.attempts,
            match r.jitter > 0.0 {
                true => format!(
                    "{:.1} to {:.1} ms",
                    r.backoff.as_secs_f64() * 1e3 * (1.0 - r.jitter),
                    r.backoff.as_secs_f64() * 1e3
                ),
                false => format!("{:.1} ms", r.backoff.as_secs_f64() * 1e3),
            },
            tally.retry_gaps.seen()
        ));
    }
    notes.add(at, said.join("; "));
    Call {
        service,
        route,
        probability: probability(present, reached),
        repeat,
        timeout,
        retry,
    }
}

/// The timeout of a call whose attempts timed out: the median time they gave up after.
fn timeout(tally: &KeyTally) -> Option<Duration> {
    let mut waits = tally.timeouts.values().to_vec();
    if waits.is_empty() {
        return None;
    }
    waits.sort_unstable();
    let median = waits[waits.len() / 2];
    // Whole milliseconds, as people set timeouts.
    Some(Duration::from_millis(median.div_ceil(1_000_000).max(1)))
}

/// The retry policy of a call that made more than one attempt. The lab waits a uniform draw
/// between `backoff × (1 − jitter)` and `backoff` (per doubling); measured waits add the
/// host's delays, whose tail would stretch the extremes, so the range comes from the 10th and
/// 90th percentiles (80 % of a uniform range), and from the extremes only below 10 waits.
fn retry(tally: &KeyTally) -> Option<Retry> {
    if tally.attempts < 2 {
        return None;
    }
    let mut gaps = tally.retry_gaps.values().to_vec();
    gaps.sort_unstable();
    let (lo, hi) = match gaps.len() {
        0 => (0.0, 0.0),
        n if n < 10 => (gaps[0] as f64, gaps[n - 1] as f64),
        n => {
            let at = |p: f64| gaps[((p * n as f64) as usize).min(n - 1)] as f64;
            let (q10, q90) = (at(0.1), at(0.9));
            let range = (q90 - q10) / 0.8;
            ((q10 - 0.1 * range).max(0.0), q90 + 0.1 * range)
        }
    };
    let backoff = Duration::from_micros((hi / 1000.0).round().max(1.0) as u64);
    let jitter = match hi > 0.0 {
        false => 0.0,
        true => ((1.0 - lo / hi) * 100.0).round() / 100.0,
    };
    Some(Retry {
        attempts: tally.attempts.min(tracelab_scenario::limits::MAX_ATTEMPTS),
        backoff,
        max_backoff: Duration::from_secs(5).max(backoff),
        jitter: jitter.clamp(0.0, 1.0),
    })
}

fn step(
    route: &RouteTally,
    k: usize,
    present: u64,
    reached: u64,
    naming: &mut Naming,
    at: &str,
    notes: &mut Notes,
) -> Option<Step> {
    let (key, tally) = route.keys.get_index(k)?;
    let always = || {
        (present < reached).then(|| {
            format!(
                "ran {}; a step of this kind always runs",
                share(present, reached)
            )
        })
    };
    let locked = tally.locked * 2 > tally.present;
    if locked {
        notes.add(
            at,
            "waited for a lock in most requests; a service's locked steps share one".to_owned(),
        );
    }
    let step = match &key.0 {
        Sig::Call(target) => Step::Call(call(target, tally, present, reached, naming, at, notes)),
        Sig::Work(name) => {
            let fitted = fit_ns(own_times(tally, at, notes));
            notes.latency(&format!("{at}.latency"), &fitted, "time");
            notes.maybe(at, always());
            Step::Work(Work {
                name: naming.work(name),
                latency: fitted.model,
                cpu: tally.cpu * 2 > tally.present,
                lock: locked.then(|| LOCK.to_owned()),
            })
        }
        Sig::Db {
            system,
            operation,
            collection,
        } => {
            let fitted = fit_ns(own_times(tally, at, notes));
            notes.latency(&format!("{at}.latency"), &fitted, "time per query");
            let (repeat, repeat_note) = repeat(tally);
            notes.maybe(at, always());
            if !repeat_note.is_empty() {
                notes.add(at, repeat_note);
            }
            Step::Db(Db {
                system: system.clone(),
                operation: operation.clone(),
                collection: collection.as_deref().map(|c| naming.collection(c)),
                query: naming.query(tally.query.mode().map(|(q, _)| q.as_str())),
                latency: fitted.model,
                lock: locked.then(|| LOCK.to_owned()),
                repeat,
            })
        }
        Sig::Cache(name) => {
            let fitted = fit_ns(own_times(tally, at, notes));
            notes.latency(&format!("{at}.latency"), &fitted, "lookup time");
            let Some((miss, _)) = tally.miss.mode() else {
                // A cache step needs the route it reads through; none was seen, and a lookup
                // that always hits is local work as far as the timing goes.
                notes.add(
                    at,
                    format!(
                        "cache `{name}`: {} lookups, none missed, so it is work here",
                        tally.lookups
                    ),
                );
                return Some(Step::Work(Work {
                    name: naming.work(&format!("cache.get {name}")),
                    latency: fitted.model,
                    cpu: false,
                    lock: None,
                }));
            };
            let hit_ratio = match tally.lookups {
                0 => 1.0,
                n => (tally.hits as f64 / n as f64 * 1000.0).round() / 1000.0,
            };
            notes.add(
                at,
                format!("{} hits in {} lookups", tally.hits, tally.lookups),
            );
            notes.maybe(at, always());
            let miss_call = call(miss, tally, 1, 1, naming, &format!("{at}.miss"), notes);
            Step::Cache(Cache {
                name: naming.cache(name),
                hit_ratio,
                latency: fitted.model,
                miss: miss_call,
            })
        }
        Sig::Publish(topic) => {
            let Some((consumer, seen)) = tally.consumers.mode() else {
                let steps = at.rsplit_once('[').map_or(at, |(steps, _)| steps);
                notes.add(
                    steps,
                    format!(
                        "messages to `{topic}` were published but no consumer of them was seen; \
                         the publish is left out"
                    ),
                );
                return None;
            };
            let fitted = fit_ns(tally.lag.values());
            notes.latency(
                &format!("{at}.lag"),
                &fitted,
                "time from publish to processing",
            );
            notes.add(
                at,
                format!(
                    "{seen} of {} messages processed by this route",
                    tally.present
                ),
            );
            notes.maybe(at, always());
            let (service, route) = naming.target(consumer);
            Step::Publish(Publish {
                topic: naming.topic(topic),
                consumer: Call {
                    service,
                    route,
                    probability: 1.0,
                    repeat: 1,
                    timeout: None,
                    retry: None,
                },
                lag: fitted.model,
            })
        }
    };
    Some(step)
}
