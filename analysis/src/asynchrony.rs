//! Which spans their parent does not wait for.
//!
//! A parent/child link says that the child was caused by the parent, not that the parent waited
//! for it. OpenTelemetry records the difference in three ways, and a critical path that ignores
//! them blames a producer's time on a consumer that ran while the producer went on working:
//!
//! - **PRODUCER → CONSUMER.** The specification's span kinds: a CONSUMER span "describes a child
//!   of an asynchronous PRODUCER request". The producer hands the message over and carries on;
//!   whatever the consumer does blocks nothing of the producer.
//! - **Follows-from.** OpenTracing's `FollowsFrom` reference, "the parent does not depend in any
//!   way on the result of the child", survives in OpenTelemetry as a link: the OpenTracing shim
//!   links a span to each span it references, with the attribute `opentracing.ref_type` set to
//!   `follows_from` (or `child_of`). A child linked to its own parent that way is asynchronous.
//! - **A link instead of a parent.** Work started later on behalf of a span (a batch, a
//!   scheduled retry, a message processed in the same trace) may begin a new root that links to
//!   the span that caused it. Such a root continues the request; it is not the request itself,
//!   so the critical path never starts from it.

use tracelab_trace::{Span, SpanId, SpanKind};

/// The link attribute the OpenTracing shim sets to the reference type.
pub const OPENTRACING_REF_TYPE: &str = "opentracing.ref_type";

/// Its value for a reference the parent does not wait for.
pub const FOLLOWS_FROM: &str = "follows_from";

/// True when `parent` waits for `child`: neither a CONSUMER under a PRODUCER nor a child that
/// links to its parent as `follows_from`.
pub fn waits_for(parent: &Span, child: &Span) -> bool {
    if parent.kind == SpanKind::Producer && child.kind == SpanKind::Consumer {
        return false;
    }
    !child.links.iter().any(|link| {
        link.trace_id == child.trace_id
            && link.span_id == parent.span_id
            && link
                .attributes
                .iter()
                .any(|a| a.key == OPENTRACING_REF_TYPE && a.value.as_str() == Some(FOLLOWS_FROM))
    })
}

/// True when `span` has no parent but links to another span of its own trace (`in_trace` says
/// which span ids the trace holds): work started on that span's behalf, not a request of its
/// own.
pub fn continues_trace(span: &Span, in_trace: impl Fn(&SpanId) -> bool) -> bool {
    span.parent_span_id.is_none()
        && span.links.iter().any(|l| {
            l.trace_id == span.trace_id && l.span_id != span.span_id && in_trace(&l.span_id)
        })
}
