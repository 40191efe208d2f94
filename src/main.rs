//! protolab's binary: install the error and panic hooks, parse the command line, give up the
//! privileges it will not need, run.

use clap::Parser;
use protolab::cli::{Cli, dispatch};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Panics restore the terminal first (the TUI installs its own hook on top of this one).
    if let Err(e) = color_eyre::install() {
        eprintln!("protolab: {e}");
    }
    let cli = Cli::parse();
    // Before the runtime makes its threads: they inherit what this one keeps.
    if !cli.needs_raw_sockets() {
        protolab::net::capture::open_early();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("protolab: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes, outermost first.
            let reason: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("protolab: {}", reason.join(": "));
            ExitCode::FAILURE
        }
    }
}
