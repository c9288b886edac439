//! Tests of the tail-sampling configuration reader, the policies, the combination rules and
//! the buffer effects.
//!
//! Layout:
//! - `collector_docs`, `collector_testdata`: every `tail_sampling` configuration of the
//!   Collector's README and testdata (0.157.0), written out here, loads and runs or is
//!   refused where the Collector refuses it.
//! - `validation`: what the Collector refuses, refused with line and column.
//! - `replay`: the buffer keys of current versions and the latency and OTTL rules, replayed.

use std::sync::Arc;

use tracelab_trace::{AttrValue, Attribute, Span, SpanId, SpanKind, Status, StatusCode, TraceId};

use super::*;

mod collector_docs;
mod collector_testdata;
mod replay;
mod validation;

const MS: u64 = 1_000_000;

pub(super) fn span(trace: u8, id: u8, start_ms: u64, end_ms: u64) -> Span {
    Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: (id > 1).then_some(SpanId([1; 8])),
        trace_state: String::new(),
        flags: 0,
        name: format!("op{id}"),
        kind: SpanKind::Server,
        start_unix_nano: start_ms * MS,
        end_unix_nano: end_ms * MS,
        attributes: vec![],
        events: vec![],
        links: vec![],
        status: Status::default(),
        service_name: Arc::from("svc"),
        resource: Arc::new(vec![]),
        scope_name: String::new(),
    }
}

pub(super) fn with_attr(mut s: Span, key: &str, value: AttrValue) -> Span {
    s.attributes.push(Attribute {
        key: key.to_string(),
        value,
    });
    s
}

pub(super) fn with_status(mut s: Span, code: StatusCode) -> Span {
    s.status.code = code;
    s
}

pub(super) fn str_attr(s: Span, key: &str, v: &str) -> Span {
    with_attr(s, key, AttrValue::Str(v.to_string()))
}

/// A bare block with the given policies (YAML list items), decision settings defaulted.
pub(super) fn block(policies: &str) -> String {
    format!("decision_wait: 1s\npolicies:\n{policies}")
}

pub(super) fn sampler(yaml: &str) -> TailSampler {
    TailSampler::new(&parse_tail_sampling(yaml, None).map(|p| p.config).unwrap())
}

pub(super) fn decides(yaml: &str, spans: &[Span]) -> bool {
    sampler(yaml).decide_trace(spans, 0)
}

#[test]
fn attributes_are_looked_up_on_resources_too() {
    let yaml = block(
        "  - {name: svc, type: string_attribute, string_attribute: {key: service.name, values: [checkout]}}\n",
    );
    let mut s = span(1, 1, 0, 1);
    s.resource = Arc::new(vec![Attribute {
        key: "service.name".into(),
        value: AttrValue::Str("checkout".into()),
    }]);
    assert!(decides(&yaml, &[s.clone()]));
    s.resource = Arc::new(vec![]);
    assert!(!decides(&yaml, &[s]));
}

#[test]
fn invert_match_is_a_plain_vote_on_the_negated_match() {
    // Since contrib 0.156.0 an inverted match samples when no span or resource matches and
    // does not sample otherwise, like any policy: no veto over other policies any more.
    let inv = "  - {name: not-health, type: string_attribute, string_attribute: {key: route, values: [/health], invert_match: true}}\n";
    let health = str_attr(span(1, 1, 0, 1), "route", "/health");
    let cart = str_attr(span(1, 2, 0, 1), "route", "/cart");
    assert!(decides(&block(inv), std::slice::from_ref(&cart)));
    assert!(!decides(&block(inv), &[cart.clone(), health.clone()]));
    let with_always = format!("{inv}  - {{name: all, type: always_sample}}\n");
    assert!(
        decides(&block(&with_always), std::slice::from_ref(&health)),
        "a matching inverted policy no longer vetoes always_sample"
    );
    let with_status = format!(
        "{inv}  - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}\n"
    );
    assert!(
        decides(&block(&with_status), std::slice::from_ref(&cart)),
        "an inverted sample is not cancelled by another policy's not-sampled"
    );
    let num = block(
        "  - {name: n, type: numeric_attribute, numeric_attribute: {key: code, min_value: 500, invert_match: true}}\n",
    );
    assert!(decides(
        &num,
        &[with_attr(span(1, 1, 0, 1), "code", AttrValue::Int(200))]
    ));
    assert!(!decides(
        &num,
        &[with_attr(span(1, 1, 0, 1), "code", AttrValue::Int(503))]
    ));
    let b = block(
        "  - {name: b, type: boolean_attribute, boolean_attribute: {key: debug, value: true, invert_match: true}}\n",
    );
    assert!(decides(&b, &[span(1, 1, 0, 1)]));
    assert!(!decides(
        &b,
        &[with_attr(span(1, 1, 0, 1), "debug", AttrValue::Bool(true))]
    ));
    let and = block(
        "  - {name: a, type: and, and: {and_sub_policy: [{name: x, type: always_sample}, {name: y, type: string_attribute, string_attribute: {key: route, values: [/health], invert_match: true}}]}}\n",
    );
    assert!(decides(&and, &[cart]));
    assert!(!decides(&and, &[health]));
}

#[test]
fn a_numeric_bound_of_zero_is_no_bound() {
    // The Collector reads min_value 0 as "no lower bound", so negative values match too.
    let yaml = block(
        "  - {name: n, type: numeric_attribute, numeric_attribute: {key: delta, min_value: 0, max_value: 10}}\n",
    );
    assert!(decides(
        &yaml,
        &[with_attr(span(1, 1, 0, 1), "delta", AttrValue::Int(-5))]
    ));
    assert!(!decides(
        &yaml,
        &[with_attr(span(1, 1, 0, 1), "delta", AttrValue::Int(11))]
    ));
}

#[test]
fn drop_wins_and_sample_on_first_match_short_circuits() {
    let policies = "  - {name: all, type: always_sample}\n  - {name: no-debug, type: drop, drop: {drop_sub_policy: [{name: d, type: boolean_attribute, boolean_attribute: {key: debug, value: true}}]}}\n";
    let debug = with_attr(span(1, 1, 0, 1), "debug", AttrValue::Bool(true));
    assert!(
        !decides(&block(policies), std::slice::from_ref(&debug)),
        "drop wins over always_sample"
    );
    // The Collector evaluates drop policies first, so even with sample_on_first_match the
    // always_sample written before the drop does not save the trace.
    let first = format!("sample_on_first_match: true\n{}", block(policies));
    assert!(!decides(&first, std::slice::from_ref(&debug)));
    assert!(decides(&first, &[span(1, 1, 0, 1)]));
    // A dropped trace stops the evaluation before a rate limiter written first, which then
    // spends no tokens on it.
    let drop_then_limit = "decision_wait: 1s\npolicies:\n  - {name: rl, type: rate_limiting, rate_limiting: {spans_per_second: 1}}\n  - {name: no-debug, type: drop, drop: {drop_sub_policy: [{name: d, type: boolean_attribute, boolean_attribute: {key: debug, value: true}}]}}\n";
    let mut s = sampler(drop_then_limit);
    for _ in 0..5 {
        assert!(!s.decide_trace(std::slice::from_ref(&debug), 0));
    }
    let plain = span(2, 1, 0, 1);
    assert!(s.decide_trace(std::slice::from_ref(&plain), 0));
    assert!(s.decide_trace(std::slice::from_ref(&plain), 0));
    assert!(!s.decide_trace(&[plain], 0), "bucket of 2 spans now empty");
    // With sample_on_first_match, a match stops the evaluation before a rate limiter,
    // which then spends no tokens.
    let limited = "sample_on_first_match: true\ndecision_wait: 1s\npolicies:\n  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n  - {name: rl, type: rate_limiting, rate_limiting: {spans_per_second: 1}}\n";
    let mut s = sampler(limited);
    let err = with_status(span(1, 1, 0, 1), StatusCode::Error);
    for _ in 0..5 {
        assert!(s.decide_trace(std::slice::from_ref(&err), 0));
    }
    let ok = span(2, 1, 0, 1);
    assert!(
        s.decide_trace(std::slice::from_ref(&ok), 0),
        "tokens untouched by the errors"
    );
    assert!(s.decide_trace(std::slice::from_ref(&ok), 0));
    assert!(!s.decide_trace(&[ok], 0), "bucket of 2 spans now empty");
}

#[test]
fn span_count_trace_flags_and_latency_without_upper_bound() {
    let sc = block("  - {name: s, type: span_count, span_count: {min_spans: 3}}\n");
    let three: Vec<Span> = (1..=3).map(|i| span(1, i, 0, 1)).collect();
    assert!(decides(&sc, &three));
    assert!(!decides(&sc, &three[..2]));
    let tf = block("  - {name: f, type: trace_flags}\n");
    let mut s = span(1, 1, 0, 1);
    assert!(!decides(&tf, std::slice::from_ref(&s)));
    s.flags = 1;
    assert!(decides(&tf, &[s]));
    // Duration is from the earliest start to the latest end across spans, and the threshold
    // is exclusive (contrib 0.157.0, #49595).
    let lat = block("  - {name: l, type: latency, latency: {threshold_ms: 100}}\n");
    assert!(decides(&lat, &[span(1, 1, 0, 40), span(1, 2, 60, 101)]));
    assert!(!decides(&lat, &[span(1, 1, 0, 40), span(1, 2, 60, 100)]));
}

#[test]
fn probabilistic_uses_the_collector_hash_and_threshold() {
    let id: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
    // FNV-1a 64 over "default-hash-seed" then the id bytes, computed independently.
    assert_eq!(
        collector_trace_hash(DEFAULT_HASH_SALT, &id),
        0xdbcf_64d5_420f_4cad
    );
    // MaxUint64 · ratio with Go's 64-bit big.Float rounding, then truncation.
    assert_eq!(
        collector_probability_threshold(0.1),
        1_844_674_407_370_955_263
    );
    assert_eq!(
        collector_probability_threshold(0.5),
        9_223_372_036_854_775_807
    );
    assert_eq!(
        collector_probability_threshold(1.0 / 3.0),
        6_148_914_691_236_516_863
    );
    assert_eq!(
        collector_probability_threshold(0.999),
        18_428_297_329_635_842_047
    );
    assert_eq!(collector_probability_threshold(1.0), u64::MAX);
    assert_eq!(collector_probability_threshold(0.0), 0);
}

#[test]
fn composite_evaluates_sub_policies_in_order_with_their_allocation() {
    let yaml = block(
        "  - name: c\n    type: composite\n    composite:\n      max_total_spans_per_second: 10\n      policy_order: [errors, rest]\n      composite_sub_policy:\n        - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n        - {name: rest, type: always_sample}\n      rate_allocation:\n        - {policy: errors, percent: 60}\n        - {policy: rest, percent: 40}\n",
    );
    let mut s = sampler(&yaml);
    let err = vec![with_status(span(1, 1, 0, 1), StatusCode::Error); 3];
    let ok = vec![span(2, 1, 0, 1); 3];
    assert!(s.decide_trace(&err, 0));
    assert!(s.decide_trace(&err, 0));
    assert!(
        !s.decide_trace(&err, 0),
        "6 of 6 error spans used; the error trace is not passed on"
    );
    assert!(s.decide_trace(&ok, 0));
    assert!(!s.decide_trace(&ok, 0), "4 spans allotted to the rest");
}

#[test]
fn bad_fields_are_reported_with_line_and_column() {
    let typo = "policies:\n  - name: slow\n    type: latency\n    latency: {threshold: 5}\n";
    let err = parse_tail_sampling(typo, None).unwrap_err();
    match &err {
        TailConfigError::Yaml { line, message, .. } => {
            assert_eq!(*line, 4, "{message}");
            assert!(message.contains("threshold"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let misspelt = "policies:\n  - name: s\n    type: string_attribute\n    string_atribute: {key: k, values: [v]}\n";
    let err = parse_tail_sampling(misspelt, None).unwrap_err();
    assert!(
        matches!(&err, TailConfigError::Invalid { line: 4, column: 5, message } if message.contains("string_atribute") && message.contains("did you mean `string_attribute`?")),
        "{err}"
    );
    let code =
        "policies:\n  - {name: s, type: status_code, status_code: {status_codes: [FAILED]}}\n";
    let err = parse_tail_sampling(code, None).unwrap_err();
    assert!(
        matches!(&err, TailConfigError::Invalid { line: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("line 2, column "), "{err}");
    let regex = "policies:\n  - {name: s, type: string_attribute,\n     string_attribute: {key: k, values: ['(unclosed'], enabled_regex_matching: true}}\n";
    let err = parse_tail_sampling(regex, None).unwrap_err();
    assert!(
        matches!(&err, TailConfigError::Invalid { line: 3, .. }),
        "{err}"
    );
    let wait = "decision_wait: soon\npolicies: [{name: a, type: always_sample}]\n";
    let err = parse_tail_sampling(wait, None).unwrap_err();
    assert!(
        matches!(
            &err,
            TailConfigError::Invalid {
                line: 1,
                column: 16,
                ..
            }
        ),
        "{err}"
    );
    let dup = "policies: [{name: a, type: always_sample}, {name: a, type: always_sample}]\n";
    assert!(parse_tail_sampling(dup, None).is_err());
}

#[test]
fn every_file_shape_is_accepted() {
    let block_only = "policies: [{name: a, type: always_sample}]\n";
    assert!(
        parse_tail_sampling(block_only, None)
            .unwrap()
            .processor
            .is_none()
    );
    let processors_only = "processors: { tail_sampling: { decision_wait: 5s, policies: [{name: a, type: always_sample}] } }\n";
    let p = parse_tail_sampling(processors_only, None).unwrap();
    assert_eq!(p.config.decision_wait_nanos, 5_000_000_000);
    let whole = "receivers:\n  otlp: {protocols: {grpc: {}}}\nprocessors:\n  batch: {}\n  tail_sampling/errors:\n    policies: [{name: e, type: status_code, status_code: {status_codes: [ERROR]}}]\n  tail_sampling/all:\n    policies: [{name: a, type: always_sample}]\nservice:\n  pipelines:\n    traces: {receivers: [otlp], processors: [tail_sampling/errors], exporters: [debug]}\n";
    assert!(matches!(
        parse_tail_sampling(whole, None),
        Err(TailConfigError::Ambiguous(_))
    ));
    let p = parse_tail_sampling(whole, Some("errors")).unwrap();
    assert_eq!(p.processor.as_deref(), Some("tail_sampling/errors"));
    assert_eq!(p.config.policies[0].name, "e");
    let p = parse_tail_sampling(whole, Some("tail_sampling/all")).unwrap();
    assert_eq!(p.config.policies[0].name, "a");
    assert!(matches!(
        parse_tail_sampling(whole, Some("nope")),
        Err(TailConfigError::NoSuchProcessor { .. })
    ));
    let top_level = "tail_sampling:\n  policies: [{name: a, type: always_sample}]\n";
    assert!(parse_tail_sampling(top_level, None).is_ok());
    assert!(matches!(
        parse_tail_sampling("receivers: {}\n", None),
        Err(TailConfigError::NotFound)
    ));
}

fn cfg(extra: &str) -> String {
    format!(
        "{extra}policies:\n  - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}\n"
    )
}

#[test]
fn a_small_ring_evicts_undecided_traces() {
    // Five traces a second apart, each with an error, a 10 s wait and room for two.
    let spans: Vec<Span> = (0..5u8)
        .map(|t| {
            with_status(
                span(t + 1, 1, t as u64 * 1000, t as u64 * 1000 + 1),
                StatusCode::Error,
            )
        })
        .collect();
    let mut s = sampler(&cfg("decision_wait: 10s\nnum_traces: 2\n"));
    let out = s.simulate(&spans);
    assert_eq!(out.effects.traces_evicted_undecided, 3);
    assert_eq!(out.effects.spans_evicted_undecided, 3);
    assert_eq!(out.effects.decisions, 2);
    assert_eq!(out.kept, vec![false, false, false, true, true]);
    // With room for all, every error trace is kept.
    let out = sampler(&cfg("decision_wait: 10s\nnum_traces: 10\n")).simulate(&spans);
    assert_eq!(out.effects.traces_evicted_undecided, 0);
    assert!(out.kept.iter().all(|k| *k));
    assert!(
        out.decisions
            .iter()
            .all(|d| d.decided_at_nanos - d.first_arrival_nanos == 10_000 * MS)
    );
}

#[test]
fn late_spans_follow_the_cache_or_are_decided_again() {
    // Trace 1: an error child ends at 0.1 s; its root ends at 5 s, after the 1 s decision.
    // Trace 2 arrives at 2 s and pushes trace 1 out of a one-trace ring.
    let spans = vec![
        with_status(span(1, 2, 0, 100), StatusCode::Error),
        span(1, 1, 0, 5_000),
        span(2, 1, 1_900, 2_000),
    ];
    // Without a decision cache, the late root opens a new buffer and, alone and without
    // the error, is not sampled: the kept trace is a fragment.
    let out = sampler(&cfg("decision_wait: 1s\nnum_traces: 1\n")).simulate(&spans);
    assert_eq!(out.kept, vec![true, false, false]);
    assert_eq!(out.effects.late_spans, 1);
    assert_eq!(out.effects.late_spans_decided_again, 1);
    assert_eq!(out.effects.traces_decided_more_than_once, 1);
    assert_eq!(out.effects.decisions, 3);
    // With a sampled-decision cache, the late root follows the first decision.
    let cached = "decision_wait: 1s\nnum_traces: 1\ndecision_cache: {sampled_cache_size: 10}\n";
    let out = sampler(&cfg(cached)).simulate(&spans);
    assert_eq!(out.kept, vec![true, true, false]);
    assert_eq!(out.effects.late_spans_followed_cached_decision, 1);
    assert_eq!(out.effects.late_spans_decided_again, 0);
    assert_eq!(out.effects.decisions, 2);
    // With a big ring and no cache, the decision still in the ring is followed.
    let out = sampler(&cfg("decision_wait: 1s\nnum_traces: 100\n")).simulate(&spans);
    assert_eq!(out.kept, vec![true, true, false]);
    assert_eq!(out.effects.late_spans_followed_buffered_decision, 1);
}
