//! Replays of the rules that depend on arrival order and on the buffer keys of current
//! versions: the bounded latency rule on the running duration, OTTL against the equivalent
//! attribute and status policies, OTTL error modes, decisions after the root span, the trace
//! size limit, blocking instead of evicting, and the span-ingest strategy.

use tracelab_trace::{AttrValue, Span, StatusCode};

use super::*;

fn replay(yaml: &str, spans: &[Span]) -> TailOutcome {
    sampler(yaml).simulate(spans)
}

const LATENCY_100_200: &str = "decision_wait: 10s\npolicies:\n  - {name: mid, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 200}}\n";

#[test]
fn bounded_latency_samples_when_the_running_duration_passes_through_the_range() {
    // The child (0-150 ms) arrives first; the root (0-1000 ms) arrives later. The trace lasts
    // 1000 ms, outside 100-200, but after the first arrival the duration so far was 150 ms:
    // the Collector samples it, and so does the replay.
    let trace = vec![span(1, 2, 0, 150), span(1, 1, 0, 1000)];
    let out = replay(LATENCY_100_200, &trace);
    assert_eq!(out.kept, vec![true, true]);
    assert!(sampler(LATENCY_100_200).decide_trace(&trace, 0));
    // Never inside the range: a first arrival of 50 ms, then 1000 ms.
    let skips = vec![span(2, 2, 0, 50), span(2, 1, 0, 1000)];
    assert_eq!(replay(LATENCY_100_200, &skips).kept, vec![false, false]);
    // Jumping over it: 250 ms, then 1000 ms.
    let jumps = vec![span(3, 2, 0, 250), span(3, 1, 0, 1000)];
    assert_eq!(replay(LATENCY_100_200, &jumps).kept, vec![false, false]);
    // Growing into it from below: 50, then 120 (a later-starting sibling does not shrink it).
    let grows = vec![span(4, 2, 0, 50), span(4, 3, 30, 120), span(4, 1, 0, 900)];
    assert_eq!(replay(LATENCY_100_200, &grows).kept, vec![true, true, true]);
    // Without an upper bound the final duration decides, and it only grows.
    let above = "decision_wait: 10s\npolicies:\n  - {name: slow, type: latency, latency: {threshold_ms: 500}}\n";
    assert_eq!(replay(above, &trace).kept, vec![true, true]);
}

#[test]
fn bounded_latency_is_decided_per_buffer() {
    // The root arrives after the decision, opening a new buffer (no cache, a one-trace ring
    // pushed by another trace): that buffer's running duration starts again from the root.
    let spans = vec![
        span(1, 2, 0, 150),
        span(2, 1, 1_200, 1_300),
        span(1, 1, 0, 5_000),
    ];
    let out = replay(
        "decision_wait: 1s\nnum_traces: 1\npolicies:\n  - {name: mid, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 200}}\n",
        &spans,
    );
    assert_eq!(out.kept, vec![true, false, false]);
    assert_eq!(out.effects.traces_decided_more_than_once, 1);
}

/// A reproducible mix of traces: routes, statuses and span counts varied by a small LCG.
fn traffic(traces: usize) -> Vec<Span> {
    let routes = ["/", "/cart", "/checkout", "/pay", "/search"];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::new();
    for t in 0..traces {
        let start = t as u64 * 20;
        let n = 1 + (t % 4) as u8;
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let route = routes[((x >> 33) % 5) as usize];
        for s in 1..=n {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let mut sp = span(0, s, start, start + 5 + (x >> 60));
            sp.trace_id.0[..8].copy_from_slice(&(t as u64).to_be_bytes());
            // Only the entry span carries the route, as a server span would.
            let sp = if s == 1 {
                str_attr(sp, "http.route", route)
            } else {
                sp
            };
            let code = match (x >> 40) % 23 {
                0 => StatusCode::Error,
                1 | 2 => StatusCode::Ok,
                _ => StatusCode::Unset,
            };
            out.push(with_status(sp, code));
        }
    }
    out
}

#[test]
fn an_ottl_policy_keeps_the_same_traces_as_the_equivalent_attribute_and_status_policies() {
    let spans = traffic(3_000);
    let classic = "decision_wait: 2s\nnum_traces: 200\npolicies:\n  - {name: money, type: string_attribute, string_attribute: {key: http.route, values: [/checkout, /pay]}}\n  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n";
    let ottl = "decision_wait: 2s\nnum_traces: 200\npolicies:\n  - name: money-or-errors\n    type: ottl_condition\n    ottl_condition:\n      span:\n        - attributes[\"http.route\"] == \"/checkout\" or span.attributes[\"http.route\"] == \"/pay\"\n        - status.code == STATUS_CODE_ERROR\n";
    let a = replay(classic, &spans);
    let b = replay(ottl, &spans);
    let kept = a.kept.iter().filter(|k| **k).count();
    assert!(
        kept > spans.len() / 4 && kept < spans.len() * 3 / 4,
        "a mix worth comparing: {kept} of {}",
        spans.len()
    );
    assert_eq!(a.kept, b.kept);
    assert_eq!(a.effects, b.effects);
    // And a regex OTTL condition against a regex string_attribute.
    let regex_classic = "decision_wait: 2s\npolicies:\n  - {name: c, type: string_attribute, string_attribute: {key: http.route, values: [\"^/(ch|pa)\"], enabled_regex_matching: true}}\n";
    let regex_ottl = "decision_wait: 2s\npolicies:\n  - name: c\n    type: ottl_condition\n    ottl_condition: {span: ['IsMatch(attributes[\"http.route\"], \"^/(ch|pa)\")']}\n";
    assert_eq!(
        replay(regex_classic, &spans).kept,
        replay(regex_ottl, &spans).kept
    );
}

#[test]
fn ottl_error_modes_in_a_replay() {
    // The first span to arrive makes Substring fail (no such attribute); the second matches.
    let failing = span(1, 2, 0, 10);
    let matching = str_attr(span(1, 1, 0, 20), "route", "/checkout");
    let policy = |mode: &str| {
        format!(
            "decision_wait: 1s\npolicies:\n  - name: o\n    type: ottl_condition\n    ottl_condition:\n      error_mode: {mode}\n      span: ['Substring(attributes[\"route\"], 0, 3) == \"/ch\"']\n"
        )
    };
    let both = vec![failing.clone(), matching.clone()];
    // propagate: the Collector walks the spans in order and stops at the failure.
    assert_eq!(replay(&policy("propagate"), &both).kept, vec![false, false]);
    assert_eq!(replay(&policy("ignore"), &both).kept, vec![true, true]);
    assert_eq!(replay(&policy("silent"), &both).kept, vec![true, true]);
    // When the matching span arrives first, propagate samples too.
    let mut early = matching;
    early.end_unix_nano = 5 * MS;
    assert_eq!(
        replay(&policy("propagate"), &[failing, early]).kept,
        vec![true, true]
    );
    // An error is no vote: another policy still samples, and `not` keeps the error.
    let with_all = format!(
        "{}  - {{name: all, type: always_sample}}\n",
        policy("propagate")
    );
    assert_eq!(replay(&with_all, &both).kept, vec![true, true]);
    let negated = "decision_wait: 1s\npolicies:\n  - name: n\n    type: not\n    not:\n      not_sub_policy:\n        name: o\n        type: ottl_condition\n        ottl_condition: {span: ['Substring(attributes[\"route\"], 0, 3) == \"/ch\"']}\n";
    assert_eq!(replay(negated, &both).kept, vec![false, false]);
}

#[test]
fn a_root_span_brings_the_decision_forward() {
    // decision_wait 10 s, but 1 s after the root arrives (at 100 ms): decided at 1.1 s.
    let yaml = "decision_wait: 10s\ndecision_wait_after_root_received: 1s\npolicies:\n  - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n";
    let spans = vec![
        with_status(span(1, 2, 0, 10), StatusCode::Error),
        span(1, 1, 0, 100),
        // A straggler ending after the early decision follows it.
        span(1, 3, 0, 2_000),
        // A trace without a root waits the full decision_wait.
        with_status(span(2, 2, 3_000, 3_010), StatusCode::Error),
    ];
    let out = replay(yaml, &spans);
    assert_eq!(out.kept, vec![true, true, true, true]);
    assert_eq!(out.decisions[0].decided_at_nanos, 1_100 * MS);
    assert_eq!(out.decisions[1].decided_at_nanos, 13_010 * MS);
    assert_eq!(out.effects.decisions_after_root, 1);
    assert_eq!(out.effects.late_spans_followed_buffered_decision, 1);
    // Without the key, the straggler is part of the trace when it is decided.
    let plain = yaml.replace("decision_wait_after_root_received: 1s\n", "");
    let out = replay(&plain, &spans);
    assert_eq!(out.decisions[0].decided_at_nanos, 10_010 * MS);
    assert_eq!(out.effects.late_spans, 0);
}

#[test]
fn a_trace_growing_past_the_size_limit_is_dropped_at_once() {
    let yaml = "decision_wait: 10s\nmaximum_trace_size_bytes: 2000\npolicies:\n  - {name: all, type: always_sample}\n";
    let blob = |s: Span| with_attr(s, "blob", AttrValue::Str("x".repeat(1500)));
    let spans = vec![
        blob(span(1, 2, 0, 10)),
        blob(span(1, 3, 0, 20)),
        span(1, 1, 0, 30),
        blob(span(2, 1, 0, 40)),
    ];
    let out = replay(yaml, &spans);
    assert_eq!(out.kept, vec![false, false, false, true]);
    assert_eq!(out.effects.traces_dropped_too_large, 1);
    assert_eq!(out.effects.spans_dropped_too_large, 2);
    assert_eq!(out.effects.late_spans_followed_buffered_decision, 1);
    let unlimited = yaml.replace("maximum_trace_size_bytes: 2000\n", "");
    assert!(replay(&unlimited, &spans).kept.iter().all(|k| *k));
}

#[test]
fn blocking_on_overflow_decides_instead_of_evicting() {
    // Five error traces a second apart, a 10 s wait and room for two: evicting loses three.
    let spans: Vec<Span> = (0..5u8)
        .map(|t| {
            with_status(
                span(t + 1, 1, t as u64 * 1000, t as u64 * 1000 + 1),
                StatusCode::Error,
            )
        })
        .collect();
    let policies =
        "policies:\n  - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n";
    let evicting = replay(
        &format!("decision_wait: 10s\nnum_traces: 2\n{policies}"),
        &spans,
    );
    assert_eq!(evicting.effects.traces_evicted_undecided, 3);
    let blocking = replay(
        &format!("decision_wait: 10s\nnum_traces: 2\nblock_on_overflow: true\n{policies}"),
        &spans,
    );
    assert_eq!(blocking.effects.traces_evicted_undecided, 0);
    assert_eq!(blocking.effects.traces_decided_to_make_room, 3);
    assert!(blocking.kept.iter().all(|k| *k));
}

#[test]
fn span_ingest_decides_on_each_span_alone() {
    let yaml = "decision_wait: 10s\nsampling_strategy: span-ingest\npolicies:\n  - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n  - {name: d, type: drop, drop: {drop_sub_policy: [{name: h, type: string_attribute, string_attribute: {key: route, values: [/health]}}]}}\n  - {name: big, type: span_count, span_count: {min_spans: 2}}\n";
    let spans = vec![
        // Trace 1: the error arrives second and samples at once; the first span goes with it.
        span(1, 2, 0, 10),
        with_status(span(1, 3, 0, 20), StatusCode::Error),
        // Trace 2: a /health span drops it at once; its error span arrives too late.
        str_attr(span(2, 2, 0, 30), "route", "/health"),
        with_status(span(2, 1, 0, 40), StatusCode::Error),
        // Trace 3: two spans, but each batch holds one, so span_count never matches; the
        // trace is finalised as not sampled when its wait ends.
        span(3, 2, 0, 50),
        span(3, 1, 0, 60),
    ];
    let out = replay(yaml, &spans);
    assert_eq!(out.kept, vec![true, true, false, false, false, false]);
    assert_eq!(
        out.decisions[0].decided_at_nanos,
        20 * MS,
        "at the error's arrival"
    );
    assert_eq!(
        out.decisions[1].decided_at_nanos,
        30 * MS,
        "at the probe's arrival"
    );
    assert_eq!(
        out.decisions[2].decided_at_nanos,
        10_050 * MS,
        "at the end of the wait"
    );
    // trace-complete keeps trace 3 (two spans) and, the drop winning, not trace 2.
    let complete = yaml.replace("sampling_strategy: span-ingest\n", "");
    assert_eq!(
        replay(&complete, &spans).kept,
        vec![true, true, false, false, true, true]
    );
}
