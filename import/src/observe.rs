//! One trace, read as the scenario model sees a request: which routes ran (the SERVER and
//! CONSUMER spans, and a root that stands for a request without one), what each did (its
//! steps, in time order), where the request entered, and which messages it published.
//!
//! A route's steps are its children, read by kind:
//! - a CLIENT span is a call to the route whose SERVER span is under it; with database
//!   attributes and no SERVER span, a `db` step; with neither, a call to a service that
//!   recorded nothing (named by `peer.service` or `server.address`), which the scenario gets
//!   as a route of its own whose time is the CLIENT span's;
//! - a PRODUCER span is a `publish`; its consumer is found by the link (or parent) from the
//!   CONSUMER span that processed the message, in this trace or another;
//! - an INTERNAL span is a `cache` step when it is a cache lookup (`cache.get <name>`), local
//!   `work` when it has no children, and otherwise a wrapper: its children are read as the
//!   route's own and its self time counts as the route's;
//! - tracelab's `worker pool wait` span is not a step but the service's worker pool.
//!
//! Retries are merged into the call they repeat: a call to the same route that starts after
//! a failed attempt ended is its retry (a route stops repeating a call at its first failure,
//! so nothing else follows a failure to the same route).

use tracelab_analysis::tree::SpanTree;
use tracelab_trace::{Span, SpanId, SpanKind, StatusCode, Trace};

use crate::{attrs, names};

/// A route of a service, by the service's name in the traces and the route's path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Target {
    /// `service.name` as the traces have it.
    pub(crate) service: String,
    /// The route's path (already a literal path).
    pub(crate) route: String,
}

/// What a step is, which is what two steps of two requests must share to be the same step.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Sig {
    /// A call to a route.
    Call(Target),
    /// Local work, by span name.
    Work(String),
    /// A database query.
    Db {
        system: String,
        operation: String,
        collection: Option<String>,
    },
    /// A cache lookup, by cache name.
    Cache(String),
    /// A message published, by topic.
    Publish(String),
}

/// One attempt of a call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) failed: bool,
    pub(crate) timed_out: bool,
}

/// One step of one request.
#[derive(Debug, Clone)]
pub(crate) struct Element {
    pub(crate) sig: Sig,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// The step failed (a call whose last attempt failed).
    pub(crate) failed: bool,
    /// The step's own time: work and queries without their lock wait, a lookup without its
    /// miss call.
    pub(crate) own_ns: u64,
    /// A call's attempts, or a cache miss's.
    pub(crate) attempts: Vec<Attempt>,
    /// Whether a lookup hit.
    pub(crate) hit: Option<bool>,
    /// The route a lookup calls on a miss.
    pub(crate) miss: Option<Target>,
    pub(crate) cpu: bool,
    pub(crate) locked: bool,
    pub(crate) query: Option<String>,
    /// The PRODUCER span of a publish.
    pub(crate) producer: Option<SpanId>,
    /// Ended when a caller above it gave up: its own time is not known.
    pub(crate) cut: bool,
}

/// One request to one route.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) route: Target,
    pub(crate) method: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) start: u64,
    /// Time the route spent on its own (its self time, plus that of wrappers read through).
    pub(crate) self_ns: u64,
    pub(crate) failed: bool,
    pub(crate) status: Option<u16>,
    pub(crate) elements: Vec<Element>,
    pub(crate) pool_limit: Option<u32>,
    /// Made up for a callee that recorded nothing, from its caller's CLIENT span.
    pub(crate) synthetic: bool,
    /// Ended when a caller above it gave up (its call timed out): how long it would have
    /// taken is not known.
    pub(crate) cut: bool,
    /// Called by another service's CLIENT span: how far the middle of this span lies after
    /// the middle of that one, ms. Near 0 when the two clocks agree.
    pub(crate) offset_ms: Option<f64>,
    /// When the request came, on the caller's clock where another service called it (a
    /// service whose clock is off puts its own start elsewhere), else its own start: where
    /// it lies on the time line of incidents.
    pub(crate) at: u64,
}

/// Where a request entered.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) target: Target,
    pub(crate) start: u64,
    pub(crate) baggage: Vec<(String, String)>,
}

/// A message processed: the span it came from (by link or parent), and where.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) producer: SpanId,
    pub(crate) consumer: Target,
    pub(crate) start: u64,
}

/// Everything one trace says.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub(crate) instances: Vec<Instance>,
    pub(crate) entry: Option<Entry>,
    /// Producer span id and its end, for the publishes of this trace.
    pub(crate) producers: Vec<(SpanId, u64)>,
    pub(crate) deliveries: Vec<Delivery>,
    /// The service of the CLIENT span the trace starts with, when it starts with one: a load
    /// generator, a browser, or a service that lost the trace context of its caller.
    pub(crate) client_root: Option<String>,
}

/// The name of tracelab's worker pool span.
const POOL_WAIT: &str = "worker pool wait";

fn is_route_kind(span: &Span) -> bool {
    matches!(span.kind, SpanKind::Server | SpanKind::Consumer)
}

fn failed(span: &Span) -> bool {
    span.status.code == StatusCode::Error || attrs::status_code(span).is_some_and(|c| c >= 500)
}

/// Reads one trace.
pub(crate) fn observe(trace: &Trace) -> Observed {
    let spans = &trace.spans;
    let tree = SpanTree::new(trace);
    let gave_up = gave_up_above(spans, &tree);
    let self_ns = tracelab_analysis::critical_path::self_times(trace);
    let mut observed = Observed::default();
    let top = tree.primary_top(spans);
    for (i, span) in spans.iter().enumerate() {
        let stands_for_request = Some(i) == top
            && matches!(span.kind, SpanKind::Internal | SpanKind::Unspecified)
            && span.parent_span_id.is_none();
        if !is_route_kind(span) && !stands_for_request {
            continue;
        }
        let route = target(span);
        // A message processed: linked to its producer, or under it in the same trace.
        let from_producer = tree.parent[i]
            .filter(|&p| spans[p].kind == SpanKind::Producer)
            .map(|p| spans[p].span_id)
            .or_else(|| {
                (span.kind == SpanKind::Consumer)
                    .then(|| span.links.first().map(|l| l.span_id))
                    .flatten()
            });
        if let Some(producer) = from_producer {
            observed.deliveries.push(Delivery {
                producer,
                consumer: route.clone(),
                start: span.start_unix_nano,
            });
        }
        let caller = tree.parent[i]
            .map(|p| &spans[p])
            .filter(|p| p.kind == SpanKind::Client && p.service_name != span.service_name);
        let mut instance = Instance {
            route,
            method: names::method_of(span),
            version: service_version(span),
            start: span.start_unix_nano,
            self_ns: self_ns[i],
            failed: failed(span),
            status: attrs::status_code(span),
            elements: Vec::new(),
            pool_limit: None,
            synthetic: false,
            cut: cut_short(spans, &gave_up, i),
            offset_ms: caller.map(|p| middle_ms(span) - middle_ms(p)),
            at: caller.map_or(span.start_unix_nano, |p| p.start_unix_nano),
        };
        let mut walk = Walk {
            spans,
            tree: &tree,
            gave_up: &gave_up,
            self_ns: &self_ns,
            synthetic: Vec::new(),
            producers: &mut observed.producers,
        };
        for &child in &tree.children[i] {
            walk.child(child, &mut instance);
        }
        let (elements, backoff_ns) = merge_retries(std::mem::take(&mut instance.elements));
        instance.elements = elements;
        // The waits between attempts are the retry policy's backoff, which a replay adds by
        // itself: they are not the route's own time.
        instance.self_ns = instance.self_ns.saturating_sub(backoff_ns);
        observed.instances.push(instance);
        observed.instances.append(&mut walk.synthetic);
    }
    observed.entry = top.and_then(|t| entry(spans, &tree, t));
    observed.client_root = top
        .map(|t| &spans[t])
        .filter(|s| s.kind == SpanKind::Client && s.parent_span_id.is_none())
        .map(|s| s.service_name.to_string());
    observed
}

/// The middle of a span, ms since the epoch.
fn middle_ms(span: &Span) -> f64 {
    (span.start_unix_nano as f64 + span.end_unix_nano as f64) / 2e6
}

/// How close to a caller's timed-out attempt a span must end to count as ended by it.
const CUT_SLACK_NS: u64 = 5_000_000;

/// For each span, the earliest end of a timed-out CLIENT span above it: when a caller gave
/// up on it. Walked down from the trace's tops once (one timeout check a span), so parent
/// links that form a cycle, which no top reaches, are never followed.
fn gave_up_above(spans: &[Span], tree: &SpanTree) -> Vec<Option<u64>> {
    let mut above = vec![None; spans.len()];
    let mut seen = vec![false; spans.len()];
    let mut stack: Vec<(usize, Option<u64>)> = tree.tops.iter().map(|&t| (t, None)).collect();
    while let Some((i, deadline)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        above[i] = deadline;
        let span = &spans[i];
        let own =
            (span.kind == SpanKind::Client && attrs::timed_out(span)).then_some(span.end_unix_nano);
        let below = match (deadline, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        stack.extend(tree.children[i].iter().map(|&c| (c, below)));
    }
    above
}

/// Whether span `i` lasted until a caller above it gave up (`gave_up` from
/// [`gave_up_above`]): it did not end before the earliest of them.
fn cut_short(spans: &[Span], gave_up: &[Option<u64>], i: usize) -> bool {
    gave_up[i].is_some_and(|at| spans[i].end_unix_nano.saturating_add(CUT_SLACK_NS) >= at)
}

/// The route a span stands for.
fn target(span: &Span) -> Target {
    Target {
        service: span.service_name.to_string(),
        route: names::route_of(span),
    }
}

/// The version from the resource, or from the span's tags: Zipkin has no resource, and its
/// exporters write the resource's attributes as tags of every span.
fn service_version(span: &Span) -> Option<String> {
    span.resource
        .iter()
        .chain(&span.attributes)
        .find(|a| a.key == "service.version")
        .and_then(|a| a.value.as_str())
        .map(str::to_owned)
}

/// The entry of a request: its top span when that is a route, else (the top is a client, the
/// load generator or a browser) the route under it. A message processed later is no entry.
fn entry(spans: &[Span], tree: &SpanTree, top: usize) -> Option<Entry> {
    let span = &spans[top];
    if span.kind == SpanKind::Consumer && !span.links.is_empty() {
        return None;
    }
    let server = match span.kind {
        SpanKind::Server | SpanKind::Consumer | SpanKind::Internal | SpanKind::Unspecified => top,
        SpanKind::Client | SpanKind::Producer => tree.children[top]
            .iter()
            .copied()
            .find(|&c| is_route_kind(&spans[c]))?,
    };
    Some(Entry {
        target: target(&spans[server]),
        start: span.start_unix_nano,
        baggage: attrs::baggage(&spans[server])
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    })
}

struct Walk<'t> {
    spans: &'t [Span],
    tree: &'t SpanTree,
    gave_up: &'t [Option<u64>],
    self_ns: &'t [u64],
    synthetic: Vec<Instance>,
    producers: &'t mut Vec<(SpanId, u64)>,
}

impl Walk<'_> {
    fn element(&self, sig: Sig, c: usize) -> Element {
        let span = &self.spans[c];
        Element {
            sig,
            start: span.start_unix_nano,
            end: span.end_unix_nano.max(span.start_unix_nano),
            failed: failed(span),
            own_ns: span.duration_nanos(),
            attempts: Vec::new(),
            hit: None,
            miss: None,
            cpu: false,
            locked: false,
            query: None,
            producer: None,
            cut: cut_short(self.spans, self.gave_up, c),
        }
    }

    /// Reads one child of a route span (or of a wrapper read through) into the instance.
    fn child(&mut self, c: usize, instance: &mut Instance) {
        let spans = self.spans;
        let span = &spans[c];
        if span.name == POOL_WAIT
            && let Some(limit) = attrs::pool_limit(span)
        {
            instance.pool_limit = Some(limit);
            return;
        }
        let lock_ns = attrs::lock_wait_ms(span).map_or(0, |ms| (ms.max(0.0) * 1e6) as u64);
        match span.kind {
            SpanKind::Server | SpanKind::Consumer => {
                // A route right under a route: called without a CLIENT span of its own.
                let mut element = self.element(Sig::Call(target(span)), c);
                element.attempts.push(attempt(span));
                instance.elements.push(element);
            }
            SpanKind::Client => {
                let server = self.tree.children[c]
                    .iter()
                    .copied()
                    .find(|&s| is_route_kind(&spans[s]));
                if let Some(s) = server {
                    let mut element = self.element(Sig::Call(target(&spans[s])), c);
                    element.attempts.push(attempt(span));
                    instance.elements.push(element);
                } else if let Some(system) = attrs::db_system(span) {
                    let operation = attrs::db_operation(span)
                        .or_else(|| span.name.split_whitespace().next())
                        .unwrap_or("query");
                    let sig = Sig::Db {
                        system: system.to_owned(),
                        operation: operation.to_owned(),
                        collection: attrs::db_collection(span).map(str::to_owned),
                    };
                    let mut element = self.element(sig, c);
                    element.own_ns = span.duration_nanos().saturating_sub(lock_ns);
                    element.locked = attrs::lock_wait_ms(span).is_some();
                    element.query = attrs::db_query(span).map(str::to_owned);
                    instance.elements.push(element);
                } else if let Some(peer) = attrs::peer(span) {
                    // A callee that recorded nothing: it becomes a route whose own time is
                    // the whole call.
                    let path = attrs::called_path(span)
                        .map(names::route_path)
                        .unwrap_or_else(|| names::route_of(span));
                    let callee = Target {
                        service: peer.to_owned(),
                        route: path,
                    };
                    let mut element = self.element(Sig::Call(callee.clone()), c);
                    element.attempts.push(attempt(span));
                    instance.elements.push(element);
                    self.synthetic.push(Instance {
                        route: callee,
                        method: names::method_of(span),
                        version: None,
                        start: span.start_unix_nano,
                        self_ns: span.duration_nanos(),
                        failed: failed(span),
                        status: attrs::status_code(span),
                        elements: Vec::new(),
                        pool_limit: None,
                        synthetic: true,
                        cut: false,
                        offset_ms: None,
                        at: span.start_unix_nano,
                    });
                } else {
                    let element = self.element(Sig::Work(span.name.clone()), c);
                    instance.elements.push(element);
                }
            }
            SpanKind::Producer => {
                let topic = attrs::destination(span)
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        let name = span.name.as_str();
                        let name = name.strip_prefix("send ").or(name.strip_prefix("publish "));
                        name.unwrap_or(&span.name).to_owned()
                    });
                let mut element = self.element(Sig::Publish(topic), c);
                element.producer = Some(span.span_id);
                self.producers.push((span.span_id, span.end_unix_nano));
                instance.elements.push(element);
            }
            SpanKind::Internal | SpanKind::Unspecified => {
                if let Some(name) = attrs::cache_name(span) {
                    let mut element = self.element(Sig::Cache(name.to_owned()), c);
                    element.own_ns = self.self_ns[c];
                    for &m in &self.tree.children[c] {
                        let call = &spans[m];
                        let server = self.tree.children[m]
                            .iter()
                            .copied()
                            .find(|&s| is_route_kind(&spans[s]));
                        if let (SpanKind::Client, Some(s)) = (call.kind, server) {
                            element.miss.get_or_insert_with(|| target(&spans[s]));
                            element.attempts.push(attempt(call));
                        }
                    }
                    element.hit = attrs::cache_hit(span).or(Some(element.miss.is_none()));
                    element.failed = element.attempts.last().is_some_and(|a| a.failed);
                    instance.elements.push(element);
                } else if self.tree.children[c].is_empty() {
                    let mut element = self.element(Sig::Work(span.name.clone()), c);
                    element.own_ns = span.duration_nanos().saturating_sub(lock_ns);
                    element.cpu = attrs::cpu(span);
                    element.locked = attrs::lock_wait_ms(span).is_some();
                    instance.elements.push(element);
                } else {
                    instance.self_ns += self.self_ns[c];
                    for &grandchild in &self.tree.children[c] {
                        self.child(grandchild, instance);
                    }
                }
            }
        }
    }
}

fn attempt(span: &Span) -> Attempt {
    Attempt {
        start: span.start_unix_nano,
        end: span.end_unix_nano.max(span.start_unix_nano),
        failed: failed(span) || attrs::status_code(span).is_some_and(|c| c >= 400),
        timed_out: attrs::timed_out(span),
    }
}

/// Folds retry attempts into the call they repeat (see the module documentation), and says
/// how long the waits between attempts were in all, ns.
fn merge_retries(elements: Vec<Element>) -> (Vec<Element>, u64) {
    let mut merged: Vec<Element> = Vec::with_capacity(elements.len());
    let mut waits = 0;
    for element in elements {
        let previous = match &element.sig {
            Sig::Call(_) => merged.iter_mut().rev().find(|e| e.sig == element.sig),
            _ => None,
        };
        match previous {
            Some(previous)
                if previous.attempts.last().is_some_and(|a| a.failed)
                    && previous.end <= element.start =>
            {
                waits += element.start - previous.end;
                previous.attempts.extend(element.attempts);
                previous.end = element.end;
                previous.failed = element.failed;
            }
            _ => merged.push(element),
        }
    }
    (merged, waits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracelab_trace::{Status, StatusCode, TraceId};

    fn span(id: u8, parent: Option<u8>, kind: SpanKind, start_ms: u64, end_ms: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            name: "GET /x".to_owned(),
            kind,
            start_unix_nano: start_ms * 1_000_000,
            end_unix_nano: end_ms * 1_000_000,
            ..Span::default()
        }
    }

    fn timed_out(mut span: Span) -> Span {
        span.status = Status {
            code: StatusCode::Error,
            message: "timeout".to_owned(),
        };
        span
    }

    #[test]
    fn a_request_that_lasted_until_its_caller_gave_up_is_cut() {
        let trace = Trace::new(
            TraceId([1; 16]),
            vec![
                span(1, None, SpanKind::Server, 0, 1001),
                timed_out(span(2, Some(1), SpanKind::Client, 1, 1000)),
                // Ended with its caller's attempt: cut. Ended long before it: not.
                span(3, Some(2), SpanKind::Server, 2, 1000),
                span(4, Some(2), SpanKind::Server, 3, 10),
            ],
        );
        let cut: Vec<(u64, bool)> = observe(&trace)
            .instances
            .iter()
            .map(|i| (i.start / 1_000_000, i.cut))
            .collect();
        assert_eq!(cut, [(0, false), (2, true), (3, false)]);
    }

    #[test]
    fn parent_links_in_a_cycle_are_read_without_walking_round_it() {
        // 5 under 6 and 6 under 5, with a timed-out CLIENT that ended long after.
        let trace = Trace::new(
            TraceId([1; 16]),
            vec![
                timed_out(span(5, Some(6), SpanKind::Client, 0, 5000)),
                span(6, Some(5), SpanKind::Server, 1, 10),
            ],
        );
        let observed = observe(&trace);
        assert!(observed.instances.iter().all(|i| !i.cut));
    }
}
