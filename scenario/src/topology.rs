//! What one request can cost, read off the call graph: the most downstream calls it can have
//! open at once (each a socket pair in a lab that runs on one machine), and the most spans it
//! can make (repeats × retry attempts × fan-out, all the way down), or makes on average.
//!
//! The first two are worst cases, computed without drawing anything: probabilities count as 1,
//! every retry attempt as made, every cache lookup as a miss. The average takes probabilities
//! and hit ratios as written and no retries (they add spans only where attempts fail). Validation bounds the second, so that
//! a scenario cannot ask for a billion spans per request; the lab sizes its connections with
//! the first. Call cycles are refused by validation; a cycle met here counts as nothing more,
//! so these functions terminate on any scenario.

use std::collections::HashMap;

use crate::model::{Call, Scenario, Step};

/// The worst case of one route, with the chain of steps that makes it so.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// The number (of spans, or of calls open at once).
    pub value: f64,
    /// The heaviest path from the route down, for messages: `api /a → steps[1] ×20 → db /q`.
    pub path: Vec<String>,
}

impl Scenario {
    /// The most spans one request to `service` `route` can make, the route's SERVER span
    /// included (0 for a route that does not exist).
    pub fn max_spans(&self, service: &str, route: &str) -> Cost {
        let mut memo = HashMap::new();
        spans(
            self,
            service,
            route,
            Count::Most,
            &mut memo,
            &mut Vec::new(),
        )
    }

    /// The spans one request to `service` `route` makes on average, the route's SERVER span
    /// included: calls weighted by their probability and repeats, cache misses by their ratio,
    /// no retries. The lab's span pipeline is sized by it.
    pub fn expected_spans(&self, service: &str, route: &str) -> f64 {
        let mut memo = HashMap::new();
        spans(
            self,
            service,
            route,
            Count::Expected,
            &mut memo,
            &mut Vec::new(),
        )
        .value
    }

    /// The most downstream calls one request to `service` `route` can have open at the same
    /// moment, over the whole tree below it.
    pub fn max_open_calls(&self, service: &str, route: &str) -> f64 {
        let mut memo = HashMap::new();
        open_calls(self, service, route, &mut memo, &mut Vec::new())
    }
}

type Key = (String, String);

/// Which count of spans: the most a request can make, or what it makes on average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    Most,
    Expected,
}

fn spans(
    scenario: &Scenario,
    service: &str,
    route: &str,
    count: Count,
    memo: &mut HashMap<Key, Cost>,
    stack: &mut Vec<Key>,
) -> Cost {
    let key = (service.to_owned(), route.to_owned());
    if let Some(known) = memo.get(&key) {
        return known.clone();
    }
    let Some(definition) = scenario.route(service, route) else {
        return Cost {
            value: 0.0,
            path: Vec::new(),
        };
    };
    if stack.contains(&key) {
        return Cost {
            value: 0.0,
            path: Vec::new(),
        };
    }
    stack.push(key.clone());
    let pool_wait = scenario
        .services
        .get(service)
        .is_some_and(|s| s.concurrency.is_some());
    // The SERVER span, and the worker-pool wait span of a service with a concurrency limit.
    let mut total = 1.0 + f64::from(u8::from(pool_wait));
    let mut heaviest: Option<(f64, Vec<String>)> = None;
    for (index, step) in definition.steps.iter().enumerate() {
        let (cost, path) = match step {
            Step::Work(_) => (1.0, Vec::new()),
            Step::Db(db) => (f64::from(db.repeat.max(1)), Vec::new()),
            Step::Call(call) => call_spans(scenario, call, count, memo, stack),
            Step::Parallel(group) => {
                let mut sum = 0.0;
                let mut worst: Option<(f64, Vec<String>)> = None;
                for call in &group.calls {
                    let (cost, path) = call_spans(scenario, call, count, memo, stack);
                    sum += cost;
                    if worst.as_ref().is_none_or(|(w, _)| cost > *w) {
                        worst = Some((cost, path));
                    }
                }
                (sum, worst.map(|(_, p)| p).unwrap_or_default())
            }
            Step::Cache(cache) => {
                let (cost, path) = call_spans(scenario, &cache.miss, count, memo, stack);
                let misses = match count {
                    Count::Most => 1.0,
                    Count::Expected => 1.0 - cache.hit_ratio,
                };
                (1.0 + misses * cost, path)
            }
            Step::Publish(publish) => {
                let (cost, path) = call_spans(scenario, &publish.consumer, count, memo, stack);
                // The PRODUCER span; the consumer's tree replaces the CLIENT span of a call.
                (cost, path)
            }
        };
        total += cost;
        if heaviest.as_ref().is_none_or(|(w, _)| cost > *w) {
            let mut here = vec![format!("steps[{index}]")];
            here.extend(path);
            heaviest = Some((cost, here));
        }
    }
    stack.pop();
    let mut path = vec![format!("{service} {route}")];
    if let Some((_, rest)) = heaviest {
        path.extend(rest);
    }
    let cost = Cost { value: total, path };
    memo.insert(key, cost.clone());
    cost
}

/// One call with its repeats and retry attempts (or, on average, its repeats times its
/// probability): a CLIENT span and the callee's tree each.
fn call_spans(
    scenario: &Scenario,
    call: &Call,
    count: Count,
    memo: &mut HashMap<Key, Cost>,
    stack: &mut Vec<Key>,
) -> (f64, Vec<String>) {
    let times = match count {
        Count::Most => times(call),
        Count::Expected => call.probability * f64::from(call.repeat.max(1)),
    };
    let callee = spans(scenario, &call.service, &call.route, count, memo, stack);
    let mut path = Vec::new();
    if times > 1.0 {
        path.push(format!("×{times}"));
    }
    path.extend(callee.path);
    (times * (1.0 + callee.value), path)
}

/// How many times a call is made at most: its repeats times its attempts.
fn times(call: &Call) -> f64 {
    let attempts = call.retry.as_ref().map(|r| r.attempts.max(1)).unwrap_or(1);
    f64::from(call.repeat.max(1)) * f64::from(attempts)
}

fn open_calls(
    scenario: &Scenario,
    service: &str,
    route: &str,
    memo: &mut HashMap<Key, f64>,
    stack: &mut Vec<Key>,
) -> f64 {
    let key = (service.to_owned(), route.to_owned());
    if let Some(known) = memo.get(&key) {
        return *known;
    }
    let Some(definition) = scenario.route(service, route) else {
        return 0.0;
    };
    if stack.contains(&key) {
        return 0.0;
    }
    stack.push(key.clone());
    let one_call = |call: &Call, memo: &mut HashMap<Key, f64>, stack: &mut Vec<Key>| -> f64 {
        // Repeats and attempts follow one another: one call open at a time, plus what its
        // callee has open below it.
        1.0 + open_calls(scenario, &call.service, &call.route, memo, stack)
    };
    let mut worst: f64 = 0.0;
    for step in &definition.steps {
        let open = match step {
            Step::Work(_) | Step::Db(_) => 0.0,
            Step::Call(call) => one_call(call, memo, stack),
            Step::Cache(cache) => one_call(&cache.miss, memo, stack),
            // The consumer runs later, outside this request: it holds its own call open while
            // this request goes on, so it counts as open beside the rest.
            Step::Publish(publish) => one_call(&publish.consumer, memo, stack),
            Step::Parallel(group) => {
                let mut each: Vec<f64> = group
                    .calls
                    .iter()
                    .map(|call| one_call(call, memo, stack))
                    .collect();
                each.sort_by(|a, b| b.total_cmp(a));
                let at_once = group
                    .max_parallel
                    .map(|m| m.max(1) as usize)
                    .unwrap_or(each.len());
                each.iter().take(at_once).sum()
            }
        };
        worst = worst.max(open);
    }
    stack.pop();
    memo.insert(key, worst);
    worst
}

#[cfg(test)]
mod tests {
    const SCENARIO: &str = "\
services:
  api:
    routes:
      /a:
        steps:
          - work: prepare
            latency: 1ms
          - parallel:
              - {call: db, route: /q, repeat: 3}
              - {call: db, route: /q, retry: {attempts: 2}}
      /b:
        steps:
          - {call: api, route: /c, repeat: 20}
      /c:
        steps:
          - {call: db, route: /q}
  db:
    routes:
      /q:
        steps:
          - {db: postgresql, operation: SELECT, latency: 1ms, repeat: 2}
load:
  rate: 1
  duration: 1s
  entries:
    - {service: api, route: /a}
";

    #[test]
    fn spans_count_repeats_attempts_and_fan_out() {
        let scenario = crate::parse(SCENARIO, "t.yaml").expect("valid");
        // db /q: SERVER + 2 queries = 3. A call to it: CLIENT + 3 = 4.
        assert_eq!(scenario.max_spans("db", "/q").value, 3.0);
        // api /a: SERVER + work + 3 × 4 + 2 × 4 = 1 + 1 + 12 + 8.
        let a = scenario.max_spans("api", "/a");
        assert_eq!(a.value, 22.0);
        assert_eq!(a.path, ["api /a", "steps[1]", "×3", "db /q", "steps[0]"]);
        // api /b: SERVER + 20 × (CLIENT + api /c (SERVER + CLIENT + 3)).
        assert_eq!(scenario.max_spans("api", "/b").value, 1.0 + 20.0 * 6.0);
    }

    #[test]
    fn expected_spans_weigh_calls_by_probability_and_leave_retries_out() {
        let scenario = crate::parse(
            &SCENARIO.replace(
                "{call: db, route: /q, retry: {attempts: 2}}",
                "{call: db, route: /q, retry: {attempts: 2}, probability: 0.25}",
            ),
            "t.yaml",
        )
        .expect("valid");
        // api /a: SERVER + work + 3 × 4 + 0.25 × 4 (one attempt, a quarter of the time).
        assert_eq!(scenario.expected_spans("api", "/a"), 1.0 + 1.0 + 12.0 + 1.0);
        assert_eq!(scenario.max_spans("api", "/a").value, 22.0);
        assert_eq!(scenario.expected_spans("api", "/nowhere"), 0.0);
    }

    #[test]
    fn open_calls_add_up_in_parallel_and_down_the_tree() {
        let scenario = crate::parse(SCENARIO, "t.yaml").expect("valid");
        assert_eq!(scenario.max_open_calls("api", "/a"), 2.0);
        assert_eq!(scenario.max_open_calls("api", "/b"), 2.0);
        assert_eq!(scenario.max_open_calls("db", "/q"), 0.0);
    }
}
