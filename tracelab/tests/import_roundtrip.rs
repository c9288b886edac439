//! The round trip of `tracelab import`: a library scenario is run (≥ 2,000 requests, real
//! services on 127.0.0.1 port 0, real OTLP), its `spans.otlp.jsonl` imported, and the imported
//! scenario run at the same rate for the same time. Against the source run: the distribution
//! of spans per trace, each operation's error rate, and the service on top of the p99
//! critical path (`tracelab diff`), and each operation's p50 and p99 within ±10 % (or, where
//! the quantile's own sampling noise is wider, within that). The runs are made one after the
//! other, each alone on the machine: a run that shares the cores with another sees its
//! stalls, and its tail latency says more about the neighbour than about the scenario. A test
//! per property, each on three scenarios; the scenarios are run once for all of them.
//!
//! `cargo test -p tracelab --test import_roundtrip -- --ignored --nocapture fidelity_table`
//! runs every scenario of the library and prints the table of docs/import.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use tracelab_analysis::{DiffOptions, RunDiff};
use tracelab_scenario::FaultKind;

/// The scenarios the tests run: a fan-out with errors, a cache and parallel calls, an N+1
/// staircase, and a per-tenant outage.
const TESTED: [&str; 3] = ["quickstart", "n-plus-one", "tenant-outage"];

/// 2,000 requests per run: 200 requests/s for 10 s. The N+1 scenario's 31 spans a request at
/// 200 requests/s keep the 2 cores of CI so busy that each span's timing carries scheduling
/// delay: it runs at 100 requests/s for 20 s.
fn load_of(name: &str) -> (u32, u32) {
    match name {
        "n-plus-one" => (100, 20),
        _ => (200, 10),
    }
}

/// Latency agreement asked per operation: ±10 % of the source's p50 and p99. A p99 read from
/// a few hundred spans moves more than that between two runs of one scenario by chance alone,
/// so only operations with at least this many spans in the source are held to it.
const LATENCY_TOLERANCE: f64 = 0.10;
const LATENCY_MIN_SPANS: u64 = 1000;
/// Below this a difference is timer and scheduling noise of the lab on a shared machine, not
/// a property of the import: 0.5 ms.
const LATENCY_FLOOR_NS: f64 = 500_000.0;

fn tracelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tracelab"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("import-roundtrip-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    dir
}

fn library(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.yaml"))
}

/// Starts a run of `scenario`, at `load` (requests/s, seconds) or else at the scenario's own.
fn start(scenario: &Path, load: Option<(u32, u32)>, seed: u64, out: &Path) -> Child {
    let mut command = tracelab();
    command.arg("run").arg(scenario);
    if let Some((rate, seconds)) = load {
        command
            .args(["--rate", &rate.to_string(), "--duration"])
            .arg(format!("{seconds}s"));
    }
    command
        .args(["--seed", &seed.to_string()])
        .arg("--out")
        .arg(out)
        .args(["--no-progress", "--otlp-grpc", "127.0.0.1:0"])
        .args(["--otlp-http", "127.0.0.1:0", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tracelab run")
}

fn finish(child: Child, out: &Path) {
    let output = child.wait_with_output().expect("tracelab run");
    // A run whose requests failed by design exits 0 or 1; one that could not run writes no
    // spans.
    assert!(
        out.join("spans.otlp.jsonl").exists(),
        "{}: {}",
        out.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What one round trip measured.
struct RoundTrip {
    name: String,
    /// The source run against the imported scenario's run.
    diff: RunDiff,
    /// Span durations per operation (service, span name): in the source run and in the
    /// imported one.
    durations_source: Durations,
    durations_after: Durations,
    /// For the table: the source against the library scenario run again with another seed,
    /// which says whether the top of the p99 critical path is the scenario's or chance's.
    again: Option<RunDiff>,
    /// Spans per trace → traces, in the source and in the imported run.
    shape_before: BTreeMap<usize, u64>,
    shape_after: BTreeMap<usize, u64>,
}

/// Sorted span durations (ns) per operation, named as `tracelab diff` names them.
type Durations = BTreeMap<String, Vec<u64>>;

fn durations(dir: &Path) -> Durations {
    let mut all = Durations::new();
    tracelab::spans::for_each_trace(&dir.join("spans.otlp.jsonl"), &mut |t| {
        for span in &t.spans {
            all.entry(format!("{}: {}", span.service_name, span.name))
                .or_default()
                .push(span.duration_nanos());
        }
    })
    .expect("spans");
    all.values_mut().for_each(|v| v.sort_unstable());
    all
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn spans_per_trace(dir: &Path) -> BTreeMap<usize, u64> {
    let mut counts = BTreeMap::new();
    tracelab::spans::for_each_trace(&dir.join("spans.otlp.jsonl"), &mut |t| {
        *counts.entry(t.spans.len()).or_default() += 1;
    })
    .expect("spans");
    counts
}

/// Runs `name` as the source, imports it and runs the import, one run after the other; with
/// `again`, then also the library scenario once more with another seed.
fn round_trip(name: &str, again: bool) -> RoundTrip {
    let load = load_of(name);
    let source = scratch(&format!("{name}-source"));
    finish(start(&library(name), Some(load), 1, &source), &source);
    let imported = scratch(&format!("{name}.yaml"));
    let output = tracelab()
        .arg("import")
        .arg(&source)
        .arg("-o")
        .arg(&imported)
        .output()
        .expect("tracelab import");
    assert!(
        output.status.success(),
        "import {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let check = tracelab().arg("check").arg(&imported).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let replay = scratch(&format!("{name}-imported"));
    // Another seed: the imported scenario must reproduce the distributions, not the draws. At
    // the rate and for the time its import found in the traces (requests that entered, which
    // is not the source's rate where a request makes two traces).
    finish(start(&imported, None, 2, &replay), &replay);
    let options = DiffOptions::default();
    let again = again.then(|| {
        let dir = scratch(&format!("{name}-again"));
        finish(start(&library(name), Some(load), 3, &dir), &dir);
        let diff = tracelab::diff::diff_runs(&source, &dir, &options).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        diff
    });
    let measured = RoundTrip {
        name: name.to_owned(),
        diff: tracelab::diff::diff_runs(&source, &replay, &options).unwrap(),
        durations_source: durations(&source),
        durations_after: durations(&replay),
        again,
        shape_before: spans_per_trace(&source),
        shape_after: spans_per_trace(&replay),
    };
    // Runs of 2,000 requests are hundreds of megabytes; what the tests need is above.
    for dir in [&source, &replay] {
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_file(&imported);
    measured
}

/// The tested scenarios' round trips, run once (one at a time, in their own thread) for every
/// test of this file.
fn tested() -> &'static [RoundTrip] {
    static RUNS: OnceLock<Vec<RoundTrip>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let _machine = machine();
        TESTED.iter().map(|name| round_trip(name, false)).collect()
    })
}

/// Held while a test of this file runs labs: the tests run in threads of one process, and a
/// lab that shares the two cores with another one measures its neighbour's stalls.
fn machine() -> std::sync::MutexGuard<'static, ()> {
    static MACHINE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    MACHINE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Relative difference of `after` from `before`, 0 when they are within the floor.
fn latency_miss(before: u64, after: u64) -> f64 {
    let (b, a) = (before as f64, after as f64);
    if (a - b).abs() <= LATENCY_FLOOR_NS {
        return 0.0;
    }
    (a - b).abs() / b.max(1.0)
}

/// One quantile of one operation in the source and the imported run, and whether they agree:
/// within ±10 % (or the floor), or else within the sampling interval of the quantile — the
/// source's values between its `q ± δ` quantiles, δ the 99 % half-width of a difference of two
/// sample proportions of these sizes. The p99 of a lognormal leaf (σ 0.5) read from 1,600
/// spans has a standard error near 5 % in each run, so two runs of one scenario differ by
/// more than 10 % about one time in eight by chance alone; the interval says how much is
/// chance.
struct Agreement {
    before: u64,
    after: u64,
    /// Within ±10 % of the source, or within the floor.
    within: bool,
    /// `within`, or inside the quantile's sampling interval.
    within_noise: bool,
}

fn agreement(before: &[u64], after: &[u64], q: f64) -> Agreement {
    let (b, a) = (quantile(before, q), quantile(after, q));
    let within = latency_miss(b, a) <= LATENCY_TOLERANCE;
    let n = |v: &[u64]| v.len() as f64;
    let delta = 2.576 * (q * (1.0 - q) * (1.0 / n(before) + 1.0 / n(after))).sqrt();
    let (low, high) = (quantile(before, q - delta), quantile(before, q + delta));
    let floor = LATENCY_FLOOR_NS as u64;
    let within_noise =
        within || (low.saturating_sub(floor)..=high.saturating_add(floor)).contains(&a);
    Agreement {
        before: b,
        after: a,
        within,
        within_noise,
    }
}

/// The operations held to the latency tolerance, with their p50 and p99 in the source and the
/// imported run.
fn held_operations(rt: &RoundTrip) -> Vec<(String, [Agreement; 2])> {
    let mut held = Vec::new();
    for (name, source) in &rt.durations_source {
        let Some(after) = rt.durations_after.get(name) else {
            continue;
        };
        if (source.len() as u64) < LATENCY_MIN_SPANS || after.is_empty() {
            continue;
        }
        held.push((
            name.clone(),
            [
                agreement(source, after, 0.5),
                agreement(source, after, 0.99),
            ],
        ));
    }
    held
}

/// Operations whose p50 or p99 is off by more than ±10 % (`strict`) or also by more than
/// chance.
fn latency_misses(rt: &RoundTrip, strict: bool) -> Vec<String> {
    let mut misses = Vec::new();
    for (name, quantiles) in held_operations(rt) {
        for (what, q) in ["p50", "p99"].into_iter().zip(quantiles) {
            let agrees = match strict {
                true => q.within,
                false => q.within_noise,
            };
            if !agrees {
                misses.push(format!(
                    "{} {name} {what} {:.2} ms (source) → {:.2} ms (imported) ({:+.1} %)",
                    rt.name,
                    q.before as f64 / 1e6,
                    q.after as f64 / 1e6,
                    (q.after as f64 / q.before as f64 - 1.0) * 100.0,
                ));
            }
        }
    }
    misses
}

/// Bins of spans per trace whose share differs beyond sampling noise: a two-proportion z-test
/// per bin at 1 %, Bonferroni-corrected over the bins.
fn shape_misses(rt: &RoundTrip) -> Vec<String> {
    let nb: u64 = rt.shape_before.values().sum();
    let na: u64 = rt.shape_after.values().sum();
    let bins: Vec<usize> = rt
        .shape_before
        .keys()
        .chain(rt.shape_after.keys())
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // z for a two-sided 1 % / bins (Bonferroni), by bisection on the normal tail.
    let alpha = 0.01 / bins.len().max(1) as f64;
    let z = z_for(alpha / 2.0);
    let mut misses = Vec::new();
    for bin in bins {
        let xb = rt.shape_before.get(&bin).copied().unwrap_or(0) as f64;
        let xa = rt.shape_after.get(&bin).copied().unwrap_or(0) as f64;
        let (pb, pa) = (xb / nb as f64, xa / na as f64);
        let pooled = (xb + xa) / (nb + na) as f64;
        let se = (pooled * (1.0 - pooled) * (1.0 / nb as f64 + 1.0 / na as f64)).sqrt();
        let off = if se == 0.0 {
            pa != pb
        } else {
            (pa - pb).abs() / se > z
        };
        if off {
            misses.push(format!(
                "{}: traces of {bin} spans {:.2} % → {:.2} %",
                rt.name,
                pb * 100.0,
                pa * 100.0
            ));
        }
    }
    misses
}

/// The upper-tail normal quantile: z with P(Z > z) = tail.
fn z_for(tail: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 10.0f64);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if 0.5 * libm::erfc(mid / std::f64::consts::SQRT_2) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo + hi) / 2.0
}

/// Operations whose error rate in the imported run is outside the 99 % binomial interval of
/// the source's rate for that many spans (normal approximation with a continuity correction;
/// a rate of zero allows none).
fn error_misses(rt: &RoundTrip) -> Vec<String> {
    let z = z_for(0.005);
    let mut misses = Vec::new();
    for op in &rt.diff.operations {
        let n = op.after.spans;
        if n == 0 || op.before.spans == 0 {
            continue;
        }
        let p = op.before.error_rate;
        let expected = p * n as f64;
        let allowed = z * (n as f64 * p * (1.0 - p)).sqrt() + 0.5;
        let seen = op.after.error_rate * n as f64;
        if (seen - expected).abs() > allowed {
            misses.push(format!(
                "{}: {}: {} errors {:.2} % → {:.2} % of {n}",
                rt.name,
                op.service,
                op.operation.as_deref().unwrap_or(""),
                p * 100.0,
                op.after.error_rate * 100.0
            ));
        }
    }
    misses
}

/// The service with the largest share of the p99 critical path, and that share, in the
/// diff's first run (`after` false) or its second.
fn top_with_share(diff: &RunDiff, after: bool) -> (String, f64) {
    let share = |e: &tracelab_analysis::diff::EntityDiff| match after {
        false => e.before.critical_share_p99,
        true => e.after.critical_share_p99,
    };
    diff.services
        .iter()
        .max_by(|x, y| share(x).total_cmp(&share(y)))
        .map(|e| (e.service.clone(), share(e)))
        .unwrap_or_default()
}

/// The service with the largest share of the p99 critical path, before and after.
fn top_of_critical_path(diff: &RunDiff) -> (String, String) {
    (top_with_share(diff, false).0, top_with_share(diff, true).0)
}

#[test]
fn each_run_had_enough_requests() {
    for rt in tested() {
        assert!(
            rt.diff.before.traces >= 2000,
            "{}: {}",
            rt.name,
            rt.diff.before.traces
        );
        let ratio = rt.diff.after.traces as f64 / rt.diff.before.traces as f64;
        assert!((0.95..=1.05).contains(&ratio), "{}: {ratio}", rt.name);
    }
}

#[test]
fn per_operation_p50_and_p99_agree_within_ten_percent_or_sampling_noise() {
    // Every held operation's figures, so that a run shows its margins (`--nocapture`).
    for rt in tested() {
        for (name, [p50, p99]) in held_operations(rt) {
            let change = |q: &Agreement| (q.after as f64 / q.before as f64 - 1.0) * 100.0;
            println!(
                "{} {name}: p50 {:+.1} %, p99 {:+.1} %",
                rt.name,
                change(&p50),
                change(&p99)
            );
        }
    }
    let misses: Vec<String> = tested()
        .iter()
        .flat_map(|rt| latency_misses(rt, false))
        .collect();
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn spans_per_trace_are_distributed_alike() {
    let misses: Vec<String> = tested().iter().flat_map(shape_misses).collect();
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn error_rates_stay_inside_the_binomial_interval() {
    let misses: Vec<String> = tested().iter().flat_map(error_misses).collect();
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn the_same_service_tops_the_p99_critical_path() {
    for rt in tested() {
        let (before, after) = top_of_critical_path(&rt.diff);
        let shares: Vec<String> = rt
            .diff
            .services
            .iter()
            .map(|e| {
                format!(
                    "{} {:.1} % → {:.1} %",
                    e.service,
                    e.before.critical_share_p99 * 100.0,
                    e.after.critical_share_p99 * 100.0
                )
            })
            .collect();
        assert_eq!(before, after, "{}: {shares:#?}", rt.name);
    }
}

/// A fault that came and went comes back as an incident, where and when it was: the library's
/// outage (`retry-storm`: ledger fails every request from 3 s to 6 s), its slow leaf
/// (`cascading-timeout`: bank 4 s slower from 3 s to 6 s, cut short at 1 s by the gateway's
/// timeout), its lost context (`broken-propagation`: api's calls start traces of their own
/// from 3 s to 6 s) and its clock (`clock-skew`: payments' clock 1.5 s fast from 3 s to 6 s),
/// each run as it is (10 requests/s for 9 s) and imported.
#[test]
fn incidents_come_back_where_they_were() {
    let _machine = machine();
    let runs: Vec<(&str, PathBuf, Child)> = [
        "retry-storm",
        "cascading-timeout",
        "broken-propagation",
        "clock-skew",
    ]
    .into_iter()
    .map(|name| {
        let out = scratch(&format!("{name}-incident"));
        let child = start(&library(name), None, 1, &out);
        (name, out, child)
    })
    .collect();
    for (name, out, child) in runs {
        finish(child, &out);
        let file = scratch(&format!("{name}-incident.yaml"));
        let output = tracelab()
            .arg("import")
            .arg(&out)
            .arg("-o")
            .arg(&file)
            .output()
            .expect("tracelab import");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let scenario = tracelab_scenario::parse(&text, &file.display().to_string())
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        let [incident] = scenario.incidents.as_slice() else {
            panic!("{name}: one incident expected\n{text}");
        };
        let (at, length) = (incident.at.as_secs_f64(), incident.duration.as_secs_f64());
        assert!(
            (at - 3.0).abs() <= 0.5 && (length - 3.0).abs() <= 0.5,
            "{name}: at {at} s for {length} s\n{text}"
        );
        let fault = &incident.fault;
        match name {
            "retry-storm" => {
                assert_eq!(
                    (fault.service.as_str(), fault.route.as_deref()),
                    ("ledger", Some("/entries")),
                    "{text}"
                );
                assert!(
                    matches!(fault.kind, FaultKind::Error { rate, status: 503 } if rate >= 0.9),
                    "{text}"
                );
                // Outside the outage the ledger does not fail: at most a request at an edge
                // of the outage counts as a failure of the route.
                let ledger = &scenario.services["ledger"].routes["/entries"];
                assert!(
                    ledger.errors.as_ref().is_none_or(|e| e.rate < 0.05),
                    "{text}"
                );
            }
            "cascading-timeout" => {
                assert_eq!(
                    (fault.service.as_str(), fault.route.as_deref()),
                    ("bank", Some("/authorize")),
                    "{text}"
                );
                assert_eq!(fault.kind, FaultKind::Hang, "{text}");
            }
            "clock-skew" => {
                assert_eq!(fault.service, "payments", "{text}");
                assert!(
                    matches!(fault.kind, FaultKind::ClockSkew { offset_ms } if (offset_ms - 1500.0).abs() < 50.0),
                    "{text}"
                );
            }
            _ => {
                assert_eq!(
                    (fault.service.as_str(), &fault.kind),
                    ("api", &FaultKind::DropContext),
                    "{text}"
                );
                // The calls that started traces of their own are api's, not load: every
                // request enters at web, and api always calls db.
                let entries: Vec<&str> = scenario
                    .load
                    .entries
                    .iter()
                    .map(|e| e.service.as_str())
                    .collect();
                assert_eq!(entries, ["web"], "{text}");
                let steps = &scenario.services["api"].routes["/data"].steps;
                assert!(
                    matches!(steps.as_slice(), [tracelab_scenario::Step::Call(c)] if c.probability == 1.0),
                    "{text}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// The fidelity table of docs/import.md, for every scenario of the library.
#[test]
#[ignore = "runs every library scenario twice (minutes); prints the table of docs/import.md"]
fn fidelity_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".yaml").map(str::to_owned)
        })
        .collect();
    names.sort();
    println!(
        "| scenario | requests | p50, p99 within ±10 % of the source run | spans per trace | error rates in 99 % interval | top of p99 critical path: source → imported | the library scenario again |"
    );
    println!("|---|---|---|---|---|---|---|");
    let percent = |(service, share): (String, f64)| format!("{service} {:.1} %", share * 100.0);
    for name in names {
        let rt = round_trip(&name, true);
        let held = held_operations(&rt);
        let within = |i: usize| held.iter().filter(|(_, q)| q[i].within).count();
        let shape = shape_misses(&rt);
        let errors = error_misses(&rt);
        let error_ops = rt.diff.operations.len();
        let (top_b, top_a) = top_of_critical_path(&rt.diff);
        println!(
            "| {name} | {} → {} | {}/{n}, {}/{n} | {} | {}/{error_ops} | {} {} {} | {} |",
            rt.diff.before.traces,
            rt.diff.after.traces,
            within(0),
            within(1),
            match shape.is_empty() {
                true => "alike".to_owned(),
                false => format!("{} bins differ", shape.len()),
            },
            error_ops - errors.len(),
            percent(top_with_share(&rt.diff, false)),
            match top_b == top_a {
                true => "→",
                false => "→ **other:**",
            },
            percent(top_with_share(&rt.diff, true)),
            rt.again
                .as_ref()
                .map_or_else(String::new, |again| percent(top_with_share(again, true))),
            n = held.len(),
        );
        for miss in latency_misses(&rt, true)
            .iter()
            .chain(&shape)
            .chain(&errors)
        {
            eprintln!("  {miss}");
        }
    }
}
