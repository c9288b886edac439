//! Defaults, the lookup helpers, programmatic validation and the YAML round trip.

use std::time::Duration;

use tracelab_scenario::{LatencyModel, Scenario, Step, parse};

const MINIMAL: &str = "\
services:
  api:
    routes:
      /a:
        steps:
          - {call: db, route: /q}
          - parallel:
              - {call: db, route: /q}
          - work: db.query
            latency: 3ms
        errors: {rate: 0.1}
  db:
    routes:
      /q:
load:
  rate: 5
  duration: 2m
  entries:
    - {service: api, route: /a}
";

fn minimal() -> Scenario {
    parse(MINIMAL, "minimal.yaml").unwrap_or_else(|diagnostics| panic!("{diagnostics}"))
}

#[test]
fn defaults_are_applied() {
    let scenario = minimal();
    assert_eq!(scenario.name, "scenario");
    assert_eq!(scenario.description, None);
    assert_eq!(scenario.seed, 1);
    let api = &scenario.services["api"];
    assert_eq!(api.version, "1.0.0");
    assert_eq!(api.replicas, 1);
    let route = &api.routes["/a"];
    assert_eq!(route.method, "GET");
    assert_eq!(route.latency, LatencyModel::Constant { ms: 0.0 });
    let errors = route.errors.as_ref().expect("errors given");
    assert_eq!(errors.status, 500);
    assert_eq!(errors.rate, 0.1);
    let Step::Call(call) = &route.steps[0] else {
        panic!("first step is a call: {:?}", route.steps[0]);
    };
    assert_eq!(
        (call.probability, call.repeat, call.timeout),
        (1.0, 1, None)
    );
    let Step::Parallel(parallel) = &route.steps[1] else {
        panic!("second step is parallel");
    };
    assert_eq!(parallel.max_parallel, None);
    assert_eq!(parallel.calls[0].repeat, 1);
    let Step::Work(work) = &route.steps[2] else {
        panic!("third step is work");
    };
    assert_eq!(work.name, "db.query");
    assert_eq!(work.latency, LatencyModel::Constant { ms: 3.0 });
    assert_eq!(scenario.load.entries[0].weight, 1.0);
    assert_eq!(scenario.load.duration, Duration::from_secs(120));
    // A route written with nothing under it gets every default.
    let bare = scenario.route("db", "/q").expect("db /q");
    assert_eq!(
        (
            bare.method.as_str(),
            bare.steps.len(),
            bare.errors.is_none()
        ),
        ("GET", 0, true)
    );
}

#[test]
fn route_lookup() {
    let scenario = minimal();
    assert!(scenario.route("api", "/a").is_some());
    assert!(scenario.route("api", "/q").is_none());
    assert!(scenario.route("nope", "/a").is_none());
    assert_eq!(
        scenario.services["api"].routes["/a"].steps[1].calls().len(),
        1
    );
    assert_eq!(
        scenario.services["api"].routes["/a"].steps[2].calls().len(),
        0
    );
}

#[test]
fn programmatic_changes_are_validated() {
    let mut scenario = minimal();
    assert_eq!(scenario.validate(), Ok(()));
    scenario.load.rate = 0.0;
    scenario.services["api"].routes["/a"]
        .steps
        .push(Step::Call(tracelab_scenario::Call {
            service: "api".into(),
            route: "/a".into(),
            probability: 1.0,
            repeat: 1,
            timeout: None,
            retry: None,
        }));
    let diagnostics = scenario.validate().expect_err("two problems");
    let rendered: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(rendered.len(), 2, "{diagnostics}");
    assert!(
        rendered[0].starts_with("services.api.routes./a.steps[3]: call cycle: api/a -> api/a"),
        "{}",
        rendered[0]
    );
    assert!(
        rendered[1].starts_with("load.rate: rate must be"),
        "{}",
        rendered[1]
    );
}

#[test]
fn serialized_yaml_parses_back_to_the_same_scenario() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/quickstart.yaml"
    ))
    .expect("quickstart exists");
    for scenario in [
        minimal(),
        parse(&source, "quickstart.yaml").expect("valid quickstart"),
    ] {
        let yaml = serde_saphyr::to_string(&scenario).expect("serializes");
        let again = parse(&yaml, "serialized.yaml")
            .unwrap_or_else(|diagnostics| panic!("{diagnostics}\n{yaml}"));
        assert_eq!(again, scenario, "{yaml}");
        // The serde derives read the same syntax.
        let derived: Scenario =
            serde_saphyr::from_str(&yaml).expect("derived Deserialize reads it");
        assert_eq!(derived, scenario);
    }
}
