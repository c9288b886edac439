//! The learner's progress: which lessons are done, in one small JSON file under the user's
//! data directory, so `tracelab learn` remembers across runs and working directories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The file's name inside the data directory.
pub const PROGRESS_FILE: &str = "progress.json";

/// What `progress.json` holds.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Lessons answered all right at least once, by lesson name.
    #[serde(default)]
    pub done: BTreeMap<String, Completion>,
}

/// One finished lesson.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Completion {
    /// When it was last finished, seconds since the Unix epoch.
    pub finished_unix: u64,
    /// The seed of that run.
    pub seed: u64,
    /// Its run directory.
    pub run_directory: String,
}

/// Where tracelab keeps the learner's data: `TRACELAB_DATA_DIR`, else
/// `$XDG_DATA_HOME/tracelab`, else `~/.local/share/tracelab` (the XDG default).
pub fn data_dir() -> anyhow::Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("TRACELAB_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(dir).join("tracelab"));
    }
    let home = non_empty("HOME").context(
        "no data directory to keep the course's progress in: set TRACELAB_DATA_DIR, \
         XDG_DATA_HOME or HOME",
    )?;
    Ok(PathBuf::from(home).join(".local/share/tracelab"))
}

impl Progress {
    /// Reads the progress file in `dir`; none yet is no progress.
    pub fn load(dir: &Path) -> anyhow::Result<Progress> {
        let path = dir.join(PROGRESS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Progress::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a progress file tracelab can read; move it away to start the \
                 course's progress afresh",
                path.display()
            )
        })
    }

    /// Writes the progress file into `dir`, creating the directory.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        crate::rundir::write_atomically(&dir.join(PROGRESS_FILE), &serde_json::to_vec_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_and_refuses_unknown_fields() {
        let dir = std::env::temp_dir().join(format!("tracelab-progress-{}", std::process::id()));
        assert_eq!(Progress::load(&dir).unwrap(), Progress::default());
        let mut progress = Progress::default();
        progress.done.insert(
            "first-trace".into(),
            Completion {
                finished_unix: 1,
                seed: 7,
                run_directory: "runs/x".into(),
            },
        );
        progress.save(&dir).unwrap();
        assert_eq!(Progress::load(&dir).unwrap(), progress);
        std::fs::write(dir.join(PROGRESS_FILE), r#"{"done": {}, "extra": 1}"#).unwrap();
        let error = format!("{:#}", Progress::load(&dir).unwrap_err());
        assert!(error.contains("move it away"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
