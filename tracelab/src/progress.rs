//! The live progress line: elapsed / total, current rate, errors, p99 of the last second.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracelab_loadgen::ProgressSnapshot;

/// A progress display, or nothing when stderr is not a terminal or it was turned off.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar for a run of `total`, unless `disabled` or stderr is not a TTY.
    pub fn new(total: Duration, disabled: bool) -> Self {
        if disabled || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(
            Some(total.as_secs().max(1)),
            ProgressDrawTarget::stderr_with_hz(4),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress { bar: Some(bar) }
    }

    /// Shows the latest totals.
    pub fn update(&self, s: &ProgressSnapshot) {
        if let Some(bar) = &self.bar {
            bar.set_position(s.elapsed_s as u64);
            bar.set_message(Self::message(s));
        }
    }

    /// The text after the bar: totals, then the last whole second's rate (against its
    /// target in open loop) and p99.
    pub fn message(s: &ProgressSnapshot) -> String {
        let mut text = format!("{} req  {} errors", s.total, s.errors);
        if s.dropped > 0 {
            text.push_str(&format!(" ({} dropped)", s.dropped));
        }
        if let Some(last) = s.last_second {
            text.push_str(&format!("  {}/s", last.completed));
            if let Some(target) = last.target {
                text.push_str(&format!(" (target {target:.0})"));
            }
            text.push_str(&format!("  p99 {:.1} ms", last.p99_ms));
        }
        text
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
