//! protolab's binary: install the error and panic hooks, parse the command line, run.

use clap::Parser;
use protolab::cli::{Cli, dispatch};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // Panics restore the terminal first (the TUI installs its own hook on top of this one).
    if let Err(e) = color_eyre::install() {
        eprintln!("protolab: {e}");
    }
    let cli = Cli::parse();
    match dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes, outermost first.
            let reason: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("protolab: {}", reason.join(": "));
            ExitCode::FAILURE
        }
    }
}
