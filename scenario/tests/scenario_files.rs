//! Every scenario shipped in `scenarios/` parses and passes validation.

use std::path::PathBuf;

fn scenario_files() -> Vec<PathBuf> {
    let directory = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", directory.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "yaml" || extension == "yml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_is_valid() {
    let files = scenario_files();
    assert!(!files.is_empty(), "no scenario files found");
    let mut failures = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("readable scenario");
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("?");
        match tracelab_scenario::parse(&source, name) {
            Ok(scenario) => {
                assert!(!scenario.services.is_empty(), "{name}: no services");
                assert!(
                    source.trim_start().starts_with('#'),
                    "{name}: a scenario file begins with a comment saying what it shows"
                );
                assert!(
                    source.contains("cargo run"),
                    "{name}: the header comment gives the command that runs it"
                );
            }
            Err(diagnostics) => failures.push(diagnostics.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "invalid scenarios:\n{}",
        failures.join("\n")
    );
}

#[test]
fn quickstart_has_the_documented_shape() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quickstart.yaml");
    let source = std::fs::read_to_string(path).expect("quickstart exists");
    let scenario =
        tracelab_scenario::parse(&source, "quickstart.yaml").expect("quickstart is valid");
    assert_eq!(scenario.name, "quickstart");
    assert!((5..=6).contains(&scenario.services.len()));
    assert_eq!(scenario.load.duration, std::time::Duration::from_secs(10));
    assert_eq!(scenario.load.rate, 20.0);

    // The header says payment is the slow one: its route's own work must dominate every other
    // route's expected latency.
    let own_work = |route: &tracelab_scenario::Route| {
        route.latency.mean_ms()
            + route
                .steps
                .iter()
                .filter_map(|step| match step {
                    tracelab_scenario::Step::Work(work) => Some(work.latency.mean_ms()),
                    _ => None,
                })
                .sum::<f64>()
    };
    let charge = own_work(
        scenario
            .route("payment", "/charge")
            .expect("payment /charge"),
    );
    for (service, definition) in &scenario.services {
        for (path, route) in &definition.routes {
            if service != "payment" {
                assert!(
                    own_work(route) * 3.0 < charge,
                    "{service}{path} is about as slow as payment"
                );
            }
        }
    }
}
