//! `convo rename`.

use anyhow::Result;

use crate::context::Ctx;
use crate::output;

/// Rename a conversation, or (`--auto`) queue a naming job for the background namer.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo rename --user alice conv_0190… \"Weather in Paris\"\n  convo rename --user alice conv_0190… --auto"
)]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
    /// The new name.
    #[arg(required_unless_present = "auto", conflicts_with = "auto")]
    name: Option<String>,
    /// Let the background namer choose (`convo work` runs it).
    #[arg(long)]
    auto: bool,
}

/// Renames it or queues the job.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    match args.name {
        Some(name) if !args.auto => {
            let c = convo
                .rename_conversation(&args.user, &args.conversation, &name)
                .await?;
            if ctx.json {
                output::json(&super::show::conversation_json(&c))
            } else {
                output::line(format!("{} renamed to {:?}", c.id, c.name))
            }
        }
        _ => {
            let job = convo.request_name(&args.user, &args.conversation).await?;
            if ctx.json {
                output::json(&job)
            } else {
                output::line(format!("naming job {} queued", job.id))
            }
        }
    }
}
