//! The timer thread: a heap of near deadlines, served by one OS thread with 1 ns timer slack,
//! for the waits of runtimes that have no alarm (see `alarm`). Started on first use.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// What a waiting [`crate::Sleep`] shares with whatever fires it (its runtime's alarm or the
/// timer thread).
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// Set once the deadline has passed; read by the future.
    pub(crate) fired: AtomicBool,
    /// The task to wake. An `AtomicWaker`, so the future can swap its waker (a task moved to
    /// another worker) while the thread may be waking the old one.
    pub(crate) waker: AtomicWaker,
}

/// One deadline in a heap, earliest first.
pub(crate) struct Entry {
    pub(crate) deadline: Instant,
    pub(crate) slot: Arc<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // `BinaryHeap` is a max-heap: reversed, its top is the earliest deadline.
        other.deadline.cmp(&self.deadline)
    }
}

/// The heap and the condition variable the thread sleeps on.
struct TimerThread {
    /// Deadlines not yet fired. Only waits of the last [`crate::COARSE_LEAD`] are here, so the
    /// heap stays small even when thousands of tasks sleep.
    queue: Mutex<BinaryHeap<Entry>>,
    /// Wakes the thread early when a deadline earlier than the one it waits for arrives;
    /// without it, the new deadline would fire only when the old one does.
    changed: Condvar,
}

static THREAD: LazyLock<Arc<TimerThread>> = LazyLock::new(|| {
    let timer = Arc::new(TimerThread {
        queue: Mutex::new(BinaryHeap::new()),
        changed: Condvar::new(),
    });
    let served = timer.clone();
    // If the thread cannot be started the process is out of threads; waits then still end,
    // because `Sleep` checks the clock itself whenever it is polled, only later.
    let _ = std::thread::Builder::new()
        .name("tracelab-timer".into())
        .spawn(move || served.run());
    timer
});

/// Asks the timer thread to fire `slot` at `deadline`.
pub(crate) fn register(deadline: Instant, slot: Arc<Slot>) {
    let timer = &*THREAD;
    let mut queue = timer.lock();
    let earlier = queue.peek().is_none_or(|top| deadline < top.deadline);
    queue.push(Entry { deadline, slot });
    drop(queue);
    if earlier {
        timer.changed.notify_one();
    }
}

/// Marks each slot fired and wakes its task.
pub(crate) fn fire(due: impl IntoIterator<Item = Arc<Slot>>) {
    for slot in due {
        slot.fired.store(true, Ordering::Release);
        slot.waker.wake();
    }
}

impl TimerThread {
    fn lock(&self) -> MutexGuard<'_, BinaryHeap<Entry>> {
        // Nothing a panic could interrupt leaves the heap inconsistent (pushes and pops are
        // whole), so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        reduce_timer_slack();
        let mut due: Vec<Arc<Slot>> = Vec::new();
        let mut wake_ups = WakeUpEstimate::default();
        let mut spin = SpinBudget::default();
        let mut queue = self.lock();
        loop {
            let now = Instant::now();
            while queue.peek().is_some_and(|top| top.deadline <= now) {
                if let Some(entry) = queue.pop() {
                    due.push(entry.slot);
                }
            }
            if !due.is_empty() {
                // Wake outside the lock: a wake-up is a syscall when the task's worker sleeps,
                // and registering tasks should not wait for it.
                drop(queue);
                fire(due.drain(..));
                queue = self.lock();
                continue;
            }
            let Some(next) = queue.peek().map(|top| top.deadline) else {
                queue = self.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let remaining = next.saturating_duration_since(now);
            // Without budget to spin, the thread sleeps all the way to the deadline.
            let early = if spin.allows(now) {
                wake_ups.lead()
            } else {
                Duration::ZERO
            };
            if remaining <= early {
                // Closer than the kernel can wake this thread reliably: wait out the rest
                // on the CPU. A plain spin, not `sched_yield`: a yield hands the core to any
                // runnable thread, the span pipeline's included, for as long as the kernel's
                // slice lasts, and the deadline then passes by a millisecond or more
                // (measured at 500 requests/s on the quickstart: 1 % of deadlines fired 0.5 ms
                // or more late with yields, 0.6 % without; the spin is short and budgeted).
                drop(queue);
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
                spin.spent(now, Instant::now());
                queue = self.lock();
                continue;
            }
            let asked = remaining
                .saturating_sub(early)
                .max(Duration::from_micros(1));
            let asleep = Instant::now();
            queue = self
                .changed
                .wait_timeout(queue, asked)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            wake_ups.observe(Instant::now().saturating_duration_since(asleep + asked));
        }
    }
}

/// How late the kernel wakes this thread from a timed wait, as a recent high percentile, so the
/// thread can ask to be woken that much early and spend the rest on the CPU. On an idle virtual
/// machine this is about 50 µs even with 1 ns timer slack; on bare metal a few microseconds.
struct WakeUpEstimate {
    recent: [Duration; 32],
    next: usize,
}

impl Default for WakeUpEstimate {
    fn default() -> Self {
        WakeUpEstimate {
            recent: [Duration::from_micros(50); 32],
            next: 0,
        }
    }
}

impl WakeUpEstimate {
    /// The longest a wake-up may reasonably be late: the 90th percentile of the recent ones,
    /// at most [`MAX_SPIN`] (a wake-up late by more than that is a loaded machine, where
    /// spinning only takes the CPU from work that needs it).
    fn lead(&self) -> Duration {
        let mut sorted = self.recent;
        sorted.sort_unstable();
        sorted[sorted.len() * 9 / 10].min(MAX_SPIN)
    }

    fn observe(&mut self, late: Duration) {
        self.recent[self.next] = late;
        self.next = (self.next + 1) % self.recent.len();
    }
}

/// The longest the thread waits on the CPU for one deadline.
const MAX_SPIN: Duration = Duration::from_micros(200);

/// Caps the thread's time on the CPU at a tenth of every 100 ms window. At high rates deadlines
/// are closer together than a wake-up's lateness and the thread would otherwise spin all the
/// time; past the cap it only sleeps, and waits end as late as the kernel wakes it (the run
/// reports how late that was).
#[derive(Default)]
struct SpinBudget {
    window_start: Option<Instant>,
    spent: Duration,
}

impl SpinBudget {
    const WINDOW: Duration = Duration::from_millis(100);
    const SHARE: Duration = Duration::from_millis(10);

    fn allows(&mut self, now: Instant) -> bool {
        match self.window_start {
            Some(start) if now.saturating_duration_since(start) < Self::WINDOW => {
                self.spent < Self::SHARE
            }
            // A new window: the budget starts again.
            _ => {
                self.window_start = Some(now);
                self.spent = Duration::ZERO;
                true
            }
        }
    }

    fn spent(&mut self, from: Instant, to: Instant) {
        self.spent += to.saturating_duration_since(from);
    }
}

/// Sets this thread's timer slack to 1 ns. Linux lets a timeout fire up to the slack late (50 µs
/// by default) to batch wake-ups; a timer thread exists to be on time.
fn reduce_timer_slack() {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_timerslack(1);
    }
}
