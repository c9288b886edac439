//! The JSON Schema of the scenario format, generated from the model types (their doc comments
//! are the descriptions), so it cannot drift from what [`crate::parse`] reads. It is checked in
//! as `docs/scenario.schema.json`, where editors find it through yaml-language-server's
//! `# yaml-language-server: $schema=...` comment; a test fails when the file is stale.
//!
//! The schema describes shapes only. The rules that need the whole scenario (references,
//! call cycles, ranges) are `tracelab check`'s.

use crate::model::Scenario;

/// The schema, as pretty-printed JSON with a trailing newline.
pub fn json_schema() -> String {
    let mut schema = schemars::SchemaGenerator::default().into_root_schema_for::<Scenario>();
    schema.insert(
        "$id".to_owned(),
        "https://github.com/tracelab/tracelab/docs/scenario.schema.json".into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
