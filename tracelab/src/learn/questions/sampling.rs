//! Lesson "head-vs-tail": the same traces under head sampling (decided at the root, before
//! anything is known) and tail sampling (decided once the trace is whole): which keeps the
//! errors, and at what volume.

use tracelab_sampling::compare::{ComparisonReport, StrategyReport};

use super::{Answer, Evidence, Question};

/// The head strategy of the lesson's strategies file.
pub const HEAD: &str = "head-10pct";
/// The tail strategy of the lesson's strategies file.
pub const TAIL: &str = "tail-errors";

fn strategy<'a>(
    comparison: &'a ComparisonReport,
    name: &str,
) -> Result<&'a StrategyReport, String> {
    comparison
        .strategies
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("the comparison has no strategy `{name}`"))
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The questions: the errors head sampling kept, the strategy that kept the incident, and what
/// keeping every error cost in volume.
pub fn head_vs_tail(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let comparison = evidence
        .sampling
        .ok_or("the lesson's strategies were not compared")?;
    let run = &comparison.run;
    if run.error_traces == 0 {
        return Err("no request failed: give the run a --duration past the incident".into());
    }
    let head = strategy(comparison, HEAD)?;
    let tail = strategy(comparison, TAIL)?;
    let incident_winner = if tail.incident.kept > head.incident.kept {
        TAIL
    } else {
        HEAD
    };
    let most_bytes = if tail.bytes_kept_fraction > 0.5 {
        "yes"
    } else {
        "no"
    };
    Ok(vec![
        Question {
            prompt: format!(
                "The run had {} error traces. How many did `{HEAD}` keep? (the table's error \
                 recall, or count)",
                run.error_traces
            ),
            answer: Answer::Count(head.errors.kept),
            explanation: format!(
                "{} of {} ({:.1} %): a head sampler decides at the root, before anything has \
                 failed, from the trace id alone, so an error trace is kept no more often than \
                 any other: 10 % on average. It kept {} traces in all ({:.1} %).",
                head.errors.kept,
                run.error_traces,
                percent(head.errors.kept, run.error_traces),
                head.traces_kept,
                head.traces_kept_fraction * 100.0
            ),
        },
        Question {
            prompt: format!(
                "Which strategy kept more of the traces sent during the incident? ({HEAD} / \
                 {TAIL})"
            ),
            answer: Answer::Choice {
                right: incident_winner,
                options: &[HEAD, TAIL],
            },
            explanation: format!(
                "Of the {} traces that overlap the incident window, `{TAIL}` kept {} and \
                 `{HEAD}` {}. A tail sampler waits for the whole trace (its `decision_wait`), \
                 so its `status_code` policy sees the error and keeps it.",
                run.incident_traces, tail.incident.kept, head.incident.kept
            ),
        },
        Question {
            prompt: format!(
                "Did `{TAIL}` keep more than half of the run's bytes? (yes/no) (the table's \
                 `MB kept`)"
            ),
            answer: Answer::Choice {
                right: most_bytes,
                options: &["yes", "no"],
            },
            explanation: format!(
                "{:.1} % of the bytes for {:.1} % of the traces: error traces are the big ones \
                 here (every retry adds spans), so keeping every error costs more than its \
                 share of traces. `{HEAD}` kept {:.1} % of the bytes. Tail sampling buys \
                 recall with a buffer of whole traces (memory, `decision_wait` of delay) and \
                 with the volume of what it keeps.",
                tail.bytes_kept_fraction * 100.0,
                tail.traces_kept_fraction * 100.0,
                head.bytes_kept_fraction * 100.0
            ),
        },
    ])
}
