//! Policy evaluation, as the Collector's (contrib 0.157.0) `tail_sampling` evaluators decide.
//!
//! Attribute, trace-state and OTTL policies are answered by per-span tests run once per span
//! (`span_tests`); a buffered trace keeps one bit per test, so deciding never looks at a span
//! again. Attribute keys are resolved to a table of distinct keys when the policies are
//! compiled; regular expressions and OTTL conditions were compiled when the configuration
//! was read; rate limiters keep their state here between decisions.
//!
//! Layout:
//! - `span_tests`: the per-span tests, the resource memo and the latency range bits.

mod span_tests;

use tracelab_trace::StatusCode;

use super::config::{Policy, PolicyRule};
use crate::head::TokenBucket;
pub(crate) use span_tests::{ResourceMemo, SpanTest, SpanTests, StringMatcher};

/// A single policy's vote. The Collector's inverted votes are gone since contrib 0.156.0:
/// `invert_match` now yields a plain "sampled" or "not sampled" on the negated match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Sample.
    Sampled,
    /// Do not sample (other policies may still sample).
    NotSampled,
    /// A `drop` policy matched: the trace is dropped whatever else says.
    Dropped,
    /// The policy could not decide (an OTTL condition failed under `error_mode:
    /// propagate`): it does not vote to sample.
    Error,
}

/// What the evaluators see of one buffered trace.
pub(crate) struct TraceView<'t> {
    pub trace_id: &'t [u8; 16],
    /// Spans in the buffer.
    pub spans: u32,
    pub min_start: u64,
    pub max_end: u64,
    pub bytes: u64,
    pub status_mask: u8,
    pub any_sampled_flag: bool,
    /// Bit `b` is set when some span of the buffer passed span test `b`, or the running
    /// duration passed through latency range `b`.
    pub hits: &'t [u64],
    /// Bit `b` is set when OTTL test `b` failed on a span before any span matched (empty
    /// when the sampler has no OTTL test).
    pub errs: &'t [u64],
    pub now: u64,
}

impl TraceView<'_> {
    #[inline]
    fn hit(&self, bit: usize) -> bool {
        self.hits[bit / 64] & (1 << (bit % 64)) != 0
    }

    #[inline]
    fn err(&self, bit: usize) -> bool {
        self.errs
            .get(bit / 64)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }
}

pub(crate) fn status_bit(code: StatusCode) -> u8 {
    match code {
        StatusCode::Unset => 1,
        StatusCode::Ok => 2,
        StatusCode::Error => 4,
    }
}

/// A compiled, stateful policy.
#[derive(Debug)]
pub(crate) enum Evaluator {
    AlwaysSample,
    /// Without an upper bound: the final duration above `lower_ms`. With one: whether the
    /// running duration passed through the range, which is latency range bit `bit`.
    Latency {
        lower_ms: i64,
        range_bit: Option<usize>,
    },
    Status {
        mask: u8,
    },
    Probabilistic {
        salted: u64,
        threshold: u64,
    },
    RateLimiting(TokenBucket),
    BytesLimiting(TokenBucket),
    SpanCount {
        min: i64,
        max: i64,
    },
    /// An attribute or trace-state policy: does any span pass span test `bit`?
    AnySpan {
        bit: usize,
        invert: bool,
    },
    /// An OTTL policy: a span matched (`bit` set), or failed first (error bit set).
    Ottl {
        bit: usize,
    },
    TraceFlags,
    And(Vec<Evaluator>),
    Not(Box<Evaluator>),
    Drop(Vec<Evaluator>),
    Composite(Composite),
}

#[derive(Debug)]
pub(crate) struct Composite {
    max_total: i64,
    subs: Vec<(Evaluator, i64, i64)>,
    current_second: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The Collector's `probabilistic` hash: FNV-1a 64 over the salt, then the trace id bytes.
pub fn collector_trace_hash(salt: &str, trace_id: &[u8; 16]) -> u64 {
    fnv1a(fnv1a(FNV_OFFSET, salt.as_bytes()), trace_id)
}

/// `floor(ratio · (2^64 − 1))` computed exactly, as the Collector does with big floats.
pub fn collector_probability_threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio >= 1.0 {
        return u64::MAX;
    }
    // ratio = mantissa · 2^exp exactly; the product with 2^64 − 1 fits in 128 bits.
    let bits = ratio.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let (mantissa, exp) = if biased == 0 {
        (bits & ((1 << 52) - 1), -1074)
    } else {
        ((bits & ((1 << 52) - 1)) | (1 << 52), biased - 1075)
    };
    let product = u128::from(u64::MAX) * u128::from(mantissa);
    // Go's big.Float keeps 64 significant bits (the larger operand precision) and rounds to
    // nearest even before `Uint64()` truncates; do the same so boundary ids agree.
    let bit_len = 128 - product.leading_zeros();
    let cut = bit_len.saturating_sub(64);
    let rounded = if cut == 0 {
        product
    } else {
        let rem = product & ((1u128 << cut) - 1);
        let half = 1u128 << (cut - 1);
        let mut kept = product >> cut;
        if rem > half || (rem == half && kept & 1 == 1) {
            kept += 1;
        }
        kept << cut
    };
    let shift = (-exp) as u32;
    if shift >= 128 {
        0
    } else {
        u64::try_from(rounded >> shift).unwrap_or(u64::MAX)
    }
}

impl Evaluator {
    pub fn compile(policy: &Policy, tests: &mut SpanTests) -> Evaluator {
        match &policy.rule {
            PolicyRule::AlwaysSample => Evaluator::AlwaysSample,
            PolicyRule::Latency {
                threshold_ms,
                upper_threshold_ms,
            } => Evaluator::Latency {
                lower_ms: *threshold_ms,
                range_bit: (*upper_threshold_ms != 0)
                    .then(|| tests.add_range(*threshold_ms, *upper_threshold_ms)),
            },
            PolicyRule::StatusCode { codes } => Evaluator::Status {
                mask: codes.iter().fold(0, |m, c| m | status_bit(*c)),
            },
            PolicyRule::Probabilistic {
                sampling_percentage,
                hash_salt,
            } => Evaluator::Probabilistic {
                salted: fnv1a(FNV_OFFSET, hash_salt.as_bytes()),
                threshold: collector_probability_threshold(sampling_percentage / 100.0),
            },
            PolicyRule::RateLimiting {
                spans_per_second,
                burst_capacity,
            } => Evaluator::RateLimiting(TokenBucket::new(
                *spans_per_second as f64,
                *burst_capacity as f64,
            )),
            PolicyRule::BytesLimiting {
                bytes_per_second,
                burst_capacity,
            } => Evaluator::BytesLimiting(TokenBucket::new(
                *bytes_per_second as f64,
                *burst_capacity as f64,
            )),
            PolicyRule::SpanCount {
                min_spans,
                max_spans,
            } => Evaluator::SpanCount {
                min: *min_spans,
                max: *max_spans,
            },
            PolicyRule::StringAttribute {
                key,
                values,
                regexes,
                invert_match,
            } => {
                let key = tests.key(key);
                let matcher = match regexes {
                    Some(r) => StringMatcher::Regex(r.clone()),
                    None => StringMatcher::Exact(values.clone()),
                };
                Evaluator::AnySpan {
                    bit: tests.add(SpanTest::String { key, matcher }),
                    invert: *invert_match,
                }
            }
            PolicyRule::NumericAttribute {
                key,
                min_value,
                max_value,
                invert_match,
            } => {
                let key = tests.key(key);
                Evaluator::AnySpan {
                    bit: tests.add(SpanTest::Numeric {
                        key,
                        min: *min_value,
                        max: *max_value,
                    }),
                    invert: *invert_match,
                }
            }
            PolicyRule::BooleanAttribute {
                key,
                value,
                invert_match,
            } => {
                let key = tests.key(key);
                Evaluator::AnySpan {
                    bit: tests.add(SpanTest::Bool { key, value: *value }),
                    invert: *invert_match,
                }
            }
            PolicyRule::TraceState { key, values } => Evaluator::AnySpan {
                bit: tests.add(SpanTest::TraceState {
                    key: key.clone(),
                    values: values.clone(),
                }),
                invert: false,
            },
            PolicyRule::TraceFlags => Evaluator::TraceFlags,
            PolicyRule::OttlCondition(conditions) => Evaluator::Ottl {
                bit: tests.add(SpanTest::Ottl(Box::new(conditions.clone()))),
            },
            PolicyRule::Not(sub) => Evaluator::Not(Box::new(Evaluator::compile(sub, tests))),
            PolicyRule::And(subs) => {
                Evaluator::And(subs.iter().map(|p| Evaluator::compile(p, tests)).collect())
            }
            PolicyRule::Drop(subs) => {
                Evaluator::Drop(subs.iter().map(|p| Evaluator::compile(p, tests)).collect())
            }
            PolicyRule::Composite {
                max_total_spans_per_second,
                sub_policies,
            } => Evaluator::Composite(Composite {
                max_total: *max_total_spans_per_second,
                subs: sub_policies
                    .iter()
                    .map(|(p, sps)| (Evaluator::compile(p, tests), *sps, 0))
                    .collect(),
                current_second: u64::MAX,
            }),
        }
    }

    pub fn evaluate(&mut self, t: &TraceView<'_>) -> Vote {
        let yes = |b: bool| if b { Vote::Sampled } else { Vote::NotSampled };
        match self {
            Evaluator::AlwaysSample => Vote::Sampled,
            Evaluator::Latency {
                lower_ms,
                range_bit: None,
            } => {
                // contrib 0.157.0 takes the lower bound as exclusive with or without an upper
                // one (#49595).
                let ms = (t.max_end.saturating_sub(t.min_start) / 1_000_000) as i64;
                yes(ms > *lower_ms)
            }
            Evaluator::Latency {
                range_bit: Some(bit),
                ..
            } => yes(t.hit(*bit)),
            Evaluator::Status { mask } => yes(t.status_mask & *mask != 0),
            Evaluator::Probabilistic { salted, threshold } => {
                yes(fnv1a(*salted, t.trace_id) <= *threshold)
            }
            Evaluator::RateLimiting(bucket) => yes(bucket.try_take(t.now, f64::from(t.spans))),
            Evaluator::BytesLimiting(bucket) => yes(bucket.try_take(t.now, t.bytes as f64)),
            Evaluator::SpanCount { min, max } => {
                let n = i64::from(t.spans);
                yes(n >= *min && (*max == 0 || n <= *max))
            }
            Evaluator::AnySpan { bit, invert } => yes(t.hit(*bit) != *invert),
            Evaluator::Ottl { bit } => {
                if t.hit(*bit) {
                    Vote::Sampled
                } else if t.err(*bit) {
                    Vote::Error
                } else {
                    Vote::NotSampled
                }
            }
            Evaluator::TraceFlags => yes(t.any_sampled_flag),
            Evaluator::Not(sub) => match sub.evaluate(t) {
                Vote::Sampled => Vote::NotSampled,
                Vote::NotSampled => Vote::Sampled,
                other => other,
            },
            Evaluator::And(subs) => every_sub_policy(subs, t, Vote::Sampled),
            Evaluator::Drop(subs) => every_sub_policy(subs, t, Vote::Dropped),
            Evaluator::Composite(c) => {
                let second = t.now / 1_000_000_000;
                if second != c.current_second {
                    c.current_second = second;
                    for sub in c.subs.iter_mut() {
                        sub.2 = 0;
                    }
                }
                let n = i64::from(t.spans);
                for (eval, allocated, sampled) in c.subs.iter_mut() {
                    match eval.evaluate(t) {
                        Vote::Error => return Vote::Error,
                        Vote::Sampled => {
                            let next = *sampled + n;
                            if next <= *allocated && next <= c.max_total {
                                *sampled = next;
                                return Vote::Sampled;
                            }
                            return Vote::NotSampled;
                        }
                        _ => {}
                    }
                }
                Vote::NotSampled
            }
        }
    }

    /// Whether this is a `drop` policy, which the Collector evaluates before all others.
    pub fn is_drop(&self) -> bool {
        matches!(self, Evaluator::Drop(_))
    }
}

/// An `and` or a `drop` policy: `matched` when every sub-policy samples the trace; the first
/// that does not, or fails, decides instead (later ones are not evaluated).
fn every_sub_policy(subs: &mut [Evaluator], t: &TraceView<'_>, matched: Vote) -> Vote {
    for s in subs.iter_mut() {
        match s.evaluate(t) {
            Vote::NotSampled => return Vote::NotSampled,
            Vote::Error => return Vote::Error,
            _ => {}
        }
    }
    matched
}

/// The processor's final decision over the policies' votes: a drop wins (and stops the
/// evaluation), else any "sampled" keeps; otherwise not sampled. `drop` policies come first
/// (the sampler orders them so, as the Collector does), and under `sample_on_first_match` the
/// first "sampled" stops the evaluation, so later stateful policies spend no tokens.
pub(crate) fn decide(
    evaluators: &mut [Evaluator],
    t: &TraceView<'_>,
    sample_on_first_match: bool,
) -> bool {
    let mut sampled = false;
    for e in evaluators.iter_mut() {
        match e.evaluate(t) {
            Vote::Dropped => return false,
            Vote::Sampled => {
                sampled = true;
                if sample_on_first_match {
                    break;
                }
            }
            Vote::NotSampled | Vote::Error => {}
        }
    }
    sampled
}

/// The vote of a set of policies on one batch alone, for `sampling_strategy: span-ingest`:
/// `Some(true)` sampled, `Some(false)` dropped, `None` undecided.
pub(crate) fn decide_batch(
    evaluators: &mut [Evaluator],
    t: &TraceView<'_>,
    sample_on_first_match: bool,
) -> Option<bool> {
    let mut sampled = false;
    for e in evaluators.iter_mut() {
        match e.evaluate(t) {
            Vote::Dropped => return Some(false),
            Vote::Sampled => {
                sampled = true;
                if sample_on_first_match {
                    break;
                }
            }
            Vote::NotSampled | Vote::Error => {}
        }
    }
    sampled.then_some(true)
}
