//! The span sink: every accepted request appended to a file as one line of OTLP/JSON.
//!
//! The line is the request as it arrived (minus spans refused for bad ids), written in the shape
//! of the OpenTelemetry Collector's `file` exporter, so a run directory can be read by tracelab
//! and by any tool that reads that exporter's output, and nothing the model leaves out (scope
//! versions, schema URLs, dropped counts) is lost.
//!
//! Durability: lines go through a buffer that a background thread flushes every
//! [`FLUSH_INTERVAL`], and [`SpanSink::flush`] flushes on demand, so a crash loses at most the
//! last fraction of a second. A failed write (a full disk) is counted and logged, never returned
//! to the producer: the spans are still in the store, and refusing the export would only make
//! the SDK retry into the same full disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How often buffered lines reach the file at the latest.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Appends one OTLP/JSON `ExportTraceServiceRequest` per line to a file.
pub struct SpanSink {
    shared: Arc<SinkFile>,
}

/// The state the flushing thread shares with the sink. The thread holds only a `Weak`, so
/// dropping the sink drops the file (flushing it) and ends the thread.
struct SinkFile {
    path: PathBuf,
    /// Serializes whole lines: without it, two requests written concurrently could interleave
    /// their bytes and corrupt both lines.
    writer: Mutex<BufWriter<File>>,
    /// Set by a write, cleared by a flush, so the timer does not take the lock on an idle sink.
    dirty: AtomicBool,
    /// Bytes appended so far (buffered or written): the offset of the next line. Only
    /// changed under `writer`'s lock, so it matches the order of the lines.
    bytes: AtomicU64,
    lines: AtomicU64,
    errors: AtomicU64,
}

impl SpanSink {
    /// Creates (or truncates) the file and starts the thread that flushes it.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = File::create(path)?;
        let shared = Arc::new(SinkFile {
            path: path.to_owned(),
            writer: Mutex::new(BufWriter::with_capacity(256 * 1024, file)),
            dirty: AtomicBool::new(false),
            bytes: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&shared);
        // A plain thread rather than a tokio task: the sink may be created before or outside a
        // runtime, and a flush is a blocking write anyway.
        std::thread::Builder::new()
            .name("tracelab-span-sink".into())
            .spawn(move || flush_periodically(weak))?;
        Ok(SpanSink { shared })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Appends one line (a newline is added). Failures are counted, see the module docs.
    /// Returns where the line is in the file (offset, length with the newline), unless the
    /// write failed.
    pub(crate) fn append_line(&self, line: &str) -> Option<(u64, u32)> {
        self.append_with(|buffer| {
            buffer.extend_from_slice(line.as_bytes());
            Ok(())
        })
    }

    /// Appends one export request as a line, encoded straight into the file's buffer; returns
    /// where it is, as [`SpanSink::append_line`] does.
    pub(crate) fn append_request(
        &self,
        request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
    ) -> Option<(u64, u32)> {
        self.append_with(|buffer| crate::otlp_json::write_wire_request(buffer, request))
    }

    /// Appends what `write` writes, and a newline, as one line; counts the line or the failure.
    ///
    /// The line is encoded into a buffer of the calling thread's first and copied into the
    /// file's buffer with one `write_all` under the lock: encoding straight into the file's
    /// `BufWriter` paid `Write::write_all`'s loop for every token of the JSON (3 % of the whole
    /// lab's CPU at 2,000 requests/s) and held the lock for all of it.
    fn append_with(
        &self,
        write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> Option<(u64, u32)> {
        LINE.with_borrow_mut(|line| {
            line.clear();
            let encoded = write(line);
            line.push(b'\n');
            let result = encoded.and_then(|()| {
                let mut writer = self.shared.lock();
                // `write_all` by hand, to know how much of a line that failed halfway reached
                // the file: the offsets of the lines after it must still match the file.
                let mut written = 0;
                let outcome = loop {
                    match writer.write(&line[written..]) {
                        Ok(0) if written < line.len() => {
                            break Err(std::io::ErrorKind::WriteZero.into());
                        }
                        Ok(n) => {
                            written += n;
                            if written == line.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                let offset = self
                    .shared
                    .bytes
                    .fetch_add(written as u64, Ordering::Relaxed);
                outcome.map(|()| (offset, written as u64))
            });
            // A line that grew very large (a huge export) is not kept for the next one.
            if line.capacity() > MAX_KEPT_LINE {
                *line = Vec::new();
            }
            match result {
                Ok((offset, len)) => {
                    self.shared.lines.fetch_add(1, Ordering::Relaxed);
                    self.shared.dirty.store(true, Ordering::Release);
                    u32::try_from(len).ok().map(|len| (offset, len))
                }
                Err(e) => {
                    self.shared.record_error(&e);
                    None
                }
            }
        })
    }

    /// Writes buffered lines to the file.
    pub fn flush(&self) -> std::io::Result<()> {
        self.shared.flush()
    }

    /// Lines appended without error so far.
    pub fn lines_written(&self) -> u64 {
        self.shared.lines.load(Ordering::Relaxed)
    }

    /// Writes or flushes that failed so far.
    pub fn write_errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }
}

/// The largest line buffer a thread keeps between lines.
const MAX_KEPT_LINE: usize = 1 << 20;

thread_local! {
    /// The line being encoded, reused from line to line.
    static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl std::fmt::Debug for SpanSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanSink")
            .field("path", &self.shared.path)
            .field("lines_written", &self.lines_written())
            .field("write_errors", &self.write_errors())
            .finish()
    }
}

impl SinkFile {
    fn lock(&self) -> MutexGuard<'_, BufWriter<File>> {
        // A panic while holding the lock cannot leave a half-built value behind (the buffer is
        // just bytes), so a poisoned lock is still usable.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn flush(&self) -> std::io::Result<()> {
        self.dirty.store(false, Ordering::Release);
        let result = self.lock().flush();
        if let Err(e) = &result {
            self.record_error(e);
        }
        result
    }

    fn record_error(&self, e: &std::io::Error) {
        let before = self.errors.fetch_add(1, Ordering::Relaxed);
        // Log the first failure and then every thousandth, so a full disk does not also
        // flood the log.
        if before.is_multiple_of(1000) {
            tracing::warn!(
                path = %self.path.display(),
                error = %e,
                failures = before + 1,
                "cannot write to the span file (is the disk full?); the run's analysis still gets every span"
            );
        }
    }
}

fn flush_periodically(file: Weak<SinkFile>) {
    loop {
        std::thread::sleep(FLUSH_INTERVAL);
        let Some(file) = file.upgrade() else {
            return;
        };
        if file.dirty.load(Ordering::Acquire) {
            // The error is already counted and logged by `flush`.
            let _ = file.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tracelab-sink-{}-{name}", std::process::id()))
    }

    #[test]
    fn lines_reach_the_file_without_an_explicit_flush() {
        let path = temp_path("timer");
        let sink = SpanSink::create(&path).unwrap();
        sink.append_line("{}");
        sink.append_line("{\"a\":1}");
        std::thread::sleep(FLUSH_INTERVAL * 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{}\n{\"a\":1}\n");
        assert_eq!(sink.lines_written(), 2);
        drop(sink);
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_counted_not_fatal() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let Ok(sink) = SpanSink::create(Path::new("/dev/full")) else {
            return;
        };
        sink.append_line(&"x".repeat(512 * 1024));
        let _ = sink.flush();
        assert!(sink.write_errors() >= 1);
    }
}
