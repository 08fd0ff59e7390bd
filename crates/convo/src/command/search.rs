//! `convo search`.

use anyhow::Result;
use serde_json::json;

use crate::context::Ctx;
use crate::output::{self, Table};

/// Search a user's messages; best hits first, with the matching words in [brackets].
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo search --user alice \"weather paris\" --persona Helper --limit 5"
)]
pub struct Args {
    /// The user.
    #[arg(long)]
    user: String,
    /// Words to find.
    query: String,
    /// Only this persona's conversations.
    #[arg(long)]
    persona: Option<String>,
    /// At most this many hits (1-1000).
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

/// Prints the hits.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    let hits = convo
        .search(&args.user, &args.query, args.persona.as_deref(), args.limit)
        .await?;
    if ctx.json {
        return output::json(&json!({"data": hits}));
    }
    if hits.is_empty() {
        return output::line(format!(
            "no messages of {} match {:?}",
            args.user, args.query
        ));
    }
    let mut table = Table::new(&["SCORE", "CONVERSATION", "NAME", "ROLE", "SNIPPET"]);
    for h in &hits {
        table.row(vec![
            format!("{:.2}", h.score),
            h.conversation_id.clone(),
            output::clip(&h.conversation_name, 30),
            h.role.clone(),
            output::clip(&h.snippet, 80),
        ]);
    }
    table.print()
}
