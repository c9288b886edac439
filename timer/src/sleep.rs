//! The [`Sleep`] future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::COARSE_LEAD;
use crate::alarm;
use crate::thread::{self, Slot};

/// Which clock a [`Timer`] waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// tokio's wheel for the bulk of a wait, the runtime's alarm (or the timer thread) for its
    /// last stretch.
    #[default]
    Precise,
    /// tokio's wheel only: millisecond resolution, but it follows `tokio::time::pause()`, which
    /// tests of scheduling logic rely on.
    Tokio,
}

/// A handle that makes [`Sleep`]s of one [`Mode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timer {
    mode: Mode,
}

impl Timer {
    /// A timer of `mode`.
    pub fn new(mode: Mode) -> Self {
        Timer { mode }
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Completes at `deadline`; at once when it has passed.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        match self.mode {
            Mode::Precise => sleep_until(deadline),
            Mode::Tokio => Sleep {
                deadline,
                state: if deadline <= Instant::now() {
                    State::Done
                } else {
                    State::Coarse(Box::pin(tokio::time::sleep_until(deadline)), false)
                },
            },
        }
    }

    /// Completes after `duration`; at once when it is zero.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(Instant::now() + duration)
    }
}

/// Completes `duration` from now, precisely; a zero duration completes at once.
pub fn sleep(duration: Duration) -> Sleep {
    if duration.is_zero() {
        return Sleep {
            deadline: Instant::now(),
            state: State::Done,
        };
    }
    sleep_until(Instant::now() + duration)
}

/// Completes at `deadline`, precisely; a deadline already passed completes at once.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        state: State::Start,
    }
}

/// A precise sleep. See the crate documentation for how it waits.
#[derive(Debug)]
#[must_use = "a sleep does nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Not polled yet, or back from the coarse phase.
    Start,
    /// On tokio's wheel; `true` when the wheel's wake-up is the end of the wait (tokio mode),
    /// `false` when the precise phase follows.
    Coarse(Pin<Box<tokio::time::Sleep>>, bool),
    /// Handed to the runtime's alarm, or to the timer thread where it has none.
    Precise(Arc<Slot>),
    Done,
}

impl Sleep {
    /// The instant the sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(()),
                State::Start => {
                    let now = Instant::now();
                    if deadline <= now {
                        self.state = State::Done;
                        continue;
                    }
                    if deadline - now > COARSE_LEAD {
                        let wake = tokio::time::sleep_until(deadline - COARSE_LEAD);
                        self.state = State::Coarse(Box::pin(wake), false);
                    } else {
                        let slot = Arc::new(Slot::default());
                        slot.waker.register(cx.waker());
                        let deadline = deadline.into_std();
                        if !alarm::register(deadline, &slot) {
                            thread::register(deadline, slot.clone());
                        }
                        self.state = State::Precise(slot);
                    }
                }
                State::Coarse(wheel, last) => {
                    let last = *last;
                    if wheel.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.state = if last { State::Done } else { State::Start };
                }
                State::Precise(slot) => {
                    // Register before looking, so a firing between the look and the return
                    // still wakes this task.
                    slot.waker.register(cx.waker());
                    if slot.fired.load(Ordering::Acquire) || Instant::now() >= deadline {
                        self.state = State::Done;
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn zero_and_past_deadlines_complete_without_yielding() {
        let mut zero = std::pin::pin!(sleep(Duration::ZERO));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(zero.as_mut().poll(&mut cx).is_ready());
        let past = Instant::now() - Duration::from_millis(5);
        let mut late = std::pin::pin!(sleep_until(past));
        assert!(late.as_mut().poll(&mut cx).is_ready());
    }

    #[tokio::test]
    async fn never_ends_early() {
        for micros in [50, 300, 1_500, 2_500, 7_000] {
            let wanted = Duration::from_micros(micros);
            let start = std::time::Instant::now();
            sleep(wanted).await;
            assert!(start.elapsed() >= wanted, "{micros} µs ended early");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_mode_follows_paused_time() {
        let timer = Timer::new(Mode::Tokio);
        let start = Instant::now();
        timer.sleep(Duration::from_secs(30)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn thousands_wait_at_once() {
        let start = Instant::now();
        let waits: Vec<_> = (0..5_000u64)
            .map(|i| tokio::spawn(sleep(Duration::from_micros(100 + i % 3_000))))
            .collect();
        for wait in waits {
            wait.await.expect("sleep task");
        }
        assert!(start.elapsed() >= Duration::from_micros(3_099));
    }
}
