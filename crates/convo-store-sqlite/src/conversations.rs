//! Conversation writes and listings.

use convo_core::{
    Conversation, ConversationPatch, ConversationQuery, DeleteReceipt, Error, JobKind, Page,
    PreparedConversation, PreparedItem, Result, SaveConversation, SaveOutcome, Timestamp, UserId,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::rows::{self, CONVERSATION_COLS};
use crate::{items, jobs, sql_err};

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Inserts a conversation row; an id in use is `ConversationExists`.
pub fn insert(conn: &Connection, c: &PreparedConversation) -> Result<i64> {
    let metadata = serde_json::to_string(&c.metadata).map_err(Error::storage)?;
    conn.prepare_cached(
        "INSERT INTO conversations (id, user_id, persona, name, name_by_person, created_at, \
         updated_at, metadata, chat_log) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(sql_err)?
    .execute(params![
        c.id,
        c.user.as_str(),
        c.persona.as_str(),
        c.name,
        c.name_set_by_person,
        c.created_at.unix_ms(),
        c.updated_at.unix_ms(),
        metadata,
        c.chat_log,
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::ConversationExists(c.id.clone())
        } else {
            sql_err(e)
        }
    })?;
    Ok(conn.last_insert_rowid())
}

/// Creates a conversation with its first items.
pub fn create(
    conn: &Connection,
    c: &PreparedConversation,
    new_items: &[PreparedItem],
) -> Result<(Conversation, Vec<items::Placed>)> {
    let pk = insert(conn, c)?;
    let placed = items::insert_all(conn, c.user.as_str(), pk, new_items, false)?;
    Ok((rows::get_conversation(conn, &c.user, &c.id)?, placed))
}

/// Imports a conversation exactly as given; `replace` deletes an existing one first.
/// Returns `None` when it exists and `replace` is false.
pub fn import(
    conn: &Connection,
    c: &PreparedConversation,
    new_items: &[PreparedItem],
    replace: bool,
) -> Result<Option<bool>> {
    let existing: Option<(i64, String)> = conn
        .prepare_cached("SELECT pk, user_id FROM conversations WHERE id = ?1")
        .map_err(sql_err)?
        .query_row([&c.id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql_err)?;
    if let Some((pk, owner)) = &existing {
        if !replace {
            return Ok(None);
        }
        // Replacing never reaches another user's conversation.
        if owner != c.user.as_str() {
            return Err(Error::ConversationExists(c.id.clone()));
        }
        conn.execute("DELETE FROM conversations WHERE pk = ?1", [*pk])
            .map_err(sql_err)?;
    }
    let pk = insert(conn, c)?;
    items::insert_all(conn, c.user.as_str(), pk, new_items, true)?;
    Ok(Some(existing.is_some()))
}

/// One page of a user's conversations, newest activity first.
pub fn list(conn: &Connection, user: &UserId, q: &ConversationQuery) -> Result<Page<Conversation>> {
    let cursor = match &q.cursor {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    // Four statement shapes, so each is an index range scan on the right index.
    let mut sql =
        format!("SELECT {CONVERSATION_COLS}, c.pk FROM conversations c WHERE c.user_id = ?1");
    if q.persona.is_some() {
        sql.push_str(" AND c.persona = ?2");
    } else {
        sql.push_str(" AND ?2 IS NULL");
    }
    if cursor.is_some() {
        sql.push_str(" AND (c.updated_at, c.pk) < (?3, ?4)");
    } else {
        sql.push_str(" AND ?3 IS NULL AND ?4 IS NULL");
    }
    sql.push_str(" ORDER BY c.updated_at DESC, c.pk DESC LIMIT ?5");
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let limit = q.limit.clamp(1, 1000) as i64;
    let mut rows = stmt
        .query(params![
            user.as_str(),
            q.persona.as_ref().map(|p| p.as_str()),
            cursor.map(|c| c.0),
            cursor.map(|c| c.1),
            limit + 1
        ])
        .map_err(sql_err)?;
    let mut data = Vec::new();
    let mut last_key = None;
    let mut has_more = false;
    while let Some(r) = rows.next().map_err(sql_err)? {
        if data.len() as i64 == limit {
            has_more = true;
            break;
        }
        let conv = rows::conversation(r).map_err(sql_err)?;
        last_key = Some((
            conv.updated_at.unix_ms(),
            r.get::<_, i64>(9).map_err(sql_err)?,
        ));
        data.push(conv);
    }
    Ok(Page {
        data,
        has_more,
        next_cursor: if has_more {
            last_key.map(|(u, p)| format!("{u}.{p}"))
        } else {
            None
        },
    })
}

fn decode_cursor(c: &str) -> Result<(i64, i64)> {
    let bad = || Error::InvalidCursor(c.chars().take(80).collect());
    let (a, b) = c.split_once('.').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// Renames or replaces metadata.
pub fn update(
    conn: &Connection,
    user: &UserId,
    id: &str,
    patch: ConversationPatch,
) -> Result<Conversation> {
    let pk = rows::conversation_pk(conn, user, id)?;
    let now = Timestamp::now().unix_ms();
    if let Some(name) = &patch.name {
        conn.prepare_cached(
            "UPDATE conversations SET name = ?1, name_by_person = 1, \
             updated_at = max(updated_at, ?2) WHERE pk = ?3",
        )
        .map_err(sql_err)?
        .execute(params![name, now, pk])
        .map_err(sql_err)?;
    }
    if let Some(m) = &patch.metadata {
        let json = serde_json::to_string(m).map_err(Error::storage)?;
        conn.prepare_cached(
            "UPDATE conversations SET metadata = ?1, updated_at = max(updated_at, ?2) WHERE pk = ?3",
        )
        .map_err(sql_err)?
        .execute(params![json, now, pk])
        .map_err(sql_err)?;
    }
    rows::get_conversation(conn, user, id)
}

/// Deletes a conversation; items, search entries and jobs go with it (cascades).
pub fn delete(conn: &Connection, user: &UserId, id: &str) -> Result<DeleteReceipt> {
    let pk = rows::conversation_pk(conn, user, id)?;
    let count = |sql: &str| -> Result<u64> {
        conn.prepare_cached(sql)
            .map_err(sql_err)?
            .query_row([pk], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sql_err)
    };
    let receipt = DeleteReceipt {
        items: count("SELECT count(*) FROM items WHERE conversation_pk = ?1")?,
        jobs: count(
            "SELECT count(*) FROM jobs WHERE conversation_pk = ?1 AND state IN ('pending', 'running')",
        )?,
    };
    conn.prepare_cached("DELETE FROM conversations WHERE pk = ?1")
        .map_err(sql_err)?
        .execute([pk])
        .map_err(sql_err)?;
    Ok(receipt)
}

/// The seed's save: upsert the conversation and its chat log, queue cognition.
pub fn save(conn: &Connection, s: &SaveConversation) -> Result<SaveOutcome> {
    let c = &s.conversation;
    let existing: Option<(i64, String, String, bool)> = conn
        .prepare_cached(
            "SELECT pk, user_id, persona, name_by_person FROM conversations WHERE id = ?1",
        )
        .map_err(sql_err)?
        .query_row([&c.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()
        .map_err(sql_err)?;
    let (pk, created, named_by_person) = match existing {
        None => (insert(conn, c)?, true, c.name_set_by_person),
        Some((_, owner, _, _)) if owner != c.user.as_str() => {
            return Err(Error::ConversationExists(c.id.clone()));
        }
        Some((_, _, persona, _)) if persona != c.persona.as_str() => {
            return Err(Error::invalid(
                "persona",
                format!("conversation {:?} belongs to persona {persona:?}", c.id),
            ));
        }
        Some((pk, _, _, by_person)) => {
            conn.prepare_cached(
                "UPDATE conversations SET chat_log = ?1, updated_at = max(updated_at, ?2) WHERE pk = ?3",
            )
            .map_err(sql_err)?
            .execute(params![c.chat_log, c.updated_at.unix_ms(), pk])
            .map_err(sql_err)?;
            if c.name_set_by_person {
                conn.prepare_cached(
                    "UPDATE conversations SET name = ?1, name_by_person = 1 WHERE pk = ?2",
                )
                .map_err(sql_err)?
                .execute(params![c.name, pk])
                .map_err(sql_err)?;
            }
            (pk, false, by_person || c.name_set_by_person)
        }
    };
    let mut queued = 0;
    for kind in &s.enqueue {
        if *kind == JobKind::Name && named_by_person {
            continue;
        }
        if jobs::insert_pending(conn, pk, &c.id, c.user.as_str(), *kind, s.max_attempts)? {
            queued += 1;
        }
    }
    Ok(SaveOutcome {
        conversation: rows::get_conversation(conn, &c.user, &c.id)?,
        created,
        jobs_queued: queued,
    })
}
