//! Policy evaluation, as the Collector's `tail_sampling` evaluators decide.
//!
//! The attribute and trace-state policies ask whether *any* span of a trace passes a test
//! that looks at that span alone. Each span is therefore tested once, when it enters the
//! engine ([`SpanTests`]), and a buffered trace keeps one bit per test, the OR over its
//! spans: deciding never looks at a span again, which is what keeps a decision cheap when
//! the spans themselves are far apart in memory. Attribute keys are resolved to a table of
//! distinct keys when the policies are compiled; regular expressions were compiled when the
//! configuration was read; rate limiters keep their state here between decisions.

use std::sync::Arc;

use tracelab_trace::{AttrValue, Attribute, Span, StatusCode};

use super::config::{Policy, PolicyRule};
use crate::head::TokenBucket;

/// A single policy's vote, with the Collector's (deprecated but still honoured) inverted
/// decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vote {
    /// Sample.
    Sampled,
    /// Do not sample (other policies may still sample).
    NotSampled,
    /// An inverted match that samples unless some policy says "not sampled".
    InvertSampled,
    /// An inverted match that vetoes sampling.
    InvertNotSampled,
    /// A `drop` policy matched: the trace is dropped whatever else says.
    Dropped,
}

/// The per-span tests of a sampler's attribute and trace-state policies, one bit each.
#[derive(Debug, Default)]
pub(crate) struct SpanTests {
    /// The distinct attribute keys the tests read.
    keys: Vec<String>,
    tests: Vec<SpanTest>,
}

#[derive(Debug)]
enum SpanTest {
    String { key: usize, matcher: StringMatcher },
    Numeric { key: usize, min: i64, max: i64 },
    Bool { key: usize, value: bool },
    TraceState { key: String, values: Vec<String> },
}

/// The tests' results on the last resource seen. Resources are shared by every span of an
/// export batch (one `Arc`), and spans are tested in input order, where a batch's spans are
/// neighbours, so remembering one resource saves nearly every resource look-up. The
/// resource is recognised by its address, which is only compared, never followed; a memo
/// lives for one pass over spans borrowed for all of it, so no resource it remembers can be
/// freed and its address reused meanwhile.
#[derive(Debug, Default)]
pub(crate) struct ResourceMemo {
    resource: Option<*const Vec<Attribute>>,
    bits: Vec<u64>,
}

impl SpanTests {
    fn key(&mut self, key: &str) -> usize {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key.to_string());
                self.keys.len() - 1
            }
        }
    }

    fn add(&mut self, test: SpanTest) -> usize {
        self.tests.push(test);
        self.tests.len() - 1
    }

    /// 64-bit words of test bits per span and per trace (0 when there are no tests).
    pub fn words(&self) -> usize {
        self.tests.len().div_ceil(64)
    }

    /// ORs into `out` (of [`Self::words`] words) the bit of every test the span passes.
    pub fn run(&self, span: &Span, memo: &mut ResourceMemo, out: &mut [u64]) {
        if self.tests.is_empty() {
            return;
        }
        let resource = Arc::as_ptr(&span.resource);
        if memo.resource != Some(resource) {
            memo.resource = Some(resource);
            memo.bits.clear();
            memo.bits.resize(self.words(), 0);
            self.run_on_resource(&span.resource, &mut memo.bits);
        }
        for (w, bits) in out.iter_mut().zip(&memo.bits) {
            *w |= bits;
        }
        // `find` keeps the first attribute of a key, as pdata's `Get` does.
        let lookup = |key: usize| {
            let key = &self.keys[key];
            span.attributes
                .iter()
                .find(|a| same(&a.key, key))
                .map(|a| &a.value)
        };
        for (bit, test) in self.tests.iter().enumerate() {
            let pass = match test {
                // pdata reads a non-string value as ""; spans (not resources) skip the
                // empty string.
                SpanTest::String { key, matcher } => lookup(*key).is_some_and(|v| {
                    let s = v.as_str().unwrap_or("");
                    !s.is_empty() && matcher.matches(s)
                }),
                SpanTest::Numeric { key, min, max } => {
                    lookup(*key).is_some_and(|v| in_range(v, *min, *max))
                }
                SpanTest::Bool { key, value } => lookup(*key).is_some_and(|v| is(v, *value)),
                SpanTest::TraceState { key, values } => span
                    .trace_state
                    .split(',')
                    .filter_map(|m| m.trim().split_once('='))
                    .any(|(k, v)| k == key && values.iter().any(|x| x == v)),
            };
            if pass {
                out[bit / 64] |= 1 << (bit % 64);
            }
        }
    }

    fn run_on_resource(&self, resource: &[Attribute], out: &mut [u64]) {
        let lookup = |key: usize| {
            let key = &self.keys[key];
            resource
                .iter()
                .find(|a| same(&a.key, key))
                .map(|a| &a.value)
        };
        for (bit, test) in self.tests.iter().enumerate() {
            let pass = match test {
                SpanTest::String { key, matcher } => {
                    lookup(*key).is_some_and(|v| matcher.matches(v.as_str().unwrap_or("")))
                }
                SpanTest::Numeric { key, min, max } => {
                    lookup(*key).is_some_and(|v| in_range(v, *min, *max))
                }
                SpanTest::Bool { key, value } => lookup(*key).is_some_and(|v| is(v, *value)),
                SpanTest::TraceState { .. } => false,
            };
            if pass {
                out[bit / 64] |= 1 << (bit % 64);
            }
        }
    }
}

/// pdata's `Int()` reads any non-integer value as 0.
fn in_range(v: &AttrValue, min: i64, max: i64) -> bool {
    let x = v.as_i64().unwrap_or(0);
    x >= min && x <= max
}

/// pdata's `Bool()` reads any non-boolean value as false.
fn is(v: &AttrValue, value: bool) -> bool {
    v.as_bool().unwrap_or(false) == value
}

/// String equality written out so it inlines: attribute keys and values are short, and a
/// call into `memcmp` for each comparison was the largest single cost of a replay.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
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
    /// Bit `b` is set when some span of the buffer passed span test `b`.
    pub hits: &'t [u64],
    pub now: u64,
}

impl TraceView<'_> {
    #[inline]
    fn hit(&self, bit: usize) -> bool {
        self.hits[bit / 64] & (1 << (bit % 64)) != 0
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
    Latency {
        lower_ms: i64,
        upper_ms: i64,
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
    TraceFlags,
    And(Vec<Evaluator>),
    Drop(Vec<Evaluator>),
    Composite(Composite),
}

#[derive(Debug)]
pub(crate) enum StringMatcher {
    Exact(Vec<String>),
    Regex(Vec<regex::Regex>),
}

impl StringMatcher {
    #[inline]
    fn matches(&self, s: &str) -> bool {
        match self {
            StringMatcher::Exact(values) => values.iter().any(|v| same(v, s)),
            StringMatcher::Regex(res) => res.iter().any(|r| r.is_match(s)),
        }
    }
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
                upper_ms: *upper_threshold_ms,
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
            PolicyRule::RateLimiting { spans_per_second } => Evaluator::RateLimiting(
                TokenBucket::new(*spans_per_second as f64, 2.0 * *spans_per_second as f64),
            ),
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
            Evaluator::Latency { lower_ms, upper_ms } => {
                let ms = (t.max_end.saturating_sub(t.min_start) / 1_000_000) as i64;
                yes(if *upper_ms == 0 {
                    ms >= *lower_ms
                } else {
                    *lower_ms < ms && ms <= *upper_ms
                })
            }
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
            Evaluator::AnySpan { bit, invert } => inverted(t.hit(*bit), *invert),
            Evaluator::TraceFlags => yes(t.any_sampled_flag),
            Evaluator::And(subs) => {
                for s in subs.iter_mut() {
                    if matches!(s.evaluate(t), Vote::NotSampled | Vote::InvertNotSampled) {
                        return Vote::NotSampled;
                    }
                }
                Vote::Sampled
            }
            Evaluator::Drop(subs) => {
                for s in subs.iter_mut() {
                    if matches!(s.evaluate(t), Vote::NotSampled | Vote::InvertNotSampled) {
                        return Vote::NotSampled;
                    }
                }
                Vote::Dropped
            }
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
                    if matches!(eval.evaluate(t), Vote::Sampled | Vote::InvertSampled) {
                        let next = *sampled + n;
                        if next <= *allocated && next <= c.max_total {
                            *sampled = next;
                            return Vote::Sampled;
                        }
                        return Vote::NotSampled;
                    }
                }
                Vote::NotSampled
            }
        }
    }
}

fn inverted(hit: bool, invert: bool) -> Vote {
    match (invert, hit) {
        (false, true) => Vote::Sampled,
        (false, false) => Vote::NotSampled,
        (true, true) => Vote::InvertNotSampled,
        (true, false) => Vote::InvertSampled,
    }
}

/// The processor's final decision over the policies' votes: a drop wins, then an inverted
/// "not sampled", then any "sampled", then an inverted "sampled" when no policy said "not
/// sampled"; otherwise not sampled. A drop stops the evaluation, and so does a "sampled"
/// under `sample_on_first_match` (later stateful policies then spend no tokens).
pub(crate) fn decide(
    evaluators: &mut [Evaluator],
    t: &TraceView<'_>,
    sample_on_first_match: bool,
) -> bool {
    let (mut dropped, mut inv_not, mut sampled, mut inv_sampled, mut not_sampled) =
        (false, false, false, false, false);
    for e in evaluators.iter_mut() {
        match e.evaluate(t) {
            Vote::Dropped => {
                dropped = true;
                break;
            }
            Vote::InvertNotSampled => inv_not = true,
            Vote::Sampled => {
                sampled = true;
                if sample_on_first_match {
                    break;
                }
            }
            Vote::InvertSampled => inv_sampled = true,
            Vote::NotSampled => not_sampled = true,
        }
    }
    !dropped && !inv_not && (sampled || (inv_sampled && !not_sampled))
}
