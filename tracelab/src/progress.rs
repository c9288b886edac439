//! The live progress line: elapsed / total, rate, errors, p99.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracelab_loadgen::LoadSummary;

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
    pub fn update(&self, s: &LoadSummary) {
        if let Some(bar) = &self.bar {
            bar.set_position(s.elapsed_s as u64);
            bar.set_message(format!(
                "{} req  {:.1}/s  {} errors  p99 {:.1} ms",
                s.total, s.achieved_rate, s.errors, s.latency_ms.p99
            ));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
