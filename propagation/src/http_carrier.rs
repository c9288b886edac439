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
    fn invalid_header_values_are_skipped() {
        let mut headers = HeaderMap::new();
        HeaderInjector(&mut headers).set("baggage", "line\nbreak".to_owned());
        HeaderInjector(&mut headers).set("bad header", "v".to_owned());
        assert!(headers.is_empty());
    }
}
