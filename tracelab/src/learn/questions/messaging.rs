//! Lesson "queue-lag": work handed to a queue runs later, in a trace of its own, tied to the
//! request that queued it by a span link rather than a parent.

use std::collections::{BTreeMap, HashMap, HashSet};

use tracelab_trace::{Span, SpanId, SpanKind, Trace};

use super::{Answer, Evidence, Question};

/// The service the load generator runs as: a trace rooted there is a request's own trace.
const LOADGEN: &str = "loadgen";

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// The questions: who starts traces of its own, how they are tied to the request, whether the
/// request waited for the queue, and how many messages were still queued at the end.
pub fn queue_lag(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let (requests, others): (Vec<&Trace>, Vec<&Trace>) = evidence
        .traces
        .iter()
        .filter(|t| t.root().is_some())
        .partition(|t| t.root().is_some_and(|r| r.service_name.as_ref() == LOADGEN));
    let mut by_service: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &others {
        if let Some(root) = t.root() {
            *by_service.entry(root.service_name.as_ref()).or_default() += 1;
        }
    }
    let consumer_service = by_service
        .iter()
        .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
        .map(|(name, _)| name.to_string())
        .ok_or("no trace started away from the load generator: give the run a longer --duration")?;
    let consumers: Vec<&Span> = others
        .iter()
        .filter_map(|t| t.root())
        .filter(|r| r.service_name.as_ref() == consumer_service)
        .collect();
    let example = consumers[0];
    // Every PRODUCER span of the requests' traces, by id.
    let producers: HashMap<SpanId, &Span> = requests
        .iter()
        .flat_map(|t| t.spans.iter())
        .filter(|s| s.kind == SpanKind::Producer)
        .map(|s| (s.span_id, s))
        .collect();
    let linked: Vec<(&Span, &Span)> = consumers
        .iter()
        .filter_map(|c| {
            let link = c
                .links
                .iter()
                .find(|l| producers.contains_key(&l.span_id))?;
            Some((*c, producers[&link.span_id]))
        })
        .collect();
    let tie = if example.parent_span_id.is_some() {
        "parent"
    } else if example.links.is_empty() {
        "nothing"
    } else {
        "link"
    };
    let waits: Vec<u64> = linked
        .iter()
        .map(|(c, p)| c.start_unix_nano.saturating_sub(p.end_unix_nano))
        .collect();
    let wait = median(waits).ok_or("no consumer span links to a message of this run")?;
    let request_time = median(
        requests
            .iter()
            .filter_map(|t| t.root())
            .map(|r| r.end_unix_nano.saturating_sub(r.start_unix_nano))
            .collect(),
    )
    .ok_or("the run sent no request")?;
    let consumed: HashSet<SpanId> = linked.iter().map(|(_, p)| p.span_id).collect();
    let queued = producers.len().saturating_sub(consumed.len());
    let linked_to = linked
        .first()
        .map(|(_, p)| {
            format!(
                ", to `{}: {}` in trace {}",
                p.service_name,
                p.name,
                p.trace_id.to_hex()
            )
        })
        .unwrap_or_default();
    Ok(vec![
        Question {
            prompt: "Which service's spans start traces of their own, with no parent? (the \
                     root of the slowest trace)"
                .into(),
            answer: Answer::Service(consumer_service.clone()),
            explanation: format!(
                "{} traces start at `{consumer_service}: {}`, a {} span with no parent, e.g. \
                 trace {}: the consumer takes a message off the queue long after the request \
                 that sent it has been answered, so it does not join that request's trace.",
                consumers.len(),
                example.name,
                example.kind.as_str(),
                example.trace_id.to_hex()
            ),
        },
        Question {
            prompt: "How is such a trace tied to the request that sent the message? \
                     (parent / link / nothing)"
                .into(),
            answer: Answer::Choice {
                right: tie,
                options: &["parent", "link", "nothing"],
            },
            explanation: format!(
                "The root of trace {} has no parent and {} span link(s){linked_to}, the \
                 PRODUCER span that sent the message. A link says \"caused by\" without making \
                 one trace of the two, as OpenTelemetry's messaging conventions advise for a \
                 consumer.",
                example.trace_id.to_hex(),
                example.links.len()
            ),
        },
        Question {
            prompt: "Does a request's latency include the time its message waits in the \
                     queue? (yes/no)"
                .into(),
            answer: Answer::Choice {
                right: if request_time >= wait { "yes" } else { "no" },
                options: &["yes", "no"],
            },
            explanation: format!(
                "A request took a median {:.1} ms; its message waited a median {:.0} ms in the \
                 queue after the PRODUCER span ended before the CONSUMER span started. The \
                 request's latency says nothing of the lag: only the consumer's trace, through \
                 its link, shows it.",
                request_time as f64 / 1e6,
                wait as f64 / 1e6
            ),
        },
        Question {
            prompt: "How many messages sent during the run were not yet processed when it \
                     ended? (compare the service table's `requests` of the two services)"
                .into(),
            answer: Answer::Count(queued as u64),
            explanation: format!(
                "{} PRODUCER spans sent a message; {} consumer traces link to one of them. The \
                 other {queued} were still queued when the load stopped: a trace count taken \
                 per service lags the requests by the queue's lag.",
                producers.len(),
                consumed.len()
            ),
        },
    ])
}
