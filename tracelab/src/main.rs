//! The `tracelab` command. Parsing lives in [`tracelab::cli`]; everything else in the library.

use std::process::ExitCode;

use clap::Parser;

// glibc's malloc keeps what a burst frees in per-thread arenas, so after a wave of large OTLP
// bodies (16 MiB each) the process stayed hundreds of megabytes above what was live; mimalloc
// hands freed pages back, which keeps the receiver's memory budget a bound on RSS
// (tracelab/tests/receiver_budget.rs measures it).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = tracelab::cli::Cli::parse();
    tracelab::logging::init(cli.verbose);
    match tracelab::cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
