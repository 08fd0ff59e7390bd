//! `convo config`: the effective settings.

use anyhow::Result;

use crate::config::Settings;

/// Print the settings after defaults, the file, the environment and the flags.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  CONVO_SERVER_ADDR=0.0.0.0:9000 convo config --json")]
pub struct Args {}

/// Prints them (TOML, or JSON with `--json`).
pub fn run(settings: &Settings, json: bool, _args: Args) -> Result<()> {
    if json {
        crate::output::json(settings)
    } else {
        let text = toml::to_string_pretty(settings)?;
        crate::output::line(text.trim_end())
    }
}
