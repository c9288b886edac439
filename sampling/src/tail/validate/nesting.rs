//! Which policy types and blocks the Collector (contrib 0.157.0) accepts at each nesting
//! level, and the "did you mean" suggestions for misspelt names.

/// Where a policy sits, which decides the types and blocks the Collector accepts in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Top,
    /// In `and_sub_policy` or `drop_sub_policy`.
    AndOrDrop,
    /// In `composite_sub_policy`.
    Composite,
    /// The `not_sub_policy`.
    Not,
}

impl Level {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Level::Top => "`policies`",
            Level::AndOrDrop => "an `and_sub_policy` or `drop_sub_policy`",
            Level::Composite => "a `composite_sub_policy`",
            Level::Not => "a `not_sub_policy`",
        }
    }

    /// The policy types accepted at this level (contrib 0.157.0). The top level accepts every
    /// type there is.
    pub(crate) fn types(self) -> Vec<&'static str> {
        let mut t = SHARED.to_vec();
        match self {
            Level::Top => t.extend(["and", "not", "drop", "composite"]),
            Level::AndOrDrop => t.push("not"),
            Level::Composite => t.push("and"),
            Level::Not => {}
        }
        t
    }
}

/// The types every nesting level accepts.
pub(crate) const SHARED: &[&str] = &[
    "always_sample",
    "latency",
    "numeric_attribute",
    "probabilistic",
    "status_code",
    "string_attribute",
    "rate_limiting",
    "bytes_limiting",
    "span_count",
    "trace_state",
    "trace_flags",
    "boolean_attribute",
    "ottl_condition",
];

/// The configuration block a type reads, if it has one.
pub(crate) fn block_of(t: &str) -> Option<&str> {
    match t {
        "always_sample" | "trace_flags" => None,
        other => Some(other),
    }
}

/// The closest known word within two edits, for "did you mean".
pub(crate) fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn hint(word: &str, known: &[&str]) -> String {
    suggest(word, known)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}
