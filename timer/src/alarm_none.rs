//! Where there is no `timerfd`, every precise wait goes to the timer thread.

use std::sync::Arc;
use std::time::Instant;

use crate::thread::Slot;

/// Never taken on this platform: the caller hands the wait to the timer thread.
pub(crate) fn register(_deadline: Instant, _slot: &Arc<Slot>) -> bool {
    false
}
