//! `tracelab compare`: replay a full-capture run through head and tail sampling strategies and
//! score each against the ground truth (`requests.jsonl`, `incidents.jsonl`).

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use anyhow::Context as _;
use tracelab_receiver::otlp_json;
use tracelab_receiver::trace_file::{self, TraceFileError, TraceFormat};
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
    tracelab_scenario::parse_duration(s)
        .map(|d| SlowThreshold::Ms(d.as_secs_f64() * 1000.0))
        .map_err(|_| format!("{s:?}: expected p99, milliseconds (250) or a duration (250ms)"))
}

/// Reads a trace file in any format [`trace_file`] reads. OTLP/JSON is decoded in blocks on
/// every core while the next block is read: decoding is most of the time `compare` takes on
/// a large run, and a few blocks in memory instead of the whole text keep a large capture
/// hundreds of megabytes smaller.
///
/// Blocks are cut only before a line that starts with `{`, where a document of a JSON Lines
/// file starts. A cut inside a pretty-printed document or an array leaves a block that does
/// not parse (it ends inside a value, or starts with a `,` or a `]`); then, as on any other
/// failure, the sequential reader reads the whole file, so what is accepted and every error
/// message are exactly its own.
fn read_spans(path: &Path) -> Result<Vec<Span>, TraceFileError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    if workers >= 2
        && trace_file::detect(path)? == TraceFormat::OtlpJson
        && let Some(spans) = read_in_blocks(path, workers, BLOCK_BYTES)
    {
        return Ok(spans);
    }
    let (spans, summary) = trace_file::read_spans(path)?;
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(spans)
}

/// A JSON Lines file's text without a last line that was cut short (a crash, a full disk,
/// `kill -9` in the middle of a write): such a line has no newline and is not JSON. It is
/// left out with a warning saying how much was skipped; any other bad line stays, for the
/// reader to report with its line number.
fn read_whole_lines(path: &Path) -> anyhow::Result<String> {
    let mut text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(cut) = cut_last_line(&text) {
        warn_cut(path, text.len() - cut);
        text.truncate(cut);
    }
    Ok(text)
}

/// Where a cut last line starts, if the text ends with one.
fn cut_last_line(text: &str) -> Option<usize> {
    if text.is_empty() || text.ends_with('\n') {
        return None;
    }
    let start = text.rfind('\n').map_or(0, |i| i + 1);
    let last = text[start..].trim();
    (!last.is_empty() && serde_json::from_str::<serde_json::Value>(last).is_err()).then_some(start)
}

fn warn_cut(path: &Path, bytes: usize) {
    eprintln!(
        "warning: the last line of {} was cut short (a crash or a full disk?); its {bytes} bytes were skipped",
        path.display()
    );
}

/// The spans of a JSON Lines span file whose last line was cut short, read up to that line;
/// `None` when the file does not end with a cut line (its error is the reader's to report).
fn spans_before_a_cut_line(path: &Path) -> anyhow::Result<Option<Vec<Span>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let Some(cut) = cut_last_line(&text) else {
        return Ok(None);
    };
    let spans = otlp_json::decode_lines(&text[..cut])
        .map_err(|e| e.in_file(path))
        .with_context(|| format!("cannot read spans from {}", path.display()))?;
    warn_cut(path, text.len() - cut);
    Ok(Some(spans))
}

/// Bytes read at a time (a block is extended to the next document boundary).
const BLOCK_BYTES: u64 = 8 << 20;

/// Spans of every block in file order, or `None` when anything failed.
fn read_in_blocks(path: &Path, workers: usize, block_bytes: u64) -> Option<Vec<Span>> {
    let mut file = File::open(path).ok()?;
    // Bounded, so that the reader stays at most a few blocks ahead of the decoders.
    let (send, blocks) = mpsc::sync_channel::<(usize, String)>(workers);
    let blocks = Mutex::new(blocks);
    // A decoder that failed keeps draining the channel (a reader blocked on a full channel
    // with no one receiving would wait forever); the flag stops the reader early.
    let failed = AtomicBool::new(false);
    let (read_all, decoded) = std::thread::scope(|scope| {
        let decoders: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let next = match blocks.lock() {
                            Ok(blocks) => blocks.recv(),
                            Err(_) => return done,
                        };
                        let Ok((index, text)) = next else {
                            return done;
                        };
                        match otlp_json::decode_lines(&text) {
                            Ok(spans) => done.push((index, spans)),
                            Err(_) => failed.store(true, Ordering::Relaxed),
                        }
                    }
                })
            })
            .collect();
        let read_all = feed_blocks(&mut file, block_bytes, &send, &failed);
        drop(send);
        let decoded: Vec<_> = decoders.into_iter().map(|d| d.join()).collect();
        (read_all, decoded)
    });
    if !read_all || failed.load(Ordering::Relaxed) {
        return None;
    }
    let mut parts: Vec<(usize, Vec<Span>)> = Vec::new();
    for d in decoded {
        parts.extend(d.ok()?);
    }
    parts.sort_by_key(|(index, _)| *index);
    let mut spans = Vec::with_capacity(parts.iter().map(|(_, p)| p.len()).sum());
    for (_, part) in parts {
        spans.extend(part);
    }
    Some(spans)
}

/// Reads the file in blocks that end just before a line starting with `{` (or at the end of
/// the file) and sends them in order; false when reading failed or a decoder did.
fn feed_blocks(
    file: &mut File,
    block_bytes: u64,
    send: &mpsc::SyncSender<(usize, String)>,
    failed: &AtomicBool,
) -> bool {
    let mut carry: Vec<u8> = Vec::new();
    let mut index = 0;
    loop {
        if failed.load(Ordering::Relaxed) {
            return false;
        }
        let mut block = std::mem::take(&mut carry);
        let Ok(read) = (&mut *file).take(block_bytes).read_to_end(&mut block) else {
            return false;
        };
        let end = read == 0;
        let cut = if end {
            block.len()
        } else {
            match block.windows(2).rposition(|w| w == b"\n{") {
                Some(newline) => newline + 1,
                // No boundary yet: the block is one document so far; read on.
                None => {
                    carry = block;
                    continue;
                }
            }
        };
        carry = block.split_off(cut);
        if !block.is_empty() {
            let Ok(text) = String::from_utf8(block) else {
                return false;
            };
            if send.send((index, text)).is_err() {
                return false;
            }
            index += 1;
        }
        if end {
            return true;
        }
    }
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
    let spans = match read_spans(&spans_file) {
        Ok(spans) => spans,
        Err(e) => match spans_before_a_cut_line(&spans_file)? {
            Some(spans) => spans,
            None => {
                return Err(e)
                    .with_context(|| format!("cannot read spans from {}", spans_file.display()));
            }
        },
    };
    let requests = match dir.map(|d| d.join(rundir::REQUESTS_FILE)) {
        Some(p) if p.exists() => {
            let text = read_whole_lines(&p)?;
            Some(read_requests_jsonl(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?)
        }
        _ => None,
    };
    let incidents = match dir.map(|d| d.join(rundir::INCIDENTS_FILE)) {
        Some(p) if p.exists() => {
            let text = read_whole_lines(&p)?;
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
    // `--out none` writes nothing, as the flag's help says.
    let target = match out {
        Some(path) if path.as_os_str() == "none" => None,
        Some(path) => Some(path),
        None => input.is_dir().then(|| input.join(SAMPLING_FILE)),
    };
    if let Some(target) = &target {
        rundir::write_atomically(target, &serde_json::to_vec_pretty(&report)?)?;
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

    const LINE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"x"},{"traceId":"03030303030303030303030303030303","spanId":"0404040404040404","name":"y"}]}]}]}"#;

    fn file(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("tracelab-compare-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn blocks_read_what_the_sequential_reader_reads() {
        let lines: Vec<String> = (0..40)
            .map(|i| LINE.replace("\"x\"", &format!("\"x{i}\"")))
            .collect();
        let jsonl = file("lines.jsonl", &(lines.join("\n") + "\n"));
        let sequential = otlp_json::read_file(&jsonl).unwrap();
        assert_eq!(sequential.len(), 80);
        // Tiny blocks: many blocks, and documents longer than a block.
        for block_bytes in [64, 1000, 1 << 20] {
            assert_eq!(
                read_in_blocks(&jsonl, 2, block_bytes).as_ref(),
                Some(&sequential),
                "{block_bytes}"
            );
        }
        assert_eq!(read_spans(&jsonl).unwrap(), sequential);
        let _ = std::fs::remove_file(&jsonl);
    }

    #[test]
    fn other_layouts_and_errors_are_the_sequential_readers() {
        let value: serde_json::Value = serde_json::from_str(LINE).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let array = format!("[\n{LINE},\n{LINE}\n]\n");
        let broken = format!("{LINE}\n{{\"resourceSpans\": [}}\n{LINE}\n");
        for (name, text) in [("pretty", pretty), ("array", array), ("broken", broken)] {
            let path = file(name, &text);
            let got = read_spans(&path).map_err(|e| e.to_string());
            let want = trace_file::read_spans(&path)
                .map(|(spans, _)| spans)
                .map_err(|e| e.to_string());
            assert_eq!(got, want, "{name}");
            if name == "broken" {
                assert!(got.is_err());
                assert_eq!(read_in_blocks(&path, 2, 64), None);
            }
            let _ = std::fs::remove_file(&path);
        }
    }
}
