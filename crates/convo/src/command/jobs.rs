//! `convo jobs`.

use anyhow::Result;
use convo_core::{JobQuery, JobState};
use serde_json::json;

use crate::context::Ctx;
use crate::output::{self, Table};

/// List background jobs (naming, profile updates), newest first.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  convo jobs --state failed\n  convo jobs --user alice --json")]
pub struct Args {
    /// Only jobs in this state: pending, running, done or failed.
    #[arg(long)]
    state: Option<String>,
    /// Only this user's jobs.
    #[arg(long)]
    user: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Prints them.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let state: Option<JobState> = args.state.as_deref().map(str::parse).transpose()?;
    if let Some(u) = &args.user {
        convo_core::UserId::new(u.as_str())?;
    }
    let query = JobQuery {
        user: args.user.clone(),
        state,
        conversation_id: None,
        limit: Some(args.limit),
    };
    let jobs = ctx.store.list_jobs(&query).await?;
    if ctx.json {
        return output::json(&json!({"data": jobs}));
    }
    if jobs.is_empty() {
        return output::line("no jobs");
    }
    let mut table = Table::new(&[
        "ID",
        "KIND",
        "STATE",
        "ATTEMPTS",
        "USER",
        "CONVERSATION",
        "UPDATED",
        "LAST ERROR",
    ]);
    for j in &jobs {
        table.row(vec![
            j.id.clone(),
            j.kind.to_string(),
            j.state.to_string(),
            format!("{}/{}", j.attempts, j.max_attempts),
            j.user.clone(),
            j.conversation_id.clone(),
            output::time(j.updated_at),
            j.last_error
                .as_deref()
                .map(|e| output::clip(e, 60))
                .unwrap_or_default(),
        ]);
    }
    table.print()
}
