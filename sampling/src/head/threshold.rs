//! Consistent probability sampling as the OpenTelemetry "TraceState: Probability Sampling"
//! specification (OTEP 235) defines it: 56 bits of randomness, a rejection threshold, and the
//! `th`/`rv` sub-keys of the `ot` tracestate entry.
//!
//! A span is kept when its randomness `R` is at least the rejection threshold `T`, where
//! `T = (1 - p) · 2^56`. Because every participant compares the same `R` with its own `T`, a
//! sampler with a higher probability (lower `T`) keeps a superset of what a lower one keeps;
//! that is what makes the decisions *consistent* across services and pipeline stages.

use std::fmt;

/// `2^56`: the number of distinct randomness values, and the largest adjusted count.
pub const MAX_ADJUSTED_COUNT: u64 = 1 << 56;

/// Hex digits of threshold precision that the specification recommends SDKs use by default.
pub const DEFAULT_PRECISION: u8 = 4;

/// The most hex digits a threshold has (56 bits).
pub const MAX_PRECISION: u8 = 14;

/// Why a threshold, a randomness value or an `ot` tracestate entry could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// The probability is not a number in `[0, 1]`.
    #[error("sampling probability must be in [0, 1], got {0}")]
    Probability(f64),
    /// The precision is outside `1..=14`.
    #[error("threshold precision must be 1..=14 hex digits, got {0}")]
    Precision(u8),
    /// A `th` value that is not 1 to 14 hex digits.
    #[error("`th` must be 1 to 14 hex digits, got {0:?}")]
    ThValue(String),
    /// An `rv` value that is not exactly 14 hex digits.
    #[error("`rv` must be exactly 14 hex digits, got {0:?}")]
    RvValue(String),
}

/// 56 bits of trace randomness: the right-most 7 bytes of the trace id, or an explicit `rv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Randomness(u64);

impl Randomness {
    /// The right-most 7 bytes of a trace id, big-endian.
    pub fn from_trace_id(bytes: &[u8; 16]) -> Self {
        let mut out = [0u8; 8];
        out[1..].copy_from_slice(&bytes[9..16]);
        Randomness(u64::from_be_bytes(out))
    }

    /// Parses an explicit `rv` value (exactly 14 hex digits).
    pub fn parse_rv(s: &str) -> Result<Self, ThresholdError> {
        if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ThresholdError::RvValue(s.to_string()));
        }
        u64::from_str_radix(s, 16)
            .map(Randomness)
            .map_err(|_| ThresholdError::RvValue(s.to_string()))
    }

    /// Builds randomness from a raw value; `None` when it does not fit in 56 bits.
    pub fn from_raw(value: u64) -> Option<Self> {
        (value < MAX_ADJUSTED_COUNT).then_some(Randomness(value))
    }

    /// The raw 56-bit value.
    pub fn raw(self) -> u64 {
        self.0
    }

    /// The `rv` encoding: 14 lowercase hex digits.
    pub fn encode(self) -> String {
        format!("{:014x}", self.0)
    }
}

/// A rejection threshold `T` in `[0, 2^56]`: keep iff randomness `>= T`.
///
/// `0` keeps everything (`th:0`); `2^56` keeps nothing and is never written to a tracestate,
/// since only sampled spans carry a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u64);

impl Threshold {
    /// Keeps every span (probability 1, `th:0`).
    pub const ALWAYS_SAMPLE: Threshold = Threshold(0);
    /// Keeps nothing (probability 0).
    pub const NEVER_SAMPLE: Threshold = Threshold(MAX_ADJUSTED_COUNT);

    /// The threshold for probability `p`, rounded to `precision` significant hex digits.
    ///
    /// This follows the specification's reference algorithm: the precision applies to the
    /// significant digits of the threshold, so it is raised by one digit for every four
    /// halvings of the probability (one leading `f` in the threshold); 1 % at precision 4 is
    /// therefore `fd70a`, not `fd71`. Probabilities below `2^-56` round to the smallest
    /// representable one rather than to zero.
    pub fn from_probability(p: f64, precision: u8) -> Result<Self, ThresholdError> {
        if !(1..=MAX_PRECISION).contains(&precision) {
            return Err(ThresholdError::Precision(precision));
        }
        if !(0.0..=1.0).contains(&p) {
            return Err(ThresholdError::Probability(p));
        }
        if p == 0.0 {
            return Ok(Self::NEVER_SAMPLE);
        }
        if p == 1.0 {
            return Ok(Self::ALWAYS_SAMPLE);
        }
        let extra_digits = (-frexp_exponent(p)).div_euclid(4);
        let digits = (i64::from(precision) + extra_digits).clamp(1, i64::from(MAX_PRECISION));
        // p · 2^56 is exact (a power-of-two scaling), so rounding it is the only rounding
        // before the precision cut; at least one unit keeps tiny probabilities above zero.
        let scaled = ((p * MAX_ADJUSTED_COUNT as f64).round() as u64).max(1);
        let mut t = MAX_ADJUSTED_COUNT - scaled;
        let shift = 4 * (u64::from(MAX_PRECISION) - digits as u64);
        if shift > 0 {
            let rounded = ((t + (1 << (shift - 1))) >> shift) << shift;
            t = if rounded >= MAX_ADJUSTED_COUNT {
                // Rounding up would reach "never sample"; keep the largest value that still
                // fits the precision, as the specification's reference code does.
                ((MAX_ADJUSTED_COUNT - 1) >> shift) << shift
            } else {
                rounded
            };
        }
        Ok(Threshold(t))
    }

    /// Builds a threshold from its raw value; `None` above `2^56`.
    pub fn from_raw(t: u64) -> Option<Self> {
        (t <= MAX_ADJUSTED_COUNT).then_some(Threshold(t))
    }

    /// The raw value `T`.
    pub fn raw(self) -> u64 {
        self.0
    }

    /// Parses a `th` value: 1 to 14 hex digits, implicitly padded with trailing zeros.
    pub fn parse_th(s: &str) -> Result<Self, ThresholdError> {
        if s.is_empty() || s.len() > 14 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ThresholdError::ThValue(s.to_string()));
        }
        let v = u64::from_str_radix(s, 16).map_err(|_| ThresholdError::ThValue(s.to_string()))?;
        Ok(Threshold(v << (4 * (14 - s.len() as u64))))
    }

    /// The `th` encoding: 14 hex digits with trailing zeros removed (`0` for 100 %), or `None`
    /// for "never sample", which has no encoding.
    pub fn encode(self) -> Option<String> {
        if self.0 >= MAX_ADJUSTED_COUNT {
            return None;
        }
        let full = format!("{:014x}", self.0);
        let trimmed = full.trim_end_matches('0');
        Some(if trimmed.is_empty() {
            "0".to_string()
        } else {
            trimmed.to_string()
        })
    }

    /// True when a span with this randomness is kept.
    pub fn should_sample(self, r: Randomness) -> bool {
        r.0 >= self.0
    }

    /// The exact sampling probability this threshold stands for.
    pub fn probability(self) -> f64 {
        (MAX_ADJUSTED_COUNT - self.0.min(MAX_ADJUSTED_COUNT)) as f64 / MAX_ADJUSTED_COUNT as f64
    }

    /// How many spans each kept span represents: `2^56 / (2^56 - T)` (0 for "never").
    pub fn adjusted_count(self) -> f64 {
        if self.0 >= MAX_ADJUSTED_COUNT {
            0.0
        } else {
            MAX_ADJUSTED_COUNT as f64 / (MAX_ADJUSTED_COUNT - self.0) as f64
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encode() {
            Some(s) => write!(f, "th:{s}"),
            None => f.write_str("never"),
        }
    }
}

/// The exponent `e` of `p = m · 2^e` with `m` in `[0.5, 1)`, as C's `frexp` returns it.
fn frexp_exponent(p: f64) -> i64 {
    let bits = p.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    if biased == 0 {
        // Subnormal: far below 2^-56, where the precision is clamped anyway.
        -1022
    } else {
        biased - 1022
    }
}

/// The value of the `ot` tracestate entry: `;`-separated `key:value` sub-keys, order kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtTraceState {
    entries: Vec<(String, String)>,
}

impl OtTraceState {
    /// Parses the value of an `ot` entry. Malformed sub-keys (no `:`) are dropped, because
    /// passing on something we cannot read would only spread the damage.
    pub fn parse(value: &str) -> Self {
        let entries = value
            .split(';')
            .filter_map(|item| {
                let (k, v) = item.split_once(':')?;
                (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
            })
            .collect();
        OtTraceState { entries }
    }

    /// Finds the `ot` entry in a whole W3C `tracestate` header value and parses it.
    pub fn from_tracestate_header(header: &str) -> Self {
        header
            .split(',')
            .filter_map(|member| member.trim().split_once('='))
            .find(|(k, _)| *k == "ot")
            .map(|(_, v)| Self::parse(v))
            .unwrap_or_default()
    }

    /// The raw value of a sub-key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `th` threshold, when present and valid.
    pub fn threshold(&self) -> Option<Threshold> {
        self.get("th").and_then(|v| Threshold::parse_th(v).ok())
    }

    /// The explicit randomness `rv`, when present and valid.
    pub fn randomness(&self) -> Option<Randomness> {
        self.get("rv").and_then(|v| Randomness::parse_rv(v).ok())
    }

    /// Sets (or, with `None`, erases) `th`. A new `th` goes first, as the OpenTelemetry
    /// implementations write it; every other sub-key keeps its place.
    pub fn set_threshold(&mut self, threshold: Option<Threshold>) {
        self.entries.retain(|(k, _)| k != "th");
        if let Some(th) = threshold.and_then(Threshold::encode) {
            self.entries.insert(0, ("th".to_string(), th));
        }
    }

    /// True when `value`, the text this state was parsed from, is what
    /// [`OtTraceState::set_threshold`]`(threshold)` and [`fmt::Display`] would write: a
    /// sampler that finds its decision already written passes the tracestate on as it is,
    /// without encoding it again (most spans of a trace, whose `th` their parent wrote).
    pub fn already_written(&self, value: &str, threshold: Option<Threshold>) -> bool {
        // Nothing was dropped by the parse: the sub-keys joined again are as long as the text.
        let joined: usize = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len())
            .sum::<usize>()
            + self.entries.len().saturating_sub(1);
        if joined != value.len() {
            return false;
        }
        match threshold.filter(|t| t.0 < MAX_ADJUSTED_COUNT) {
            None => !self.entries.iter().any(|(k, _)| k == "th"),
            Some(threshold) => self.entries.first().is_some_and(|(k, v)| {
                // `th` first, in its shortest encoding (no trailing zero but in `0`).
                k == "th"
                    && Threshold::parse_th(v).ok() == Some(threshold)
                    && (v == "0" || !v.ends_with('0'))
                    && !self.entries[1..].iter().any(|(k, _)| k == "th")
            }),
        }
    }

    /// True when no sub-key is left.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Display for OtTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            write!(f, "{k}:{v}")?;
        }
        Ok(())
    }
}

/// The randomness a sampler must use for a trace: `rv` when the tracestate has a valid one,
/// otherwise the trace id's right-most 7 bytes.
pub fn trace_randomness(trace_id: &[u8; 16], ot: &OtTraceState) -> Randomness {
    ot.randomness()
        .unwrap_or_else(|| Randomness::from_trace_id(trace_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn th(p: f64) -> String {
        Threshold::from_probability(p, DEFAULT_PRECISION)
            .unwrap()
            .encode()
            .unwrap()
    }

    #[test]
    fn a_state_already_written_is_exactly_what_setting_the_threshold_writes() {
        let values = [
            "",
            "th:0",
            "th:8",
            "th:80",
            "th:8;rv:00000000000001",
            "rv:00000000000001;th:8",
            "th:8;;x:1",
            "th:8;junk",
            "th:c;th:8",
            "x:1",
            ":1",
            "th:",
            "th:0;x:2",
        ];
        let thresholds = [
            None,
            Some(Threshold::ALWAYS_SAMPLE),
            Some(Threshold::NEVER_SAMPLE),
            Threshold::parse_th("8").ok(),
            Threshold::parse_th("c").ok(),
        ];
        let mut fast = 0;
        for value in values {
            for threshold in thresholds {
                let state = OtTraceState::parse(value);
                let mut set = state.clone();
                set.set_threshold(threshold);
                let written = set.to_string();
                if state.already_written(value, threshold) {
                    fast += 1;
                    assert_eq!(written, value, "{value:?} with {threshold:?}");
                }
            }
        }
        // The common cases take the short way: a child's `th` as its parent wrote it, and no
        // threshold where none is written.
        assert!(OtTraceState::parse("th:8").already_written("th:8", Threshold::parse_th("8").ok()));
        assert!(
            OtTraceState::parse("th:0").already_written("th:0", Some(Threshold::ALWAYS_SAMPLE))
        );
        assert!(OtTraceState::parse("").already_written("", None));
        assert!(fast >= 5, "{fast}");
    }

    #[test]
    fn encodings_match_the_specification_table() {
        assert_eq!(th(1.0), "0");
        assert_eq!(th(0.5), "8");
        assert_eq!(th(0.25), "c");
        assert_eq!(th(0.125), "e");
        assert_eq!(th(0.0625), "f");
        assert_eq!(th(0.1), "e666");
        assert_eq!(th(1.0 / 3.0), "aaab");
        assert_eq!(th(0.2), "cccd");
        assert_eq!(th(0.01), "fd70a");
        assert_eq!(th(0.001), "ffbe77");
        let p3 = |p| Threshold::from_probability(p, 3).unwrap().encode().unwrap();
        let p5 = |p| Threshold::from_probability(p, 5).unwrap().encode().unwrap();
        assert_eq!(p3(0.01), "fd71");
        assert_eq!(p5(0.01), "fd70a4");
        assert_eq!(p3(0.001), "ffbe7");
        assert_eq!(p5(0.1), "e6666");
        assert_eq!(p3(1.0 / 3.0), "aab");
    }

    #[test]
    fn parse_pads_with_trailing_zeros_and_round_trips() {
        let t = Threshold::parse_th("8").unwrap();
        assert_eq!(t.raw(), 1 << 55);
        assert_eq!(t.probability(), 0.5);
        assert_eq!(t.adjusted_count(), 2.0);
        assert_eq!(Threshold::parse_th("0").unwrap(), Threshold::ALWAYS_SAMPLE);
        for s in ["e666", "fd70a", "aaab", "c", "ffffffffffffff"] {
            assert_eq!(Threshold::parse_th(s).unwrap().encode().unwrap(), s);
        }
        assert!(Threshold::parse_th("").is_err());
        assert!(Threshold::parse_th("123456789abcdef").is_err());
        assert!(Threshold::parse_th("xyz").is_err());
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(Threshold::from_probability(1.5, 4).is_err());
        assert!(Threshold::from_probability(f64::NAN, 4).is_err());
        assert!(Threshold::from_probability(0.5, 0).is_err());
        assert!(Threshold::from_probability(0.5, 15).is_err());
        assert_eq!(
            Threshold::from_probability(0.0, 4).unwrap(),
            Threshold::NEVER_SAMPLE
        );
        assert_eq!(Threshold::NEVER_SAMPLE.encode(), None);
        // The smallest probabilities stay representable instead of rounding to "never".
        let tiny = Threshold::from_probability(1e-20, 4).unwrap();
        assert!(tiny.raw() < MAX_ADJUSTED_COUNT);
    }

    #[test]
    fn randomness_is_the_right_most_seven_bytes() {
        let id: [u8; 16] = [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11,
        ];
        assert_eq!(Randomness::from_trace_id(&id).raw(), 0xaabbccddeeff11);
        assert_eq!(
            Randomness::parse_rv("aabbccddeeff11").unwrap().raw(),
            0xaabbccddeeff11
        );
        assert!(Randomness::parse_rv("aabb").is_err());
    }

    #[test]
    fn ot_entry_keeps_other_sub_keys() {
        let mut ot = OtTraceState::from_tracestate_header("vendor=x, ot=rv:00000000000001;k:v");
        assert_eq!(ot.randomness().unwrap().raw(), 1);
        ot.set_threshold(Some(Threshold::from_probability(0.25, 4).unwrap()));
        assert_eq!(ot.to_string(), "th:c;rv:00000000000001;k:v");
        ot.set_threshold(Some(Threshold::ALWAYS_SAMPLE));
        assert_eq!(ot.to_string(), "th:0;rv:00000000000001;k:v");
        ot.set_threshold(None);
        assert_eq!(ot.to_string(), "rv:00000000000001;k:v");
    }

    #[test]
    fn rv_overrides_trace_id_randomness() {
        let id = [0xffu8; 16];
        let ot = OtTraceState::parse("rv:00000000000000");
        assert_eq!(trace_randomness(&id, &ot).raw(), 0);
        let half = Threshold::from_probability(0.5, 4).unwrap();
        assert!(half.should_sample(Randomness::from_trace_id(&id)));
        assert!(!half.should_sample(trace_randomness(&id, &ot)));
    }
}
