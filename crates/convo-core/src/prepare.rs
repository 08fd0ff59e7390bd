//! Validation of caller input into the records a store writes.

use crate::{
    Content, Error, ItemBody, NewConversation, NewItem, PreparedConversation, PreparedItem, Result,
    Role, Timestamp, ids, tokens,
};

/// Limits on what callers may store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest content of one item, in bytes (default 1 MiB).
    pub max_content_bytes: usize,
    /// Most items in one append (default 1,000).
    pub max_batch_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_content_bytes: 1 << 20,
            max_batch_items: 1000,
        }
    }
}

/// Longest name of a conversation a person may set, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest function name, in characters.
pub const MAX_FUNCTION_NAME: usize = 256;

/// Validates a conversation to create.
pub fn conversation(new: NewConversation, now: Timestamp) -> Result<PreparedConversation> {
    let id = match new.id {
        Some(id) => {
            ids::validate("conversation", &id)?;
            id
        }
        None => ids::new_id(ids::CONVERSATION),
    };
    let name = match new.name {
        Some(n) => Some(name(&n)?),
        None => None,
    };
    metadata(&new.metadata)?;
    let created = new.created_at.unwrap_or(now);
    Ok(PreparedConversation {
        id,
        user: new.user,
        persona: new.persona,
        name_set_by_person: name.is_some(),
        name: name.unwrap_or_default(),
        created_at: created,
        updated_at: created.max(now),
        metadata: new.metadata,
        chat_log: None,
    })
}

/// Validates a name a person gives: trimmed, single line, at most 256 characters.
pub fn name(n: &str) -> Result<String> {
    let n = n.trim();
    if n.chars().any(char::is_control) {
        return Err(Error::invalid(
            "name",
            "must be one line without control characters",
        ));
    }
    if n.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(n.to_string())
}

/// Validates metadata: at most 16 pairs, keys up to 64 characters, values up to 512.
pub fn metadata(m: &crate::Metadata) -> Result<()> {
    if m.len() > 16 {
        return Err(Error::invalid(
            "metadata",
            format!("has {} pairs, at most 16 are allowed", m.len()),
        ));
    }
    for (k, v) in m {
        if k.chars().count() > 64 {
            return Err(Error::invalid(
                "metadata",
                format!(
                    "key {:?}… is longer than 64 characters",
                    k.chars().take(20).collect::<String>()
                ),
            ));
        }
        if v.chars().count() > 512 {
            return Err(Error::invalid(
                "metadata",
                format!("the value of {k:?} is longer than 512 characters"),
            ));
        }
    }
    Ok(())
}

/// Validates an item to append and decides its id, time and token count.
pub fn item(new: NewItem, limits: &Limits, now: Timestamp) -> Result<PreparedItem> {
    let size = new.body.byte_len();
    if size > limits.max_content_bytes {
        return Err(Error::TooLarge {
            field: "content",
            size,
            limit: limits.max_content_bytes,
        });
    }
    match &new.body {
        ItemBody::Message { content, .. } => content.validate("content")?,
        ItemBody::FunctionCall {
            call_id,
            name,
            message_id,
            ..
        } => {
            check_call_id(call_id)?;
            let n = name.chars().count();
            if n == 0 || n > MAX_FUNCTION_NAME || name.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "name",
                    "a function name must be 1-256 characters without control characters",
                ));
            }
            if let Some(m) = message_id {
                ids::validate("message", m)?;
            }
        }
        ItemBody::FunctionCallOutput { call_id, output } => {
            // An empty call id means "the newest unanswered call" (the seed's add_response).
            if !call_id.is_empty() {
                check_call_id(call_id)?;
            }
            output.validate("output")?;
        }
    }
    let id = match new.id {
        Some(id) => {
            ids::validate("item", &id)?;
            id
        }
        None => ids::new_id(new.body.id_prefix()),
    };
    let text = new.body.plain_text();
    Ok(PreparedItem {
        id,
        created_at: new.created_at.unwrap_or(now),
        tokens: tokens::count(&text),
        text,
        body: new.body,
    })
}

fn check_call_id(call_id: &str) -> Result<()> {
    if call_id.is_empty() || call_id.len() > 256 || call_id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "call_id",
            "a call id must be 1-256 bytes without control characters",
        ));
    }
    Ok(())
}

/// Parses a role name.
pub fn role(s: &str) -> Result<Role> {
    s.parse()
}

/// Content from text.
pub fn text(s: impl Into<String>) -> Content {
    Content::Text(s.into())
}
