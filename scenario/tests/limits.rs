//! The lab's explicit limits: what a scenario cannot ask for is refused by `check`, with the
//! field and the limit, before anything runs.

use tracelab_scenario::{Diagnostic, parse};

const BASE: &str = "\
services:
  api:
    routes:
      /a:
        steps:
          - {call: db, route: /q}
  db:
    routes:
      /q: {}
load:
  rate: 10
  duration: 10s
  entries:
    - {service: api, route: /a}
";

fn problems(source: &str) -> Vec<Diagnostic> {
    match parse(source, "limits.yaml") {
        Ok(_) => panic!("expected the limits to refuse:\n{source}"),
        Err(diagnostics) => diagnostics.0,
    }
}

fn one_at(source: &str, path: &str, says: &str) {
    let all = problems(source);
    let found: Vec<&Diagnostic> = all.iter().filter(|d| d.path == path).collect();
    assert_eq!(found.len(), 1, "one problem at {path}: {all:#?}");
    assert!(found[0].message.contains(says), "{}", found[0]);
    assert!(found[0].line > 0, "located: {}", found[0]);
}

#[test]
fn the_base_is_within_every_limit() {
    parse(BASE, "limits.yaml").expect("valid");
}

#[test]
fn rates_beyond_the_lab_are_refused() {
    one_at(
        &BASE.replace("rate: 10", "rate: 1e12"),
        "load.rate",
        "more than the lab's limit",
    );
    let ramp = BASE.replace("  rate: 10\n", "  arrival: {ramp: {from: 1, to: 1e12}}\n");
    one_at(&ramp, "load.arrival.ramp.to", "more than the lab's limit");
}

#[test]
fn random_incidents_cannot_flood_the_admin_api() {
    let source = format!(
        "{BASE}random_incidents:\n  interval: 1us\n  hold: 1us\n  faults:\n    - {{service: db, kind: hang}}\n"
    );
    one_at(&source, "random_incidents.hold", "shorter than the limit");
    let all = problems(&source);
    assert!(
        all.iter()
            .any(|d| d.path == "random_incidents.interval" && d.message.contains("shorter")),
        "{all:#?}"
    );
}

#[test]
fn repeats_and_attempts_are_bounded() {
    one_at(
        &BASE.replace(
            "{call: db, route: /q}",
            "{call: db, route: /q, repeat: 4294967295}",
        ),
        "services.api.routes./a.steps[0].repeat",
        "more than the limit of 1000",
    );
    one_at(
        &BASE.replace(
            "{call: db, route: /q}",
            "{call: db, route: /q, retry: {attempts: 4000000000}}",
        ),
        "services.api.routes./a.steps[0].retry.attempts",
        "more than the limit of 10",
    );
}

#[test]
fn a_fan_out_explosion_names_the_path_that_explodes() {
    let source = BASE
        .replace(
            "{call: db, route: /q}",
            "{call: db, route: /q, repeat: 100, retry: {attempts: 10}}",
        )
        .replace(
            "      /q: {}\n",
            "      /q:\n        steps:\n          - {db: postgresql, operation: SELECT, latency: 1ms, repeat: 50}\n",
        );
    let all = problems(&source);
    let found = all
        .iter()
        .find(|d| d.path == "load.entries[0]")
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert!(
        found.message.contains("api /a → steps[0] → ×1000 → db /q"),
        "{found}"
    );
}

#[test]
fn an_incident_after_the_load_is_refused() {
    let source = format!(
        "{BASE}incidents:\n  - at: 30s\n    duration: 5s\n    fault: {{service: db, kind: hang}}\n"
    );
    one_at(&source, "incidents[0].at", "when the load of 10s is over");
}

#[test]
fn baggage_keys_are_w3c_tokens_and_the_synthetic_key_is_reserved() {
    let source = BASE.replace(
        "  entries:\n",
        "  baggage:\n    \"bad key\": {a: 1}\n    synthetic_request: {no: 1}\n  entries:\n",
    );
    one_at(&source, "load.baggage.bad key", "cannot hold");
    one_at(
        &source,
        "load.baggage.synthetic_request",
        "set by the load generator",
    );
}
