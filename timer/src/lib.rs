//! Precise sleeps for tokio tasks.
//!
//! tokio's timer wheel ticks once a millisecond and rounds every deadline up to the next tick,
//! so `tokio::time::sleep(Duration::from_micros(500))` takes about 1.5 ms and even a zero
//! sleep yields until the next tick. For a lab whose numbers are injected latencies and arrival
//! instants, that error *is* the result: a 1 ms step measured as 2.1 ms. [`sleep`] and
//! [`sleep_until`] land within tens of microseconds instead, without a core spinning per
//! waiting task:
//!
//! - a wait longer than [`COARSE_LEAD`] first sleeps on tokio's wheel until about that much
//!   before its deadline (cheap, and thousands can wait at once);
//! - the last stretch goes to the runtime's *alarm*: one `timerfd` per runtime in tokio's own
//!   reactor, armed for the earliest of a heap of deadlines, and a task that wakes every wait
//!   that is due when it goes off. A timerfd has no timer slack, and the worker parked in
//!   `epoll_wait` wakes at its deadline, with the waiting task on its own queue;
//! - where a runtime has no reactor (built without `enable_io`) or no timerfd can be had, the
//!   last stretch goes to one dedicated timer thread instead, which keeps a heap of its own,
//!   sleeps on a condition variable with 1 ns timer slack and spins (within a budget) to the
//!   deadline before waking the task from outside the runtime.
//!
//! The mechanism was chosen by measurement (`cargo run --release -p tracelab-timer --example
//! precision`, and `python3 bench/lab-cpu.py` for the lab's CPU): on an idle 2-core machine
//! tokio's own sleep overshoots by 1.06 ms at p50, this one by tens of microseconds. The alarm
//! replaced the timer thread for runtimes with a reactor: its waits end about 10 µs later at
//! the median (nothing spins ahead of the deadline) with a shorter tail under load, and the
//! lab spends 4–21 % less CPU per span, because a wait no longer crosses two threads; see
//! docs/performance.md. A zero or past deadline
//! completes at once, without yielding.
//!
//! Under `tokio::time::pause()` the precise phase would wait in real time while the paused clock
//! stands still, so tests of scheduling logic use [`Mode::Tokio`] through [`Timer`].
//!
//! Layout:
//! - `sleep`: the [`Sleep`] future and [`Timer`], which picks precise or tokio-only waits.
//! - `alarm`: each runtime's timerfd, its heap and the task that serves it (Linux; elsewhere
//!   every precise wait goes to the thread).
//! - `thread`: the timer thread and its heap of deadlines, for runtimes without an alarm.
//! - `precision`: [`measure_precision`], a calibration of how late wake-ups land on this
//!   machine right now, and [`Overrun`], the summary of such errors.

#[cfg(target_os = "linux")]
mod alarm;
#[cfg(not(target_os = "linux"))]
#[path = "alarm_none.rs"]
mod alarm;
mod precision;
mod sleep;
mod thread;

pub use precision::{Overrun, OverrunRecorder, measure_precision, nanos_histogram, summarize};
pub use sleep::{Mode, Sleep, Timer, sleep, sleep_until};

use std::time::Duration;

/// How long before its deadline a wait leaves tokio's millisecond wheel for the precise phase
/// (the runtime's alarm, or the timer thread).
/// tokio rounds a deadline up to its next tick and wakes on a millisecond `epoll_wait`, so on
/// a virtual machine its wake-ups land up to 2–4 ms late (measured: p99 2.1 ms, max 4.3 ms);
/// the handover must come before the deadline for the precise phase to do its work. The cost
/// of a longer lead is only a longer heap: waits per second × the lead, a handful of entries.
pub const COARSE_LEAD: Duration = Duration::from_millis(8);
