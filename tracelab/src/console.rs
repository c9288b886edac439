//! `tracelab serve`: the console over a run directory, a local web page to search the run's
//! traces and open any of them as a waterfall with its critical path marked.
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
//! `/report.html` (the run's report, when it has one).
//!
//! The console listens on loopback unless told otherwise with `--public`, and says so.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracelab_receiver::{TraceIndex, TraceQuery};
use tracelab_trace::TraceId;

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

/// One run directory, indexed and ready to answer.
#[derive(Debug)]
pub struct Console {
    title: String,
    dir: PathBuf,
    spans: PathBuf,
    index: TraceIndex,
    /// `analysis.json`'s `services`, when the run directory has one.
    services: Value,
}

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
        let (index, summary) = TraceIndex::build(&spans)?;
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
            index,
            services,
        })
    }

    /// Traces indexed.
    pub fn traces(&self) -> usize {
        self.index.traces()
    }

    /// Spans indexed.
    pub fn spans(&self) -> u64 {
        self.index.spans()
    }
}

/// The console's routes over `console`.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/overview", get(overview))
        .route("/api/search", get(search))
        .route("/trace/{id}", get(trace))
        .route("/report.html", get(report))
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
    let services: Vec<Value> = console
        .index
        .services()
        .into_iter()
        .map(|(name, operations)| json!({ "name": name, "operations": operations }))
        .collect();
    axum::Json(json!({
        "title": console.title,
        "run_dir": console.dir.display().to_string(),
        "traces": console.index.traces(),
        "spans": console.index.spans(),
        "first_start_unix_nano": console.index.first_start_unix_nano(),
        "services": services,
        "figures": console.services,
        "has_report": console.dir.join("report.html").is_file(),
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
    let (query, limit) = match params.query(console.index.first_start_unix_nano()) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let started = Instant::now();
    let result = console.index.search(&query, limit);
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
        tokio::task::spawn_blocking(move || console.index.read_trace(&console.spans, trace_id))
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

/// Refuses an address other than loopback unless `public` allows it, and says what it means.
pub fn check_listen(addr: SocketAddr, public: bool) -> anyhow::Result<()> {
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if loopback {
        return Ok(());
    }
    if !public {
        anyhow::bail!(
            "--listen {addr}: not a loopback address; anyone who can reach it could read this run. \
             Pass --public as well if that is what you want, or listen on 127.0.0.1"
        );
    }
    eprintln!(
        "warning: the console listens on {addr}, not only on this machine: anyone who can reach it can read this run"
    );
    Ok(())
}

/// `tracelab serve RUN_DIR`: indexes the run, then serves the console until SIGINT/SIGTERM.
pub async fn serve_command(args: ServeArgs) -> anyhow::Result<ExitCode> {
    check_listen(args.listen, args.public)?;
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
    tracelab_net::serve(
        listener,
        router(console),
        tracelab_net::Limits::default(),
        stop,
    )
    .await;
}
