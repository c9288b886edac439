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
//! everything it recorded.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
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
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create run directory {}", path.display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
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
    pub fn requests_writer(&self) -> anyhow::Result<BufWriter<File>> {
        let p = self.file(REQUESTS_FILE);
        let f = File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(BufWriter::new(f))
    }

    /// Writes a whole file atomically enough for a report: to a temporary name, then renamed.
    pub fn write(&self, name: &str, contents: &[u8]) -> anyhow::Result<()> {
        let final_path = self.file(name);
        let tmp = self.file(&format!(".{name}.tmp"));
        std::fs::write(&tmp, contents)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &final_path)
            .with_context(|| format!("cannot write {}", final_path.display()))?;
        Ok(())
    }
}
