//! What spans say about themselves, read from the OpenTelemetry semantic conventions (the
//! current names first, then the older ones still common in exports) and from the ground
//! truth tracelab's own services record (`tracelab.*`).
//!
//! Every reader accepts a number written as text, since Zipkin carries every tag as a string.

use tracelab_trace::{AttrValue, Span};

/// The first of `keys` the span has, as text.
pub(crate) fn text<'s>(span: &'s Span, keys: &[&str]) -> Option<&'s str> {
    keys.iter()
        .find_map(|k| span.attr(k).and_then(AttrValue::as_str))
        .filter(|s| !s.trim().is_empty())
}

/// The first of `keys` the span has, as a number.
pub(crate) fn number(span: &Span, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| match span.attr(k)? {
        AttrValue::Str(s) => s.trim().parse().ok(),
        other => other.as_f64(),
    })
}

/// The first of `keys` the span has, as a boolean.
pub(crate) fn flag(span: &Span, keys: &[&str]) -> Option<bool> {
    keys.iter().find_map(|k| match span.attr(k)? {
        AttrValue::Str(s) => s.trim().parse().ok(),
        other => other.as_bool(),
    })
}

/// The route template of a SERVER span.
pub(crate) fn route(span: &Span) -> Option<&str> {
    text(span, &["http.route"])
}

/// The HTTP method of a request.
pub(crate) fn method(span: &Span) -> Option<&str> {
    text(span, &["http.request.method", "http.method"])
}

/// The HTTP status the span answered with or received.
pub(crate) fn status_code(span: &Span) -> Option<u16> {
    let code = number(span, &["http.response.status_code", "http.status_code"])?;
    (100.0..=599.0).contains(&code).then_some(code as u16)
}

/// Whether a failed attempt gave up waiting: `error.type` says `timeout` (tracelab, most
/// HTTP clients) or the status message does.
pub(crate) fn timed_out(span: &Span) -> bool {
    let says = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("timeout") || s.contains("timed out") || s.contains("deadline")
    };
    text(span, &["error.type"]).is_some_and(says) || says(&span.status.message)
}

/// The database system of a CLIENT span, if it is a database call.
pub(crate) fn db_system(span: &Span) -> Option<&str> {
    text(span, &["db.system.name", "db.system"])
}

/// The database operation (`SELECT`, `findAndModify`).
pub(crate) fn db_operation(span: &Span) -> Option<&str> {
    text(span, &["db.operation.name", "db.operation"])
}

/// The table or collection.
pub(crate) fn db_collection(span: &Span) -> Option<&str> {
    text(
        span,
        &[
            "db.collection.name",
            "db.sql.table",
            "db.mongodb.collection",
            "db.cosmosdb.container",
        ],
    )
}

/// The query text.
pub(crate) fn db_query(span: &Span) -> Option<&str> {
    text(span, &["db.query.text", "db.statement"])
}

/// The queue or topic of a PRODUCER or CONSUMER span.
pub(crate) fn destination(span: &Span) -> Option<&str> {
    text(
        span,
        &["messaging.destination.name", "messaging.destination"],
    )
}

/// The service a CLIENT span called, when the callee recorded no span of its own.
pub(crate) fn peer(span: &Span) -> Option<&str> {
    text(span, &["peer.service", "server.address", "net.peer.name"])
}

/// The path a CLIENT span called, when the callee recorded no span of its own.
pub(crate) fn called_path(span: &Span) -> Option<&str> {
    text(
        span,
        &["url.template", "http.route", "url.path", "http.target"],
    )
}

/// Time a step waited for a lock before its work, in milliseconds (tracelab's services).
pub(crate) fn lock_wait_ms(span: &Span) -> Option<f64> {
    number(span, &["tracelab.lock.wait_ms"])
}

/// Whether a cache lookup hit (tracelab's services).
pub(crate) fn cache_hit(span: &Span) -> Option<bool> {
    flag(span, &["tracelab.cache.hit"])
}

/// Whether local work burned CPU (tracelab's services).
pub(crate) fn cpu(span: &Span) -> bool {
    flag(span, &["tracelab.work.cpu"]).unwrap_or(false)
}

/// The worker pool limit of a `worker pool wait` span (tracelab's services).
pub(crate) fn pool_limit(span: &Span) -> Option<u32> {
    number(span, &["tracelab.pool.limit"])
        .filter(|n| *n >= 1.0 && *n <= f64::from(u32::MAX))
        .map(|n| n as u32)
}

/// The name of the cache a lookup span reads: tracelab names them `cache.get <name>`.
pub(crate) fn cache_name(span: &Span) -> Option<&str> {
    match span.name.strip_prefix("cache.get ") {
        Some(name) if !name.trim().is_empty() => Some(name.trim()),
        _ => cache_hit(span).map(|_| span.name.as_str()),
    }
}

/// Baggage the services copied onto a SERVER span (`baggage.<key>`), the request's own
/// `synthetic_request` mark left out.
pub(crate) fn baggage(span: &Span) -> impl Iterator<Item = (&str, &str)> {
    span.attributes.iter().filter_map(|a| {
        let key = a.key.strip_prefix("baggage.")?;
        let value = a.value.as_str()?;
        (key != "synthetic_request" && !key.is_empty()).then_some((key, value))
    })
}
