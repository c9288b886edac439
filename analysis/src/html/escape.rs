//! Escaping for the two contexts the report writes untrusted text into.
//!
//! Span names, attribute values and service names come from whatever produced the spans, so
//! every one of them is escaped: as HTML text or attribute values, and as JSON inside a
//! `<script>` element, where a literal `</script>` would otherwise end the element early.

/// Escapes text for HTML element content and quoted attribute values.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Serialises `value` as JSON safe to place inside `<script type="application/json">`.
///
/// `<`, `>` and `&` can only occur inside JSON strings, where `\u003c` and friends mean the
/// same characters, so replacing them keeps the JSON identical while making `</script>` and
/// `<!--` impossible in the element's text. U+2028/U+2029 are escaped for older JS parsers.
pub fn script_json(value: &serde_json::Value) -> String {
    let raw = value.to_string();
    let mut out = String::with_capacity(raw.len() + raw.len() / 16);
    for ch in raw.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            _ => out.push(ch),
        }
    }
    out
}

/// A stable hue (0..360) for a service name, so one service keeps one colour everywhere.
pub fn hue(name: &str) -> u32 {
    // FNV-1a: tiny, stable across runs and platforms, and spreads similar names apart.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % 360
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = serde_json::json!({"name": "</script><script>alert(1)</script>", "a&b": "<!--"});
        let s = script_json(&v);
        assert!(!s.contains('<') && !s.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v, "escaping keeps the JSON value");
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
