//! The JSON Schema in `docs/scenario.schema.json` is the one generated from the model, and it
//! describes the files the reader accepts.
//!
//! After changing the model, refresh the file with
//! `TRACELAB_UPDATE_SCHEMA=1 cargo test -p tracelab-scenario --test schema`.

use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn checked_in() -> PathBuf {
    repo().join("docs/scenario.schema.json")
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(&tracelab_scenario::schema::json_schema()).expect("JSON");
    jsonschema::draft202012::new(&schema).expect("a valid draft 2020-12 schema")
}

/// A YAML scenario as the JSON value an editor's schema check sees.
fn as_json(yaml: &str) -> serde_json::Value {
    serde_saphyr::from_str(yaml).expect("YAML")
}

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let generated = tracelab_scenario::schema::json_schema();
    if std::env::var_os("TRACELAB_UPDATE_SCHEMA").is_some() {
        std::fs::write(checked_in(), &generated).expect("writable docs/");
    }
    let on_disk = std::fs::read_to_string(checked_in()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/scenario.schema.json is stale: run \
         `TRACELAB_UPDATE_SCHEMA=1 cargo test -p tracelab-scenario --test schema` and commit it"
    );
}

#[test]
fn every_shipped_scenario_matches_the_schema() {
    let validator = validator();
    let mut checked = 0;
    for entry in std::fs::read_dir(repo().join("scenarios")).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|extension| extension != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&text))
            .map(|error| format!("{}: {error}", error.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            path.display(),
            errors.join("\n")
        );
        checked += 1;
    }
    assert!(checked > 5, "only {checked} scenarios found");
}

#[test]
fn the_schema_refuses_the_shapes_the_reader_refuses() {
    let validator = validator();
    let base = "services:\n  api:\n    routes:\n      /a:\n        latency: 5ms\n        steps:\n          - {call: api, route: /b}\n          - {work: w, latency: {lognormal: {median_ms: 3, sigma: 0.5}}}\n      /b: {latency: {constant: 2}}\nload:\n  duration: 1s\n  arrival: {ramp: {from: 1, to: 5}}\n  entries:\n    - {service: api, route: /a}\n";
    assert!(validator.is_valid(&as_json(base)), "the base is valid");
    for (from, to) in [
        ("latency: 5ms", "latncy: 5ms"),
        ("latency: 5ms", "latency: 5"),
        ("{call: api, route: /b}", "{call: api, route: /b, work: w}"),
        ("{call: api, route: /b}", "{cal: api, route: /b}"),
        ("median_ms: 3", "median: 3"),
        ("{ramp: {from: 1, to: 5}}", "{ramp: {from: 1}}"),
        ("duration: 1s", "duration: {s: 1}"),
    ] {
        assert!(base.contains(from), "{from}");
        let broken = base.replacen(from, to, 1);
        assert!(
            !validator.is_valid(&as_json(&broken)),
            "the schema accepts `{to}`"
        );
        assert!(
            tracelab_scenario::parse(&broken, "t.yaml").is_err(),
            "the reader accepts `{to}`"
        );
    }
}
