//! `tracelab import`: a runnable scenario from traces of a real system, so that an incident
//! seen in production can be replayed, changed (a timeout, a retry policy, a slower
//! dependency) and compared in the lab.
//!
//! The traces are read one at a time ([`Importer::add`]) and only counts and bounded samples
//! are kept, so an import's memory does not grow with the number of traces. From them
//! [`Importer::finish`] infers:
//! - services and routes (SERVER and CONSUMER spans; the route from `http.route` or the span
//!   name), with each route's method, its own (self) time fitted to the lab's latency models,
//!   and its own failure rate and status;
//! - each route's steps: calls (CLIENT → SERVER pairs), parallel groups (calls that overlap in
//!   time), `repeat` (the same call several times in a row), probabilities (how often a step
//!   ran when it could), timeouts and retries (from failed attempts), and `db`, `cache`,
//!   `publish` and `work` steps from the semantic-convention attributes;
//! - the load: entry routes and their mix, the rate, and even or random arrivals, from the
//!   spans where requests entered; baggage from the entry spans;
//! - incidents: a stretch of time where a route failed more, took longer or ran on a clock
//!   that was off (`timeline`), and where a service lost the trace context (its calls started
//!   traces of their own, [`tally::Tallies::settle_client_roots`]).
//!
//! The result comes with comments saying where each number came from ([`Imported::to_yaml`])
//! and always passes the scenario's own validation.
//!
//! Layout:
//! - `observe`: one trace, read as requests to routes and their steps.
//! - `tally`: what is kept across traces (counts, bounded samples, step patterns).
//! - `timeline`: each route's failures, own time and clock over time, and the stretch of an
//!   incident.
//! - `steps`: a route's steps from its tallies: groups, order, probabilities, retries.
//! - `fit`: the latency models fitted to measured times, with their KS distance.
//! - `load`: entries, rate, arrivals, baggage.
//! - `naming` and `names`: valid names, and the placeholders of `--anonymize`.
//! - `attrs`: the semantic-convention attributes read.
//! - `notes`: the comments; `emit`: the commented YAML.

mod attrs;
mod emit;
mod fit;
mod load;
mod names;
mod naming;
mod notes;
mod observe;
mod steps;
mod tally;
mod timeline;

use std::time::Duration;

use indexmap::IndexMap;
use tracelab_scenario::{
    Diagnostics, ErrorModel, Fault, FaultKind, Incident, LatencyFault, LatencyModel, Route,
    Scenario, Service, Step,
};
use tracelab_trace::Trace;

pub use notes::Notes;

use naming::Naming;
use tally::Tallies;
use timeline::{Change, Found};

/// How to write the scenario.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The scenario's name.
    pub name: String,
    /// Replace every name from the traces by a placeholder.
    pub anonymize: bool,
    /// Where the traces came from, for the header (file names, formats).
    pub sources: Vec<String>,
    /// Where the scenario will be written, for the header's "run it with" line.
    pub output: Option<String>,
}

/// Why no scenario could be made.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// No trace showed a request entering a route.
    #[error(
        "none of the {traces} traces shows a request entering a service: a scenario needs \
         SERVER (or CONSUMER) spans, or root spans standing for requests"
    )]
    NoRequests {
        /// Traces read.
        traces: u64,
    },
    /// The inferred scenario broke one of the scenario's rules: a bug of the import.
    #[error("the imported scenario is not valid (please report this): {0}")]
    Invalid(Diagnostics),
}

/// Reads traces and infers a scenario from them.
#[derive(Debug)]
pub struct Importer {
    tallies: Tallies,
}

impl Default for Importer {
    fn default() -> Self {
        Self::new()
    }
}

/// The inferred scenario and its comments.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The scenario.
    pub scenario: Scenario,
    /// Comments by YAML path.
    pub notes: Notes,
    /// The file's opening comment.
    pub header: Vec<String>,
    /// Traces read.
    pub traces: u64,
    /// Spans read.
    pub spans: u64,
}

impl Importer {
    /// An importer that has read nothing.
    pub fn new() -> Self {
        Importer {
            tallies: Tallies::new(),
        }
    }

    /// Reads one trace.
    pub fn add(&mut self, trace: &Trace) {
        self.tallies.add(observe::observe(trace), trace.spans.len());
    }

    /// Traces read so far.
    pub fn traces(&self) -> u64 {
        self.tallies.traces
    }

    /// The scenario the traces describe.
    pub fn finish(self, options: &ImportOptions) -> Result<Imported, ImportError> {
        let mut tallies = self.tallies;
        let lost = tallies.settle_client_roots();
        if tallies.entries.total() == 0 {
            return Err(ImportError::NoRequests {
                traces: tallies.traces,
            });
        }
        let mut naming = Naming::new(options.anonymize);
        let mut notes = Notes::default();
        // Names are given in the order routes were first seen, entries first.
        for target in tallies.entries.0.keys().chain(tallies.routes.keys()) {
            naming.target(target);
        }
        let mut services: IndexMap<String, Service> = IndexMap::new();
        // Incidents are timed from the first request that entered.
        let origin = tallies.entry_starts.iter().copied().min().unwrap_or(0);
        let mut incidents = Vec::new();
        for (target, tally) in &tallies.routes {
            let (service, path) = naming.target(target);
            let at = format!("services.{service}.routes.{path}");
            let changes = tally.timeline.changes();
            // While the service lost the trace context, its own time holds its calls.
            let lost_while = lost
                .iter()
                .find(|l| l.service == target.service)
                .map(|l| (l.first.saturating_sub(lead_ns(tally)), l.last));
            if let Some(l) = lost.iter().find(|l| l.service == target.service) {
                for (&k, &n) in &tally.restored {
                    if let Some(((observe::Sig::Call(callee), _), _)) =
                        tally.keys.get_index(usize::from(k))
                    {
                        let (callee_service, callee_route) = naming.target(callee);
                        notes.add(
                            &format!("{at}.steps"),
                            format!(
                                "{n} calls to {callee_service} {callee_route} are counted as this \
                                 route's: they started traces of their own while {} lost the \
                                 trace context",
                                naming.service(&l.service)
                            ),
                        );
                    }
                }
            }
            let route = route(tally, &changes, lost_while, &mut naming, &at, &mut notes);
            for found in &changes {
                // One clock per service: its other routes saw the same.
                let clock_known = matches!(found.change, Change::Skewed { .. })
                    && incidents.iter().any(|i: &Incident| {
                        i.fault.service == service
                            && matches!(i.fault.kind, FaultKind::ClockSkew { .. })
                    });
                if clock_known {
                    continue;
                }
                let at = format!("incidents[{}]", incidents.len());
                incidents.push(incident(
                    tally,
                    found,
                    (&service, &path),
                    origin,
                    &at,
                    &mut notes,
                ));
            }
            if tally.synthetic {
                notes.add(
                    &at,
                    "recorded no spans: its callers' CLIENT spans stand for it".to_owned(),
                );
            }
            let entry = services.entry(service.clone()).or_insert_with(|| Service {
                version: "1.0.0".to_owned(),
                replicas: 1,
                balance: Default::default(),
                instances: IndexMap::new(),
                routes: IndexMap::new(),
                concurrency: None,
            });
            entry.routes.insert(path, route);
        }
        for (original, versions) in &tallies.versions {
            let service = naming.service(original);
            if let (Some(entry), Some((version, _)), false) = (
                services.get_mut(&service),
                versions.mode(),
                naming.anonymized(),
            ) {
                entry.version = version.clone();
            }
        }
        for (original, &limit) in &tallies.pool_limits {
            let service = naming.service(original);
            if let Some(entry) = services.get_mut(&service) {
                entry.concurrency = Some(limit);
                notes.add(
                    &format!("services.{service}.concurrency"),
                    "its requests waited for a worker pool of this size".to_owned(),
                );
            }
        }
        for l in &lost {
            let at = format!("incidents[{}]", incidents.len());
            let lead = tallies
                .routes
                .iter()
                .filter(|(t, _)| t.service == l.service)
                .map(|(_, r)| lead_ns(r))
                .max()
                .unwrap_or(0);
            let calls: Vec<String> = l
                .calls
                .0
                .iter()
                .map(|(target, n)| {
                    let (service, route) = naming.target(target);
                    format!("{n} to {service} {route}")
                })
                .collect();
            let service = naming.service(&l.service);
            incidents.push(lost_context(
                l,
                lead,
                origin,
                (service, calls),
                &at,
                &mut notes,
            ));
        }
        break_cycles(&mut services, &mut notes);
        let load = load::build(&tallies, &mut naming, &mut notes);
        let scenario = Scenario {
            name: options.name.clone(),
            description: None,
            seed: 1,
            services,
            load,
            incidents,
            random_incidents: None,
        };
        scenario.validate().map_err(ImportError::Invalid)?;
        Ok(Imported {
            header: header(options, &tallies),
            scenario,
            notes,
            traces: tallies.traces,
            spans: tallies.spans,
        })
    }
}

impl Imported {
    /// The scenario as a commented YAML file, which reads back as [`Imported::scenario`].
    pub fn to_yaml(&self) -> String {
        emit::yaml(&self.scenario, &self.notes, &self.header)
    }
}

/// One route from its tallies; `changes` are its incidents, left out of its latency and
/// error rate, as is the time `lost_while` (ns) its service lost the trace context.
fn route(
    tally: &tally::RouteTally,
    changes: &[Found],
    lost_while: Option<(u64, u64)>,
    naming: &mut Naming,
    at: &str,
    notes: &mut Notes,
) -> Route {
    let method = match tally.methods.mode() {
        Some((method, _)) => method.clone(),
        None => "GET".to_owned(),
    };
    let slower = changes
        .iter()
        .find(|f| matches!(f.change, Change::Slower { .. }));
    let fitted = steps::fit_ns(&self_times(tally, |start| {
        slower.is_none_or(|f| !f.covers(start))
            && lost_while.is_none_or(|(a, b)| !(a..=b).contains(&start))
    }));
    notes.add(at, format!("{} requests", tally.requests));
    let what = match slower.is_some() || lost_while.is_some() {
        true => "own time (self time) outside the incidents below",
        false => "own time (self time)",
    };
    notes.latency(&format!("{at}.latency"), &fitted, what);
    let failures = changes
        .iter()
        .find(|f| matches!(f.change, Change::Errors { .. }));
    // Outside an incident of failures, the route's failures are those of the rest.
    let (own_errors, requests, statuses) = match failures {
        Some(found) => (
            found.exterior.own_errors,
            found.exterior.requests,
            &found.exterior.statuses,
        ),
        None => (tally.own_errors, tally.requests, &tally.statuses),
    };
    let errors = (own_errors > 0).then(|| {
        let rate = own_errors as f64 / requests.max(1) as f64;
        let status = statuses.mode().map_or(500, |(&s, _)| s).clamp(400, 599);
        let listed: Vec<String> = statuses
            .0
            .iter()
            .map(|(status, count)| format!("{status} × {count}"))
            .collect();
        notes.add(
            &format!("{at}.errors"),
            format!(
                "{own_errors} of {requests} requests{} failed on their own, no step failing \
                 ({:.2} %); statuses {}",
                match failures {
                    Some(_) => " away from the incident below",
                    None => "",
                },
                rate * 100.0,
                match listed.is_empty() {
                    true => "not recorded".to_owned(),
                    false => listed.join(", "),
                }
            ),
        );
        ErrorModel {
            rate: round4(rate),
            status,
        }
    });
    if tally.unpatterned > 0 {
        notes.add(
            &format!("{at}.steps"),
            format!(
                "{} requests with unusual step patterns are left out of the probabilities",
                tally.unpatterned
            ),
        );
    }
    Route {
        method,
        latency: fitted.model,
        errors,
        steps: steps::build(tally, naming, at, notes),
    }
}

/// `x` to four decimals.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The route's sampled own times of the requests whose start `keep` accepts, ns.
fn self_times(tally: &tally::RouteTally, keep: impl Fn(u64) -> bool) -> Vec<u64> {
    tally
        .self_time
        .values()
        .iter()
        .zip(tally.self_time_starts.values())
        .filter(|&(_, &start)| keep(start))
        .map(|(&ns, _)| ns)
        .collect()
}

/// An incident of one route, from a stretch where it behaved differently: failures become an
/// `error` fault, requests cut short by their callers a `hang`, slower requests a latency
/// that replaces the route's own for the stretch.
fn incident(
    tally: &tally::RouteTally,
    found: &Found,
    (service, path): (&str, &str),
    origin: u64,
    at: &str,
    notes: &mut Notes,
) -> Incident {
    let (inside, outside) = (&found.inside, &found.outside);
    let start = found.start_ns.max(origin);
    let window = format!(
        "between +{:.2} s and +{:.2} s",
        (start - origin) as f64 / 1e9,
        found.end_ns.saturating_sub(origin) as f64 / 1e9
    );
    let (kind, what, evidence) = match found.change {
        Change::Errors {
            rate_in: _,
            rate_out: _,
            status,
            log_lr,
        } => {
            let status = status.unwrap_or(500).clamp(400, 599);
            // The rates away from the stretch's edges, where requests from before and after
            // mix in; the fault's on top of the route's own rate (a request fails when either
            // draw says so).
            let (interior, exterior) = (&found.interior, &found.exterior);
            let rate_in = interior.own_errors as f64 / interior.requests.max(1) as f64;
            let rate_out = exterior.own_errors as f64 / exterior.requests.max(1) as f64;
            let rate = round4(((rate_in - rate_out) / (1.0 - rate_out)).clamp(0.0, 1.0));
            (
                FaultKind::Error { rate, status },
                format!(
                    "{service} {path} fails {:.0} % of its requests ({status})",
                    rate_in * 100.0
                ),
                format!(
                    "own failures {} of {} ({:.1} % away from the edges), against {} of {} \
                     ({:.1} % away from the edges) the rest of the time; log likelihood ratio \
                     {log_lr:.0}",
                    inside.own_errors,
                    inside.requests,
                    rate_in * 100.0,
                    outside.own_errors,
                    outside.requests,
                    rate_out * 100.0
                ),
            )
        }
        Change::Skewed { offset_ms, z } => (
            FaultKind::ClockSkew {
                offset_ms: (offset_ms * 10.0).round() / 10.0,
            },
            format!(
                "the clock of {service} is {} {}",
                fmt_ms(offset_ms.abs()),
                match offset_ms > 0.0 {
                    true => "fast",
                    false => "slow",
                }
            ),
            format!(
                "its spans lay {} after its callers' on average, against {} the rest of the \
                 time ({z:.0} standard errors)",
                fmt_ms(offset_ms + found.outside.mean_offset_ms()),
                fmt_ms(found.outside.mean_offset_ms()),
            ),
        ),
        Change::Slower {
            mean_in_ms,
            mean_out_ms,
            cut_share,
            z,
        } => {
            let evidence = format!(
                "mean own time {} over {} requests, against {} the rest of the time ({z:.0} \
                 standard errors); {:.0} % cut short when a caller gave up",
                fmt_ms(mean_in_ms),
                inside.requests,
                fmt_ms(mean_out_ms),
                cut_share * 100.0
            );
            if cut_share >= 0.5 {
                (
                    FaultKind::Hang,
                    format!("{service} {path} does not answer before its callers give up"),
                    evidence,
                )
            } else {
                let during = self_times(tally, |s| found.covers(s));
                let model = match during.len() >= 20 {
                    true => steps::fit_ns(&during).model,
                    false => LatencyModel::Constant {
                        ms: round4(mean_in_ms),
                    },
                };
                (
                    FaultKind::Latency(LatencyFault::Replace(model)),
                    format!(
                        "{service} {path} takes {} instead of {}",
                        fmt_ms(mean_in_ms),
                        fmt_ms(mean_out_ms)
                    ),
                    evidence,
                )
            }
        }
    };
    notes.add(
        at,
        format!(
            "inferred from the traces: {} requests {window}: {evidence}",
            inside.requests
        ),
    );
    Incident {
        at: Duration::from_millis(((start - origin) as f64 / 1e6).round() as u64),
        duration: Duration::from_millis(
            (found.end_ns.saturating_sub(start) as f64 / 1e6)
                .round()
                .max(1.0) as u64,
        ),
        what: Some(what),
        fault: Fault {
            service: service.to_owned(),
            instance: None,
            // A clock is the whole service's.
            route: (!matches!(found.change, Change::Skewed { .. })).then(|| path.to_owned()),
            baggage: None,
            fraction: 1.0,
            kind,
        },
    }
}

/// How long after a route's start its calls start, at most (twice the latest mean offset of
/// a call), ns: a request that started this long before a call lost its context lost it too.
fn lead_ns(tally: &tally::RouteTally) -> u64 {
    let ms = tally
        .keys
        .iter()
        .filter(|((sig, _), _)| matches!(sig, observe::Sig::Call(_)))
        .map(|(_, k)| k.offset_ms())
        .fold(0.0, f64::max);
    (2.0 * ms * 1e6) as u64
}

/// The incident of a service that lost the trace context: a `drop_context` fault from the
/// first call that started a trace of its own (less the `lead` its requests start before
/// their calls) to the last.
fn lost_context(
    lost: &tally::LostContext,
    lead: u64,
    origin: u64,
    (service, calls): (String, Vec<String>),
    at: &str,
    notes: &mut Notes,
) -> Incident {
    let start = lost.first.saturating_sub(lead).max(origin);
    notes.add(
        at,
        format!(
            "inferred from the traces: calls of {service} started traces of their own between \
             +{:.2} s and +{:.2} s ({}); they are counted as its steps, not as load",
            (lost.first.max(origin) - origin) as f64 / 1e9,
            (lost.last.max(origin) - origin) as f64 / 1e9,
            calls.join(", ")
        ),
    );
    Incident {
        at: Duration::from_millis(((start - origin) as f64 / 1e6).round() as u64),
        duration: Duration::from_millis(
            ((lost.last.saturating_sub(start)) as f64 / 1e6)
                .round()
                .max(1.0) as u64
                + 1,
        ),
        what: Some(format!("{service} drops the trace context")),
        fault: Fault {
            service,
            instance: None,
            route: None,
            baggage: None,
            fraction: 1.0,
            kind: FaultKind::DropContext,
        },
    }
}

/// Milliseconds for a comment, as the reports write them (`60.2 ms`, `4060 ms`), signed.
fn fmt_ms(ms: f64) -> String {
    let text = tracelab_analysis::format::ms((ms.abs() * 1e6).round() as u64);
    match ms < 0.0 {
        true => format!("-{text}"),
        false => text,
    }
}

/// Removes calls that would close a call cycle (a route calling itself through others), which
/// a scenario may not have: traces can show them (recursion, a callback), the lab cannot run
/// them.
fn break_cycles(services: &mut IndexMap<String, Service>, notes: &mut Notes) {
    while let Some((service, route, step, call)) = find_cycle(services) {
        let Some(steps) = services
            .get_mut(&service)
            .and_then(|s| s.routes.get_mut(&route))
            .map(|r| &mut r.steps)
        else {
            return;
        };
        let removed = match &mut steps[step] {
            Step::Parallel(group) if group.calls.len() > 1 => {
                let call = group.calls.remove(call);
                format!("{} {}", call.service, call.route)
            }
            other => {
                let callee = other
                    .calls()
                    .first()
                    .map(|c| format!("{} {}", c.service, c.route));
                steps.remove(step);
                callee.unwrap_or_default()
            }
        };
        notes.add(
            &format!("services.{service}.routes.{route}.steps"),
            format!(
                "a call to {removed} is left out: it closed a call cycle, which the lab cannot run"
            ),
        );
    }
}

/// A call that closes a cycle: (service, route, step index, call index in the step).
fn find_cycle(services: &IndexMap<String, Service>) -> Option<(String, String, usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        services: &IndexMap<String, Service>,
        at: (&str, &str),
        marks: &mut std::collections::HashMap<(String, String), Mark>,
    ) -> Option<(String, String, usize, usize)> {
        marks.insert((at.0.to_owned(), at.1.to_owned()), Mark::Open);
        let route = services.get(at.0)?.routes.get(at.1)?;
        for (s, step) in route.steps.iter().enumerate() {
            for (c, call) in step.calls().iter().enumerate() {
                let next = (call.service.clone(), call.route.clone());
                match marks.get(&next) {
                    Some(Mark::Open) => return Some((at.0.to_owned(), at.1.to_owned(), s, c)),
                    Some(Mark::Done) => {}
                    None => {
                        if let Some(found) = visit(services, (&next.0, &next.1), marks) {
                            return Some(found);
                        }
                    }
                }
            }
        }
        marks.insert((at.0.to_owned(), at.1.to_owned()), Mark::Done);
        None
    }
    let mut marks = std::collections::HashMap::new();
    for (service, spec) in services {
        for route in spec.routes.keys() {
            if !marks.contains_key(&(service.clone(), route.clone()))
                && let Some(found) = visit(services, (service, route), &mut marks)
            {
                return Some(found);
            }
        }
    }
    None
}

/// The opening comment: what the file reproduces, from what, and how to run it.
fn header(options: &ImportOptions, tallies: &Tallies) -> Vec<String> {
    let from = match (options.anonymize, options.sources.is_empty()) {
        (false, false) => format!(" from {}", options.sources.join(", ")),
        _ => String::new(),
    };
    let output = options.output.as_deref().unwrap_or("scenario.yaml");
    vec![
        format!(
            "Imported by `tracelab import`{from}: {} traces, {} spans.",
            tallies.traces, tallies.spans
        ),
        "It reproduces the services, routes, calls, latencies, error rates and load that those"
            .to_owned(),
        "traces show; the comments say where each number came from. A route that failed or"
            .to_owned(),
        "slowed down for a while, and not the rest of the time, becomes an incident.".to_owned(),
        String::new(),
        "Run it with:".to_owned(),
        format!("  tracelab run {output}"),
    ]
}
