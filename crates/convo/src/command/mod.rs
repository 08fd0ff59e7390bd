//! One file per command; [`run`] opens the store and dispatches.

mod add;
mod call;
mod completions;
mod config;
mod delete;
mod erase;
mod export;
mod history;
mod import;
mod import_scout;
mod jobs;
mod keys;
mod list;
mod log;
mod new;
mod output;
mod profile;
mod rename;
mod save;
mod search;
mod serve;
mod show;
mod work;

use anyhow::Result;
use clap::Subcommand;

use crate::cli::Cli;
use crate::config::Settings;
use crate::context::Ctx;

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a conversation and print its id.
    New(new::Args),
    /// Append a message.
    Add(add::Args),
    /// Append a function (tool) call.
    Call(call::Args),
    /// Append the output of a function call.
    Output(output::Args),
    /// Save a conversation with its chat log (the seed's save) and queue naming.
    Save(save::Args),
    /// Print a conversation as a prompt history.
    History(history::Args),
    /// Print a conversation's chat log.
    Log(log::Args),
    /// List a user's conversations, newest first.
    List(list::Args),
    /// Show one conversation: its metadata and items.
    Show(show::Args),
    /// Rename a conversation, or ask the background namer for a name.
    Rename(rename::Args),
    /// Delete a conversation and everything in it.
    Delete(delete::Args),
    /// Search a user's messages.
    Search(search::Args),
    /// Show or change a user's profile.
    Profile(profile::Args),
    /// List background jobs.
    Jobs(jobs::Args),
    /// Remove a user and everything of theirs.
    Erase(erase::Args),
    /// Write conversations as JSON Lines.
    Export(export::Args),
    /// Read conversations from JSON Lines written by `convo export`.
    Import(import::Args),
    /// Migrate SCOUT (the legacy Python system) persona databases and profiles.
    ImportScout(import_scout::Args),
    /// Print the effective settings (after file, environment and flags).
    Config(config::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Run background jobs: name conversations, update profiles.
    Work(work::Args),
    /// Serve the HTTP API (OpenAI Conversations API and convo's extensions).
    Serve(serve::Args),
    /// Manage the server's API keys.
    Keys(keys::Args),
}

/// Runs the parsed command.
pub async fn run(cli: Cli, settings: Settings) -> Result<()> {
    let json = cli.json;
    let quiet = cli.quiet;
    match cli.command {
        Command::Completions(a) => return completions::run(a),
        Command::Config(a) => return config::run(&settings, json, a),
        _ => {}
    }
    // Commands that keep the store open or write much pay for growing the WAL once
    // up front; one-shot commands would spend more on it than they write.
    let long_running = matches!(
        cli.command,
        Command::Serve(_) | Command::Work(_) | Command::Import(_) | Command::ImportScout(_)
    );
    let ctx = Ctx::open(settings, json, quiet, long_running).await?;
    let result = match cli.command {
        Command::New(a) => new::run(&ctx, a).await,
        Command::Add(a) => add::run(&ctx, a).await,
        Command::Call(a) => call::run(&ctx, a).await,
        Command::Output(a) => output::run(&ctx, a).await,
        Command::Save(a) => save::run(&ctx, a).await,
        Command::History(a) => history::run(&ctx, a).await,
        Command::Log(a) => log::run(&ctx, a).await,
        Command::List(a) => list::run(&ctx, a).await,
        Command::Show(a) => show::run(&ctx, a).await,
        Command::Rename(a) => rename::run(&ctx, a).await,
        Command::Delete(a) => delete::run(&ctx, a).await,
        Command::Search(a) => search::run(&ctx, a).await,
        Command::Profile(a) => profile::run(&ctx, a).await,
        Command::Jobs(a) => jobs::run(&ctx, a).await,
        Command::Erase(a) => erase::run(&ctx, a).await,
        Command::Export(a) => export::run(&ctx, a).await,
        Command::Import(a) => import::run(&ctx, a).await,
        Command::ImportScout(a) => import_scout::run(&ctx, a).await,
        Command::Work(a) => work::run(&ctx, a).await,
        Command::Serve(a) => serve::run(&ctx, a).await,
        Command::Keys(a) => keys::run(&ctx, a).await,
        Command::Completions(_) | Command::Config(_) => {
            unreachable!("handled before opening the store")
        }
    };
    // Close even after a failure so whatever was committed is flushed; the command's
    // own error is the one worth reporting.
    let closed = ctx.close().await;
    result.and(closed)
}

/// Checks that `conversation` is one of `user`'s before writing to it: appends would
/// otherwise create it (the seed's implicit creation).
async fn require_conversation(
    ctx: &Ctx,
    user: &str,
    conversation: &str,
) -> Result<convo_core::Conversation> {
    let user_id = convo_core::UserId::new(user)?;
    Ok(ctx.store.get_conversation(&user_id, conversation).await?)
}
