//! An index of a run's span file (`spans.otlp.jsonl`): for every trace, the lines of the file
//! that hold its spans, and what a search asks about it (services, operations, start, duration,
//! errors). A trace is read back from its lines on demand, so the index is the only thing
//! kept in memory: a few hundred bytes a trace, never the spans themselves.
//!
//! The file is JSON Lines of OTLP `ExportTraceServiceRequest`s, one per accepted export; a
//! trace's spans are spread over the lines its services' exports wrote. A line is indexed
//! whole: the index records its byte range under every trace it holds spans of.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tracelab_trace::{Span, Trace, TraceId};

use crate::otlp_json::{self, DecodeError};

/// Where one trace's spans are and what it is, as far as the lines read so far tell.
#[derive(Debug, Clone)]
struct Entry {
    /// Byte ranges (offset, length) of the lines holding its spans, in file order.
    lines: Vec<(u64, u32)>,
    start_unix_nano: u64,
    end_unix_nano: u64,
    /// The root span's (service, name), once its line is read.
    root: Option<(u32, u32)>,
    spans: u32,
    errors: u32,
    /// Every (service, span name) in the trace, deduplicated.
    operations: Vec<(u32, u32)>,
}

/// One trace as a search lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceHit {
    /// The trace id, 32 hex digits.
    pub trace_id: String,
    /// The root span's service (the earliest span's, while the root is missing).
    pub service: String,
    /// The root span's name.
    pub operation: String,
    /// Its first span's start, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// From its first span's start to its last span's end, nanoseconds.
    pub duration_ns: u64,
    /// Spans indexed.
    pub spans: u32,
    /// Spans with status Error.
    pub errors: u32,
    /// Whether a root span (one without a parent) has been seen.
    pub has_root: bool,
}

/// What to look for. Every field left empty matches every trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// A trace id, or the start of one (hex, any case).
    pub trace_id: Option<String>,
    /// A service that has at least one span in the trace.
    pub service: Option<String>,
    /// A span name in the trace (of `service`, when both are given).
    pub operation: Option<String>,
    /// Traces at least this long.
    pub min_duration_ns: Option<u64>,
    /// Traces with at least one failing span.
    pub errors_only: bool,
    /// Traces that started at or after this instant (Unix nanoseconds).
    pub start_from: Option<u64>,
    /// Traces that started before this instant (Unix nanoseconds).
    pub start_to: Option<u64>,
}

/// What a search found: the newest matches first, at most the limit asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    /// How many traces matched in all.
    pub matched: usize,
    /// The newest `limit` of them.
    pub traces: Vec<TraceHit>,
}

/// Interned strings: service and span names repeat across every trace.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn find(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// The index of one span file. Build it from a finished file with [`TraceIndex::build`], or
/// feed it line by line with [`TraceIndex::add_line`] as the file is written.
#[derive(Debug, Default)]
pub struct TraceIndex {
    names: Names,
    traces: HashMap<TraceId, Entry>,
    spans: u64,
    lines: u64,
    first_start_unix_nano: Option<u64>,
}

/// What building an index from a file found besides the traces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSummary {
    /// Bytes of the file that were indexed (up to the end of its last whole line).
    pub bytes: u64,
    /// What was skipped and why (a cut last line).
    pub warnings: Vec<String>,
}

impl TraceIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Indexes the OTLP/JSON lines file at `path`. A last line cut short (a crash, a full disk)
    /// is skipped with a warning; any other line that does not decode is an error naming it.
    pub fn build(path: &Path) -> Result<(TraceIndex, IndexSummary), DecodeError> {
        Self::build_observed(path, &mut |_| {})
    }

    /// [`TraceIndex::build`], also handing the spans of every line to `observe` (for tallies
    /// made in the same pass).
    pub fn build_observed(
        path: &Path,
        observe: &mut dyn FnMut(&[Span]),
    ) -> Result<(TraceIndex, IndexSummary), DecodeError> {
        let read_error = |source| DecodeError::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut index = TraceIndex::new();
        let mut summary = IndexSummary::default();
        let mut line = Vec::new();
        let (mut offset, mut number) = (0u64, 0usize);
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(read_error)?;
            if read == 0 {
                break;
            }
            number += 1;
            let whole = line.last() == Some(&b'\n');
            let text = String::from_utf8_lossy(&line);
            if !text.trim().is_empty() {
                match otlp_json::decode_lines(&text) {
                    Ok(spans) => {
                        index.add_line(offset, read as u32, &spans);
                        observe(&spans);
                    }
                    Err(_) if !whole => {
                        summary.warnings.push(format!(
                            "{}: the last line ({number}) is cut short; its {read} bytes were skipped",
                            path.display()
                        ));
                        break;
                    }
                    Err(e) => return Err(e.at_line(number).in_file(path)),
                }
            }
            offset += read as u64;
            summary.bytes = offset;
        }
        Ok((index, summary))
    }

    /// Records that the line at `offset` (`len` bytes, newline included) holds `spans`.
    pub fn add_line(&mut self, offset: u64, len: u32, spans: &[Span]) {
        self.lines += 1;
        for span in spans {
            self.spans += 1;
            self.first_start_unix_nano = Some(
                self.first_start_unix_nano
                    .map_or(span.start_unix_nano, |t| t.min(span.start_unix_nano)),
            );
            let service = self.names.id(&span.service_name);
            let name = self.names.id(&span.name);
            let entry = self.traces.entry(span.trace_id).or_insert_with(|| Entry {
                lines: Vec::new(),
                start_unix_nano: u64::MAX,
                end_unix_nano: 0,
                root: None,
                spans: 0,
                errors: 0,
                operations: Vec::new(),
            });
            if entry.lines.last() != Some(&(offset, len)) {
                entry.lines.push((offset, len));
            }
            entry.start_unix_nano = entry.start_unix_nano.min(span.start_unix_nano);
            entry.end_unix_nano = entry.end_unix_nano.max(span.end_unix_nano);
            if span.is_root() {
                entry.root = Some((service, name));
            }
            entry.spans += 1;
            entry.errors += u32::from(span.is_error());
            if !entry.operations.contains(&(service, name)) {
                entry.operations.push((service, name));
            }
        }
    }

    /// Traces indexed.
    pub fn traces(&self) -> usize {
        self.traces.len()
    }

    /// Spans indexed.
    pub fn spans(&self) -> u64 {
        self.spans
    }

    /// The earliest span start indexed (Unix nanoseconds), 0 before any span.
    pub fn first_start_unix_nano(&self) -> u64 {
        self.first_start_unix_nano.unwrap_or(0)
    }

    /// Lines indexed.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Every service seen, with the span names seen in it, sorted.
    pub fn services(&self) -> Vec<(String, Vec<String>)> {
        let mut by_service: HashMap<u32, Vec<u32>> = HashMap::new();
        for entry in self.traces.values() {
            for &(service, name) in &entry.operations {
                let names = by_service.entry(service).or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let mut services: Vec<(String, Vec<String>)> = by_service
            .into_iter()
            .map(|(service, names)| {
                let mut names: Vec<String> = names
                    .into_iter()
                    .map(|n| self.names.name(n).to_string())
                    .collect();
                names.sort();
                (self.names.name(service).to_string(), names)
            })
            .collect();
        services.sort();
        services
    }

    /// The traces matching `query`, newest first, at most `limit` of them.
    pub fn search(&self, query: &TraceQuery, limit: usize) -> SearchResult {
        let id_prefix = query
            .trace_id
            .as_ref()
            .map(|p| p.trim().to_ascii_lowercase());
        // A name never seen matches nothing; looking it up once saves a string compare a trace.
        let service = match query.service.as_deref().filter(|s| !s.is_empty()) {
            Some(name) => match self.names.find(name) {
                Some(id) => Some(id),
                None => return SearchResult::empty(),
            },
            None => None,
        };
        let operation = match query.operation.as_deref().filter(|s| !s.is_empty()) {
            Some(name) => match self.names.find(name) {
                Some(id) => Some(id),
                None => return SearchResult::empty(),
            },
            None => None,
        };
        let exact = id_prefix
            .as_deref()
            .filter(|p| p.len() == 32)
            .and_then(|p| p.parse::<TraceId>().ok());
        let matches = |id: &TraceId, e: &Entry| {
            let duration = e.end_unix_nano.saturating_sub(e.start_unix_nano);
            id_prefix
                .as_deref()
                .is_none_or(|p| id.to_hex().starts_with(p))
                && query.min_duration_ns.is_none_or(|min| duration >= min)
                && (!query.errors_only || e.errors > 0)
                && query.start_from.is_none_or(|t| e.start_unix_nano >= t)
                && query.start_to.is_none_or(|t| e.start_unix_nano < t)
                && (service.is_none() && operation.is_none()
                    || e.operations.iter().any(|&(s, n)| {
                        service.is_none_or(|want| want == s)
                            && operation.is_none_or(|want| want == n)
                    }))
        };
        let mut found: Vec<(&TraceId, &Entry)> = match exact {
            // A whole id is a lookup, not a scan.
            Some(id) => self
                .traces
                .get_key_value(&id)
                .filter(|(id, e)| matches(id, e))
                .into_iter()
                .collect(),
            None => self
                .traces
                .iter()
                .filter(|(id, e)| matches(id, e))
                .collect(),
        };
        let matched = found.len();
        let newest_first = |a: &(&TraceId, &Entry), b: &(&TraceId, &Entry)| {
            (b.1.start_unix_nano, b.0).cmp(&(a.1.start_unix_nano, a.0))
        };
        if found.len() > limit && limit > 0 {
            found.select_nth_unstable_by(limit - 1, newest_first);
        }
        found.truncate(limit);
        found.sort_unstable_by(newest_first);
        SearchResult {
            matched,
            traces: found.into_iter().map(|(id, e)| self.hit(id, e)).collect(),
        }
    }

    fn hit(&self, id: &TraceId, e: &Entry) -> TraceHit {
        let (service, operation) = e
            .root
            .or_else(|| e.operations.first().copied())
            .map(|(s, n)| (self.names.name(s), self.names.name(n)))
            .unwrap_or(("", ""));
        TraceHit {
            trace_id: id.to_hex(),
            service: service.to_string(),
            operation: operation.to_string(),
            start_unix_nano: e.start_unix_nano,
            duration_ns: e.end_unix_nano.saturating_sub(e.start_unix_nano),
            spans: e.spans,
            errors: e.errors,
            has_root: e.root.is_some(),
        }
    }

    /// Reads trace `id` back from the file at `path` (the file this index was built from):
    /// only the lines that hold its spans. `None` when the index has no such trace.
    pub fn read_trace(&self, path: &Path, id: TraceId) -> Result<Option<Trace>, DecodeError> {
        self.locate(id).map(|at| at.read(path)).transpose()
    }

    /// Where trace `id`'s spans are, to read them later without holding the index (a live
    /// index keeps growing while the file is read).
    pub fn locate(&self, id: TraceId) -> Option<TraceLocation> {
        self.traces.get(&id).map(|entry| TraceLocation {
            trace_id: id,
            lines: entry.lines.clone(),
            spans: entry.spans,
        })
    }
}

/// The lines of a span file holding one trace's spans (see [`TraceIndex::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLocation {
    trace_id: TraceId,
    lines: Vec<(u64, u32)>,
    spans: u32,
}

impl TraceLocation {
    /// Reads the trace's spans from those lines of the file at `path`.
    pub fn read(&self, path: &Path) -> Result<Trace, DecodeError> {
        let read_error = |source| DecodeError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(read_error)?;
        let mut spans = Vec::with_capacity(self.spans as usize);
        let mut buffer = Vec::new();
        for &(offset, len) in &self.lines {
            buffer.resize(len as usize, 0);
            file.seek(SeekFrom::Start(offset)).map_err(read_error)?;
            file.read_exact(&mut buffer).map_err(read_error)?;
            let text = String::from_utf8_lossy(&buffer);
            let line = otlp_json::decode_lines(&text).map_err(|e| e.in_file(path))?;
            spans.extend(line.into_iter().filter(|s| s.trace_id == self.trace_id));
        }
        Ok(Trace::new(self.trace_id, spans))
    }
}

impl SearchResult {
    fn empty() -> Self {
        SearchResult {
            matched: 0,
            traces: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tracelab_trace::{SpanId, Status, StatusCode};

    use super::*;

    fn span(trace: u8, id: u8, parent: Option<u8>, service: &str, start: u64, end: u64) -> Span {
        Span {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            flags: 1,
            name: format!("op{id}"),
            start_unix_nano: start,
            end_unix_nano: end,
            service_name: Arc::from(service),
            ..Span::default()
        }
    }

    fn failed(mut s: Span) -> Span {
        s.status = Status {
            code: StatusCode::Error,
            message: "boom".into(),
        };
        s
    }

    fn scratch(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "tracelab-index-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ))
    }

    /// Three traces over three lines, as services' exports interleave them: trace 1's child
    /// first, trace 2 whole in the middle, trace 1's root and trace 3 (failed) last.
    fn lines() -> Vec<Vec<Span>> {
        vec![
            vec![span(1, 2, Some(1), "db", 1_100, 1_900)],
            vec![
                span(2, 1, None, "web", 5_000, 6_000),
                span(2, 2, Some(1), "db", 5_100, 5_200),
            ],
            vec![
                span(1, 1, None, "web", 1_000, 3_000),
                failed(span(3, 1, None, "api", 9_000, 19_000)),
            ],
        ]
    }

    fn write_file(name: &str, lines: &[Vec<Span>]) -> PathBuf {
        let path = scratch(name);
        let text: String = lines
            .iter()
            .map(|l| format!("{}\n", otlp_json::encode_request_line(l)))
            .collect();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn ids(result: &SearchResult) -> Vec<u8> {
        result
            .traces
            .iter()
            .map(|h| u8::from_str_radix(&h.trace_id[..2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_trace_read_back_is_the_trace_of_the_whole_file() {
        let path = write_file("read", &lines());
        let (index, summary) = TraceIndex::build(&path).unwrap();
        assert!(summary.warnings.is_empty());
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!((index.traces(), index.spans(), index.lines()), (3, 5, 3));
        let whole = tracelab_trace::group_into_traces(otlp_json::read_file(&path).unwrap());
        for expected in whole {
            let read = index.read_trace(&path, expected.trace_id).unwrap().unwrap();
            assert_eq!(read.spans, expected.spans);
        }
        assert!(index.read_trace(&path, TraceId([9; 16])).unwrap().is_none());
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn search_filters_by_every_field_and_lists_the_newest_first() {
        let path = write_file("search", &lines());
        let (index, _) = TraceIndex::build(&path).unwrap();
        let search = |q: TraceQuery| ids(&index.search(&q, 10));
        assert_eq!(search(TraceQuery::default()), [3, 2, 1]);
        // A whole id, and the start of one.
        let id = TraceId([2; 16]).to_hex();
        let whole = index.search(
            &TraceQuery {
                trace_id: Some(id.to_uppercase()),
                ..TraceQuery::default()
            },
            10,
        );
        assert_eq!(ids(&whole), [2]);
        let hit = &whole.traces[0];
        assert_eq!(
            (hit.service.as_str(), hit.operation.as_str()),
            ("web", "op1")
        );
        assert_eq!((hit.duration_ns, hit.spans, hit.errors), (1_000, 2, 0));
        assert_eq!(
            search(TraceQuery {
                trace_id: Some("0303".into()),
                ..TraceQuery::default()
            }),
            [3]
        );
        // Any span's service; a span name within a service.
        let by_service = |s: &str| TraceQuery {
            service: Some(s.into()),
            ..TraceQuery::default()
        };
        assert_eq!(search(by_service("db")), [2, 1]);
        assert_eq!(search(by_service("nowhere")), Vec::<u8>::new());
        assert_eq!(
            search(TraceQuery {
                service: Some("db".into()),
                operation: Some("op1".into()),
                ..TraceQuery::default()
            }),
            Vec::<u8>::new()
        );
        assert_eq!(
            search(TraceQuery {
                operation: Some("op2".into()),
                ..TraceQuery::default()
            }),
            [2, 1]
        );
        // Duration from the first span's start to the last span's end: trace 1 is 2 µs long
        // (its root came two lines after its child).
        assert_eq!(
            search(TraceQuery {
                min_duration_ns: Some(2_000),
                ..TraceQuery::default()
            }),
            [3, 1]
        );
        assert_eq!(
            search(TraceQuery {
                errors_only: true,
                ..TraceQuery::default()
            }),
            [3]
        );
        assert_eq!(
            search(TraceQuery {
                start_from: Some(1_000),
                start_to: Some(9_000),
                ..TraceQuery::default()
            }),
            [2, 1]
        );
        // The limit keeps the newest, and says how many matched in all.
        let limited = index.search(&TraceQuery::default(), 2);
        assert_eq!((ids(&limited), limited.matched), (vec![3, 2], 3));
        assert_eq!(
            index.services(),
            [
                ("api".to_string(), vec!["op1".to_string()]),
                ("db".to_string(), vec!["op2".to_string()]),
                ("web".to_string(), vec!["op1".to_string()]),
            ]
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_cut_last_line_is_skipped_and_a_bad_line_named() {
        let path = write_file("cut", &lines());
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 40]).unwrap();
        let (index, summary) = TraceIndex::build(&path).unwrap();
        assert_eq!((index.traces(), index.spans()), (2, 3));
        assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
        assert!(summary.warnings[0].contains("line (3) is cut short"));

        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = "{\"resourceSpans\": 7}";
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let error = TraceIndex::build(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{}: line 2:", path.display())),
            "{error}"
        );
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn an_index_kept_while_the_sink_writes_matches_one_built_from_the_file() {
        let path = scratch("live");
        let store = crate::TraceStore::with_sink(crate::SpanSink::create(&path).unwrap());
        let live = Arc::new(std::sync::Mutex::new(TraceIndex::new()));
        let feeding = live.clone();
        store.observe_lines(Box::new(move |offset, len, spans| {
            feeding.lock().unwrap().add_line(offset, len, spans);
        }));
        for line in lines() {
            store.ingest(line);
        }
        store.flush_sink().unwrap();
        let live = live.lock().unwrap();
        let (built, _) = TraceIndex::build(&path).unwrap();
        assert_eq!((live.traces(), live.spans(), live.lines()), (3, 5, 3));
        assert_eq!(
            live.search(&TraceQuery::default(), 10),
            built.search(&TraceQuery::default(), 10)
        );
        for id in [1, 2, 3] {
            let id = TraceId([id; 16]);
            assert_eq!(
                live.read_trace(&path, id).unwrap().unwrap().spans,
                built.read_trace(&path, id).unwrap().unwrap().spans
            );
        }
        std::fs::remove_file(&path).ok();
    }
}
