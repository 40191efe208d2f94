//! protolab's binary: install the panic hook, parse the command line, give up the privileges
//! it will not need, run.

use clap::Parser;
use protolab::cli::{Cli, dispatch};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Panics restore the terminal first (the TUI installs its own hook on top of this one).
    // Errors are told in one line (below), never with a backtrace, so color-eyre's error hook
    // is left out: with RUST_BACKTRACE=1 it resolves one for every error made, and `serve`
    // makes one for each client it turns away or loses, keeping the debug info it read.
    match color_eyre::config::HookBuilder::default().try_into_hooks() {
        Ok((panic_hook, _errors)) => panic_hook.install(),
        Err(e) => eprintln!("protolab: {e}"),
    }
    let cli = Cli::parse();
    // Before the runtime makes its threads: they inherit what this one keeps.
    if !cli.needs_raw_sockets() {
        protolab::net::capture::open_early(cli.may_capture(), cli.may_ping());
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
