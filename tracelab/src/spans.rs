//! Reading a run's spans as a stream of whole traces, for every command that reads span files
//! (`report`, `diff`).
//!
//! A span file is read twice, line by line. The first pass counts the spans of each trace; the
//! second gathers each trace's spans and hands the trace over the moment its last span is
//! read, then forgets it. Only the traces still open at a point of the file are held (the lab
//! writes a trace's spans within seconds of each other), plus a span count per trace, never
//! every span of a run: memory follows the traces in flight, not the size of the file.
//!
//! A file whose last line was cut (a crash, a full disk, a `kill -9`) is read up to that line,
//! with a warning saying how much was skipped. A file that is not JSON Lines (a pretty-printed
//! document, an array) is read whole, as other tools write such files small.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use anyhow::Context as _;
use tracelab_receiver::otlp_json;
use tracelab_trace::{Span, Trace, TraceId, group_into_traces};

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
        /// Bytes of a last line that was cut short and skipped (0 when the file ended whole).
        cut_bytes: usize,
    },
    /// A line is not a whole OTLP/JSON document: the file is not JSON Lines, and nothing was
    /// handed over.
    NotLines,
}

/// Hands every trace of a JSON Lines OTLP file to `consumer`, each once all its spans are
/// read. A trace is the same as [`group_into_traces`] makes of the whole file.
pub fn stream_traces(path: &Path, consumer: &mut dyn FnMut(Trace)) -> anyhow::Result<Streamed> {
    // Pass 1: how many spans each trace has.
    let mut expected: HashMap<TraceId, usize> = HashMap::new();
    let first = for_each_line(path, &mut |spans| {
        for s in spans {
            *expected.entry(s.trace_id).or_default() += 1;
        }
    })?;
    let Lines::Read { cut_bytes } = first else {
        return Ok(Streamed::NotLines);
    };
    // Pass 2: gather, and hand each trace over as soon as it is whole.
    let mut open: HashMap<TraceId, Vec<Span>> = HashMap::new();
    let (mut traces, mut max_open) = (0u64, 0usize);
    let second = for_each_line(path, &mut |spans| {
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
        matches!(second, Lines::Read { .. }) && open.is_empty(),
        "{} changed while it was read; run the command again",
        path.display()
    );
    if cut_bytes > 0 {
        tracing::warn!(
            "the last line of {} was cut short (a crash or a full disk?): its {cut_bytes} bytes were skipped",
            path.display()
        );
        eprintln!(
            "warning: the last line of {} was cut short; its {cut_bytes} bytes were skipped",
            path.display()
        );
    }
    Ok(Streamed::Done {
        traces,
        max_open,
        cut_bytes,
    })
}

/// Every trace of a span file, each to `consumer`: streamed when the file is JSON Lines, read
/// whole otherwise. Returns how many traces were handed over.
pub fn for_each_trace(path: &Path, consumer: &mut dyn FnMut(Trace)) -> anyhow::Result<u64> {
    match stream_traces(path, consumer)? {
        Streamed::Done { traces, .. } => Ok(traces),
        Streamed::NotLines => {
            let spans = otlp_json::read_file(path)
                .with_context(|| format!("cannot read spans from {}", path.display()))?;
            let traces = group_into_traces(spans);
            let count = traces.len() as u64;
            traces.into_iter().for_each(consumer);
            Ok(count)
        }
    }
}

/// How a pass over the lines ended.
enum Lines {
    /// Every line was a document, but perhaps a last one cut short.
    Read { cut_bytes: usize },
    /// A line in the middle is not a whole document.
    NotDocuments,
}

/// Decodes each non-empty line of `path` as one OTLP/JSON document and hands over its spans.
/// A last line without its newline that does not decode is a cut line, skipped; any other line
/// that does not decode stops the pass.
fn for_each_line(path: &Path, each: &mut dyn FnMut(Vec<Span>)) -> anyhow::Result<Lines> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            return Ok(Lines::Read { cut_bytes: 0 });
        }
        if line.trim().is_empty() {
            continue;
        }
        match otlp_json::decode_lines(&line) {
            Ok(spans) => each(spans),
            Err(_) if !line.ends_with('\n') => return Ok(Lines::Read { cut_bytes: read }),
            Err(_) => return Ok(Lines::NotDocuments),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "tracelab-spans-{name}-{}-{}",
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
                max_open: 1,
                cut_bytes: 0
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
                max_open: 2,
                cut_bytes: 0
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
        let mut spans = 0;
        let traces = for_each_trace(&path, &mut |t| spans += t.spans.len()).unwrap();
        assert_eq!((traces, spans), (1, 1));
    }

    #[test]
    fn a_cut_last_line_is_skipped_and_said() {
        let source =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/collector-file-exporter.jsonl");
        let mut text = std::fs::read_to_string(&source).unwrap();
        let whole_lines = text.lines().count();
        // A crash cuts the last line in the middle.
        text.truncate(text.len() - 100);
        let path = scratch("cut");
        std::fs::write(&path, &text).unwrap();
        let mut traces = Vec::new();
        let outcome = stream_traces(&path, &mut |t| traces.push(t)).unwrap();
        let Streamed::Done { cut_bytes, .. } = outcome else {
            panic!("a cut file is still JSON Lines: {outcome:?}")
        };
        let last = text.lines().last().unwrap();
        assert_eq!(cut_bytes, last.len());
        // Everything before the cut line was read.
        let before: String = text
            .lines()
            .take(whole_lines - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        let expected = group_into_traces(otlp_json::decode_lines(&before).unwrap());
        assert_eq!(sorted(traces), sorted(expected));
        std::fs::remove_file(&path).ok();
    }
}
