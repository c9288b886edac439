//! Where in the YAML file a column of a string value is: an OTTL condition's parse error is
//! found at a column of the condition's text, and the user needs the line and column of the
//! file, past the quotes and escapes of the YAML scalar that held it.

use serde_saphyr::Spanned;

/// The file position of the `column`-th character (1-based) of a string scalar's value.
/// Plain, single-quoted and double-quoted scalars on one line are mapped exactly; for a
/// block scalar (`|`, `>`) the first content line is used; otherwise, or without the source
/// text, the scalar's own position is returned.
pub(crate) fn locate_in_scalar(
    source: Option<&str>,
    at: &Spanned<String>,
    column: usize,
) -> (u64, u64) {
    let (line, col) = (at.referenced.line(), at.referenced.column());
    let fallback = (line, col);
    let Some(source) = source else {
        return fallback;
    };
    let lines: Vec<&str> = source.lines().collect();
    let Some(text) = usize::try_from(line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|l| lines.get(l))
    else {
        return fallback;
    };
    let chars: Vec<char> = text.chars().collect();
    let start = (col as usize).saturating_sub(1);
    let want = column.saturating_sub(1);
    match chars.get(start) {
        Some('"') => walk(&chars, start + 1, want, double_quoted_escape)
            .map(|c| (line, c as u64 + 1))
            .unwrap_or(fallback),
        Some('\'') => walk(&chars, start + 1, want, |rest| {
            (rest.first() == Some(&'\'') && rest.get(1) == Some(&'\'')).then_some(2)
        })
        .map(|c| (line, c as u64 + 1))
        .unwrap_or(fallback),
        Some('|' | '>') => {
            // The content starts on the next non-empty line, after its indentation.
            let next = lines
                .iter()
                .enumerate()
                .skip(line as usize)
                .find(|(_, l)| !l.trim().is_empty());
            match next {
                Some((i, l)) => {
                    let indent = l.chars().take_while(|c| *c == ' ').count();
                    ((i + 1) as u64, (indent + want + 1) as u64)
                }
                None => fallback,
            }
        }
        Some(_) => {
            if start + want <= chars.len() {
                (line, (start + want + 1) as u64)
            } else {
                fallback
            }
        }
        None => fallback,
    }
}

/// Walks a quoted scalar from `from`, counting value characters until the `want`-th (0-based),
/// and returns its 0-based character index in the line. `escape` says how many source
/// characters an escape at this point spans, if one starts here.
fn walk(
    chars: &[char],
    from: usize,
    want: usize,
    escape: impl Fn(&[char]) -> Option<usize>,
) -> Option<usize> {
    let mut i = from;
    let mut seen = 0;
    while i < chars.len() {
        if seen == want {
            return Some(i);
        }
        i += escape(&chars[i..]).unwrap_or(1);
        seen += 1;
    }
    // The column just past the value (an error at the end of the condition).
    (seen == want).then_some(i)
}

/// The length of a YAML double-quoted escape starting here (`\"`, `\\`, `\n`, `\x41`,
/// `\u00e9`, `\U0001f600`).
fn double_quoted_escape(rest: &[char]) -> Option<usize> {
    if rest.first() != Some(&'\\') {
        return None;
    }
    Some(match rest.get(1) {
        Some('x') => 4,
        Some('u') => 6,
        Some('U') => 10,
        _ => 2,
    })
}
