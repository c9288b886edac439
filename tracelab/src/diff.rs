//! `tracelab diff BEFORE AFTER`: what changed between two runs, per service and per operation,
//! with a significance test (see `tracelab_analysis::diff`), as a table, as JSON
//! (`docs/diff.schema.json`), or as a section of `report.html` (`tracelab report --baseline`).
//!
//! A run is read as a stream of whole traces ([`crate::spans`]): only the traces still open at
//! a point of the file are held, plus the per-request values the tests need, never every span
//! of a run. The two runs are read at the same time, one thread each.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tracelab_analysis::{DiffOptions, RunDiff, RunProfile, RunSampler, Sources, render_diff};

use crate::rundir;

/// `tracelab diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run: a run directory, or a trace file (OTLP/JSON, Jaeger JSON, Zipkin v2
    /// JSON).
    pub before: PathBuf,
    /// The later run: a run directory, or a trace file.
    pub after: PathBuf,
    /// Print the diff as JSON (docs/diff.schema.json) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Family-wise error rate: a change is significant when its Holm-adjusted p-value is
    /// below this.
    #[arg(long, default_value_t = 0.01, value_parser = parse_alpha)]
    pub alpha: f64,
    /// Smallest change that counts, in percent of the earlier value (the median per-request
    /// self time, or the failure rate).
    #[arg(long, default_value_t = 20.0, value_name = "PERCENT")]
    pub min_change: f64,
    /// Smallest change of the median per-request self time that counts, in milliseconds.
    #[arg(long, default_value_t = 2.0, value_name = "MS")]
    pub min_change_ms: f64,
}

fn parse_alpha(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(a) if a > 0.0 && a < 1.0 => Ok(a),
        _ => Err(format!(
            "{s:?}: expected a probability between 0 and 1, e.g. 0.01"
        )),
    }
}

impl DiffArgs {
    /// The options these arguments ask for.
    pub fn options(&self) -> DiffOptions {
        DiffOptions {
            alpha: self.alpha,
            min_relative_change: self.min_change.max(0.0) / 100.0,
            min_time_change_ns: self.min_change_ms.max(0.0) * 1e6,
            ..DiffOptions::default()
        }
    }
}

/// The spans file of a run directory, or the file itself.
pub fn spans_file(input: &Path) -> PathBuf {
    if input.is_dir() {
        input.join(rundir::SPANS_FILE)
    } else {
        input.to_path_buf()
    }
}

/// Reads one run as a stream (see the module documentation) into what a diff needs.
pub fn profile_run(input: &Path) -> anyhow::Result<RunProfile> {
    let path = spans_file(input);
    let mut sampler = RunSampler::new();
    crate::spans::for_each_trace(&path, &mut |trace| sampler.add(&trace))?;
    anyhow::ensure!(sampler.traces() > 0, "{} holds no spans", path.display());
    Ok(sampler.finish())
}

/// Compares two runs read from disk.
pub fn diff_runs(before: &Path, after: &Path, options: &DiffOptions) -> anyhow::Result<RunDiff> {
    let (b, a) = std::thread::scope(|scope| {
        let b = scope.spawn(|| profile_run(before));
        let a = profile_run(after);
        (
            b.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("reading the earlier run failed"))),
            a,
        )
    });
    let (b, a) = (b?, a?);
    Ok(RunDiff::new(
        &b,
        &a,
        Sources {
            before: &before.display().to_string(),
            after: &after.display().to_string(),
        },
        options,
    ))
}

/// `tracelab diff`: exits 0 when nothing changed, 1 when something did (as `diff` does).
pub fn diff_command(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let diff = diff_runs(&args.before, &args.after, &args.options())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&diff)?);
    } else {
        print!("{}", render_diff(&diff));
    }
    let changed = diff
        .services
        .iter()
        .chain(&diff.operations)
        .any(|e| e.changed);
    Ok(if changed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
