//! Conversations and their items.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::{Error, PersonaName, Result, Timestamp, UserId};

/// A conversation's metadata: string keys to string values.
pub type Metadata = BTreeMap<String, String>;

/// Who speaks in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// Instructions from the developer (OpenAI's newer name for system).
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool result written as a message (chat-completions style).
    Tool,
}

impl Role {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "system" => Role::System,
            "developer" => Role::Developer,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => return Err(Error::InvalidRole(other.chars().take(40).collect())),
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a message (or a function call output) says: plain text, or a list of typed
/// parts (`input_text`, `output_text`, `refusal`, `input_image`, `input_file`, ...)
/// kept exactly as the caller gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Typed parts, each a JSON object with a string `type`.
    Parts(Vec<Value>),
}

impl Content {
    /// The readable text of the content: the text itself, or the text of every
    /// text-like part (`text`, `refusal`) joined by newlines. Images and files
    /// contribute a short placeholder so a transcript shows they were there.
    pub fn plain_text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => {
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    if let Some(t) = p.get("text").and_then(Value::as_str) {
                        out.push(t.to_string());
                    } else if let Some(t) = p.get("refusal").and_then(Value::as_str) {
                        out.push(t.to_string());
                    } else if let Some(kind) = p.get("type").and_then(Value::as_str) {
                        out.push(format!("[{kind}]"));
                    }
                }
                out.join("\n")
            }
        }
    }

    /// Size in bytes as stored.
    pub fn byte_len(&self) -> usize {
        match self {
            Content::Text(t) => t.len(),
            Content::Parts(p) => p.iter().map(|v| v.to_string().len()).sum(),
        }
    }

    /// Checks the shape of parts: every part is an object with a string `type`.
    pub fn validate(&self, field: &'static str) -> Result<()> {
        if let Content::Parts(parts) = self {
            for (i, p) in parts.iter().enumerate() {
                if p.get("type").and_then(Value::as_str).is_none() {
                    return Err(Error::invalid(
                        field,
                        format!("part {i} must be an object with a string \"type\""),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl From<&str> for Content {
    fn from(s: &str) -> Self {
        Content::Text(s.to_string())
    }
}

impl From<String> for Content {
    fn from(s: String) -> Self {
        Content::Text(s)
    }
}

/// The kind-specific body of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemBody {
    /// A message.
    Message {
        /// Who speaks.
        role: Role,
        /// What is said.
        content: Content,
    },
    /// A function (tool) call the model made.
    FunctionCall {
        /// The call id the output will answer.
        call_id: String,
        /// The function's name.
        name: String,
        /// Arguments verbatim as the model produced them (usually JSON, maybe not).
        arguments: String,
        /// The assistant message that issued the call, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// What a function call returned.
    FunctionCallOutput {
        /// The call id this answers.
        call_id: String,
        /// The output, text or parts, verbatim.
        output: Content,
    },
}

impl ItemBody {
    /// `message`, `function_call` or `function_call_output`.
    pub fn kind(&self) -> &'static str {
        match self {
            ItemBody::Message { .. } => "message",
            ItemBody::FunctionCall { .. } => "function_call",
            ItemBody::FunctionCallOutput { .. } => "function_call_output",
        }
    }

    /// The id prefix for items of this kind.
    pub fn id_prefix(&self) -> &'static str {
        match self {
            ItemBody::Message { .. } => crate::ids::MESSAGE,
            ItemBody::FunctionCall { .. } => crate::ids::FUNCTION_CALL,
            ItemBody::FunctionCallOutput { .. } => crate::ids::FUNCTION_CALL_OUTPUT,
        }
    }

    /// The text to count tokens of and to search: message text, the call's name and
    /// arguments, or the output text.
    pub fn plain_text(&self) -> String {
        match self {
            ItemBody::Message { content, .. } => content.plain_text(),
            ItemBody::FunctionCall {
                name, arguments, ..
            } => format!("{name}({arguments})"),
            ItemBody::FunctionCallOutput { output, .. } => output.plain_text(),
        }
    }

    /// Bytes of caller-supplied content, for the size limit.
    pub fn byte_len(&self) -> usize {
        match self {
            ItemBody::Message { content, .. } => content.byte_len(),
            ItemBody::FunctionCall {
                call_id,
                name,
                arguments,
                ..
            } => call_id.len() + name.len() + arguments.len(),
            ItemBody::FunctionCallOutput { call_id, output } => call_id.len() + output.byte_len(),
        }
    }
}

/// One stored entry of a conversation's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The item's id (`msg_…`, `fc_…`, `fco_…`, or an imported id).
    pub id: String,
    /// The conversation it belongs to.
    pub conversation_id: String,
    /// Monotonic insertion position; orders the conversation's items.
    pub position: i64,
    /// When it was appended (or the time the caller supplied).
    pub created_at: Timestamp,
    /// Tokens of its text (o200k), counted once when appended.
    pub tokens: u32,
    /// What it is.
    #[serde(flatten)]
    pub body: ItemBody,
}

/// An item to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    /// A caller-supplied id (imports); `None` generates one.
    pub id: Option<String>,
    /// A caller-supplied time; `None` means now.
    pub created_at: Option<Timestamp>,
    /// What it is.
    pub body: ItemBody,
}

impl NewItem {
    /// A new item of this body, id and time chosen by convo.
    pub fn new(body: ItemBody) -> Self {
        NewItem {
            id: None,
            created_at: None,
            body,
        }
    }

    /// A message item.
    pub fn message(role: Role, content: impl Into<Content>) -> Self {
        Self::new(ItemBody::Message {
            role,
            content: content.into(),
        })
    }

    /// A function call item.
    pub fn function_call(
        call_id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self::new(ItemBody::FunctionCall {
            call_id: call_id.into(),
            name: name.into(),
            arguments: arguments.into(),
            message_id: None,
        })
    }

    /// A function call output item.
    pub fn function_call_output(call_id: impl Into<String>, output: impl Into<Content>) -> Self {
        Self::new(ItemBody::FunctionCallOutput {
            call_id: call_id.into(),
            output: output.into(),
        })
    }

    /// Sets the time.
    pub fn at(mut self, t: Timestamp) -> Self {
        self.created_at = Some(t);
        self
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// A new item after validation, with its id, time and token count decided: what a
/// [`Store`](crate::Store) receives.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedItem {
    /// The item's id.
    pub id: String,
    /// When it was appended.
    pub created_at: Timestamp,
    /// Tokens of its text.
    pub tokens: u32,
    /// Its plain text (search index, transcripts).
    pub text: String,
    /// What it is.
    pub body: ItemBody,
}

/// A conversation (without its items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// `conv_…` or an imported id.
    pub id: String,
    /// The user it belongs to.
    pub user: UserId,
    /// The persona it is held with.
    pub persona: PersonaName,
    /// Its title; empty until named.
    pub name: String,
    /// True when a person set the name (rename, or a name given at save time):
    /// background naming never overwrites it.
    pub name_set_by_person: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed (an item appended, a save, a rename, metadata); exact to the
    /// second. Listing order by it is exact: an append to a conversation that is not
    /// its user's most recently active one always moves it to the front.
    pub updated_at: Timestamp,
    /// Caller metadata.
    pub metadata: Metadata,
    /// The chat log saved by a legacy-style save, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_log: Option<String>,
}

/// A conversation to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversation {
    /// A caller-supplied id (imports keep theirs); `None` generates `conv_…`.
    pub id: Option<String>,
    /// Owner.
    pub user: UserId,
    /// Persona.
    pub persona: PersonaName,
    /// A name given by a person, if any.
    pub name: Option<String>,
    /// Metadata.
    pub metadata: Metadata,
    /// Creation time; `None` means now.
    pub created_at: Option<Timestamp>,
}

/// The conversation record a store inserts, after validation: the same fields as a
/// stored [`Conversation`], so imports pass exported records through unchanged.
pub type PreparedConversation = Conversation;

/// Changes to a conversation's own fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationPatch {
    /// A new name, set by a person.
    pub name: Option<String>,
    /// New metadata, replacing the old map entirely.
    pub metadata: Option<Metadata>,
}
