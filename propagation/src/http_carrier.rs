//! Adapters between [`http::HeaderMap`] and OpenTelemetry's [`Extractor`] / [`Injector`], used
//! by the services (incoming requests, outgoing calls) and by the load generator.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

/// Stands in for a header value that is not UTF-8. Keeping a placeholder rather than skipping
/// the value matters: a second, garbled `traceparent` must still count as a second header.
const NOT_UTF8: &str = "\u{fffd}";

/// Reads propagation headers from a request's [`HeaderMap`].
///
/// Implements [`Extractor::get_all`] over [`HeaderMap::get_all`], so repeated headers reach
/// the propagators: several `tracestate` or `baggage` headers are combined, several
/// `traceparent` headers invalidate the trace context.
#[derive(Clone, Copy, Debug)]
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    /// The first value of `key`. Prefer [`Extractor::get_all`]; this exists for propagators
    /// that only read one value.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(header_text)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self.0.get_all(key).iter().map(header_text).collect();
        if values.is_empty() {
            None
        } else {
            Some(values)
        }
    }
}

fn header_text(value: &HeaderValue) -> &str {
    std::str::from_utf8(value.as_bytes()).unwrap_or(NOT_UTF8)
}

/// Writes propagation headers into an outgoing request's [`HeaderMap`].
///
/// Each `set` replaces every earlier value of that header, so injecting twice (say, once per
/// retry) never produces the repeated `traceparent` that receivers must reject. A key or
/// value that is not a valid HTTP header is skipped rather than panicking; the propagators
/// in this crate never produce one.
#[derive(Debug)]
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let (Ok(name), Ok(value)) = (header_name(key), HeaderValue::from_str(&value)) else {
            return;
        };
        self.0.insert(name, value);
    }

    fn reserve(&mut self, additional: usize) {
        self.0.reserve(additional);
    }
}

/// Writes propagation headers as request head lines (`name: value\r\n`) into a buffer that
/// becomes the head of an HTTP/1.1 request, sparing a `HeaderMap` and a copy of each value.
///
/// A name that is not a token or a value with anything but visible ASCII, space and tab is
/// skipped, as [`HeaderInjector`] skips what is not a valid header; the W3C propagators never
/// produce either. Unlike [`HeaderInjector`] a second `set` of a key adds a second line: the
/// head is written afresh for every request, and each propagator sets its keys once.
#[derive(Debug)]
pub struct LineInjector<'a>(pub &'a mut Vec<u8>);

impl Injector for LineInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.line(key, value.as_bytes());
    }
}

impl LineInjector<'_> {
    /// Writes one `key: value` line; `false` (and nothing written) when `key` is not a token or
    /// `value` holds a control character or a byte beyond ASCII.
    pub fn line(&mut self, key: &str, value: &[u8]) -> bool {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let visible = |b: &u8| *b == b'\t' || (0x20..0x7f).contains(b);
        if key.is_empty() || !key.bytes().all(token) || !value.iter().all(visible) {
            return false;
        }
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value);
        self.0.extend_from_slice(b"\r\n");
        true
    }
}

/// The header called `key`. The names the W3C propagators write are made from static strings:
/// `HeaderName::from_bytes` copies every name that is not one of HTTP's standard headers, and
/// these are written on every outgoing call.
fn header_name(key: &str) -> Result<HeaderName, http::header::InvalidHeaderName> {
    const STATIC: [&str; 3] = ["traceparent", "tracestate", "baggage"];
    match STATIC.iter().find(|name| **name == key) {
        Some(name) => Ok(HeaderName::from_static(name)),
        None => HeaderName::from_bytes(key.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_all_returns_every_value_in_order() {
        let mut headers = HeaderMap::new();
        headers.append("tracestate", HeaderValue::from_static("a=1"));
        headers.append("tracestate", HeaderValue::from_static("b=2"));
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get_all("tracestate"), Some(vec!["a=1", "b=2"]));
        assert_eq!(extractor.get("tracestate"), Some("a=1"));
        assert_eq!(extractor.get_all("traceparent"), None);
    }

    #[test]
    fn non_utf8_values_are_counted_not_skipped() {
        let mut headers = HeaderMap::new();
        headers.append("traceparent", HeaderValue::from_static("x"));
        let garbled = HeaderValue::from_bytes(&[0xff, 0xfe]).expect("obs-text is allowed");
        headers.append("traceparent", garbled);
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get_all("traceparent"), Some(vec!["x", NOT_UTF8]));
    }

    #[test]
    fn keys_are_listed() {
        let mut headers = HeaderMap::new();
        headers.insert("baggage", HeaderValue::from_static("a=1"));
        assert_eq!(HeaderExtractor(&headers).keys(), ["baggage"]);
    }

    #[test]
    fn set_replaces_earlier_values() {
        let mut headers = HeaderMap::new();
        headers.append("traceparent", HeaderValue::from_static("old-1"));
        headers.append("traceparent", HeaderValue::from_static("old-2"));
        HeaderInjector(&mut headers).set("traceparent", "new".to_owned());
        let values: Vec<_> = headers.get_all("traceparent").iter().collect();
        assert_eq!(values, ["new"]);
    }

    #[test]
    fn propagation_headers_get_the_names_any_other_spelling_would() {
        for key in ["traceparent", "tracestate", "baggage", "x-custom"] {
            let name = header_name(key).expect("a valid name");
            assert_eq!(name, HeaderName::from_bytes(key.as_bytes()).expect("valid"));
            assert_eq!(name.as_str(), key);
        }
        assert!(header_name("Traceparent ").is_err());
    }

    #[test]
    fn lines_are_what_the_map_would_have_sent() {
        let mut head = Vec::new();
        let mut lines = LineInjector(&mut head);
        lines.set("traceparent", "00-ab-cd-01".to_owned());
        lines.set("baggage", "k=v%20w;p".to_owned());
        assert!(!lines.line("bad header", b"v"), "not a token");
        assert!(!lines.line("x", b"line\nbreak"), "a control character");
        assert!(!lines.line("x", "é".as_bytes()), "beyond ASCII");
        assert!(!lines.line("", b"v"), "no name");
        assert!(lines.line("host", b"127.0.0.1:80"));
        assert_eq!(
            String::from_utf8(head).expect("ASCII"),
            "traceparent: 00-ab-cd-01\r\nbaggage: k=v%20w;p\r\nhost: 127.0.0.1:80\r\n"
        );
    }

    #[test]
    fn invalid_header_values_are_skipped() {
        let mut headers = HeaderMap::new();
        HeaderInjector(&mut headers).set("baggage", "line\nbreak".to_owned());
        HeaderInjector(&mut headers).set("bad header", "v".to_owned());
        assert!(headers.is_empty());
    }
}
