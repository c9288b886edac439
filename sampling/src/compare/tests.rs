//! The comparison on synthetic runs whose errors, slow traces and incidents are known.

use std::path::Path;
use std::sync::Arc;

use tracelab_trace::{Span, SpanId, SpanKind, Status, StatusCode, TraceId};

use super::*;
use crate::head::HeadSamplerConfig;
use crate::tail::{TailConfigError, parse_tail_sampling};

const MS: u64 = 1_000_000;
const BASE: u64 = 1_700_000_000_000 * MS;

fn is_error(i: usize) -> bool {
    i.is_multiple_of(10)
}
fn is_slow(i: usize) -> bool {
    i.is_multiple_of(25)
}
fn start(i: usize) -> u64 {
    BASE + i as u64 * 100 * MS
}

/// Trace `i`: its randomness byte is 0xff for even `i` and 0x00 for odd, so a 50 % consistent
/// sampler keeps exactly the even traces.
fn trace_id(i: usize) -> TraceId {
    let mut id = [0u8; 16];
    id[0] = i as u8 + 1;
    id[9..].fill(if i.is_multiple_of(2) { 0xff } else { 0x00 });
    TraceId(id)
}

fn span(i: usize, id: u8, from: u64, to: u64, error: bool) -> Span {
    Span {
        trace_id: trace_id(i),
        span_id: SpanId([id; 8]),
        parent_span_id: (id > 1).then_some(SpanId([1; 8])),
        trace_state: String::new(),
        flags: 1,
        name: format!("op{id}"),
        kind: SpanKind::Server,
        start_unix_nano: from,
        end_unix_nano: to,
        attributes: vec![],
        events: vec![],
        links: vec![],
        status: Status {
            code: if error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            },
            message: String::new(),
        },
        service_name: Arc::from("svc"),
        resource: Arc::new(vec![]),
        scope_name: String::new(),
    }
}

/// 100 traces of 3 spans: 10 with an error span, 4 slow (600 ms against 50 ms).
fn run() -> Vec<Span> {
    let mut spans = Vec::new();
    for i in 0..100 {
        let s = start(i);
        let dur = if is_slow(i) { 600 } else { 50 };
        spans.push(span(i, 1, s, s + dur * MS, false));
        spans.push(span(i, 2, s + MS, s + 5 * MS, false));
        spans.push(span(i, 3, s + 5 * MS, s + 10 * MS, is_error(i)));
    }
    spans
}

fn input(slow: SlowThreshold) -> CompareInput {
    CompareInput {
        spans: run(),
        requests: None,
        incidents: vec![IncidentInterval {
            start_unix_nano: start(90),
            end_unix_nano: start(99),
            what: "db slow".into(),
        }],
        slow_threshold: slow,
    }
}

fn head(name: &str, sampler: &str, arg: Option<&str>) -> Strategy {
    Strategy {
        name: name.into(),
        head: Some(HeadSamplerConfig::from_env_values(sampler, arg).unwrap()),
        tail: None,
    }
}

fn tail(name: &str, yaml: &str) -> Strategy {
    Strategy {
        name: name.into(),
        head: None,
        tail: Some(TailStrategy {
            source: "inline".into(),
            config: parse_tail_sampling(yaml, None).map(|p| p.config).unwrap(),
            warnings: vec![],
        }),
    }
}

const ERRORS_OR_SLOW: &str = "decision_wait: 10s\npolicies:\n  - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n  - {name: s, type: latency, latency: {threshold_ms: 500}}\n";

#[test]
fn recall_numbers_are_exact() {
    let report = compare(
        &input(SlowThreshold::Ms(500.0)),
        &[
            head("all", "always_on", None),
            head("none", "always_off", None),
            head("half", "parentbased_traceidratio", Some("0.5")),
            tail("errors-or-slow", ERRORS_OR_SLOW),
        ],
    );
    let run = &report.run;
    assert_eq!((run.traces, run.spans), (100, 300));
    assert_eq!(run.ground_truth, "spans");
    assert_eq!(run.error_traces, 10);
    assert_eq!(run.slow_traces, 4);
    assert_eq!(run.incident_traces, 10);
    // Errors 0,10..90; slow 0,25,50,75; incident 90..99: 10 + 2 + 9 = 21 distinct.
    assert_eq!(run.interesting_traces, 21);

    let all = &report.strategies[0];
    assert_eq!(
        (all.traces_kept, all.spans_kept, all.fragments),
        (100, 300, 0)
    );
    assert_eq!(all.bytes_kept, run.bytes);
    assert_eq!(all.errors.recall, Some(1.0));
    assert_eq!(all.interesting_per_1000_kept, Some(210.0));

    let none = &report.strategies[1];
    assert_eq!((none.traces_kept, none.spans_kept), (0, 0));
    assert_eq!(none.errors.recall, Some(0.0));
    assert_eq!(none.interesting_per_1000_kept, None);

    // Exactly the even traces: all 10 errors, slow 0 and 50, incidents 90..98 even.
    let half = &report.strategies[2];
    assert_eq!(half.head.as_deref(), Some("parentbased_traceidratio=0.5"));
    assert_eq!(
        (half.traces_kept, half.spans_kept, half.fragments),
        (50, 150, 0)
    );
    assert_eq!((half.errors.kept, half.errors.total), (10, 10));
    assert_eq!((half.slow.kept, half.slow.total), (2, 4));
    assert_eq!((half.incident.kept, half.incident.kept_whole), (5, 5));
    assert_eq!(half.slow.recall, Some(0.5));
    // Interesting among the even traces: errors (10) + slow 50... 0 and 50 are errors too;
    // incidents 92, 94, 96, 98 (90 is an error): 14.
    assert_eq!(half.interesting_per_1000_kept, Some(14.0 * 1000.0 / 50.0));

    // Errors or slow: 10 + 4 − 2 overlapping (0 and 50) = 12 traces.
    let t = &report.strategies[3];
    assert_eq!((t.traces_kept, t.spans_kept, t.fragments), (12, 36, 0));
    assert_eq!(t.errors.recall_whole, Some(1.0));
    assert_eq!(t.slow.recall_whole, Some(1.0));
    assert_eq!(
        (t.incident.kept, t.incident.total),
        (1, 10),
        "only 90, an error"
    );
    let effects = t.tail_effects.as_ref().unwrap();
    assert_eq!(effects.effects.decisions, 100);
    assert_eq!(effects.effects.traces_evicted_undecided, 0);
    // Decided 10 s after the first span (a child) ended: 10 s − 4 ms after a fast trace.
    assert_eq!(effects.decision_delay_ms_p50, Some(10_000.0 + 5.0 - 50.0));

    let table = report.to_table();
    assert!(table.contains("errors-or-slow"));
    assert!(table.lines().nth(3).unwrap().starts_with("strategy"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["strategies"][2]["slow"]["kept"], 2);
}

#[test]
fn requests_are_the_ground_truth_when_present() {
    let mut inp = input(SlowThreshold::Ms(500.0));
    // Trace 5 failed at the client (say, a timeout the spans do not show) and was slow from
    // the scheduled instant; a request with no spans is counted apart.
    let mut requests: Vec<GroundTruthRequest> = (0..100)
        .map(|i| GroundTruthRequest {
            trace_id: trace_id(i),
            entry: "frontend GET /".into(),
            scheduled_unix_nano: start(i),
            start_unix_nano: start(i),
            end_unix_nano: start(i) + 50 * MS,
            status: Some(200),
            outcome: "ok".into(),
            error: is_error(i) || i == 5,
            latency_ms: if i == 5 { 900.0 } else { 50.0 },
            baggage: Default::default(),
        })
        .collect();
    requests.push(GroundTruthRequest {
        trace_id: TraceId([0xee; 16]),
        error: true,
        ..requests[0].clone()
    });
    inp.requests = Some(requests);
    let report = compare(
        &inp,
        &[head("half", "parentbased_traceidratio", Some("0.5"))],
    );
    assert_eq!(report.run.ground_truth, "requests.jsonl");
    assert_eq!(report.run.error_traces, 11);
    assert_eq!(report.run.slow_traces, 1, "only trace 5 by request latency");
    assert_eq!(report.run.requests_without_spans, 1);
    let half = &report.strategies[0];
    assert_eq!(
        (half.errors.kept, half.errors.total),
        (10, 11),
        "trace 5 is odd: dropped"
    );
    assert_eq!((half.slow.kept, half.slow.total), (0, 1));
}

#[test]
fn p99_threshold_comes_from_the_run() {
    // 96 traces of 50 ms and 4 of 600 ms: the p99 is 600 ms and nothing is above it.
    let report = compare(
        &input(SlowThreshold::P99),
        &[head("all", "always_on", None)],
    );
    assert_eq!(report.run.slow_threshold_ms, 600.0);
    assert_eq!(report.run.slow_traces, 0);
}

#[test]
fn per_span_rate_limiting_fragments_traces_and_head_then_tail_composes() {
    // Without parentbased_, each span decides alone: a 1/s limiter keeps a few spans here
    // and there, mostly not whole traces.
    let report = compare(
        &input(SlowThreshold::Ms(500.0)),
        &[
            head("rl", "ratelimited", Some("1")),
            Strategy {
                name: "half-then-errors".into(),
                head: Some(
                    HeadSamplerConfig::from_env_values("parentbased_traceidratio", Some("0.5"))
                        .unwrap(),
                ),
                tail: tail("t", ERRORS_OR_SLOW).tail,
            },
        ],
    );
    let rl = &report.strategies[0];
    assert!(rl.fragments > 0, "{rl:?}");
    // 10 s of traffic at 1 span/s plus the initial token: at most 11 spans.
    assert!(rl.spans_kept <= 11, "{}", rl.spans_kept);
    // The head keeps even traces; the tail then keeps their errors and slow ones: errors
    // 0..90 step 10 (all even) plus slow 50 and 0 (errors already): 10 traces.
    let both = &report.strategies[1];
    assert_eq!(both.traces_kept, 10);
    assert_eq!((both.slow.kept, both.slow.total), (2, 4));
}

#[test]
fn the_example_strategies_file_parses_and_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = read_strategies_file(&dir.join("strategies.example.yaml")).unwrap();
    assert_eq!(file.slow_threshold, Some(SlowThreshold::P99));
    let names: Vec<&str> = file.strategies.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "keep-everything",
            "head-5pct",
            "head-ratelimited-20",
            "tail-errors-slow",
            "head-then-tail"
        ]
    );
    let tail = file.strategies[3].tail.as_ref().unwrap();
    assert_eq!(tail.config.policies.len(), 3);
    assert!(tail.source.contains("tail_sampling"));
    let report = compare(&input(SlowThreshold::Ms(500.0)), &file.strategies);
    assert_eq!(report.strategies.len(), 5);
    assert_eq!(report.strategies[3].errors.recall, Some(1.0));
}

#[test]
fn strategies_file_errors_name_the_line() {
    let base = Path::new(".");
    let bad_sampler = "strategies:\n  - name: a\n    head: {sampler: sometimes}\n";
    let err = parse_strategies(bad_sampler, "s.yaml", base).unwrap_err();
    assert!(
        matches!(&err, StrategiesError::Invalid { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("s.yaml: line 3"), "{err}");
    let unknown = "strategies:\n  - name: a\n    hed: {sampler: always_on}\n";
    let err = parse_strategies(unknown, "s.yaml", base).unwrap_err();
    assert!(
        matches!(&err, StrategiesError::Yaml { line: 3, .. }),
        "{err}"
    );
    let neither = "strategies:\n  - name: a\n";
    assert!(parse_strategies(neither, "s.yaml", base).is_err());
    // An inline tail block reports its errors at lines of the strategies file.
    let inline = "strategies:\n  - name: a\n    tail:\n      inline:\n        policies:\n          - {name: x, type: latency, latency: {threshold_ms: 1, bogus: 2}}\n";
    let err = parse_strategies(inline, "s.yaml", base).unwrap_err();
    assert!(
        matches!(&err, StrategiesError::Yaml { line: 6, .. }),
        "{err}"
    );
    let missing = "strategies:\n  - name: a\n    tail: {file: does-not-exist.yaml}\n";
    let err = parse_strategies(missing, "s.yaml", base).unwrap_err();
    assert!(
        matches!(&err, StrategiesError::Invalid { line: 3, .. }),
        "{err}"
    );
    let ok = "slow_threshold: 250ms\nstrategies:\n  - name: a\n    head: {sampler: traceidratio, arg: '0.1', precision: 6}\n";
    let f = parse_strategies(ok, "s.yaml", base).unwrap();
    assert_eq!(f.slow_threshold, Some(SlowThreshold::Ms(250.0)));
    assert_eq!(f.strategies[0].head.as_ref().unwrap().precision, 6);
}

#[test]
fn an_ottl_only_tail_policy_keeps_what_its_conditions_select() {
    // A file whose only policy is OTTL once ran with no policy at all and kept nothing.
    let ottl = "decision_wait: 10s\npolicies:\n  - name: errors\n    type: ottl_condition\n    ottl_condition:\n      span: [\"status.code == STATUS_CODE_ERROR\"]\n";
    let report = compare(
        &input(SlowThreshold::Ms(500.0)),
        &[tail("ottl-errors", ottl)],
    );
    let s = &report.strategies[0];
    assert_eq!(s.traces_kept, 10, "the ten traces with an error span");
    assert_eq!(s.errors.recall, Some(1.0));
}

#[test]
fn inline_ottl_errors_name_the_strategies_file_line_and_column() {
    let inline = "strategies:\n  - name: a\n    tail:\n      inline:\n        policies:\n          - name: o\n            type: ottl_condition\n            ottl_condition: {span: [\"name == 1 1\"]}\n";
    let err = parse_strategies(inline, "s.yaml", Path::new(".")).unwrap_err();
    assert!(
        matches!(
            &err,
            StrategiesError::Tail {
                source: TailConfigError::Invalid {
                    line: 8,
                    column: 48,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("s.yaml: line 8, column 48: "),
        "{err}"
    );
}

#[test]
fn the_report_says_when_the_keys_of_current_versions_acted() {
    let early = "decision_wait: 10s\ndecision_wait_after_root_received: 1s\nmaximum_trace_size_bytes: 400\npolicies:\n  - {name: all, type: always_sample}\n";
    let report = compare(&input(SlowThreshold::Ms(500.0)), &[tail("early", early)]);
    let e = &report.strategies[0].tail_effects.as_ref().unwrap().effects;
    assert_eq!(e.decisions_after_root, 100);
    let text = report.to_table();
    assert!(
        text.contains("100 decisions taken decision_wait_after_root_received after the root span"),
        "{text}"
    );
    assert!(
        !text.contains("maximum_trace_size_bytes"),
        "no trace is that large: {text}"
    );
}
