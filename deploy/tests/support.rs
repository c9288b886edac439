//! Shared by the integration tests: reading the repository's scenarios.

use std::path::{Path, PathBuf};

use tracelab_scenario::Scenario;

/// The repository root, one level above this crate.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in a workspace directory")
        .to_path_buf()
}

/// Reads and parses `scenarios/<name>`, returning the scenario and its text.
pub fn load_scenario(name: &str) -> (Scenario, String) {
    let path = repo_root().join("scenarios").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    let scenario = tracelab_scenario::parse(&text, &format!("scenarios/{name}"))
        .unwrap_or_else(|diagnostics| panic!("scenarios/{name} does not parse: {diagnostics:?}"));
    (scenario, text)
}

/// The names of every scenario file in `scenarios/`.
pub fn all_scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("scenarios"))
        .expect("the scenarios directory exists")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .collect();
    names.sort();
    names
}
