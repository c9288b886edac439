//! Lesson "broken-propagation": what a request looks like when one service stops passing the
//! trace context on: more traces than requests, fragments rooted at the service that dropped
//! it, and no trace that shows the whole request.

use tracelab_services::semconv::TRACELAB_INJECTED;
use tracelab_trace::Trace;

use super::{Answer, Evidence, Question, since_start, span_breakdown};

/// The service the load generator runs as: a trace rooted there is a request's own trace.
const LOADGEN: &str = "loadgen";

/// Whether `trace` starts at the load generator (a request's own trace, whole or cut short).
fn rooted_at_loadgen(trace: &Trace) -> bool {
    trace
        .root()
        .is_some_and(|r| r.service_name.as_ref() == LOADGEN)
}

/// The questions: traces per request, the service that drops the context, the spans left in a
/// request's own trace once it is dropped.
pub fn broken_propagation(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let window = evidence
        .incidents
        .first()
        .ok_or("the run played no incident: give it a --duration past the incident's start")?;
    let requests = evidence
        .traces
        .iter()
        .filter(|t| rooted_at_loadgen(t))
        .count();
    let fragments: Vec<&Trace> = evidence
        .traces
        .iter()
        .filter(|t| !rooted_at_loadgen(t))
        .collect();
    let example = fragments
        .first()
        .ok_or("no request lost its context: give it a --duration past the incident's start")?;
    let root = example.root().ok_or("the fragment has no single root")?;
    let dropper = root.service_name.to_string();
    let marked = root.attr(TRACELAB_INJECTED).and_then(|v| v.as_str());
    let whole = evidence
        .traces
        .iter()
        .filter(|t| rooted_at_loadgen(t))
        .map(|t| t.spans.len())
        .max()
        .unwrap_or(0);
    // The first request sent once the incident had begun: its own trace is cut short.
    let cut = evidence
        .traces
        .iter()
        .filter(|t| rooted_at_loadgen(t))
        .filter(|t| t.spans.iter().map(|s| s.start_unix_nano).min() >= Some(window.start_unix_nano))
        .min_by_key(|t| t.spans.iter().map(|s| s.start_unix_nano).min())
        .ok_or("no request was sent during the incident")?;
    let cut_start = cut
        .spans
        .iter()
        .map(|s| s.start_unix_nano)
        .min()
        .unwrap_or(0);
    Ok(vec![
        Question {
            prompt: format!(
                "The load sent {requests} requests (traces whose root is `{LOADGEN}`). How many \
                 traces did the run record? (the summary's `traces ... received`)"
            ),
            answer: Answer::Count(evidence.traces.len() as u64),
            explanation: format!(
                "{} traces: the {requests} requests, plus {} fragments that start at a {} span \
                 of another service instead of at `{LOADGEN}`, e.g. {}. Each request sent \
                 during the incident (+{:.1} s to +{:.1} s) became two traces.",
                evidence.traces.len(),
                fragments.len(),
                root.kind.as_str(),
                example.trace_id.to_hex(),
                since_start(evidence, window.start_unix_nano),
                since_start(evidence, window.end_unix_nano)
            ),
        },
        Question {
            prompt: "Which service dropped the trace context (the service of the extra traces' \
                     root span)?"
                .into(),
            answer: Answer::Service(dropper.clone()),
            explanation: format!(
                "The extra trace {} starts at `{dropper}: {}`, a {} span with no parent{}: \
                 `{dropper}` called on without sending `traceparent`, so its callee started a \
                 trace of its own. Spans: {}.",
                example.trace_id.to_hex(),
                root.name,
                root.kind.as_str(),
                match marked {
                    Some(m) => format!(", marked `{TRACELAB_INJECTED}={m}`"),
                    None => String::new(),
                },
                span_breakdown(example)
            ),
        },
        Question {
            prompt: format!(
                "Trace {} is the first request sent after the incident began. How many spans \
                 does it have?",
                cut.trace_id.to_hex()
            ),
            answer: Answer::Count(cut.spans.len() as u64),
            explanation: format!(
                "It started at +{:.1} s and has {} spans ({}); a whole request has {whole}. The \
                 rest of its work is in another trace, and nothing links the two: no trace of \
                 the run shows this request from end to end.",
                since_start(evidence, cut_start),
                cut.spans.len(),
                span_breakdown(cut)
            ),
        },
    ])
}
