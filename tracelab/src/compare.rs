//! `tracelab compare`: replay a full-capture run through head and tail sampling strategies and
//! score each against the ground truth (`requests.jsonl`, `incidents.jsonl`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tracelab_receiver::otlp_json;
use tracelab_sampling::compare::{
    CompareInput, ComparisonReport, SlowThreshold, Strategy, compare, read_incidents_jsonl,
    read_requests_jsonl, read_strategies_file,
};

use tracelab_trace::Span;

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

/// Reads an OTLP/JSON file as [`otlp_json::read_file`] does, decoding parts of it on every
/// core: decoding is most of the time `compare` takes on a large run.
///
/// The text is cut only before a line that starts with `{`, where a document of a JSON Lines
/// file starts. A cut inside a pretty-printed document or an array leaves a part that does
/// not parse (it ends inside a value, or starts with a `,` or a `]`), and then the whole file
/// is read again by the sequential reader, so what is accepted and every error message are
/// exactly the sequential reader's.
fn read_spans(path: &Path) -> Result<Vec<Span>, otlp_json::DecodeError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let text = match std::fs::read_to_string(path) {
        Ok(text) if threads > 1 => text,
        _ => return otlp_json::read_file(path),
    };
    let parts = split_documents(&text, threads);
    let decoded: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = parts
            .iter()
            .map(|part| scope.spawn(|| otlp_json::decode_lines(part)))
            .collect();
        workers.into_iter().map(|w| w.join()).collect()
    });
    let mut spans = Vec::new();
    for part in decoded {
        match part {
            Ok(Ok(mut part)) if spans.is_empty() => spans = std::mem::take(&mut part),
            Ok(Ok(part)) => spans.extend(part),
            Ok(Err(_)) => return otlp_json::read_file(path),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    Ok(spans)
}

/// Cuts `text` into at most `parts` pieces of similar size, each cut just before a line that
/// starts with `{`.
fn split_documents(text: &str, parts: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(parts);
    let mut rest = text;
    for left in (2..=parts).rev() {
        let want = rest.len() / left;
        let cut = rest.as_bytes()[want..]
            .windows(2)
            .position(|w| w == b"\n{")
            .map(|p| want + p + 1);
        match cut {
            Some(cut) => {
                let (head, tail) = rest.split_at(cut);
                pieces.push(head);
                rest = tail;
            }
            None => break,
        }
    }
    pieces.push(rest);
    pieces
}

/// Runs the comparison over a run directory or an OTLP JSON file. A run directory supplies its
/// ground truth; a bare file is scored on what its traces show (error status, durations).
pub fn compare_input(
    input: &Path,
    strategies_path: &Path,
    slow: Option<SlowThreshold>,
) -> anyhow::Result<ComparisonReport> {
    let (input, strategies) = read_input(input, strategies_path, slow)?;
    Ok(compare(&input, &strategies))
}

/// Reads what a comparison needs: the capture with its ground truth, and the strategies.
fn read_input(
    input: &Path,
    strategies_path: &Path,
    slow: Option<SlowThreshold>,
) -> anyhow::Result<(CompareInput, Vec<Strategy>)> {
    let strategies = read_strategies_file(strategies_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (spans_file, dir) = if input.is_dir() {
        (input.join(rundir::SPANS_FILE), Some(input))
    } else {
        (input.to_path_buf(), None)
    };
    let spans = read_spans(&spans_file)
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
    Ok((
        CompareInput {
            spans,
            requests,
            incidents,
            slow_threshold,
        },
        strategies.strategies,
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
    let (capture, strategies) = read_input(input, strategies, slow)?;
    let report = compare(&capture, &strategies);
    // The process ends right after this command: freeing a large capture span by span (tens
    // of millions of allocations for a million spans) would take longer than the comparison.
    std::mem::forget(capture);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_cut_only_before_a_line_that_opens_one() {
        let text = "{\"a\":\n 1}\n{\"b\": 2}\n{\"c\": 3}\n";
        for parts in 1..6 {
            let pieces = split_documents(text, parts);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.len() <= parts.max(1));
            assert!(pieces[1..].iter().all(|p| p.starts_with('{')), "{pieces:?}");
        }
        assert_eq!(split_documents("", 2).concat(), "");
        assert_eq!(split_documents("[{},\n{}]", 2).concat(), "[{},\n{}]");
    }
}
