//! Trace files as people have them, read into the span model: OTLP/JSON (a run directory's
//! `spans.otlp.jsonl`, the Collector's `file` exporter), Jaeger JSON (the UI's "Download JSON",
//! the query API's `/api/traces`) and Zipkin v2 JSON (`/api/v2/spans` and `/api/v2/traces`
//! bodies, exporter payloads). The format is told from the content ([`detect`]); `report`,
//! `compare`, `diff` and `import` all read through here.
//!
//! Files are read as streams where the format allows it: JSON Lines one line at a time, and a
//! Jaeger or Zipkin document one element of its outer array at a time, so that
//! [`stream_traces`] holds only the traces still open at a point of the file. A file cut short
//! (an export still being written, a download interrupted) loses only what was cut: the
//! complete part is read and a warning says what was dropped. A pretty-printed OTLP/JSON
//! document is read whole, as before.
//!
//! Layout: `detect` (the format from the first value), `otlp_lines` (JSON Lines with a cut
//! last line), `jaeger` and `zipkin` (their documents, element by element), `fields` (ids, times
//! and lists as both write them).

mod detect;
mod fields;
mod jaeger;
mod otlp_lines;
mod zipkin;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use tracelab_trace::{Span, Trace, TraceId, group_into_traces};

use crate::otlp_json::{self, DecodeError};

/// The formats tracelab reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceFormat {
    /// OTLP/JSON: one `ExportTraceServiceRequest` per line, one document, or an array of them.
    OtlpJson,
    /// Jaeger's JSON: `{"data": [{"traceID", "spans", "processes"}, ...]}`.
    JaegerJson,
    /// Zipkin's v2 JSON: an array of spans, or an array of traces (arrays of spans).
    ZipkinJson,
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceFormat::OtlpJson => "OTLP/JSON",
            TraceFormat::JaegerJson => "Jaeger JSON",
            TraceFormat::ZipkinJson => "Zipkin v2 JSON",
        })
    }
}

/// Why a trace file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceFileError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The content is none of the formats tracelab reads.
    #[error(
        "{}: not a trace file tracelab reads: {found}\n  help: tracelab reads OTLP/JSON \
         (objects with `resourceSpans`, one per line or one document), Jaeger JSON (the UI's \
         \"Download JSON\": {{\"data\": [{{\"traceID\", \"spans\", \"processes\"}}]}}) and Zipkin \
         v2 JSON (an array of spans with `traceId`, `id`, `localEndpoint`)",
        path.display()
    )]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What the file holds instead.
        found: String,
    },
    /// A Jaeger or Zipkin file that is not valid JSON, or whose spans are not usable.
    #[error("{}: line {line}, column {column}: {format}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The format it was read as.
        format: TraceFormat,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong, naming the field.
        message: String,
    },
    /// An OTLP/JSON file that could not be decoded.
    #[error(transparent)]
    Otlp(#[from] DecodeError),
    /// The file's traces differed between the two passes of [`stream_traces`].
    #[error("{} changed while it was read; run the command again", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
}

/// What reading a file found besides its spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSummary {
    /// The format the file was read as.
    pub format: TraceFormat,
    /// Spans read.
    pub spans: u64,
    /// Traces handed over (by [`stream_traces`]; 0 from [`read_spans`]).
    pub traces: u64,
    /// The most traces open (some spans read, not all) at any point of the file: what
    /// [`stream_traces`] held. 0 from [`read_spans`].
    pub max_open: usize,
    /// What was skipped and why, for the user (a cut last line, say).
    pub warnings: Vec<String>,
}

/// The format of the file at `path`, from its first JSON value; an error naming what the file
/// holds when it is none of [`TraceFormat`]'s.
pub fn detect(path: &Path) -> Result<TraceFormat, TraceFileError> {
    detect::detect(path)
}

/// Every span of the file at `path`, in file order, whatever its format.
pub fn read_spans(path: &Path) -> Result<(Vec<Span>, ReadSummary), TraceFileError> {
    let format = detect(path)?;
    let mut spans = Vec::new();
    let batches = for_each_batch(path, format, &mut |batch| spans.extend(batch))?;
    let spans = match batches {
        Batches::Streamed { warnings } => (spans, warnings),
        // Not JSON Lines: one OTLP/JSON document (or an array of them), read whole.
        Batches::Whole => (otlp_json::read_file(path)?, Vec::new()),
    };
    let summary = ReadSummary {
        format,
        spans: spans.0.len() as u64,
        traces: 0,
        max_open: 0,
        warnings: spans.1,
    };
    Ok((spans.0, summary))
}

/// Hands every trace of the file at `path` to `consumer`, each once all its spans are read,
/// holding only the traces still open at a point of the file. The file is read twice: first
/// to count the spans of each trace, then to gather them, so that a trace is handed over the
/// moment its last span is read, wherever in the file its spans are. A trace is the same as
/// [`group_into_traces`] makes of the whole file. An OTLP/JSON document that is not JSON
/// Lines is read whole.
pub fn stream_traces(
    path: &Path,
    consumer: &mut dyn FnMut(Trace),
) -> Result<ReadSummary, TraceFileError> {
    let format = detect(path)?;
    // Pass 1: how many spans each trace has.
    let mut expected: HashMap<TraceId, usize> = HashMap::new();
    let mut spans = 0u64;
    let counted = for_each_batch(path, format, &mut |batch| {
        spans += batch.len() as u64;
        for s in batch {
            *expected.entry(s.trace_id).or_default() += 1;
        }
    })?;
    let warnings = match counted {
        Batches::Streamed { warnings } => warnings,
        Batches::Whole => {
            let spans = otlp_json::read_file(path)?;
            let count = spans.len() as u64;
            let traces = group_into_traces(spans);
            let summary = ReadSummary {
                format,
                spans: count,
                traces: traces.len() as u64,
                max_open: traces.len(),
                warnings: Vec::new(),
            };
            traces.into_iter().for_each(consumer);
            return Ok(summary);
        }
    };
    // Pass 2: gather, and hand each trace over as soon as it is whole.
    let mut open: HashMap<TraceId, Vec<Span>> = HashMap::new();
    let (mut traces, mut max_open) = (0u64, 0usize);
    let gathered = for_each_batch(path, format, &mut |batch| {
        for s in batch {
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
    if !matches!(gathered, Batches::Streamed { .. }) || !open.is_empty() {
        return Err(TraceFileError::Changed {
            path: path.to_owned(),
        });
    }
    Ok(ReadSummary {
        format,
        spans,
        traces,
        max_open,
        warnings,
    })
}

/// How [`for_each_batch`] went.
enum Batches {
    /// Every span was handed over in batches; the warnings say what was skipped.
    Streamed { warnings: Vec<String> },
    /// An OTLP/JSON file that is not JSON Lines: nothing was handed over, and the file is to
    /// be read whole.
    Whole,
}

/// Hands the spans of the file over in batches, in file order, in the given format.
fn for_each_batch(
    path: &Path,
    format: TraceFormat,
    each: &mut dyn FnMut(Vec<Span>),
) -> Result<Batches, TraceFileError> {
    match format {
        TraceFormat::OtlpJson => otlp_lines::for_each_batch(path, each),
        TraceFormat::JaegerJson => jaeger::for_each_batch(path, each),
        TraceFormat::ZipkinJson => zipkin::for_each_batch(path, each),
    }
}

/// A JSON reader over the file at `path`, buffered for documents of any size.
fn json_reader(
    path: &Path,
) -> Result<serde_json::Deserializer<serde_json::de::IoRead<BufReader<File>>>, TraceFileError> {
    let file = open(path)?;
    Ok(serde_json::Deserializer::from_reader(
        BufReader::with_capacity(1 << 20, file),
    ))
}

fn open(path: &Path) -> Result<File, TraceFileError> {
    File::open(path).map_err(|source| TraceFileError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A serde_json error's message without the " at line L column C" it appends, for messages
/// that give the position themselves.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// Turns the outcome of reading a Jaeger or Zipkin document into [`Batches`]: a document cut
/// short keeps what was read before the cut, with a warning; any other error is located.
fn document_outcome(
    path: &Path,
    format: TraceFormat,
    outcome: Result<(), serde_json::Error>,
    handed: u64,
) -> Result<Batches, TraceFileError> {
    match outcome {
        Ok(()) => Ok(Batches::Streamed {
            warnings: Vec::new(),
        }),
        Err(e) if e.is_eof() => Ok(Batches::Streamed {
            warnings: vec![format!(
                "{}: the {format} document ends early (line {}, column {}); the {handed} spans \
                 before the cut were read and the rest is lost. Was the file still being \
                 written?",
                path.display(),
                e.line(),
                e.column()
            )],
        }),
        Err(e) if e.is_io() => Err(TraceFileError::Read {
            path: path.to_owned(),
            source: e.into(),
        }),
        Err(e) => Err(TraceFileError::Invalid {
            path: path.to_owned(),
            format,
            line: e.line(),
            column: e.column(),
            message: without_position(&e),
        }),
    }
}
