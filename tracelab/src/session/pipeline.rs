//! The span pipeline's own runtime.
//!
//! Everything that moves spans — the exporters' batch encoding, the receiver's decoding, the
//! span file's JSON — is CPU work in chunks of milliseconds. On the runtime that also runs the
//! simulated services, such a chunk holds a worker thread while a service's wait has ended and
//! its task waits to be polled: measured on the fidelity scenario, injected waits ran 1.6 ms
//! late at p99 that way, against 0.1 ms for the same waits alone. On a runtime of its own,
//! with its threads at the lowest priority (`SCHED_IDLE` while the scenario's expected span
//! rate leaves it idle cycles, nice 19 above: [`Priority`]), the pipeline still gets every idle
//! cycle, and the kernel preempts it the moment a service whose wait ended needs a core.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::runtime::{Handle, Runtime};
use tracelab_loadgen::Backpressure;
use tracelab_receiver::DeliveredUpTo;
use tracelab_scenario::Scenario;

/// The pipeline's runtime; dropped without waiting at the end of a session.
pub(crate) struct Pipeline {
    runtime: Option<Runtime>,
    priority: Priority,
}

impl Pipeline {
    /// Starts two worker threads named `tracelab-otlp` at `priority`.
    pub(crate) fn start(priority: Priority) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tracelab-otlp")
            .on_thread_start(move || priority.apply())
            .enable_all()
            .build()?;
        Ok(Pipeline {
            runtime: Some(runtime),
            priority,
        })
    }

    /// The priority of the pipeline's threads, for other background work of the session.
    pub(crate) fn priority(&self) -> Priority {
        self.priority
    }

    /// Where pipeline tasks are spawned.
    pub(crate) fn handle(&self) -> Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => Handle::current(),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Everything of the session has been flushed and stopped by now; dropping a runtime
        // from async code would panic, so its threads are left to finish on their own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How far the pipeline's threads step back for the lab's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Priority {
    /// `SCHED_IDLE`: preempted the moment a service or the scheduler needs the core.
    Idle,
    /// Nice 19: the lowest share of a core among threads that all get one.
    Low,
    /// Nice 0, as every other thread: other programs kept the cores busy as the session
    /// started ([`IDLE_MAX_OTHERS_BUSY`]).
    Shared,
}

/// How many worker threads the runtime of a lab session (its services and load generator)
/// gets on `cores` cores: all but one, which is left to the span pipeline's threads, at least
/// one.
///
/// Fewer workers than cores, because tokio's workers cost each other CPU when they are half
/// busy, as a lab's are between its injected waits: each burst of tasks made ready wakes a
/// parked worker to share it (a futex wake and two context switches), seldom worth it for tasks
/// of a few microseconds. Measured on the quickstart on two cores (`bench/lab-cpu.py`,
/// docs/performance.md, "One core for the span pipeline"): with one worker instead of two, the
/// lab spent 16–20 % less CPU per span at 3,000 and 4,000 requests/s, its workers switched
/// context 0.15 times a span instead of 0.49, its injected waits ended later than drawn by p99
/// 0.8–2.2 ms instead of 4.9–10.5 ms, and it still sent every request at 4,000/s (near this
/// machine's capacity either way); at 500/s, the same CPU and timing. The core left over is the
/// span pipeline's (OTLP export and receive, the span file, trace assembly), which needs about
/// a quarter of a core per 3,000 requests a second of the quickstart. `TOKIO_WORKER_THREADS`
/// sets another count, as for any tokio program.
pub(crate) fn service_workers(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

/// Spans a second per core up to which the pipeline runs at [`Priority::Idle`].
///
/// `SCHED_IDLE`, not only nice 19, because a nice-19 thread that holds a core keeps it until its
/// slice ends, and a service task whose wait has ended waits that long. Measured on the
/// quickstart at 500 requests/s on two cores (about 2,300 spans a second per core): with the
/// pipeline at nice 19, most of the time the lab's workers and timer thread waited over 0.25 ms
/// for a core they waited behind a pipeline thread (`bench/sched-blame.py`), and injected waits
/// ran 1.0–1.5 ms late at p99; at `SCHED_IDLE`, which the kernel preempts as soon as any other
/// thread wakes, 0.19–0.27 ms.
///
/// The price: an idle-policy thread runs only when nothing else of its scheduling group wants
/// the core. Near the lab's capacity its own services keep the cores busy and the pipeline
/// starves: the quickstart at 3,000 requests/s (about 13,800 spans a second per core) lost
/// 88,897 of 415,655 spans at `SCHED_IDLE` and none at nice 19; at 2,000/s (9,200 a core) it
/// lost none either way. Above this many spans a second per core, so, precision yields to
/// throughput; a run that busy reports waits far later than the difference anyway. Other
/// programs in other scheduling groups (autogroups, cgroups) share the CPU fairly: with four
/// busy loops of another session on its only core, a run delivered every span. Programs in the
/// lab's own group are another matter: see [`IDLE_MAX_OTHERS_BUSY`].
const IDLE_SPANS_PER_CORE: f64 = 5_000.0;

impl Priority {
    /// The priority for a session of `scenario` on `cores` cores: [`Priority::Idle`] while the
    /// spans its peak rate is expected to make leave the pipeline most of the idle time,
    /// [`Priority::Low`] above that and for a closed loop (whose rate is its services' speed).
    pub(crate) fn for_scenario(scenario: &Scenario, cores: usize) -> Priority {
        if scenario.load.users.is_some() {
            return Priority::Low;
        }
        let peak = scenario
            .load
            .arrival
            .rates(scenario.load.rate)
            .into_iter()
            .fold(scenario.load.rate, f64::max);
        let per_request = spans_per_request(scenario);
        if peak * per_request <= IDLE_SPANS_PER_CORE * cores.max(1) as f64 {
            Priority::Idle
        } else {
            Priority::Low
        }
    }

    /// The calling thread becomes a background thread at this priority. Where `SCHED_IDLE` is
    /// refused, nice 19.
    pub(crate) fn apply(self) {
        #[cfg(target_os = "linux")]
        if self != Priority::Shared {
            use thread_priority::unix::{
                NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
                thread_native_id,
            };
            let idle = self == Priority::Idle
                && set_thread_priority_and_policy(
                    thread_native_id(),
                    thread_priority::ThreadPriority::Min,
                    ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                )
                .is_ok();
            if !idle {
                let _ = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    BACKGROUND_NICE,
                );
            }
        }
    }
}

/// Above this share of the cores the session may use kept busy by other programs as it starts,
/// the pipeline runs at [`Priority::Shared`], whatever the scenario.
///
/// A lowered priority steps back for every thread of its scheduling group, other programs'
/// included where they share the group: with automatic session groups turned off
/// (`kernel.sched_autogroup_enabled = 0`) or inside one cgroup, as on many CI runners and
/// containers. Measured with four busy loops on the lab's only core and autogroups off
/// (`tests/overload.rs`'s run): at `SCHED_IDLE` the pipeline got almost none of the core, the
/// exports timed out and 600 of 900 spans were lost in a 32 s run. At nice 19 (a weight of 15
/// against 1,024 for each loop: under half a percent of the core) every span arrived in most
/// runs, but 2 runs in 4 of the test suite lost all 900. With the cores that busy the lab's
/// times are not trustworthy anyway, and the run says so; the spans still must all arrive, so
/// the pipeline then takes its fair share. A thread cannot raise its priority again without
/// privileges, so the choice is made once, before the pipeline starts; programs that get busy
/// later are not seen.
const IDLE_MAX_OTHERS_BUSY: f64 = 0.5;

impl Priority {
    /// This priority, stepped up to [`Priority::Shared`] when other programs keep more than
    /// [`IDLE_MAX_OTHERS_BUSY`] of the session's cores busy (`others_busy`, from
    /// [`others_busy_share`]; `None` when unknown).
    pub(crate) fn given_others(self, others_busy: Option<f64>) -> Priority {
        match others_busy {
            Some(busy) if busy > IDLE_MAX_OTHERS_BUSY => Priority::Shared,
            _ => self,
        }
    }

    /// How report.json names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Priority::Idle => "idle",
            Priority::Low => "nice 19",
            Priority::Shared => "normal",
        }
    }
}

/// The share (0 to 1) of the cores this process may run on that other programs kept busy over
/// `window`: the cores' busy time in `/proc/stat` less this process's own. `None` where those
/// files cannot be read (not Linux) or the window was too short to tell.
pub(crate) async fn others_busy_share(window: std::time::Duration) -> Option<f64> {
    let allowed = cpu_list(&proc_field("/proc/self/status", "Cpus_allowed_list:")?)?;
    let before = (
        cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?, &allowed)?,
        own_ticks()?,
    );
    tokio::time::sleep(window).await;
    let after = (
        cpu_ticks(&std::fs::read_to_string("/proc/stat").ok()?, &allowed)?,
        own_ticks()?,
    );
    let total = after.0.total.checked_sub(before.0.total)?;
    let busy = after.0.busy.saturating_sub(before.0.busy);
    let own = after.1.saturating_sub(before.1);
    (total > 0).then(|| busy.saturating_sub(own) as f64 / total as f64)
}

/// One line of a `/proc/<pid>/status`-style file, after `key`.
fn proc_field(path: &str, key: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(key).map(|v| v.trim().to_owned()))
}

/// A CPU list as the kernel writes it (`0-3,6`).
fn cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Busy and total clock ticks of some cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticks {
    busy: u64,
    total: u64,
}

/// The ticks of the `cpus` lines of a `/proc/stat` text (user, nice, system, idle, iowait,
/// irq, softirq, steal; guest time is already in user and nice).
fn cpu_ticks(stat: &str, cpus: &[usize]) -> Option<Ticks> {
    let mut ticks = Ticks { busy: 0, total: 0 };
    let mut found = 0;
    for line in stat.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let Some(Ok(cpu)) = fields.next().map(str::parse::<usize>) else {
            continue;
        };
        if !cpus.contains(&cpu) {
            continue;
        }
        let values: Vec<u64> = fields.take(8).map_while(|f| f.parse().ok()).collect();
        if values.len() < 4 {
            return None;
        }
        let idle = values[3] + values.get(4).copied().unwrap_or(0);
        let total: u64 = values.iter().sum();
        ticks.busy += total - idle;
        ticks.total += total;
        found += 1;
    }
    (found > 0).then_some(ticks)
}

/// This process's CPU time (user and system), in clock ticks.
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may hold spaces and is closed by the last ')';
    // `utime` and `stime` are the 14th and 15th fields, the 12th and 13th after it.
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The niceness of background threads at [`Priority::Low`], or where `SCHED_IDLE` is refused.
const BACKGROUND_NICE: i32 = 19;

/// Spans one request is expected to make, the load generator's root span included
/// ([`Scenario::expected_spans`] of each entry, by the entries' weights).
fn spans_per_request(scenario: &Scenario) -> f64 {
    let entries = &scenario.load.entries;
    let total_weight: f64 = entries.iter().map(|e| e.weight).sum();
    if total_weight <= 0.0 {
        return 1.0;
    }
    let spans: f64 = entries
        .iter()
        .map(|e| e.weight * scenario.expected_spans(&e.service, &e.route))
        .sum();
    1.0 + spans / total_weight
}

/// Holds the load generator back while `queued` (the most spans any one exporter of the lab
/// has queued) is above a quarter of an exporter's `capacity`, until it is down to a
/// sixteenth.
///
/// The pipeline runs at the lowest priority so that it never delays a service; past the lab's
/// capacity, the services keep the cores busy, the pipeline starves, and the exporters' queues
/// fill until they drop spans: traces broken by the lab, not by the scenario. Holding the
/// load instead leaves the cores to the pipeline until it has caught up; the requests held
/// start late, which their latency (from the scheduled instant) and the summary show. A
/// quarter of the queue leaves room for the spans of the requests already in flight when the
/// hold begins. `queued` is asked at most once a millisecond, however fast the load asks.
pub(crate) fn backpressure(
    queued: impl Fn() -> u64 + Send + Sync + 'static,
    capacity: usize,
) -> Backpressure {
    let high = capacity as u64 / 4;
    let low = capacity as u64 / 16;
    let origin = Instant::now();
    let behind = AtomicBool::new(false);
    let checked_us = AtomicU64::new(0);
    Backpressure::new(move || {
        let now_us = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        let last = checked_us.load(Ordering::Relaxed);
        if last != 0 && now_us.saturating_sub(last) < 1_000 {
            return behind.load(Ordering::Relaxed);
        }
        checked_us.store(now_us.max(1), Ordering::Relaxed);
        let worst = queued();
        let was = behind.load(Ordering::Relaxed);
        let is = if was { worst > low } else { worst > high };
        behind.store(is, Ordering::Relaxed);
        is
    })
}

/// How far the lab's exporters have delivered, for the trace assembly: the latest instant by
/// which every span ended had left its exporter's queue (delivered, failed or dropped).
///
/// `counts` gives each exporter's spans ended and spans out of its queue. Each exporter's
/// queue is first in, first out, so once as many spans are out as had ended at an instant,
/// every span ended before it is out. Each call notes the counts of its instant and returns
/// the latest noted instant that every exporter has passed.
pub(crate) fn delivered_up_to(
    counts: impl Fn() -> Vec<(u64, u64)> + Send + Sync + 'static,
) -> DeliveredUpTo {
    /// The spans each exporter had ended at the instants not yet passed, oldest first, and
    /// the latest instant passed.
    struct Marks {
        pending: VecDeque<(Instant, Vec<u64>)>,
        passed: Instant,
    }
    let marks = Mutex::new(Marks {
        pending: VecDeque::new(),
        passed: Instant::now(),
    });
    Box::new(move || {
        let now = Instant::now();
        let counts = counts();
        let mut marks = marks.lock().unwrap_or_else(|p| p.into_inner());
        marks
            .pending
            .push_back((now, counts.iter().map(|&(ended, _)| ended).collect()));
        while let Some((at, ended)) = marks.pending.front() {
            let passed = ended
                .iter()
                .zip(&counts)
                .all(|(&ended, &(_, out))| out >= ended);
            if !passed {
                break;
            }
            marks.passed = *at;
            marks.pending.pop_front();
        }
        marks.passed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        tracelab_scenario::parse(yaml, "test.yaml").expect("valid")
    }

    const CHAIN: &str = "
name: chain
seed: 1
services:
  front:
    routes:
      /:
        steps:
          - {call: back, route: /, repeat: 2}
          - {work: render, latency: {constant: 1}}
  back:
    routes:
      /:
        steps:
          - {call: back, route: /leaf, probability: 0.5}
      /leaf: {}
load:
  rate: RATE
  duration: 1s
  entries:
    - {service: front, route: /}
";

    #[test]
    fn spans_per_request_counts_what_each_step_makes() {
        // Root 1 + front 1 + 2 × (client 1 + back 1 + 0.5 × (client 1 + leaf 1)) + work 1.
        let s = scenario(&CHAIN.replace("RATE", "10"));
        assert_eq!(
            spans_per_request(&s),
            1.0 + 1.0 + 2.0 * (2.0 + 0.5 * 2.0) + 1.0
        );
    }

    #[test]
    fn the_quickstart_s_estimate_is_near_what_its_runs_measure() {
        // Its runs measure 9.1–9.2 spans a trace (docs/performance.md).
        let quickstart = scenario(include_str!("../../../scenarios/quickstart.yaml"));
        let estimate = spans_per_request(&quickstart);
        assert!((8.5..=10.0).contains(&estimate), "{estimate}");
    }

    #[test]
    fn the_services_get_every_core_but_the_pipeline_s() {
        assert_eq!([1, 2, 4, 16].map(service_workers), [1, 1, 3, 15]);
    }

    #[test]
    fn other_programs_busy_on_the_session_s_cores_give_the_pipeline_its_fair_share() {
        assert_eq!(Priority::Idle.given_others(Some(0.9)), Priority::Shared);
        assert_eq!(Priority::Low.given_others(Some(0.9)), Priority::Shared);
        assert_eq!(Priority::Idle.given_others(Some(0.2)), Priority::Idle);
        assert_eq!(Priority::Idle.given_others(None), Priority::Idle);
        assert_eq!(Priority::Low.given_others(Some(0.0)), Priority::Low);
    }

    #[test]
    fn cpu_lists_and_proc_stat_lines_are_read_as_the_kernel_writes_them() {
        assert_eq!(cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(cpu_list("3"), Some(vec![3]));
        assert_eq!(cpu_list("x"), None);
        let stat = "cpu  10 0 10 100 0 0 0 0 0 0\n\
                    cpu0 5 1 4 50 2 1 1 1 0 0\n\
                    cpu1 5 0 6 50 0 0 0 0 0 0\n\
                    intr 12345\n";
        // cpu0: busy 5+1+4+1+1+1 = 13 of 65; the aggregate `cpu` line is not a core.
        assert_eq!(
            cpu_ticks(stat, &[0]),
            Some(Ticks {
                busy: 13,
                total: 65
            })
        );
        assert_eq!(
            cpu_ticks(stat, &[0, 1]),
            Some(Ticks {
                busy: 24,
                total: 126
            })
        );
        assert_eq!(cpu_ticks(stat, &[7]), None);
    }

    #[tokio::test]
    async fn a_busy_loop_on_the_only_allowed_core_is_seen_as_other_programs_work() {
        if !cfg!(target_os = "linux") {
            return;
        }
        // Measured beside a busy loop pinned where this process may run: the loop is another
        // program, and the share must show it.
        let Some(cpu) = proc_field("/proc/self/status", "Cpus_allowed_list:")
            .and_then(|l| cpu_list(&l))
            .and_then(|l| l.first().copied())
        else {
            return;
        };
        let Ok(mut hog) = std::process::Command::new("taskset")
            .args(["-c", &cpu.to_string(), "sh", "-c", "while :; do :; done"])
            .spawn()
        else {
            eprintln!("skipped: taskset (util-linux) is not installed");
            return;
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let busy = others_busy_share(std::time::Duration::from_millis(200)).await;
        let _ = hog.kill();
        let _ = hog.wait();
        let cores = proc_field("/proc/self/status", "Cpus_allowed_list:")
            .and_then(|l| cpu_list(&l))
            .map_or(1, |l| l.len());
        let busy = busy.expect("/proc is readable");
        // One of `cores` cores fully busy: about 1/cores of the capacity, less ticks lost at
        // the window's edges.
        assert!(
            busy >= 0.6 / cores as f64,
            "beside a busy loop {busy:.2}, on {cores} cores"
        );
    }

    #[test]
    fn the_pipeline_steps_back_fully_until_the_spans_would_crowd_the_cores() {
        // 9 spans a request: 1,111 requests/s is 10,000 spans/s, two cores' worth at most.
        let light = scenario(&CHAIN.replace("RATE", "1100"));
        assert_eq!(Priority::for_scenario(&light, 2), Priority::Idle);
        let heavy = scenario(&CHAIN.replace("RATE", "1200"));
        assert_eq!(Priority::for_scenario(&heavy, 2), Priority::Low);
        assert_eq!(Priority::for_scenario(&heavy, 4), Priority::Idle);
    }

    /// Holds from a quarter of the queue, lets go at a sixteenth, and asks the queues at most
    /// once a millisecond.
    #[test]
    fn backpressure_holds_above_a_quarter_until_a_sixteenth() {
        let queued = std::sync::Arc::new(AtomicU64::new(0));
        let asked = std::sync::Arc::new(AtomicU64::new(0));
        let gate = backpressure(
            {
                let (queued, asked) = (queued.clone(), asked.clone());
                move || {
                    asked.fetch_add(1, Ordering::Relaxed);
                    queued.load(Ordering::Relaxed)
                }
            },
            1_600,
        );
        let behind = |n: u64| {
            queued.store(n, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(2));
            gate.is_behind()
        };
        assert!(!behind(400), "a quarter is not above a quarter");
        assert!(behind(401));
        assert!(behind(101), "held until a sixteenth");
        assert!(!behind(100));
        assert!(!behind(300), "free again until above a quarter");
        let before = asked.load(Ordering::Relaxed);
        for _ in 0..1_000 {
            gate.is_behind();
        }
        assert!(
            asked.load(Ordering::Relaxed) - before <= 2,
            "cached within the millisecond"
        );
    }

    #[test]
    fn delivery_is_up_to_the_latest_instant_every_exporter_has_passed() {
        let counts = std::sync::Arc::new(Mutex::new(vec![(10, 10), (5, 5)]));
        let delivered = delivered_up_to({
            let counts = counts.clone();
            move || counts.lock().unwrap().clone()
        });
        let before = Instant::now();
        let first = delivered();
        assert!(first >= before, "everything out: delivered up to now");
        // The first exporter falls behind: 20 ended, 12 out.
        *counts.lock().unwrap() = vec![(20, 12), (8, 8)];
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(
            delivered(),
            first,
            "not past the 20 ended at the second call"
        );
        *counts.lock().unwrap() = vec![(30, 20), (9, 9)];
        let third = Instant::now();
        let upto = delivered();
        assert!(
            upto > first && upto < third,
            "past the second call's 20, not the third's 30"
        );
        *counts.lock().unwrap() = vec![(30, 30), (9, 9)];
        assert!(delivered() >= third);
    }
}
