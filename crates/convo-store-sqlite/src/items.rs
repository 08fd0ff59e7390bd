//! Item appends and listings.

use convo_core::{
    Content, Error, Item, ItemBody, ItemQuery, Order, Page, PreparedItem, Result, UserId,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::rows::{self, ITEM_COLS};
use crate::sql_err;

fn parts_json(c: &Content) -> Result<Option<String>> {
    match c {
        Content::Text(_) => Ok(None),
        Content::Parts(p) => serde_json::to_string(p).map(Some).map_err(Error::storage),
    }
}

/// The newest function call of the conversation that has no output yet.
fn newest_unanswered_call(conn: &Connection, pk: i64) -> Result<Option<String>> {
    conn.prepare_cached(
        "SELECT f.call_id FROM items f WHERE f.conversation_pk = ?1 AND f.kind = 'function_call' \
         AND NOT EXISTS (SELECT 1 FROM items o WHERE o.conversation_pk = ?1 \
             AND o.kind = 'function_call_output' AND o.call_id = f.call_id) \
         ORDER BY f.pk DESC LIMIT 1",
    )
    .map_err(sql_err)?
    .query_row([pk], |r| r.get(0))
    .optional()
    .map_err(sql_err)
}

fn call_exists(conn: &Connection, pk: i64, call_id: &str) -> Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM items WHERE conversation_pk = ?1 AND kind = 'function_call' AND call_id = ?2",
    )
    .map_err(sql_err)?
    .exists(params![pk, call_id])
    .map_err(sql_err)
}

/// The newest item, if it is an assistant message: the issuer of a new function call.
fn issuing_message(conn: &Connection, pk: i64) -> Result<Option<String>> {
    let last: Option<(String, String, Option<String>, Option<String>)> = conn
        .prepare_cached(
            "SELECT id, kind, role, message_id FROM items WHERE conversation_pk = ?1 \
             ORDER BY pk DESC LIMIT 1",
        )
        .map_err(sql_err)?
        .query_row([pk], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .map_err(sql_err)?;
    Ok(match last {
        Some((id, kind, Some(role), _)) if kind == "message" && role == "assistant" => Some(id),
        // Parallel calls: the next call shares the previous call's issuer.
        Some((_, kind, _, issuer)) if kind == "function_call" => issuer,
        _ => None,
    })
}

fn message_exists(conn: &Connection, pk: i64, id: &str) -> Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM items WHERE conversation_pk = ?1 AND id = ?2 AND kind = 'message'",
    )
    .map_err(sql_err)?
    .exists(params![pk, id])
    .map_err(sql_err)
}

/// Where an inserted item landed, and the link the store filled in for it.
pub struct Placed {
    position: i64,
    link: Option<Link>,
}

/// A link a caller left to the store.
enum Link {
    /// A function call's issuing message: the assistant message before it, if any.
    Issuer(Option<String>),
    /// An output's call: the newest call without an output.
    Call(String),
}

/// Inserts items in order into conversation `pk`. With `raw` (imports), links are kept
/// as given and not checked; otherwise outputs must answer a call of the conversation.
/// The items are only read: the writer thread neither copies nor frees what the
/// request allocated, and [`assemble`] turns them into the stored items afterwards.
pub fn insert_all(
    conn: &Connection,
    user: &str,
    pk: i64,
    items: &[PreparedItem],
    raw: bool,
) -> Result<Vec<Placed>> {
    place_all(conn, user, pk, items, raw, None)
}

/// The stored items: `items` as [`insert_all`] or [`append`] placed them, links filled in.
pub fn assemble(items: Vec<PreparedItem>, placed: Vec<Placed>, conversation_id: &str) -> Vec<Item> {
    items
        .into_iter()
        .zip(placed)
        .map(|(mut it, p)| {
            match (p.link, &mut it.body) {
                (Some(Link::Issuer(m)), ItemBody::FunctionCall { message_id, .. }) => {
                    *message_id = m
                }
                (Some(Link::Call(c)), ItemBody::FunctionCallOutput { call_id, .. }) => *call_id = c,
                _ => {}
            }
            Item {
                id: it.id,
                conversation_id: conversation_id.to_string(),
                position: p.position,
                created_at: it.created_at,
                tokens: it.tokens,
                body: it.body,
            }
        })
        .collect()
}

/// [`insert_all`], with the conversation's [`Recency`] when the caller already read it.
fn place_all(
    conn: &Connection,
    user: &str,
    pk: i64,
    items: &[PreparedItem],
    raw: bool,
    recency: Option<Recency>,
) -> Result<Vec<Placed>> {
    let mut out = Vec::with_capacity(items.len());
    let mut newest = i64::MIN;
    let tag = crate::search::tag(user);
    for it in items {
        let link = match &it.body {
            ItemBody::FunctionCall { message_id, .. } if !raw => match message_id {
                Some(m) => {
                    if !message_exists(conn, pk, m)? {
                        return Err(Error::ItemNotFound(m.clone()));
                    }
                    None
                }
                None => Some(Link::Issuer(issuing_message(conn, pk)?)),
            },
            ItemBody::FunctionCallOutput { call_id, .. } if !raw => {
                if call_id.is_empty() {
                    Some(Link::Call(newest_unanswered_call(conn, pk)?.ok_or_else(
                        || Error::UnknownCall("(no unanswered function call)".into()),
                    )?))
                } else if !call_exists(conn, pk, call_id)? {
                    return Err(Error::UnknownCall(call_id.clone()));
                } else {
                    None
                }
            }
            _ => None,
        };
        let (role, parts, call_id, name, arguments, message_id) = match &it.body {
            ItemBody::Message { role, content } => (
                Some(role.as_str()),
                parts_json(content)?,
                None,
                None,
                None,
                None,
            ),
            ItemBody::FunctionCall {
                call_id,
                name,
                arguments,
                message_id,
            } => (
                None,
                None,
                Some(call_id.as_str()),
                Some(name.as_str()),
                Some(arguments.as_str()),
                match &link {
                    Some(Link::Issuer(m)) => m.as_deref(),
                    _ => message_id.as_deref(),
                },
            ),
            ItemBody::FunctionCallOutput { call_id, output } => (
                None,
                parts_json(output)?,
                Some(match &link {
                    Some(Link::Call(c)) => c.as_str(),
                    _ => call_id.as_str(),
                }),
                None,
                None,
                None,
            ),
        };
        // Plain-text messages and outputs are stored once, in `text`.
        let text = match &it.body {
            ItemBody::Message {
                content: Content::Text(t),
                ..
            }
            | ItemBody::FunctionCallOutput {
                output: Content::Text(t),
                ..
            } => t.as_str(),
            ItemBody::FunctionCall { .. } => "",
            _ => it.text.as_str(),
        };
        conn.prepare_cached(
            "INSERT INTO items (id, conversation_pk, kind, role, text, parts, call_id, name, \
             arguments, message_id, tokens, created_at, search_tag) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )
        .map_err(sql_err)?
        .execute(params![
            it.id,
            pk,
            it.body.kind(),
            role,
            text,
            parts,
            call_id,
            name,
            arguments,
            message_id,
            it.tokens,
            it.created_at.unix_ms(),
            role.map(|_| tag.as_str()),
        ])
        .map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(f, Some(msg))
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                if msg.contains("items.call_id") || msg.contains("conversation_pk, items.call_id") {
                    Error::DuplicateCall(call_id.unwrap_or_default().to_string())
                } else {
                    Error::invalid("id", format!("item id {:?} already exists", it.id))
                }
            }
            _ => sql_err(e),
        })?;
        newest = newest.max(it.created_at.unix_ms());
        out.push(Placed {
            position: conn.last_insert_rowid(),
            link,
        });
    }
    if !raw && !out.is_empty() {
        touch(conn, pk, newest, recency)?;
    }
    Ok(out)
}

/// SQL for the most recently active conversation of `c`'s user (one index seek).
macro_rules! front_of_user {
    () => {
        "(SELECT f.pk FROM conversations f WHERE f.user_id = c.user_id \
         ORDER BY f.updated_at DESC, f.pk DESC LIMIT 1)"
    };
}

/// Moves the conversation's `updated_at` to `at` after an append, unless nothing a
/// reader sees would change: the conversation is already its user's most recently
/// active one and `updated_at` already shows this second. A turn's items (message,
/// calls, outputs, reply) usually arrive within a second to the user's front
/// conversation, and rewriting the row and its two listing-index entries for each of
/// them was the largest cost of an append beyond the item's own row.
///
/// A conversation that is not the front always moves: to `at`, or to `at + 1` ms when
/// another of the user's conversations already shows `at` or later. Millisecond
/// timestamps tie (a create and the next append can share one) and ties list by key,
/// so without that step the appended-to conversation could stay behind a newer one.
/// The step is at most one millisecond, so `updated_at` never runs ahead of the clock
/// however fast a user's conversations take turns (several touched within one
/// millisecond list by key among themselves), and a conversation stamped later than
/// the clock (an import, a skewed clock) keeps its place until the clock gets there.
/// `updated_at` never moves back.
fn touch(conn: &Connection, pk: i64, at: i64, known: Option<Recency>) -> Result<()> {
    let Recency { updated_at, front } = match known {
        Some(r) => r,
        None => conn
            .prepare_cached(concat!(
                "SELECT c.updated_at, ",
                front_of_user!(),
                " FROM conversations c WHERE c.pk = ?1"
            ))
            .map_err(sql_err)?
            .query_row([pk], |r| {
                Ok(Recency {
                    updated_at: r.get(0)?,
                    front: r.get(1)?,
                })
            })
            .map_err(sql_err)?,
    };
    if front != pk {
        conn.prepare_cached(
            "UPDATE conversations SET updated_at = max(updated_at, ?1 + coalesce( \
             (SELECT o.updated_at >= ?1 FROM conversations o WHERE o.user_id = conversations.user_id \
             ORDER BY o.updated_at DESC LIMIT 1), 0)) WHERE pk = ?2",
        )
        .map_err(sql_err)?
        .execute(params![at, pk])
        .map_err(sql_err)?;
    } else if at > updated_at && at / 1000 > updated_at / 1000 {
        conn.prepare_cached("UPDATE conversations SET updated_at = ?1 WHERE pk = ?2")
            .map_err(sql_err)?
            .execute(params![at, pk])
            .map_err(sql_err)?;
    }
    Ok(())
}

/// A conversation's `updated_at` and its user's most recently active conversation.
#[derive(Clone, Copy)]
struct Recency {
    updated_at: i64,
    front: i64,
}

/// The user's conversation `id` with its [`Recency`], in one statement (an append's
/// only read before its insert).
fn conversation_for_append(conn: &Connection, user: &UserId, id: &str) -> Result<(i64, Recency)> {
    conn.prepare_cached(concat!(
        "SELECT c.pk, c.updated_at, ",
        front_of_user!(),
        " FROM conversations c WHERE c.id = ?1 AND c.user_id = ?2"
    ))
    .map_err(sql_err)?
    .query_row((id, user.as_str()), |r| {
        Ok((
            r.get(0)?,
            Recency {
                updated_at: r.get(1)?,
                front: r.get(2)?,
            },
        ))
    })
    .optional()
    .map_err(sql_err)?
    .ok_or_else(|| Error::ConversationNotFound(id.to_string()))
}

/// Appends to the user's conversation (creating it first when `create` is given and it
/// does not exist).
pub fn append(
    conn: &Connection,
    user: &UserId,
    conversation_id: &str,
    new_items: &[PreparedItem],
    create: Option<&convo_core::PreparedConversation>,
) -> Result<Vec<Placed>> {
    let (pk, recency) = match conversation_for_append(conn, user, conversation_id) {
        Ok((pk, recency)) => (pk, Some(recency)),
        Err(Error::ConversationNotFound(_)) if create.is_some() => {
            let c = create.expect("checked");
            match crate::conversations::insert(conn, c) {
                Ok(pk) => (pk, None),
                // The id belongs to another user: not found, as for any other access.
                Err(Error::ConversationExists(id)) => return Err(Error::ConversationNotFound(id)),
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    place_all(conn, user.as_str(), pk, new_items, false, recency)
}

/// One page of items.
pub fn list(
    conn: &Connection,
    user: &UserId,
    conversation_id: &str,
    q: &ItemQuery,
) -> Result<Page<Item>> {
    let pk = rows::conversation_pk(conn, user, conversation_id)?;
    let after: Option<i64> = match &q.after {
        Some(a) => Some(
            conn.prepare_cached("SELECT pk FROM items WHERE id = ?1 AND conversation_pk = ?2")
                .map_err(sql_err)?
                .query_row(params![a, pk], |r| r.get(0))
                .optional()
                .map_err(sql_err)?
                .ok_or_else(|| Error::InvalidCursor(a.chars().take(80).collect()))?,
        ),
        None => None,
    };
    let (cmp, dir) = match q.order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    let bound = if after.is_some() {
        format!("AND i.pk {cmp} ?2")
    } else {
        "AND ?2 IS NULL".to_string()
    };
    let sql = format!(
        "SELECT {ITEM_COLS} FROM items i WHERE i.conversation_pk = ?1 {bound} \
         ORDER BY i.pk {dir} LIMIT ?3"
    );
    let limit = q.limit.clamp(1, 1000) as usize;
    let mut data: Vec<Item> = conn
        .prepare_cached(&sql)
        .map_err(sql_err)?
        .query_map(params![pk, after, limit as i64 + 1], |r| {
            rows::item(r, conversation_id)
        })
        .map_err(sql_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_err)?;
    let has_more = data.len() > limit;
    data.truncate(limit);
    Ok(Page {
        next_cursor: if has_more {
            data.last().map(|i| i.id.clone())
        } else {
            None
        },
        data,
        has_more,
    })
}

/// Every item, oldest first.
pub fn all(conn: &Connection, user: &UserId, conversation_id: &str) -> Result<Vec<Item>> {
    let pk = rows::conversation_pk(conn, user, conversation_id)?;
    conn.prepare_cached(&format!(
        "SELECT {ITEM_COLS} FROM items i WHERE i.conversation_pk = ?1 ORDER BY i.pk"
    ))
    .map_err(sql_err)?
    .query_map([pk], |r| rows::item(r, conversation_id))
    .map_err(sql_err)?
    .collect::<rusqlite::Result<_>>()
    .map_err(sql_err)
}

/// One item of the user's conversation.
pub fn get(conn: &Connection, user: &UserId, conversation_id: &str, item_id: &str) -> Result<Item> {
    let pk = rows::conversation_pk(conn, user, conversation_id)?;
    conn.prepare_cached(&format!(
        "SELECT {ITEM_COLS} FROM items i WHERE i.conversation_pk = ?1 AND i.id = ?2"
    ))
    .map_err(sql_err)?
    .query_row(params![pk, item_id], |r| rows::item(r, conversation_id))
    .optional()
    .map_err(sql_err)?
    .ok_or_else(|| Error::ItemNotFound(item_id.to_string()))
}

/// Deletes one item of the user's conversation.
pub fn delete(
    conn: &Connection,
    user: &UserId,
    conversation_id: &str,
    item_id: &str,
) -> Result<()> {
    let pk = rows::conversation_pk(conn, user, conversation_id)?;
    let n = conn
        .prepare_cached("DELETE FROM items WHERE conversation_pk = ?1 AND id = ?2")
        .map_err(sql_err)?
        .execute(params![pk, item_id])
        .map_err(sql_err)?;
    if n == 0 {
        return Err(Error::ItemNotFound(item_id.to_string()));
    }
    Ok(())
}
