//! The decoder on its own: what goes through serde, what a broken node does to its parents,
//! and the forms other formats use.

use crate::{FaultKind, LatencyFault, LatencyModel, Step, parse};

const BASE: &str = "services:\n  api:\n    routes:\n      /: {}\nload:\n  rate: 1\n  duration: 10s\n  entries:\n    - {service: api, route: /}\n";

fn rendered(text: &str) -> Vec<String> {
    match parse(text, "t.yaml") {
        Ok(scenario) => panic!("expected problems, parsed {scenario:#?}"),
        Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn incidents_and_new_steps_decode() {
    let text = format!(
        "{BASE}incidents:\n  - at: 2s\n    duration: 1s\n    fault: {{service: api, kind: {{latency: {{add: 300ms}}}}}}\n"
    );
    let scenario = parse(&text, "t.yaml").expect("valid");
    assert_eq!(scenario.incidents.len(), 1);
    assert_eq!(
        scenario.incidents[0].fault.kind,
        FaultKind::Latency(LatencyFault::Add(LatencyModel::Constant { ms: 300.0 }))
    );
}

#[test]
fn a_bad_incident_is_reported_where_it_is() {
    let text = format!(
        "{BASE}incidents:\n  - at: 2s\n    duration: 1s\n    fault: {{service: api, kind: explode}}\n  - at: 2s\n    duration: 0s\n    fault: {{service: nope, route: /x, kind: hang}}\n"
    );
    let rendered = rendered(&text);
    assert_eq!(rendered.len(), 3, "{rendered:?}");
    // The unknown kind is pointed at itself, not at the incident that holds it.
    assert!(
        rendered[0].starts_with(
            "t.yaml:13:33: incidents[0].fault.kind: unknown fault kind `explode`\n  help: expected one of: latency, error, hang"
        ),
        "{}",
        rendered[0]
    );
    // The broken incident is left out; the second keeps its own index and positions.
    assert!(
        rendered[1].starts_with("t.yaml:15:15: incidents[1].duration"),
        "{}",
        rendered[1]
    );
    assert!(
        rendered[2].contains("incidents[1].fault.service: no service `nope`"),
        "{}",
        rendered[2]
    );
}

#[test]
fn every_shape_problem_is_reported_at_once_and_the_rest_is_validated() {
    let text = BASE
        .replace("  api:\n", "  api:\n    version: 2\n    replica: 3\n")
        .replace(
            "/: {}",
            "/: {latency: {uniform: {min_ms: 9, max_ms: 2}}, errors: {rate: x}, stepz: []}",
        )
        .replace("duration: 10s", "duration: 30");
    let rendered = rendered(&text);
    let expected = [
        "t.yaml:3:14: services.api.version: expected a string, found the integer `2`",
        "t.yaml:4:5: services.api.replica: unknown field `replica` in a service",
        "t.yaml:6:39: services.api.routes./.latency.uniform.min_ms: min_ms (9) is greater than max_ms (2)",
        "t.yaml:6:70: services.api.routes./.errors.rate: expected a number, found the string `x`",
        "t.yaml:6:74: services.api.routes./.stepz: unknown field `stepz` in a route",
        "t.yaml:9:13: load.duration: expected a duration with a unit, found the integer `30`",
    ];
    assert_eq!(rendered.len(), expected.len(), "{rendered:#?}");
    for (got, want) in rendered.iter().zip(expected) {
        assert!(
            got.starts_with(want),
            "{got}\n  does not start with\n{want}"
        );
    }
}

#[test]
fn a_required_field_that_broke_takes_its_parent_along_silently() {
    // `route: 5` is the one problem; the call without a route is left out without a second
    // message, and the next step is still checked where it is.
    let text = BASE.replace(
        "/: {}",
        "/: {steps: [{call: api, route: 5}, {db: pg, operation: GET, latency: 1ms, repeat: 0}]}",
    );
    let rendered = rendered(&text);
    assert_eq!(rendered.len(), 2, "{rendered:#?}");
    assert!(rendered[0].contains("steps[0].route: expected a string, found the integer `5`"));
    // The second step's problem keeps its own index although the first was left out.
    assert!(
        rendered[1].contains("steps[1].repeat: repeat must be at least 1"),
        "{}",
        rendered[1]
    );
}

#[test]
fn a_service_with_broken_routes_is_still_known() {
    let text = BASE.replace(
        "  api:\n    routes:\n      /: {}\n",
        "  api:\n    routs:\n      /: {}\n  web:\n    routes:\n      /: {steps: [{call: api, route: /}]}\n",
    );
    let rendered = rendered(&text);
    assert!(
        rendered.iter().all(|line| !line.contains("no service")),
        "{rendered:#?}"
    );
    assert!(rendered[0].contains("unknown field `routs` in a service"));
}

#[test]
fn every_latency_model_reads_as_itself() {
    // One model per kind, written in full: a forgotten or mixed-up arm reads one as another.
    let cases = [
        ("{constant: {ms: 2}}", LatencyModel::Constant { ms: 2.0 }),
        (
            "{uniform: {min_ms: 1, max_ms: 2}}",
            LatencyModel::Uniform {
                min_ms: 1.0,
                max_ms: 2.0,
            },
        ),
        (
            "{normal: {mean_ms: 1, std_dev_ms: 2}}",
            LatencyModel::Normal {
                mean_ms: 1.0,
                std_dev_ms: 2.0,
            },
        ),
        (
            "{lognormal: {median_ms: 1, sigma: 2}}",
            LatencyModel::LogNormal {
                median_ms: 1.0,
                sigma: 2.0,
            },
        ),
        (
            "{exponential: {mean_ms: 1}}",
            LatencyModel::Exponential { mean_ms: 1.0 },
        ),
        (
            "{pareto: {scale_ms: 1, shape: 2}}",
            LatencyModel::Pareto {
                scale_ms: 1.0,
                shape: 2.0,
            },
        ),
        (
            "{empirical: {quantiles: [[0, 1], [0.5, 2], [1, 7.5]]}}",
            LatencyModel::Empirical {
                quantiles: vec![(0.0, 1.0), (0.5, 2.0), (1.0, 7.5)],
            },
        ),
    ];
    assert_eq!(cases.len(), LatencyModel::kinds().len());
    for ((text, model), kind) in cases.into_iter().zip(LatencyModel::kinds()) {
        let read: LatencyModel = crate::parse_value(text, "t.yaml").expect(text);
        assert_eq!(read, model);
        assert_eq!(read.kind(), *kind);
        assert!(text.starts_with(&format!("{{{kind}:")), "{text}");
    }
    // A parameter of another model is not taken for this one.
    let wrong = crate::parse_value::<LatencyModel>("{exponential: {scale_ms: 1, shape: 2}}", "t")
        .expect_err("pareto's parameters are not exponential's");
    assert!(
        wrong
            .to_string()
            .contains("unknown field `scale_ms` in an exponential latency model")
    );
}

#[test]
fn shorthands_hold_in_json_too() {
    // The admin API reads faults as JSON through the same definition.
    let add = |json: &str| -> LatencyFault { serde_json::from_str(json).expect(json) };
    assert_eq!(
        add(r#"{"add": "300ms"}"#),
        LatencyFault::Add(LatencyModel::Constant { ms: 300.0 })
    );
    assert_eq!(
        add(r#"{"add": {"constant": 5}}"#),
        LatencyFault::Add(LatencyModel::Constant { ms: 5.0 })
    );
    assert_eq!(
        add(r#"{"replace": {"exponential": {"mean_ms": 4}}}"#),
        LatencyFault::Replace(LatencyModel::Exponential { mean_ms: 4.0 })
    );
    let error = serde_json::from_str::<LatencyFault>(r#"{"add": "soon"}"#).unwrap_err();
    assert!(
        error.to_string().contains("unknown variant `soon`"),
        "{error}"
    );
}

#[test]
fn other_formats_read_the_key_tagged_steps() {
    let step: Step = serde_saphyr::from_str("{route: /q, call: db, repeat: 3}").expect("a call");
    let Step::Call(call) = &step else {
        panic!("{step:?}")
    };
    assert_eq!((call.service.as_str(), call.repeat), ("db", 3));
    assert_eq!(step.kind(), "call");
    let error = serde_saphyr::from_str::<Step>("{call: db, work: x}").unwrap_err();
    assert!(
        error.to_string().contains("this one has `call` and `work`"),
        "{error}"
    );
}

#[test]
fn kind_names_come_from_serde() {
    assert_eq!(
        LatencyModel::kinds(),
        [
            "constant",
            "uniform",
            "normal",
            "lognormal",
            "exponential",
            "pareto",
            "empirical"
        ]
    );
    assert_eq!(
        Step::kinds(),
        ["call", "parallel", "work", "db", "cache", "publish"]
    );
    let fault = crate::Fault {
        service: "a".into(),
        instance: None,
        route: None,
        baggage: None,
        fraction: 1.0,
        kind: FaultKind::CacheFailure { hit_ratio: 0.5 },
    };
    assert_eq!(fault.kind_name(), "cache_failure");
}
