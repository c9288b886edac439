//! The right answers of each lesson, computed from the run directory alone: the raw OTLP
//! JSON of `spans.otlp.jsonl` (read here, not through tracelab's readers), `incidents.jsonl`
//! and `analysis.json`, plus the trace ids the lesson printed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

/// One span of `spans.otlp.jsonl`, read straight from the OTLP JSON.
#[derive(Debug, Clone)]
pub struct RawSpan {
    trace: String,
    id: String,
    parent: Option<String>,
    service: String,
    kind: i64,
    name: String,
    start: u64,
    end: u64,
    error: bool,
    /// The span ids its links point at.
    links: Vec<String>,
}

pub const SERVER: i64 = 2;
pub const CLIENT: i64 = 3;
pub const PRODUCER: i64 = 4;

pub fn read_spans(dir: &Path) -> Vec<RawSpan> {
    let text = std::fs::read_to_string(dir.join("spans.otlp.jsonl")).unwrap();
    let mut spans = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let request: Value = serde_json::from_str(line).unwrap();
        for rs in request["resourceSpans"].as_array().unwrap() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "service.name")
                .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
                .unwrap();
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for s in ss["spans"].as_array().unwrap() {
                    let nanos = |k: &str| s[k].as_str().unwrap().parse::<u64>().unwrap();
                    spans.push(RawSpan {
                        trace: s["traceId"].as_str().unwrap().to_string(),
                        id: s["spanId"].as_str().unwrap().to_string(),
                        parent: s["parentSpanId"]
                            .as_str()
                            .filter(|p| !p.is_empty())
                            .map(str::to_string),
                        service: service.clone(),
                        kind: s["kind"].as_i64().unwrap_or(0),
                        name: s["name"].as_str().unwrap().to_string(),
                        start: nanos("startTimeUnixNano"),
                        end: nanos("endTimeUnixNano"),
                        error: s["status"]["code"].as_i64() == Some(2),
                        links: s["links"]
                            .as_array()
                            .map(|links| {
                                links
                                    .iter()
                                    .filter_map(|l| l["spanId"].as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    });
                }
            }
        }
    }
    spans
}

pub fn by_trace(spans: &[RawSpan]) -> BTreeMap<String, Vec<RawSpan>> {
    let mut traces: BTreeMap<String, Vec<RawSpan>> = BTreeMap::new();
    for s in spans {
        traces.entry(s.trace.clone()).or_default().push(s.clone());
    }
    traces
}

pub fn analysis(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("analysis.json")).unwrap()).unwrap()
}

/// The 32-hex-digit trace id on the printed line starting with `q`.
pub fn trace_id_in(printed: &str, q: &str) -> String {
    let line = printed
        .lines()
        .find(|l| l.starts_with(q))
        .unwrap_or_else(|| panic!("no {q} in:\n{printed}"));
    line.split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 32)
        .unwrap_or_else(|| panic!("no trace id in {line:?}"))
        .to_string()
}

/// first-trace: the p99 leader from analysis.json, the span count of the slowest trace from
/// the raw spans, the service with the most SERVER spans from the raw spans.
pub fn solve_first_trace(dir: &Path, _printed: &str) -> Vec<String> {
    let leader = p99_leader(dir);
    let traces = by_trace(&read_spans(dir));
    let slowest = traces
        .values()
        .max_by_key(|spans| {
            let start = spans.iter().map(|s| s.start).min().unwrap();
            let end = spans.iter().map(|s| s.end).max().unwrap();
            end - start
        })
        .unwrap();
    let mut requests: HashMap<&str, usize> = HashMap::new();
    for s in traces.values().flatten().filter(|s| s.kind == SERVER) {
        *requests.entry(s.service.as_str()).or_default() += 1;
    }
    let busiest = requests.iter().max_by_key(|(_, n)| **n).unwrap().0;
    vec![leader, slowest.len().to_string(), busiest.to_string()]
}

/// n-plus-one: span count of the typical trace, whether its calls overlap, and the count at
/// 20 calls, all from the raw spans.
pub fn solve_n_plus_one(dir: &Path, _printed: &str) -> Vec<String> {
    let traces = by_trace(&read_spans(dir));
    let mut sizes: BTreeMap<usize, usize> = BTreeMap::new();
    for spans in traces.values() {
        *sizes.entry(spans.len()).or_default() += 1;
    }
    let typical_size = *sizes.iter().max_by_key(|(_, n)| **n).unwrap().0;
    let typical = traces.values().find(|t| t.len() == typical_size).unwrap();
    let mut calls: Vec<&RawSpan> = typical.iter().filter(|s| s.kind == CLIENT).collect();
    // The loadgen's own CLIENT span is the root; the calls to catalog are under orders.
    calls.retain(|s| s.service == "orders");
    calls.sort_by_key(|s| s.start);
    let overlap = calls.windows(2).any(|w| w[1].start < w[0].end);
    let below_one_call = typical
        .iter()
        .filter(|s| {
            // Under the first call: its parent chain reaches it.
            let mut current = Some(*s);
            while let Some(span) = current {
                if span.id == calls[0].id {
                    return true;
                }
                current = span
                    .parent
                    .as_ref()
                    .and_then(|p| typical.iter().find(|t| &t.id == p));
            }
            false
        })
        .count();
    let at_twenty = typical_size + (20 - calls.len()) * below_one_call;
    vec![
        typical_size.to_string(),
        if overlap { "parallel" } else { "sequential" }.to_string(),
        at_twenty.to_string(),
    ]
}

/// error-origins: the service whose failing spans have no failing child, the origin's SERVER
/// spans in the asked-about trace, and when the first failure started against the incident.
pub fn solve_error_origins(dir: &Path, printed: &str) -> Vec<String> {
    let spans = read_spans(dir);
    let origin = origin_service(&spans);
    // Q2 asks about the failing trace the summary shows, before the questions.
    let asked = trace_id_in(printed, "First failing trace ");
    let origin_calls = spans
        .iter()
        .filter(|s| s.trace == asked && s.service == origin && s.kind == SERVER)
        .count();
    let traces = by_trace(&spans);
    // The first error: the end of the earliest failing span.
    let first_failure = traces
        .values()
        .flatten()
        .filter(|s| s.error)
        .map(|s| s.end)
        .min()
        .unwrap();
    let incidents = std::fs::read_to_string(dir.join("incidents.jsonl")).unwrap();
    let window: Value = serde_json::from_str(incidents.lines().next().unwrap()).unwrap();
    let from = window["start_unix_nano"].as_u64().unwrap();
    let to = window["end_unix_nano"].as_u64().unwrap();
    let when = if first_failure < from {
        "before"
    } else if first_failure <= to {
        "during"
    } else {
        "after"
    };
    vec![origin, origin_calls.to_string(), when.to_string()]
}

/// The service whose failing spans most often have no failing child: where failures start.
pub fn origin_service(spans: &[RawSpan]) -> String {
    let mut leaves: HashMap<&str, usize> = HashMap::new();
    for s in spans.iter().filter(|s| s.error) {
        let has_failing_child = spans
            .iter()
            .any(|c| c.error && c.parent.as_deref() == Some(&s.id) && c.trace == s.trace);
        if !has_failing_child {
            *leaves.entry(s.service.as_str()).or_default() += 1;
        }
    }
    assert!(!leaves.is_empty(), "the run has no failure to ask about");
    leaves
        .iter()
        .max_by_key(|(_, n)| **n)
        .unwrap()
        .0
        .to_string()
}

/// The service with the largest critical-path share at p99 in analysis.json.
pub fn p99_leader(dir: &Path) -> String {
    analysis(dir)["services"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            let share = |s: &Value| s["critical_share_p99"].as_f64().unwrap();
            share(a).total_cmp(&share(b))
        })
        .unwrap()["service"]
        .as_str()
        .unwrap()
        .to_string()
}

/// cascading-timeout: the p99 leader, the origin of the failures, and the whole seconds the
/// failing trace the summary shows took, from its raw spans.
pub fn solve_cascading_timeout(dir: &Path, printed: &str) -> Vec<String> {
    let spans = read_spans(dir);
    let failing = trace_id_in(printed, "First failing trace ");
    let of_trace: Vec<&RawSpan> = spans.iter().filter(|s| s.trace == failing).collect();
    let start = of_trace.iter().map(|s| s.start).min().unwrap();
    let root_end = of_trace
        .iter()
        .filter(|s| s.parent.is_none())
        .map(|s| s.end)
        .max()
        .unwrap();
    let seconds = ((root_end - start) as f64 / 1e9).round() as u64;
    vec![p99_leader(dir), origin_service(&spans), seconds.to_string()]
}

/// The traces of the raw spans, each with its root span (the one without a parent) if it has
/// exactly one.
fn root_of(spans: &[RawSpan]) -> Option<&RawSpan> {
    let mut roots = spans.iter().filter(|s| s.parent.is_none());
    match (roots.next(), roots.next()) {
        (Some(r), None) => Some(r),
        _ => None,
    }
}

/// broken-propagation: every trace in the raw spans, the service at the root of the traces
/// that do not start at the load generator, and the span count of the first request sent
/// once the incident (incidents.jsonl) began.
pub fn solve_broken_propagation(dir: &Path, _printed: &str) -> Vec<String> {
    let traces = by_trace(&read_spans(dir));
    let dropper = traces
        .values()
        .filter_map(|t| root_of(t))
        .find(|r| r.service != "loadgen")
        .expect("no trace starts away from the load generator")
        .service
        .clone();
    let incidents = std::fs::read_to_string(dir.join("incidents.jsonl")).unwrap();
    let window: Value = serde_json::from_str(incidents.lines().next().unwrap()).unwrap();
    let from = window["start_unix_nano"].as_u64().unwrap();
    let first_cut = traces
        .values()
        .filter(|t| root_of(t).is_some_and(|r| r.service == "loadgen"))
        .map(|t| (t.iter().map(|s| s.start).min().unwrap(), t.len()))
        .filter(|(start, _)| *start >= from)
        .min()
        .expect("no request was sent during the incident")
        .1;
    vec![traces.len().to_string(), dropper, first_cut.to_string()]
}

/// pool-exhaustion: the service of the `worker pool wait` spans, the waited share of the
/// slowest trace the summary shows, and the median work of the pool's SERVER spans (their
/// time minus the wait under them).
pub fn solve_pool_exhaustion(dir: &Path, printed: &str) -> Vec<String> {
    let spans = read_spans(dir);
    let waits: Vec<&RawSpan> = spans
        .iter()
        .filter(|s| s.name == "worker pool wait")
        .collect();
    let pool = waits.first().expect("no request waited").service.clone();
    let slowest = trace_id_in(printed, "Slowest trace ");
    let of_slowest: Vec<&RawSpan> = spans.iter().filter(|s| s.trace == slowest).collect();
    let length = of_slowest.iter().map(|s| s.end).max().unwrap()
        - of_slowest.iter().map(|s| s.start).min().unwrap();
    let waited: u64 = of_slowest
        .iter()
        .filter(|s| s.name == "worker pool wait")
        .map(|s| s.end - s.start)
        .sum();
    let share = (waited as f64 / length as f64 * 100.0).round() as u64;
    let mut work: Vec<u64> = spans
        .iter()
        .filter(|s| s.service == pool && s.kind == SERVER)
        .map(|server| {
            let wait: u64 = waits
                .iter()
                .filter(|w| w.parent.as_deref() == Some(&server.id))
                .map(|w| w.end - w.start)
                .sum();
            server.end - server.start - wait
        })
        .collect();
    work.sort_unstable();
    let work_ms = (work[work.len() / 2] as f64 / 1e6).round() as u64;
    vec![pool, share.to_string(), work_ms.to_string()]
}

/// clock-skew: the service of the spans that stick out of their parents, how many traces
/// have one, the median shift of those spans from their parents' starts (to the nearest
/// 100 ms), and whether the load generator's own spans of those traces were slower.
pub fn solve_clock_skew(dir: &Path, _printed: &str) -> Vec<String> {
    let traces = by_trace(&read_spans(dir));
    let mut services: BTreeMap<String, usize> = BTreeMap::new();
    let mut shifts = Vec::new();
    let mut skewed = Vec::new();
    let mut others = Vec::new();
    for spans in traces.values() {
        let by_id: HashMap<&str, &RawSpan> = spans.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut outside = false;
        for child in spans {
            let Some(parent) = child.parent.as_deref().and_then(|p| by_id.get(p)) else {
                continue;
            };
            if child.start < parent.start || child.end > parent.end {
                outside = true;
                *services.entry(child.service.clone()).or_default() += 1;
                shifts.push(child.start as i64 - parent.start as i64);
            }
        }
        let wait = root_of(spans)
            .filter(|r| r.service == "loadgen")
            .map(|r| r.end - r.start);
        if let Some(wait) = wait {
            if outside {
                skewed.push(wait);
            } else {
                others.push(wait);
            }
        }
    }
    let service = services
        .iter()
        .max_by_key(|(_, n)| **n)
        .expect("no span outside its parent")
        .0
        .clone();
    shifts.sort_unstable();
    let shift = shifts[shifts.len() / 2].unsigned_abs() as f64 / 1e6;
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let slower = median(skewed.clone()) as f64 > median(others) as f64 * 1.5;
    vec![
        service,
        skewed.len().to_string(),
        ((shift / 100.0).round() as u64 * 100).to_string(),
        if slower { "yes" } else { "no" }.to_string(),
    ]
}

/// queue-lag: the service of the roots that are not the load generator's, how those roots
/// are tied to the requests (a parent, a link, or nothing), whether a request lasted as long
/// as its message's wait in the queue, and how many PRODUCER spans no consumer links to.
pub fn solve_queue_lag(dir: &Path, _printed: &str) -> Vec<String> {
    let spans = read_spans(dir);
    let traces = by_trace(&spans);
    let roots: Vec<&RawSpan> = traces.values().filter_map(|t| root_of(t)).collect();
    let consumers: Vec<&&RawSpan> = roots.iter().filter(|r| r.service != "loadgen").collect();
    let consumer = consumers.first().expect("no trace outside the requests");
    let producers: HashMap<&str, &RawSpan> = spans
        .iter()
        .filter(|s| s.kind == PRODUCER)
        .map(|s| (s.id.as_str(), s))
        .collect();
    let tie = if consumer.parent.is_some() {
        "parent"
    } else if consumer.links.is_empty() {
        "nothing"
    } else {
        "link"
    };
    let mut waits: Vec<u64> = Vec::new();
    let mut consumed = std::collections::HashSet::new();
    for c in &consumers {
        for link in &c.links {
            if let Some(p) = producers.get(link.as_str()) {
                waits.push(c.start.saturating_sub(p.end));
                consumed.insert(link.clone());
            }
        }
    }
    waits.sort_unstable();
    let mut requests: Vec<u64> = roots
        .iter()
        .filter(|r| r.service == "loadgen")
        .map(|r| r.end - r.start)
        .collect();
    requests.sort_unstable();
    let waited = requests[requests.len() / 2] >= waits[waits.len() / 2];
    vec![
        consumer.service.clone(),
        tie.to_string(),
        if waited { "yes" } else { "no" }.to_string(),
        (producers.len() - consumed.len()).to_string(),
    ]
}

/// head-vs-tail: the failed requests' traces `head-10pct` keeps, decided here from the trace ids by the
/// consistent-probability rule (OpenTelemetry's OTEP 235: kept when the trace id's lowest 56
/// bits are at least the rejection threshold, `e666` at 10 % and four hex digits); the
/// strategy that keeps more of the incident's traces (the tail keeps at least every error
/// trace); and whether the tail kept more than half of the bytes, from `sampling.json`, the
/// table the learner reads.
pub fn solve_head_vs_tail(dir: &Path, printed: &str) -> Vec<String> {
    let traces = by_trace(&read_spans(dir));
    let threshold: u64 = 0xe666 << 40;
    let head_keeps = |id: &str| u64::from_str_radix(&id[18..], 16).unwrap() >= threshold;
    // An error trace, for the comparison, is a request that failed (requests.jsonl is its
    // ground truth); a trace whose inner call failed and was retried into a success is not.
    let requests = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    let errors: Vec<String> = requests
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["error"] == true)
        .map(|r| r["trace_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        printed.contains(&format!("The run had {} error traces.", errors.len())),
        "{} error traces in the spans:\n{printed}",
        errors.len()
    );
    let head_errors = errors.iter().filter(|id| head_keeps(id)).count();
    let incidents = std::fs::read_to_string(dir.join("incidents.jsonl")).unwrap();
    let window: Value = serde_json::from_str(incidents.lines().next().unwrap()).unwrap();
    let (from, to) = (
        window["start_unix_nano"].as_u64().unwrap(),
        window["end_unix_nano"].as_u64().unwrap(),
    );
    let during: Vec<(&String, &Vec<RawSpan>)> = traces
        .iter()
        .filter(|(_, spans)| {
            let start = spans.iter().map(|s| s.start).min().unwrap();
            let end = spans.iter().map(|s| s.end).max().unwrap();
            start <= to && end >= from
        })
        .collect();
    let head_during = during.iter().filter(|(id, _)| head_keeps(id)).count();
    let errors_during = during
        .iter()
        .filter(|(_, spans)| spans.iter().any(|s| s.error))
        .count();
    assert!(
        errors_during != head_during,
        "cannot tell which keeps more from the errors alone"
    );
    let more = if errors_during > head_during {
        "tail-errors"
    } else {
        "head-10pct"
    };
    let sampling: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sampling.json")).unwrap()).unwrap();
    let tail = sampling["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "tail-errors")
        .expect("the tail strategy in sampling.json");
    let most = if tail["bytes_kept_fraction"].as_f64().unwrap() > 0.5 {
        "yes"
    } else {
        "no"
    };
    vec![head_errors.to_string(), more.to_string(), most.to_string()]
}

/// reproduce: the p99 leader of the production run and of the reproduction (each from its
/// analysis.json), and the services of the reproduction's spans, the load generator aside.
pub fn solve_reproduce(dir: &Path, _printed: &str) -> Vec<String> {
    let copy = dir.join("reproduction");
    let services: std::collections::BTreeSet<String> = read_spans(&copy)
        .into_iter()
        .map(|s| s.service)
        .filter(|s| s != "loadgen")
        .collect();
    vec![
        p99_leader(dir),
        p99_leader(&copy),
        services.len().to_string(),
    ]
}
