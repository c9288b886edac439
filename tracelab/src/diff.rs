//! `tracelab diff BEFORE AFTER`: what changed between two runs, per service and per operation,
//! with a significance test (see `tracelab_analysis::diff`), as a table, as JSON
//! (`docs/diff.schema.json`), or as a section of `report.html` (`tracelab report --baseline`).
//!
//! A run is read as a stream: its spans file twice, line by line. The first pass counts the
//! spans of each trace; the second gathers each trace's spans and hands the trace to the
//! analysis the moment its last span is read, then forgets it. Only the traces still open at
//! a point of the file are held (the lab writes a trace's spans within seconds of each other),
//! plus a span count per trace and the per-request values the tests need, never every span of
//! a run. The two runs are read at the same time, one thread each.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use tracelab_analysis::{DiffOptions, RunDiff, RunProfile, RunSampler, Sources, render_diff};
use tracelab_receiver::otlp_json;
use tracelab_trace::{Span, Trace, TraceId, group_into_traces};

use crate::rundir;

/// `tracelab diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run: a run directory, or an OTLP JSON file.
    pub before: PathBuf,
    /// The later run: a run directory, or an OTLP JSON file.
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
    match stream_traces(&path, &mut |trace| sampler.add(&trace))? {
        Streamed::Done { .. } => {}
        Streamed::NotLines => {
            // A pretty-printed document or an array spans several lines: read it whole, as
            // `tracelab report` does; its errors name the file and the line.
            let spans = otlp_json::read_file(&path)
                .with_context(|| format!("cannot read spans from {}", path.display()))?;
            sampler = RunSampler::new();
            for trace in group_into_traces(spans) {
                sampler.add(&trace);
            }
        }
    }
    anyhow::ensure!(sampler.traces() > 0, "{} holds no spans", path.display());
    Ok(sampler.finish())
}

/// How [`stream_traces`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Streamed {
    /// Every trace was handed over.
    Done {
        /// Traces handed over.
        traces: u64,
        /// The most traces open (some spans read, not all) at any point of the file: what the
        /// reader held.
        max_open: usize,
    },
    /// A line is not a whole OTLP/JSON document: the file is not JSON Lines, and nothing was
    /// handed over.
    NotLines,
}

/// Hands every trace of a JSON Lines OTLP file to `consumer`, each once all its spans are read
/// (see the module documentation). A trace is the same as [`group_into_traces`] makes of the
/// whole file.
pub fn stream_traces(path: &Path, consumer: &mut dyn FnMut(Trace)) -> anyhow::Result<Streamed> {
    // Pass 1: how many spans each trace has.
    let mut expected: HashMap<TraceId, usize> = HashMap::new();
    let complete = for_each_line(path, &mut |spans| {
        for s in spans {
            *expected.entry(s.trace_id).or_default() += 1;
        }
    })?;
    if !complete {
        return Ok(Streamed::NotLines);
    }
    // Pass 2: gather, and hand each trace over as soon as it is whole.
    let mut open: HashMap<TraceId, Vec<Span>> = HashMap::new();
    let (mut traces, mut max_open) = (0u64, 0usize);
    let complete = for_each_line(path, &mut |spans| {
        for s in spans {
            let id = s.trace_id;
            let gathered = open.entry(id).or_default();
            gathered.push(s);
            if expected.get(&id) == Some(&gathered.len())
                && let Some(spans) = open.remove(&id)
            {
                expected.remove(&id);
                traces += 1;
                consumer(Trace::new(id, spans));
            }
        }
        max_open = max_open.max(open.len());
    })?;
    anyhow::ensure!(
        complete && open.is_empty(),
        "{} changed while it was read; run the command again",
        path.display()
    );
    Ok(Streamed::Done { traces, max_open })
}

/// Decodes each non-empty line of `path` as one OTLP/JSON document and hands over its spans.
/// Returns false, having stopped, at the first line that is not a whole document.
fn for_each_line(path: &Path, each: &mut dyn FnMut(Vec<Span>)) -> anyhow::Result<bool> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            return Ok(true);
        }
        if line.trim().is_empty() {
            continue;
        }
        match otlp_json::decode_lines(&line) {
            Ok(spans) => each(spans),
            Err(_) => return Ok(false),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "tracelab-diff-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ))
    }

    fn sorted(mut traces: Vec<Trace>) -> Vec<(TraceId, Vec<Span>)> {
        traces.sort_by_key(|t| t.trace_id);
        traces.into_iter().map(|t| (t.trace_id, t.spans)).collect()
    }

    #[test]
    fn streamed_traces_are_the_traces_of_the_whole_file() {
        // Its traces are spread over several lines and resources.
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/collector-file-exporter.jsonl");
        let mut streamed = Vec::new();
        let outcome = stream_traces(&path, &mut |t| streamed.push(t)).unwrap();
        let whole = group_into_traces(otlp_json::read_file(&path).unwrap());
        assert_eq!(
            outcome,
            Streamed::Done {
                traces: 4,
                max_open: 1
            }
        );
        assert_eq!(sorted(streamed), sorted(whole));
    }

    #[test]
    fn a_long_file_is_read_holding_only_the_traces_in_flight() {
        // 2,000 traces, each written as two lines (child first, then the root, with another
        // trace's lines in between), as a run directory's spans file interleaves them.
        let whole = group_into_traces(
            otlp_json::read_file(
                &Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/data/collector-file-exporter.jsonl"),
            )
            .unwrap(),
        );
        let template = whole
            .iter()
            .find(|t| t.spans.len() == 4)
            .expect("a trace of four spans")
            .clone();
        let mut text = String::new();
        let with_id = |n: u64| {
            let mut t = template.clone();
            let id = TraceId(u128::from(n + 1).to_be_bytes());
            for s in &mut t.spans {
                s.trace_id = id;
            }
            t
        };
        for n in 0..2000u64 {
            let (t, u) = (with_id(n), with_id(n + 1_000_000));
            text.push_str(&otlp_json::encode_request_line(&t.spans[2..]));
            text.push('\n');
            text.push_str(&otlp_json::encode_request_line(&u.spans[..2]));
            text.push('\n');
            text.push_str(&otlp_json::encode_request_line(&t.spans[..2]));
            text.push('\n');
            text.push_str(&otlp_json::encode_request_line(&u.spans[2..]));
            text.push('\n');
        }
        let path = scratch("long");
        std::fs::write(&path, text).unwrap();
        let mut count = 0;
        let outcome = stream_traces(&path, &mut |t| {
            assert_eq!(t.spans.len(), 4);
            count += 1;
        })
        .unwrap();
        assert_eq!(count, 4000);
        assert_eq!(
            outcome,
            Streamed::Done {
                traces: 4000,
                max_open: 2
            }
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_pretty_printed_document_is_read_whole() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../receiver/tests/data/otel-proto-example-trace.json");
        let outcome = stream_traces(&path, &mut |_| panic!("nothing is streamed")).unwrap();
        assert_eq!(outcome, Streamed::NotLines);
        let profile = profile_run(&path).unwrap();
        assert_eq!(profile.analysis.overview.spans, 1);
    }
}
