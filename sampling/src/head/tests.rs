//! Tests of the head samplers: statistics, consistency, rate limiting, env semantics and the
//! live `ShouldSample` behaviour.

use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn random_ids(n: usize, seed: u64) -> Vec<[u8; 16]> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut id = [0u8; 16];
            rng.fill(&mut id);
            id
        })
        .collect()
}

/// The 99 % normal-approximation interval of a binomial count.
fn binomial_99(n: usize, p: f64) -> (f64, f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    (mean - 2.576 * sd, mean + 2.576 * sd)
}

fn config(name: &str, arg: Option<&str>) -> HeadSamplerConfig {
    HeadSamplerConfig::from_env_values(name, arg).unwrap()
}

#[test]
fn traceidratio_keeps_a_fraction_p_within_the_binomial_interval() {
    // A fixed seed makes the test deterministic. Each check is a 99 % interval, so about
    // one seed in seventeen fails one of the six by chance (seed 7 does, at p = 0.9, by
    // 3.1 standard deviations); a real bias fails every seed.
    let ids = random_ids(100_000, 1);
    let empty = OtTraceState::default();
    for p in [0.001, 0.01, 0.1, 0.25, 0.5, 0.9] {
        let mut d = config("traceidratio", Some(&p.to_string())).decider();
        // The threshold is p rounded to 4 significant hex digits, within 0.01 % of p.
        let exact = d.threshold().unwrap().probability();
        assert!((exact - p).abs() / p < 1e-4, "p={p} exact={exact}");
        let kept = ids
            .iter()
            .filter(|id| d.decide_independent(id, &empty, 0).sampled)
            .count();
        let (lo, hi) = binomial_99(ids.len(), p);
        assert!(
            (lo..=hi).contains(&(kept as f64)),
            "p={p}: kept {kept}, expected within [{lo:.0}, {hi:.0}]"
        );
    }
}

#[test]
fn explicit_rv_randomness_keeps_a_fraction_p_too() {
    // The same statistics must hold when randomness comes from `rv` rather than the id.
    let mut rng = StdRng::seed_from_u64(11);
    let id = [0u8; 16];
    for p in [0.05, 0.3] {
        let mut d = config("traceidratio", Some(&p.to_string())).decider();
        let kept = (0..100_000)
            .filter(|_| {
                let rv = rng.random::<u64>() >> 8;
                let ot = OtTraceState::parse(&format!("rv:{rv:014x}"));
                d.decide_independent(&id, &ot, 0).sampled
            })
            .count();
        let (lo, hi) = binomial_99(100_000, p);
        assert!((lo..=hi).contains(&(kept as f64)), "p={p}: kept {kept}");
    }
}

#[test]
fn a_higher_probability_keeps_a_superset() {
    let ids = random_ids(20_000, 3);
    let empty = OtTraceState::default();
    let ps = [0.001, 0.01, 0.05, 0.1, 1.0 / 3.0, 0.5, 0.75, 1.0];
    let kept: Vec<Vec<bool>> = ps
        .iter()
        .map(|p| {
            let mut d = config("traceidratio", Some(&p.to_string())).decider();
            ids.iter()
                .map(|id| d.decide_independent(id, &empty, 0).sampled)
                .collect()
        })
        .collect();
    for w in kept.windows(2) {
        for (lower, higher) in w[0].iter().zip(&w[1]) {
            assert!(!lower || *higher, "kept at lower p but dropped at higher p");
        }
    }
}

#[test]
fn the_rate_limited_sampler_never_exceeds_its_rate() {
    // 1,000 roots a second for 20 simulated seconds, at a 50/s limit.
    let rate = 50.0;
    let mut d = config("ratelimited", Some("50")).decider();
    let ids = random_ids(20_000, 5);
    let empty = OtTraceState::default();
    let mut kept_at = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let now = i as u64 * 1_000_000; // 1 ms apart
        if d.decide_independent(id, &empty, now).sampled {
            kept_at.push(now);
        }
    }
    let duration_s = 20.0;
    // Over the run: at most one burst (one second's worth) plus the rate times the time.
    assert!(kept_at.len() as f64 <= rate + rate * duration_s);
    assert!(
        kept_at.len() as f64 >= rate * duration_s * 0.95,
        "it should keep close to the rate"
    );
    // In every one-second window: at most the burst plus one second's refill.
    for (i, start) in kept_at.iter().enumerate() {
        let in_window = kept_at[i..]
            .iter()
            .take_while(|t| **t < start + 1_000_000_000)
            .count();
        assert!(
            in_window as f64 <= 2.0 * rate,
            "window at {start}: {in_window}"
        );
    }
    // After the initial burst drains, each later second keeps at most the rate (+1 for the
    // fractional token carried over).
    for second in 2..20u64 {
        let lo = second * 1_000_000_000;
        let n = kept_at
            .iter()
            .filter(|t| (lo..lo + 1_000_000_000).contains(*t))
            .count();
        assert!(n as f64 <= rate + 1.0, "second {second}: {n}");
    }
}

#[test]
fn env_values_follow_the_sdk_specification() {
    let c = config("parentbased_traceidratio", Some("0.25"));
    assert!(c.parent_based);
    assert_eq!(c.root, RootSampler::TraceIdRatio { ratio: 0.25 });
    assert_eq!(c.env_name(), "parentbased_traceidratio");
    // A missing argument means ratio 1.0.
    assert_eq!(
        config("traceidratio", None).root,
        RootSampler::TraceIdRatio { ratio: 1.0 }
    );
    assert_eq!(config(" Always_On ", None).root, RootSampler::AlwaysOn);
    assert!(!config("always_off", Some("ignored")).parent_based);
    assert!(matches!(
        HeadSamplerConfig::from_env_values("traceidratio", Some("1.5")),
        Err(HeadConfigError::BadArgument { .. })
    ));
    assert!(matches!(
        HeadSamplerConfig::from_env_values("traceidratio", Some("abc")),
        Err(HeadConfigError::BadArgument { .. })
    ));
    assert!(matches!(
        HeadSamplerConfig::from_env_values("ratelimited", None),
        Err(HeadConfigError::BadArgument { .. })
    ));
    assert!(matches!(
        HeadSamplerConfig::from_env_values("jaeger_remote", None),
        Err(HeadConfigError::UnsupportedSampler(_))
    ));
    assert!(matches!(
        HeadSamplerConfig::from_env_values("sometimes", None),
        Err(HeadConfigError::UnknownSampler(_))
    ));
    assert!(c.clone().with_precision(0).is_err());
    assert_eq!(c.with_precision(6).unwrap().precision, 6);
}

fn parent_cx(sampled: bool, trace_state: &str) -> Context {
    let ts: TraceState = trace_state.parse().unwrap();
    let sc = SpanContext::new(
        TraceId::from_bytes([0x11; 16]),
        SpanId::from_bytes([0x22; 8]),
        if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        },
        true,
        ts,
    );
    Context::new().with_remote_span_context(sc)
}

fn sample(s: &HeadSampler, parent: Option<&Context>, id: [u8; 16]) -> (bool, String) {
    let r = s.should_sample(
        parent,
        TraceId::from_bytes(id),
        "op",
        &SpanKind::Server,
        &[],
        &[],
    );
    (
        r.decision == SamplingDecision::RecordAndSample,
        r.trace_state.header(),
    )
}

#[test]
fn live_ratio_sampler_writes_the_threshold_and_keeps_other_entries() {
    let s = config("traceidratio", Some("0.25")).build();
    // Randomness 0xff.. is above th:c, so a root is kept and gets `ot=th:c`.
    let (kept, ts) = sample(&s, None, [0xff; 16]);
    assert!(kept);
    assert_eq!(ts, "ot=th:c");
    // Randomness 0 is below: dropped, no threshold written.
    let (kept, ts) = sample(&s, None, [0; 16]);
    assert!(!kept);
    assert_eq!(ts, "");
    // An explicit rv in the parent's tracestate overrides the trace id, and the other
    // sub-keys and vendors survive.
    let cx = parent_cx(true, "ot=rv:ffffffffffffff;x:1,vendor=abc");
    let (kept, ts) = sample(&s, Some(&cx), [0; 16]);
    assert!(kept, "rv says keep although the id's randomness is 0");
    assert_eq!(ts, "ot=th:c;rv:ffffffffffffff;x:1,vendor=abc");
}

#[test]
fn live_parent_based_sampler_follows_the_parent() {
    let s = config("parentbased_traceidratio", Some("0.0001")).build();
    // A sampled parent with a consistent threshold: kept, threshold propagated.
    let cx = parent_cx(true, "ot=th:8");
    let (kept, ts) = sample(&s, Some(&cx), [0xff; 16]);
    assert!(kept);
    assert_eq!(ts, "ot=th:8");
    // Sampled parent whose threshold contradicts the randomness: kept, threshold erased.
    let (kept, ts) = sample(&s, Some(&cx), [0; 16]);
    assert!(kept);
    assert_eq!(ts, "");
    // Unsampled parent: dropped even though the ratio root would keep this id.
    let always = config("parentbased_always_on", None).build();
    let (kept, _) = sample(&always, Some(&parent_cx(false, "")), [0xff; 16]);
    assert!(!kept);
    // No parent: the root sampler decides and writes th:0.
    let (kept, ts) = sample(&always, None, [0; 16]);
    assert!(kept);
    assert_eq!(ts, "ot=th:0");
}

#[test]
fn live_rate_limited_sampler_uses_the_supplied_clock() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let now = Arc::new(AtomicU64::new(0));
    let clock_now = now.clone();
    let s = config("ratelimited", Some("2"))
        .build_with_clock(Arc::new(move || clock_now.load(Ordering::SeqCst)));
    let clone = s.clone();
    let kept = (0..10).filter(|_| sample(&clone, None, [1; 16]).0).count();
    assert_eq!(kept, 2, "one second's worth, shared between clones");
    assert!(!sample(&s, None, [1; 16]).0);
    now.store(500_000_000, Ordering::SeqCst);
    assert!(
        sample(&s, None, [1; 16]).0,
        "half a second refills one token"
    );
    assert!(!sample(&s, None, [1; 16]).0);
}
