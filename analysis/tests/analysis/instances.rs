//! A service with several instances, broken down by instance and by version: the slow
//! instance owns the critical path of the slow requests, the canary version owns the errors,
//! and the document carrying it matches its schema.

use std::sync::Arc;

use tracelab_analysis::{AnalysisDocument, AnalysisOptions, analyze, render_service_table};
use tracelab_trace::{AttrValue, Attribute, Span, SpanKind, Trace};

use super::document::assert_matches_schema;
use super::support::{failed, kind, span, trace};

/// `s` as run by instance `id` of version `version`.
fn on(mut s: Span, id: &str, version: &str) -> Span {
    s.resource = Arc::new(vec![
        Attribute {
            key: "service.instance.id".into(),
            value: AttrValue::Str(id.into()),
        },
        Attribute {
            key: "service.version".into(),
            value: AttrValue::Str(version.into()),
        },
    ]);
    s
}

/// 300 requests `front` → `db`, round robin over `db-0`, `db-1`, `db-2`: `db-1` takes 50 ms
/// where its siblings take 2, and `db-2` (version 2.0.0) fails every fifth request.
fn run() -> Vec<Trace> {
    (0..300u64)
        .map(|n| {
            let t = n + 1;
            let start = n * 100;
            let (instance, version) = match n % 3 {
                0 => ("db-0", "1.0.0"),
                1 => ("db-1", "1.0.0"),
                _ => ("db-2", "2.0.0"),
            };
            let took = if instance == "db-1" { 50 } else { 2 };
            let fails = instance == "db-2" && n % 5 == 0;
            let mut db = on(
                kind(
                    span(t, 3, Some(2), "db", "GET /q", start + 2, start + 2 + took),
                    SpanKind::Server,
                ),
                instance,
                version,
            );
            let mut client = kind(
                span(
                    t,
                    2,
                    Some(1),
                    "front",
                    "GET /q",
                    start + 1,
                    start + 3 + took,
                ),
                SpanKind::Client,
            );
            let mut root = kind(
                span(t, 1, None, "front", "GET /", start, start + 4 + took),
                SpanKind::Server,
            );
            if fails {
                db = failed(db, "503");
                client = failed(client, "503");
                root = failed(root, "502");
            }
            trace(vec![
                on(root, "front-0", "1.0.0"),
                on(client, "front-0", "1.0.0"),
                db,
            ])
        })
        .collect()
}

#[test]
fn the_slow_instance_and_the_failing_version_stand_out() {
    let traces = run();
    let analysis = analyze(&traces, &AnalysisOptions::default());
    // `front` ran one instance: only `db` is broken down.
    assert!(analysis.instances.iter().all(|i| i.service == "db"));
    let ids: Vec<&str> = analysis
        .instances
        .iter()
        .map(|i| i.instance.as_str())
        .collect();
    assert_eq!(
        ids,
        ["db-1", "db-0", "db-2"],
        "the slow instance ranks first"
    );
    let slow = &analysis.instances[0];
    assert_eq!(slow.figures.requests, 100);
    assert!(
        slow.figures.critical_share_p99 > 0.8,
        "{}",
        slow.figures.critical_share_p99
    );
    assert!(slow.figures.latency.p50_ns >= 50_000_000);
    for sibling in &analysis.instances[1..] {
        assert_eq!(sibling.figures.requests, 100);
        assert_eq!(
            sibling.figures.critical_share_p99, 0.0,
            "{}",
            sibling.instance
        );
        assert!(sibling.figures.latency.p99_ns < 3_000_000);
    }
    let canary = analysis
        .instances
        .iter()
        .find(|i| i.instance == "db-2")
        .unwrap();
    assert_eq!(
        (canary.version.as_str(), canary.figures.errors),
        ("2.0.0", 20)
    );
    assert_eq!(canary.figures.error_origins, 20);

    let versions: Vec<(&str, u64, u64, u64)> = analysis
        .versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.instances,
                v.figures.requests,
                v.figures.error_origins,
            )
        })
        .collect();
    assert_eq!(versions, [("1.0.0", 2, 200, 0), ("2.0.0", 1, 100, 20)]);

    let origin = &analysis.error_origins[0];
    assert_eq!((origin.service.as_str(), origin.traces), ("db", 20));
    assert_eq!(origin.instances.len(), 1);
    assert_eq!(origin.instances[0].instance, "db-2");
    assert_eq!(origin.instances[0].version, "2.0.0");
    assert_eq!(origin.instances[0].traces, 20);
    let failing = analysis.failing_traces[0].error_origin.as_ref().unwrap();
    assert_eq!(failing.instance, "db-2");

    let table = render_service_table(&analysis);
    assert!(table.contains("by instance and by version"), "{table}");
    let canary_line = table
        .lines()
        .find(|l| l.contains("db-2"))
        .expect("a line for db-2");
    assert!(
        canary_line.contains("2.0.0") && canary_line.contains("20.0 %"),
        "{canary_line}"
    );

    let document = AnalysisDocument::new(&analysis, &traces, &[]).unwrap();
    let json = serde_json::to_value(&document).unwrap();
    assert_matches_schema("analysis.schema.json", &json);
    assert_eq!(json["instances"][0]["instance"], "db-1");
    assert_eq!(json["error_origins"][0]["instances"][0]["instance"], "db-2");
}

#[test]
fn one_instance_per_service_means_no_breakdown() {
    let traces: Vec<Trace> = run()
        .into_iter()
        .map(|mut t| {
            for s in &mut t.spans {
                *s = on(s.clone(), &format!("{}-0", s.service_name), "1.0.0");
            }
            t
        })
        .collect();
    let analysis = analyze(&traces, &AnalysisOptions::default());
    assert!(analysis.instances.is_empty());
    assert!(analysis.versions.is_empty());
    assert!(
        analysis
            .error_origins
            .iter()
            .all(|o| o.instances.is_empty())
    );
    assert!(!render_service_table(&analysis).contains("by instance"));
}
