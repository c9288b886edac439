//! When a route changed during the traces: its own failures and its own time, counted per
//! stretch of time, and the stretch where they differ most from the rest of the traces.
//!
//! A fault that came and went (a dependency failing for a minute, a slow disk for ten
//! seconds) is an incident, not a property of the route: spread over the whole import it
//! would give the route an error rate or a latency it never had, and a replay would fail or
//! wait all the time instead of during the incident (a retry storm only builds while
//! everything fails). So each route keeps a time line of counts ([`Timeline`], bounded: at
//! most [`MAX_BINS`] bins, wider bins once there are more), and [`Timeline::changes`] looks
//! for the one stretch whose failures or own time differ from the rest beyond chance and by a
//! margin that matters:
//!
//! - failures: the stretch with the largest likelihood ratio of "one failure rate inside,
//!   another outside" against "one rate throughout" (binomial); taken when the ratio's log is
//!   at least [`MIN_LOG_LR`] (chance gives that less than once in a million searches), the
//!   rate inside is at least 10 points and twice the rate outside;
//! - own time: the stretch with the largest difference of the mean log own time inside and
//!   outside, in standard errors (the spread of log own time within bins, so the shift
//!   itself does not hide it); taken when it is at least [`MIN_Z`] standard errors, and the
//!   typical request inside takes at least twice as long (in the mean of the logarithms and
//!   in the mean) and at least 1 ms longer.
//!
//! A stretch holds at least [`MIN_INSIDE`] requests, whatever the change: one slow request
//! (the first on a cold connection) lies many standard errors from a route whose times
//! otherwise barely vary, and is still no incident.
//!
//! A stretch with fewer steps per request than the rest is not taken as slower: calls whose
//! spans are missing there (a service that lost the trace context) leave their time to the
//! route's own.
//!
//! - clock: the stretch where the route's spans lie furthest from their callers' (the middle
//!   of a SERVER span after the middle of its caller's CLIENT span, near 0 when the clocks
//!   agree), in standard errors; taken when it is at least [`MIN_Z`] and [`MIN_SKEW_MS`].
//!
//! Requests cut short when a caller gave up (the lab, like many servers, stops work whose
//! caller has gone) are counted: a stretch where most were cut was a route that did not
//! answer in time, written as a `hang` (it waits until its caller gives up), since how long
//! it would have taken is not in the traces.

use std::collections::BTreeMap;

use crate::tally::Counter;

/// Width of the finest bins, ns.
const BASE_WIDTH_NS: u64 = 50_000_000;
/// Bins kept per route; beyond it, bins are merged in pairs (and the width doubles).
pub(crate) const MAX_BINS: usize = 4096;
/// Bins searched at most: wider bins than the kept ones where there are more.
const SEARCH_BINS: usize = 200;
/// Requests per searched bin on average at least, so that a bin's rate means something.
const MIN_PER_BIN: u64 = 5;
/// Searched bins at least: fewer, and there is no stretch to tell apart from the rest.
const MIN_BINS: usize = 5;
/// Requests a stretch holds at least: one or two slow requests (the first on a cold
/// connection, one the host stalled) are not an incident, however far they lie from the rest.
const MIN_INSIDE: f64 = 5.0;
/// Log likelihood ratio a stretch of failures needs.
const MIN_LOG_LR: f64 = 20.0;
/// Standard errors a stretch of slower requests needs.
const MIN_Z: f64 = 10.0;
/// A clock this far off, in ms, at least: less is the network and the callers' own work.
const MIN_SKEW_MS: f64 = 10.0;
/// Own time below this counts as this much, in ms, for the logarithm.
const FLOOR_MS: f64 = 0.001;

/// One stretch of a route's requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bin {
    pub(crate) requests: u64,
    pub(crate) own_errors: u64,
    /// Requests cut short when a caller gave up.
    pub(crate) cut: u64,
    /// Steps the requests ran, in all.
    pub(crate) steps: u64,
    /// The starts of the first and the last request that failed on its own, ns.
    failed_between: Option<(u64, u64)>,
    pub(crate) statuses: Counter<u16>,
    /// Offsets from the callers' spans (see [`Request::offset_ms`]): how many, their sum and
    /// sum of squares.
    offsets: f64,
    sum_offset: f64,
    sumsq_offset: f64,
    sum_ms: f64,
    sum_log: f64,
    sumsq_log: f64,
}

impl Bin {
    fn merge(&mut self, other: &Bin) {
        self.requests += other.requests;
        self.own_errors += other.own_errors;
        self.cut += other.cut;
        self.steps += other.steps;
        self.failed_between = match (self.failed_between, other.failed_between) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, other) => one.or(other),
        };
        for (&status, &count) in &other.statuses.0 {
            *self.statuses.0.entry(status).or_insert(0) += count;
        }
        self.offsets += other.offsets;
        self.sum_offset += other.sum_offset;
        self.sumsq_offset += other.sumsq_offset;
        self.sum_ms += other.sum_ms;
        self.sum_log += other.sum_log;
        self.sumsq_log += other.sumsq_log;
    }

    /// The mean offset from the callers' spans, ms (0 without any).
    pub(crate) fn mean_offset_ms(&self) -> f64 {
        match self.offsets > 0.0 {
            true => self.sum_offset / self.offsets,
            false => 0.0,
        }
    }

    /// The sum of squared deviations of log own time from the bin's mean.
    fn within(&self) -> f64 {
        match self.requests {
            0 => 0.0,
            n => (self.sumsq_log - self.sum_log * self.sum_log / n as f64).max(0.0),
        }
    }
}

/// A route's requests per stretch of time, by start.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    width_ns: u64,
    bins: BTreeMap<u64, Bin>,
}

/// One request as the time line counts it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    pub(crate) start: u64,
    pub(crate) self_ns: u64,
    /// `Some(status)` when it failed on its own.
    pub(crate) own_error: Option<Option<u16>>,
    pub(crate) cut: bool,
    /// Steps it ran.
    pub(crate) steps: u64,
    /// How far the middle of its span lies after its caller's (another service's CLIENT
    /// span), ms: near 0 when the two clocks agree.
    pub(crate) offset_ms: Option<f64>,
}

/// What changed in a stretch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    /// The route failed more often.
    Errors {
        /// Its failure rate inside and outside the stretch.
        rate_in: f64,
        rate_out: f64,
        /// The most frequent status inside.
        status: Option<u16>,
        log_lr: f64,
    },
    /// The service's clock was off: its spans lay this far after its callers'.
    Skewed { offset_ms: f64, z: f64 },
    /// The route took longer.
    Slower {
        mean_in_ms: f64,
        mean_out_ms: f64,
        /// Share of the requests inside that were cut short by a caller giving up.
        cut_share: f64,
        z: f64,
    },
}

/// A stretch of time where a route behaved differently from the rest of the traces.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    /// Requests inside and outside.
    pub(crate) inside: Bin,
    /// Requests inside but for the first and the last bin, where requests from before or
    /// after the change mix in (all inside when that leaves fewer than 20).
    pub(crate) interior: Bin,
    /// Requests outside but for the bin just before and the bin just after, for the same
    /// reason: the route as it was away from the change.
    pub(crate) exterior: Bin,
    pub(crate) outside: Bin,
    pub(crate) change: Change,
}

impl Found {
    /// Whether a request that started at `start` lies in the stretch.
    pub(crate) fn covers(&self, start: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&start)
    }
}

impl Timeline {
    pub(crate) fn new() -> Self {
        Timeline {
            width_ns: BASE_WIDTH_NS,
            bins: BTreeMap::new(),
        }
    }

    pub(crate) fn add(&mut self, request: Request) {
        let bin = self.bins.entry(request.start / self.width_ns).or_default();
        bin.requests += 1;
        if let Some(status) = request.own_error {
            bin.own_errors += 1;
            bin.failed_between = Some(match bin.failed_between {
                Some((a, b)) => (a.min(request.start), b.max(request.start)),
                None => (request.start, request.start),
            });
            if let Some(status) = status {
                bin.statuses.add(status);
            }
        }
        bin.cut += u64::from(request.cut);
        bin.steps += request.steps;
        if let Some(offset) = request.offset_ms {
            bin.offsets += 1.0;
            bin.sum_offset += offset;
            bin.sumsq_offset += offset * offset;
        }
        let ms = request.self_ns as f64 / 1e6;
        let log = ms.max(FLOOR_MS).ln();
        bin.sum_ms += ms;
        bin.sum_log += log;
        bin.sumsq_log += log * log;
        if self.bins.len() > MAX_BINS {
            self.bins = merged(&self.bins, 2);
            self.width_ns *= 2;
        }
    }

    /// The stretches where the route failed more often, and where it took longer, than in
    /// the rest of the traces (each at most one).
    pub(crate) fn changes(&self) -> Vec<Found> {
        let requests: u64 = self.bins.values().map(|b| b.requests).sum();
        let (Some(&first), Some(&last)) = (self.bins.keys().next(), self.bins.keys().last()) else {
            return Vec::new();
        };
        let span = last - first + 1;
        // The finest bins with at most SEARCH_BINS of them and MIN_PER_BIN requests each.
        let mut factor = 1;
        while span.div_ceil(factor) as usize > SEARCH_BINS
            || requests < MIN_PER_BIN * span.div_ceil(factor)
        {
            if span.div_ceil(factor) as usize <= MIN_BINS {
                return Vec::new();
            }
            factor *= 2;
        }
        let coarse = self.series(factor);
        if coarse.bins.len() < MIN_BINS {
            return Vec::new();
        }
        let spread = Spread::of(&coarse.bins);
        // The edges are searched again at bins up to 8 times finer, within a coarse bin of
        // where they were found.
        let fine_factor = (factor / 8).max(1);
        let ratio = (factor / fine_factor) as usize;
        let mut fine: Option<Series> = None;
        let mut found = Vec::new();
        let searches: [Search; 3] = [failures, slower, skewed];
        for search in searches {
            let Some((range, change)) =
                search(&coarse.bins, &mut stretches(coarse.bins.len()), spread)
            else {
                continue;
            };
            let fine = fine.get_or_insert_with(|| self.series(fine_factor));
            // The first searched bin may start before the first fine one.
            let at = |coarse_index: usize| {
                ((coarse.origin + coarse_index as u64) * ratio as u64).saturating_sub(fine.origin)
                    as usize
            };
            let (a, b) = (at(range.0), at(range.1));
            let len = fine.bins.len();
            let mut near = (a.saturating_sub(ratio)..=(a + ratio).min(len))
                .flat_map(|s| (b.saturating_sub(ratio)..=(b + ratio).min(len)).map(move |e| (s, e)))
                .filter(|&(s, e)| s < e && e - s < len);
            let mut stretch = match search(&fine.bins, &mut near, spread) {
                Some((range, change)) => fine.stretch(range, change),
                None => coarse.stretch(range, change),
            };
            // Failures start and end with the first and the last failed request.
            if let (Change::Errors { .. }, Some((first, last))) =
                (&stretch.change, stretch.inside.failed_between)
            {
                stretch.start_ns = first;
                stretch.end_ns = last + 1;
            }
            found.push(stretch);
        }
        found
    }

    /// The bins merged `factor` at a time, every bin from the first to the last.
    fn series(&self, factor: u64) -> Series {
        let (first, last) = match (self.bins.keys().next(), self.bins.keys().last()) {
            (Some(&first), Some(&last)) => (first / factor, last / factor),
            _ => (0, 0),
        };
        let coarse = merged(&self.bins, factor);
        Series {
            bins: (first..=last)
                .map(|k| coarse.get(&k).cloned().unwrap_or_default())
                .collect(),
            origin: first,
            width: self.width_ns * factor,
        }
    }
}

/// A search for one kind of change among candidate stretches `[a, b)` of bins.
type Search = fn(
    &[Bin],
    &mut dyn Iterator<Item = (usize, usize)>,
    Spread,
) -> Option<((usize, usize), Change)>;

/// The spread within bins of the searched width (log own time, and offsets from the
/// callers, ms), by which a shift is measured; also at the finer bins the edges are searched
/// on, where a bin may hold a single request.
#[derive(Debug, Clone, Copy)]
struct Spread {
    log: Option<f64>,
    offset: Option<f64>,
}

impl Spread {
    fn of(bins: &[Bin]) -> Spread {
        let pooled = |n: &dyn Fn(&Bin) -> f64, within: &dyn Fn(&Bin) -> f64| {
            let total: f64 = bins.iter().map(n).sum();
            let used = bins.iter().filter(|b| n(b) > 0.0).count() as f64;
            (total - used >= 1.0)
                .then(|| (bins.iter().map(within).sum::<f64>() / (total - used)).sqrt())
        };
        Spread {
            log: pooled(&|b| b.requests as f64, &Bin::within).map(|s| s.max(1e-3)),
            offset: pooled(&|b| b.offsets, &|b| match b.offsets > 0.0 {
                true => (b.sumsq_offset - b.sum_offset * b.sum_offset / b.offsets).max(0.0),
                false => 0.0,
            })
            .map(|s| s.max(0.01)),
        }
    }
}

/// Bins of one width, every one from the first with requests to the last.
struct Series {
    bins: Vec<Bin>,
    /// The first bin's index (its start over the width).
    origin: u64,
    width: u64,
}

impl Series {
    fn stretch(&self, (a, b): (usize, usize), change: Change) -> Found {
        let mut inside = Bin::default();
        let mut outside = Bin::default();
        let mut interior = Bin::default();
        let mut exterior = Bin::default();
        for (i, bin) in self.bins.iter().enumerate() {
            match (a..b).contains(&i) {
                true => inside.merge(bin),
                false => outside.merge(bin),
            }
            if (a + 1..b.saturating_sub(1)).contains(&i) {
                interior.merge(bin);
            }
            if i + 1 < a || i > b {
                exterior.merge(bin);
            }
        }
        if interior.requests < 20 {
            interior = inside.clone();
        }
        if exterior.requests < 20 {
            exterior = outside.clone();
        }
        Found {
            start_ns: (self.origin + a as u64) * self.width,
            end_ns: (self.origin + b as u64) * self.width,
            inside,
            outside,
            interior,
            exterior,
            change,
        }
    }
}

/// Bins merged `factor` at a time.
fn merged(bins: &BTreeMap<u64, Bin>, factor: u64) -> BTreeMap<u64, Bin> {
    let mut out: BTreeMap<u64, Bin> = BTreeMap::new();
    for (&k, bin) in bins {
        out.entry(k / factor).or_default().merge(bin);
    }
    out
}

/// Sums of a bin's fields over the bins before each index.
fn prefix(bins: &[Bin], field: impl Fn(&Bin) -> f64) -> Vec<f64> {
    let mut sums = Vec::with_capacity(bins.len() + 1);
    sums.push(0.0);
    for bin in bins {
        sums.push(sums[sums.len() - 1] + field(bin));
    }
    sums
}

/// Every stretch `[a, b)` of bins that leaves some bins outside.
fn stretches(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len)
        .flat_map(move |a| (a + 1..=len).map(move |b| (a, b)))
        .filter(move |&(a, b)| b - a < len)
}

/// The binomial log likelihood of `k` failures in `n` at rate `p` (0 ln 0 = 0).
fn log_likelihood(k: f64, n: f64, p: f64) -> f64 {
    let term = |count: f64, q: f64| if count > 0.0 { count * q.ln() } else { 0.0 };
    term(k, p) + term(n - k, 1.0 - p)
}

/// The stretch of most unusual failures, if it passes the thresholds.
fn failures(
    bins: &[Bin],
    candidates: &mut dyn Iterator<Item = (usize, usize)>,
    _: Spread,
) -> Option<((usize, usize), Change)> {
    let n = prefix(bins, |b| b.requests as f64);
    let k = prefix(bins, |b| b.own_errors as f64);
    let (total_n, total_k) = (n[bins.len()], k[bins.len()]);
    if total_k == 0.0 {
        return None;
    }
    let null = log_likelihood(total_k, total_n, total_k / total_n);
    let mut best: Option<((usize, usize), f64, f64, f64)> = None;
    for (a, b) in candidates {
        let (n_in, k_in) = (n[b] - n[a], k[b] - k[a]);
        let (n_out, k_out) = (total_n - n_in, total_k - k_in);
        if n_in < MIN_INSIDE || n_out == 0.0 {
            continue;
        }
        let (p_in, p_out) = (k_in / n_in, k_out / n_out);
        if p_in <= p_out {
            continue;
        }
        let lr = log_likelihood(k_in, n_in, p_in) + log_likelihood(k_out, n_out, p_out) - null;
        if best.is_none_or(|(_, best_lr, _, _)| lr > best_lr) {
            best = Some(((a, b), lr, p_in, p_out));
        }
    }
    let (range, log_lr, rate_in, rate_out) = best?;
    let passes = log_lr >= MIN_LOG_LR && rate_in - rate_out >= 0.1 && rate_in >= 2.0 * rate_out;
    let mut statuses = Counter::default();
    for bin in &bins[range.0..range.1] {
        for (&status, &count) in &bin.statuses.0 {
            *statuses.0.entry(status).or_insert(0) += count;
        }
    }
    passes.then(|| {
        let status = statuses.mode().map(|(&s, _)| s);
        (
            range,
            Change::Errors {
                rate_in,
                rate_out,
                status,
                log_lr,
            },
        )
    })
}

/// The shift of a stretch: how many values in and out, and how far the mean inside lies
/// above the mean outside.
#[derive(Debug, Clone, Copy)]
struct Shift {
    range: (usize, usize),
    n_in: f64,
    n_out: f64,
    shift: f64,
    /// The shift in standard errors (`sigma` being the spread of one value); signed, or its
    /// size for a search in both directions.
    z: f64,
}

/// The candidate stretch whose mean (of the values counted by `n` and summed by `sum`, both
/// prefix sums over the bins) lies furthest above the rest, or furthest either way with
/// `both_ways`, in standard errors.
fn largest_shift(
    n: &[f64],
    sum: &[f64],
    sigma: f64,
    both_ways: bool,
    candidates: &mut dyn Iterator<Item = (usize, usize)>,
) -> Option<Shift> {
    let (total_n, total) = (n[n.len() - 1], sum[sum.len() - 1]);
    let mut best: Option<Shift> = None;
    for (a, b) in candidates {
        let n_in = n[b] - n[a];
        let n_out = total_n - n_in;
        if n_in < MIN_INSIDE || n_out == 0.0 {
            continue;
        }
        let inside = sum[b] - sum[a];
        let shift = inside / n_in - (total - inside) / n_out;
        let z = shift / (sigma * (1.0 / n_in + 1.0 / n_out).sqrt());
        let z = if both_ways { z.abs() } else { z };
        if best.is_none_or(|best| z > best.z) {
            best = Some(Shift {
                range: (a, b),
                n_in,
                n_out,
                shift,
                z,
            });
        }
    }
    best
}

/// The stretch of most unusually slow requests, if it passes the thresholds.
fn slower(
    bins: &[Bin],
    candidates: &mut dyn Iterator<Item = (usize, usize)>,
    spread: Spread,
) -> Option<((usize, usize), Change)> {
    let n = prefix(bins, |b| b.requests as f64);
    let log = prefix(bins, |b| b.sum_log);
    let Shift {
        range: (a, b),
        n_in,
        n_out,
        shift,
        z,
    } = largest_shift(&n, &log, spread.log?, false, candidates)?;
    let mean = |field: fn(&Bin) -> f64| {
        let sums = prefix(bins, field);
        let inside = sums[b] - sums[a];
        (inside / n_in, (sums[bins.len()] - inside) / n_out)
    };
    let (mean_in_ms, mean_out_ms) = mean(|b| b.sum_ms);
    // Fewer steps inside: calls whose spans are missing from these traces (a service that
    // lost the trace context, a collector that dropped spans). Their time counts as the
    // route's own there, which is no slowdown of the route.
    let (steps_in, steps_out) = mean(|b| b.steps as f64);
    let cut: u64 = bins[a..b].iter().map(|b| b.cut).sum();
    let passes = z >= MIN_Z
        && shift >= 2f64.ln()
        && mean_in_ms >= 2.0 * mean_out_ms
        && mean_in_ms - mean_out_ms >= 1.0
        && steps_in >= 0.9 * steps_out;
    passes.then(|| {
        (
            (a, b),
            Change::Slower {
                mean_in_ms,
                mean_out_ms,
                cut_share: cut as f64 / n_in,
                z,
            },
        )
    })
}

/// The stretch whose spans lay furthest from their callers', if it passes the thresholds.
fn skewed(
    bins: &[Bin],
    candidates: &mut dyn Iterator<Item = (usize, usize)>,
    spread: Spread,
) -> Option<((usize, usize), Change)> {
    let n = prefix(bins, |b| b.offsets);
    let sum = prefix(bins, |b| b.sum_offset);
    let found = largest_shift(&n, &sum, spread.offset?, true, candidates)?;
    (found.z >= MIN_Z && found.shift.abs() >= MIN_SKEW_MS).then_some((
        found.range,
        Change::Skewed {
            offset_ms: found.shift,
            z: found.z,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// A request every 10 ms for 10 s; inside [3 s, 6 s) `inside` says what it is.
    fn run(inside: impl Fn(u64) -> Request, outside: impl Fn(u64) -> Request) -> Timeline {
        let mut timeline = Timeline::new();
        for i in 0..1000u64 {
            let start = 100 * S + i * 10_000_000;
            let at = start - 100 * S;
            timeline.add(match (3 * S..6 * S).contains(&at) {
                true => inside(start),
                false => outside(start),
            });
        }
        timeline
    }

    fn request(start: u64, ms: f64, failed: bool) -> Request {
        Request {
            start,
            self_ns: (ms * 1e6) as u64,
            own_error: failed.then_some(Some(503)),
            cut: false,
            steps: 1,
            offset_ms: Some(((start / 10_000_000) % 3) as f64 * 0.1),
        }
    }

    #[test]
    fn an_outage_is_found_with_its_edges_and_status() {
        // Outside, one in 50 fails (a deterministic pattern is as good as a draw here).
        let timeline = run(
            |s| request(s, 3.0, true),
            |s| request(s, 3.0, (s / 10_000_000) % 50 == 0),
        );
        let found = timeline.changes();
        assert_eq!(found.len(), 1, "{found:?}");
        let f = &found[0];
        // From the first failed request to just after the last (at 5.99 s).
        assert_eq!(
            (f.start_ns - 100 * S, f.end_ns - 100 * S),
            (3 * S, 5_990_000_001)
        );
        match &f.change {
            Change::Errors {
                rate_in,
                rate_out,
                status,
                ..
            } => {
                assert_eq!(*rate_in, 1.0);
                assert!((rate_out - 0.02).abs() < 0.005, "{rate_out}");
                assert_eq!(*status, Some(503));
            }
            other => panic!("{other:?}"),
        }
    }

    /// The one change found, which must cover 3 s to 6 s exactly.
    fn the_change_from_3_to_6_s(timeline: Timeline) -> Change {
        let found = timeline.changes();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].start_ns - 100 * S, found[0].end_ns - 100 * S),
            (3 * S, 6 * S)
        );
        found[0].change.clone()
    }

    #[test]
    fn an_outage_from_the_first_request_is_found() {
        // 40 requests a second search 200 ms bins; the first request 50 ms into one, so
        // the finer bins of the edges start after the first searched bin.
        let mut timeline = Timeline::new();
        for i in 0..400u64 {
            let start = 100 * S + 50_000_000 + i * 25_000_000;
            timeline.add(request(start, 3.0, i < 120));
        }
        let found = timeline.changes();
        assert_eq!(found.len(), 1, "{found:?}");
        let first = 100 * S + 50_000_000;
        assert_eq!(
            (found[0].start_ns - first, found[0].end_ns - first),
            (0, 2_975_000_001)
        );
    }

    #[test]
    fn a_slow_stretch_is_found_and_steady_noise_is_not() {
        // Own time cycling over 1–9 ms everywhere: no stretch stands out.
        let noisy = |s: u64| request(s, 1.0 + ((s / 10_000_000) % 9) as f64, false);
        assert!(run(noisy, noisy).changes().is_empty());
        // 4 s more inside.
        match the_change_from_3_to_6_s(run(|s| request(s, 4005.0, false), noisy)) {
            Change::Slower {
                mean_in_ms,
                mean_out_ms,
                cut_share,
                ..
            } => {
                assert_eq!(mean_in_ms, 4005.0);
                assert!((mean_out_ms - 5.0).abs() < 0.1, "{mean_out_ms}");
                assert_eq!(cut_share, 0.0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn time_of_calls_missing_from_the_traces_is_no_slowdown() {
        // Inside, the call's span is missing and its 5 ms count as the route's own.
        let timeline = run(
            |s| Request {
                steps: 0,
                ..request(s, 8.0, false)
            },
            |s| request(s, 3.0, false),
        );
        assert!(timeline.changes().is_empty());
    }

    #[test]
    fn a_clock_that_was_off_is_found() {
        let timeline = run(
            |s| Request {
                offset_ms: Some(1500.0),
                ..request(s, 3.0, false)
            },
            |s| request(s, 3.0, false),
        );
        match the_change_from_3_to_6_s(timeline) {
            Change::Skewed { offset_ms, .. } => assert!((offset_ms - 1499.9).abs() < 0.1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_slow_request_is_no_incident() {
        // 10 requests a second for 9 s, 2 ms each but the first (a cold connection): 4.6 ms.
        // It lies 80 ms before a searched bin's end, alone in that bin.
        let mut timeline = Timeline::new();
        for i in 0..90u64 {
            let start = 100 * S + 720_000_000 + i * 100_000_000;
            let ms = if i == 0 {
                4.6
            } else {
                2.0 + (i % 3) as f64 * 0.01
            };
            timeline.add(request(start, ms, false));
        }
        let found = timeline.changes();
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn small_changes_are_not_incidents() {
        // 30 % slower, and 5 points more failures: real, but within what a route varies by.
        let timeline = run(
            |s| request(s, 3.9, (s / 10_000_000) % 14 == 0),
            |s| request(s, 3.0, (s / 10_000_000) % 50 == 0),
        );
        assert!(timeline.changes().is_empty());
    }

    #[test]
    fn bins_merge_beyond_the_bound() {
        let mut timeline = Timeline::new();
        // One request a second for three hours: 10,800 distinct 50 ms bins before merging.
        for i in 0..10_800u64 {
            timeline.add(request(i * S, 1.0, false));
        }
        assert!(timeline.bins.len() <= MAX_BINS);
        let total: u64 = timeline.bins.values().map(|b| b.requests).sum();
        assert_eq!(total, 10_800);
    }
}
