//! What the Collector (contrib 0.157.0) refuses, tracelab refuses, with line and column; what
//! it accepts, tracelab accepts, saying once which settings change nothing in a replay.

use super::collector_docs::line_of;
use super::*;

fn invalid(yaml: &str) -> (u64, u64, String) {
    match parse_tail_sampling(yaml, None) {
        Err(TailConfigError::Invalid {
            line,
            column,
            message,
        }) => (line, column, message),
        other => panic!("expected a refusal of\n{yaml}\ngot {other:?}"),
    }
}

fn accepted(yaml: &str) -> ParsedTailSampling {
    parse_tail_sampling(yaml, None).unwrap_or_else(|e| panic!("{yaml}\nrefused: {e}"))
}

#[test]
fn the_keys_of_current_versions_are_accepted() {
    let yaml = "decision_wait: 10s\ndecision_wait_after_root_received: 2s\nnum_traces: 1000\nsampling_strategy: trace-complete\nmaximum_trace_size_bytes: 1048576\nblock_on_overflow: true\ntail_storage: pebble_tail_storage\ndrop_pending_traces_on_shutdown: true\npolicies:\n  - {name: r, type: rate_limiting, rate_limiting: {spans_per_second: 100, burst_capacity: 500}}\n";
    let p = accepted(yaml);
    let c = &p.config;
    assert_eq!(c.decision_wait_after_root_nanos, 2_000_000_000);
    assert_eq!(c.maximum_trace_size_bytes, 1_048_576);
    assert!(c.block_on_overflow && c.drop_pending_traces_on_shutdown);
    assert_eq!(c.tail_storage.as_deref(), Some("pebble_tail_storage"));
    assert!(matches!(
        c.policies[0].rule,
        PolicyRule::RateLimiting {
            spans_per_second: 100,
            burst_capacity: 500
        }
    ));
    // The settings that change nothing, or not everything, in a replay are each said once,
    // with their line.
    for (key, line) in [
        ("tail_storage has no effect", 7),
        ("block_on_overflow:", 6),
        ("drop_pending_traces_on_shutdown has no effect", 8),
    ] {
        let said: Vec<_> = p.warnings.iter().filter(|w| w.contains(key)).collect();
        assert_eq!(said.len(), 1, "{key}: {:?}", p.warnings);
        assert!(
            said[0].starts_with(&format!("line {line}: ")),
            "{}",
            said[0]
        );
    }
    // rate_limiting's burst defaults to twice the rate.
    let p = accepted(
        "policies: [{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 7}}]\n",
    );
    assert!(matches!(
        p.config.policies[0].rule,
        PolicyRule::RateLimiting {
            burst_capacity: 14,
            ..
        }
    ));
}

#[test]
fn num_shards_is_refused_as_the_pinned_collector_refuses_it() {
    let (line, column, message) =
        invalid("num_shards: 4\npolicies: [{name: a, type: always_sample}]\n");
    assert_eq!((line, column), (1, 13));
    assert!(
        message.contains("0.159.0") && message.contains("0.157.0"),
        "{message}"
    );
}

#[test]
fn a_misspelt_type_is_refused_with_a_suggestion() {
    let yaml = "policies:\n  - name: slow\n    type: lateny\n    latency: {threshold_ms: 5}\n";
    let (line, column, message) = invalid(yaml);
    assert_eq!((line, column), (3, 11));
    assert!(
        message.contains("unknown policy type `lateny`; did you mean `latency`?"),
        "{message}"
    );
    let (_, _, message) = invalid("policies: [{name: x, type: frobnicate}]\n");
    assert!(
        message.contains("the types are always_sample,"),
        "{message}"
    );
}

#[test]
fn skip_is_not_a_policy_type_of_the_pinned_version() {
    let (line, _, message) = invalid("policies:\n  - name: s\n    type: skip\n");
    assert_eq!(line, 3);
    assert!(
        message.contains("`skip` was proposed upstream"),
        "{message}"
    );
}

#[test]
fn nesting_the_collector_forbids_is_refused() {
    // An `and` inside an `and`.
    let yaml = "policies:\n  - name: outer\n    type: and\n    and:\n      and_sub_policy:\n        - name: inner\n          type: and\n";
    let (line, column, message) = invalid(yaml);
    assert_eq!((line, column), (7, 17));
    assert!(
        message.contains("cannot be nested in an `and_sub_policy`"),
        "{message}"
    );
    // A `composite:` block in an and sub-policy, even one whose type would be allowed.
    let yaml = "policies:\n  - name: outer\n    type: and\n    and:\n      and_sub_policy:\n        - name: inner\n          type: always_sample\n          composite: {max_total_spans_per_second: 1, composite_sub_policy: [{name: a, type: always_sample}]}\n";
    let (line, column, message) = invalid(yaml);
    assert_eq!((line, column), (8, 11));
    assert!(message.contains("`composite:` cannot appear"), "{message}");
    // A `drop` in a composite, a `not` in a `not`, a `not` in a composite.
    for (outer, inner) in [
        (
            "composite: {max_total_spans_per_second: 10, composite_sub_policy: [INNER]}",
            "{name: d, type: drop, drop: {drop_sub_policy: [{name: x, type: always_sample}]}}",
        ),
        (
            "not: {not_sub_policy: INNER}",
            "{name: n, type: not, not: {not_sub_policy: {name: x, type: always_sample}}}",
        ),
        (
            "composite: {max_total_spans_per_second: 10, composite_sub_policy: [INNER]}",
            "{name: n, type: not, not: {not_sub_policy: {name: x, type: always_sample}}}",
        ),
    ] {
        let kind = outer.split(':').next().unwrap_or_default();
        let yaml = format!(
            "policies:\n  - name: outer\n    type: {kind}\n    {}\n",
            outer.replace("INNER", inner)
        );
        let (line, _, message) = invalid(&yaml);
        assert_eq!(line, 4, "{yaml}");
        assert!(
            message.contains("cannot appear") || message.contains("cannot be nested"),
            "{yaml}: {message}"
        );
    }
    // What 0.157.0 allows: `not` in `and` and `drop`, `and` in a composite.
    accepted(
        "policies:\n  - {name: a, type: and, and: {and_sub_policy: [{name: x, type: always_sample}, {name: n, type: not, not: {not_sub_policy: {name: e, type: status_code, status_code: {status_codes: [ERROR]}}}}]}}\n  - {name: d, type: drop, drop: {drop_sub_policy: [{name: n, type: not, not: {not_sub_policy: {name: x, type: always_sample}}}]}}\n  - {name: c, type: composite, composite: {max_total_spans_per_second: 10, composite_sub_policy: [{name: a2, type: and, and: {and_sub_policy: [{name: y, type: always_sample}]}}], rate_allocation: [{policy: a2, percent: 100}]}}\n",
    );
}

#[test]
fn empty_or_missing_policies_are_refused() {
    let (line, column, message) = invalid("decision_wait: 5s\npolicies: []\n");
    assert_eq!((line, column), (2, 11));
    assert!(message.contains("at least one"), "{message}");
    let (line, column, message) = invalid("processors:\n  tail_sampling:\n    decision_wait: 5s\n");
    assert_eq!((line, column), (3, 5));
    assert!(message.contains("no `policies:`"), "{message}");
}

#[test]
fn ranges_that_can_never_sample_are_refused() {
    let yaml = "policies:\n  - {name: l, type: latency, latency: {threshold_ms: 500, upper_threshold_ms: 200}}\n";
    let (line, column, message) = invalid(yaml);
    assert_eq!((line, column), (2, 79));
    assert!(
        message.contains("upper_threshold_ms 200 is not above threshold_ms 500"),
        "{message}"
    );
    invalid(
        "policies:\n  - {name: l, type: latency, latency: {threshold_ms: 500, upper_threshold_ms: 500}}\n",
    );
    let yaml =
        "policies:\n  - {name: s, type: span_count, span_count: {min_spans: 10, max_spans: 2}}\n";
    let (line, column, message) = invalid(yaml);
    assert_eq!((line, column), (2, 72));
    assert!(
        message.contains("max_spans 2 is below min_spans 10"),
        "{message}"
    );
    // An upper bound of 0 is no bound; so is max_spans 0.
    accepted(
        "policies:\n  - {name: l, type: latency, latency: {threshold_ms: 500, upper_threshold_ms: 0}}\n  - {name: s, type: span_count, span_count: {min_spans: 10, max_spans: 0}}\n",
    );
}

#[test]
fn sampling_percentage_of_100_or_more_keeps_everything() {
    for pct in ["100", "250"] {
        let yaml = format!(
            "policies: [{{name: p, type: probabilistic, probabilistic: {{sampling_percentage: {pct}}}}}]\n"
        );
        let mut s = TailSampler::new(&accepted(&yaml).config);
        assert!(
            (0..200u8).all(|i| s.decide_trace(&[span(i, 1, 0, 1)], 0)),
            "{pct}"
        );
    }
    let p = accepted(
        "policies: [{name: p, type: probabilistic, probabilistic: {sampling_percentage: -5}}]\n",
    );
    assert!(
        p.warnings.iter().any(|w| w.contains("samples nothing")),
        "{:?}",
        p.warnings
    );
    let mut s = TailSampler::new(&p.config);
    assert!((0..200u8).all(|i| !s.decide_trace(&[span(i, 1, 0, 1)], 0)));
}

#[test]
fn top_level_values_are_checked() {
    let (line, column, message) =
        invalid("decision_wait: 0s\npolicies: [{name: a, type: always_sample}]\n");
    assert_eq!((line, column), (1, 16));
    assert!(message.contains("longer than 0s"), "{message}");
    let (line, column, message) =
        invalid("sampling_strategy: span_ingest\npolicies: [{name: a, type: always_sample}]\n");
    assert_eq!((line, column), (1, 20));
    assert!(message.contains("trace-complete, span-ingest"), "{message}");
    let (line, _, message) = invalid(
        "sampling_strategy: span-ingest\npolicies:\n  - {name: a, type: always_sample}\n  - {name: c, type: and, and: {and_sub_policy: [{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 5}}]}}\n",
    );
    assert_eq!(line, 1);
    assert!(
        message.contains("policy \"c\" (line 4)") && message.contains("stateful"),
        "{message}"
    );
    let (line, column, _) = invalid(
        "decision_wait_after_root_received: soon\npolicies: [{name: a, type: always_sample}]\n",
    );
    assert_eq!((line, column), (1, 36));
    let (line, column, message) =
        invalid("maximum_trace_size_bytes: -1\npolicies: [{name: a, type: always_sample}]\n");
    assert_eq!((line, column), (1, 27));
    assert!(message.contains("must not be negative"), "{message}");
    let (_, _, message) = invalid(
        "policies: [{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 5, burst_capacity: -1}}]\n",
    );
    assert!(message.contains("burst_capacity"), "{message}");
}

#[test]
fn an_unknown_policy_field_is_refused_with_a_suggestion() {
    let yaml = "policies:\n  - name: e\n    type: status_code\n    status_codes: {status_codes: [ERROR]}\n";
    let (line, column, message) = invalid(yaml);
    assert_eq!((line, column), (4, 5));
    assert!(message.contains("did you mean `status_code`?"), "{message}");
}

#[test]
fn ottl_settings_are_checked() {
    let (line, column, message) = invalid(
        "policies:\n  - name: o\n    type: ottl_condition\n    ottl_condition: {error_mode: loud, span: [\"true\"]}\n",
    );
    assert_eq!((line, column), (4, 34));
    assert!(message.contains("propagate, ignore, silent"), "{message}");
    let (line, _, message) = invalid(
        "policies:\n  - name: o\n    type: ottl_condition\n    ottl_condition: {error_mode: ignore}\n",
    );
    assert_eq!(line, 4);
    assert!(message.contains("at least one condition"), "{message}");
}

/// A policy with one `span` condition written as `scalar` (the YAML of the list item).
fn ottl_policy(scalar: &str) -> String {
    format!(
        "policies:\n  - name: o\n    type: ottl_condition\n    ottl_condition:\n      span:\n        - {scalar}\n"
    )
}

#[test]
fn ottl_parse_errors_point_at_the_file_line_and_column() {
    // A plain scalar: the condition starts at column 11 of line 6.
    let yaml = ottl_policy(r#"name == "x" && kind == 2"#);
    let (line, column, message) = invalid(&yaml);
    assert_eq!((line, column), (6, 23), "{message}");
    assert!(
        message.contains("policy \"o\": ottl_condition span[0]"),
        "{message}"
    );
    assert!(message.contains("(column 13 of the condition"), "{message}");
    // Double-quoted, with escapes before the error: each `\"` is two columns of the file.
    let yaml = ottl_policy(r#""attributes[\"k\"] == \"v\" && kind""#);
    let (line, column, message) = invalid(&yaml);
    assert_eq!((line, column), (6, 39), "{message}");
    // Single-quoted, where `''` is one quote.
    let yaml = ottl_policy("'name == ''x'' and true'");
    let (line, column, message) = invalid(&yaml);
    assert_eq!((line, column), (6, 20), "{message}");
    assert!(message.contains("double quotes"), "{message}");
    // A block scalar: the content line.
    let yaml = "policies:\n  - name: o\n    type: ottl_condition\n    ottl_condition:\n      span:\n        - |-\n          name == \"y\" and\n";
    let (line, column, message) = invalid(yaml);
    assert_eq!((line, column), (7, 26), "{message}");
    // The second condition of a list, in a spanevent context, in a nested policy.
    let yaml = "policies:\n  - name: d\n    type: drop\n    drop:\n      drop_sub_policy:\n        - name: o\n          type: ottl_condition\n          ottl_condition:\n            spanevent: [\"name == \\\"a\\\"\", \"span.nme == 1\"]\n";
    let (line, column, message) = invalid(yaml);
    let at = line_of(yaml, "spanevent:");
    assert_eq!(line, at, "{message}");
    assert_eq!(column, 43, "{message}");
    assert!(
        message.contains("spanevent[1]") && message.contains("unknown path `span.nme`"),
        "{message}"
    );
}
