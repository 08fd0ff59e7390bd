//! `convo`: conversations for LLM applications, from the command line.
//!
//! `main` stays thin: parse the flags, load the settings, set up logging, run one
//! command, and turn a failure into one sentence on stderr and a non-zero exit.

mod cli;
mod command;
mod config;
mod context;
mod output;
mod progress;

// The importers live in the library half of this crate (fuzz targets use them).
use convo::{exchange, scout};

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

/// mimalloc instead of glibc's malloc: under 64 concurrent appends glibc's
/// malloc/free (and its arena consolidation, as request buffers are allocated on
/// the async workers and freed on the writer thread) took ~14% of the server's CPU;
/// with mimalloc the server spends ~12% less CPU per append and per no-op request
/// (`scripts/http-cpu.sh`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match config::Settings::load(&cli) {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    config::init_tracing(&settings);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return report(&anyhow::Error::new(e).context("could not start the runtime")),
    };
    match runtime.block_on(command::run(cli, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Prints the error as one line on stderr and picks the exit code: 2 for input the
/// user can fix (validation, not found, conflicts), 1 for everything else.
fn report(e: &anyhow::Error) -> ExitCode {
    // A closed stdout (`convo list | head`) is not an error worth a message.
    if e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {}", output::error_sentence(e));
    let client = e
        .chain()
        .find_map(|c| c.downcast_ref::<convo_core::Error>())
        .is_some_and(convo_core::Error::is_client_error);
    if client || e.downcast_ref::<output::UsageError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}
