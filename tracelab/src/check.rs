//! `tracelab check`: validate scenario files and explain every problem.

use std::path::Path;

use anyhow::Context as _;
use tracelab_scenario::Scenario;

/// Reads and validates one scenario file. Errors carry the file, line, column and field path.
pub fn load_scenario(path: &Path) -> anyhow::Result<Scenario> {
    read_scenario(path).map(|(_, scenario)| scenario)
}

/// Reads and validates one scenario file, returning its text too (the run directory keeps a
/// copy of exactly what ran).
pub fn read_scenario(path: &Path) -> anyhow::Result<(String, Scenario)> {
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read scenario file {}", path.display()))?;
    let scenario =
        tracelab_scenario::parse(&source, &path.display().to_string()).map_err(|diagnostics| {
            anyhow::anyhow!(
                "{} has {} problem(s):\n{diagnostics}",
                path.display(),
                diagnostics.0.len()
            )
        })?;
    Ok((source, scenario))
}

/// Command-line overrides of a scenario's seed and load, shared by `run` and `load`.
#[derive(Debug, Clone, clap::Args)]
pub struct Overrides {
    /// How long to send load (overrides the scenario), e.g. 30s, 1.5s, 2m.
    #[arg(long, value_parser = crate::cli::parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Requests per second (overrides the scenario).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seed of the schedule and every random draw (overrides the scenario).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Load shape (overrides the scenario).
    #[command(flatten)]
    pub shape: crate::load::LoadShapeArgs,
}

/// Reads a scenario and applies the command line's overrides to it.
pub fn read_scenario_with(
    path: &Path,
    overrides: &Overrides,
) -> anyhow::Result<(String, Scenario)> {
    let (source, mut scenario) = read_scenario(path)?;
    if let Some(d) = overrides.duration {
        scenario.load.duration = d;
    }
    if let Some(r) = overrides.rate {
        anyhow::ensure!(
            r.is_finite() && r > 0.0,
            "--rate must be a positive number, got {r}"
        );
        scenario.load.rate = r;
    }
    if let Some(s) = overrides.seed {
        scenario.seed = s;
    }
    overrides.shape.apply(&mut scenario.load);
    Ok((source, scenario))
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
