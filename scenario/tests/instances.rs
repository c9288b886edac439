//! Replicas, balancing policies, per-instance overrides and faults aimed at one instance: how
//! they are read, written back, and refused with a place in the file when they name an
//! instance that does not exist.

use tracelab_scenario::{Balance, Diagnostic, Fault, InstanceIndex, LatencyFault, Scenario, parse};

const BASE: &str = "\
services:
  api:
    routes:
      /a:
        latency: {constant: 1}
        steps:
          - {call: db, route: /q}
  db:
    replicas: 3
    balance: least_requests
    instances:
      2:
        version: 2.0.0-canary
        latency: {multiply: 4}
        errors: {rate: 0.5, status: 503}
    routes:
      /q:
        latency: {constant: 2}
load:
  rate: 10
  duration: 4s
  entries:
    - {service: api, route: /a}
incidents:
  - at: 1s
    duration: 1s
    fault: {service: db, instance: 1, kind: hang}
";

fn scenario(source: &str) -> Scenario {
    parse(source, "test.yaml").unwrap_or_else(|d| panic!("{d}"))
}

fn diagnostics(source: &str) -> Vec<Diagnostic> {
    match parse(source, "test.yaml") {
        Ok(_) => panic!("expected diagnostics"),
        Err(diagnostics) => diagnostics.0,
    }
}

/// `BASE` with `from` (which occurs exactly once) replaced by `to`.
fn broken(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` once in BASE");
    BASE.replacen(from, to, 1)
}

/// The 1-based line and column where `needle` (which occurs once) starts in `source`.
fn position(source: &str, needle: &str) -> (usize, usize) {
    assert_eq!(source.matches(needle).count(), 1, "`{needle}` once");
    let before = &source[..source.find(needle).unwrap_or_default()];
    let column = before
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    (before.matches('\n').count() + 1, column)
}

/// The one diagnostic at `path`, which must say `message` and sit where `at` starts.
fn expect(source: &str, path: &str, message: &str, at: &str) -> Diagnostic {
    let all = diagnostics(source);
    let listing: Vec<String> = all.iter().map(ToString::to_string).collect();
    let found: Vec<&Diagnostic> = all.iter().filter(|d| d.path == path).collect();
    assert_eq!(found.len(), 1, "one at `{path}`:\n{}", listing.join("\n"));
    let diagnostic = found[0].clone();
    assert!(
        diagnostic.message.contains(message),
        "`{}` does not say `{message}`",
        diagnostic.message
    );
    assert_eq!((diagnostic.line, diagnostic.column), position(source, at));
    diagnostic
}

#[test]
fn instances_balance_and_instance_faults_are_read() {
    let scenario = scenario(BASE);
    let db = &scenario.services["db"];
    assert_eq!(db.replicas, 3);
    assert_eq!(db.balance, Balance::LeastRequests);
    let canary = db.instance(2).expect("instance 2 overridden");
    assert_eq!(canary.latency, Some(LatencyFault::Multiply(4.0)));
    assert_eq!(
        canary.errors.as_ref().map(|e| (e.rate, e.status)),
        Some((0.5, 503))
    );
    assert_eq!(db.version_of(2), "2.0.0-canary");
    assert_eq!(db.version_of(0), "1.0.0");
    assert!(db.instance(0).is_none());
    let api = &scenario.services["api"];
    assert_eq!((api.replicas, &api.balance), (1, &Balance::RoundRobin));
    let fault = &scenario.incidents[0].fault;
    assert_eq!(fault.instance, Some(1));
    assert!(fault.on_instance(1) && !fault.on_instance(0));
    assert_eq!(fault.describe(), "hang on db instance 1");
}

#[test]
fn the_yaml_and_json_forms_round_trip() {
    let scenario = scenario(BASE);
    let yaml = serde_saphyr::to_string(&scenario).expect("serializes");
    assert_eq!(parse(&yaml, "again.yaml").expect("parses back"), scenario);
    let json = serde_json::to_string(&scenario).expect("JSON");
    assert!(json.contains(r#""instances":{"2":{"#), "{json}");
    assert_eq!(
        serde_json::from_str::<Scenario>(&json).expect("JSON back"),
        scenario
    );
    let sticky = parse(
        &BASE.replace("least_requests", "{sticky: session}"),
        "s.yaml",
    )
    .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        sticky.services["db"].balance,
        Balance::Sticky("session".into())
    );
    assert_eq!(sticky.services["db"].balance.kind(), "sticky");
}

#[test]
fn the_admin_api_reads_the_instance_of_a_fault() {
    let fault: Fault =
        serde_json::from_str(r#"{"service":"db","instance":2,"kind":"hang"}"#).expect("JSON");
    assert_eq!(fault.instance, Some(2));
    let whole: Fault = serde_json::from_str(r#"{"service":"db","kind":"hang"}"#).expect("JSON");
    assert_eq!(whole.instance, None);
    assert!(whole.on_instance(0) && whole.on_instance(7));
    assert!(!serde_json::to_string(&whole).unwrap().contains("instance"));
}

#[test]
fn an_override_of_an_instance_that_does_not_exist_is_located() {
    let source = broken("      2:\n", "      3:\n");
    let diagnostic = expect(
        &source,
        "services.db.instances.3",
        "service `db` has no instance 3: it has 3 replicas (instances 0 to 2)",
        "3:\n        version",
    );
    assert!(
        diagnostic
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("raise `replicas` to 4"),
        "{diagnostic}"
    );
    // Without `replicas` a service has one instance.
    let source = broken("    replicas: 3\n", "");
    expect(
        &source,
        "services.db.instances.2",
        "it has 1 replica (instance 0)",
        "2:\n        version",
    );
}

#[test]
fn a_fault_on_an_instance_that_does_not_exist_is_located() {
    let source = broken("instance: 1", "instance: 7");
    expect(
        &source,
        "incidents[0].fault.instance",
        "service `db` has no instance 7",
        "7, kind",
    );
}

#[test]
fn bad_keys_values_and_policies_are_located() {
    let source = broken("      2:\n", "      two:\n");
    expect(
        &source,
        "services.db.instances.two",
        "`two` is not an instance index",
        "two:",
    );
    let source = broken("{multiply: 4}", "{multiply: -1}");
    expect(
        &source,
        "services.db.instances.2.latency.multiply",
        "the factor must be 0 or more",
        "-1}",
    );
    let source = broken("{rate: 0.5, status: 503}", "{rate: 1.5, status: 200}");
    let all = diagnostics(&source);
    let paths: Vec<&str> = all.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "services.db.instances.2.errors.rate",
            "services.db.instances.2.errors.status"
        ]
    );
    let source = broken("balance: least_requests", "balance: least_request");
    let diagnostic = expect(&source, "services.db.balance", "unknown", "least_request\n");
    assert!(
        diagnostic
            .help
            .as_deref()
            .unwrap_or_default()
            .contains("least_requests"),
        "{diagnostic}"
    );
    let source = broken("balance: least_requests", "balance: {sticky: \"a b\"}");
    expect(
        &source,
        "services.db.balance.sticky",
        "baggage key `a b`",
        "\"a b\"",
    );
    let source = broken("replicas: 3", "replicas: 65");
    expect(
        &source,
        "services.db.replicas",
        "more than the lab's limit of 64",
        "65",
    );
}

#[test]
fn instance_indices_are_plain_numbers() {
    let read = |key: &str| serde_json::from_str::<InstanceIndex>(&format!("\"{key}\""));
    assert_eq!(read("0").unwrap(), InstanceIndex(0));
    assert_eq!(read("12").unwrap(), InstanceIndex(12));
    for bad in ["", "-1", "01", "+1", "1.0", "4294967296"] {
        assert!(read(bad).is_err(), "`{bad}` is refused");
    }
    assert_eq!(
        serde_json::from_str::<InstanceIndex>("3").unwrap(),
        InstanceIndex(3)
    );
}
