//! Mapping rows to domain types. SQL types stay in this crate.

use convo_core::{
    Content, Conversation, Error, Item, ItemBody, Job, PersonaName, Result, Timestamp, UserId,
};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::sql_err;

/// Columns of a conversation row, in the order [`conversation`] reads them.
pub const CONVERSATION_COLS: &str = "c.id, c.user_id, c.persona, c.name, c.name_by_person, \
    c.created_at, c.updated_at, c.metadata, c.chat_log";

fn bad_row(what: &str, e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("corrupt {what}: {e}").into(),
    )
}

/// Reads a conversation row.
pub fn conversation(r: &Row<'_>) -> rusqlite::Result<Conversation> {
    let metadata: String = r.get(7)?;
    Ok(Conversation {
        id: r.get(0)?,
        user: UserId::new(r.get::<_, String>(1)?).map_err(|e| bad_row("user id", e))?,
        persona: PersonaName::new(r.get::<_, String>(2)?).map_err(|e| bad_row("persona", e))?,
        name: r.get(3)?,
        name_set_by_person: r.get(4)?,
        created_at: Timestamp::from_unix_ms(r.get(5)?),
        updated_at: Timestamp::from_unix_ms(r.get(6)?),
        metadata: serde_json::from_str(&metadata).map_err(|e| bad_row("metadata", e))?,
        chat_log: r.get(8)?,
    })
}

/// Columns of an item row, in the order [`item`] reads them.
pub const ITEM_COLS: &str = "i.id, i.pk, i.created_at, i.tokens, i.kind, i.role, i.text, \
    i.parts, i.call_id, i.name, i.arguments, i.message_id";

fn content(text: String, parts: Option<String>) -> rusqlite::Result<Content> {
    match parts {
        Some(p) => Ok(Content::Parts(
            serde_json::from_str(&p).map_err(|e| bad_row("content parts", e))?,
        )),
        None => Ok(Content::Text(text)),
    }
}

/// Reads an item row of the conversation `conversation_id` (the caller knows it, so
/// reads need no join).
pub fn item(r: &Row<'_>, conversation_id: &str) -> rusqlite::Result<Item> {
    let text: String = r.get(6)?;
    let parts: Option<String> = r.get(7)?;
    let body = match r.get_ref(4)?.as_str()? {
        "message" => ItemBody::Message {
            role: r
                .get_ref(5)?
                .as_str()?
                .parse()
                .map_err(|e: Error| bad_row("role", e))?,
            content: content(text, parts)?,
        },
        "function_call" => ItemBody::FunctionCall {
            call_id: r.get(8)?,
            name: r.get(9)?,
            arguments: r.get(10)?,
            message_id: r.get(11)?,
        },
        _ => ItemBody::FunctionCallOutput {
            call_id: r.get(8)?,
            output: content(text, parts)?,
        },
    };
    Ok(Item {
        id: r.get(0)?,
        conversation_id: conversation_id.to_string(),
        position: r.get(1)?,
        created_at: Timestamp::from_unix_ms(r.get(2)?),
        tokens: r.get(3)?,
        body,
    })
}

/// Columns of a job row, in the order [`job`] reads them.
pub const JOB_COLS: &str = "id, kind, user_id, conversation_id, state, attempts, max_attempts, \
    run_after, last_error, last_reply, created_at, updated_at, lease_owner";

/// Reads a job row.
pub fn job(r: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        kind: r
            .get::<_, String>(1)?
            .parse()
            .map_err(|e: Error| bad_row("job kind", e))?,
        user: r.get(2)?,
        conversation_id: r.get(3)?,
        state: r
            .get::<_, String>(4)?
            .parse()
            .map_err(|e: Error| bad_row("job state", e))?,
        attempts: r.get(5)?,
        max_attempts: r.get(6)?,
        run_after: Timestamp::from_unix_ms(r.get(7)?),
        last_error: r.get(8)?,
        last_reply: r.get(9)?,
        created_at: Timestamp::from_unix_ms(r.get(10)?),
        updated_at: Timestamp::from_unix_ms(r.get(11)?),
        lease_owner: r.get(12)?,
    })
}

/// The row key of the user's conversation, or *not found* (also for another user's).
pub fn conversation_pk(conn: &Connection, user: &UserId, id: &str) -> Result<i64> {
    conn.prepare_cached("SELECT pk FROM conversations WHERE id = ?1 AND user_id = ?2")
        .map_err(sql_err)?
        .query_row((id, user.as_str()), |r| r.get(0))
        .optional()
        .map_err(sql_err)?
        .ok_or_else(|| Error::ConversationNotFound(id.to_string()))
}

/// The user's conversation.
pub fn get_conversation(conn: &Connection, user: &UserId, id: &str) -> Result<Conversation> {
    conn.prepare_cached(&format!(
        "SELECT {CONVERSATION_COLS} FROM conversations c WHERE c.id = ?1 AND c.user_id = ?2"
    ))
    .map_err(sql_err)?
    .query_row((id, user.as_str()), conversation)
    .optional()
    .map_err(sql_err)?
    .ok_or_else(|| Error::ConversationNotFound(id.to_string()))
}
