//! Questions whose right answers come from the run the learner just watched, never from a
//! table of expected values: a lesson asks what *this* run shows, and explains it with this
//! run's evidence (a trace id, a row of the service table, an incident window).
//!
//! The lessons on context propagation, worker pools, clock skew, queues, sampling and import
//! have files of their own: [`propagation`], [`queueing`], [`clocks`], [`messaging`],
//! [`sampling`] and [`reproduction`].

mod clocks;
mod messaging;
mod propagation;
mod queueing;
mod reproduction;
mod sampling;

pub use clocks::clock_skew;
pub use messaging::queue_lag;
pub use propagation::broken_propagation;
pub use queueing::pool_exhaustion;
pub use reproduction::reproduce;
pub use sampling::{HEAD, TAIL, head_vs_tail};

use std::collections::BTreeMap;

use tracelab_analysis::{Analysis, ErrorOrigin};
use tracelab_loadgen::incidents::IncidentWindow;
use tracelab_trace::{Span, SpanKind, Trace, TraceId};

/// What a finished lesson run offers its questions.
pub struct Evidence<'a> {
    /// The trace analysis (also in `analysis.json`).
    pub analysis: &'a Analysis,
    /// Every trace of the run, ordered by start.
    pub traces: &'a [Trace],
    /// Every incident window (also in `incidents.jsonl`).
    pub incidents: &'a [IncidentWindow],
    /// The lesson's sampling strategies compared on the run (also in `sampling.json`), for a
    /// lesson that has strategies.
    pub sampling: Option<&'a tracelab_sampling::compare::ComparisonReport>,
    /// The analysis of a run of the scenario imported from this run's traces, for a lesson
    /// that reproduces.
    pub reproduction: Option<&'a Analysis>,
}

/// One question with its right answer and the explanation that points at the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// What is asked.
    pub prompt: String,
    /// The right answer.
    pub answer: Answer,
    /// Why it is right, pointing at this run's evidence.
    pub explanation: String,
}

/// The kinds of answer a learner types.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A service name, compared without regard to case.
    Service(String),
    /// A whole number.
    Count(u64),
    /// One word out of a few.
    Choice {
        /// The right one.
        right: &'static str,
        /// Every option, as the prompt lists them.
        options: &'static [&'static str],
    },
}

impl Answer {
    /// Whether `given` (one line a learner typed) is this answer. A choice also takes a prefix
    /// of at least three letters that only one option starts with ("seq" for "sequential").
    pub fn accepts(&self, given: &str) -> bool {
        let given = given.trim().trim_matches('`').to_lowercase();
        match self {
            Answer::Service(name) => given == name.to_lowercase(),
            Answer::Count(n) => given.parse::<u64>().is_ok_and(|g| g == *n),
            Answer::Choice { right, options } => {
                if given == *right {
                    return true;
                }
                let starting: Vec<&&str> = options
                    .iter()
                    .filter(|o| given.len() >= 3 && o.starts_with(given.as_str()))
                    .collect();
                starting.len() == 1 && starting[0] == right
            }
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Service(name) => f.write_str(name),
            Answer::Count(n) => write!(f, "{n}"),
            Answer::Choice { right, .. } => f.write_str(right),
        }
    }
}

/// The trace with this id.
fn trace<'a>(evidence: &Evidence<'a>, id: TraceId) -> Option<&'a Trace> {
    evidence.traces.iter().find(|t| t.trace_id == id)
}

/// "service: name" counts of a trace's spans, as the waterfall labels them, most first.
fn span_breakdown(trace: &Trace) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for span in &trace.spans {
        *counts
            .entry(format!("{}: {}", span.service_name, span.name))
            .or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
        .iter()
        .map(|(label, n)| format!("{n} × {label}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first of `items`, or `missing` as the lesson's error.
fn first<'a, T>(items: &'a [T], missing: &str) -> Result<&'a T, String> {
    items.first().ok_or_else(|| missing.to_owned())
}

/// "`service: operation` is the deepest failing span in N failed trace(s), e.g. ID".
fn deepest_failure(origin: &ErrorOrigin) -> String {
    format!(
        "`{}: {}` is the deepest failing span in {} failed trace(s), e.g. {}",
        origin.service,
        origin.operation,
        origin.traces,
        origin
            .example_trace_ids
            .first()
            .map(|t| t.to_hex())
            .unwrap_or_default()
    )
}

/// Seconds from the run's first span to `unix_nano`.
fn since_start(evidence: &Evidence<'_>, unix_nano: u64) -> f64 {
    unix_nano.saturating_sub(evidence.analysis.overview.first_start_unix_nano) as f64 / 1e9
}

/// Lesson "first-trace": the critical path's owner, the spans of one trace, the service table.
pub fn first_trace(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let analysis = evidence.analysis;
    let leader = first(&analysis.services, "the run produced no spans to rank")?;
    let slowest = first(&analysis.slowest_traces, "the run produced no traces")?;
    let slowest_trace = trace(evidence, slowest.trace_id).ok_or("the slowest trace is missing")?;
    let busiest = analysis
        .services
        .iter()
        .filter(|s| s.service != "loadgen")
        .max_by_key(|s| (s.requests, std::cmp::Reverse(s.service.clone())))
        .ok_or("the run produced no services")?;
    Ok(vec![
        Question {
            prompt: "Which service owns most of the critical path of the slowest requests (p99)?"
                .into(),
            answer: Answer::Service(leader.service.clone()),
            explanation: format!(
                "Row 1 of \"Where the time of slow requests goes\": `{}` holds {:.1} % of the \
                 critical-path time of the slowest requests ({} trace(s) at or above p99). In \
                 the slowest trace, {}, its spans are the long bars: the request waited on them.",
                leader.service,
                leader.critical_share_p99 * 100.0,
                analysis.share_windows.p99_traces,
                slowest.trace_id.to_hex()
            ),
        },
        Question {
            prompt: format!(
                "How many spans does the slowest trace, {}, have? (count the waterfall's rows)",
                slowest.trace_id.to_hex()
            ),
            answer: Answer::Count(slowest.spans),
            explanation: format!(
                "Each row of the waterfall is one span: {}. A call between services makes two \
                 spans, the caller's CLIENT span and the callee's SERVER span under it.",
                span_breakdown(slowest_trace)
            ),
        },
        Question {
            prompt: "Which service handled the most requests? (the table's `requests` column)"
                .into(),
            answer: Answer::Service(busiest.service.clone()),
            explanation: format!(
                "`{}` handled {} requests, the most of any service (the root `loadgen` aside): \
                 one page can call it several times, so it counts more requests than the \
                 {} traces the load sent.",
                busiest.service, busiest.requests, analysis.overview.traces
            ),
        },
    ])
}

/// The parent span with the most CLIENT children of one name, and those children by start.
fn widest_fan_out(trace: &Trace) -> Option<Vec<&Span>> {
    let mut groups: BTreeMap<(Option<[u8; 8]>, &str), Vec<&Span>> = BTreeMap::new();
    for span in trace.spans.iter().filter(|s| s.kind == SpanKind::Client) {
        groups
            .entry((span.parent_span_id.map(|p| p.0), span.name.as_str()))
            .or_default()
            .push(span);
    }
    let mut widest = groups.into_values().max_by_key(|g| g.len())?;
    widest.sort_by_key(|s| s.start_unix_nano);
    Some(widest)
}

/// How many spans hang under `root` in `trace`, `root` included.
fn subtree_size(trace: &Trace, root: &Span) -> usize {
    let mut count = 0;
    let mut stack = vec![root.span_id];
    while let Some(id) = stack.pop() {
        count += 1;
        stack.extend(
            trace
                .spans
                .iter()
                .filter(|s| s.parent_span_id == Some(id))
                .map(|s| s.span_id),
        );
    }
    count
}

/// Lesson "n-plus-one": the span count of one request, sequential calls, and what `repeat`
/// does to the span count.
pub fn n_plus_one(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    // The most common shape: the trace whose span count most traces share.
    let mut by_count: BTreeMap<usize, Vec<&Trace>> = BTreeMap::new();
    for t in evidence.traces.iter().filter(|t| t.shape().is_complete()) {
        by_count.entry(t.spans.len()).or_default().push(t);
    }
    let typical = by_count
        .values()
        .max_by_key(|ts| ts.len())
        .and_then(|ts| ts.first())
        .copied()
        .ok_or("the run produced no complete traces")?;
    let fan = widest_fan_out(typical).ok_or("the trace makes no calls")?;
    let first = fan[0];
    let overlapping = fan
        .windows(2)
        .any(|w| w[1].start_unix_nano < w[0].end_unix_nano);
    let per_item = subtree_size(typical, first);
    let spans = typical.spans.len();
    let more = spans + (20usize.saturating_sub(fan.len())) * per_item;
    let id = typical.trace_id.to_hex();
    Ok(vec![
        Question {
            prompt: format!(
                "How many spans does one `{}` request make? (trace {id} is a typical one)",
                typical.spans.first().map(|s| s.name.as_str()).unwrap_or("")
            ),
            answer: Answer::Count(spans as u64),
            explanation: format!(
                "{} of the run's traces have exactly {spans} spans; trace {id}: {}.",
                by_count[&spans].len(),
                span_breakdown(typical)
            ),
        },
        Question {
            prompt: format!(
                "Are the {} `{}: {}` calls made in parallel or one after the other? \
                 (parallel / sequential)",
                fan.len(),
                first.service_name,
                first.name
            ),
            answer: Answer::Choice {
                right: if overlapping {
                    "parallel"
                } else {
                    "sequential"
                },
                options: &["parallel", "sequential"],
            },
            explanation: if overlapping {
                format!(
                    "In trace {id} some of the {} calls overlap in time: their bars share \
                     columns of the waterfall.",
                    fan.len()
                )
            } else {
                format!(
                    "In trace {id} each of the {} calls starts only after the previous one \
                     ended: the waterfall shows a staircase, and the request's duration is the \
                     sum of theirs.",
                    fan.len()
                )
            },
        },
        Question {
            prompt: format!(
                "With `repeat: 20` instead of {} calls, how many spans would one request make?",
                fan.len()
            ),
            answer: Answer::Count(more as u64),
            explanation: format!(
                "Each call brings {per_item} span(s) (the CLIENT span and everything under it), \
                 so {spans} + ({} × {per_item}) = {more}. An N+1 pattern grows the trace, and the \
                 latency, with N.",
                20usize.saturating_sub(fan.len())
            ),
        },
    ])
}

/// Lesson "error-origins": where failures start, how retries multiply them, when they began.
pub fn error_origins(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let analysis = evidence.analysis;
    let origin = first(
        &analysis.error_origins,
        "no request failed in this run: give it a --duration past the incident",
    )?;
    let failing = first(&analysis.failing_traces, "no failing trace was singled out")?;
    let failing_trace = trace(evidence, failing.trace_id).ok_or("the failing trace is missing")?;
    let origin_calls = failing_trace
        .spans
        .iter()
        .filter(|s| s.service_name.as_ref() == origin.service && s.kind == SpanKind::Server)
        .count();
    // When the first error happened: the end of the earliest failing span. (Not the start of
    // its trace: a request sent a moment before the fault was switched on can meet it on its
    // way down and fail during the incident.)
    let first_failed = evidence
        .traces
        .iter()
        .filter_map(|t| {
            let failed = t
                .spans
                .iter()
                .filter(|s| s.is_error())
                .map(|s| s.end_unix_nano)
                .min()?;
            Some((failed, t.trace_id))
        })
        .min()
        .ok_or("no request failed in this run")?;
    let window = first(
        evidence.incidents,
        "the run played no incident: give it a --duration past the incident's start",
    )?;
    let when = if first_failed.0 < window.start_unix_nano {
        "before"
    } else if first_failed.0 <= window.end_unix_nano {
        "during"
    } else {
        "after"
    };
    Ok(vec![
        Question {
            prompt: "In which service did the failures start?".into(),
            answer: Answer::Service(origin.service.clone()),
            explanation: format!(
                "{}. The spans above it failed only because it did: an error propagates up to \
                 the root, so the origin is the failing span with no failing child.",
                deepest_failure(origin)
            ),
        },
        Question {
            prompt: format!(
                "In the first failing trace shown above, {}, how many times was `{}` called \
                 (its SERVER spans)?",
                failing.trace_id.to_hex(),
                origin.service
            ),
            answer: Answer::Count(origin_calls as u64),
            explanation: format!(
                "The trace has {origin_calls} `{}` SERVER spans: every layer above retries a \
                 failed call, and the retries multiply (attempts × attempts). Its spans: {}.",
                origin.service,
                span_breakdown(failing_trace)
            ),
        },
        Question {
            prompt: format!(
                "Did the errors start before, during or after the incident \"{}\"? \
                 (before / during / after)",
                window.what
            ),
            answer: Answer::Choice {
                right: when,
                options: &["before", "during", "after"],
            },
            explanation: format!(
                "The incident ran from +{:.1} s to +{:.1} s (incidents.jsonl); the first error \
                 of the run, in trace {}, was at +{:.1} s.",
                since_start(evidence, window.start_unix_nano),
                since_start(evidence, window.end_unix_nano),
                first_failed.1.to_hex(),
                since_start(evidence, first_failed.0)
            ),
        },
    ])
}

/// Lesson "cascading-timeout": the slow service is not where the failure starts; the
/// outermost timeout is, and it sets how long a failing request takes.
pub fn cascading_timeout(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let analysis = evidence.analysis;
    let origin = first(
        &analysis.error_origins,
        "no request failed in this run: give it a --duration past the incident",
    )?;
    let slow = first(&analysis.services, "the run produced no spans to rank")?;
    let failing = first(&analysis.failing_traces, "no failing trace was singled out")?;
    let seconds = (failing.duration_ns as f64 / 1e9).round() as u64;
    Ok(vec![
        Question {
            prompt: "Which service owns most of the critical path of the slowest requests (p99)?"
                .into(),
            answer: Answer::Service(slow.service.clone()),
            explanation: format!(
                "Row 1 of the service table: `{}` holds {:.1} % of the critical-path time of the \
                 slowest requests. It is slow, but look at its rows in the failing trace {}: \
                 no ✗.",
                slow.service,
                slow.critical_share_p99 * 100.0,
                failing.trace_id.to_hex()
            ),
        },
        Question {
            prompt: "In which service did the failures start (the deepest ✗)?".into(),
            answer: Answer::Service(origin.service.clone()),
            explanation: format!(
                "{}: a CLIENT span whose timeout fired. The spans below it did not fail, they \
                 were cut short: the caller gave up on them.",
                deepest_failure(origin)
            ),
        },
        Question {
            prompt: format!(
                "How long did the first failing trace, {}, take end to end, in whole seconds?",
                failing.trace_id.to_hex()
            ),
            answer: Answer::Count(seconds),
            explanation: format!(
                "It took {:.3} s: the outermost timeout (`{}`'s) fires first, and the longer \
                 timeouts below it never get to. Timeouts should shrink down the call chain \
                 (a deadline budget), not grow.",
                failing.duration_ns as f64 / 1e9,
                origin.service
            ),
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_accept_what_a_learner_types() {
        let service = Answer::Service("payment".into());
        assert!(service.accepts("Payment\n"));
        assert!(service.accepts(" `payment` "));
        assert!(!service.accepts("pay"));
        let count = Answer::Count(32);
        assert!(count.accepts("32"));
        assert!(!count.accepts("31"));
        assert!(!count.accepts("thirty-two"));
        let choice = Answer::Choice {
            right: "sequential",
            options: &["parallel", "sequential"],
        };
        assert!(choice.accepts("Sequential"));
        assert!(choice.accepts("seq"));
        assert!(!choice.accepts("s"));
        assert!(!choice.accepts("parallel"));
        assert!(!choice.accepts(""));
    }
}
