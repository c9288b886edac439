//! The `tracelab` command. Parsing lives in [`tracelab::cli`]; everything else in the library.

use std::process::ExitCode;

use clap::Parser;

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
