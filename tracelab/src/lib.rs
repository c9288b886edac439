//! tracelab: a distributed-tracing lab and load simulator.
//!
//! The binary is thin: it parses the command line and calls into this library, which wires the
//! crates together — scenario → services and load generator → OTLP → receiver → analysis →
//! report. Tests start the same functions on 127.0.0.1 port 0.
//!
//! Layout:
//! - [`cli`]: the command line (clap) and the dispatch to each command.
//! - [`compare`]: `tracelab compare`, the sampling lab's counterfactual comparison.
//! - [`console`]: `tracelab serve`, a web console over a run directory: trace search and
//!   waterfalls from an index of its span file.
//! - [`check`]: `tracelab check`, scenario validation for people.
//! - [`session`]: one load session — backend, run directory, signals, root sampler, load,
//!   incidents, report — which `run` and `load` both are.
//! - [`run`]: `tracelab run`, a session with the whole lab in one process.
//! - [`load`]: `tracelab load`, a session into services running elsewhere.
//! - [`diff`]: `tracelab diff`, what changed between two runs, read as streams.
//! - [`import`]: `tracelab import`, a scenario inferred from traces.
//! - [`learn`]: `tracelab learn`, the course: lessons, questions computed from each run,
//!   progress.
//! - [`svc`]: `tracelab svc`, one scenario service per process.
//! - [`signals`]: SIGINT and SIGTERM, the same for every command.
//! - [`fdlimit`]: the open-file budget that sizes the load's connections.
//! - [`spans`]: span files read as a stream of whole traces (`report`, `diff`).
//! - [`report`]: `tracelab report` and the analysis view of every run (waterfalls, HTML).
//! - [`render`]: `tracelab render compose|k8s`, deployment files from a scenario.
//! - [`rundir`]: the run directory and its files.
//! - [`summary`]: the report model, in the terminal and as `report.json`.
//! - [`progress`]: the live progress line.
//! - [`logging`]: diagnostics to stderr.

pub mod check;
pub mod cli;
pub mod compare;
pub mod console;
pub mod diff;
pub mod fdlimit;
pub mod import;
pub mod learn;
pub mod load;
pub mod logging;
pub mod progress;
pub mod render;
pub mod report;
pub mod run;
pub mod rundir;
pub mod session;
pub mod signals;
pub mod spans;
pub mod summary;
pub mod svc;
