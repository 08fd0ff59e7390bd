//! `convo call`.

use anyhow::Result;
use convo_core::{ItemBody, NewItem};

use crate::context::Ctx;
use crate::output;

/// Append a function (tool) call the model made.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo call --user alice conv_0190… get_weather '{\"city\": \"Paris\"}' --call-id call_1\n  convo output --user alice conv_0190… call_1 '18°C, sunny'"
)]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
    /// The function's name.
    name: String,
    /// The arguments, as JSON (`-` reads them from stdin).
    arguments: String,
    /// The call id outputs will answer (default: a generated `call_…`).
    #[arg(long)]
    call_id: Option<String>,
    /// The id of the assistant message that issued the call.
    #[arg(long)]
    message: Option<String>,
}

/// Appends it; prints the item id and the call id.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let arguments = output::text_arg(&args.arguments)?;
    // A person typed these: refuse what a model could not have meant as JSON.
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&arguments) {
        return Err(output::usage(format!(
            "the arguments are not valid JSON ({e}); quote them, e.g. '{{\"city\": \"Paris\"}}'"
        )));
    }
    super::require_conversation(ctx, &args.user, &args.conversation).await?;
    let call_id = args
        .call_id
        .unwrap_or_else(|| format!("call_{}", &convo_core::ids::new_id("")[12..]));
    let item = NewItem::new(ItemBody::FunctionCall {
        call_id: call_id.clone(),
        name: args.name,
        arguments,
        message_id: args.message,
    });
    let convo = ctx.manager(&args.user, None)?;
    let items = convo
        .append_items(&args.user, &args.conversation, vec![item])
        .await?;
    if ctx.json {
        for item in &items {
            output::json(item)?;
        }
        Ok(())
    } else {
        for item in &items {
            output::line(format!("{} {call_id}", item.id))?;
        }
        Ok(())
    }
}
