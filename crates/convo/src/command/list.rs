//! `convo list`.

use anyhow::Result;
use convo_core::{ConversationQuery, PersonaName};
use serde_json::json;

use crate::context::Ctx;
use crate::output::{self, Table};

/// List a user's conversations, newest activity first, one page at a time.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo list --user alice --persona Helper --limit 20\n  convo list --user alice --cursor <next_cursor from the previous page>"
)]
pub struct Args {
    /// The user.
    #[arg(long)]
    user: String,
    /// Only this persona's conversations.
    #[arg(long)]
    persona: Option<String>,
    /// Page size (1-1000).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Continue after the previous page (its `next_cursor`).
    #[arg(long)]
    cursor: Option<String>,
}

/// Prints one page.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    let query = ConversationQuery {
        persona: args.persona.as_deref().map(PersonaName::new).transpose()?,
        limit: args.limit,
        cursor: args.cursor,
    };
    let page = convo.list_conversations(&args.user, &query).await?;
    if ctx.json {
        let data: Vec<_> = page
            .data
            .iter()
            .map(super::show::conversation_json)
            .collect();
        return output::json(&json!({
            "data": data,
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }));
    }
    let mut table = Table::new(&["ID", "PERSONA", "UPDATED", "NAME"]);
    for c in &page.data {
        table.row(vec![
            c.id.clone(),
            c.persona.to_string(),
            output::time(c.updated_at),
            output::clip(&c.name, 60),
        ]);
    }
    if table.is_empty() {
        return output::line(format!("{} has no conversations", args.user));
    }
    table.print()?;
    if let (true, Some(c)) = (page.has_more, &page.next_cursor) {
        output::line(format!("more: --cursor {c}"))?;
    }
    Ok(())
}
