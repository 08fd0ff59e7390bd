//! `convo output`.

use anyhow::Result;
use convo_core::NewItem;

use crate::context::Ctx;
use crate::output;

/// Append what a function call returned.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo output --user alice conv_0190… call_1 '18°C, sunny'\n  curl -s https://wttr.in/Paris?format=3 | convo output --user alice conv_0190… call_1 -"
)]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
    /// The call id it answers.
    call_id: String,
    /// The output text, or `-` to read it from stdin.
    output: String,
}

/// Appends it and prints the item id.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let text = output::text_arg(&args.output)?;
    super::require_conversation(ctx, &args.user, &args.conversation).await?;
    let convo = ctx.manager(&args.user, None)?;
    let items = convo
        .append_items(
            &args.user,
            &args.conversation,
            vec![NewItem::function_call_output(args.call_id, text)],
        )
        .await?;
    super::add::print_items(ctx, &items)
}
