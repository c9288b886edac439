//! Paths and enums of the `span` and `spanevent` contexts, resolved while parsing.

use super::OttlContext;
use super::ast::Field;

/// The enums of the span and span event contexts.
pub(crate) const ENUMS: &[(&str, i64)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
    ("STATUS_CODE_UNSET", 0),
    ("STATUS_CODE_OK", 1),
    ("STATUS_CODE_ERROR", 2),
];

/// Resolves the dotted segments of a path in a context: `span.`/`spanevent.` prefixes name
/// the context explicitly, bare names mean the context's own object.
pub(crate) fn resolve(segments: &[String], ctx: OttlContext) -> Result<Field, String> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let shown = parts.join(".");
    let common = match parts.as_slice() {
        ["resource", "attributes"] => Some(Field::ResourceAttributes),
        ["instrumentation_scope" | "scope", "name"] => Some(Field::ScopeName),
        _ => None,
    };
    if let Some(f) = common {
        return Ok(f);
    }
    let span = |rest: &[&str]| -> Option<Field> {
        Some(match rest {
            ["name"] => Field::Name,
            ["kind"] => Field::Kind,
            ["kind", "string"] => Field::KindString,
            ["status", "code"] => Field::StatusCode,
            ["status", "message"] => Field::StatusMessage,
            ["attributes"] => Field::Attributes,
            ["trace_id"] => Field::TraceId,
            ["trace_id", "string"] => Field::TraceIdString,
            ["span_id"] => Field::SpanId,
            ["span_id", "string"] => Field::SpanIdString,
            ["parent_span_id"] => Field::ParentSpanId,
            ["parent_span_id", "string"] => Field::ParentSpanIdString,
            ["trace_state"] => Field::TraceState,
            ["start_time_unix_nano"] => Field::StartTime,
            ["end_time_unix_nano"] => Field::EndTime,
            _ => return None,
        })
    };
    let event = |rest: &[&str]| -> Option<Field> {
        Some(match rest {
            ["name"] => Field::EventName,
            ["attributes"] => Field::EventAttributes,
            ["time_unix_nano"] => Field::EventTime,
            _ => return None,
        })
    };
    let found = match (ctx, parts.as_slice()) {
        (_, ["span", rest @ ..]) => span(rest),
        (OttlContext::Span, ["spanevent", ..]) => {
            return Err(format!(
                "path `{shown}` reads a span event, which only `spanevent` conditions can"
            ));
        }
        (OttlContext::SpanEvent, ["spanevent", rest @ ..]) => event(rest),
        (OttlContext::Span, rest) => span(rest),
        (OttlContext::SpanEvent, rest) => event(rest),
    };
    found.ok_or_else(|| {
        let known = match ctx {
            OttlContext::Span => {
                "name, kind, kind.string, status.code, status.message, attributes[\"k\"], trace_id, span_id, parent_span_id (and their .string), trace_state, start_time_unix_nano, end_time_unix_nano, resource.attributes[\"k\"], instrumentation_scope.name"
            }
            OttlContext::SpanEvent => {
                "name, attributes[\"k\"], time_unix_nano, span.<any span path>, resource.attributes[\"k\"], instrumentation_scope.name"
            }
        };
        format!(
            "unknown path `{shown}` in the {} context; tracelab reads {known}",
            ctx.name()
        )
    })
}
