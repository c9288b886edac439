//! The per-span tests of a sampler's attribute, trace-state and OTTL policies.
//!
//! These policies ask whether *any* span of a trace passes a test that looks at that span
//! alone. Each span is therefore tested once, when it enters the engine, and a buffered trace
//! keeps one bit per test: deciding never looks at a span again, which is what keeps a
//! decision cheap when the spans themselves are far apart in memory. Bits are numbered from
//! one counter shared with the bounded `latency` ranges, whose bits the engine sets as the
//! running duration of a buffer passes through them.

use std::sync::Arc;

use tracelab_trace::{AttrValue, Attribute, Span};

use crate::tail::ottl::{OttlConditions, SpanOutcome};

/// The per-span tests and latency ranges of a sampler, one bit each.
#[derive(Debug, Default)]
pub(crate) struct SpanTests {
    /// The distinct attribute keys the tests read.
    keys: Vec<String>,
    /// Each test and its bit.
    tests: Vec<(usize, SpanTest)>,
    /// Each bounded latency range (`lower < ms <= upper`) and its bit.
    ranges: Vec<(usize, i64, i64)>,
    bits: usize,
    has_ottl: bool,
}

#[derive(Debug)]
pub(crate) enum SpanTest {
    String {
        key: usize,
        matcher: StringMatcher,
    },
    Numeric {
        key: usize,
        min: i64,
        max: i64,
    },
    Bool {
        key: usize,
        value: bool,
    },
    TraceState {
        key: String,
        values: Vec<String>,
    },
    /// An `ottl_condition` policy: its pass bit is set on a match, its error bit when the
    /// conditions failed under `error_mode: propagate`.
    Ottl(Box<OttlConditions>),
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

#[inline]
fn set(out: &mut [u64], bit: usize) {
    out[bit / 64] |= 1 << (bit % 64);
}

impl SpanTests {
    pub fn key(&mut self, key: &str) -> usize {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key.to_string());
                self.keys.len() - 1
            }
        }
    }

    fn next_bit(&mut self) -> usize {
        self.bits += 1;
        self.bits - 1
    }

    /// Adds a test; returns its bit.
    pub fn add(&mut self, test: SpanTest) -> usize {
        self.has_ottl |= matches!(test, SpanTest::Ottl(_));
        let bit = self.next_bit();
        self.tests.push((bit, test));
        bit
    }

    /// Adds a bounded latency range; returns its bit.
    pub fn add_range(&mut self, lower_ms: i64, upper_ms: i64) -> usize {
        let bit = self.next_bit();
        self.ranges.push((bit, lower_ms, upper_ms));
        bit
    }

    /// 64-bit words of bits per span and per trace (0 when there are neither tests nor
    /// ranges).
    pub fn words(&self) -> usize {
        self.bits.div_ceil(64)
    }

    /// Words of error bits per span and per trace: as many as [`Self::words`] when an OTTL
    /// test can fail, else none.
    pub fn error_words(&self) -> usize {
        if self.has_ottl { self.words() } else { 0 }
    }

    /// Sets in `out` the bit of every bounded latency range that contains `ms`.
    #[inline]
    pub fn mark_ranges(&self, ms: i64, out: &mut [u64]) {
        for &(bit, lower, upper) in &self.ranges {
            if lower < ms && ms <= upper {
                set(out, bit);
            }
        }
    }

    /// Whether any range is defined.
    pub fn has_ranges(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// ORs into `out` (of [`Self::words`] words) the bit of every test the span passes, and
    /// into `errs` (of [`Self::error_words`]) the bit of every OTTL test that failed on it.
    pub fn run(&self, span: &Span, memo: &mut ResourceMemo, out: &mut [u64], errs: &mut [u64]) {
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
        for (bit, test) in &self.tests {
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
                SpanTest::Ottl(conditions) => match conditions.evaluate(span) {
                    SpanOutcome::Match => true,
                    SpanOutcome::NoMatch => false,
                    SpanOutcome::Error => {
                        set(errs, *bit);
                        false
                    }
                },
            };
            if pass {
                set(out, *bit);
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
        for (bit, test) in &self.tests {
            let pass = match test {
                SpanTest::String { key, matcher } => {
                    lookup(*key).is_some_and(|v| matcher.matches(v.as_str().unwrap_or("")))
                }
                SpanTest::Numeric { key, min, max } => {
                    lookup(*key).is_some_and(|v| in_range(v, *min, *max))
                }
                SpanTest::Bool { key, value } => lookup(*key).is_some_and(|v| is(v, *value)),
                SpanTest::TraceState { .. } | SpanTest::Ottl(_) => false,
            };
            if pass {
                set(out, *bit);
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
