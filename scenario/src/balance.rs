//! Which instance of a service a call reaches: the balancing policies of [`Balance`], with
//! every choice drawn from the scenario seed like every other decision of a run.
//!
//! A [`Balancer`] is what one caller (a service instance, or the load generator) keeps for
//! one callee. Its choice for a call depends on the callee's policy, the call's place (who
//! calls, from where in the request) and the load generator's number for the request, so the
//! same seed sends the same request to the same instance again, whatever the thread timing.
//! The one exception is `least_requests`: its two candidates are drawn from the seed, but which
//! of them wins depends on the calls in flight at that moment, as it does in a real balancer.
//! Calls that did not come from the load generator (a `curl` by hand) have no number; they
//! take turns by a counter, or draw from an unseeded generator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rand::Rng;
use rand::seq::SliceRandom;

use crate::model::Balance;
use crate::seed;

/// One caller's balancing state for one callee.
#[derive(Debug)]
pub struct Balancer {
    policy: Balance,
    seed: u64,
    callee: String,
    instances: usize,
    /// Turns of the calls without a load-generator number (round robin by counter).
    turns: AtomicU64,
    /// This caller's calls in flight to each instance, read by `least_requests`.
    in_flight: Arc<[AtomicUsize]>,
}

/// Where one call is made from: what the choice is drawn from besides the seed.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Who calls: a service's name, or `loadgen`.
    pub caller: &'a str,
    /// Where in the request the call is made (the call's position in the call tree, or the
    /// entry route for the load generator): calls from different places balance independently.
    pub site: &'a str,
    /// The load generator's number of the request; `None` for traffic from elsewhere.
    pub sequence: Option<u64>,
    /// The value of the `sticky` policy's baggage key in the request, if it carries one.
    pub sticky: Option<&'a str>,
}

impl Balancer {
    /// A balancer over `instances` instances of `callee` (at least one is assumed).
    pub fn new(policy: Balance, seed: u64, callee: &str, instances: usize) -> Self {
        let instances = instances.max(1);
        Balancer {
            policy,
            seed,
            callee: callee.to_owned(),
            instances,
            turns: AtomicU64::new(0),
            in_flight: (0..instances).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// How many instances the choice is among.
    pub fn instances(&self) -> usize {
        self.instances
    }

    /// The baggage key a `sticky` policy reads, if that is the policy.
    pub fn sticky_key(&self) -> Option<&str> {
        match &self.policy {
            Balance::Sticky(key) => Some(key),
            Balance::RoundRobin | Balance::Random | Balance::LeastRequests => None,
        }
    }

    /// The instance (an index below [`Balancer::instances`]) `call` goes to. With one
    /// instance nothing is drawn.
    pub fn choose(&self, call: &Call) -> usize {
        let n = self.instances;
        if n == 1 {
            return 0;
        }
        match &self.policy {
            Balance::RoundRobin => self.in_turn(call),
            Balance::Random => self.draws(call, b"random").random_range(0..n),
            Balance::LeastRequests => {
                let mut rng = self.draws(call, b"least_requests");
                let first = rng.random_range(0..n);
                // The second candidate is drawn among the others, so the two always differ.
                let second = (first + rng.random_range(1..n)) % n;
                let load = |i: usize| self.in_flight[i].load(Ordering::Relaxed);
                if load(second) < load(first) {
                    second
                } else {
                    first
                }
            }
            Balance::Sticky(_) => match call.sticky {
                Some(value) => {
                    let hash = seed::derive_seed(
                        self.seed,
                        &[b"balance/sticky", self.callee.as_bytes(), value.as_bytes()],
                    );
                    (hash % n as u64) as usize
                }
                None => self.in_turn(call),
            },
        }
    }

    /// Counts a call to `instance` as in flight until the returned guard is dropped.
    pub fn start(&self, instance: usize) -> InFlight {
        let counters = self.in_flight.clone();
        if let Some(counter) = counters.get(instance) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        InFlight { counters, instance }
    }

    /// Round robin: the requests are cut into blocks of N consecutive numbers, and each block
    /// visits every instance once, in an order shuffled from the seed for this block and this
    /// call's place. A fixed order would pair instance i of every caller with instance i + k
    /// of every callee, which no real system does.
    fn in_turn(&self, call: &Call) -> usize {
        let n = self.instances as u64;
        let Some(sequence) = call.sequence else {
            return (self.turns.fetch_add(1, Ordering::Relaxed) % n) as usize;
        };
        let block = sequence / n;
        let mut order: Vec<usize> = (0..self.instances).collect();
        let mut rng = seed::rng(
            self.seed,
            &[
                b"balance/round_robin",
                self.callee.as_bytes(),
                call.caller.as_bytes(),
                call.site.as_bytes(),
                &block.to_le_bytes(),
            ],
        );
        order.shuffle(&mut rng);
        order[(sequence % n) as usize]
    }

    /// The stream of a drawn choice for `call`.
    fn draws(&self, call: &Call, policy: &[u8]) -> seed::DrawRng {
        match call.sequence {
            Some(sequence) => seed::rng(
                self.seed,
                &[
                    b"balance",
                    policy,
                    self.callee.as_bytes(),
                    call.caller.as_bytes(),
                    call.site.as_bytes(),
                    &sequence.to_le_bytes(),
                ],
            ),
            None => {
                let mut fresh = rand::rng();
                seed::rng(fresh.random(), &[])
            }
        }
    }
}

/// A call in flight to one instance; dropping it ends the call for `least_requests`.
#[derive(Debug)]
pub struct InFlight {
    counters: Arc<[AtomicUsize]>,
    instance: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(counter) = self.counters.get(self.instance) {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(sequence: u64) -> Call<'static> {
        Call {
            caller: "api",
            site: "0-0-0",
            sequence: Some(sequence),
            sticky: None,
        }
    }

    fn counts(balancer: &Balancer, calls: impl Iterator<Item = u64>) -> Vec<usize> {
        let mut counts = vec![0; balancer.instances()];
        for sequence in calls {
            counts[balancer.choose(&call(sequence))] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_visits_every_instance_once_per_block_in_a_seeded_order() {
        let balancer = Balancer::new(Balance::RoundRobin, 7, "db", 3);
        for block in 0..50u64 {
            let mut seen: Vec<usize> = (0..3)
                .map(|i| balancer.choose(&call(block * 3 + i)))
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, [0, 1, 2], "block {block}");
        }
        let order = |b: &Balancer| (0..30).map(|s| b.choose(&call(s))).collect::<Vec<_>>();
        assert_eq!(
            order(&balancer),
            order(&Balancer::new(Balance::RoundRobin, 7, "db", 3))
        );
        assert_ne!(
            order(&balancer),
            order(&Balancer::new(Balance::RoundRobin, 8, "db", 3))
        );
        let other_site = Call {
            site: "1-0-0",
            ..call(0)
        };
        let differs = (0..30).any(|s| {
            balancer.choose(&Call {
                sequence: Some(s),
                ..other_site
            }) != balancer.choose(&call(s))
        });
        assert!(differs, "each call site has its own order");
    }

    #[test]
    fn one_instance_is_always_the_choice() {
        for policy in [Balance::RoundRobin, Balance::Random, Balance::LeastRequests] {
            let balancer = Balancer::new(policy, 1, "db", 1);
            assert!((0..20).all(|s| balancer.choose(&call(s)) == 0));
        }
    }

    #[test]
    fn random_is_seeded_and_spreads() {
        let balancer = Balancer::new(Balance::Random, 3, "db", 4);
        let first = counts(&balancer, 0..4000);
        assert_eq!(
            first,
            counts(&Balancer::new(Balance::Random, 3, "db", 4), 0..4000)
        );
        assert!(first.iter().all(|&c| (850..1150).contains(&c)), "{first:?}");
    }

    #[test]
    fn least_requests_avoids_the_busy_instance() {
        let balancer = Balancer::new(Balance::LeastRequests, 5, "db", 3);
        let busy: Vec<InFlight> = (0..10).map(|_| balancer.start(1)).collect();
        let spread = counts(&balancer, 0..3000);
        assert_eq!(
            spread[1], 0,
            "never the busier of two candidates: {spread:?}"
        );
        assert!(spread[0] > 1200 && spread[2] > 1200, "{spread:?}");
        drop(busy);
        let spread = counts(&balancer, 0..3000);
        assert!(spread.iter().all(|&c| c > 500), "{spread:?}");
    }

    #[test]
    fn sticky_keeps_a_value_on_one_instance() {
        let balancer = Balancer::new(Balance::Sticky("session".into()), 2, "cart", 5);
        assert_eq!(balancer.sticky_key(), Some("session"));
        let with = |value: &'static str, sequence| Call {
            sticky: Some(value),
            ..call(sequence)
        };
        for value in ["alice", "bob", "carol"] {
            let first = balancer.choose(&with(value, 0));
            assert!((1..100).all(|s| balancer.choose(&with(value, s)) == first));
        }
        let reached: std::collections::BTreeSet<usize> = (0..100)
            .map(|i| {
                let value = format!("user{i}");
                balancer.choose(&Call {
                    sticky: Some(&value),
                    ..call(0)
                })
            })
            .collect();
        assert_eq!(reached.len(), 5, "values spread over every instance");
        let mut without = counts(&balancer, 0..300);
        without.dedup();
        assert_eq!(without, [60], "without the key, calls take turns");
    }

    #[test]
    fn calls_from_elsewhere_take_turns() {
        let balancer = Balancer::new(Balance::RoundRobin, 1, "db", 3);
        let unnumbered = Call {
            sequence: None,
            ..call(0)
        };
        let turns: Vec<usize> = (0..6).map(|_| balancer.choose(&unnumbered)).collect();
        assert_eq!(turns, [0, 1, 2, 0, 1, 2]);
    }
}
