//! `convo completions`.

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

/// Print a completion script for a shell.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo completions bash > ~/.local/share/bash-completion/completions/convo"
)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

/// Writes the script to stdout.
pub fn run(args: Args) -> Result<()> {
    let mut cmd = crate::cli::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "convo", &mut std::io::stdout());
    Ok(())
}
