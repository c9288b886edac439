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

//!
//! Layout: `shop` (the routes, incidents and how one trace's spans are built), `export` (the
//! per-service batches and the span file).

mod export;
mod shop;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_loadgen::{Outcome, RequestRecord};
use tracelab_scenario::{FaultKind, LatencyModel};
use tracelab_trace::{Attribute, TraceId};

use export::{Ended, Exporter};
use shop::{ENTRIES, ROUTES, TraceBuilder, attr, find, incidents};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
/// Requests a second, open loop.
const RATE: f64 = 500.0;
/// Recorded time of the first request: 2026-11-26T10:00:00Z.
const EPOCH: u64 = 1_795_686_400 * SECOND;

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

    let resources: HashMap<&'static str, Arc<Vec<Attribute>>> = ROUTES
        .iter()
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
            resources: &resources,
            incidents: &incidents,
            trace_id: TraceId(rng.random::<u128>().max(1).to_be_bytes()),
            sequence: requests.len() as u64,
            spans: Vec::new(),
        };
        let (root_end, status) = trace.serve(&mut rng, entry, None, "0", start, EPOCH);
        let end = root_end + 150_000;
        let route = find(entry);
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
            instance: None,
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
