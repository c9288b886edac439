//! The `tail_sampling` configurations of the Collector's README for contrib 0.157.0 — its
//! example and its "practical example" — written out here from the documentation (in block
//! style, with the same keys and values), each loaded and run, or refused exactly where the
//! Collector refuses it.

use tracelab_trace::{AttrValue, Event, Span, StatusCode};

use super::*;

/// The README's example: one policy of every type.
const README_EXAMPLE: &str = r#"processors:
  tail_sampling:
    decision_wait: 10s
    num_traces: 100
    expected_new_traces_per_sec: 10
    decision_cache:
      sampled_cache_size: 100_000
      non_sampled_cache_size: 100_000
    policies:
      - name: test-policy-1
        type: always_sample
      - name: test-policy-2
        type: latency
        latency: {threshold_ms: 5000, upper_threshold_ms: 10000}
      - name: test-policy-3
        type: numeric_attribute
        numeric_attribute: {key: key1, min_value: 50, max_value: 100}
      - name: test-policy-4
        type: probabilistic
        probabilistic: {sampling_percentage: 10}
      - name: test-policy-5
        type: status_code
        status_code: {status_codes: [ERROR, UNSET]}
      - name: test-policy-6
        type: string_attribute
        string_attribute: {key: key2, values: [value1, value2]}
      - name: test-policy-7
        type: string_attribute
        string_attribute: {key: key2, values: [value1, val*], enabled_regex_matching: true, cache_max_size: 10}
      - name: test-policy-8
        type: rate_limiting
        rate_limiting: {spans_per_second: 35, burst_capacity: 70}
      - name: test-policy-9
        type: bytes_limiting
        bytes_limiting: {bytes_per_second: 1024000, burst_capacity: 2048000}
      - name: test-policy-10
        type: span_count
        span_count: {min_spans: 2, max_spans: 20}
      - name: test-policy-11
        type: trace_state
        trace_state: {key: key3, values: [value1, value2]}
      - name: test-policy-12
        type: boolean_attribute
        boolean_attribute: {key: key4, value: true}
      - name: test-policy-13
        type: ottl_condition
        ottl_condition:
          error_mode: ignore
          span:
            - "attributes[\"test_attr_key_1\"] == \"test_attr_val_1\""
            - "attributes[\"test_attr_key_2\"] != \"test_attr_val_1\""
          spanevent:
            - "name != \"test_span_event_name\""
            - "attributes[\"test_event_attr_key_2\"] != \"test_event_attr_val_1\""
      - name: test-policy-14
        type: ottl_condition
        ottl_condition:
          error_mode: ignore
          span:
            - "resource.attributes[\"service.name\"] == \"checkout\""
            - "span.attributes[\"http.status_code\"] >= 500"
          spanevent:
            - "spanevent.name == \"exception\""
      - name: and-policy-1
        type: and
        and:
          and_sub_policy:
            - name: test-and-policy-1
              type: numeric_attribute
              numeric_attribute: {key: key1, min_value: 50, max_value: 100}
            - name: test-and-policy-2
              type: string_attribute
              string_attribute: {key: key2, values: [value1, value2]}
      - name: not-policy-1
        type: not
        not:
          not_sub_policy:
            name: test-not-policy-1
            type: latency
            latency: {threshold_ms: 1000}
      - name: drop-policy-1
        type: drop
        drop:
          drop_sub_policy:
            - name: test-drop-policy-1
              type: string_attribute
              string_attribute: {key: url.path, values: [\/health, \/metrics], enabled_regex_matching: true}
      - name: composite-policy-1
        type: composite
        composite:
          max_total_spans_per_second: 1000
          policy_order: [test-composite-policy-1, test-composite-policy-2, test-composite-policy-3]
          composite_sub_policy:
            - name: test-composite-policy-1
              type: numeric_attribute
              numeric_attribute: {key: key1, min_value: 50}
            - name: test-composite-policy-2
              type: string_attribute
              string_attribute: {key: key2, values: [value1, value2]}
            - name: test-composite-policy-3
              type: always_sample
          rate_allocation:
            - {policy: test-composite-policy-1, percent: 50}
            - {policy: test-composite-policy-2, percent: 25}
"#;

/// The line of the first occurrence of `needle` in `text`.
pub(super) fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

fn readme() -> ParsedTailSampling {
    parse_tail_sampling(README_EXAMPLE, None).unwrap()
}

/// A sampler running only the README policy of this name.
fn readme_policy(name: &str) -> TailSampler {
    let mut config = readme().config;
    config.policies.retain(|p| p.name == name);
    assert_eq!(config.policies.len(), 1, "{name}");
    TailSampler::new(&config)
}

#[test]
fn the_readme_example_loads_every_policy() {
    let parsed = readme();
    assert_eq!(parsed.processor.as_deref(), Some("tail_sampling"));
    let c = &parsed.config;
    assert_eq!(c.decision_wait_nanos, 10_000_000_000);
    assert_eq!(c.num_traces, 100);
    assert_eq!(c.sampled_cache_size, 100_000);
    assert_eq!(c.non_sampled_cache_size, 100_000);
    let names: Vec<&str> = c.policies.iter().map(|p| p.name.as_str()).collect();
    let mut expected: Vec<String> = (1..=14).map(|i| format!("test-policy-{i}")).collect();
    expected.extend(
        [
            "and-policy-1",
            "not-policy-1",
            "drop-policy-1",
            "composite-policy-1",
        ]
        .map(String::from),
    );
    assert_eq!(names, expected);
    assert_eq!(
        c.policies[12].line,
        line_of(README_EXAMPLE, "name: test-policy-13")
    );
    // The composite's always_sample has no rate allocation: the Collector gives it nothing.
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| w.contains("test-composite-policy-3"))
    );
    // Sizing hints are said to change nothing in a replay, once each.
    let said = |what: &str| parsed.warnings.iter().filter(|w| w.contains(what)).count();
    assert_eq!(said("expected_new_traces_per_sec has no effect"), 1);
    assert_eq!(said("cache_max_size has no effect"), 1);
}

#[test]
fn every_readme_policy_is_honoured() {
    let root = |s: Span| vec![s];
    assert!(readme_policy("test-policy-1").decide_trace(&root(span(1, 1, 0, 1)), 0));
    // test-policy-2: latency in (5000, 10000] ms.
    let mut p = readme_policy("test-policy-2");
    assert!(p.decide_trace(&root(span(1, 1, 0, 6000)), 0));
    assert!(
        !p.decide_trace(&root(span(1, 1, 0, 5000)), 0),
        "5000 is not above 5000"
    );
    assert!(p.decide_trace(&root(span(1, 1, 0, 10_000)), 0));
    assert!(!p.decide_trace(&root(span(1, 1, 0, 10_001)), 0));
    // test-policy-3: key1 in [50, 100].
    let mut p = readme_policy("test-policy-3");
    let key1 = |v: i64| root(with_attr(span(1, 1, 0, 1), "key1", AttrValue::Int(v)));
    assert!(p.decide_trace(&key1(50), 0));
    assert!(!p.decide_trace(&key1(101), 0));
    // test-policy-4: 10 % by the Collector's hash.
    let mut p = readme_policy("test-policy-4");
    let kept = (0..20_000u32)
        .filter(|i| {
            let mut s = span(0, 1, 0, 1);
            s.trace_id.0[..4].copy_from_slice(&i.to_be_bytes());
            p.decide_trace(&[s], 0)
        })
        .count();
    assert!(
        (1_800..=2_200).contains(&kept),
        "kept {kept} of 20000 at 10 %"
    );
    // test-policy-5: ERROR or UNSET.
    let mut p = readme_policy("test-policy-5");
    assert!(p.decide_trace(&root(span(1, 1, 0, 1)), 0), "UNSET");
    assert!(!p.decide_trace(&root(with_status(span(1, 1, 0, 1), StatusCode::Ok)), 0));
    // test-policy-6 and 7: exact values, then unanchored regular expressions.
    let mut p = readme_policy("test-policy-6");
    assert!(p.decide_trace(&root(str_attr(span(1, 1, 0, 1), "key2", "value2")), 0));
    assert!(!p.decide_trace(&root(str_attr(span(1, 1, 0, 1), "key2", "valueX")), 0));
    let mut p = readme_policy("test-policy-7");
    assert!(p.decide_trace(&root(str_attr(span(1, 1, 0, 1), "key2", "vaXXX")), 0));
    assert!(!p.decide_trace(&root(str_attr(span(1, 1, 0, 1), "key2", "other")), 0));
    // test-policy-8: 35 spans/s with a burst of 70.
    let mut p = readme_policy("test-policy-8");
    let ten: Vec<Span> = (1..=10).map(|i| span(1, i, 0, 1)).collect();
    let passed = (0..10).filter(|_| p.decide_trace(&ten, 0)).count();
    assert_eq!(passed, 7, "70 tokens = 7 traces of 10 spans at one instant");
    assert!(p.decide_trace(&ten, 300 * MS), "0.3 s refills 10.5 tokens");
    // test-policy-9: bytes; a trace larger than the burst never passes.
    let mut p = readme_policy("test-policy-9");
    let big = with_attr(
        span(1, 1, 0, 1),
        "blob",
        AttrValue::Bytes(vec![0; 2_100_000]),
    );
    assert!(!p.decide_trace(&[big], 0));
    assert!(p.decide_trace(&ten, 0));
    // test-policy-10: 2..=20 spans.
    let mut p = readme_policy("test-policy-10");
    assert!(!p.decide_trace(&ten[..1], 0));
    assert!(p.decide_trace(&ten, 0));
    // test-policy-11: tracestate key3 in values.
    let mut p = readme_policy("test-policy-11");
    let mut s = span(1, 1, 0, 1);
    s.trace_state = "ot=th:0,key3=value2".to_string();
    assert!(p.decide_trace(&[s], 0));
    let mut s = span(1, 1, 0, 1);
    s.trace_state = "key3=value9".to_string();
    assert!(!p.decide_trace(&[s], 0));
    // test-policy-12: key4 == true.
    let mut p = readme_policy("test-policy-12");
    let key4 = |v: bool| root(with_attr(span(1, 1, 0, 1), "key4", AttrValue::Bool(v)));
    assert!(p.decide_trace(&key4(true), 0));
    assert!(!p.decide_trace(&key4(false), 0));
    // test-policy-13: `!=` against an absent attribute is true (nil is not the string), so
    // only a span whose key_2 is exactly test_attr_val_1, without events, is not sampled.
    let mut p = readme_policy("test-policy-13");
    let excluded = str_attr(span(1, 1, 0, 1), "test_attr_key_2", "test_attr_val_1");
    assert!(!p.decide_trace(std::slice::from_ref(&excluded), 0));
    assert!(p.decide_trace(&[span(1, 1, 0, 1)], 0));
    let mut with_event = excluded.clone();
    with_event.events.push(Event {
        name: "retry".into(),
        time_unix_nano: 0,
        attributes: vec![],
    });
    assert!(p.decide_trace(&[with_event], 0), "an event named otherwise");
    // test-policy-14: path-qualified names.
    let mut p = readme_policy("test-policy-14");
    let mut checkout = span(1, 1, 0, 1);
    checkout.resource = Arc::new(vec![Attribute {
        key: "service.name".into(),
        value: AttrValue::Str("checkout".into()),
    }]);
    assert!(p.decide_trace(&[checkout], 0));
    let code = |v: i64| {
        root(with_attr(
            span(1, 1, 0, 1),
            "http.status_code",
            AttrValue::Int(v),
        ))
    };
    assert!(p.decide_trace(&code(503), 0));
    assert!(!p.decide_trace(&code(200), 0));
    // and-policy-1: key1 in range AND key2 exact.
    let mut p = readme_policy("and-policy-1");
    let both = vec![
        with_attr(span(1, 1, 0, 1), "key1", AttrValue::Int(60)),
        str_attr(span(1, 2, 0, 1), "key2", "value1"),
    ];
    assert!(p.decide_trace(&both, 0));
    assert!(!p.decide_trace(&both[..1], 0));
    // not-policy-1: traces of 1000 ms or less.
    let mut p = readme_policy("not-policy-1");
    assert!(p.decide_trace(&root(span(1, 1, 0, 1000)), 0));
    assert!(!p.decide_trace(&root(span(1, 1, 0, 1001)), 0));
    // drop-policy-1: /health is dropped whatever always_sample says.
    let mut config = readme().config;
    config
        .policies
        .retain(|p| p.name == "drop-policy-1" || p.name == "test-policy-1");
    let mut p = TailSampler::new(&config);
    assert!(!p.decide_trace(&[str_attr(span(1, 1, 0, 1), "url.path", "/health")], 0));
    assert!(p.decide_trace(&[str_attr(span(1, 1, 0, 1), "url.path", "/cart")], 0));
    // composite-policy-1: 50 % of 1000 spans/s for key1 >= 50, nothing for the unallocated
    // always_sample.
    let mut p = readme_policy("composite-policy-1");
    let k1: Vec<Span> = (1..=100)
        .map(|i| with_attr(span(1, i, 0, 1), "key1", AttrValue::Int(70)))
        .collect();
    let passed = (0..10).filter(|_| p.decide_trace(&k1, 0)).count();
    assert_eq!(passed, 5, "500 spans/s of 100-span traces");
    assert!(
        p.decide_trace(&k1, 1_000 * MS),
        "a new second resets the counters"
    );
    assert!(
        !p.decide_trace(&ten, 2_000 * MS),
        "always_sample has no allocation"
    );
}

#[test]
fn the_readme_example_replays_through_the_buffer() {
    // Three traces a second apart: an error, a /health probe, a plain one.
    let spans = vec![
        with_status(span(1, 1, 0, 10), StatusCode::Error),
        str_attr(span(2, 1, 1000, 1010), "url.path", "/health"),
        span(3, 1, 2000, 2010),
    ];
    let out = TailSampler::new(&readme().config).simulate(&spans);
    assert_eq!(out.effects.decisions, 3);
    assert_eq!(out.kept, vec![true, false, true], "the probe is dropped");
}

/// The README's "practical example". Its last policy pairs `type: boolean_attribute` with a
/// `string_attribute` block holding `value`, which the string_attribute block does not have:
/// the Collector refuses the whole configuration there, and so does tracelab.
const PRACTICAL_EXAMPLE: &str = r#"tail_sampling:
  decision_wait: 10s
  num_traces: 100
  expected_new_traces_per_sec: 10
  policies:
    - name: backwards-compatibility-policy
      type: and
      and:
        and_sub_policy:
          - name: services-using-tail_sampling-policy
            type: string_attribute
            string_attribute:
              key: service.name
              values: [list, of, services, using, tail_sampling]
              invert_match: true
          - {name: sample-all-policy, type: always_sample}
    - name: team_a-probe
      type: and
      and:
        and_sub_policy:
          - name: service-name-policy
            type: string_attribute
            string_attribute: {key: service.name, values: [service-1, service-2, service-3]}
          - name: route-live-ready-policy
            type: string_attribute
            string_attribute: {key: http.route, values: [/live, /ready], enabled_regex_matching: true}
          - name: probabilistic-policy
            type: probabilistic
            probabilistic: {sampling_percentage: 0.1}
    - name: team_a-noisy-endpoint-1
      type: and
      and:
        and_sub_policy:
          - name: service-name-policy
            type: string_attribute
            string_attribute: {key: service.name, values: [service-1]}
          - name: route-name-policy
            type: string_attribute
            string_attribute: {key: http.route, values: [/v1/name/.+], enabled_regex_matching: true}
          - name: probabilistic-policy
            type: probabilistic
            probabilistic: {sampling_percentage: 1}
    - name: team_a-service-1
      type: and
      and:
        and_sub_policy:
          - name: service-name-policy
            type: string_attribute
            string_attribute: {key: service.name, values: [service-1]}
          - name: route-name-policy
            type: string_attribute
            string_attribute:
              key: http.route
              values: [/v1/name/.+]
              enabled_regex_matching: true
              invert_match: true
          - name: probabilistic-policy
            type: probabilistic
            probabilistic: {sampling_percentage: 100}
    - name: team_a-status-policy
      type: and
      and:
        and_sub_policy:
          - name: service-name-policy
            type: string_attribute
            string_attribute: {key: service.name, values: [list, of, services, using, tail_sampling]}
          - name: trace-status-policy
            type: status_code
            status_code: {status_codes: [ERROR]}
    - name: team_a-force-sample
      type: boolean_attribute
      boolean_attribute: {key: app.force_sample, value: true}
    - name: do-not-sample
      type: drop
      drop:
        drop_sub_policy:
          - name: team_a-do-not-sample
            type: boolean_attribute
            string_attribute: {key: app.do_not_sample, value: true}
"#;

#[test]
fn the_practical_example_is_refused_where_the_collector_refuses_it() {
    let err = parse_tail_sampling(PRACTICAL_EXAMPLE, None).unwrap_err();
    let line = line_of(
        PRACTICAL_EXAMPLE,
        "string_attribute: {key: app.do_not_sample",
    );
    match &err {
        TailConfigError::Yaml {
            line: l, message, ..
        } => {
            assert_eq!(*l, line, "{message}");
            assert!(message.contains("value"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // With the block fixed as the rule intends, the example loads and runs.
    let fixed = PRACTICAL_EXAMPLE.replace(
        "string_attribute: {key: app.do_not_sample, value: true}",
        "boolean_attribute: {key: app.do_not_sample, value: true}",
    );
    let mut s = TailSampler::new(&parse_tail_sampling(&fixed, None).unwrap().config);
    let svc = |name: &str, extra: Option<(&str, AttrValue)>| {
        let mut sp = span(1, 1, 0, 1);
        sp.resource = Arc::new(vec![Attribute {
            key: "service.name".into(),
            value: AttrValue::Str(name.into()),
        }]);
        if let Some((k, v)) = extra {
            sp = with_attr(sp, k, v);
        }
        sp
    };
    // Rule 1: a service not using tail sampling is kept whole.
    assert!(s.decide_trace(&[svc("billing", None)], 0));
    // Rule 4: service-1 outside /v1/name is kept at 100 %.
    assert!(s.decide_trace(
        &[svc(
            "service-1",
            Some(("http.route", AttrValue::Str("/v2/x".into())))
        )],
        0
    ));
    // Rule 7: do_not_sample wins over everything.
    assert!(!s.decide_trace(
        &[svc(
            "billing",
            Some(("app.do_not_sample", AttrValue::Bool(true)))
        )],
        0
    ));
}
