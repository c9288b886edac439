//! OTLP/JSON files: run directories written by [`crate::SpanSink`] and foreign files such as an
//! OpenTelemetry Collector `file` exporter's output or the OpenTelemetry project's examples.
//!
//! Three layouts are read: one `ExportTraceServiceRequest` (or `TracesData`) per line, one
//! pretty-printed document, or a JSON array of documents. All of them are a sequence of JSON
//! values separated by whitespace, which is how they are parsed.

mod decode;
mod encode;
mod typed;

use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::Value;
use tracelab_trace::Span;

use crate::convert;

/// Why an OTLP/JSON file or text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read (or is not UTF-8).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not JSON.
    #[error(
        "{}line {line}, column {column}: invalid JSON: {message}",
        origin(file)
    )]
    Syntax {
        /// The file, when reading one.
        file: Option<PathBuf>,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// The JSON is not an OTLP trace request, or a span in it has unusable ids.
    #[error("{}line {line}: {message}", origin(file))]
    Otlp {
        /// The file, when reading one.
        file: Option<PathBuf>,
        /// 1-based line where the offending document starts.
        line: usize,
        /// What is wrong, with the path of the offending field.
        message: String,
    },
}

fn origin(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default()
}

impl DecodeError {
    /// The error of text that is line `line` of a larger file (its own lines count from 1).
    pub fn at_line(self, line: usize) -> Self {
        match self {
            DecodeError::Syntax {
                file,
                line: inner,
                column,
                message,
            } => DecodeError::Syntax {
                file,
                line: line + inner - 1,
                column,
                message,
            },
            DecodeError::Otlp {
                file,
                line: inner,
                message,
            } => DecodeError::Otlp {
                file,
                line: line + inner - 1,
                message,
            },
            read @ DecodeError::Read { .. } => read,
        }
    }

    pub fn in_file(self, path: &Path) -> Self {
        match self {
            DecodeError::Syntax {
                line,
                column,
                message,
                ..
            } => DecodeError::Syntax {
                file: Some(path.to_owned()),
                line,
                column,
                message,
            },
            DecodeError::Otlp { line, message, .. } => DecodeError::Otlp {
                file: Some(path.to_owned()),
                line,
                message,
            },
            read @ DecodeError::Read { .. } => read,
        }
    }
}

/// Decodes every span in OTLP/JSON text: JSON Lines of requests, one pretty-printed request,
/// or an array of requests. A span with unusable ids (wrong length, all zero) is an error,
/// since a file, unlike a live producer, cannot be told which spans were dropped.
pub fn decode_lines(text: &str) -> Result<Vec<Span>, DecodeError> {
    // The fast path reads well-formed text of the common shapes; the reader below is the
    // reference, for everything else and for every error.
    match typed::decode(text) {
        Some(spans) => Ok(spans),
        None => reference_lines(text),
    }
}

/// The reference reader behind [`decode_lines`]: a `serde_json::Value` per document, read by
/// `decode`, with every error located.
fn reference_lines(text: &str) -> Result<Vec<Span>, DecodeError> {
    let mut spans = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut lines = LineCounter::new(text);
    loop {
        let start = stream.byte_offset() + leading_whitespace(&text[stream.byte_offset()..]);
        let value = match stream.next() {
            None => break,
            Some(Ok(value)) => value,
            Some(Err(e)) => {
                return Err(DecodeError::Syntax {
                    file: None,
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                });
            }
        };
        let line = lines.line_of(start);
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    spans.extend(document_spans(item, line, &format!("array element {i}: "))?);
                }
            }
            other => spans.extend(document_spans(&other, line, "")?),
        }
    }
    Ok(spans)
}

/// Reads an OTLP/JSON file (see [`decode_lines`]); errors name the file and the line.
pub fn read_file(path: &Path) -> Result<Vec<Span>, DecodeError> {
    // The whole file is read at once: the spans it holds are kept in memory by every caller
    // anyway, and the text is a small multiple of them.
    let text = std::fs::read_to_string(path).map_err(|source| DecodeError::Read {
        path: path.to_owned(),
        source,
    })?;
    decode_lines(&text).map_err(|e| e.in_file(path))
}

/// Encodes spans as one `ExportTraceServiceRequest` line (no trailing newline), grouped back
/// into one `ResourceSpans` per resource and one `ScopeSpans` per scope name.
pub fn encode_request_line(spans: &[Span]) -> String {
    encode::request(&convert::spans_to_request(spans))
}

fn document_spans(value: &Value, line: usize, prefix: &str) -> Result<Vec<Span>, DecodeError> {
    let otlp_error = |message: String| DecodeError::Otlp {
        file: None,
        line,
        message: format!("{prefix}{message}"),
    };
    let request = decode::request(value).map_err(otlp_error)?;
    for resource_spans in &request.resource_spans {
        for scope_spans in &resource_spans.scope_spans {
            if let Some(problem) = scope_spans.spans.iter().find_map(convert::span_problem) {
                return Err(otlp_error(problem));
            }
        }
    }
    Ok(convert::request_to_spans(request))
}

/// Parses an OTLP/HTTP JSON body into the wire request.
pub(crate) fn decode_request_body(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    decode::request(&value)
}

/// Writes `request` as one line of OTLP/JSON (no newline) into `out`, the shape the Collector's
/// `file` exporter writes, without building the line in memory.
pub(crate) fn write_wire_request(
    out: &mut impl std::io::Write,
    request: &ExportTraceServiceRequest,
) -> std::io::Result<()> {
    encode::write_request(out, request)
}

/// An OTLP/HTTP JSON response body.
pub(crate) fn encode_response(response: &ExportTraceServiceResponse) -> String {
    encode::response(response)
}

fn leading_whitespace(text: &str) -> usize {
    text.len() - text.trim_start().len()
}

/// Turns byte offsets into 1-based line numbers, scanning the text once overall because the
/// offsets it is asked about only grow.
struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
        }
    }

    fn line_of(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset > self.offset {
            self.line += self.text.as_bytes()[self.offset..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.offset = offset;
        }
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"x"}]}]}]}"#;

    #[test]
    fn lines_documents_and_arrays_all_decode() {
        let jsonl = format!("{LINE}\n{LINE}\n");
        assert_eq!(decode_lines(&jsonl).unwrap().len(), 2);
        let array = format!("[{LINE},\n {LINE}]");
        assert_eq!(decode_lines(&array).unwrap().len(), 2);
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(LINE).unwrap()).unwrap();
        let spans = decode_lines(&pretty).unwrap();
        assert_eq!(&*spans[0].service_name, "a");
        assert!(decode_lines("  \n").unwrap().is_empty());
    }

    #[test]
    fn errors_say_the_line() {
        let bad_id = LINE.replace("0202020202020202", "02");
        let err = decode_lines(&format!("{LINE}\n\n{bad_id}\n")).unwrap_err();
        assert!(matches!(err, DecodeError::Otlp { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("span id"), "{err}");

        let err = decode_lines(&format!("{LINE}\n{{\"resourceSpans\": [}}\n")).unwrap_err();
        assert!(
            matches!(err, DecodeError::Syntax { line: 2, .. }),
            "{err:?}"
        );
    }
}
