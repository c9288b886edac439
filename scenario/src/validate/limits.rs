//! The lab's explicit limits: what a scenario may ask for, checked before anything runs, so
//! that a typo (`rate: 1e12`, `interval: 1us`, `repeat: 4294967295`) is an error with a line
//! and a reason instead of a run that eats the machine. Each limit is documented in
//! scenarios/README.md; raising one is a change here and there.

use std::time::Duration;

use super::Rules;
use crate::arrival::ArrivalModel;
use crate::decode::{index, join};
use crate::model::{Call, Scenario, Step};

/// Requests per second at most, for any rate of any arrival model. Beyond this the schedule
/// itself, not the system under test, would be what a run measures.
pub const MAX_RATE: f64 = 200_000.0;

/// The longest load: a day. A soak test longer than that is better run as several.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Sequential repeats of one call (N+1) or one query, at most.
pub const MAX_REPEAT: u32 = 1_000;

/// Attempts of one call, the first included, at most.
pub const MAX_ATTEMPTS: u32 = 10;

/// Spans one request may make at most, in the worst case (every repeat, every retry attempt,
/// every cache miss): beyond this a single trace is too large for any backend to show.
pub const MAX_SPANS_PER_REQUEST: f64 = 10_000.0;

/// The shortest time between random incidents, and the shortest an incident may hold: faults
/// switched through the admin API faster than this stop being incidents and only load it.
pub const MIN_RANDOM_INTERVAL: Duration = Duration::from_millis(100);
/// See [`MIN_RANDOM_INTERVAL`].
pub const MIN_RANDOM_HOLD: Duration = Duration::from_millis(10);

/// Instances of one service at most. In `tracelab run` each is a server with its own
/// listeners and span exporter; a hundred copies of one service teach nothing three do not.
pub const MAX_REPLICAS: u32 = 64;

/// The most incidents a run may play, scripted and random together.
pub const MAX_INCIDENTS: usize = 10_000;

/// The baggage key every generated request carries; a scenario cannot set it.
const SYNTHETIC_KEY: &str = "synthetic_request";

/// The longest `baggage` header a request may carry (W3C Baggage: 8192 bytes).
const MAX_BAGGAGE_BYTES: usize = 8192;

impl Rules<'_> {
    pub(super) fn limits(&mut self, scenario: &Scenario) {
        self.rate_limits(scenario);
        self.duration_limit(scenario);
        self.repeat_limits(scenario);
        self.fan_out(scenario);
        self.incident_limits(scenario);
        self.baggage_limits(scenario);
    }

    fn rate_limits(&mut self, scenario: &Scenario) {
        let load = &scenario.load;
        let check = |rules: &mut Rules, rate: f64, path: String| {
            if rate.is_finite() && rate > MAX_RATE {
                rules.report(
                    path,
                    format!(
                        "{rate} requests per second is more than the lab's limit of {MAX_RATE}"
                    ),
                    Some("the limits are listed in scenarios/README.md".to_owned()),
                );
            }
        };
        if load.users.is_none() && load.arrival.uses_rate() {
            check(self, load.rate, "load.rate".to_owned());
        }
        match &load.arrival {
            ArrivalModel::Ramp(ramp) => {
                check(self, ramp.from, "load.arrival.ramp.from".to_owned());
                check(self, ramp.to, "load.arrival.ramp.to".to_owned());
            }
            ArrivalModel::Stages(stages) | ArrivalModel::Steps(stages) => {
                let kind = if matches!(load.arrival, ArrivalModel::Stages(_)) {
                    "stages"
                } else {
                    "steps"
                };
                for (position, stage) in stages.iter().enumerate() {
                    let path = join(&index(&join("load.arrival", kind), position), "rate");
                    check(self, stage.rate, path);
                }
            }
            ArrivalModel::Spike(spike) => {
                check(
                    self,
                    load.rate + spike.height,
                    "load.arrival.spike.height".to_owned(),
                );
            }
            ArrivalModel::Constant | ArrivalModel::Poisson => {}
        }
    }

    fn duration_limit(&mut self, scenario: &Scenario) {
        let load = &scenario.load;
        let length = match load.arrival.stages() {
            Some(stages) => stages.iter().map(|s| s.duration).sum(),
            None => load.duration,
        };
        if length > MAX_DURATION {
            self.report(
                "load.duration".to_owned(),
                format!(
                    "a load of {} is longer than the lab's limit of 24h",
                    humantime::format_duration(length)
                ),
                Some("split a longer soak into several runs".to_owned()),
            );
        }
    }

    fn repeat_limits(&mut self, scenario: &Scenario) {
        for (name, service) in &scenario.services {
            for (route_name, route) in &service.routes {
                let steps = join(
                    &join(&join(&join("services", name), "routes"), route_name),
                    "steps",
                );
                for (position, step) in route.steps.iter().enumerate() {
                    let path = index(&steps, position);
                    match step {
                        Step::Call(call) => self.call_limits(call, &path),
                        Step::Parallel(group) => {
                            for (j, call) in group.calls.iter().enumerate() {
                                self.call_limits(call, &index(&join(&path, "parallel"), j));
                            }
                        }
                        Step::Cache(cache) => self.call_limits(&cache.miss, &join(&path, "miss")),
                        Step::Publish(publish) => {
                            self.call_limits(&publish.consumer, &join(&path, "consumer"));
                        }
                        Step::Db(db) => {
                            if db.repeat > MAX_REPEAT {
                                self.report(
                                    join(&path, "repeat"),
                                    format!(
                                        "repeat {} is more than the limit of {MAX_REPEAT}",
                                        db.repeat
                                    ),
                                    None,
                                );
                            }
                        }
                        Step::Work(_) => {}
                    }
                }
            }
        }
    }

    fn call_limits(&mut self, call: &Call, path: &str) {
        if call.repeat > MAX_REPEAT {
            self.report(
                join(path, "repeat"),
                format!(
                    "repeat {} is more than the limit of {MAX_REPEAT}",
                    call.repeat
                ),
                None,
            );
        }
        if let Some(retry) = &call.retry
            && retry.attempts > MAX_ATTEMPTS
        {
            self.report(
                join(&join(path, "retry"), "attempts"),
                format!(
                    "{} attempts is more than the limit of {MAX_ATTEMPTS}",
                    retry.attempts
                ),
                Some("a retry policy with more attempts only multiplies an outage".to_owned()),
            );
        }
    }

    fn fan_out(&mut self, scenario: &Scenario) {
        for (position, entry) in scenario.load.entries.iter().enumerate() {
            let cost = scenario.max_spans(&entry.service, &entry.route);
            if cost.value > MAX_SPANS_PER_REQUEST {
                self.report(
                    index("load.entries", position),
                    format!(
                        "one request to {} {} can make up to {:.0} spans, more than the limit of \
                         {MAX_SPANS_PER_REQUEST}: {}",
                        entry.service,
                        entry.route,
                        cost.value,
                        cost.path.join(" → ")
                    ),
                    Some(
                        "lower a `repeat`, retry `attempts` or the fan-out on that path".to_owned(),
                    ),
                );
            }
        }
    }

    fn incident_limits(&mut self, scenario: &Scenario) {
        let length = match scenario.load.arrival.stages() {
            Some(stages) => stages.iter().map(|s| s.duration).sum(),
            None => scenario.load.duration,
        };
        for (position, incident) in scenario.incidents.iter().enumerate() {
            if incident.at >= length {
                self.report(
                    join(&index("incidents", position), "at"),
                    format!(
                        "the incident starts at {}, when the load of {} is over: it would never play",
                        humantime::format_duration(incident.at),
                        humantime::format_duration(length)
                    ),
                    Some("start it earlier, or make the load longer".to_owned()),
                );
            }
        }
        if let Some(random) = &scenario.random_incidents {
            if random.interval < MIN_RANDOM_INTERVAL {
                self.report(
                    "random_incidents.interval".to_owned(),
                    format!(
                        "an interval of {} is shorter than the limit of {}",
                        humantime::format_duration(random.interval),
                        humantime::format_duration(MIN_RANDOM_INTERVAL)
                    ),
                    None,
                );
            }
            if random.hold < MIN_RANDOM_HOLD {
                self.report(
                    "random_incidents.hold".to_owned(),
                    format!(
                        "a hold of {} is shorter than the limit of {}",
                        humantime::format_duration(random.hold),
                        humantime::format_duration(MIN_RANDOM_HOLD)
                    ),
                    None,
                );
            }
            let interval = random.interval.max(MIN_RANDOM_INTERVAL).as_secs_f64();
            let expected = length.as_secs_f64() / interval * 2.0;
            if expected + scenario.incidents.len() as f64 > MAX_INCIDENTS as f64 {
                self.report(
                    "random_incidents.interval".to_owned(),
                    format!(
                        "up to {expected:.0} random incidents in {}: more than the limit of {MAX_INCIDENTS}",
                        humantime::format_duration(length)
                    ),
                    None,
                );
            }
        }
    }

    fn baggage_limits(&mut self, scenario: &Scenario) {
        let mut longest = SYNTHETIC_KEY.len() + "=true".len();
        for (key, values) in &scenario.load.baggage {
            let path = join("load.baggage", key);
            if key == SYNTHETIC_KEY {
                self.report(
                    path.clone(),
                    format!("`{SYNTHETIC_KEY}` is set by the load generator on every request"),
                    Some("choose another key".to_owned()),
                );
            } else if let Some(problem) = baggage_key_problem(key) {
                self.report(
                    path.clone(),
                    format!("baggage key `{key}` {problem}"),
                    Some(
                        "W3C Baggage keys are tokens: letters, digits and !#$%&'*+-.^_`|~"
                            .to_owned(),
                    ),
                );
            }
            let value_bytes = values.keys().map(|v| encoded_len(v)).max().unwrap_or(0);
            longest += 1 + key.len() + 1 + value_bytes;
        }
        if longest > MAX_BAGGAGE_BYTES {
            self.report(
                "load.baggage".to_owned(),
                format!(
                    "a request's baggage header could be {longest} bytes, more than the {MAX_BAGGAGE_BYTES} W3C Baggage allows"
                ),
                None,
            );
        }
    }
}

/// Why `key` is not a W3C Baggage key (an RFC 7230 token), if it is not.
pub(super) fn baggage_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("is empty");
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if key.bytes().all(token) {
        None
    } else {
        Some("has characters a baggage key cannot hold")
    }
}

/// The length of `value` once percent-encoded for the header.
fn encoded_len(value: &str) -> usize {
    value
        .bytes()
        .map(|b| {
            let plain = b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\' | b'%');
            if plain { 1 } else { 3 }
        })
        .sum()
}
