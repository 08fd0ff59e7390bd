//! `convo new`.

use anyhow::Result;
use convo_core::{Metadata, NewConversation, PersonaName, UserId};

use crate::context::Ctx;
use crate::output;

/// Create a conversation and print its id.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo new --user alice --persona Helper --name \"Trip to Paris\" --meta source=web"
)]
pub struct Args {
    /// The user it belongs to.
    #[arg(long)]
    user: String,
    /// The assistant persona it is held with.
    #[arg(long)]
    persona: String,
    /// Use this id instead of a generated `conv_…` one.
    #[arg(long)]
    id: Option<String>,
    /// A name (set by a person: the background namer keeps it).
    #[arg(long)]
    name: Option<String>,
    /// Metadata as KEY=VALUE; repeat for more.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    meta: Vec<String>,
}

/// Parses `KEY=VALUE` pairs.
pub fn parse_pairs(pairs: &[String], flag: &str) -> Result<Metadata> {
    let mut out = Metadata::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| output::usage(format!("{flag} {p:?} is not KEY=VALUE")))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Creates it.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, Some(&args.persona))?;
    let new = NewConversation {
        id: args.id,
        user: UserId::new(&args.user)?,
        persona: PersonaName::new(&args.persona)?,
        name: args.name,
        metadata: parse_pairs(&args.meta, "--meta")?,
        created_at: None,
    };
    let (conversation, _) = convo.create_conversation(new, vec![]).await?;
    if ctx.json {
        output::json(&super::show::conversation_json(&conversation))
    } else {
        output::line(&conversation.id)
    }
}
