//! Whole-user operations: erasure, listing users, API keys.

use convo_core::{ApiKey, ErasureReceipt, Result, Timestamp, UserId};
use rusqlite::{Connection, OptionalExtension, params};

use crate::sql_err;

/// Removes every trace of the user.
pub fn erase(conn: &Connection, user: &UserId) -> Result<ErasureReceipt> {
    let u = user.as_str();
    let count = |sql: &str| -> Result<u64> {
        conn.prepare_cached(sql)
            .map_err(sql_err)?
            .query_row([u], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sql_err)
    };
    let receipt = ErasureReceipt {
        conversations: count("SELECT count(*) FROM conversations WHERE user_id = ?1")?,
        items: count(
            "SELECT count(*) FROM items i JOIN conversations c ON c.pk = i.conversation_pk \
             WHERE c.user_id = ?1",
        )?,
        profile_fields: count("SELECT count(*) FROM profile_fields WHERE user_id = ?1")?,
        audit_entries: count("SELECT count(*) FROM profile_audit WHERE user_id = ?1")?,
        jobs: count("SELECT count(*) FROM jobs WHERE user_id = ?1")?,
        api_keys: count("SELECT count(*) FROM api_keys WHERE user_id = ?1")?,
    };
    for sql in [
        "DELETE FROM conversations WHERE user_id = ?1",
        "DELETE FROM jobs WHERE user_id = ?1",
        "DELETE FROM profile_fields WHERE user_id = ?1",
        "DELETE FROM profile_audit WHERE user_id = ?1",
        "DELETE FROM api_keys WHERE user_id = ?1",
    ] {
        conn.prepare_cached(sql)
            .map_err(sql_err)?
            .execute([u])
            .map_err(sql_err)?;
    }
    Ok(receipt)
}

/// Every user with a conversation or a profile, sorted.
pub fn list(conn: &Connection) -> Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT user_id FROM conversations UNION SELECT user_id FROM profile_fields ORDER BY 1",
    )
    .map_err(sql_err)?
    .query_map([], |r| r.get(0))
    .map_err(sql_err)?
    .collect::<rusqlite::Result<_>>()
    .map_err(sql_err)
}

const KEY_COLS: &str = "id, hash, user_id, admin, label, created_at, expires_at, revoked_at";

fn key(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: r.get(0)?,
        hash: r.get(1)?,
        user: r.get(2)?,
        admin: r.get(3)?,
        label: r.get(4)?,
        created_at: Timestamp::from_unix_ms(r.get(5)?),
        expires_at: r.get::<_, Option<i64>>(6)?.map(Timestamp::from_unix_ms),
        revoked_at: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_unix_ms),
    })
}

/// Stores a key.
pub fn create_key(conn: &Connection, k: &ApiKey) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, hash, user_id, admin, label, created_at, expires_at, revoked_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(sql_err)?
    .execute(params![
        k.id,
        k.hash,
        k.user,
        k.admin,
        k.label,
        k.created_at.unix_ms(),
        k.expires_at.map(|t| t.unix_ms()),
        k.revoked_at.map(|t| t.unix_ms())
    ])
    .map_err(sql_err)?;
    Ok(())
}

/// The key with this hash.
pub fn find_key(conn: &Connection, hash: &str) -> Result<Option<ApiKey>> {
    conn.prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = ?1"))
        .map_err(sql_err)?
        .query_row([hash], key)
        .optional()
        .map_err(sql_err)
}

/// Every key, oldest first.
pub fn list_keys(conn: &Connection) -> Result<Vec<ApiKey>> {
    conn.prepare_cached(&format!(
        "SELECT {KEY_COLS} FROM api_keys ORDER BY created_at, id"
    ))
    .map_err(sql_err)?
    .query_map([], key)
    .map_err(sql_err)?
    .collect::<rusqlite::Result<_>>()
    .map_err(sql_err)
}

/// Revokes a key; false if no key has that id.
pub fn revoke_key(conn: &Connection, id: &str) -> Result<bool> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM api_keys WHERE id = ?1")
        .map_err(sql_err)?
        .exists([id])
        .map_err(sql_err)?;
    conn.prepare_cached("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL")
        .map_err(sql_err)?
        .execute(params![Timestamp::now().unix_ms(), id])
        .map_err(sql_err)?;
    Ok(exists)
}
