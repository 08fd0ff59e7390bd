//! `convo profile`.

use anyhow::{Context, Result};
use clap::ArgGroup;
use convo_core::{FieldContent, Profile};
use serde_json::json;

use crate::context::Ctx;
use crate::output::{self, Table};

/// Show a user's profile, change a field by hand, see its audit trail, or move it
/// in and out in the seed's JSON file shape.
#[derive(Debug, clap::Args)]
#[command(
    group(ArgGroup::new("action").args(["set", "remove", "history", "export", "import"])),
    after_help = "Examples:\n  convo profile --user alice\n  convo profile --user alice --set \"Home city=Paris\" --observations \"said so on 2026-11-02\"\n  convo profile --user alice --remove \"Home city\"\n  convo profile --user alice --history\n  convo profile --user alice --export > alice.json\n  convo profile --user alice --import alice.json"
)]
pub struct Args {
    /// The user.
    #[arg(long)]
    user: String,
    /// Set a field: FIELD=VALUE.
    #[arg(long, value_name = "FIELD=VALUE")]
    set: Option<String>,
    /// Why the field says this (with --set).
    #[arg(long, requires = "set", default_value = "")]
    observations: String,
    /// Remove a field.
    #[arg(long, value_name = "FIELD")]
    remove: Option<String>,
    /// Show the audit trail, newest first.
    #[arg(long)]
    history: bool,
    /// With --history: only this field's changes.
    #[arg(long, requires = "history")]
    field: Option<String>,
    /// With --history: at most this many entries.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print the profile in the seed's JSON file shape.
    #[arg(long)]
    export: bool,
    /// Read a profile in the seed's JSON file shape (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    import: Option<String>,
}

/// Does what was asked.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    let user = args.user.as_str();
    if let Some(pair) = &args.set {
        let (field, value) = pair
            .split_once('=')
            .ok_or_else(|| output::usage(format!("--set {pair:?} is not FIELD=VALUE")))?;
        let changes = convo
            .set_profile_field(
                user,
                field,
                FieldContent::Text(value.to_string()),
                &args.observations,
            )
            .await?;
        return if ctx.json {
            output::json(&json!({"changes": changes}))
        } else {
            output::line(format!("{user}: {field} set"))
        };
    }
    if let Some(field) = &args.remove {
        let removed = convo.remove_profile_field(user, field).await?;
        return if ctx.json {
            output::json(&json!({"field": field, "removed": removed}))
        } else if removed {
            output::line(format!("{user}: {field} removed"))
        } else {
            output::line(format!("{user} has no field {field:?}; nothing removed"))
        };
    }
    if args.history {
        let entries = convo
            .profile_history(user, args.field.as_deref(), args.limit)
            .await?;
        if ctx.json {
            return output::json(&json!({"data": entries}));
        }
        let mut table = Table::new(&["WHEN", "FIELD", "OP", "BY", "AFTER"]);
        for e in &entries {
            let by = match (&e.source.job_id, &e.source.conversation_id) {
                (Some(j), Some(c)) => format!("{} {j} ({c})", e.source.actor),
                (Some(j), None) => format!("{} {j}", e.source.actor),
                _ => e.source.actor.clone(),
            };
            table.row(vec![
                output::time(e.at),
                e.field.clone(),
                e.op.clone(),
                by,
                e.after
                    .as_ref()
                    .map(|c| output::clip(&c.joined("; "), 60))
                    .unwrap_or_else(|| "(removed)".into()),
            ]);
        }
        if table.is_empty() {
            return output::line(format!("{user}'s profile has no changes"));
        }
        return table.print();
    }
    if let Some(file) = &args.import {
        let text = if file == "-" {
            output::text_arg("-")?
        } else {
            std::fs::read_to_string(file).with_context(|| format!("could not read {file}"))?
        };
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| output::usage(format!("{file} is not a JSON profile ({e})")))?;
        let applied = convo.import_profile(user, &value).await?;
        return if ctx.json {
            output::json(&json!({"user": user, "fields_changed": applied}))
        } else {
            output::line(format!("{user}: {applied} field(s) imported"))
        };
    }
    let profile = convo.get_profile(user).await?;
    if args.export {
        return output::json(&profile.to_seed_json());
    }
    if ctx.json {
        return output::json(&profile);
    }
    print_profile(user, &profile)
}

fn print_profile(user: &str, profile: &Profile) -> Result<()> {
    if profile.fields.is_empty() {
        return output::line(format!("{user}'s profile is empty"));
    }
    let mut table = Table::new(&["FIELD", "UPDATED", "CONTENT", "OBSERVATIONS"]);
    for f in &profile.fields {
        table.row(vec![
            f.name.clone(),
            output::time(f.updated_at),
            output::clip(&f.content.joined("; "), 60),
            output::clip(&f.observations, 60),
        ]);
    }
    table.print()
}
