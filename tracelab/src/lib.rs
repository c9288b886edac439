//! tracelab: a distributed-tracing lab and load simulator.
//!
//! The binary is thin: it parses the command line and calls into this library, which wires the
//! crates together — scenario → services and load generator → OTLP → receiver → analysis →
//! report. Tests start the same functions on 127.0.0.1 port 0.
//!
//! Layout:
//! - [`cli`]: the command line (clap) and the dispatch to each command.
//! - [`compare`]: `tracelab compare`, the sampling lab's counterfactual comparison.
//! - [`check`]: `tracelab check`, scenario validation for people.
//! - [`diff`]: `tracelab diff`, what changed between two runs, read as streams.
//! - [`run`]: `tracelab run`, the whole lab in one process on the embedded receiver.
//! - [`svc`]: `tracelab svc`, one scenario service per process.
//! - [`load`]: `tracelab load`, the load alone, into services running elsewhere.
//! - [`report`]: `tracelab report` and the analysis view of every run (waterfalls, HTML).
//! - [`render`]: `tracelab render compose|k8s`, deployment files from a scenario.
//! - [`rundir`]: the run directory and its files.
//! - [`summary`]: the end-of-run summary, in the terminal and as `report.json`.
//! - [`progress`]: the live progress line.
//! - [`logging`]: diagnostics to stderr.

pub mod check;
pub mod cli;
pub mod compare;
pub mod diff;
pub mod load;
pub mod logging;
pub mod progress;
pub mod render;
pub mod report;
pub mod run;
pub mod rundir;
pub mod summary;
pub mod svc;
