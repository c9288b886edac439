//! A full-capture run directory of any size for the sampling lab: `spans.otlp.jsonl` as the
//! receiver's sink writes it (one OTLP/JSON `ExportTraceServiceRequest` per export batch),
//! `requests.jsonl` as the load generator records it, and `incidents.jsonl` with two incident
//! windows, so `tracelab compare` scores against ground truth.
//!
//! Run with `bash bench/compare-1m.sh` (1,000,000 spans, then times `tracelab compare`), or
//! `cargo run --release -p tracelab --example sampling_capture -- DIR [SPANS] [SEED]`.
//!
//! The traffic is a small shop behind a `frontend`: four entry routes (home, product page,
//! cart, checkout) at 500 requests a second, open loop, fanning out to eight services with
//! database and cache spans and a queue (the checkout publishes an order that `email`
//! consumes, usually within tens of milliseconds, rarely seconds later: those spans arrive
//! after a tail sampler's `decision_wait`). About 11 spans a trace, with the attributes the
//! lab's own services record. Errors: 1 % of payments fail with a 503 and 0.3 % of catalog
//! reads with a 500, and failures propagate to the root as 502s. Latency: every route draws
//! its own time from a log-normal model, payments from a Pareto tail. Incidents: payments
//! slow down by 300 ms for 20 s from the 60th second, and 20 % of catalog reads fail for 10 s
//! from the 120th second. Everything flows from the seed.
//!
//! Spans are written in export order: each service batches the spans it ended, 512 at most,
//! and flushes a batch at the latest one second after its first span ended, as a batch span
//! processor would.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_loadgen::{Outcome, RequestRecord};
use tracelab_scenario::{Fault, FaultKind, LatencyFault, LatencyModel};
use tracelab_trace::{AttrValue, Attribute, Span, SpanId, SpanKind, Status, StatusCode, TraceId};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
/// Requests a second, open loop.
const RATE: f64 = 500.0;
/// Recorded time of the first request: 2026-11-26T10:00:00Z.
const EPOCH: u64 = 1_795_686_400 * SECOND;
const BATCH_SPANS: usize = 512;
const BATCH_DELAY: u64 = SECOND;

/// One step of a route, in order.
#[derive(Clone, Copy)]
enum Step {
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

struct Route {
    service: &'static str,
    method: &'static str,
    path: &'static str,
    own: LatencyModel,
    error_rate: f64,
    error_status: u16,
    steps: &'static [Step],
}

fn routes() -> HashMap<&'static str, Route> {
    let log_normal = |median_ms: f64, sigma: f64| LatencyModel::LogNormal { median_ms, sigma };
    let route = |service, method, path, own, steps| Route {
        service,
        method,
        path,
        own,
        error_rate: 0.0,
        error_status: 500,
        steps,
    };
    let catalog_read = &[
        Step::Cache,
        Step::Db {
            operation: "SELECT",
            collection: "products",
        },
    ];
    let mut catalog = route(
        "product-catalog",
        "GET",
        "/products",
        log_normal(2.0, 0.5),
        catalog_read,
    );
    catalog.error_rate = 0.003;
    let mut payment = route(
        "payment",
        "POST",
        "/charge",
        LatencyModel::Pareto {
            scale_ms: 15.0,
            shape: 2.2,
        },
        &[Step::Db {
            operation: "INSERT",
            collection: "payments",
        }],
    );
    payment.error_rate = 0.01;
    payment.error_status = 503;
    HashMap::from([
        (
            "home",
            route(
                "frontend",
                "GET",
                "/",
                log_normal(4.0, 0.4),
                &[Step::Call("catalog"), Step::Call("currency"), Step::Cache],
            ),
        ),
        (
            "product",
            route(
                "frontend",
                "GET",
                "/product/{id}",
                log_normal(3.0, 0.4),
                &[
                    Step::Call("catalog"),
                    Step::Call("recommend"),
                    Step::Call("currency"),
                ],
            ),
        ),
        (
            "cart-page",
            route(
                "frontend",
                "GET",
                "/cart",
                log_normal(2.0, 0.4),
                &[Step::Call("cart"), Step::Call("currency")],
            ),
        ),
        (
            "checkout-page",
            route(
                "frontend",
                "POST",
                "/checkout",
                log_normal(5.0, 0.4),
                &[Step::Call("checkout")],
            ),
        ),
        ("catalog", catalog),
        (
            "recommend",
            route(
                "recommendation",
                "GET",
                "/recommend",
                log_normal(6.0, 0.6),
                &[Step::Call("catalog")],
            ),
        ),
        (
            "currency",
            route("currency", "GET", "/convert", log_normal(0.8, 0.3), &[]),
        ),
        (
            "cart",
            route(
                "cart",
                "GET",
                "/cart",
                log_normal(1.0, 0.4),
                &[
                    Step::Cache,
                    Step::Db {
                        operation: "SELECT",
                        collection: "carts",
                    },
                ],
            ),
        ),
        (
            "checkout",
            route(
                "checkout",
                "POST",
                "/checkout",
                log_normal(4.0, 0.5),
                &[
                    Step::Call("cart"),
                    Step::Call("payment"),
                    Step::Call("shipping"),
                    Step::Call("currency"),
                    Step::Publish,
                ],
            ),
        ),
        ("payment", payment),
        (
            "shipping",
            route("shipping", "GET", "/quote", log_normal(3.0, 0.4), &[]),
        ),
    ])
}

/// Entry routes and their weights (percent).
const ENTRIES: [(&str, u32); 4] = [
    ("home", 30),
    ("product", 35),
    ("cart-page", 20),
    ("checkout-page", 15),
];

/// The incidents, relative to the start of the run: (route, start, duration, fault).
fn incidents() -> Vec<(&'static str, u64, u64, Fault)> {
    vec![
        (
            "payment",
            60 * SECOND,
            20 * SECOND,
            Fault {
                service: "payment".into(),
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
struct TraceBuilder<'r> {
    routes: &'r HashMap<&'static str, Route>,
    resources: &'r HashMap<&'static str, Arc<Vec<Attribute>>>,
    incidents: &'r [(&'static str, u64, u64, Fault)],
    trace_id: TraceId,
    sequence: u64,
    spans: Vec<Span>,
}

/// The attribute value types the generator writes.
trait AttrInput {
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

fn attr(key: &str, value: impl AttrInput) -> Attribute {
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
    fn serve(
        &mut self,
        rng: &mut StdRng,
        key: &str,
        parent: Option<SpanId>,
        path_prefix: &str,
        start: u64,
        run_start: u64,
    ) -> (u64, u16) {
        let route = &self.routes[key];
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
                    let target = &self.routes[callee];
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

/// A span waiting for its export, ordered by end time (then creation order).
struct Ended(u64, u64, Span);

impl PartialEq for Ended {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Ended {}
impl PartialOrd for Ended {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ended {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// Per-service export batches, written as the receiver's sink writes requests.
struct Exporter {
    out: BufWriter<File>,
    batches: HashMap<Arc<str>, (u64, Vec<Span>)>,
    lines: u64,
    spans: u64,
}

impl Exporter {
    fn add(&mut self, span: Span) -> anyhow::Result<()> {
        let end = span.end_unix_nano;
        let batch = self
            .batches
            .entry(span.service_name.clone())
            .or_insert_with(|| (end, Vec::new()));
        if batch.1.is_empty() {
            batch.0 = end;
        }
        batch.1.push(span);
        if batch.1.len() >= BATCH_SPANS {
            let spans = std::mem::take(&mut batch.1);
            self.write(&spans)?;
        }
        Ok(())
    }

    /// Flushes every batch whose first span ended a batch delay before `now`.
    fn tick(&mut self, now: u64) -> anyhow::Result<()> {
        let mut due: Vec<Vec<Span>> = Vec::new();
        for (first, spans) in self.batches.values_mut() {
            if !spans.is_empty() && *first + BATCH_DELAY <= now {
                due.push(std::mem::take(spans));
            }
        }
        due.sort_by_key(|b| b[0].end_unix_nano);
        for spans in due {
            self.write(&spans)?;
        }
        Ok(())
    }

    fn write(&mut self, spans: &[Span]) -> anyhow::Result<()> {
        self.out
            .write_all(tracelab_receiver::otlp_json::encode_request_line(spans).as_bytes())?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        self.spans += spans.len() as u64;
        Ok(())
    }
}

fn jsonl<T: serde::Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut out = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for item in items {
        serde_json::to_writer(&mut out, item)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .context("usage: sampling_capture DIR [SPANS] [SEED]")?,
    );
    let target: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let seed: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(7);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let routes = routes();
    let resources: HashMap<&'static str, Arc<Vec<Attribute>>> = routes
        .values()
        .map(|r| r.service)
        .chain(["email"])
        .map(|service| {
            (
                service,
                Arc::new(vec![
                    attr("service.name", service),
                    attr("service.version", "1.4.2"),
                    attr("service.instance.id", format!("{service}-0")),
                    attr("telemetry.sdk.language", "rust"),
                    attr("telemetry.sdk.name", "opentelemetry"),
                    attr("telemetry.sdk.version", "0.33.0"),
                ]),
            )
        })
        .collect();
    let incidents = incidents();
    let mut rng = StdRng::seed_from_u64(seed);
    let arrivals = LatencyModel::Exponential {
        mean_ms: 1000.0 / RATE,
    };
    let mut exporter = Exporter {
        out: BufWriter::with_capacity(
            1 << 20,
            File::create(dir.join("spans.otlp.jsonl")).context("cannot create the span file")?,
        ),
        batches: HashMap::new(),
        lines: 0,
        spans: 0,
    };
    let mut ended: BinaryHeap<Reverse<Ended>> = BinaryHeap::new();
    let mut requests: Vec<RequestRecord> = Vec::new();
    let mut made = 0u64;
    let mut created = 0u64;
    let mut scheduled = EPOCH;
    while made < target {
        scheduled += arrivals.sample(&mut rng).as_nanos() as u64;
        let late = rng.random_range(0..100_000);
        let start = scheduled + late;
        // Everything that ended before this request started has reached the exporter.
        while let Some(Reverse(Ended(end, _, _))) = ended.peek()
            && *end <= start
        {
            let Some(Reverse(Ended(_, _, span))) = ended.pop() else {
                break;
            };
            exporter.add(span)?;
        }
        exporter.tick(start)?;

        let pick = rng.random_range(0..100);
        let mut acc = 0;
        let entry = ENTRIES
            .iter()
            .find(|(_, weight)| {
                acc += weight;
                pick < acc
            })
            .map_or("home", |(key, _)| key);
        let mut trace = TraceBuilder {
            routes: &routes,
            resources: &resources,
            incidents: &incidents,
            trace_id: TraceId(rng.random::<u128>().max(1).to_be_bytes()),
            sequence: requests.len() as u64,
            spans: Vec::new(),
        };
        let (root_end, status) = trace.serve(&mut rng, entry, None, "0", start, EPOCH);
        let end = root_end + 150_000;
        let route = &routes[entry];
        requests.push(RequestRecord {
            sequence: trace.sequence,
            trace_id: trace.trace_id.to_hex(),
            entry: format!("{} {} {}", route.service, route.method, route.path),
            service: route.service.to_string(),
            route: route.path.to_string(),
            scheduled_unix_nano: scheduled,
            start_unix_nano: start,
            end_unix_nano: end,
            latency_ms: (end - scheduled) as f64 / MS as f64,
            service_time_ms: (end - start) as f64 / MS as f64,
            status: Some(status),
            outcome: if status < 400 {
                Outcome::Ok
            } else {
                Outcome::HttpError
            },
            error: status >= 400,
            late_by_ms: late as f64 / MS as f64,
            sampled: Some(true),
            user: None,
            baggage: Default::default(),
        });
        for span in trace.spans {
            made += 1;
            created += 1;
            ended.push(Reverse(Ended(span.end_unix_nano, created, span)));
        }
    }
    while let Some(Reverse(Ended(end, _, span))) = ended.pop() {
        exporter.tick(end)?;
        exporter.add(span)?;
    }
    exporter.tick(u64::MAX)?;
    exporter.out.flush()?;

    jsonl(&dir.join("requests.jsonl"), &requests)?;
    let windows: Vec<IncidentWindow> = incidents
        .into_iter()
        .map(|(_, at, duration, fault)| IncidentWindow {
            start_unix_nano: EPOCH + at,
            end_unix_nano: EPOCH + at + duration,
            what: match &fault.kind {
                FaultKind::Latency(_) => format!("{} slows down by 300 ms", fault.service),
                _ => format!("{} fails 20 % of reads", fault.service),
            },
            service: fault.service.clone(),
            route: fault.route.clone(),
            source: "timeline".to_string(),
            fault,
        })
        .collect();
    jsonl(&dir.join("incidents.jsonl"), &windows)?;
    println!(
        "{}: {} spans in {} export requests, {} traces over {:.0} s",
        dir.display(),
        exporter.spans,
        exporter.lines,
        requests.len(),
        (scheduled - EPOCH) as f64 / SECOND as f64
    );
    Ok(())
}
