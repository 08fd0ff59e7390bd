//! `convo history`.

use anyhow::Result;
use convo_core::HistoryOptions;
use serde_json::Value;

use crate::context::Ctx;
use crate::output;

/// Prompt shapes.
#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
enum Format {
    /// OpenAI chat-completions messages.
    #[default]
    Chat,
    /// Anthropic Messages (`system` apart, `tool_use`/`tool_result` blocks).
    Anthropic,
}

/// Print a conversation as a prompt history: chat-completions JSON with `--json`, a
/// readable transcript otherwise.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  convo history --user alice conv_0190… --json --max-tokens 4000 | jq .messages"
)]
pub struct Args {
    /// The user the conversation belongs to.
    #[arg(long)]
    user: String,
    /// The conversation.
    conversation: String,
    /// Keep the first system message and the newest turns within this many tokens.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// The prompt shape.
    #[arg(long, value_enum, default_value_t = Format::Chat)]
    format: Format,
}

/// Prints it.
pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let convo = ctx.manager(&args.user, None)?;
    let options = HistoryOptions {
        max_tokens: args.max_tokens,
    };
    let (messages, header) = match args.format {
        Format::Chat => {
            let h = convo
                .get_history_with(&args.user, &args.conversation, options)
                .await?;
            if ctx.json {
                return output::json(&h);
            }
            let header = format!(
                "{} message(s), ~{} tokens{}",
                h.messages.len(),
                h.tokens,
                if h.truncated {
                    ", older turns left out"
                } else {
                    ""
                }
            );
            // The readable form walks JSON shapes shared with the Anthropic format.
            let messages = h
                .messages
                .iter()
                .map(serde_json::to_value)
                .collect::<serde_json::Result<Vec<Value>>>()?;
            (messages, header)
        }
        Format::Anthropic => {
            let h = convo
                .get_history_anthropic(&args.user, &args.conversation, options)
                .await?;
            if ctx.json {
                return output::json(&h);
            }
            let mut messages = Vec::new();
            if let Some(system) = &h.system {
                messages.push(serde_json::json!({"role": "system", "content": system}));
            }
            let n = h.messages.len();
            messages.extend(h.messages);
            (messages, format!("{n} message(s)"))
        }
    };
    output::line(format!("# {header}"))?;
    for m in &messages {
        output::line(render(m))?;
    }
    Ok(())
}

/// One prompt message as readable lines.
fn render(m: &Value) -> String {
    let role = m["role"].as_str().unwrap_or("?");
    let mut out = format!("{role}: {}", content_text(&m["content"]));
    if let Some(calls) = m["tool_calls"].as_array() {
        for c in calls {
            out.push_str(&format!(
                "\n  -> {}({}) [{}]",
                c["function"]["name"].as_str().unwrap_or("?"),
                c["function"]["arguments"].as_str().unwrap_or(""),
                c["id"].as_str().unwrap_or("")
            ));
        }
    }
    if let Some(id) = m["tool_call_id"].as_str() {
        out.push_str(&format!(" [{id}]"));
    }
    out
}

fn content_text(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p["type"].as_str() {
                Some("text") | Some("input_text") | Some("output_text") => {
                    p["text"].as_str().unwrap_or("").to_string()
                }
                Some("tool_use") => format!(
                    "-> {}({}) [{}]",
                    p["name"].as_str().unwrap_or("?"),
                    p["input"],
                    p["id"].as_str().unwrap_or("")
                ),
                Some("tool_result") => format!(
                    "<- {} [{}]",
                    content_text(&p["content"]),
                    p["tool_use_id"].as_str().unwrap_or("")
                ),
                Some(other) => format!("[{other}]"),
                None => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}
