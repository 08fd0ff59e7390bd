//! `convo import`.

use anyhow::{Context, Result};
use serde_json::json;

use crate::context::Ctx;
use crate::exchange::{self, ExportedConversation, ToWrite, Written};
use crate::{output, progress};

/// Read conversations from JSON Lines written by `convo export`. Each conversation
/// is imported all or nothing, keeping its ids and times; existing ones are skipped
/// unless `--replace`. Every line is checked before anything is written, so an
/// unreadable line leaves the database unchanged.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo import alice.jsonl\n  convo --db new.db import --replace alice.jsonl\n  gunzip -c helper.jsonl.gz | convo import -"
)]
pub struct Args {
    /// The JSON Lines file, or `-` for stdin.
    file: String,
    /// Replace conversations that already exist (their items are replaced too).
    #[arg(long)]
    replace: bool,
}

/// Reads, checks, then writes.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let text = if args.file == "-" {
        output::text_arg("-")?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("could not read {}", args.file))?
    };
    let limits = ctx.manager("import", None)?.config().limits;
    let mut batch: Vec<ToWrite> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let number = n + 1;
        if line.trim().is_empty() {
            continue;
        }
        let c: ExportedConversation = serde_json::from_str(line).map_err(|e| {
            output::usage(format!(
                "{} line {number} is not a convo export line ({e}); nothing was imported",
                args.file
            ))
        })?;
        let w = c.prepare(&limits).map_err(|e| {
            output::usage(format!(
                "{} line {number} is invalid ({e}); nothing was imported",
                args.file
            ))
        })?;
        batch.push(w);
    }
    let total = batch.len();
    let bar = progress::bar(ctx.show_progress(), total as u64, "import");
    let results = exchange::write_all(&ctx.store, batch, args.replace, &bar).await;
    bar.finish_and_clear();

    let (mut created, mut replaced, mut items) = (0, 0, 0);
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for (id, w) in &results {
        match w {
            Written::Created(n) => {
                created += 1;
                items += n;
            }
            Written::Replaced(n) => {
                replaced += 1;
                items += n;
            }
            Written::Skipped(why) => skipped.push(json!({"id": id, "reason": why})),
            Written::Failed(why) => failed.push(json!({"id": id, "reason": why})),
        }
    }
    if ctx.json {
        output::json(&json!({
            "imported": created,
            "replaced": replaced,
            "items": items,
            "skipped": skipped,
            "failed": failed,
        }))?;
    } else {
        for s in skipped.iter().chain(&failed) {
            eprintln!(
                "{}: {}",
                s["id"].as_str().unwrap_or(""),
                s["reason"].as_str().unwrap_or("")
            );
        }
        output::line(format!(
            "imported {created}, replaced {replaced}, skipped {}, failed {} conversation(s); {items} item(s)",
            skipped.len(),
            failed.len()
        ))?;
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} conversation(s) could not be imported (each left out whole); see the reasons above",
            failed.len()
        );
    }
    Ok(())
}
