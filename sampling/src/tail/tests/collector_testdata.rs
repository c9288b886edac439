//! The processor's testdata fixtures (contrib 0.157.0), written out here from the
//! documented files: each loads and runs, or is refused exactly where the Collector refuses
//! it.

use super::*;

/// `testdata/tail_sampling_config.yaml`: one of each policy type, in the bare-processor shape.
const TESTDATA_CONFIG: &str = r#"tail_sampling:
  decision_wait: 10s
  num_traces: 100
  expected_new_traces_per_sec: 10
  decision_cache:
    sampled_cache_size: 1000
    non_sampled_cache_size: 10000
  sample_on_first_match: true
  policies:
    - {name: test-policy-1, type: always_sample}
    - {name: test-policy-2, type: latency, latency: {threshold_ms: 5000}}
    - {name: test-policy-3, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}}
    - {name: test-policy-4, type: probabilistic, probabilistic: {hash_salt: "custom-salt", sampling_percentage: 0.1}}
    - {name: test-policy-5, type: status_code, status_code: {status_codes: [ERROR, UNSET]}}
    - {name: test-policy-6, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}
    - {name: test-policy-7, type: rate_limiting, rate_limiting: {spans_per_second: 35}}
    - {name: test-policy-8, type: span_count, span_count: {min_spans: 2, max_spans: 20}}
    - {name: test-policy-9, type: trace_state, trace_state: {key: key3, values: [value1, value2]}}
    - {name: test-policy-10, type: boolean_attribute, boolean_attribute: {key: key4, value: true}}
    - name: test-policy-11
      type: ottl_condition
      ottl_condition:
        error_mode: ignore
        span:
          - "attributes[\"test_attr_key_1\"] == \"test_attr_val_1\""
          - "attributes[\"test_attr_key_2\"] != \"test_attr_val_1\""
        spanevent:
          - "name != \"test_span_event_name\""
          - "attributes[\"test_event_attr_key_2\"] != \"test_event_attr_val_1\""
    - {name: test-policy-12, type: bytes_limiting, bytes_limiting: {bytes_per_second: 1024}}
    - {name: test-policy-13, type: trace_flags}
    - name: and-policy-1
      type: and
      and:
        and_sub_policy:
          - {name: test-and-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}}
          - {name: test-and-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}
          - name: test-and-policy-3
            type: not
            not: {not_sub_policy: {name: not-slow, type: latency, latency: {threshold_ms: 5000}}}
    - name: composite-policy-1
      type: composite
      composite:
        max_total_spans_per_second: 1000
        policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3]
        composite_sub_policy:
          - {name: test-composite-policy-1, type: numeric_attribute, numeric_attribute: {key: key1, min_value: 50, max_value: 100}}
          - {name: test-composite-policy-2, type: string_attribute, string_attribute: {key: key2, values: [value1, value2]}}
          - {name: test-composite-policy-3, type: always_sample}
        rate_allocation:
          - {policy: test-composite-policy-1, percent: 50}
          - {policy: test-composite-policy-2, percent: 25}
    - name: drop-policy-1
      type: drop
      drop:
        drop_sub_policy:
          - {name: test-drop-policy-1, type: string_attribute, string_attribute: {key: url.path, values: [/health]}}
"#;

#[test]
fn the_testdata_config_loads_and_runs() {
    let parsed = parse_tail_sampling(TESTDATA_CONFIG, None).unwrap();
    let c = &parsed.config;
    assert_eq!(c.policies.len(), 16);
    assert!(c.sample_on_first_match);
    assert_eq!(
        (c.sampled_cache_size, c.non_sampled_cache_size),
        (1000, 10_000)
    );
    let spans = vec![
        str_attr(span(1, 1, 0, 10), "url.path", "/health"),
        span(2, 1, 1000, 1010),
    ];
    // The drop policy is evaluated first, so always_sample's first match does not save the
    // probe.
    let out = TailSampler::new(c).simulate(&spans);
    assert_eq!(out.kept, vec![false, true]);
}

#[test]
fn numeric_fixtures_are_refused_like_the_collector_refuses_them() {
    // testdata/numeric_attribute_with_minvalue_greather_than_maxvalue.yaml
    let min_above_max = "tail_sampling:\n  decision_wait: 10s\n  num_traces: 100\n  expected_new_traces_per_sec: 10\n  decision_cache:\n    sampled_cache_size: 1000\n    non_sampled_cache_size: 10000\n  policies:\n    [\n        {\n          name: test-policy-3,\n          type: numeric_attribute,\n          numeric_attribute: {key: key1, min_value: 500, max_value: 100}\n        },\n    ]\n";
    let err = parse_tail_sampling(min_above_max, None).unwrap_err();
    assert!(
        matches!(&err, TailConfigError::Invalid { line: 13, column: 53, message } if message.contains("min_value 500 is greater than max_value 100")),
        "{err}"
    );
    // testdata/numeric_attribute_without_minvalue_or_maxvalue.yaml
    let no_bounds = min_above_max.replace(", min_value: 500, max_value: 100", "");
    let err = parse_tail_sampling(&no_bounds, None).unwrap_err();
    assert!(
        matches!(&err, TailConfigError::Invalid { line: 13, message, .. } if message.contains("min_value, max_value or both")),
        "{err}"
    );
}

#[test]
fn the_error_mode_fixture_loads_with_the_default_mode() {
    // testdata/tail_sampling_config_errormode.yaml: no error_mode, so `propagate`.
    let yaml = "tail_sampling:\n  policies:\n    - name: test-policy-ottl\n      type: ottl_condition\n      ottl_condition:\n        span:\n          - attributes[\"test_attr\"] == \"val\"\n";
    let c = parse_tail_sampling(yaml, None).unwrap().config;
    let PolicyRule::OttlCondition(o) = &c.policies[0].rule else {
        panic!("not an OTTL policy");
    };
    assert_eq!(o.error_mode(), crate::tail::ottl::ErrorMode::Propagate);
    assert_eq!(
        o.span_conditions()[0].text(),
        r#"attributes["test_attr"] == "val""#
    );
    let mut s = TailSampler::new(&c);
    assert!(s.decide_trace(&[str_attr(span(1, 1, 0, 1), "test_attr", "val")], 0));
    assert!(!s.decide_trace(&[str_attr(span(1, 1, 0, 1), "test_attr", "other")], 0));
}
