//! Number formatting shared by the text and HTML reports.

/// Nanoseconds as milliseconds with a precision that suits the magnitude: `0 ms`, `0.042 ms`,
/// `4.20 ms`, `42.0 ms`, `420 ms`, `4200 ms`.
pub fn ms(nanos: u64) -> String {
    let v = nanos as f64 / 1e6;
    if nanos == 0 {
        "0 ms".to_string()
    } else if v < 1.0 {
        format!("{v:.3} ms")
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

/// A fraction in 0..=1 as a percentage with one decimal: `12.5 %`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// Cuts `text` to at most `width` characters, ending with `…` when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Pads `text` with spaces on the right to `width` characters.
pub fn pad(text: &str, width: usize) -> String {
    let n = text.chars().count();
    let mut out = text.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_keep_three_significant_digits() {
        assert_eq!(ms(0), "0 ms");
        assert_eq!(ms(42_000), "0.042 ms");
        assert_eq!(ms(4_200_000), "4.20 ms");
        assert_eq!(ms(42_000_000), "42.0 ms");
        assert_eq!(ms(4_200_000_000), "4200 ms");
        assert_eq!(percent(0.125), "12.5 %");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(pad("ab", 4), "ab  ");
    }
}
