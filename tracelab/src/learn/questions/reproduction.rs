//! Lesson "reproduce": traces turned into a scenario by `tracelab import`, and a run of that
//! scenario set beside the original: does the copy tell the same story?

use tracelab_analysis::Analysis;

use super::{Answer, Evidence, Question};

/// The service the load generator runs as.
const LOADGEN: &str = "loadgen";

/// The service with the largest share of the slow requests' critical path, and that share.
fn leader(analysis: &Analysis) -> Result<(&str, f64), String> {
    analysis
        .services
        .first()
        .map(|s| (s.service.as_str(), s.critical_share_p99))
        .ok_or_else(|| "a run produced no spans to rank".to_string())
}

/// The questions: the slow requests' leader in production and in the copy, and the services
/// the copy has.
pub fn reproduce(evidence: &Evidence<'_>) -> Result<Vec<Question>, String> {
    let copy = evidence
        .reproduction
        .ok_or("the imported scenario was not run")?;
    let (original, original_share) = leader(evidence.analysis)?;
    let (copied, copied_share) = leader(copy)?;
    let services: Vec<&str> = copy
        .services
        .iter()
        .map(|s| s.service.as_str())
        .filter(|s| *s != LOADGEN)
        .collect();
    let original_services = evidence
        .analysis
        .services
        .iter()
        .filter(|s| s.service != LOADGEN)
        .count();
    Ok(vec![
        Question {
            prompt: "In production (the first run), which service owns most of the critical \
                     path of the slowest requests (p99)?"
                .into(),
            answer: Answer::Service(original.to_string()),
            explanation: format!(
                "Row 1 of the first service table: `{original}`, {:.1} % of the slow requests' \
                 critical path.",
                original_share * 100.0
            ),
        },
        Question {
            prompt: "In the reproduction, run from the imported scenario, which service owns \
                     most of it?"
                .into(),
            answer: Answer::Service(copied.to_string()),
            explanation: format!(
                "Row 1 of the reproduction's table: `{copied}`, {:.1} % (production: \
                 `{original}`, {:.1} %). The import fitted each span's own time (its duration \
                 minus its children's) to a distribution, so the service where the slow \
                 requests wait is still the one that waits.",
                copied_share * 100.0,
                original_share * 100.0
            ),
        },
        Question {
            prompt: "How many services, besides `loadgen`, does the reproduction have?".into(),
            answer: Answer::Count(services.len() as u64),
            explanation: format!(
                "{} ({}); production had {original_services}. The import makes a service of \
                 every `service.name` it saw serve a SERVER span; the load generator became \
                 the scenario's `load:` section instead.",
                services.len(),
                services.join(", ")
            ),
        },
    ])
}
