//! Lesson "clock-skew": one host's clock runs fast for a while. Its spans land outside their
//! parents and the traces look long, while the parent links, and the requests, are unchanged.

use std::collections::{BTreeMap, HashMap};

use tracelab_trace::{Span, SpanId, Trace};

use super::{Answer, Evidence, Question, since_start};

/// The service the load generator runs as: its spans time each request on its own clock.
const LOADGEN: &str = "loadgen";

/// The children of `trace` that start before their parent or end after it, with that parent.
fn outside_parent(trace: &Trace) -> Vec<(&Span, &Span)> {
    let by_id: HashMap<SpanId, &Span> = trace.spans.iter().map(|s| (s.span_id, s)).collect();
    trace
        .spans
        .iter()
        .filter_map(|child| {
            let parent = by_id.get(&child.parent_span_id?)?;
            (child.start_unix_nano < parent.start_unix_nano
                || child.end_unix_nano > parent.end_unix_nano)
                .then_some((child, *parent))
        })
        .collect()
}

/// How long the load generator's own span of `trace` lasted: what the user waited.
fn user_wait(trace: &Trace) -> Option<u64> {
    let root = trace.root()?;
    (root.service_name.as_ref() == LOADGEN)
        .then(|| root.end_unix_nano.saturating_sub(root.start_unix_nano))
}

fn median(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// The questions: whose clock is off, how many traces show it, by how much, and whether the
/// requests really took longer.
pub fn clock_skew(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let skewed: Vec<(&Trace, Vec<(&Span, &Span)>)> = evidence
        .traces
        .iter()
        .map(|t| (t, outside_parent(t)))
        .filter(|(_, pairs)| !pairs.is_empty())
        .collect();
    let (example, pairs) = skewed
        .first()
        .ok_or("no span lies outside its parent: give the run a --duration past the incident")?;
    let mut by_service: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, pairs) in &skewed {
        for (child, _) in pairs {
            *by_service.entry(child.service_name.as_ref()).or_default() += 1;
        }
    }
    let (service, count) = by_service
        .iter()
        .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
        .map(|(name, n)| (name.to_string(), *n))
        .ok_or("no span lies outside its parent")?;
    let (child, parent) = pairs[0];
    // The shift of each such child against its parent's start; a child on the same clock
    // starts a fraction of a millisecond after its parent.
    let shifts: Vec<i64> = skewed
        .iter()
        .flat_map(|(_, pairs)| pairs.iter())
        .filter(|(c, _)| c.service_name.as_ref() == service)
        .map(|(c, p)| c.start_unix_nano as i64 - p.start_unix_nano as i64)
        .collect();
    let mut sorted = shifts.clone();
    sorted.sort_unstable();
    let shift = sorted[sorted.len() / 2];
    let offset_ms = ((shift.unsigned_abs() as f64 / 1e6) / 100.0).round() as u64 * 100;
    let first = skewed
        .iter()
        .filter_map(|(t, _)| t.spans.iter().map(|s| s.start_unix_nano).min())
        .min()
        .unwrap_or(0);
    let last = skewed
        .iter()
        .filter_map(|(t, _)| t.spans.iter().map(|s| s.start_unix_nano).min())
        .max()
        .unwrap_or(0);
    let skewed_ids: std::collections::HashSet<_> = skewed.iter().map(|(t, _)| t.trace_id).collect();
    let inside = median(skewed.iter().filter_map(|(t, _)| user_wait(t)).collect())
        .ok_or("the skewed traces have no load generator span")?;
    let outside = median(
        evidence
            .traces
            .iter()
            .filter(|t| !skewed_ids.contains(&t.trace_id))
            .filter_map(user_wait)
            .collect(),
    )
    .ok_or("every trace is skewed: give the run a --duration past the incident's end")?;
    let slower = inside as f64 > outside as f64 * 1.5;
    let window = evidence.incidents.first().map_or(String::new(), |w| {
        format!(
            " The run played \"{}\" from +{:.1} s to +{:.1} s.",
            w.what,
            since_start(evidence, w.start_unix_nano),
            since_start(evidence, w.end_unix_nano)
        )
    });
    Ok(vec![
        Question {
            prompt: "Which service's spans stick out of their parent span? (the summary's \
                     \"Spans outside their parent\")"
                .into(),
            answer: Answer::Service(service.clone()),
            explanation: format!(
                "{count} of the {} spans that lie outside their parents are `{service}`'s. In \
                 trace {}, `{}: {}` starts {:+.1} ms from its parent `{}: {}`, which called it \
                 and waited for it: a callee cannot start after its caller has stopped \
                 waiting, so the timestamps, not the calls, are wrong. The parent links still \
                 join the trace.",
                by_service.values().sum::<usize>(),
                example.trace_id.to_hex(),
                child.service_name,
                child.name,
                (child.start_unix_nano as i64 - parent.start_unix_nano as i64) as f64 / 1e6,
                parent.service_name,
                parent.name,
            ),
        },
        Question {
            prompt: "How many traces have a span outside its parent?".into(),
            answer: Answer::Count(skewed.len() as u64),
            explanation: format!(
                "{} of the run's {} traces, the requests sent from +{:.1} s to +{:.1} s: only \
                 while the clock was off.{window}",
                skewed.len(),
                evidence.traces.len(),
                since_start(evidence, first),
                since_start(evidence, last),
            ),
        },
        Question {
            prompt: format!(
                "By how many milliseconds is `{service}`'s clock off, to the nearest 100?"
            ),
            answer: Answer::Count(offset_ms),
            explanation: format!(
                "Its spans start a median {:+.1} ms from their parents' starts, where a callee \
                 on the same clock starts within a millisecond of its caller: the clock is \
                 about {offset_ms} ms {}.",
                shift as f64 / 1e6,
                if shift > 0 { "fast" } else { "slow" }
            ),
        },
        Question {
            prompt: "Did the requests with a skewed span take longer for their users? (yes/no)"
                .into(),
            answer: Answer::Choice {
                right: if slower { "yes" } else { "no" },
                options: &["yes", "no"],
            },
            explanation: format!(
                "The load generator timed them on its own clock: a median {:.1} ms for the \
                 skewed traces against {:.1} ms for the others. {}",
                ms(inside),
                ms(outside),
                if slower {
                    "They were slower, so something besides the clock changed."
                } else {
                    "Only the timestamps moved: a trace that looks a second long because one \
                     host's clock is off is not a slow request. Trust the durations of spans \
                     measured on one clock (each span's own length) over gaps between hosts."
                }
            ),
        },
    ])
}
