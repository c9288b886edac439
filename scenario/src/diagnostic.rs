//! Problems found in a scenario file, each with its place in the file.

use std::fmt;

/// One problem in a scenario, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as the caller gave it to [`crate::parse`].
    pub file: String,
    /// The 1-based line, or 0 when the scenario was not read from a file.
    pub line: usize,
    /// The 1-based column in characters, or 0 when the scenario was not read from a file.
    pub column: usize,
    /// The field path, such as `services.checkout.routes./pay.steps[1].route`; empty for the
    /// document as a whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A scenario built in code has neither file nor position; say only what is wrong.
        if !self.file.is_empty() {
            write!(f, "{}", self.file)?;
            if self.line > 0 {
                write!(f, ":{}:{}", self.line, self.column)?;
            }
            f.write_str(": ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in a scenario, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts by position, keeping the order of discovery for equal positions.
    pub(crate) fn sorted(mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
        Diagnostics(diagnostics)
    }

    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// How many problems there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (a parse error always has at least one).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The candidate closest to `word`, if it is close enough to be a plausible typo: at most
/// one edit per three characters (and always at least one), counting a swap of two
/// neighbouring characters as one edit.
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(word, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Help text for a name that matched nothing: a suggestion when one is close, then the
/// choices (or a note that there are none).
pub(crate) fn did_you_mean(word: &str, what: &str, candidates: &[&str]) -> String {
    let listed = if candidates.is_empty() {
        format!("there are no {what}")
    } else {
        format!("{what}: {}", candidates.join(", "))
    };
    match closest(word, candidates.iter().copied()) {
        Some(suggestion) => format!("did you mean `{suggestion}`? ({listed})"),
        None => listed,
    }
}

/// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of
/// neighbouring characters each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for (i, row) in table.chunks_mut(width).enumerate() {
        row[0] = i;
    }
    for (j, cell) in table.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1)
                .min(table[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = best;
        }
    }
    table[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_swaps_as_one() {
        assert_eq!(edit_distance("/pya", "/pay"), 1);
        assert_eq!(edit_distance("latncy", "latency"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(
            closest("probabilty", ["probability", "repeat"]),
            Some("probability")
        );
        assert_eq!(closest("zzz", ["probability", "repeat"]), None);
    }

    #[test]
    fn display_matches_the_documented_form() {
        let diagnostic = Diagnostic {
            file: "quickstart.yaml".into(),
            line: 12,
            column: 7,
            path: "services.checkout.routes./pay.steps[1].route".into(),
            message: "no route `/pya` in service `payment`".into(),
            help: Some("did you mean `/pay`? (routes: /pay, /refund)".into()),
        };
        assert_eq!(
            diagnostic.to_string(),
            "quickstart.yaml:12:7: services.checkout.routes./pay.steps[1].route: no route `/pya` in \
             service `payment`\n  help: did you mean `/pay`? (routes: /pay, /refund)"
        );
        assert_eq!(
            did_you_mean("/pya", "routes", &["/pay", "/refund"]),
            "did you mean `/pay`? (routes: /pay, /refund)"
        );
    }
}
