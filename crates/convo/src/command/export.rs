//! `convo export`.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use serde_json::json;

use crate::context::Ctx;
use crate::exchange::ExportedConversation;
use crate::{output, progress};

/// Write conversations as JSON Lines: one conversation a line, with its items,
/// name, persona, times, metadata and chat log. The output is deterministic
/// (conversations by creation time, then id), so export, import into an empty
/// database and export again gives the same bytes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo export --user alice -o alice.jsonl\n  convo export --user alice --persona Helper | gzip > helper.jsonl.gz"
)]
pub struct Args {
    /// Whose conversations.
    #[arg(long, required_unless_present = "all")]
    user: Option<String>,
    /// Only this persona's.
    #[arg(long)]
    persona: Option<String>,
    /// Every user's conversations (users in order, each user's as with --user).
    #[arg(long, conflicts_with = "user")]
    all: bool,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

/// Writes them.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let users = match args.user.as_deref() {
        Some(user) => vec![user.to_string()],
        None => ctx.manager("export", None)?.list_users().await?,
    };
    let mut list = Vec::new();
    for user in &users {
        let convo = ctx.manager(user, None)?;
        let mut mine = convo
            .get_conversations(user, args.persona.as_deref(), None)
            .await?;
        mine.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        list.extend(mine);
    }

    let mut sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("could not create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // Writing to stdout and drawing a bar on stderr do not mix when stdout is the
    // terminal too; the bar shows only when the lines go to a file or a pipe.
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let bar = progress::bar(
        ctx.show_progress() && !to_terminal,
        list.len() as u64,
        "export",
    );
    let mut items = 0usize;
    for c in &list {
        let user = c.user.as_str();
        let convo = ctx.manager(user, None)?;
        // The listing may leave the chat log out; the full record has it.
        let full = convo.get_conversation(user, &c.id).await?;
        let all = convo.all_items(user, &c.id).await?;
        items += all.len();
        let line = serde_json::to_string(&ExportedConversation::new(full, all))?;
        sink.write_all(line.as_bytes())?;
        sink.write_all(b"\n")?;
        bar.inc(1);
    }
    sink.flush()?;
    bar.finish_and_clear();
    if let Some(path) = &args.output {
        let summary = json!({"conversations": list.len(), "items": items, "file": path});
        if ctx.json {
            output::json(&summary)?;
        } else if !ctx.quiet {
            eprintln!(
                "exported {} conversation(s), {items} item(s) to {}",
                list.len(),
                path.display()
            );
        }
    }
    Ok(())
}
