//! `convo delete`.

use anyhow::Result;
use serde_json::json;

use crate::context::Ctx;
use crate::output;

/// Delete a conversation and everything in it (items, search entries, pending jobs).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo delete --user alice conv_0190…\n  convo delete --user alice conv_0190… --yes   # in scripts"
)]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Deletes it after confirmation.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    // Check first, so a wrong id fails before asking anything.
    let c = convo
        .get_conversation(&args.user, &args.conversation)
        .await?;
    let label = if c.name.is_empty() {
        c.id.clone()
    } else {
        format!("{} ({})", c.id, c.name)
    };
    if !output::confirm(&format!("Delete {label} and all its items?"), args.yes)? {
        return Err(output::usage("not deleted: the answer was not yes"));
    }
    let r = convo
        .delete_conversation(&args.user, &args.conversation)
        .await?;
    if ctx.json {
        output::json(&json!({"id": c.id, "deleted": true, "items": r.items, "jobs": r.jobs}))
    } else {
        output::line(format!(
            "deleted {}: {} item(s), {} job(s) cancelled",
            c.id, r.items, r.jobs
        ))
    }
}
