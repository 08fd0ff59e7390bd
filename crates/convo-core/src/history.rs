//! A conversation rendered as a prompt: OpenAI chat-completions messages or the
//! Anthropic Messages shape, optionally cut to a token budget.
//!
//! Items are grouped into *turns*: a message, or an assistant message with its
//! function calls and their outputs. A budget keeps whole turns only, so a tool call
//! is never separated from its output. Calls without an output and outputs without a
//! call are left out: both chat APIs reject them.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::{Content, Item, ItemBody, Role, tokens};

/// How to render a history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryOptions {
    /// Keep the first system message and the newest turns within this many tokens.
    pub max_tokens: Option<u32>,
}

/// A rendered history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Chat-completions messages, ready to send.
    pub messages: Vec<ChatMessage>,
    /// Estimated prompt tokens of `messages`.
    pub tokens: u32,
    /// True when the budget left older turns out.
    pub truncated: bool,
}

/// One chat-completions message. Typed rather than a `serde_json::Value` tree: a
/// history of a long conversation is on the hot read path, and a typed message moves
/// the stored strings instead of allocating a map per message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: Role,
    /// Text, content parts, or `null` (an assistant message with only tool calls).
    pub content: Option<ChatContent>,
    /// An assistant's refusal, when its content parts carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The function calls an assistant message made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// The content when it is plain text.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            Some(ChatContent::Text(t)) => Some(t),
            _ => None,
        }
    }
}

/// A chat-completions message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatContent {
    /// Plain text.
    Text(String),
    /// Content parts (`text`, `image_url`, `file`).
    Parts(Vec<Value>),
}

/// A function call in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id the tool message answers with.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: ToolKind,
    /// The function and its JSON arguments.
    pub function: FunctionCall,
}

/// The kind of a tool call (chat completions knows only functions here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolKind {
    /// A function call.
    Function,
}

/// The function a tool call invokes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// Its arguments, a JSON text as the model wrote it.
    pub arguments: String,
}

/// A history in the Anthropic Messages shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnthropicHistory {
    /// The system prompt (system and developer messages joined), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Alternating user/assistant messages with `tool_use`/`tool_result` blocks.
    pub messages: Vec<Value>,
}

#[derive(Debug)]
struct Turn {
    role: Role,
    content: Option<Content>,
    calls: Vec<(String, String, String)>,
    outputs: Vec<(String, Content)>,
    tokens: u32,
}

/// Groups items into turns, moving their contents (no copies: histories of long
/// conversations are on the read path).
fn turns(items: Vec<Item>) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::with_capacity(items.len());
    let mut by_message: HashMap<String, usize> = HashMap::new();
    let mut by_call: HashMap<String, usize> = HashMap::new();
    for item in items {
        match item.body {
            ItemBody::Message { role, content } => {
                if role == Role::Assistant {
                    by_message.insert(item.id, turns.len());
                }
                turns.push(Turn {
                    role,
                    content: Some(content),
                    calls: vec![],
                    outputs: vec![],
                    tokens: item.tokens + tokens::PER_MESSAGE,
                });
            }
            ItemBody::FunctionCall {
                call_id,
                name,
                arguments,
                message_id,
            } => {
                let target = message_id
                    .as_deref()
                    .and_then(|m| by_message.get(m).copied())
                    .or_else(|| {
                        let last = turns.len().checked_sub(1)?;
                        (turns[last].role == Role::Assistant).then_some(last)
                    });
                let idx = match target {
                    Some(i) => i,
                    None => {
                        turns.push(Turn {
                            role: Role::Assistant,
                            content: None,
                            calls: vec![],
                            outputs: vec![],
                            tokens: tokens::PER_MESSAGE,
                        });
                        turns.len() - 1
                    }
                };
                by_call.insert(call_id.clone(), idx);
                turns[idx].calls.push((call_id, name, arguments));
                turns[idx].tokens += item.tokens;
            }
            ItemBody::FunctionCallOutput { call_id, output } => {
                if let Some(&idx) = by_call.get(call_id.as_str()) {
                    turns[idx].outputs.push((call_id, output));
                    turns[idx].tokens += item.tokens + tokens::PER_MESSAGE;
                }
            }
        }
    }
    for t in &mut turns {
        let outputs = &t.outputs;
        t.calls
            .retain(|(c, _, _)| outputs.iter().any(|(answered, _)| answered == c));
    }
    turns.retain(|t| t.content.is_some() || !t.calls.is_empty());
    turns
}

fn is_system(role: Role) -> bool {
    matches!(role, Role::System | Role::Developer)
}

/// Chooses which turns fit: the first system turn, then the newest that fit.
fn within_budget(turns: &[Turn], budget: Option<u32>) -> (Vec<usize>, bool) {
    let all: Vec<usize> = (0..turns.len()).collect();
    let Some(budget) = budget else {
        return (all, false);
    };
    let mut used = 3; // every reply is primed with 3 tokens
    let mut keep = Vec::new();
    let pinned = turns.first().filter(|t| is_system(t.role)).map(|t| {
        used += t.tokens;
        0usize
    });
    let start = if pinned.is_some() { 1 } else { 0 };
    for i in (start..turns.len()).rev() {
        if used + turns[i].tokens > budget {
            break;
        }
        used += turns[i].tokens;
        keep.push(i);
    }
    keep.extend(pinned);
    keep.reverse();
    let truncated = keep.len() < turns.len();
    (keep, truncated)
}

fn chat_part(p: &Value) -> Value {
    match p.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()})
        }
        Some("input_image") => {
            let url = p
                .get("image_url")
                .cloned()
                .or_else(|| p.get("file_id").cloned())
                .unwrap_or_default();
            let mut img = json!({ "url": url });
            if let Some(d) = p.get("detail") {
                img["detail"] = d.clone();
            }
            json!({"type": "image_url", "image_url": img})
        }
        Some("input_file") => {
            let mut f = serde_json::Map::new();
            for k in ["file_id", "file_data", "filename"] {
                if let Some(v) = p.get(k) {
                    f.insert(k.into(), v.clone());
                }
            }
            json!({"type": "file", "file": f})
        }
        _ => json!({"type": "text", "text": Content::Parts(vec![p.clone()]).plain_text()}),
    }
}

fn chat_content(role: Role, content: Content) -> (ChatContent, Option<String>) {
    match content {
        Content::Text(t) => (ChatContent::Text(t), None),
        Content::Parts(parts) => {
            let refusal = parts
                .iter()
                .find_map(|p| p.get("refusal").and_then(Value::as_str))
                .map(str::to_string);
            let text_only = parts.iter().all(|p| {
                matches!(
                    p.get("type").and_then(Value::as_str),
                    Some("input_text" | "output_text" | "text" | "refusal")
                )
            });
            if role == Role::Assistant || text_only {
                let text: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                (ChatContent::Text(text.join("\n")), refusal)
            } else {
                (
                    ChatContent::Parts(parts.iter().map(chat_part).collect()),
                    refusal,
                )
            }
        }
    }
}

/// Renders items as chat-completions messages.
pub fn render_chat(items: &[Item], options: HistoryOptions) -> History {
    render_chat_owned(items.to_vec(), options)
}

/// [`render_chat`], consuming the items (no copies of their contents).
pub fn render_chat_owned(items: Vec<Item>, options: HistoryOptions) -> History {
    let turns = turns(items);
    let (keep, truncated) = within_budget(&turns, options.max_tokens);
    let mut messages = Vec::with_capacity(keep.len());
    let mut total = 3;
    let mut turns: Vec<Option<Turn>> = turns.into_iter().map(Some).collect();
    for i in keep {
        let Some(t) = turns[i].take() else { continue };
        total += t.tokens;
        let role = match t.role {
            Role::Tool => Role::User,
            r => r,
        };
        let (content, refusal) = match t.content {
            Some(c) if t.role == Role::Tool => (
                Some(ChatContent::Text(format!(
                    "Tool result: {}",
                    c.plain_text()
                ))),
                None,
            ),
            Some(c) => {
                let (content, refusal) = chat_content(t.role, c);
                (Some(content), refusal)
            }
            None => (None, None),
        };
        let tool_calls = t
            .calls
            .into_iter()
            .map(|(id, name, arguments)| ToolCall {
                id,
                kind: ToolKind::Function,
                function: FunctionCall { name, arguments },
            })
            .collect();
        messages.push(ChatMessage {
            role,
            content,
            refusal,
            tool_calls,
            tool_call_id: None,
        });
        for (call_id, out) in t.outputs {
            let text = match out {
                Content::Text(s) => s,
                parts @ Content::Parts(_) => parts.plain_text(),
            };
            messages.push(ChatMessage {
                role: Role::Tool,
                content: Some(ChatContent::Text(text)),
                refusal: None,
                tool_calls: vec![],
                tool_call_id: Some(call_id),
            });
        }
    }
    History {
        messages,
        tokens: total,
        truncated,
    }
}

/// Renders items in the Anthropic Messages shape.
pub fn render_anthropic(items: &[Item], options: HistoryOptions) -> AnthropicHistory {
    let turns = turns(items.to_vec());
    let (keep, _) = within_budget(&turns, options.max_tokens);
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<(String, Vec<Value>)> = Vec::new();
    let mut push = |role: &str, blocks: Vec<Value>| {
        if blocks.is_empty() {
            return;
        }
        match messages.last_mut() {
            Some((r, b)) if r == role => b.extend(blocks),
            _ => messages.push((role.to_string(), blocks)),
        }
    };
    for i in keep {
        let t = &turns[i];
        if is_system(t.role) {
            if let Some(c) = &t.content {
                system.push(c.plain_text());
            }
            continue;
        }
        let mut blocks = Vec::new();
        if let Some(c) = &t.content {
            let text = c.plain_text();
            if !text.is_empty() {
                blocks.push(json!({"type": "text", "text": text}));
            }
        }
        for (id, name, args) in &t.calls {
            let input = match serde_json::from_str::<Value>(args) {
                Ok(v @ Value::Object(_)) => v,
                _ => json!({ "arguments": args }),
            };
            blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        let role = if t.role == Role::Assistant {
            "assistant"
        } else {
            "user"
        };
        push(role, blocks);
        let results: Vec<Value> = t
            .outputs
            .iter()
            .map(|(id, out)| json!({"type": "tool_result", "tool_use_id": id, "content": out.plain_text()}))
            .collect();
        push("user", results);
    }
    AnthropicHistory {
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: messages
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect(),
    }
}

/// A readable transcript: one line per message, tool calls with their outputs.
pub fn transcript(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        match &item.body {
            ItemBody::Message { role, content } => {
                let who = match role {
                    Role::System => "System",
                    Role::Developer => "Developer",
                    Role::User => "User",
                    Role::Assistant => "Assistant",
                    Role::Tool => "Tool",
                };
                out.push_str(&format!("{who}: {}\n", content.plain_text()));
            }
            ItemBody::FunctionCall {
                name, arguments, ..
            } => out.push_str(&format!("Assistant called {name}({arguments})\n")),
            ItemBody::FunctionCallOutput { output, .. } => {
                out.push_str(&format!("Tool returned: {}\n", output.plain_text()))
            }
        }
    }
    out
}
