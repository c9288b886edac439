//! The console: a local web page to search a run's traces and open any of them as a waterfall
//! with its critical path marked. `tracelab serve RUN_DIR` opens a finished run; `tracelab run
//! --ui` serves the same page while the run goes, with live figures (`console/live.rs`) and
//! fault controls that go through each service's admin API, as `curl` would.
//!
//! The spans stay on disk: the console indexes `spans.otlp.jsonl` once (for each trace, the
//! byte ranges of the lines holding its spans, and what a search asks about it; see
//! `tracelab_receiver::trace_index`) and reads a trace's lines back when it is opened. Memory
//! follows the number of traces, not the size of the file.
//!
//! Routes: `/` the page (HTML, CSS and script embedded in the binary; nothing is loaded from
//! elsewhere), `/api/overview` (the run: title, counts, services and their span names, the
//! per-service figures of `analysis.json` when it is there), `/api/search` (the newest
//! matching traces), `/trace/{id}` (one trace's waterfall, the report's view), and
//! `/report.html` (the run's report, when it has one). A live console adds `/api/live` (the
//! figures, active faults and incident windows now), `/api/live/stream` (the same every
//! second, as Server-Sent Events) and `/api/faults/{service}` (POST a fault to, or DELETE the
//! faults of, every instance of a service).
//!
//! The console listens on loopback unless told otherwise with `--public`, and says so.

mod live;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use clap::Args;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracelab_receiver::{TraceIndex, TraceQuery};
use tracelab_trace::{Span, TraceId};

pub use live::{EdgeFigures, Figures, LiveStats, SecondFigures, Snapshot};

use crate::signals::Signals;

/// The page: markup, style and script in one file.
const PAGE: &str = include_str!("console/page.html");

/// Most traces one search lists.
pub const MAX_RESULTS: usize = 500;

/// `tracelab serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A run directory (what `tracelab run` or `tracelab load` wrote).
    pub run_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Allow an address other than loopback: anyone who can reach it can read the run.
    #[arg(long)]
    pub public: bool,
}

/// One run directory, indexed and ready to answer; a live one is indexed as it is written.
pub struct Console {
    title: String,
    dir: PathBuf,
    spans: PathBuf,
    index: RwLock<TraceIndex>,
    /// `analysis.json`'s `services`, when the run directory has one.
    services: RwLock<Value>,
    /// A finished run's calls between services, totals (a live one's are in its figures).
    graph: Vec<live::EdgeFigures>,
    live: Option<Live>,
    /// Cancelled when the console stops: open event streams end with it.
    closing: CancellationToken,
}

/// What a console over a running lab has besides the index.
struct Live {
    stats: Mutex<LiveStats>,
    /// The admin API of every instance, by service.
    admin: HashMap<String, Vec<String>>,
    client: reqwest::Client,
    /// Writes the span file's buffered lines, before a trace is read back from it.
    flush: Box<dyn Fn() + Send + Sync>,
    finished: AtomicBool,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("title", &self.title)
            .field("dir", &self.dir)
            .field("live", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

/// The request header the admin API records as a fault's source.
const FAULT_SOURCE: (&str, &str) = ("tracelab-fault-source", "console");

/// How long the console waits for a service's admin API.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

impl Console {
    /// Indexes `dir`'s span file. Errors say what is missing and what to do.
    pub fn open(dir: &Path) -> anyhow::Result<Console> {
        if !dir.is_dir() {
            anyhow::bail!(
                "{}: not a directory; give a run directory, as `tracelab run` writes (runs/<scenario>-<time>)",
                dir.display()
            );
        }
        let spans = dir.join("spans.otlp.jsonl");
        if !spans.is_file() {
            anyhow::bail!(
                "{}: no spans.otlp.jsonl here, so no traces to show; is it a run directory of `tracelab run`? \
                 (for a trace file, `tracelab report FILE` writes an HTML report)",
                dir.display()
            );
        }
        // The call graph's totals, tallied in the same pass.
        let mut tallies = LiveStats::totals_only();
        let (index, summary) =
            TraceIndex::build_observed(&spans, &mut |line| tallies.record(line))?;
        let graph = tallies.snapshot(0).edges;
        for warning in &summary.warnings {
            eprintln!("warning: {warning}");
        }
        let title = std::fs::read_to_string(dir.join("report.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .and_then(|report| report["scenario"]["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                dir.file_name()
                    .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
            });
        let services = std::fs::read_to_string(dir.join("analysis.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .map_or(Value::Null, |analysis| analysis["services"].clone());
        Ok(Console {
            title,
            dir: dir.to_owned(),
            spans,
            index: RwLock::new(index),
            services: RwLock::new(services),
            graph,
            live: None,
            closing: CancellationToken::new(),
        })
    }

    /// A console over a run being written to `dir`: empty until [`Console::observe`] feeds
    /// it the span file's lines. `admin` is every instance's admin API by service; `flush`
    /// writes the span file's buffer out.
    pub fn live(
        title: &str,
        dir: &Path,
        admin: HashMap<String, Vec<String>>,
        flush: Box<dyn Fn() + Send + Sync>,
    ) -> Console {
        Console {
            title: title.to_string(),
            dir: dir.to_owned(),
            spans: dir.join("spans.otlp.jsonl"),
            index: RwLock::new(TraceIndex::new()),
            services: RwLock::new(Value::Null),
            graph: Vec::new(),
            live: Some(Live {
                stats: Mutex::new(LiveStats::default()),
                admin,
                client: reqwest::Client::builder()
                    .no_proxy()
                    .timeout(ADMIN_TIMEOUT)
                    .build()
                    .unwrap_or_default(),
                flush,
                finished: AtomicBool::new(false),
            }),
            closing: CancellationToken::new(),
        }
    }

    /// Records that the span file's line at `offset` (`len` bytes) holds `spans`.
    pub fn observe(&self, offset: u64, len: u32, spans: &[Span]) {
        write(&self.index).add_line(offset, len, spans);
        if let Some(live) = &self.live {
            lock(&live.stats).record(spans);
        }
    }

    /// The run has ended and its files are written: the page links the report and shows the
    /// analysis's figures.
    pub fn finish(&self) {
        if let Some(figures) = std::fs::read_to_string(self.dir.join("analysis.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .map(|analysis| analysis["services"].clone())
        {
            *write(&self.services) = figures;
        }
        if let Some(live) = &self.live {
            live.finished.store(true, Ordering::Release);
        }
    }

    /// Traces indexed.
    pub fn traces(&self) -> usize {
        read(&self.index).traces()
    }

    /// Spans indexed.
    pub fn spans(&self) -> u64 {
        read(&self.index).spans()
    }

    fn finished(&self) -> bool {
        self.live
            .as_ref()
            .is_none_or(|live| live.finished.load(Ordering::Acquire))
    }
}

// A panic elsewhere while holding one of these locks leaves whole values behind (an index
// entry or a tally is updated in one step), so a poisoned lock is still usable.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|p| p.into_inner())
}

/// The console's routes over `console`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/overview", get(overview))
        .route("/api/search", get(search))
        .route("/trace/{id}", get(trace))
        .route("/report.html", get(report))
        .route("/api/live", get(live_now))
        .route("/api/live/stream", get(live_stream))
        .route(
            "/api/faults/{service}",
            post(add_fault).delete(clear_faults),
        )
        .with_state(console)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

async fn overview(State(console): State<Arc<Console>>) -> Response {
    let index = read(&console.index);
    let services: Vec<Value> = index
        .services()
        .into_iter()
        .map(|(name, operations)| json!({ "name": name, "operations": operations }))
        .collect();
    axum::Json(json!({
        "title": console.title,
        "run_dir": console.dir.display().to_string(),
        "traces": index.traces(),
        "spans": index.spans(),
        "first_start_unix_nano": index.first_start_unix_nano(),
        "services": services,
        "figures": *read(&console.services),
        "graph": console.graph,
        "has_report": console.dir.join("report.html").is_file(),
        "live": console.live.is_some(),
        "finished": console.finished(),
        "controls": console.live.as_ref().map(|live| {
            let mut names: Vec<&String> = live.admin.keys().collect();
            names.sort();
            names
        }),
    }))
    .into_response()
}

/// `/api/search`'s parameters, as the page's form sends them: empty fields are absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    trace_id: Option<String>,
    service: Option<String>,
    operation: Option<String>,
    /// Milliseconds.
    min_ms: Option<String>,
    /// `1`, `true` or `on`.
    errors: Option<String>,
    /// Seconds since the run's first span.
    from_s: Option<String>,
    /// Seconds since the run's first span.
    to_s: Option<String>,
    limit: Option<String>,
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

fn number(field: &str, value: &Option<String>) -> Result<Option<f64>, String> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => match text.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
            _ => Err(format!("{field}: `{text}` is not a number of zero or more")),
        },
    }
}

impl SearchParams {
    fn query(&self, first_start: u64) -> Result<(TraceQuery, usize), String> {
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let trace_id = text(&self.trace_id);
        if let Some(id) = &trace_id
            && (id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(format!(
                "trace_id: `{id}` is not a trace id (up to 32 hex digits)"
            ));
        }
        let since_start = |s: f64| first_start.saturating_add((s * 1e9) as u64);
        let errors_only = match self.errors.as_deref().map(str::trim) {
            None | Some("" | "0" | "false" | "off") => false,
            Some("1" | "true" | "on") => true,
            Some(other) => return Err(format!("errors: `{other}` is not 1 or 0")),
        };
        let limit = number("limit", &self.limit)?.map_or(50, |n| n as usize);
        Ok((
            TraceQuery {
                trace_id,
                service: text(&self.service),
                operation: text(&self.operation),
                min_duration_ns: number("min_ms", &self.min_ms)?.map(|ms| (ms * 1e6) as u64),
                errors_only,
                start_from: number("from_s", &self.from_s)?.map(since_start),
                start_to: number("to_s", &self.to_s)?.map(since_start),
            },
            limit.clamp(1, MAX_RESULTS),
        ))
    }
}

async fn search(
    State(console): State<Arc<Console>>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    let index = read(&console.index);
    let (query, limit) = match params.query(index.first_start_unix_nano()) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let started = Instant::now();
    let result = index.search(&query, limit);
    drop(index);
    let mut body = serde_json::to_value(&result).unwrap_or(Value::Null);
    body["elapsed_ms"] = json!(started.elapsed().as_secs_f64() * 1e3);
    axum::Json(body).into_response()
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><meta charset=\"utf-8\"><title>Not found — tracelab</title>\
             <body><p>{}</p><p><a href=\"/\">Back to the search</a></p></body></html>",
            message.replace('&', "&amp;").replace('<', "&lt;")
        )),
    )
        .into_response()
}

async fn trace(State(console): State<Arc<Console>>, UrlPath(id): UrlPath<String>) -> Response {
    let Ok(trace_id) = id.parse::<TraceId>() else {
        return not_found(&format!(
            "`{id}` is not a trace id: a trace id is 32 hex digits."
        ));
    };
    let read = {
        let console = console.clone();
        tokio::task::spawn_blocking(move || {
            // The index is not held while the file is read: the receiver keeps adding to it.
            let at = read(&console.index).locate(trace_id);
            if let Some(live) = &console.live {
                (live.flush)();
            }
            at.map(|at| at.read(&console.spans)).transpose()
        })
        .await
    };
    match read {
        Ok(Ok(Some(trace))) => Html(tracelab_analysis::render_trace_page(
            &trace,
            &console.title,
            Some(("/", "← search")),
        ))
        .into_response(),
        Ok(Ok(None)) => not_found(&format!("This run has no trace {id}.")),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read trace {id}: {e}"),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn report(State(console): State<Arc<Console>>) -> Response {
    match tokio::fs::read(console.dir.join("report.html")).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], bytes).into_response(),
        Err(_) => not_found(
            "This run directory has no report.html; `tracelab report RUN_DIR` writes one.",
        ),
    }
}

/// What `/api/live` answers: the figures now, the faults on now and every incident window so
/// far (from the admin APIs while the run goes, from `incidents.jsonl` once it is written).
async fn live_state(console: &Console) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let snapshot = console
        .live
        .as_ref()
        .map(|live| lock(&live.stats).snapshot(u64::try_from(now.as_nanos()).unwrap_or(u64::MAX)));
    let finished = console.finished();
    let (faults, incidents) = match &console.live {
        Some(live) if !finished => admin_state(live).await,
        _ => (Value::Null, incidents_file(&console.dir)),
    };
    let index = read(&console.index);
    json!({
        "now_unix_nano": u64::try_from(now.as_nanos()).unwrap_or(u64::MAX),
        "finished": finished,
        "traces": index.traces(),
        "spans": index.spans(),
        "figures": snapshot,
        "faults": faults,
        "incidents": incidents,
    })
}

/// Active faults by service, and every window so far, from each instance's admin API. An
/// instance that does not answer is left out (its service may be stopping).
async fn admin_state(live: &Live) -> (Value, Value) {
    let mut faults = serde_json::Map::new();
    let mut windows = Vec::new();
    let mut names: Vec<&String> = live.admin.keys().collect();
    names.sort();
    for name in names {
        let mut active = Vec::new();
        for (instance, url) in live.admin[name].iter().enumerate() {
            let get = |path: &str| {
                let request = live.client.get(format!("{url}{path}"));
                async move {
                    let reply = request.send().await.ok()?;
                    serde_json::from_slice::<Value>(&reply.bytes().await.ok()?).ok()
                }
            };
            if let Some(Value::Array(on)) = get("/admin/faults").await {
                for mut fault in on {
                    fault["instance"] = json!(instance);
                    active.push(fault);
                }
            }
            if let Some(Value::Array(history)) = get("/admin/faults/history").await {
                for mut window in history {
                    window["instance"] = json!(instance);
                    windows.push(window);
                }
            }
        }
        faults.insert(name.clone(), Value::Array(active));
    }
    windows.sort_by_key(|w| w["start_unix_nano"].as_u64().unwrap_or(0));
    (Value::Object(faults), Value::Array(windows))
}

/// The windows of a finished run's `incidents.jsonl`.
fn incidents_file(dir: &Path) -> Value {
    let windows: Vec<Value> = std::fs::read_to_string(dir.join("incidents.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    Value::Array(windows)
}

async fn live_now(State(console): State<Arc<Console>>) -> Response {
    if console.live.is_none() {
        return not_found("This console shows a finished run: it has no live figures.");
    }
    axum::Json(live_state(&console).await).into_response()
}

/// `/api/live` every second, as Server-Sent Events, for as long as the page stays open.
async fn live_stream(State(console): State<Arc<Console>>) -> Response {
    if console.live.is_none() {
        return not_found("This console shows a finished run: it has no live figures.");
    }
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let stream = futures::stream::unfold((console, ticks), |(console, mut ticks)| async move {
        tokio::select! {
            _ = ticks.tick() => {}
            () = console.closing.cancelled() => return None,
        }
        let state = live_state(&console).await;
        let event = Event::default().event("live").json_data(state);
        Some((event, (console, ticks)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Sends a fault to every instance of `service`, through its admin API, with the console as
/// its source; the admin API's own answer (an error naming the field, say) comes back as is.
async fn add_fault(
    State(console): State<Arc<Console>>,
    UrlPath(service): UrlPath<String>,
    body: axum::body::Bytes,
) -> Response {
    fan_out(&console, &service, |client, url| {
        client
            .post(format!("{url}/admin/faults"))
            .header(FAULT_SOURCE.0, FAULT_SOURCE.1)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
    })
    .await
}

/// Switches every fault of every instance of `service` off.
async fn clear_faults(
    State(console): State<Arc<Console>>,
    UrlPath(service): UrlPath<String>,
) -> Response {
    fan_out(&console, &service, |client, url| {
        client
            .delete(format!("{url}/admin/faults"))
            .header(FAULT_SOURCE.0, FAULT_SOURCE.1)
    })
    .await
}

async fn json_body(reply: reqwest::Response) -> Value {
    reply
        .bytes()
        .await
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

async fn fan_out(
    console: &Console,
    service: &str,
    request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> Response {
    let Some(live) = &console.live else {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({ "error": "this console shows a finished run: there is no service to change" })),
        )
            .into_response();
    };
    if console.finished() {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({ "error": "the run has ended: its services are stopped" })),
        )
            .into_response();
    }
    let Some(urls) = live.admin.get(service) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": format!("no service `{service}` in this run") })),
        )
            .into_response();
    };
    let mut answers = Vec::new();
    for url in urls {
        match request(&live.client, url).send().await {
            Ok(reply) if reply.status().is_success() => {
                answers.push(json_body(reply).await);
            }
            Ok(reply) => {
                let status = reply.status().as_u16();
                let body = json_body(reply).await;
                return (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    axum::Json(body),
                )
                    .into_response();
            }
            Err(e) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    axum::Json(json!({ "error": format!("{service}'s admin API at {url} did not answer: {e}") })),
                )
                    .into_response();
            }
        }
    }
    axum::Json(json!({ "service": service, "instances": answers })).into_response()
}

/// Refuses an address other than loopback unless `public` allows it, and says what it means.
/// `flag` and `public_flag` name the options, for the message.
pub fn check_listen(
    addr: SocketAddr,
    public: bool,
    flag: &str,
    public_flag: &str,
) -> anyhow::Result<()> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if !public {
        anyhow::bail!(
            "{flag} {addr}: not a loopback address; anyone who can reach it could read this run{}. \
             Pass {public_flag} as well if that is what you want, or use 127.0.0.1",
            if flag == "--ui" {
                " and switch faults on"
            } else {
                ""
            }
        );
    }
    eprintln!(
        "warning: the console listens on {addr}, not only on this machine: anyone who can reach it can read this run"
    );
    Ok(())
}

/// Where `tracelab run --ui` serves the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiOptions {
    /// The address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Whether an address other than loopback is allowed (`--ui-public`).
    pub public: bool,
}

impl UiOptions {
    /// Takes the address (refusing one other than loopback without `public`), so that a bad
    /// one fails before the run starts.
    pub fn bind(&self) -> anyhow::Result<std::net::TcpListener> {
        check_listen(self.listen, self.public, "--ui", "--ui-public")?;
        let listener = std::net::TcpListener::bind(self.listen)
            .with_context(|| format!("--ui {}: cannot listen there", self.listen))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }
}

/// A console being served; dropping it stops the server.
pub struct Served {
    url: String,
    console: Arc<Console>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served").field("url", &self.url).finish()
    }
}

impl Served {
    /// Serves `console` on `listener` (on the current runtime) and says where, on stderr.
    pub fn start(listener: std::net::TcpListener, console: Arc<Console>) -> anyhow::Result<Served> {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}/");
        eprintln!(
            "console: {url}{}",
            if addr.ip().is_loopback() {
                " (this machine only)"
            } else {
                ""
            }
        );
        let stop = console.closing.clone();
        let task = tokio::spawn(serve(listener, console.clone(), stop.clone()));
        Ok(Served {
            url,
            console,
            stop,
            task: Some(task),
        })
    }

    /// The page's address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The console served.
    pub fn console(&self) -> &Arc<Console> {
        &self.console
    }

    /// Keeps serving for `linger` (unless `stop` is cancelled first), then stops.
    pub async fn linger(mut self, linger: Duration, stop: CancellationToken) {
        if !linger.is_zero() && !stop.is_cancelled() {
            eprintln!(
                "console: the run has ended; its results stay at {} for {} (Ctrl-C stops it sooner)",
                self.url,
                humantime::format_duration(linger)
            );
            tokio::select! {
                () = tokio::time::sleep(linger) => {}
                () = stop.cancelled() => {}
            }
        }
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            // Open pages' event streams end with the server; requests in flight get a moment.
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `tracelab serve RUN_DIR`: indexes the run, then serves the console until SIGINT/SIGTERM.
pub async fn serve_command(args: ServeArgs) -> anyhow::Result<ExitCode> {
    check_listen(args.listen, args.public, "--listen", "--public")?;
    let signals = Signals::install("stopping the console");
    let started = Instant::now();
    let dir = args.run_dir.clone();
    let console = tokio::task::spawn_blocking(move || Console::open(&dir))
        .await
        .context("indexing the run")??;
    eprintln!(
        "indexed {} traces ({} spans) of {} in {:.1} s",
        console.traces(),
        console.spans(),
        args.run_dir.display(),
        started.elapsed().as_secs_f64()
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("console: http://{addr}/");
    if addr.ip().is_loopback() {
        eprintln!(
            "(listening on loopback only: this machine can open it, no other; Ctrl-C stops it)"
        );
    }
    serve(listener, Arc::new(console), signals.token()).await;
    Ok(ExitCode::SUCCESS)
}

/// Serves the console on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Arc<Console>,
    stop: CancellationToken,
) {
    // Open pages' event streams never end by themselves: they end when the console stops, so
    // that the server's graceful shutdown does not wait for them.
    let closing = console.closing.clone();
    let stopping = stop.clone();
    tokio::spawn(async move {
        stopping.cancelled().await;
        closing.cancel();
    });
    tracelab_net::serve(
        listener,
        router(console),
        tracelab_net::Limits::default(),
        stop,
    )
    .await;
}
