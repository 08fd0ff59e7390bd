//! `convo erase`.

use anyhow::Result;

use crate::context::Ctx;
use crate::output::{self, Table};

/// Remove a user and everything of theirs: conversations, items, profile, audit
/// trail, jobs and API keys, in one transaction. Prints what was removed.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo erase --user alice\n  convo erase --user alice --yes --json   # in scripts"
)]
pub struct Args {
    /// The user to erase.
    #[arg(long)]
    user: String,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
}

/// Erases after confirmation.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    if !output::confirm(
        &format!(
            "Erase user {} and everything of theirs? This cannot be undone.",
            args.user
        ),
        args.yes,
    )? {
        return Err(output::usage("nothing erased: the answer was not yes"));
    }
    let r = convo.erase_user(&args.user).await?;
    if ctx.json {
        return output::json(&r);
    }
    output::line(format!("erased {}:", args.user))?;
    let mut table = Table::new(&["WHAT", "REMOVED"]);
    for (what, n) in [
        ("conversations", r.conversations),
        ("items", r.items),
        ("profile fields", r.profile_fields),
        ("audit entries", r.audit_entries),
        ("jobs", r.jobs),
        ("api keys", r.api_keys),
    ] {
        table.row(vec![what.to_string(), n.to_string()]);
    }
    table.print()
}
