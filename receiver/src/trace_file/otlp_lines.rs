//! OTLP/JSON Lines, one document per line, read one line at a time.
//!
//! A file still being written (the Collector's `file` exporter, a run in progress) or copied
//! while it was can end in the middle of a line. Only the last line can be cut that way, so a
//! last line that breaks off inside its JSON is left out with a warning; a broken line
//! anywhere else means the file is not JSON Lines at all (a pretty-printed document spans
//! many lines), and the caller reads it whole, which locates any real error.

use std::io::{BufRead as _, BufReader};
use std::path::Path;

use tracelab_trace::Span;

use super::{Batches, TraceFileError};
use crate::otlp_json;

pub(super) fn for_each_batch(
    path: &Path,
    each: &mut dyn FnMut(Vec<Span>),
) -> Result<Batches, TraceFileError> {
    let file = super::open(path)?;
    let read_error = |source| TraceFileError::Read {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    let mut number = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(read_error)? == 0 {
            return Ok(Batches::Streamed {
                warnings: Vec::new(),
            });
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        match otlp_json::decode_lines(&line) {
            Ok(spans) => each(spans),
            Err(_) if number == 1 => return Ok(Batches::Whole),
            Err(error) => {
                // Cut: the line has no end of its own, nothing follows it, and its JSON
                // stops short (rather than being wrong).
                let cut = !line.ends_with('\n')
                    && reader.fill_buf().map_err(read_error)?.is_empty()
                    && serde_json::from_str::<serde_json::Value>(&line).is_err_and(|e| e.is_eof());
                if !cut {
                    // A line that is not JSON at all is part of a document or an array spread
                    // over lines; one that is JSON but not OTLP is wrong where it stands.
                    let json = serde_json::from_str::<serde_json::Value>(&line).is_ok();
                    return match json {
                        true => Err(located(error, path, number).into()),
                        false => Ok(Batches::Whole),
                    };
                }
                return Ok(Batches::Streamed {
                    warnings: vec![format!(
                        "the last line of {} was cut short (line {number}; a crash, a full \
                         disk, or a file still being written?): its {} bytes were skipped",
                        path.display(),
                        line.len()
                    )],
                });
            }
        }
    }
}

/// An error in one line, placed at that line of the file.
fn located(error: otlp_json::DecodeError, path: &Path, number: usize) -> otlp_json::DecodeError {
    match error {
        otlp_json::DecodeError::Otlp { message, .. } => otlp_json::DecodeError::Otlp {
            file: Some(path.to_owned()),
            line: number,
            message,
        },
        otlp_json::DecodeError::Syntax {
            column, message, ..
        } => otlp_json::DecodeError::Syntax {
            file: Some(path.to_owned()),
            line: number,
            column,
            message,
        },
        read @ otlp_json::DecodeError::Read { .. } => read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"01010101010101010101010101010101","spanId":"0202020202020202","name":"x"}]}]}]}"#;

    fn file(name: &str, text: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("tracelab-otlp-lines-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn read(path: &Path) -> Result<(usize, Vec<String>), String> {
        let mut spans = 0;
        match for_each_batch(path, &mut |b| spans += b.len()) {
            Ok(Batches::Streamed { warnings }) => Ok((spans, warnings)),
            Ok(Batches::Whole) => Err("whole".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn a_cut_last_line_is_left_out_with_a_warning() {
        let cut = &LINE[..LINE.len() / 2];
        let path = file("cut", &format!("{LINE}\n{LINE}\n{cut}"));
        let (spans, warnings) = read(&path).unwrap();
        assert_eq!(spans, 2);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("cut short (line 3;"), "{warnings:?}");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_broken_line_in_the_middle_is_an_error_with_its_line() {
        let bad = LINE.replace("0202020202020202", "02");
        let path = file("bad", &format!("{LINE}\n{bad}\n{LINE}\n"));
        let err = read(&path).unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("span id"), "{err}");
        // A cut line that is not the last is not tolerated either.
        let cut = &LINE[..LINE.len() / 2];
        let path = file("cut-middle", &format!("{LINE}\n{cut}\n{LINE}\n"));
        assert_eq!(read(&path).unwrap_err(), "whole");
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_pretty_document_is_read_whole() {
        let value: serde_json::Value = serde_json::from_str(LINE).unwrap();
        let path = file("pretty", &serde_json::to_string_pretty(&value).unwrap());
        assert_eq!(read(&path).unwrap_err(), "whole");
        std::fs::remove_file(&path).ok();
    }
}
