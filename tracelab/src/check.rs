//! `tracelab check`: validate scenario files and explain every problem.

use std::path::Path;

use std::time::Duration;

use anyhow::Context as _;
use tracelab_scenario::{ArrivalModel, LatencyModel, Load, Scenario};

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

/// How the load is shaped, on `run` and `load` (each overrides the scenario).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LoadShapeArgs {
    /// Arrival model: constant, poisson, ramp:FROM:TO, stages:DUR@RATE,..,
    /// steps:DUR@RATE,.., spike:HEIGHT@START+LENGTH.
    #[arg(long, value_parser = tracelab_loadgen::parse_arrival)]
    pub arrival: Option<ArrivalModel>,
    /// Closed loop with N virtual users instead of an arrival model. Without --think each user
    /// sends as soon as its previous answer arrives: the maximum-throughput mode.
    #[arg(long, conflicts_with = "arrival", value_parser = clap::value_parser!(u32).range(1..))]
    pub users: Option<u32>,
    /// Think time of a closed-loop user between an answer and its next request, e.g. 100ms.
    #[arg(long, value_parser = crate::cli::parse_duration, requires = "users")]
    pub think: Option<Duration>,
    /// Most connections open at once; due requests beyond wait and start late. Default: as
    /// many as the schedule needs, within the open-file limit.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: Option<u32>,
    /// Cap on requests in flight (waiting included); beyond it requests are dropped by the
    /// client and recorded as dropped.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: Option<u32>,
}

impl LoadShapeArgs {
    /// Applies the flags to the scenario's `load:` section.
    pub fn apply(&self, load: &mut Load) {
        if let Some(arrival) = &self.arrival {
            load.arrival = arrival.clone();
            load.users = None;
            load.think = None;
            if let Some(stages) = arrival.stages() {
                load.duration = stages.iter().map(|s| s.duration).sum();
            }
        }
        if let Some(users) = self.users {
            load.users = Some(users);
            load.arrival = ArrivalModel::Constant;
            load.think = None;
        }
        if let Some(think) = self.think {
            load.think = Some(LatencyModel::Constant {
                ms: think.as_secs_f64() * 1000.0,
            });
        }
        if let Some(c) = self.connections {
            load.connections = Some(c);
        }
        if let Some(m) = self.max_in_flight {
            load.max_in_flight = Some(m);
        }
    }

    /// The scenario fields the flags given replace, with the flag that replaced each.
    fn replaced(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.arrival.is_some() {
            out.push(("load.arrival", "--arrival"));
        }
        if self.users.is_some() {
            out.push(("load.users", "--users"));
        }
        if self.think.is_some() {
            out.push(("load.think", "--think"));
        }
        if self.connections.is_some() {
            out.push(("load.connections", "--connections"));
        }
        if self.max_in_flight.is_some() {
            out.push(("load.max_in_flight", "--max-in-flight"));
        }
        out
    }
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
    pub shape: LoadShapeArgs,
}

impl Overrides {
    /// The scenario fields the flags given replace, with the flag that replaced each.
    fn replaced(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.duration.is_some() {
            out.push(("load.duration", "--duration"));
        }
        if self.rate.is_some() {
            out.push(("load.rate", "--rate"));
        }
        if self.seed.is_some() {
            out.push(("seed", "--seed"));
        }
        out.extend(self.shape.replaced());
        out
    }
}

/// Reads a scenario, applies the command line's overrides to it, and validates the result:
/// the same rules as for the file alone, so a flag can never slip past a limit the file
/// could not. A problem caused by a flag names the flag.
pub fn read_scenario_with(
    path: &Path,
    overrides: &Overrides,
) -> anyhow::Result<(String, Scenario)> {
    let (source, scenario) = read_scenario(path)?;
    let scenario = apply_overrides(scenario, overrides, &path.display().to_string())?;
    Ok((source, scenario))
}

/// Applies the command line's overrides to a scenario already read (from `label`) and
/// validates the result, as [`read_scenario_with`] does for a file.
pub fn apply_overrides(
    mut scenario: Scenario,
    overrides: &Overrides,
    label: &str,
) -> anyhow::Result<Scenario> {
    if let Some(d) = overrides.duration {
        scenario.load.duration = d;
    }
    if let Some(r) = overrides.rate {
        scenario.load.rate = r;
    }
    if let Some(s) = overrides.seed {
        scenario.seed = s;
    }
    overrides.shape.apply(&mut scenario.load);
    if let Err(diagnostics) = scenario.validate() {
        let replaced = overrides.replaced();
        let lines: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                let flag = replaced
                    .iter()
                    .find(|(field, _)| d.path == *field || d.path.starts_with(&format!("{field}.")))
                    .map(|(_, flag)| format!(" (set by {flag})"))
                    .unwrap_or_default();
                let help = d
                    .help
                    .as_deref()
                    .map(|h| format!("\n  help: {h}"))
                    .unwrap_or_default();
                format!("{}{flag}: {}{help}", d.path, d.message)
            })
            .collect();
        anyhow::bail!(
            "{label} with the command line's changes has {} problem(s):\n{}",
            lines.len(),
            lines.join("\n")
        );
    }
    Ok(scenario)
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
