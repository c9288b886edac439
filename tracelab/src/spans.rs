//! Reading a run's spans as a stream of whole traces, for every command that reads span files
//! (`report`, `diff`, `import`), in any format `tracelab_receiver::trace_file` reads.
//!
//! A span file is read twice, line by line (or, for a Jaeger or Zipkin document, element by
//! element). The first pass counts the spans of each trace; the second gathers each trace's
//! spans and hands the trace over the moment its last span is read, then forgets it. Only the
//! traces still open at a point of the file are held (the lab writes a trace's spans within
//! seconds of each other), plus a span count per trace, never every span of a run: memory
//! follows the traces in flight, not the size of the file.
//!
//! A file whose last line was cut (a crash, a full disk, a `kill -9`), or a document cut short,
//! is read up to the cut, with a warning saying how much was skipped. An OTLP/JSON file that is
//! not JSON Lines (a pretty-printed document, an array) is read whole, as other tools write
//! such files small.

use std::path::Path;

use tracelab_receiver::trace_file::{self, ReadSummary};
use tracelab_trace::Trace;

/// Hands every trace of a span file to `consumer`, each once all its spans are read, and says
/// on stderr (and in the log) what was skipped. A trace is the same as
/// [`tracelab_trace::group_into_traces`] makes of the whole file.
pub fn stream_traces(path: &Path, consumer: &mut dyn FnMut(Trace)) -> anyhow::Result<ReadSummary> {
    let summary = trace_file::stream_traces(path, consumer)?;
    for warning in &summary.warnings {
        tracing::warn!("{warning}");
        eprintln!("warning: {warning}");
    }
    Ok(summary)
}

/// Every trace of a span file, each to `consumer` (see [`stream_traces`]). Returns how many
/// traces were handed over.
pub fn for_each_trace(path: &Path, consumer: &mut dyn FnMut(Trace)) -> anyhow::Result<u64> {
    Ok(stream_traces(path, consumer)?.traces)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tracelab_receiver::otlp_json;
    use tracelab_trace::{Span, TraceId, group_into_traces};

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
        let summary = stream_traces(&path, &mut |t| streamed.push(t)).unwrap();
        let whole = group_into_traces(otlp_json::read_file(&path).unwrap());
        assert_eq!((summary.traces, summary.max_open), (4, 1));
        assert!(summary.warnings.is_empty());
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
        let summary = stream_traces(&path, &mut |t| {
            assert_eq!(t.spans.len(), 4);
            count += 1;
        })
        .unwrap();
        assert_eq!(count, 4000);
        assert_eq!((summary.traces, summary.max_open), (4000, 2));
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_pretty_printed_document_is_read_whole() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../receiver/tests/data/otel-proto-example-trace.json");
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
        let summary = stream_traces(&path, &mut |t| traces.push(t)).unwrap();
        let last = text.lines().last().unwrap();
        assert_eq!(summary.warnings.len(), 1);
        assert!(
            summary.warnings[0].contains(&format!("its {} bytes were skipped", last.len())),
            "{:?}",
            summary.warnings
        );
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
