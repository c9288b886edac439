//! The runner's logic under simulated time (`tokio::time::pause()`, a transport whose answers
//! take simulated time), and coordinated omission over a real loopback server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracelab_loadgen::{
    Answer, Backpressure, BaggageSet, Connection, Driver, EntryTarget, HttpTransport, LoadOptions,
    LoadPlan, LoadSummary, Outcome, Outgoing, RequestRecord, Target, Transport,
};
use tracelab_scenario::{ArrivalModel, LatencyModel};

/// Answers after `delay` of (simulated) time, counting how many requests it holds at once.
#[derive(Debug, Default)]
struct Simulated {
    delay: Duration,
    current: AtomicUsize,
    max: AtomicUsize,
    sent: AtomicUsize,
}

/// A connection of [`Simulated`].
struct SimulatedConnection(Arc<Simulated>);

/// The transport under test, shared with the test so it can read the counters.
#[derive(Clone)]
struct Shared(Arc<Simulated>);

impl Transport for Shared {
    type Connection = SimulatedConnection;

    async fn connect(&self, _: &Target) -> Result<SimulatedConnection, Answer> {
        Ok(SimulatedConnection(self.0.clone()))
    }
}

impl Connection for SimulatedConnection {
    async fn send(
        &mut self,
        _: Outgoing<'_>,
        _: tokio::time::Instant,
    ) -> (Answer, tokio::time::Instant) {
        let sim = &self.0;
        let now = sim.current.fetch_add(1, Ordering::SeqCst) + 1;
        sim.max.fetch_max(now, Ordering::SeqCst);
        sim.sent.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(sim.delay).await;
        sim.current.fetch_sub(1, Ordering::SeqCst);
        (Answer::Status(200), tokio::time::Instant::now())
    }

    fn is_usable(&self, _: tokio::time::Instant) -> bool {
        true
    }
}

fn entry(url: &str, route: &str, weight: f64) -> EntryTarget {
    EntryTarget {
        service: "front".into(),
        route: route.into(),
        method: "GET".into(),
        weight,
        urls: vec![format!("{url}{route}")],
        balance: Default::default(),
    }
}

fn plan(driver: Driver, duration: Duration) -> LoadPlan {
    LoadPlan {
        seed: 11,
        duration,
        driver,
        entries: vec![
            entry("http://sim:80", "/a", 3.0),
            entry("http://sim:80", "/b", 1.0),
        ],
        baggage: vec![BaggageSet {
            key: "tenant".into(),
            values: vec![("acme".into(), 0.1), ("globex".into(), 0.9)],
        }],
        connections: None,
        max_in_flight: 10_000,
    }
}

/// A transport whose every answer takes `delay`.
fn simulated(delay: Duration) -> Arc<Simulated> {
    Arc::new(Simulated {
        delay,
        ..Default::default()
    })
}

/// An open loop at a constant `rate` for `duration`.
fn constant(rate: f64, duration: Duration) -> LoadPlan {
    plan(
        Driver::Open {
            arrival: ArrivalModel::Constant,
            rate,
        },
        duration,
    )
}

async fn run_sim(
    transport: Arc<Simulated>,
    plan: &LoadPlan,
    shutdown: CancellationToken,
) -> (LoadSummary, Vec<RequestRecord>) {
    run_sim_with(transport, plan, shutdown, None).await
}

/// Runs `plan` over `transport` on the tokio timer, the request records into `records`.
async fn run_sim_into(
    transport: Arc<Simulated>,
    plan: &LoadPlan,
    shutdown: CancellationToken,
    backpressure: Option<Backpressure>,
    records: &mut (dyn std::io::Write + Send),
) -> LoadSummary {
    tracelab_loadgen::run(
        Arc::new(Shared(transport)),
        plan,
        None,
        &LoadOptions {
            timer: tracelab_timer::Mode::Tokio,
            backpressure,
            ..LoadOptions::default()
        },
        records,
        shutdown,
        &mut |_| {},
    )
    .await
    .expect("run")
}

async fn run_sim_with(
    transport: Arc<Simulated>,
    plan: &LoadPlan,
    shutdown: CancellationToken,
    backpressure: Option<Backpressure>,
) -> (LoadSummary, Vec<RequestRecord>) {
    let mut out = Vec::new();
    let summary = run_sim_into(transport, plan, shutdown, backpressure, &mut out).await;
    let records = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record per line"))
        .collect();
    (summary, records)
}

#[tokio::test(start_paused = true)]
async fn open_loop_sends_exactly_the_schedule_at_the_target_rate() {
    let transport = simulated(Duration::from_millis(20));
    let plan = constant(500.0, Duration::from_secs(10));
    let (summary, records) = run_sim(transport.clone(), &plan, CancellationToken::new()).await;
    assert_eq!(summary.total, 5000);
    assert_eq!(records.len(), 5000);
    assert_eq!(transport.sent.load(Ordering::SeqCst), 5000);
    // Achieved against target within 1 % over 10 s, every second on target.
    let achieved = summary.sent as f64 / 10.0;
    assert!(
        (achieved - 500.0).abs() / 500.0 < 0.01,
        "achieved {achieved}/s"
    );
    assert_eq!(summary.timeline.len(), 11, "{:?}", summary.timeline);
    for row in &summary.timeline[1..10] {
        assert_eq!(row.completed, 500, "second {}", row.second);
        assert_eq!(row.target, Some(500.0));
    }
    assert_eq!(summary.late_starts, 0);
    assert!(
        (summary.latency_ms.p99 - 20.0).abs() < 0.1,
        "{:?}",
        summary.latency_ms
    );
    // Every sequence number once; entries and baggage follow their weights.
    let mut sequences: Vec<u64> = records.iter().map(|r| r.sequence).collect();
    sequences.sort_unstable();
    assert_eq!(sequences, (0..5000).collect::<Vec<_>>());
    let a = summary.entries["front GET /a"].count as f64 / 5000.0;
    assert!((a - 0.75).abs() < 0.03, "share of /a {a}");
    let acme = records
        .iter()
        .filter(|r| r.baggage["tenant"] == "acme")
        .count() as f64
        / 5000.0;
    assert!((acme - 0.1).abs() < 0.02, "share of acme {acme}");
    assert!(
        records
            .iter()
            .all(|r| r.baggage["synthetic_request"] == "true")
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_draws_the_same_entries_and_baggage() {
    let draws = |records: Vec<RequestRecord>| -> BTreeMap<u64, (String, BTreeMap<String, String>)> {
        records
            .into_iter()
            .map(|r| (r.sequence, (r.entry, r.baggage)))
            .collect()
    };
    let p = plan(
        Driver::Open {
            arrival: ArrivalModel::Poisson,
            rate: 200.0,
        },
        Duration::from_secs(2),
    );
    let t = || Arc::new(Simulated::default());
    let (_, first) = run_sim(t(), &p, CancellationToken::new()).await;
    let (_, second) = run_sim(t(), &p, CancellationToken::new()).await;
    let first_times: Vec<u64> = first
        .iter()
        .map(|r| r.scheduled_unix_nano - first[0].scheduled_unix_nano)
        .collect();
    let second_times: Vec<u64> = second
        .iter()
        .map(|r| r.scheduled_unix_nano - second[0].scheduled_unix_nano)
        .collect();
    assert_eq!(first_times, second_times);
    assert_eq!(draws(first), draws(second));
    let mut other = p.clone();
    other.seed = 12;
    let (_, third) = run_sim(t(), &other, CancellationToken::new()).await;
    assert_ne!(third.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn closed_loop_never_exceeds_its_users_in_flight() {
    let transport = simulated(Duration::from_millis(30));
    let users = 7;
    let p = plan(
        Driver::Closed {
            users,
            think: LatencyModel::Exponential { mean_ms: 20.0 },
        },
        Duration::from_secs(5),
    );
    let (summary, records) = run_sim(transport.clone(), &p, CancellationToken::new()).await;
    assert_eq!(transport.max.load(Ordering::SeqCst), users as usize);
    // About users × duration / (answer + mean think) requests.
    let expected = users as f64 * 5.0 / 0.05;
    assert!(
        (summary.sent as f64 - expected).abs() < expected * 0.15,
        "{} requests, expected about {expected}",
        summary.sent
    );
    assert_eq!(summary.dropped, 0);
    assert!(records.iter().all(|r| r.user.is_some_and(|u| u < users)));
}

/// Runs `plan` with a backpressure that says "behind" for its first `hold` (simulated time),
/// and checks that nothing was sent meanwhile.
async fn run_held_at_first(
    transport: Arc<Simulated>,
    plan: &LoadPlan,
    hold: Duration,
) -> (LoadSummary, Vec<RequestRecord>) {
    let until = tokio::time::Instant::now() + hold;
    let sent_while_behind = Arc::new(AtomicUsize::new(0));
    let backpressure = Backpressure::new({
        let (transport, sent) = (transport.clone(), sent_while_behind.clone());
        move || {
            let behind = tokio::time::Instant::now() < until;
            if behind {
                sent.fetch_max(transport.sent.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            behind
        }
    });
    let ran = run_sim_with(
        transport,
        plan,
        CancellationToken::new(),
        Some(backpressure),
    )
    .await;
    assert_eq!(
        sent_while_behind.load(Ordering::SeqCst),
        0,
        "nothing sent while held"
    );
    ran
}

#[tokio::test(start_paused = true)]
async fn backpressure_holds_the_open_loop_and_the_held_requests_count_late() {
    let transport = simulated(Duration::from_millis(20));
    let p = constant(100.0, Duration::from_secs(2));
    let (summary, records) = run_held_at_first(transport, &p, Duration::from_millis(500)).await;
    assert_eq!(
        (summary.total, summary.sent, summary.dropped),
        (200, 200, 0)
    );
    assert_eq!(summary.held.count, 1);
    assert!(
        (summary.held.seconds - 0.5).abs() < 0.02,
        "held {} s",
        summary.held.seconds
    );
    assert!(
        summary
            .held
            .warning
            .as_deref()
            .is_some_and(|w| w.contains("held"))
    );
    // The 50 requests due in the first half second left late; the latency of the first
    // counts from its scheduled instant, the hold included.
    assert!(
        (50..=52).contains(&summary.late_starts),
        "{} late starts",
        summary.late_starts
    );
    assert!(summary.latency_ms.max >= 500.0, "{:?}", summary.latency_ms);
    let first = records
        .iter()
        .find(|r| r.sequence == 0)
        .expect("first request");
    assert!(first.latency_ms >= 500.0, "{first:?}");
}

/// A hold that lasts to the schedule's end releases every request at once; those beyond the
/// in-flight cap are dropped, and each drop still gets its record, however many there are.
#[tokio::test(start_paused = true)]
async fn a_burst_after_a_hold_records_every_drop() {
    let transport = simulated(Duration::from_millis(5));
    let mut p = constant(80_000.0, Duration::from_secs(1));
    p.max_in_flight = 100;
    let always = Backpressure::new(|| true);
    let (summary, records) = run_sim_with(
        transport.clone(),
        &p,
        CancellationToken::new(),
        Some(always),
    )
    .await;
    assert_eq!(summary.unrecorded, 0);
    assert_eq!((summary.total, records.len()), (80_000, 80_000));
    assert_eq!(summary.sent + summary.dropped, 80_000);
    assert!(summary.dropped > 70_000, "{} dropped", summary.dropped);
    assert_eq!(summary.held.count, 1);
    assert!(
        (summary.held.seconds - 1.0).abs() < 0.02,
        "held {} s",
        summary.held.seconds
    );
}

/// Request records into nowhere, counted; the first write blocks for a while, as a stalled
/// disk would.
struct StalledRecords {
    stall: Option<Duration>,
    lines: u64,
    dropped: u64,
    partial: Vec<u8>,
}

impl std::io::Write for StalledRecords {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Some(stall) = self.stall.take() {
            std::thread::sleep(stall);
        }
        self.partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = self.partial[start..].iter().position(|&b| b == b'\n') {
            let line: RequestRecord = serde_json::from_slice(&self.partial[start..start + end])
                .expect("a record per line");
            self.lines += 1;
            self.dropped += u64::from(line.outcome == Outcome::Dropped);
            start += end + 1;
        }
        self.partial.drain(..start);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A collector stalled for the whole schedule (its first write blocks, on a real clock): the
/// drops at the in-flight cap fill its channel and the scheduler's bounded pending list, and
/// the rest are only counted. Every scheduled request is either recorded or counted as
/// unrecorded, and the summary (report.json's `load`) says how many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_beyond_a_stalled_collector_are_counted_as_unrecorded() {
    let transport = simulated(Duration::from_millis(5));
    // 300,000 requests over 6 s. The open loop hands its drops over at each wait (about one
    // a millisecond, some 50 drops each), so the channel's 1,024 batches hold about a second
    // of them and the pending list 65,536 more: most of the schedule cannot be recorded.
    let mut p = constant(50_000.0, Duration::from_secs(6));
    p.max_in_flight = 1;
    // The collector runs in this test's own future, which `block_on` polls on the test's
    // thread: the stall blocks that thread only, while the driver runs on the two workers.
    let mut records = StalledRecords {
        stall: Some(Duration::from_secs(7)),
        lines: 0,
        dropped: 0,
        partial: Vec::new(),
    };
    let summary = run_sim_into(
        transport.clone(),
        &p,
        CancellationToken::new(),
        None,
        &mut records,
    )
    .await;
    assert!(summary.unrecorded > 0, "{summary:?}");
    assert_eq!(summary.total + summary.unrecorded, 300_000);
    assert_eq!(
        records.lines, summary.total,
        "every counted request has its line"
    );
    assert_eq!(records.dropped, summary.dropped);
    assert_eq!(summary.sent + summary.dropped, summary.total);
    assert_eq!(summary.sent as usize, transport.sent.load(Ordering::SeqCst));
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["unrecorded"], summary.unrecorded);
}

#[tokio::test(start_paused = true)]
async fn backpressure_holds_every_virtual_user_as_one_hold() {
    let transport = simulated(Duration::from_millis(30));
    let p = plan(
        Driver::Closed {
            users: 4,
            think: LatencyModel::Constant { ms: 10.0 },
        },
        Duration::from_secs(3),
    );
    let (summary, _) = run_held_at_first(transport, &p, Duration::from_secs(1)).await;
    assert_eq!(summary.held.count, 1, "the users' holds overlap: one hold");
    assert!(
        (summary.held.seconds - 1.0).abs() < 0.02,
        "held {} s",
        summary.held.seconds
    );
    // Two seconds of four users at 40 ms a round.
    assert!((190..=210).contains(&summary.sent), "{} sent", summary.sent);
}

#[tokio::test(start_paused = true)]
async fn requests_beyond_the_in_flight_cap_are_recorded_as_dropped() {
    let transport = simulated(Duration::from_secs(5));
    let mut p = constant(100.0, Duration::from_secs(1));
    p.max_in_flight = 10;
    let (summary, records) = run_sim(transport.clone(), &p, CancellationToken::new()).await;
    assert_eq!(transport.sent.load(Ordering::SeqCst), 10);
    assert_eq!(summary.total, 100);
    assert_eq!(summary.dropped, 90);
    assert_eq!(summary.status_classes["dropped"].count, 90);
    let dropped: Vec<_> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Dropped)
        .collect();
    assert_eq!(dropped.len(), 90);
    assert!(
        dropped
            .iter()
            .all(|r| r.trace_id.is_empty() && r.status.is_none() && r.error)
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_the_schedule_and_waits_for_requests_in_flight() {
    let transport = simulated(Duration::from_millis(300));
    let p = constant(100.0, Duration::from_secs(10));
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2_005)).await;
        stop.cancel();
    });
    let (summary, records) = run_sim(transport.clone(), &p, shutdown).await;
    assert!(summary.interrupted);
    assert_eq!(summary.total, 201, "requests due in the first 2.005 s");
    assert_eq!(records.len(), 201);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Ok),
        "in-flight requests finished"
    );
}

/// A target that stalls: the request with sequence number `STALLED` takes a whole second;
/// every other answers at once.
const STALLED: u64 = 50;

async fn stalling_server() -> SocketAddr {
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::routing::get;
    let app = Router::new().route(
        "/a",
        get(|headers: HeaderMap| async move {
            let sequence = headers
                .get("tracelab-origin")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(':').next())
                .and_then(|v| v.parse::<u64>().ok());
            if sequence == Some(STALLED) {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Coordinated omission: over a single connection, the requests due while the target stalls
/// wait, start late, and their latency — from the scheduled instant — includes the wait.
#[tokio::test]
async fn a_stall_shows_in_the_latency_of_every_request_due_during_it() {
    let addr = stalling_server().await;
    let mut p = constant(50.0, Duration::from_secs(3));
    p.entries = vec![entry(&format!("http://{addr}"), "/a", 1.0)];
    p.connections = Some(1);
    let mut out = Vec::new();
    let summary = tracelab_loadgen::run(
        Arc::new(HttpTransport),
        &p,
        None,
        &LoadOptions::default(),
        &mut out,
        CancellationToken::new(),
        &mut |_| {},
    )
    .await
    .expect("run");
    let records: Vec<RequestRecord> = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    assert_eq!(summary.total, 150);
    assert_eq!(summary.errors, 0);
    // About 50 requests were due during the 1 s stall.
    assert!(
        summary.late_starts >= 40,
        "late starts: {}",
        summary.late_starts
    );
    assert!(summary.late_by_ms.max >= 900.0, "{:?}", summary.late_by_ms);
    assert!(summary.latency_ms.p99 >= 900.0, "{:?}", summary.latency_ms);
    assert!(summary.latency_ms.p90 >= 300.0, "{:?}", summary.latency_ms);
    // What a coordinated-omission measure (from the actual start) would have shown: one slow
    // request. The honest one shows every request that waited.
    let slow_service = records.iter().filter(|r| r.service_time_ms > 500.0).count();
    let slow_user = records.iter().filter(|r| r.latency_ms > 500.0).count();
    assert_eq!(slow_service, 1);
    assert!(slow_user >= 20, "{slow_user} requests over 500 ms");
}

/// Answers at once and counts the requests sent to each target.
#[derive(Debug, Default)]
struct PerTarget(std::sync::Mutex<BTreeMap<String, usize>>);

struct PerTargetConnection(Arc<PerTarget>, String);

#[derive(Clone)]
struct SharedPerTarget(Arc<PerTarget>);

impl Transport for SharedPerTarget {
    type Connection = PerTargetConnection;

    async fn connect(&self, target: &Target) -> Result<PerTargetConnection, Answer> {
        Ok(PerTargetConnection(
            self.0.clone(),
            target.authority.clone(),
        ))
    }
}

impl Connection for PerTargetConnection {
    async fn send(
        &mut self,
        _: Outgoing<'_>,
        _: tokio::time::Instant,
    ) -> (Answer, tokio::time::Instant) {
        *self.0.0.lock().unwrap().entry(self.1.clone()).or_default() += 1;
        (Answer::Status(200), tokio::time::Instant::now())
    }

    fn is_usable(&self, _: tokio::time::Instant) -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn an_entry_with_several_instances_spreads_its_requests_by_policy() {
    let spread = |balance: tracelab_scenario::Balance| async move {
        let mut p = constant(300.0, Duration::from_secs(2));
        p.entries = vec![EntryTarget {
            urls: ["a", "b", "c"]
                .iter()
                .map(|host| format!("http://{host}:80/a"))
                .collect(),
            balance,
            ..entry("http://unused:80", "/a", 1.0)
        }];
        let counts = Arc::new(PerTarget::default());
        tracelab_loadgen::run(
            Arc::new(SharedPerTarget(counts.clone())),
            &p,
            None,
            &LoadOptions {
                timer: tracelab_timer::Mode::Tokio,
                ..LoadOptions::default()
            },
            &mut Vec::new(),
            CancellationToken::new(),
            &mut |_| {},
        )
        .await
        .expect("run");
        let counts = counts.0.lock().unwrap().clone();
        counts.into_values().collect::<Vec<usize>>()
    };
    let round_robin = spread(tracelab_scenario::Balance::RoundRobin).await;
    assert_eq!(
        round_robin,
        [200, 200, 200],
        "each instance once in every three"
    );
    let random = spread(tracelab_scenario::Balance::Random).await;
    assert_eq!(random.iter().sum::<usize>(), 600);
    assert!(random.iter().all(|c| (150..250).contains(c)), "{random:?}");
    assert_eq!(
        random,
        spread(tracelab_scenario::Balance::Random).await,
        "seeded"
    );
}
