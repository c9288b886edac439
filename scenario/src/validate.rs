//! The rules a well-formed scenario must also satisfy: references resolve, the call graph
//! has no cycles, and every number is in its range.
//!
//! The rules run on the typed [`Scenario`] and name problems by field path, so they serve
//! both a parsed file (where [`crate::parse`] turns paths into lines and columns) and a
//! scenario built in code ([`Scenario::validate`]).

use std::collections::HashMap;
use std::time::Duration;

mod instance;
pub mod limits;
mod resource;

use crate::decode::{index, join};
use crate::diagnostic::did_you_mean;
use crate::latency::LatencyModel;
use crate::model::{Call, ErrorModel, Scenario, Step};

mod load;

/// One broken rule.
pub(crate) struct Finding {
    pub(crate) path: String,
    pub(crate) message: String,
    pub(crate) help: Option<String>,
    /// Whether the finding is about a collection as a whole (such as "no entries"). Such a
    /// finding is moot when an element of the collection was broken and left out.
    pub(crate) about_collection: bool,
    /// Fields the rule read to decide; when one of them was broken, the finding is moot (a
    /// missing `rate` matters only if the arrival model that would need it was read).
    pub(crate) assumes: &'static [&'static str],
}

/// The HTTP methods a route may answer to.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Checks every rule and returns every finding, in the order of the scenario. `given` says
/// whether the file sets a field path; a scenario built in code sets every field.
pub(crate) fn check(scenario: &Scenario, given: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut rules = Rules {
        findings: Vec::new(),
        given,
    };
    rules.scenario(scenario);
    rules.findings
}

struct Rules<'g> {
    findings: Vec<Finding>,
    given: &'g dyn Fn(&str) -> bool,
}

impl Rules<'_> {
    fn report(&mut self, path: String, message: String, help: Option<String>) {
        self.findings.push(Finding {
            path,
            message,
            help,
            about_collection: false,
            assumes: &[],
        });
    }

    fn report_empty(&mut self, path: String, message: String) {
        self.findings.push(Finding {
            path,
            message,
            help: None,
            about_collection: true,
            assumes: &[],
        });
    }

    /// A required field the file leaves out, when whether it is required depends on others.
    fn report_missing(&mut self, field: &str, within: &str, assumes: &'static [&'static str]) {
        self.findings.push(Finding {
            path: join(within, field),
            message: format!("missing field `{field}` in the {within}"),
            help: None,
            about_collection: false,
            assumes,
        });
    }

    fn scenario(&mut self, scenario: &Scenario) {
        if scenario.services.is_empty() {
            self.report_empty(
                "services".to_owned(),
                "a scenario needs at least one service".to_owned(),
            );
        }
        for (name, service) in &scenario.services {
            let path = join("services", name);
            if let Some(problem) = dns_label_problem(name) {
                let help = "service names become hostnames: use lowercase letters, digits and `-`, \
                            starting and ending with a letter or digit, at most 63 characters";
                self.report(
                    path.clone(),
                    format!("service name `{name}` {problem}"),
                    Some(help.to_owned()),
                );
            }
            if service.replicas == 0 {
                self.report(
                    join(&path, "replicas"),
                    "replicas must be at least 1".to_owned(),
                    None,
                );
            }
            self.instances(name, service, &path);
            self.concurrency(service.concurrency, &path);
            let routes_path = join(&path, "routes");
            if service.routes.is_empty() {
                self.report_empty(
                    routes_path.clone(),
                    format!("service `{name}` has no routes"),
                );
            }
            for (route_name, route) in &service.routes {
                let route_path = join(&routes_path, route_name);
                if let Some(problem) = route_path_problem(route_name) {
                    self.report(
                        route_path.clone(),
                        format!("route `{route_name}` {problem}"),
                        None,
                    );
                }
                if !METHODS.contains(&route.method.as_str()) {
                    let upper = route.method.to_ascii_uppercase();
                    let help = if METHODS.contains(&upper.as_str()) {
                        format!("write it in capitals: `{upper}`")
                    } else {
                        did_you_mean(&route.method, "expected one of", METHODS)
                    };
                    let message = format!("`{}` is not an HTTP method", route.method);
                    self.report(join(&route_path, "method"), message, Some(help));
                }
                self.latency(&route.latency, &join(&route_path, "latency"));
                if let Some(errors) = &route.errors {
                    self.errors(errors, &join(&route_path, "errors"));
                }
                let steps_path = join(&route_path, "steps");
                for (position, step) in route.steps.iter().enumerate() {
                    self.step(scenario, step, &index(&steps_path, position));
                }
            }
        }
        self.cycles(scenario);
        self.load(scenario);
        self.incidents(scenario);
        self.limits(scenario);
    }

    fn step(&mut self, scenario: &Scenario, step: &Step, path: &str) {
        match step {
            Step::Call(call) => self.call(scenario, call, path),
            Step::Parallel(parallel) => {
                let calls_path = join(path, "parallel");
                if parallel.calls.is_empty() {
                    self.report_empty(
                        calls_path.clone(),
                        "a parallel step needs at least one call".to_owned(),
                    );
                }
                for (position, call) in parallel.calls.iter().enumerate() {
                    self.call(scenario, call, &index(&calls_path, position));
                }
                if parallel.max_parallel == Some(0) {
                    let help = "leave it out to run every call at once".to_owned();
                    self.report(
                        join(path, "max_parallel"),
                        "max_parallel must be at least 1".to_owned(),
                        Some(help),
                    );
                }
            }
            Step::Work(work) => {
                if work.name.trim().is_empty() {
                    self.report(
                        join(path, "work"),
                        "a work step needs a name".to_owned(),
                        None,
                    );
                }
                self.latency(&work.latency, &join(path, "latency"));
            }
            Step::Db(db) => self.db(db, path),
            Step::Cache(cache) => self.cache(scenario, cache, path),
            Step::Publish(publish) => self.publish(scenario, publish, path),
        }
    }

    fn call(&mut self, scenario: &Scenario, call: &Call, path: &str) {
        self.reference(
            scenario,
            &call.service,
            &call.route,
            &join(path, "call"),
            &join(path, "route"),
        );
        self.fraction(call.probability, &join(path, "probability"), "probability");
        if call.repeat == 0 {
            let help = "to make the call only sometimes, set `probability` instead".to_owned();
            self.report(
                join(path, "repeat"),
                "repeat must be at least 1".to_owned(),
                Some(help),
            );
        }
        self.retry(call, path);
        if call.timeout == Some(Duration::ZERO) {
            let help = "leave it out for no timeout".to_owned();
            self.report(
                join(path, "timeout"),
                "timeout must be longer than zero".to_owned(),
                Some(help),
            );
        }
    }

    /// A (service, route) reference, as made by calls and load entries.
    fn reference(
        &mut self,
        scenario: &Scenario,
        service: &str,
        route: &str,
        service_path: &str,
        route_path: &str,
    ) {
        let Some(target) = scenario.services.get(service) else {
            let names: Vec<&str> = scenario.services.keys().map(String::as_str).collect();
            let help = did_you_mean(service, "services", &names);
            self.report(
                service_path.to_owned(),
                format!("no service `{service}`"),
                Some(help),
            );
            return;
        };
        if !target.routes.contains_key(route) {
            let routes: Vec<&str> = target.routes.keys().map(String::as_str).collect();
            let help = did_you_mean(route, "routes", &routes);
            let message = format!("no route `{route}` in service `{service}`");
            self.report(route_path.to_owned(), message, Some(help));
        }
    }

    /// An injected error model: a rate that is a fraction, a status that is an HTTP error.
    fn errors(&mut self, errors: &ErrorModel, path: &str) {
        self.fraction(errors.rate, &join(path, "rate"), "rate");
        if !(400..=599).contains(&errors.status) {
            let message = format!(
                "status must be an HTTP error status from 400 to 599, found {}",
                errors.status
            );
            self.report(join(path, "status"), message, None);
        }
    }

    fn fraction(&mut self, value: f64, path: &str, name: &str) {
        if !(0.0..=1.0).contains(&value) {
            self.report(
                path.to_owned(),
                format!("{name} must be between 0 and 1, found {value}"),
                None,
            );
        }
    }

    fn latency(&mut self, model: &LatencyModel, path: &str) {
        let path = join(path, model.kind());
        let param = |name: &str| join(&path, name);
        match *model {
            LatencyModel::Constant { ms } => self.at_least_zero(ms, &param("ms"), "ms"),
            LatencyModel::Empirical { ref quantiles } => {
                if let Some((at, message)) = crate::latency::table_problem(quantiles) {
                    let table = param("quantiles");
                    let path = match at {
                        Some(i) => index(&table, i),
                        None => table,
                    };
                    let help = "write pairs [p, ms] from [0, shortest] to [1, longest], \
                                e.g. [[0, 2], [0.5, 4], [0.99, 30], [1, 80]]";
                    self.report(path, message, Some(help.to_owned()));
                }
            }
            LatencyModel::Uniform { min_ms, max_ms } => {
                self.at_least_zero(min_ms, &param("min_ms"), "min_ms");
                self.at_least_zero(max_ms, &param("max_ms"), "max_ms");
                if min_ms > max_ms {
                    let message = format!("min_ms ({min_ms}) is greater than max_ms ({max_ms})");
                    self.report(param("min_ms"), message, None);
                }
            }
            LatencyModel::Normal {
                mean_ms,
                std_dev_ms,
            } => {
                self.at_least_zero(mean_ms, &param("mean_ms"), "mean_ms");
                self.at_least_zero(std_dev_ms, &param("std_dev_ms"), "std_dev_ms");
            }
            LatencyModel::LogNormal { median_ms, sigma } => {
                self.above_zero(median_ms, &param("median_ms"), "median_ms");
                self.at_least_zero(sigma, &param("sigma"), "sigma");
            }
            LatencyModel::Exponential { mean_ms } => {
                self.above_zero(mean_ms, &param("mean_ms"), "mean_ms")
            }
            LatencyModel::Pareto { scale_ms, shape } => {
                self.above_zero(scale_ms, &param("scale_ms"), "scale_ms");
                self.above_zero(shape, &param("shape"), "shape");
            }
        }
    }

    fn at_least_zero(&mut self, value: f64, path: &str, name: &str) {
        if !value.is_finite() || value < 0.0 {
            self.report(
                path.to_owned(),
                format!("{name} must be a finite number of at least 0, found {value}"),
                None,
            );
        }
    }

    fn above_zero(&mut self, value: f64, path: &str, name: &str) {
        if !value.is_finite() || value <= 0.0 {
            self.report(
                path.to_owned(),
                format!("{name} must be a finite number above 0, found {value}"),
                None,
            );
        }
    }

    fn load(&mut self, scenario: &Scenario) {
        let load = &scenario.load;
        self.load_options(load);
        // The one place that says which models need `rate`: the ones that read it.
        let needs_rate = load.users.is_none() && load.arrival.uses_rate();
        if needs_rate && !(self.given)("load.rate") {
            self.report_missing("rate", "load", &["load.arrival", "load.users"]);
        } else if needs_rate && (!load.rate.is_finite() || load.rate <= 0.0) {
            let message = format!(
                "rate must be a finite number of requests per second above 0, found {}",
                load.rate
            );
            self.report("load.rate".to_owned(), message, None);
        }
        // Staged models last as long as their stages unless the file says otherwise.
        if load.arrival.stages().is_none() && !(self.given)("load.duration") {
            self.report_missing("duration", "load", &["load.arrival"]);
        } else if load.duration.is_zero() {
            self.report(
                "load.duration".to_owned(),
                "duration must be longer than zero".to_owned(),
                None,
            );
        }
        if load.entries.is_empty() {
            self.report_empty(
                "load.entries".to_owned(),
                "the load needs at least one entry route".to_owned(),
            );
        }
        for (position, entry) in load.entries.iter().enumerate() {
            let path = index("load.entries", position);
            self.reference(
                scenario,
                &entry.service,
                &entry.route,
                &join(&path, "service"),
                &join(&path, "route"),
            );
            if !entry.weight.is_finite() || entry.weight <= 0.0 {
                let message = format!(
                    "weight must be a finite number above 0, found {}",
                    entry.weight
                );
                self.report(join(&path, "weight"), message, None);
            }
        }
    }

    /// Reports every cycle in the graph of calls between routes, once each, at the call that
    /// closes it. A cycle would make a single request recurse until it times out.
    fn cycles(&mut self, scenario: &Scenario) {
        let graph = CallGraph::new(scenario);
        let mut seen: Vec<Vec<usize>> = Vec::new();
        for (cycle, closing_call) in graph.cycles() {
            let mut key = cycle.clone();
            key.sort_unstable();
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let names: Vec<&str> = cycle
                .iter()
                .chain(cycle.first())
                .map(|node| graph.names[*node].as_str())
                .collect();
            let help = "a route must not call itself, directly or through other routes".to_owned();
            self.report(
                closing_call,
                format!("call cycle: {}", names.join(" -> ")),
                Some(help),
            );
        }
    }
}

/// Routes as nodes, calls as edges.
struct CallGraph {
    /// `service/route` for each node, e.g. `checkout/checkout`.
    names: Vec<String>,
    /// For each node, the nodes it calls and the path of each call.
    edges: Vec<Vec<(usize, String)>>,
}

impl CallGraph {
    fn new(scenario: &Scenario) -> Self {
        let mut ids: HashMap<(&str, &str), usize> = HashMap::new();
        let mut names = Vec::new();
        for (service, definition) in &scenario.services {
            for route in definition.routes.keys() {
                ids.insert((service.as_str(), route.as_str()), names.len());
                names.push(route_name(service, route));
            }
        }
        let mut edges = vec![Vec::new(); names.len()];
        for (service, definition) in &scenario.services {
            for (route, body) in &definition.routes {
                let Some(&from) = ids.get(&(service.as_str(), route.as_str())) else {
                    continue;
                };
                let steps_path = join(&join(&join("services", service), "routes"), route);
                for (position, step) in body.steps.iter().enumerate() {
                    let step_path = index(&join(&steps_path, "steps"), position);
                    for (call_position, call) in step.calls().iter().enumerate() {
                        let Some(&to) = ids.get(&(call.service.as_str(), call.route.as_str()))
                        else {
                            continue;
                        };
                        let call_path = match step {
                            Step::Parallel(_) => {
                                index(&join(&step_path, "parallel"), call_position)
                            }
                            _ => step_path.clone(),
                        };
                        edges[from].push((to, call_path));
                    }
                }
            }
        }
        CallGraph { names, edges }
    }

    /// Every cycle met by a depth-first search, as its nodes in call order, with the path of
    /// the call that closes it. The search keeps its own stack so that a long chain of routes
    /// cannot overflow the thread's stack.
    fn cycles(&self) -> Vec<(Vec<usize>, String)> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let mut marks = vec![Mark::New; self.names.len()];
        let mut found = Vec::new();
        for start in 0..self.names.len() {
            if marks[start] != Mark::New {
                continue;
            }
            // Each frame is a node and the index of its next edge to follow.
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            marks[start] = Mark::OnPath;
            while let Some(&mut (node, ref mut next)) = path.last_mut() {
                let Some((target, call_path)) = self.edges[node].get(*next) else {
                    marks[node] = Mark::Done;
                    path.pop();
                    continue;
                };
                *next += 1;
                match marks[*target] {
                    Mark::New => {
                        marks[*target] = Mark::OnPath;
                        path.push((*target, 0));
                    }
                    Mark::OnPath => {
                        let from = path
                            .iter()
                            .position(|(on_path, _)| on_path == target)
                            .unwrap_or(0);
                        let cycle = path[from..].iter().map(|(on_path, _)| *on_path).collect();
                        found.push((cycle, call_path.clone()));
                    }
                    Mark::Done => {}
                }
            }
        }
        found
    }
}

/// `service/route` as cycle messages show it; the route's own leading `/` separates them.
fn route_name(service: &str, route: &str) -> String {
    if route.starts_with('/') {
        format!("{service}{route}")
    } else {
        format!("{service}/{route}")
    }
}

/// What is wrong with a service name as a DNS-1123 label, if anything.
fn dns_label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > 63 {
        return Some("is longer than 63 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some("may only contain lowercase letters, digits and `-`");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("must start and end with a letter or digit");
    }
    None
}

/// What is wrong with a route path, if anything. Paths are literal: no parameters, so that
/// every request to a route is the same route in the traces.
fn route_path_problem(route: &str) -> Option<&'static str> {
    if !route.starts_with('/') {
        return Some("must start with `/`");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~');
    if !route.chars().all(allowed) {
        return Some(
            "may only contain letters, digits and `/ - _ . ~` (paths are literal, without parameters)",
        );
    }
    None
}
