//! The run directory: everything a run leaves behind, for later analysis.
//!
//! | file               | what                                                              |
//! |--------------------|-------------------------------------------------------------------|
//! | `scenario.yaml`    | the scenario as run (with command-line overrides noted in report) |
//! | `spans.otlp.jsonl` | every span received, one OTLP/JSON `ExportTraceServiceRequest` per line, as the Collector's file exporter writes |
//! | `requests.jsonl`   | one line per request: the ground truth                            |
//! | `report.json`      | the summary, machine-readable                                     |
//! | `report.html`      | the analysis as one self-contained page (opens offline)           |
//! | `analysis.json`    | the analysis for programs (`docs/analysis.schema.json`)           |
//!
//! Spans and requests are streamed to disk while the run goes, so an interrupted run keeps
//! everything it recorded. A directory is only created once everything the run needs has
//! started (its ports bound), so a failed start leaves nothing behind to block a re-run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context as _;

/// File names inside a run directory.
pub const SCENARIO_FILE: &str = "scenario.yaml";
/// Every span, OTLP/JSON lines.
pub const SPANS_FILE: &str = "spans.otlp.jsonl";
/// Ground truth, one request per line.
pub const REQUESTS_FILE: &str = "requests.jsonl";
/// The machine-readable summary.
pub const REPORT_FILE: &str = "report.json";
/// Every incident window of the run, one JSON object a line (`start_unix_nano`,
/// `end_unix_nano`, `what`, `service`, `route`, `source`, `fault`).
pub const INCIDENTS_FILE: &str = "incidents.jsonl";
/// Where each service and its admin (fault) API listen during the run: a JSON list of
/// `{name, url, admin_url}`, written before the load starts.
pub const SERVICES_FILE: &str = "services.json";
/// The self-contained HTML report.
pub const HTML_REPORT_FILE: &str = "report.html";
/// The analysis for programs: critical paths, shares, self time, error origins, health
/// (`docs/analysis.schema.json`).
pub const ANALYSIS_FILE: &str = "analysis.json";

/// An open run directory.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// Whether this run created the directory, so [`RunDir::abandon`] may remove it.
    created: bool,
}

impl RunDir {
    /// Creates `path` (and parents). An existing directory is reused only when it holds no
    /// earlier run, so nothing recorded is overwritten by accident.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        if path.join(REPORT_FILE).exists() || path.join(SPANS_FILE).exists() {
            anyhow::bail!(
                "{} already holds a run; choose another --out directory or remove it",
                path.display()
            );
        }
        let created = !path.exists();
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create run directory {}", path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            created,
        })
    }

    /// Removes what this run wrote, for a run that failed before it sent anything: the files
    /// it created, and the directory if it created that too.
    pub fn abandon(self) {
        for name in [
            SCENARIO_FILE,
            SPANS_FILE,
            REQUESTS_FILE,
            SERVICES_FILE,
            INCIDENTS_FILE,
        ] {
            let _ = std::fs::remove_file(self.file(name));
        }
        if self.created {
            // Only succeeds when empty: nothing of anyone else's is removed.
            let _ = std::fs::remove_dir(&self.path);
        }
    }

    /// The default location: `runs/<scenario>-<UTC time>`.
    pub fn default_path(scenario_name: &str) -> PathBuf {
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace([':', '-'], "");
        let safe: String = scenario_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        PathBuf::from("runs").join(format!("{safe}-{stamp}"))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of a file inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens `requests.jsonl` for streaming.
    pub fn requests_writer(&self) -> anyhow::Result<SharedWriter> {
        let p = self.file(REQUESTS_FILE);
        let f = File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(SharedWriter(Arc::new(Mutex::new(
            BufWriter::with_capacity(256 * 1024, f),
        ))))
    }

    /// Writes a whole file atomically enough for a report: to a temporary name, then renamed.
    /// A failed write leaves no temporary file behind.
    pub fn write(&self, name: &str, contents: &[u8]) -> anyhow::Result<()> {
        write_atomically(&self.file(name), contents)
    }
}

/// Writes `path` through a temporary file beside it, renamed into place; on failure the
/// temporary file is removed and the old `path`, if any, is left as it was.
pub fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let written = std::fs::write(&tmp, contents).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// A buffered file writer shared between the task that writes it and a forced exit that must
/// flush it (see [`crate::signals`]). The lock is taken once per batch of lines.
#[derive(Debug, Clone)]
pub struct SharedWriter(Arc<Mutex<BufWriter<File>>>);

impl SharedWriter {
    /// Flushes what is buffered; errors are for the writer's own task to report.
    pub fn flush_now(&self) {
        let _ = self.lock().flush();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BufWriter<File>> {
        // Bytes in a buffer cannot be left half-updated by a panic elsewhere.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.lock().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.lock().flush()
    }
}
