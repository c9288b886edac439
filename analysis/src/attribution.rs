//! Error attribution: which span most likely started a trace's failure.
//!
//! An error usually surfaces several times in one trace: the database call fails, the service
//! that made it answers 500, and every caller up the chain marks its own span failed too.
//! Counting all of them would blame the front door for every outage. The likely origin is the
//! deepest failing span none of whose children failed: below it the trace shows no failure.

use serde::Serialize;
use tracelab_trace::{SpanId, Trace};

use crate::tree::SpanTree;

/// How often one operation was the origin of a trace's failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorOrigin {
    /// Service of the originating span.
    pub service: String,
    /// Name of the originating span.
    pub operation: String,
    /// Failed traces whose likely origin this operation was.
    pub traces: u64,
    /// A few of those traces, to open in a waterfall.
    pub example_trace_ids: Vec<tracelab_trace::TraceId>,
    /// When the service ran more than one instance: those traces by the instance the origin
    /// ran on, most first; empty otherwise.
    pub instances: Vec<OriginInstance>,
}

/// The failed traces of one error origin that started on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginInstance {
    /// `service.instance.id` of the originating spans; empty when they had none.
    pub instance: String,
    /// `service.version` of that instance; empty when it had none.
    pub version: String,
    /// Failed traces whose likely origin ran on it.
    pub traces: u64,
}

/// The origin found in one trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OriginSpan {
    /// The originating span.
    pub span_id: SpanId,
    /// Its service.
    pub service: String,
    /// Its name.
    pub operation: String,
    /// `service.instance.id` of its resource: which instance of the service it ran on
    /// (empty when the resource has none).
    pub instance: String,
    /// Its status message, when the producer gave one.
    pub message: String,
}

/// The index of the likely origin of `trace`'s failure, or `None` when no span failed.
///
/// Candidates are failing spans with no failing child. The deepest wins; among equally deep
/// ones the one that ended first, since a failure has to finish before it can propagate.
pub fn error_origin_index(trace: &Trace, tree: &SpanTree) -> Option<usize> {
    let spans = &trace.spans;
    let mut best: Option<(usize, usize)> = None;
    for (i, s) in spans.iter().enumerate() {
        if !s.is_error() || tree.children[i].iter().any(|&c| spans[c].is_error()) {
            continue;
        }
        let depth = tree.depth[i].unwrap_or(0);
        let better = match best {
            None => true,
            Some((b, bd)) => {
                depth > bd || (depth == bd && spans[i].end_unix_nano < spans[b].end_unix_nano)
            }
        };
        if better {
            best = Some((i, depth));
        }
    }
    best.map(|(i, _)| i)
}

/// The likely origin of `trace`'s failure as a description.
pub fn error_origin(trace: &Trace) -> Option<OriginSpan> {
    let tree = SpanTree::new(trace);
    error_origin_index(trace, &tree).map(|i| origin_span(trace, i))
}

pub(crate) fn origin_span(trace: &Trace, index: usize) -> OriginSpan {
    let s = &trace.spans[index];
    OriginSpan {
        span_id: s.span_id,
        service: s.service_name.to_string(),
        operation: s.name.clone(),
        instance: crate::instances::resource_str(s, crate::instances::INSTANCE_ID).to_owned(),
        message: s.status.message.clone(),
    }
}
