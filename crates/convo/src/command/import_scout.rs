//! `convo import-scout`: migrate the legacy Python system's data.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::exchange::{self, Written};
use crate::scout::{self, Stats};
use crate::{output, progress};

/// Migrate SCOUT persona databases (one SQLite file per persona, read only) and,
/// optionally, the folder of per-user profile files (`<user>.json`). Conversation
/// ids, names, times and personas are kept; the `Message ID:` lines are stripped;
/// calls are linked to their messages and responses to their calls where the legacy
/// links allow, and what cannot be linked is kept, not dropped. Conversations that
/// already exist are skipped, so running it twice is safe.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo import-scout ~/SCOUT/user_data/*.db --profiles ~/SCOUT/user_profiles"
)]
pub struct Args {
    /// Legacy persona database files.
    #[arg(required = true, value_name = "DB")]
    dbs: Vec<PathBuf>,
    /// Folder of legacy profile files, `<user>.json`.
    #[arg(long, value_name = "DIR")]
    profiles: Option<PathBuf>,
}

/// Reads every file first (so an unreadable one changes nothing), then writes.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let started = Instant::now();
    let limits = ctx.manager("import", None)?.config().limits;
    // Every file is read before anything is written: an unreadable one changes nothing.
    let mut files = Vec::new();
    for path in &args.dbs {
        let p = path.clone();
        let db = tokio::task::spawn_blocking(move || scout::read(&p))
            .await
            .context("the legacy reader stopped")??;
        files.push((path.clone(), db));
    }
    let profiles = match &args.profiles {
        Some(dir) => read_profiles(dir)?,
        None => Vec::new(),
    };
    let read_seconds = started.elapsed().as_secs_f64();

    let total: usize = files.iter().map(|(_, db)| db.conversation_count()).sum();
    let bar = progress::bar(ctx.show_progress(), total as u64, "scout");
    let mut stats = Stats::default();
    let mut report_files = Vec::new();
    let mut skipped = Vec::new();
    let (mut imported, mut items) = (0u64, 0u64);
    for (path, db) in files {
        let file = path.display().to_string();
        let persona = db.persona.clone();
        // Convert on a blocking thread while the store writes what is ready.
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let converter = tokio::task::spawn_blocking(move || {
            scout::convert(db, &limits, |w| {
                let _ = tx.blocking_send(w);
            })
        });
        let ready = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let written = exchange::write_stream(&ctx.store, ready, false, &bar).await;
        let converted = converter.await.context("the legacy converter stopped")?;
        add(&mut stats, &converted.stats);
        let mut file_imported = 0u64;
        let mut file_skipped = converted.skipped.len() as u64;
        bar.inc(file_skipped);
        for (id, reason) in &converted.skipped {
            skipped.push(json!({"file": file, "id": id, "reason": reason}));
        }
        for (id, w) in written {
            match w {
                Written::Created(n) | Written::Replaced(n) => {
                    file_imported += 1;
                    items += n as u64;
                }
                Written::Skipped(why) | Written::Failed(why) => {
                    file_skipped += 1;
                    let why = if why.starts_with("already exists") {
                        "already imported".to_string()
                    } else {
                        why
                    };
                    skipped.push(json!({"file": file, "id": id, "reason": why}));
                }
            }
        }
        imported += file_imported;
        report_files.push(json!({
            "file": file,
            "persona": persona,
            "imported": file_imported,
            "skipped": file_skipped,
        }));
    }
    bar.finish_and_clear();

    let mut profile_report = Vec::new();
    let mut profile_skipped = Vec::new();
    for (user, parsed) in profiles {
        let outcome = match parsed {
            Ok(value) => match ctx.manager(&user, None) {
                Ok(m) => m
                    .import_profile(&user, &value)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(fields) => profile_report.push(json!({"user": user, "fields": fields})),
            Err(reason) => profile_skipped.push(json!({"user": user, "reason": reason})),
        }
    }

    let seconds = started.elapsed().as_secs_f64();
    let report = json!({
        "imported": imported,
        "items": items,
        "skipped": skipped,
        "files": report_files,
        "stats": stats,
        "profiles": {"imported": profile_report, "skipped": profile_skipped},
        "seconds": seconds,
        "read_seconds": read_seconds,
        "conversations_per_second": imported as f64 / seconds.max(1e-9),
        "items_per_second": items as f64 / seconds.max(1e-9),
    });
    if ctx.json {
        return output::json(&report);
    }
    print_report(&report, &stats)
}

fn print_report(report: &Value, stats: &Stats) -> Result<()> {
    // A messy legacy database can skip thousands: show the first ones, --json has all.
    const SHOWN: usize = 20;
    let all_skipped = report["skipped"].as_array().map_or(&[][..], Vec::as_slice);
    for s in all_skipped.iter().take(SHOWN) {
        eprintln!(
            "skipped {} {}: {}",
            s["file"].as_str().unwrap_or(""),
            s["id"].as_str().unwrap_or(""),
            s["reason"].as_str().unwrap_or("")
        );
    }
    if all_skipped.len() > SHOWN {
        eprintln!(
            "… and {} more skipped (--json lists them all)",
            all_skipped.len() - SHOWN
        );
    }
    for s in report["profiles"]["skipped"]
        .as_array()
        .into_iter()
        .flatten()
    {
        eprintln!(
            "skipped profile {}: {}",
            s["user"].as_str().unwrap_or(""),
            s["reason"].as_str().unwrap_or("")
        );
    }
    let mut table = output::Table::new(&["FILE", "PERSONA", "IMPORTED", "SKIPPED"]);
    for f in report["files"].as_array().into_iter().flatten() {
        table.row(vec![
            f["file"].as_str().unwrap_or("").to_string(),
            f["persona"].as_str().unwrap_or("").to_string(),
            f["imported"].to_string(),
            f["skipped"].to_string(),
        ]);
    }
    table.print()?;
    output::line(format!(
        "imported {} conversation(s) with {} item(s), skipped {}, in {:.1}s ({:.0} conversations/s)",
        report["imported"],
        report["items"],
        report["skipped"].as_array().map_or(0, Vec::len),
        report["seconds"].as_f64().unwrap_or(0.0),
        report["conversations_per_second"].as_f64().unwrap_or(0.0),
    ))?;
    output::line(format!(
        "outputs linked by id {}, by position {}, kept as tool messages {}; calls linked to messages {}; unparsed timestamps {}; duplicate rows {}; rebuilt without a row {}",
        stats.outputs_linked_by_id,
        stats.outputs_linked_by_position,
        stats.outputs_kept_as_messages,
        stats.calls_linked_to_messages,
        stats.unparsed_timestamps,
        stats.duplicate_rows,
        stats.without_conversation_row,
    ))?;
    let imported = report["profiles"]["imported"]
        .as_array()
        .map_or(0, Vec::len);
    let skipped = report["profiles"]["skipped"].as_array().map_or(0, Vec::len);
    if imported + skipped > 0 {
        output::line(format!("profiles: {imported} imported, {skipped} skipped"))?;
    }
    Ok(())
}

/// `(user, parsed JSON or why not)` for each `<user>.json` in `dir`, sorted by user.
fn read_profiles(dir: &std::path::Path) -> Result<Vec<(String, Result<Value, String>)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("could not read the profile folder {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(user) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| format!("unreadable: {e}"))
            .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("not JSON: {e}")));
        out.push((user, parsed));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn add(total: &mut Stats, s: &Stats) {
    total.conversations += s.conversations;
    total.duplicate_rows += s.duplicate_rows;
    total.without_conversation_row += s.without_conversation_row;
    total.messages += s.messages;
    total.function_calls += s.function_calls;
    total.calls_linked_to_messages += s.calls_linked_to_messages;
    total.outputs_linked_by_id += s.outputs_linked_by_id;
    total.outputs_linked_by_position += s.outputs_linked_by_position;
    total.outputs_kept_as_messages += s.outputs_kept_as_messages;
    total.unknown_roles += s.unknown_roles;
    total.unparsed_timestamps += s.unparsed_timestamps;
}
