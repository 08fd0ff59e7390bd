//! The global flags every command shares.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::command::Command;

/// Conversations for LLM applications: messages, tool calls, history, search,
/// profiles and background naming, stored in SQLite.
#[derive(Debug, Parser)]
#[command(
    name = "convo",
    version,
    propagate_version = true,
    after_help = "Example:\n  id=$(convo new --user alice --persona Helper)\n  convo add --user alice \"$id\" --role user \"What's the weather in Paris?\"\n  convo history --user alice \"$id\" --json"
)]
pub struct Cli {
    /// Database: a SQLite file path (default: convo.db in the platform data directory).
    #[arg(long, global = true, env = "CONVO_DB", value_name = "PATH")]
    pub db: Option<String>,

    /// Settings file (TOML). Default: config.toml in the platform config directory,
    /// when it exists.
    #[arg(long, global = true, env = "CONVO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print data as JSON (shapes are documented in the README).
    #[arg(long, global = true)]
    pub json: bool,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}
