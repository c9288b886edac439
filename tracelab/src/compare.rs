//! `tracelab compare`: replay a full-capture run through head and tail sampling strategies and
//! score each against the ground truth (`requests.jsonl`, `incidents.jsonl`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tracelab_sampling::compare::{
    CompareInput, ComparisonReport, SlowThreshold, compare, read_incidents_jsonl,
    read_requests_jsonl, read_strategies_file,
};

use crate::rundir;

/// File name of the comparison in a run directory.
pub const SAMPLING_FILE: &str = "sampling.json";

/// Parses `--slow`: `p99`, a number of milliseconds, or a duration such as `250ms`.
pub fn parse_slow(s: &str) -> Result<SlowThreshold, String> {
    if s.eq_ignore_ascii_case("p99") {
        return Ok(SlowThreshold::P99);
    }
    if let Ok(ms) = s.parse::<f64>()
        && ms.is_finite()
        && ms >= 0.0
    {
        return Ok(SlowThreshold::Ms(ms));
    }
    humantime::parse_duration(s)
        .map(|d| SlowThreshold::Ms(d.as_secs_f64() * 1000.0))
        .map_err(|_| format!("{s:?}: expected p99, milliseconds (250) or a duration (250ms)"))
}

/// Runs the comparison over a run directory or an OTLP JSON file. A run directory supplies its
/// ground truth; a bare file is scored on what its traces show (error status, durations).
pub fn compare_input(
    input: &Path,
    strategies_path: &Path,
    slow: Option<SlowThreshold>,
) -> anyhow::Result<ComparisonReport> {
    let strategies = read_strategies_file(strategies_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (spans_file, dir) = if input.is_dir() {
        (input.join(rundir::SPANS_FILE), Some(input))
    } else {
        (input.to_path_buf(), None)
    };
    let spans = tracelab_receiver::otlp_json::read_file(&spans_file)
        .with_context(|| format!("cannot read spans from {}", spans_file.display()))?;
    let requests = match dir.map(|d| d.join(rundir::REQUESTS_FILE)) {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Some(read_requests_jsonl(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?)
        }
        _ => None,
    };
    let incidents = match dir.map(|d| d.join("incidents.jsonl")) {
        Some(p) if p.exists() => {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            read_incidents_jsonl(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        _ => Vec::new(),
    };
    let slow_threshold = slow
        .or(strategies.slow_threshold)
        .unwrap_or(SlowThreshold::P99);
    Ok(compare(
        &CompareInput {
            spans,
            requests,
            incidents,
            slow_threshold,
        },
        &strategies.strategies,
    ))
}

/// `tracelab compare INPUT --strategies FILE`: prints the table and writes `sampling.json`
/// (into the run directory, or `--out`).
pub fn compare_command(
    input: &Path,
    strategies: &Path,
    slow: Option<SlowThreshold>,
    out: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = compare_input(input, strategies, slow)?;
    let target = out.or_else(|| input.is_dir().then(|| input.join(SAMPLING_FILE)));
    if let Some(target) = &target {
        std::fs::write(target, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
        if let Some(target) = &target {
            println!("\n  written: {}", target.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
