//! `convo log`.

use anyhow::Result;
use serde_json::json;

use crate::context::Ctx;
use crate::output;

/// Print a conversation's chat log: the saved one, or a transcript of its items.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  convo log --user alice conv_0190… > chat.txt")]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
}

/// Prints it.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    let log = convo.get_chat_log(&args.user, &args.conversation).await?;
    if ctx.json {
        output::json(&json!({"conversation_id": args.conversation, "chat_log": log}))
    } else {
        output::line(log.trim_end_matches('\n'))
    }
}
