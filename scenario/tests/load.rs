//! The `load:` section: arrival models, closed loop, caps and baggage, with their defaults
//! and their diagnostics.

use std::time::Duration;

use tracelab_scenario::{ArrivalModel, Diagnostic, LatencyModel, Ramp, Spike, Stage, parse};

fn with_load(load: &str) -> String {
    format!(
        "services:\n  api:\n    routes:\n      /a: {{}}\nload:\n{load}  entries:\n    - {{service: api, route: /a}}\n"
    )
}

fn problems(load: &str) -> Vec<Diagnostic> {
    match parse(&with_load(load), "t.yaml") {
        Ok(s) => panic!("expected problems, parsed {:#?}", s.load),
        Err(d) => d.0,
    }
}

#[test]
fn existing_files_keep_their_meaning() {
    let s = parse(&with_load("  rate: 10\n  duration: 1s\n"), "t.yaml").expect("valid");
    assert_eq!(s.load.arrival, ArrivalModel::Constant);
    assert_eq!(s.load.users, None);
    assert_eq!(s.load.max_in_flight, None);
    assert!(s.load.baggage.is_empty());
}

#[test]
fn every_arrival_model_parses() {
    let cases = [
        (
            "  rate: 5\n  duration: 10s\n  arrival: poisson\n",
            ArrivalModel::Poisson,
        ),
        (
            "  duration: 10s\n  arrival: {ramp: {from: 1, to: 50}}\n",
            ArrivalModel::Ramp(Ramp {
                from: 1.0,
                to: 50.0,
            }),
        ),
        (
            "  arrival: {stages: [{duration: 2s, rate: 10}, {duration: 1s, rate: 0}]}\n",
            ArrivalModel::Stages(vec![
                Stage {
                    duration: Duration::from_secs(2),
                    rate: 10.0,
                },
                Stage {
                    duration: Duration::from_secs(1),
                    rate: 0.0,
                },
            ]),
        ),
        (
            "  rate: 5\n  duration: 10s\n  arrival: {spike: {height: 20, start: 2s, length: 1s}}\n",
            ArrivalModel::Spike(Spike {
                height: 20.0,
                start: Duration::from_secs(2),
                length: Duration::from_secs(1),
            }),
        ),
    ];
    for (load, expected) in cases {
        let s = parse(&with_load(load), "t.yaml").unwrap_or_else(|d| panic!("{load}: {d}"));
        assert_eq!(s.load.arrival, expected);
    }
    // Stages without a duration last as long as their stages.
    let s = parse(
        &with_load("  arrival: {steps: [{duration: 2s, rate: 10}, {duration: 3s, rate: 1}]}\n"),
        "t.yaml",
    )
    .expect("valid");
    assert_eq!(s.load.duration, Duration::from_secs(5));
}

#[test]
fn closed_loop_caps_and_baggage_parse() {
    let s = parse(
        &with_load(
            "  duration: 5s\n  users: 8\n  think: {constant: 100}\n  connections: 4\n  max_in_flight: 50\n  baggage:\n    tenant: {acme: 0.1, globex: 0.9}\n",
        ),
        "t.yaml",
    )
    .expect("valid");
    assert_eq!(s.load.users, Some(8));
    assert_eq!(s.load.think, Some(LatencyModel::Constant { ms: 100.0 }));
    assert_eq!(s.load.connections, Some(4));
    assert_eq!(s.load.max_in_flight, Some(50));
    assert_eq!(s.load.baggage["tenant"]["globex"], 0.9);
    // Round trip through the serde model.
    let yaml = serde_json::to_string(&s.load).expect("serializes");
    let back: tracelab_scenario::Load = serde_json::from_str(&yaml).expect("reads back");
    assert_eq!(back, s.load);
}

#[test]
fn problems_are_located_and_named() {
    let found = problems("  rate: 5\n  duration: 5s\n  arrival: poison\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].line, found[0].path.as_str()), (8, "load.arrival"));
    assert!(
        found[0]
            .help
            .as_deref()
            .is_some_and(|h| h.contains("poisson"))
    );

    let found = problems("  rate: 5\n  duration: 5s\n  users: 3\n  arrival: poisson\n");
    assert!(
        found
            .iter()
            .any(|d| d.path == "load.arrival" && d.message.contains("closed loop"))
    );

    let found = problems("  duration: 5s\n  think: 5ms\n  rate: 1\n");
    assert!(found.iter().any(|d| d.path == "load.think" && d.line == 7));

    let found = problems("  rate: 5\n  duration: 5s\n  baggage:\n    tenant: {a: 0}\n");
    assert_eq!(found[0].path, "load.baggage.tenant.a");
    assert_eq!(found[0].line, 9);

    let found = problems("  duration: 5s\n  arrival: {ramp: {from: 1}}\n");
    assert!(found.iter().any(|d| d.path == "load.arrival.ramp.to"));

    // `rate` is still required where it is used.
    let found = problems("  duration: 5s\n  arrival: poisson\n");
    assert!(
        found
            .iter()
            .any(|d| d.path == "load.rate" && d.message.contains("missing"))
    );
}
