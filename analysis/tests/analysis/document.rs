//! The analysis document (`analysis.json`, `tracelab report --json`): it matches
//! docs/analysis.schema.json, and its traces carry the critical path a program can use.

use std::path::Path;

use serde_json::Value;
use tracelab_analysis::{AnalysisDocument, AnalysisOptions, DocumentError, TraceReason, analyze};
use tracelab_trace::{SpanKind, Trace};

use crate::support::{EPOCH, MS, failed, kind, span, trace, trace_id};

fn validator(file: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("the schema file");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

pub fn assert_matches_schema(file: &str, value: &Value) {
    let errors: Vec<String> = validator(file)
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "does not match {file}: {errors:#?}\n{value:#}"
    );
}

/// A run with something in every part of the document: slow and failing traces, a broken
/// one, clock skew, a late span and a queue.
fn run() -> Vec<Trace> {
    let mut traces: Vec<Trace> = (10..30)
        .map(|n| {
            trace(vec![
                span(n, 1, None, "front", "GET /", 0, 20 + n),
                kind(
                    span(n, 2, Some(1), "front", "call back", 2, 18 + n),
                    SpanKind::Client,
                ),
                kind(
                    span(n, 3, Some(2), "back", "GET /x", 3, 17 + n),
                    SpanKind::Server,
                ),
            ])
        })
        .collect();
    traces.push(trace(vec![
        failed(span(1, 1, None, "front", "GET /", 0, 40), "503"),
        failed(
            kind(
                span(1, 2, Some(1), "back", "GET /x", 5, 30),
                SpanKind::Server,
            ),
            "db down",
        ),
        kind(
            span(1, 3, Some(1), "front", "publish", 31, 33),
            SpanKind::Producer,
        ),
        kind(
            span(1, 4, Some(3), "mail", "process", 32, 400),
            SpanKind::Consumer,
        ),
    ]));
    traces.push(trace(vec![
        span(2, 1, None, "front", "GET /", 10, 60),
        span(2, 2, Some(1), "back", "skewed", 5, 50),
        span(2, 3, Some(99), "back", "orphan", 20, 30),
    ]));
    traces
}

#[test]
fn the_document_matches_its_schema_and_carries_the_critical_path() {
    let traces = run();
    let options = AnalysisOptions {
        top_traces: 2,
        run_end_unix_nano: Some(EPOCH + 300 * MS),
        ..AnalysisOptions::default()
    };
    let analysis = analyze(&traces, &options);
    // A trace nobody singled out, asked for by id.
    let asked = trace_id(12);
    let document = AnalysisDocument::new(&analysis, &traces, &[asked]).unwrap();
    let json = serde_json::to_value(&document).unwrap();
    assert_matches_schema("analysis.schema.json", &json);

    let first = &document.traces[0];
    assert_eq!(first.trace_id, asked);
    assert_eq!(first.reasons, [TraceReason::Requested]);
    assert!(
        document
            .traces
            .iter()
            .any(|t| t.reasons.contains(&TraceReason::Slowest))
    );
    assert!(
        document
            .traces
            .iter()
            .any(|t| t.reasons.contains(&TraceReason::Failing))
    );

    // Trace 12: front 0–32 (own work 0–2 and 30–32), its client call 2–30, back 3–29.
    let segments: Vec<(String, u64, u64)> = first
        .critical_path
        .iter()
        .map(|s| (s.operation.clone(), s.start / MS, s.end / MS))
        .collect();
    assert_eq!(
        segments,
        [
            ("GET /".to_string(), 0, 2),
            ("call back".to_string(), 2, 3),
            ("GET /x".to_string(), 3, 29),
            ("call back".to_string(), 29, 30),
            ("GET /".to_string(), 30, 32),
        ]
    );
    assert_eq!(first.start_unix_nano, EPOCH);
    assert_eq!(first.duration_ns, 32 * MS);
    assert_eq!(first.spans[2].self_ns, 26 * MS);
    assert_eq!(first.spans[2].critical_ns, 26 * MS);

    // The failed trace: the consumer is asynchronous and off the path, the origin is named.
    let failing = document
        .traces
        .iter()
        .find(|t| t.trace_id == trace_id(1))
        .unwrap();
    assert_eq!(failing.error_origin.as_ref().unwrap().message, "db down");
    let consumer = failing
        .spans
        .iter()
        .find(|s| s.operation == "process")
        .unwrap();
    assert!(consumer.asynchronous);
    assert_eq!(consumer.critical_ns, 0);
    let covered: u64 = failing.critical_path.iter().map(|s| s.end - s.start).sum();
    assert_eq!(covered, failing.duration_ns);

    // The skewed child started before the trace's origin.
    let skewed = AnalysisDocument::new(&analysis, &traces, &[trace_id(2)]).unwrap();
    assert_eq!(skewed.traces[0].spans[0].start, -5 * MS as i64);
    assert!(!skewed.traces[0].complete);
}

#[test]
fn a_trace_asked_for_that_is_not_there_is_an_error() {
    let traces = run();
    let analysis = analyze(&traces, &AnalysisOptions::default());
    let err = AnalysisDocument::new(&analysis, &traces, &[trace_id(777)]).unwrap_err();
    assert_eq!(
        err,
        DocumentError::UnknownTrace {
            trace_id: trace_id(777),
            traces: traces.len()
        }
    );
    assert!(err.to_string().contains(&trace_id(777).to_hex()), "{err}");
}
