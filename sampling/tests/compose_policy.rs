//! The compose stack's Collector loads its tail-sampling policies from
//! `compose/otel-collector/tail-sampling.yaml`; `tracelab compare` must read that very file,
//! unchanged, with every policy supported, so what the lab measures is what the stack runs.

use std::path::Path;

use tracelab_sampling::tail::parse_tail_sampling;

#[test]
fn the_compose_stack_tail_policy_parses_with_every_policy_supported() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose/otel-collector/tail-sampling.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let config = parse_tail_sampling(&yaml, None)
        .map(|p| p.config)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(config.policies.len(), 3, "errors, slow, baseline");
}

#[test]
fn the_collector_config_declares_the_same_processor() {
    // The main Collector config references `tail_sampling` in a pipeline; the policy file
    // defines it. Both must agree on the name, or the Collector refuses to start.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose/otel-collector");
    let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    let policy = std::fs::read_to_string(dir.join("tail-sampling.yaml")).unwrap();
    assert!(
        config.contains("tail_sampling"),
        "a pipeline uses tail_sampling"
    );
    assert!(
        policy.contains("  tail_sampling:"),
        "the policy file defines it"
    );
}
