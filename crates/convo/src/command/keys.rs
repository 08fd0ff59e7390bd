//! `convo keys`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use crate::context::Ctx;
use crate::output::{self, Table};

/// Manage the server's API keys. A key acts as one user, or is an admin key that
/// acts for the user named in the `X-Convo-User` header. The secret is shown once.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  convo keys create --user alice --label \"alice's laptop\"\n  convo keys create --admin --label backend\n  convo keys list\n  convo keys revoke key_0190…"
)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Create a key and print its secret (once).
    Create {
        /// The user the key acts as.
        #[arg(long, required_unless_present = "admin", conflicts_with = "admin")]
        user: Option<String>,
        /// An admin key (acts for any user).
        #[arg(long)]
        admin: bool,
        /// A label to recognise it by.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key's id (`key_…`).
        id: String,
    },
}

/// Does what was asked.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    match args.action {
        Action::Create { user, admin, label } => {
            let (key, secret) = convo_server::keys::create_key(
                ctx.store.as_ref(),
                user.as_deref(),
                admin,
                &label,
                None,
            )
            .await?;
            if ctx.json {
                return output::json(&json!({
                    "id": key.id,
                    "user": key.user,
                    "admin": key.admin,
                    "label": key.label,
                    "created_at": key.created_at,
                    "secret": secret,
                }));
            }
            output::line(&secret)?;
            eprintln!(
                "created {} ({}); the secret above is shown only once",
                key.id,
                key.user
                    .as_deref()
                    .map_or("admin".to_string(), |u| format!("user {u}"))
            );
            Ok(())
        }
        Action::List => {
            let keys = ctx.store.list_api_keys().await?;
            if ctx.json {
                return output::json(&json!({"data": keys}));
            }
            if keys.is_empty() {
                return output::line("no API keys (the server runs in local mode)");
            }
            let mut table = Table::new(&["ID", "USER", "ADMIN", "CREATED", "REVOKED", "LABEL"]);
            for k in &keys {
                table.row(vec![
                    k.id.clone(),
                    k.user.clone().unwrap_or_else(|| "-".into()),
                    if k.admin { "yes" } else { "no" }.into(),
                    output::time(k.created_at),
                    k.revoked_at.map(output::time).unwrap_or_else(|| "-".into()),
                    k.label.clone(),
                ]);
            }
            table.print()
        }
        Action::Revoke { id } => {
            if !ctx.store.revoke_api_key(&id).await? {
                return Err(output::usage(format!(
                    "no API key with id {id:?}; `convo keys list` shows them"
                )));
            }
            if ctx.json {
                output::json(&json!({"id": id, "revoked": true}))
            } else {
                output::line(format!("revoked {id}"))
            }
        }
    }
}
