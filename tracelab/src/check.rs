//! `tracelab check`: validate scenario files and explain every problem.

use std::path::Path;

use anyhow::Context as _;
use tracelab_scenario::Scenario;

/// Reads and validates one scenario file. Errors carry the file, line, column and field path.
pub fn load_scenario(path: &Path) -> anyhow::Result<Scenario> {
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scenario file {}", path.display()))?;
    tracelab_scenario::parse(&source, &path.display().to_string()).map_err(|diagnostics| {
        anyhow::anyhow!(
            "{} has {} problem(s):\n{diagnostics}",
            path.display(),
            diagnostics.0.len()
        )
    })
}

/// Checks every file; prints one line per valid file to stdout and every problem to stderr.
/// Returns how many files failed.
pub fn check_files(paths: &[std::path::PathBuf]) -> usize {
    let mut failed = 0;
    for path in paths {
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        match tracelab_scenario::parse(&source, &path.display().to_string()) {
            Ok(scenario) => {
                let routes: usize = scenario.services.values().map(|s| s.routes.len()).sum();
                println!(
                    "ok: {} ({} services, {} routes, {} entry route(s), seed {})",
                    path.display(),
                    scenario.services.len(),
                    routes,
                    scenario.load.entries.len(),
                    scenario.seed
                );
            }
            Err(diagnostics) => {
                failed += 1;
                eprintln!("{diagnostics}");
                eprintln!(
                    "{}: {} problem(s) found",
                    path.display(),
                    diagnostics.0.len()
                );
            }
        }
    }
    failed
}
