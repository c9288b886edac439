//! The load of the generated scenario, from where the requests entered: the entry routes and
//! their mix (by count), the rate and length of the traffic (first to last entry), whether
//! requests came evenly or at random (the spread of the gaps between them), and the baggage
//! the entry spans carried.

use std::time::Duration;

use indexmap::IndexMap;
use tracelab_scenario::{ArrivalModel, Entry, Load};

use crate::naming::Naming;
use crate::notes::Notes;
use crate::tally::Tallies;

/// Gaps whose coefficient of variation is below this are an even schedule; a Poisson process
/// has 1.
const EVEN: f64 = 0.5;

/// The load, with its comments under `load`.
pub(crate) fn build(tallies: &Tallies, naming: &mut Naming, notes: &mut Notes) -> Load {
    let mut starts = tallies.entry_starts.clone();
    starts.sort_unstable();
    let n = tallies.entries.total();
    let span_ns = match (starts.first(), starts.last()) {
        (Some(first), Some(last)) => last - first,
        _ => 0,
    };
    let (rate, duration) = if n >= 2 && span_ns > 0 {
        let rate = (n - 1) as f64 / (span_ns as f64 / 1e9);
        let rate = crate::fit::round_rate(rate);
        let duration = Duration::from_millis(((n as f64 / rate) * 1000.0).round().max(1.0) as u64);
        (rate, duration)
    } else {
        (1.0, Duration::from_secs(1))
    };
    notes.add(
        "load.rate",
        format!(
            "{n} requests entered over {:.3} s (first to last entry span)",
            span_ns as f64 / 1e9
        ),
    );
    let gaps: Vec<f64> = starts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let arrival = match cv(&gaps) {
        Some(cv) if cv >= EVEN => {
            notes.add(
                "load.arrival",
                format!(
                    "gaps between requests vary (coefficient of variation {cv:.2}): random arrivals"
                ),
            );
            ArrivalModel::Poisson
        }
        Some(cv) => {
            notes.add(
                "load.rate",
                format!("evenly spaced (coefficient of variation of the gaps {cv:.2})"),
            );
            ArrivalModel::Constant
        }
        None => ArrivalModel::Constant,
    };
    let entries: Vec<Entry> = tallies
        .entries
        .0
        .iter()
        .map(|(target, &count)| {
            let (service, route) = naming.target(target);
            Entry {
                service,
                route,
                weight: count as f64,
            }
        })
        .collect();
    if !entries.is_empty() {
        notes.add(
            "load.entries",
            "weights: requests that entered each route".to_owned(),
        );
    }
    let mut baggage = IndexMap::new();
    for (key, values) in &tallies.baggage {
        let name = naming.baggage_key(key);
        let weights: IndexMap<String, f64> = values
            .0
            .iter()
            .map(|(value, &count)| (naming.baggage_value(key, value), count as f64))
            .collect();
        notes.add(
            &format!("load.baggage.{name}"),
            format!("on {} of {n} entry requests", values.total()),
        );
        baggage.insert(name, weights);
    }
    Load {
        rate,
        duration,
        arrival,
        users: None,
        think: None,
        connections: None,
        max_in_flight: None,
        baggage,
        entries,
    }
}

/// The coefficient of variation of the gaps (standard deviation over mean), when there are
/// enough of them to tell.
fn cv(gaps: &[f64]) -> Option<f64> {
    if gaps.len() < 10 {
        return None;
    }
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    if mean <= 0.0 {
        return None;
    }
    let variance = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    Some(variance.sqrt() / mean)
}
