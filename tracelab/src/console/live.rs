//! Live figures of a running lab, from the spans as the receiver writes them to the run's span
//! file: per service (its SERVER spans, the calls it received) and per entry (the root spans,
//! the requests the load generator sent), the rate, failures and latency of the last
//! [`WINDOW_S`] whole seconds and the one now running; and per second, the requests' count, failures, p50 and p99 for
//! the latency-over-time chart; per call edge (a CLIENT span's service and its `peer.service`),
//! the same figures, for the service graph.
//!
//! A span counts in the second it ended. The second now running counts for the part of it that
//! has passed, so a fault switched on shows within a second or two; spans still in an export
//! batch make its rate read a little low (tens of milliseconds of a window of three seconds and
//! more), not its failure share or latency. The chart stops at the last whole second.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use tracelab_trace::{Span, SpanKind};

/// Seconds the per-service and per-entry figures cover.
pub const WINDOW_S: u64 = 3;

/// Seconds of the latency-over-time chart, and of history kept per service.
pub const HISTORY_S: u64 = 300;

/// Durations kept per second and key; beyond, a second still counts its spans and failures
/// and takes its percentiles from the first ones.
const SAMPLES_PER_SECOND: usize = 20_000;

/// One second of one service or entry.
#[derive(Debug, Default)]
struct Second {
    count: u64,
    errors: u64,
    /// Durations, microseconds.
    micros: Vec<u32>,
}

/// The seconds of one service or entry, oldest first.
#[derive(Debug, Default)]
struct Series {
    seconds: VecDeque<(u64, Second)>,
    count: u64,
    errors: u64,
}

impl Series {
    fn record(&mut self, second: u64, micros: u32, error: bool, per_second: bool) {
        self.count += 1;
        self.errors += u64::from(error);
        if !per_second {
            return;
        }
        // Spans arrive nearly in order: look from the newest second back.
        let at = self
            .seconds
            .iter()
            .rposition(|(s, _)| *s <= second)
            .map_or(0, |i| i + 1);
        if at == 0 || self.seconds[at - 1].0 != second {
            if let Some((newest, _)) = self.seconds.back()
                && second + HISTORY_S < *newest
            {
                return; // older than anything kept
            }
            self.seconds.insert(at, (second, Second::default()));
            while let (Some((oldest, _)), Some((newest, _))) =
                (self.seconds.front(), self.seconds.back())
                && oldest + HISTORY_S < *newest
            {
                self.seconds.pop_front();
            }
        }
        let index = self
            .seconds
            .iter()
            .rposition(|(s, _)| *s == second)
            .expect("inserted above");
        let bucket = &mut self.seconds[index].1;
        bucket.count += 1;
        bucket.errors += u64::from(error);
        if bucket.micros.len() < SAMPLES_PER_SECOND {
            bucket.micros.push(micros);
        }
    }

    /// The figures of seconds `from..to`.
    /// The figures of seconds `from..=to`, which cover `seconds` of time.
    fn figures(&self, name: &str, from: u64, to: u64, seconds: f64) -> Figures {
        let mut count = 0;
        let mut errors = 0;
        let mut micros = Vec::new();
        for (_, s) in self.seconds.iter().filter(|(s, _)| (from..=to).contains(s)) {
            count += s.count;
            errors += s.errors;
            micros.extend_from_slice(&s.micros);
        }
        let seconds = seconds.max(1e-3);
        let (p50_ms, p99_ms) = percentiles(&mut micros);
        Figures {
            name: name.to_string(),
            rate: count as f64 / seconds,
            errors,
            error_rate: if count == 0 {
                0.0
            } else {
                errors as f64 / count as f64
            },
            p50_ms,
            p99_ms,
            total: self.count,
            total_errors: self.errors,
        }
    }
}

fn percentiles(micros: &mut [u32]) -> (Option<f64>, Option<f64>) {
    if micros.is_empty() {
        return (None, None);
    }
    micros.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
        f64::from(micros[rank - 1]) / 1e3
    };
    (Some(at(0.5)), Some(at(0.99)))
}

/// The figures of one service or entry over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// The service, or the entry (`service operation` of the root span).
    pub name: String,
    /// Per second, over the window.
    pub rate: f64,
    /// Failed in the window.
    pub errors: u64,
    /// Failed ÷ all, in the window (0..=1).
    pub error_rate: f64,
    /// Median duration in the window, milliseconds; `None` without a span.
    pub p50_ms: Option<f64>,
    /// 99th percentile in the window, milliseconds.
    pub p99_ms: Option<f64>,
    /// Since the start.
    pub total: u64,
    /// Failed since the start.
    pub total_errors: u64,
}

/// The calls from one service to another: a CLIENT span of the caller naming the callee in
/// `peer.service`, as the services of the lab (and most instrumented clients) record it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeFigures {
    /// The calling service.
    pub caller: String,
    /// The called service.
    pub callee: String,
    /// Its figures (name `caller → callee`); latency is the caller's wait.
    #[serde(flatten)]
    pub figures: Figures,
}

/// One second of the requests, for the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecondFigures {
    /// The second, Unix time.
    pub second: u64,
    /// Requests that ended in it.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Their median duration, milliseconds.
    pub p50_ms: Option<f64>,
    /// Their 99th percentile, milliseconds.
    pub p99_ms: Option<f64>,
}

/// What the page shows, at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The window's seconds, Unix time: `from..=to`, the last one the second now running.
    pub window: (u64, u64),
    /// Per service, by name.
    pub services: Vec<Figures>,
    /// Per entry (root span), by name.
    pub entries: Vec<Figures>,
    /// Per call edge, by caller then callee.
    pub edges: Vec<EdgeFigures>,
    /// The requests per second, oldest first, up to [`HISTORY_S`] seconds.
    pub timeline: Vec<SecondFigures>,
}

/// The live figures of one run.
#[derive(Debug, Default)]
pub struct LiveStats {
    services: BTreeMap<String, Series>,
    /// By `service operation` of the root span.
    entries: BTreeMap<String, Series>,
    /// By `caller` [`EDGE_SEPARATOR`] `callee`.
    edges: BTreeMap<String, Series>,
    /// The chart's seconds already computed, for those no span is expected for any more.
    settled: BTreeMap<u64, SecondFigures>,
    /// The key being looked up, reused so that a span's lookup does not allocate.
    key: String,
    /// Counts only, no seconds: a finished run's totals.
    totals_only: bool,
}

/// Joins an edge's caller and callee into one key (a unit separator: in no service name).
const EDGE_SEPARATOR: char = '\u{1f}';

/// A second of the chart is computed once it is this many seconds old: its requests have
/// reached the receiver by then (a later one recomputes it).
const SETTLE_S: u64 = 3;

/// The series under `key`, made on first use; the key is copied only then.
fn series<'a>(map: &'a mut BTreeMap<String, Series>, key: &str) -> &'a mut Series {
    if !map.contains_key(key) {
        map.insert(key.to_string(), Series::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl LiveStats {
    /// Tallies that keep only the counts of calls and failures, for a finished run, whose
    /// seconds the page does not show.
    pub fn totals_only() -> Self {
        LiveStats {
            totals_only: true,
            ..Self::default()
        }
    }

    /// Counts the spans of one line of the span file.
    pub fn record(&mut self, spans: &[Span]) {
        use std::fmt::Write as _;
        for span in spans {
            let second = span.end_unix_nano / 1_000_000_000;
            let micros = u32::try_from(span.duration_nanos() / 1_000).unwrap_or(u32::MAX);
            let error = span.is_error();
            if span.kind == SpanKind::Server {
                series(&mut self.services, &span.service_name).record(
                    second,
                    micros,
                    error,
                    !self.totals_only,
                );
            }
            if span.kind == SpanKind::Client
                && let Some(callee) = span.attr("peer.service").and_then(|v| v.as_str())
            {
                self.key.clear();
                let _ = write!(self.key, "{}{EDGE_SEPARATOR}{callee}", span.service_name);
                series(&mut self.edges, &self.key).record(second, micros, error, !self.totals_only);
            }
            if span.is_root() {
                self.key.clear();
                let _ = write!(self.key, "{} {}", span.service_name, span.name);
                series(&mut self.entries, &self.key).record(
                    second,
                    micros,
                    error,
                    !self.totals_only,
                );
                self.settled.remove(&second);
            }
        }
    }

    /// The figures of the last [`WINDOW_S`] whole seconds and the part of the current one
    /// that has passed at `now_unix_nano`.
    pub fn snapshot(&mut self, now_unix_nano: u64) -> Snapshot {
        let to = now_unix_nano / 1_000_000_000;
        let from = to.saturating_sub(WINDOW_S);
        let covered = (to - from) as f64 + (now_unix_nano % 1_000_000_000) as f64 / 1e9;
        let figures = |series: &BTreeMap<String, Series>| {
            series
                .iter()
                .map(|(name, s)| s.figures(name, from, to, covered))
                .collect()
        };
        // The chart: every request, whichever entry it came in by; a settled second is
        // computed once.
        let oldest = to.saturating_sub(HISTORY_S);
        self.settled.retain(|second, _| *second >= oldest);
        let mut fresh: BTreeMap<u64, (u64, u64, Vec<u32>)> = BTreeMap::new();
        let mut timeline_tail = Vec::new();
        for series in self.entries.values() {
            for (second, s) in series.seconds.iter().filter(|(second, _)| {
                (oldest..to).contains(second) && !self.settled.contains_key(second)
            }) {
                let merged = fresh.entry(*second).or_default();
                merged.0 += s.count;
                merged.1 += s.errors;
                merged.2.extend_from_slice(&s.micros);
            }
        }
        for (second, (requests, errors, mut micros)) in fresh {
            let (p50_ms, p99_ms) = percentiles(&mut micros);
            let figures = SecondFigures {
                second,
                requests,
                errors,
                p50_ms,
                p99_ms,
            };
            if second + SETTLE_S < to {
                self.settled.insert(second, figures);
            } else {
                timeline_tail.push(figures);
            }
        }
        let mut timeline: Vec<SecondFigures> = self.settled.values().cloned().collect();
        timeline.extend(timeline_tail);
        let edges = self
            .edges
            .iter()
            .map(|(key, s)| {
                let (caller, callee) = key.split_once(EDGE_SEPARATOR).unwrap_or((key, ""));
                EdgeFigures {
                    caller: caller.to_string(),
                    callee: callee.to_string(),
                    figures: s.figures(&format!("{caller} → {callee}"), from, to, covered),
                }
            })
            .collect();
        Snapshot {
            window: (from, to),
            services: figures(&self.services),
            entries: figures(&self.entries),
            edges,
            timeline,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tracelab_trace::{SpanId, Status, StatusCode, TraceId};

    use super::*;

    fn call(caller: &str, callee: &str, end_s: f64, failed: bool) -> Span {
        let mut s = span(caller, true, end_s, 3, failed);
        s.parent_span_id = Some(SpanId([4; 8]));
        s.attributes = vec![tracelab_trace::Attribute {
            key: "peer.service".into(),
            value: tracelab_trace::AttrValue::Str(callee.into()),
        }];
        s
    }

    fn span(service: &str, root: bool, end_s: f64, ms: u64, failed: bool) -> Span {
        let end = (end_s * 1e9) as u64;
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            parent_span_id: (!root).then_some(SpanId([3; 8])),
            name: "GET /".into(),
            kind: if root {
                SpanKind::Client
            } else {
                SpanKind::Server
            },
            start_unix_nano: end - ms * 1_000_000,
            end_unix_nano: end,
            service_name: Arc::from(service),
            status: if failed {
                Status {
                    code: StatusCode::Error,
                    message: String::new(),
                }
            } else {
                Status::default()
            },
            ..Span::default()
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn figures_cover_the_last_seconds_and_the_one_running() {
        let mut live = LiveStats::default();
        // Seconds 99..=104: web answers 10 calls a second, one a second failing; at 105.0 the
        // window is the last three whole seconds (102..=104) and none of 105.
        for second in 99..=104 {
            for i in 0..10u32 {
                let at = second as f64 + f64::from(i) / 10.0;
                live.record(&[
                    span("web", false, at, 10 + u64::from(i), i == 0),
                    span("loadgen", true, at, 12 + u64::from(i), i == 0),
                ]);
            }
        }
        let snapshot = live.snapshot(105 * S);
        assert_eq!(snapshot.window, (102, 105));
        let web = &snapshot.services[0];
        assert_eq!(web.name, "web");
        assert_eq!((web.rate, web.errors, web.error_rate), (10.0, 3, 0.1));
        assert_eq!((web.p50_ms, web.p99_ms), (Some(14.0), Some(19.0)));
        assert_eq!((web.total, web.total_errors), (60, 6));
        assert_eq!(snapshot.services.len(), 1, "only SERVER spans are services");
        assert_eq!(snapshot.entries[0].name, "loadgen GET /");
        assert_eq!(snapshot.entries[0].p50_ms, Some(16.0));
        // The chart: every whole second so far, the running one left out.
        let seconds: Vec<u64> = snapshot.timeline.iter().map(|s| s.second).collect();
        assert_eq!(seconds, (99..105).collect::<Vec<_>>());
        assert_eq!(snapshot.timeline[0].requests, 10);
        assert_eq!(snapshot.timeline[0].errors, 1);
        // A request of a second already computed arrives late: the second is counted again.
        live.record(&[span("loadgen", true, 100.5, 40, true)]);
        let again = live.snapshot(105 * S).timeline;
        assert_eq!(
            (again[1].second, again[1].requests, again[1].errors),
            (100, 11, 2)
        );
        assert_eq!(again.len(), 6);
        // The root CLIENT spans name no peer: no edge. A call names its callee.
        assert!(snapshot.edges.is_empty());
        live.record(&[
            call("web", "db", 104.5, true),
            call("web", "db", 104.6, false),
        ]);
        let edges = live.snapshot(105 * S).edges;
        assert_eq!(
            (edges[0].caller.as_str(), edges[0].callee.as_str()),
            ("web", "db")
        );
        assert_eq!(edges[0].figures.name, "web → db");
        // Half of second 105 has passed: its spans count, over 3.5 seconds.
        for i in 0..5u32 {
            let at = 105.0 + f64::from(i) / 10.0;
            live.record(&[span("web", false, at, 10, i == 0)]);
        }
        let web = &live.snapshot(105 * S + S / 2).services[0];
        assert_eq!((web.rate, web.errors), (10.0, 4));
        assert_eq!((edges[0].figures.total, edges[0].figures.errors), (2, 1));
    }

    #[test]
    fn history_is_bounded_and_late_spans_land_in_their_second() {
        let mut live = LiveStats::default();
        for second in 0..(HISTORY_S + 50) {
            live.record(&[span("web", false, second as f64 + 0.5, 1, false)]);
        }
        // A span of an earlier second arrives late.
        live.record(&[span("web", false, (HISTORY_S + 40) as f64 + 0.5, 1, true)]);
        let series = &live.services["web"];
        assert_eq!(series.seconds.len() as u64, HISTORY_S + 1);
        let late = series
            .seconds
            .iter()
            .find(|(s, _)| *s == HISTORY_S + 40)
            .unwrap();
        assert_eq!((late.1.count, late.1.errors), (2, 1));
        assert!(series.seconds.iter().is_sorted_by_key(|(s, _)| *s));

        // A finished run's tallies keep counts, not seconds.
        let mut totals = LiveStats::totals_only();
        totals.record(&[
            span("web", false, 10.5, 1, true),
            span("web", false, 11.5, 1, false),
        ]);
        let web = &totals.services["web"];
        assert_eq!((web.count, web.errors, web.seconds.len()), (2, 1, 0));
    }
}
