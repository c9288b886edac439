//! The simulated shop: its routes, its incidents, and how the spans of one request are built.

use std::collections::HashMap;
use std::sync::Arc;

use rand::Rng;
use rand::rngs::StdRng;
use tracelab_scenario::{Fault, FaultKind, LatencyFault, LatencyModel};
use tracelab_trace::{AttrValue, Attribute, Span, SpanId, SpanKind, Status, StatusCode, TraceId};

use crate::{MS, SECOND};

/// One step of a route, in order.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    /// An HTTP call to another route (a CLIENT span and the callee's SERVER span).
    Call(&'static str),
    /// A database query (a CLIENT span).
    Db {
        operation: &'static str,
        collection: &'static str,
    },
    /// A cache look-up (an INTERNAL span).
    Cache,
    /// A message to the `orders` queue (PRODUCER), consumed by `email` (CONSUMER) later.
    Publish,
}

pub(crate) struct Route {
    pub(crate) key: &'static str,
    pub(crate) service: &'static str,
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) own: LatencyModel,
    pub(crate) error_rate: f64,
    pub(crate) error_status: u16,
    pub(crate) steps: &'static [Step],
}

/// A route whose own time is log-normal (median in ms, sigma) and that never fails itself.
pub(crate) const fn route(
    key: &'static str,
    service: &'static str,
    (method, path): (&'static str, &'static str),
    (median_ms, sigma): (f64, f64),
    steps: &'static [Step],
) -> Route {
    Route {
        key,
        service,
        method,
        path,
        own: LatencyModel::LogNormal { median_ms, sigma },
        error_rate: 0.0,
        error_status: 500,
        steps,
    }
}

pub(crate) const fn db(operation: &'static str, collection: &'static str) -> Step {
    Step::Db {
        operation,
        collection,
    }
}

#[rustfmt::skip]
pub(crate) static ROUTES: [Route; 11] = [
    route("home", "frontend", ("GET", "/"), (4.0, 0.4),
        &[Step::Call("catalog"), Step::Call("currency"), Step::Cache]),
    route("product", "frontend", ("GET", "/product/{id}"), (3.0, 0.4),
        &[Step::Call("catalog"), Step::Call("recommend"), Step::Call("currency")]),
    route("cart-page", "frontend", ("GET", "/cart"), (2.0, 0.4),
        &[Step::Call("cart"), Step::Call("currency")]),
    route("checkout-page", "frontend", ("POST", "/checkout"), (5.0, 0.4),
        &[Step::Call("checkout")]),
    // Written out, not `..CATALOG`: a latency model may own a table, so a route cannot be
    // partly copied and the rest dropped in a constant.
    Route {
        key: "catalog",
        service: "product-catalog",
        method: "GET",
        path: "/products",
        own: LatencyModel::LogNormal { median_ms: 2.0, sigma: 0.5 },
        error_rate: 0.003,
        error_status: 500,
        steps: &[Step::Cache, db("SELECT", "products")],
    },
    route("recommend", "recommendation", ("GET", "/recommend"), (6.0, 0.6),
        &[Step::Call("catalog")]),
    route("currency", "currency", ("GET", "/convert"), (0.8, 0.3), &[]),
    route("cart", "cart", ("GET", "/cart"), (1.0, 0.4),
        &[Step::Cache, db("SELECT", "carts")]),
    route("checkout", "checkout", ("POST", "/checkout"), (4.0, 0.5),
        &[Step::Call("cart"), Step::Call("payment"), Step::Call("shipping"),
          Step::Call("currency"), Step::Publish]),
    // Payments have a heavy tail, and 1 % of them fail with a 503.
    Route {
        key: "payment",
        service: "payment",
        method: "POST",
        path: "/charge",
        own: LatencyModel::Pareto {
            scale_ms: 15.0,
            shape: 2.2,
        },
        error_rate: 0.01,
        error_status: 503,
        steps: &[db("INSERT", "payments")],
    },
    route("shipping", "shipping", ("GET", "/quote"), (3.0, 0.4), &[]),
];

pub(crate) fn find(key: &str) -> &'static Route {
    ROUTES
        .iter()
        .find(|r| r.key == key)
        .expect("every step names a route")
}

/// Entry routes and their weights (percent).
pub(crate) const ENTRIES: [(&str, u32); 4] = [
    ("home", 30),
    ("product", 35),
    ("cart-page", 20),
    ("checkout-page", 15),
];

/// The incidents, relative to the start of the run: (route, start, duration, fault).
pub(crate) fn incidents() -> Vec<(&'static str, u64, u64, Fault)> {
    vec![
        (
            "payment",
            60 * SECOND,
            20 * SECOND,
            Fault {
                service: "payment".into(),
                instance: None,
                route: Some("/charge".into()),
                baggage: None,
                fraction: 1.0,
                kind: FaultKind::Latency(LatencyFault::Add(LatencyModel::Constant { ms: 300.0 })),
            },
        ),
        (
            "catalog",
            120 * SECOND,
            10 * SECOND,
            Fault {
                service: "product-catalog".into(),
                instance: None,
                route: Some("/products".into()),
                baggage: None,
                fraction: 1.0,
                kind: FaultKind::Error {
                    rate: 0.2,
                    status: 500,
                },
            },
        ),
    ]
}

/// Builds the spans of one trace.
pub(crate) struct TraceBuilder<'r> {
    pub(crate) resources: &'r HashMap<&'static str, Arc<Vec<Attribute>>>,
    pub(crate) incidents: &'r [(&'static str, u64, u64, Fault)],
    pub(crate) trace_id: TraceId,
    pub(crate) sequence: u64,
    pub(crate) spans: Vec<Span>,
}

/// The attribute value types the generator writes.
pub(crate) trait AttrInput {
    fn into_value(self) -> AttrValue;
}

impl AttrInput for &str {
    fn into_value(self) -> AttrValue {
        AttrValue::Str(self.to_string())
    }
}

impl AttrInput for String {
    fn into_value(self) -> AttrValue {
        AttrValue::Str(self)
    }
}

impl AttrInput for i64 {
    fn into_value(self) -> AttrValue {
        AttrValue::Int(self)
    }
}

impl AttrInput for f64 {
    fn into_value(self) -> AttrValue {
        AttrValue::Double(self)
    }
}

impl AttrInput for bool {
    fn into_value(self) -> AttrValue {
        AttrValue::Bool(self)
    }
}

pub(crate) fn attr(key: &str, value: impl AttrInput) -> Attribute {
    Attribute {
        key: key.to_string(),
        value: value.into_value(),
    }
}

impl TraceBuilder<'_> {
    fn span(
        &mut self,
        rng: &mut StdRng,
        service: &'static str,
        parent: Option<SpanId>,
        name: String,
        kind: SpanKind,
        start: u64,
    ) -> usize {
        let span_id = SpanId(rng.random::<u64>().max(1).to_be_bytes());
        self.spans.push(Span {
            trace_id: self.trace_id,
            span_id,
            parent_span_id: parent,
            trace_state: String::new(),
            // Sampled, and (bit 8) whether the parent was remote is known.
            flags: if kind == SpanKind::Server {
                0x301
            } else {
                0x101
            },
            name,
            kind,
            start_unix_nano: start,
            end_unix_nano: start,
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            status: Status::default(),
            service_name: Arc::from(service),
            resource: self.resources[service].clone(),
            scope_name: "tracelab-services".to_string(),
        });
        self.spans.len() - 1
    }

    /// Serves `key` from `start`; returns its end and HTTP status.
    pub(crate) fn serve(
        &mut self,
        rng: &mut StdRng,
        key: &str,
        parent: Option<SpanId>,
        path_prefix: &str,
        start: u64,
        run_start: u64,
    ) -> (u64, u16) {
        let route = find(key);
        let path = match route.path {
            "/product/{id}" => format!("/product/{}", rng.random_range(1..5000)),
            p => p.to_string(),
        };
        let s = self.span(
            rng,
            route.service,
            parent,
            format!("{} {}", route.method, route.path),
            SpanKind::Server,
            start,
        );
        let id = self.spans[s].span_id;
        self.spans[s].attributes = vec![
            attr("http.request.method", route.method),
            attr("http.route", route.path),
            attr("url.path", path),
            attr("url.scheme", "http"),
            attr("server.address", route.service),
            attr("server.port", 8080i64),
            attr("network.protocol.version", "1.1"),
            attr(
                "tracelab.origin",
                format!("{}:{path_prefix}", self.sequence),
            ),
        ];
        let mut t = start + 50_000;
        let mut failed_downstream = false;
        for (n, step) in route.steps.iter().enumerate() {
            match *step {
                Step::Call(callee) => {
                    let target = find(callee);
                    let c = self.span(
                        rng,
                        route.service,
                        Some(id),
                        target.method.to_string(),
                        SpanKind::Client,
                        t,
                    );
                    let client_id = self.spans[c].span_id;
                    let (end, status) = self.serve(
                        rng,
                        callee,
                        Some(client_id),
                        &format!("{path_prefix}-{n}"),
                        t + 200_000,
                        run_start,
                    );
                    t = end + 200_000;
                    let client = &mut self.spans[c];
                    client.end_unix_nano = t;
                    client.attributes = vec![
                        attr("http.request.method", target.method),
                        attr(
                            "url.full",
                            format!("http://{}:8080{}", target.service, target.path),
                        ),
                        attr("url.template", target.path),
                        attr("server.address", target.service),
                        attr("server.port", 8080i64),
                        attr("peer.service", target.service),
                        attr("tracelab.step", n as i64),
                        attr("http.response.status_code", i64::from(status)),
                    ];
                    if status >= 500 {
                        client
                            .attributes
                            .push(attr("error.type", status.to_string()));
                        client.status.code = StatusCode::Error;
                        failed_downstream = true;
                    }
                }
                Step::Db {
                    operation,
                    collection,
                } => {
                    let d = self.span(
                        rng,
                        route.service,
                        Some(id),
                        format!("{operation} {collection}"),
                        SpanKind::Client,
                        t,
                    );
                    t += LatencyModel::LogNormal {
                        median_ms: 1.5,
                        sigma: 0.6,
                    }
                    .sample(rng)
                    .as_nanos() as u64;
                    let db = &mut self.spans[d];
                    db.end_unix_nano = t;
                    db.attributes = vec![
                        attr("db.system.name", "postgresql"),
                        attr("db.operation.name", operation),
                        attr("tracelab.step", n as i64),
                        attr("db.collection.name", collection),
                        attr(
                            "db.query.text",
                            format!("{operation} * FROM {collection} WHERE id = $1"),
                        ),
                    ];
                }
                Step::Cache => {
                    let c = self.span(
                        rng,
                        route.service,
                        Some(id),
                        "cache get".to_string(),
                        SpanKind::Internal,
                        t,
                    );
                    t += 150_000 + rng.random_range(0..200_000);
                    let cache = &mut self.spans[c];
                    cache.end_unix_nano = t;
                    cache.attributes = vec![
                        attr("tracelab.step", n as i64),
                        attr("tracelab.cache.hit", rng.random_bool(0.8)),
                    ];
                }
                Step::Publish => {
                    let p = self.span(
                        rng,
                        route.service,
                        Some(id),
                        "orders publish".to_string(),
                        SpanKind::Producer,
                        t,
                    );
                    t += 300_000;
                    let producer_id = self.spans[p].span_id;
                    let producer = &mut self.spans[p];
                    producer.end_unix_nano = t;
                    producer.attributes = vec![
                        attr("messaging.system", "tracelab"),
                        attr("messaging.operation.type", "publish"),
                        attr("messaging.destination.name", "orders"),
                        attr("tracelab.step", n as i64),
                    ];
                    // Usually consumed within tens of milliseconds; one message in fifty
                    // waits behind a backlog for 5 to 20 seconds.
                    let lag = if rng.random_bool(0.02) {
                        rng.random_range(5 * SECOND..20 * SECOND)
                    } else {
                        LatencyModel::LogNormal {
                            median_ms: 20.0,
                            sigma: 0.8,
                        }
                        .sample(rng)
                        .as_nanos() as u64
                    };
                    let consumed = t + lag;
                    let c = self.span(
                        rng,
                        "email",
                        Some(producer_id),
                        "orders process".to_string(),
                        SpanKind::Consumer,
                        consumed,
                    );
                    let consumer_id = self.spans[c].span_id;
                    let d = self.span(
                        rng,
                        "email",
                        Some(consumer_id),
                        "INSERT emails".to_string(),
                        SpanKind::Client,
                        consumed + 100_000,
                    );
                    let db_end = consumed
                        + 100_000
                        + LatencyModel::LogNormal {
                            median_ms: 1.5,
                            sigma: 0.6,
                        }
                        .sample(rng)
                        .as_nanos() as u64;
                    let db = &mut self.spans[d];
                    db.end_unix_nano = db_end;
                    db.attributes = vec![
                        attr("db.system.name", "postgresql"),
                        attr("db.operation.name", "INSERT"),
                        attr("db.collection.name", "emails"),
                    ];
                    let consumer = &mut self.spans[c];
                    consumer.end_unix_nano = db_end + 200_000;
                    consumer.attributes = vec![
                        attr("messaging.system", "tracelab"),
                        attr("messaging.operation.type", "process"),
                        attr("messaging.destination.name", "orders"),
                        attr("tracelab.consumer.lag_ms", lag as f64 / MS as f64),
                    ];
                }
            }
        }
        let mut own = route.own.sample(rng).as_nanos() as u64;
        let mut error_rate = route.error_rate;
        for (incident_route, at, duration, fault) in self.incidents {
            let from = run_start + at;
            if *incident_route == key && (from..=from + duration).contains(&start) {
                match &fault.kind {
                    FaultKind::Latency(LatencyFault::Add(model)) => {
                        own += model.sample(rng).as_nanos() as u64;
                    }
                    FaultKind::Error { rate, .. } => error_rate = error_rate.max(*rate),
                    _ => {}
                }
            }
        }
        t += own;
        let injected = rng.random_bool(error_rate);
        let status = if injected {
            route.error_status
        } else if failed_downstream {
            502
        } else {
            200
        };
        let server = &mut self.spans[s];
        server.end_unix_nano = t;
        server
            .attributes
            .push(attr("http.response.status_code", i64::from(status)));
        if injected {
            server.attributes.push(attr("tracelab.injected", "error"));
        }
        if status >= 500 {
            server
                .attributes
                .push(attr("error.type", status.to_string()));
            server.status.code = StatusCode::Error;
        }
        (t, status)
    }
}
