//! `convo save`: the seed's chat-log save.

use anyhow::Result;
use serde_json::json;

use crate::context::Ctx;
use crate::output;

/// Save a conversation with its chat log: creates it or updates it (items are kept),
/// then queues the background naming and profile jobs.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo save --user alice --persona Helper conv_0190… chat.txt\n  cat chat.txt | convo save --user alice --persona Helper alice_1700000000_9f1c -"
)]
pub struct Args {
    /// The user.
    #[arg(long)]
    user: String,
    /// The persona.
    #[arg(long)]
    persona: String,
    /// The conversation id (created if new).
    conversation: String,
    /// The chat log text, or `-` to read it from stdin.
    log: String,
    /// A name set by a person (no naming job is queued).
    #[arg(long)]
    name: Option<String>,
}

/// Saves it.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let log = output::text_arg(&args.log)?;
    let convo = ctx.manager(&args.user, Some(&args.persona))?;
    let out = convo
        .save(
            &args.user,
            &args.conversation,
            &log,
            None,
            &args.persona,
            args.name.as_deref(),
        )
        .await?;
    if ctx.json {
        output::json(&json!({
            "conversation": super::show::conversation_json(&out.conversation),
            "created": out.created,
            "jobs_queued": out.jobs_queued,
        }))
    } else {
        let verb = if out.created { "created" } else { "updated" };
        output::line(format!(
            "{} {verb}; {} job(s) queued",
            out.conversation.id, out.jobs_queued
        ))
    }
}
