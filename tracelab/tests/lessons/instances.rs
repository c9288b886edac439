//! The two lessons of a service with several instances, each checked on a short run and
//! checked to fail without the per-instance override that makes it: one bad host owns the p99
//! critical path while its siblings look healthy; a bad canary's version owns every error.

use std::time::Duration;

use serde_json::Value;
use tracelab_scenario::Scenario;

use super::lab::{Run, library, parse, run};

/// The scenario of `file`, shortened to `seconds`, with or without its `instances:`
/// overrides.
fn scenario(source: &str, seconds: u64, overrides: bool) -> Scenario {
    let mut scenario = parse(source);
    scenario.load.duration = Duration::from_secs(seconds);
    if !overrides {
        for service in scenario.services.values_mut() {
            service.instances.clear();
        }
    }
    scenario
}

/// The run directory's `analysis.json` and `services.json`.
fn documents(run: &Run) -> (Value, Value) {
    let read = |file: &str| -> Value {
        let text = std::fs::read(run.dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_slice(&text).expect("JSON")
    };
    (read("analysis.json"), read("services.json"))
}

/// The `service.instance.id` of instance `index` of `service`, from `services.json`.
fn instance_id(services: &Value, service: &str, index: u64) -> String {
    let all = services
        .as_array()
        .or_else(|| services["services"].as_array())
        .expect("a list of instances");
    all.iter()
        .find(|s| s["name"] == service && s["instance"] == index)
        .and_then(|s| s["instance_id"].as_str())
        .unwrap_or_else(|| panic!("instance {index} of {service} in {services}"))
        .to_owned()
}

/// The lesson of one-bad-host.yaml, or what is missing.
fn one_bad_host(run: &Run) -> Result<(), String> {
    let (analysis, services) = documents(run);
    let bad = instance_id(&services, "inventory", 2);
    let rows: Vec<&Value> = analysis["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["service"] == "inventory")
        .collect();
    if rows.len() != 3 {
        return Err(format!("three instances of inventory: {rows:?}"));
    }
    let total: u64 = rows.iter().filter_map(|r| r["requests"].as_u64()).sum();
    for row in &rows {
        let requests = row["requests"].as_u64().unwrap_or(0) as f64;
        // Round robin: a third each, give or take the requests still in flight at the end.
        if (requests - total as f64 / 3.0).abs() > 2.0 {
            return Err(format!(
                "{requests} of {total} calls on {}",
                row["instance"]
            ));
        }
    }
    let top = rows[0];
    if top["instance"] != bad.as_str() {
        return Err(format!(
            "{bad} should own the p99 critical path, {} does",
            top["instance"]
        ));
    }
    let share = top["critical_share_p99"].as_f64().unwrap_or(0.0);
    if share < 0.6 {
        return Err(format!(
            "{bad} owns only {share:.2} of the p99 critical path"
        ));
    }
    if top["latency"]["p50_ns"].as_u64().unwrap_or(0) < 80_000_000 {
        return Err(format!("{bad} is not slow: {}", top["latency"]));
    }
    for sibling in &rows[1..] {
        let p99 = sibling["latency"]["p99_ns"].as_u64().unwrap_or(u64::MAX);
        let share = sibling["critical_share_p99"].as_f64().unwrap_or(1.0);
        if p99 > 30_000_000 || share > 0.1 {
            return Err(format!(
                "sibling {} does not look healthy: {sibling}",
                sibling["instance"]
            ));
        }
    }
    Ok(())
}

/// The lesson of bad-canary.yaml, or what is missing.
fn bad_canary(run: &Run) -> Result<(), String> {
    let (analysis, services) = documents(run);
    let canary = instance_id(&services, "checkout", 2);
    let failed = analysis["overview"]["failed_traces"].as_u64().unwrap_or(0);
    if failed < 3 {
        return Err(format!("{failed} failed requests"));
    }
    let origins = analysis["error_origins"].as_array().expect("error origins");
    for origin in origins {
        let on: Vec<(&str, u64)> = origin["instances"]
            .as_array()
            .expect("instances of an origin")
            .iter()
            .map(|i| {
                (
                    i["instance"].as_str().unwrap_or(""),
                    i["traces"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        if origin["service"] != "checkout"
            || on != [(canary.as_str(), origin["traces"].as_u64().unwrap_or(0))]
        {
            return Err(format!("an error starts off the canary: {origin}"));
        }
    }
    let versions: Vec<(&str, u64, u64)> = analysis["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .filter(|v| v["service"] == "checkout")
        .map(|v| {
            (
                v["version"].as_str().unwrap_or(""),
                v["errors"].as_u64().unwrap_or(0),
                v["error_origins"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let canary_version = versions.iter().find(|v| v.0 == "1.5.0-canary");
    let stable = versions.iter().find(|v| v.0 == "1.4.0");
    match (canary_version, stable) {
        (Some(&(_, errors, origins)), Some(&(_, 0, 0))) if errors > 0 && origins == failed => {
            Ok(())
        }
        _ => Err(format!(
            "the canary version does not own every error: {versions:?}"
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_bad_host_owns_the_p99_critical_path_while_its_siblings_look_healthy() {
    let source = library("one-bad-host.yaml");
    let lesson = run(scenario(&source, 4, true), &source, "one-bad-host").await;
    assert_eq!(
        documents(&lesson).0["health"]["broken_traces"],
        0,
        "whole traces"
    );
    one_bad_host(&lesson).unwrap_or_else(|problem| panic!("{problem}"));
    drop(lesson);
    let without = run(scenario(&source, 4, false), &source, "one-bad-host-plain").await;
    assert!(
        one_bad_host(&without).is_err(),
        "without the override of instance 2 the lesson must not show"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_canary_version_owns_every_error() {
    let source = library("bad-canary.yaml");
    let lesson = run(scenario(&source, 4, true), &source, "bad-canary").await;
    bad_canary(&lesson).unwrap_or_else(|problem| panic!("{problem}"));
    drop(lesson);
    let without = run(scenario(&source, 4, false), &source, "bad-canary-plain").await;
    assert!(
        bad_canary(&without).is_err(),
        "without the override of instance 2 the lesson must not show"
    );
}

/// `api` runs three instances; from 1 s to 2.5 s instance 1 fails every request.
const ONE_INSTANCE_INCIDENT: &str = r#"
name: instance-incident
seed: 12
services:
  front:
    routes:
      /:
        latency: {constant: 1}
        steps:
          - {call: api, route: /q}
  api:
    replicas: 3
    routes:
      /q:
        latency: {constant: 2}
load:
  rate: 30
  duration: 4s
  entries:
    - {service: front, route: /}
incidents:
  - at: 1s
    duration: 1500ms
    what: one api host fails
    fault: {service: api, instance: 1, kind: {error: {rate: 1, status: 503}}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incident_on_one_instance_fails_that_instance_only_and_is_recorded_so() {
    let lesson = run(
        parse(ONE_INSTANCE_INCIDENT),
        ONE_INSTANCE_INCIDENT,
        "instance-incident",
    )
    .await;
    let window = &lesson.incidents[0];
    assert_eq!(window["service"], "api");
    assert_eq!(window["instance"], 1, "{window}");
    assert_eq!(window["fault"]["instance"], 1);
    // report.json carries the window with its instance, as its schema says.
    let schema_path = format!("{}/../docs/report.schema.json", env!("CARGO_MANIFEST_DIR"));
    let schema: Value =
        serde_json::from_slice(&std::fs::read(&schema_path).expect("the schema")).expect("JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&lesson.report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(lesson.report["incidents"][0]["instance"], 1);
    let (_, services) = documents(&lesson);
    let failing = instance_id(&services, "api", 1);
    let mut failed = 0;
    for span in lesson.spans() {
        if span.service_name.as_ref() != "api" || !span.is_error() {
            continue;
        }
        let id = span
            .resource
            .iter()
            .find(|a| a.key == "service.instance.id")
            .and_then(|a| a.value.as_str());
        assert_eq!(id, Some(failing.as_str()), "only instance 1 fails");
        assert!(lesson.inside(span.start_unix_nano, 0.1) != Some(false));
        failed += 1;
    }
    // About a third of the 45 requests in the window.
    assert!((10..=20).contains(&failed), "{failed} failing api spans");
}
