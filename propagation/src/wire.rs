//! Small text rules shared by the three header grammars.

/// Strips the optional white space (spaces and horizontal tabs, RFC 7230 `OWS`) that HTTP
/// allows around a header value and that the W3C grammars allow around list members. Other
/// white space, such as a newline, is not OWS and stays, so it makes the value invalid.
pub(crate) fn trim_ows(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// Shortens input quoted in an error message, so a 300-character key does not flood the
/// conformance view. Cuts on a character boundary, never inside one.
pub(crate) fn excerpt(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
