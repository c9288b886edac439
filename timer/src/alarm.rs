//! The last stretch of waits on one `timerfd` per runtime, in tokio's own reactor.
//!
//! A `timerfd` is an hrtimer without timer slack: the kernel marks it readable at its
//! deadline, and a runtime worker parked in `epoll_wait` wakes at once. Each runtime gets one,
//! armed for the earliest deadline of a heap, and a task of its own that, when it goes off,
//! wakes every wait that is due and arms it for the next. Compared with the timer thread that
//! saves, for every wait, the two thread switches (the worker handing the deadline over, the
//! thread waking the worker) and the thread's spin before each deadline; compared with a
//! `timerfd` per wait, it arms the kernel's timer once per distinct next deadline rather than
//! once per wait, and deadlines that fall together are served by one wake-up.
//!
//! Where a runtime has no reactor (built without `enable_io`) or the descriptor cannot be
//! opened, waits go to the timer thread instead.

use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::runtime::{Handle, Id};

use crate::thread::{Entry, Slot, fire};

/// A timerfd, as tokio's reactor needs it.
#[derive(Debug)]
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One runtime's alarm: its heap of deadlines and the timerfd armed for the earliest.
struct Alarm {
    queue: Mutex<Queue>,
    fd: AsyncFd<Fd>,
    /// False once the runtime has dropped the alarm's task (it is shutting down).
    serving: AtomicBool,
}

struct Queue {
    heap: BinaryHeap<Entry>,
    /// The deadline the timerfd is armed for, if any.
    armed: Option<Instant>,
}

/// Each runtime's alarm, or `None` where it could not have one.
static ALARMS: LazyLock<Mutex<HashMap<Id, Option<Weak<Alarm>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

thread_local! {
    /// The alarm of the runtime this thread last served, so a wait looks it up without a lock.
    static CURRENT: std::cell::RefCell<Option<(Id, Option<Arc<Alarm>>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Asks the current runtime's alarm to fire `slot` at `deadline`; `false` when there is none
/// (no runtime, no reactor, no descriptor), and the caller hands the wait to the timer thread.
pub(crate) fn register(deadline: Instant, slot: &Arc<Slot>) -> bool {
    let Ok(runtime) = Handle::try_current() else {
        return false;
    };
    let Some(alarm) = alarm_of(&runtime) else {
        return false;
    };
    let mut queue = alarm.lock();
    // Looked at under the lock that `Stop` takes to drain the heap: an entry pushed after
    // the drain would never fire.
    if !alarm.serving.load(Ordering::Acquire) {
        return false;
    }
    queue.heap.push(Entry {
        deadline,
        slot: slot.clone(),
    });
    if queue.armed.is_none_or(|armed| deadline < armed) {
        arm(&alarm.fd, deadline);
        queue.armed = Some(deadline);
    }
    true
}

/// The alarm of `runtime`, started on first use.
fn alarm_of(runtime: &Handle) -> Option<Arc<Alarm>> {
    let id = runtime.id();
    // `try_with`: a wait polled while this thread's locals are being torn down finds no
    // cache rather than panicking.
    let cached = CURRENT
        .try_with(|current| match &*current.borrow() {
            Some((cached, alarm)) if *cached == id => Some(alarm.clone()),
            _ => None,
        })
        .ok()
        .flatten();
    let alarm = match cached {
        Some(Some(alarm)) if alarm.serving.load(Ordering::Acquire) => return Some(alarm),
        Some(None) => return None,
        _ => {
            let mut alarms = ALARMS.lock().unwrap_or_else(|p| p.into_inner());
            alarms.retain(|_, alarm| alarm.as_ref().is_none_or(|a| a.strong_count() > 0));
            match alarms.get(&id) {
                Some(None) => None,
                Some(Some(alarm)) => alarm.upgrade(),
                None => {
                    let alarm = start(runtime);
                    alarms.insert(id, alarm.as_ref().map(Arc::downgrade));
                    alarm
                }
            }
        }
    };
    let _ = CURRENT.try_with(|current| *current.borrow_mut() = Some((id, alarm.clone())));
    alarm.filter(|alarm| alarm.serving.load(Ordering::Acquire))
}

/// Opens the runtime's timerfd and spawns the task that serves it.
fn start(runtime: &Handle) -> Option<Arc<Alarm>> {
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )
    .ok()?;
    // Registration panics where the runtime has no reactor (built without `enable_io`), and
    // tokio offers no way to ask first: the panic is caught, once per such runtime (its
    // message still reaches the panic hook), and that runtime's waits go to the timer thread.
    // tracelab's own runtimes all have a reactor.
    //
    // `with_interest` is deprecated because a `T` that does not own its descriptor could close
    // it while registered (`register_with_interest` states that as an `unsafe` contract, and
    // this workspace forbids `unsafe`): `Fd` owns the timerfd and closes it only when the
    // `AsyncFd` is dropped, after deregistering.
    #[allow(deprecated)]
    let fd = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        AsyncFd::with_interest(Fd(timer), Interest::READABLE)
    }))
    .ok()?
    .ok()?;
    let alarm = Arc::new(Alarm {
        queue: Mutex::new(Queue {
            heap: BinaryHeap::new(),
            armed: None,
        }),
        fd,
        serving: AtomicBool::new(true),
    });
    // The guard is made here, not in the task: a task dropped before its first poll drops
    // only what it captured, and the guard must fire the waits then too.
    runtime.spawn(serve(Stop(alarm.clone())));
    Some(alarm)
}

/// Ends an alarm: marks it out of service and fires every wait still registered, so that none
/// is left waiting for a wake-up that cannot come.
struct Stop(Arc<Alarm>);

impl Drop for Stop {
    fn drop(&mut self) {
        let due: Vec<_> = {
            let mut queue = self.0.lock();
            self.0.serving.store(false, Ordering::Release);
            queue.heap.drain().map(|e| e.slot).collect()
        };
        fire(due);
    }
}

/// The alarm's task: whenever the timerfd goes off, wakes the waits that are due and arms it
/// for the next. It lives as long as the runtime; when the runtime drops it, `stop` fires the
/// waits still registered.
async fn serve(stop: Stop) {
    let alarm = &stop.0;
    let mut due = Vec::new();
    loop {
        let Ok(mut ready) = alarm.fd.readable().await else {
            return;
        };
        let mut expirations = [0u8; 8];
        match nix::unistd::read(ready.get_inner().0.as_fd(), &mut expirations) {
            // The expiration is consumed, so the descriptor is not readable until the next
            // one: clearing now saves a `read` that would only return EAGAIN. tokio clears
            // only the readiness this guard saw, never an expiration that came after it.
            Ok(_) => ready.clear_ready(),
            // Readiness left over from an alarm that was re-armed before it went off.
            Err(nix::errno::Errno::EAGAIN) => {
                ready.clear_ready();
                continue;
            }
            Err(_) => return,
        }
        {
            let mut queue = alarm.lock();
            let now = Instant::now();
            while queue.heap.peek().is_some_and(|top| top.deadline <= now) {
                if let Some(entry) = queue.heap.pop() {
                    due.push(entry.slot);
                }
            }
            queue.armed = queue.heap.peek().map(|top| top.deadline);
            if let Some(next) = queue.armed {
                arm(&alarm.fd, next);
            }
        }
        fire(due.drain(..));
    }
}

impl Alarm {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Pushes and pops are whole: a poisoned lock still holds a consistent heap.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Arms `fd` to go off at `deadline` (at once when it has passed).
fn arm(fd: &AsyncFd<Fd>, deadline: Instant) {
    // `Instant` reads CLOCK_MONOTONIC, the timerfd's clock; a relative time from a later `now`
    // can only make it go off later than `deadline`, never earlier. A zero time would disarm.
    let after = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_nanos(1));
    let _ = fd.get_ref().0.set(
        Expiration::OneShot(TimeSpec::from_duration(after)),
        TimerSetTimeFlags::empty(),
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The wait of one runtime on this thread, then of another: the thread's cached alarm
    /// belongs to the first, and a wait in the second must not go to it (it would never fire).
    #[test]
    fn runtimes_in_turn_on_one_thread_each_use_their_own_alarm() {
        for _ in 0..3 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let waited = runtime.block_on(async {
                let start = Instant::now();
                tokio::time::timeout(
                    Duration::from_secs(5),
                    crate::sleep(Duration::from_micros(700)),
                )
                .await
                .expect("the wait ends");
                start.elapsed()
            });
            assert!(waited >= Duration::from_micros(700), "{waited:?}");
            assert!(waited < Duration::from_secs(1), "{waited:?}");
            drop(runtime);
        }
    }

    #[test]
    fn a_runtime_without_a_reactor_waits_on_the_timer_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let handle = runtime.handle().clone();
        assert!(
            !register(
                Instant::now() + Duration::from_millis(1),
                &Arc::new(Slot::default()),
            ),
            "outside a runtime there is no alarm"
        );
        runtime.block_on(async {
            assert!(alarm_of(&handle).is_none(), "no reactor, no alarm");
            let start = Instant::now();
            crate::sleep(Duration::from_micros(1_500)).await;
            assert!(start.elapsed() >= Duration::from_micros(1_500));
        });
    }

    /// A runtime shut down while waits are pending: its alarm's task is dropped, the waits
    /// still registered are fired (not left hanging), and the alarm (with its timerfd) is gone.
    #[test]
    fn a_runtime_shut_down_mid_wait_fires_its_waits_and_closes_its_alarm() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let slot = Arc::new(Slot::default());
        let (registered, alarm) = runtime.block_on({
            let slot = slot.clone();
            async move {
                // Start the alarm with a short wait, then leave a long one pending.
                crate::sleep(Duration::from_micros(200)).await;
                let registered = register(Instant::now() + Duration::from_secs(3_600), &slot);
                let alarm = alarm_of(&Handle::current()).map(|alarm| Arc::downgrade(&alarm));
                (registered, alarm)
            }
        });
        assert!(registered, "a runtime with a reactor has an alarm");
        let alarm = alarm.expect("the alarm");
        assert!(!slot.fired.load(Ordering::Acquire));
        runtime.shutdown_timeout(Duration::from_secs(5));
        assert!(
            slot.fired.load(Ordering::Acquire),
            "pending waits are released"
        );
        // This thread's cache still holds the alarm; once it lets go, nothing does.
        CURRENT.with(|current| current.borrow_mut().take());
        assert!(
            alarm.upgrade().is_none(),
            "the alarm and its timerfd are dropped"
        );
    }
}
