//! `convo show`.

use std::collections::HashMap;

use anyhow::Result;
use convo_core::{Conversation, ItemBody};
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::output;

/// Show one conversation: its metadata and its items, each tool call with its output.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo show --user alice conv_0190…\n  convo show --user alice conv_0190… --json | jq '.items[] | select(.type == \"function_call\")'"
)]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
}

/// A conversation's stable JSON shape (without the chat log, which `log` prints).
pub fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "user": c.user,
        "persona": c.persona,
        "name": c.name,
        "name_set_by_person": c.name_set_by_person,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "metadata": c.metadata,
        "has_chat_log": c.chat_log.as_deref().is_some_and(|l| !l.is_empty()),
    })
}

/// Prints it.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    let c = convo
        .get_conversation(&args.user, &args.conversation)
        .await?;
    let items = convo.all_items(&args.user, &args.conversation).await?;
    if ctx.json {
        return output::json(&json!({"conversation": conversation_json(&c), "items": items}));
    }
    let name = if c.name.is_empty() {
        "(no name yet)"
    } else {
        &c.name
    };
    output::line(format!("{}  {name}", c.id))?;
    output::line(format!("user: {}   persona: {}", c.user, c.persona))?;
    output::line(format!(
        "created: {}   updated: {}   items: {}",
        output::time(c.created_at),
        output::time(c.updated_at),
        items.len()
    ))?;
    if !c.metadata.is_empty() {
        let pairs: Vec<String> = c.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        output::line(format!("metadata: {}", pairs.join(", ")))?;
    }
    output::line("")?;

    // Outputs are printed under the call they answer.
    let calls: std::collections::HashSet<&str> = items
        .iter()
        .filter_map(|i| match &i.body {
            ItemBody::FunctionCall { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut outputs: HashMap<&str, Vec<String>> = HashMap::new();
    for i in &items {
        if let ItemBody::FunctionCallOutput { call_id, output } = &i.body
            && calls.contains(call_id.as_str())
        {
            outputs
                .entry(call_id.as_str())
                .or_default()
                .push(output.plain_text());
        }
    }
    let width = items
        .iter()
        .map(|i| match &i.body {
            ItemBody::Message { role, .. } => role.as_str().len(),
            ItemBody::FunctionCall { .. } => 4,
            ItemBody::FunctionCallOutput { .. } => 6,
        })
        .max()
        .unwrap_or(4);
    for i in &items {
        let when = output::time(i.created_at);
        match &i.body {
            ItemBody::Message { role, content } => {
                let text = content
                    .plain_text()
                    .replace('\n', &format!("\n{:w$}", "", w = 21 + width + 2));
                output::line(format!("{when}  {:width$}  {text}", role.as_str()))?;
            }
            ItemBody::FunctionCall {
                call_id,
                name,
                arguments,
                ..
            } => {
                output::line(format!(
                    "{when}  {:width$}  {name}({arguments})  [{call_id}]",
                    "call"
                ))?;
                match outputs.get(call_id.as_str()) {
                    Some(outs) => {
                        for o in outs {
                            output::line(format!(
                                "{:w$}-> {}",
                                "",
                                output::clip(o, 200),
                                w = 21 + width + 2
                            ))?;
                        }
                    }
                    None => {
                        output::line(format!("{:w$}-> (no output yet)", "", w = 21 + width + 2))?
                    }
                }
            }
            ItemBody::FunctionCallOutput { call_id, output: o } => {
                if !calls.contains(call_id.as_str()) {
                    output::line(format!(
                        "{when}  {:width$}  {}  [{call_id}, no such call]",
                        "output",
                        o.plain_text()
                    ))?;
                }
            }
        }
    }
    Ok(())
}
