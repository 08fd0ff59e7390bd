//! `convo add`.

use anyhow::Result;
use convo_core::{NewItem, Role};

use crate::context::Ctx;
use crate::output;

/// Append a message to a conversation.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  convo add --user alice conv_0190… --role user \"What's the weather in Paris?\"\n  echo \"It's sunny.\" | convo add --user alice conv_0190… --role assistant -"
)]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
    /// system, developer, user, assistant or tool.
    #[arg(long)]
    role: String,
    /// The text, or `-` to read it from stdin.
    content: String,
}

/// Appends it and prints the item id.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let role: Role = args.role.parse()?;
    let content = output::text_arg(&args.content)?;
    super::require_conversation(ctx, &args.user, &args.conversation).await?;
    let convo = ctx.manager(&args.user, None)?;
    let items = convo
        .append_items(
            &args.user,
            &args.conversation,
            vec![NewItem::message(role, content)],
        )
        .await?;
    print_items(ctx, &items)
}

/// Prints appended items: their ids, or the items as JSON.
pub fn print_items(ctx: &Ctx, items: &[convo_core::Item]) -> Result<()> {
    for item in items {
        if ctx.json {
            output::json(item)?;
        } else {
            output::line(&item.id)?;
        }
    }
    Ok(())
}
