//! Profile fields and their audit trail.

use convo_core::profile::{self, FieldChange};
use convo_core::{
    AuditEntry, ChangeSource, Error, FieldContent, Profile, ProfileField, ProfileOp, Result,
    Timestamp, UserId,
};
use rusqlite::{Connection, params};
use std::collections::BTreeMap;

use crate::sql_err;

fn parse_content(s: &str) -> rusqlite::Result<FieldContent> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn to_json(c: &FieldContent) -> Result<String> {
    serde_json::to_string(c).map_err(Error::storage)
}

/// The user's profile, fields sorted by name.
pub fn get(conn: &Connection, user: &UserId) -> Result<Profile> {
    let fields = conn
        .prepare_cached(
            "SELECT name, content, observations, updated_at FROM profile_fields \
             WHERE user_id = ?1 ORDER BY name",
        )
        .map_err(sql_err)?
        .query_map([user.as_str()], |r| {
            Ok(ProfileField {
                name: r.get(0)?,
                content: parse_content(&r.get::<_, String>(1)?)?,
                observations: r.get(2)?,
                updated_at: Timestamp::from_unix_ms(r.get(3)?),
            })
        })
        .map_err(sql_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_err)?;
    Ok(Profile { fields })
}

/// Applies operations (already validated for shape) with audit entries.
pub fn apply(
    conn: &Connection,
    user: &UserId,
    ops: Vec<ProfileOp>,
    source: &ChangeSource,
) -> Result<Vec<AuditEntry>> {
    let mut fields: BTreeMap<String, (FieldContent, String)> = get(conn, user)?
        .fields
        .into_iter()
        .map(|f| (f.name, (f.content, f.observations)))
        .collect();
    let changes = profile::apply_ops(&mut fields, &ops)?;
    let now = Timestamp::now();
    let mut out = Vec::with_capacity(changes.len());
    for FieldChange {
        field,
        op,
        before,
        after,
        observations,
    } in changes
    {
        match &after {
            Some(content) => {
                let obs = fields.get(&field).map(|(_, o)| o.as_str()).unwrap_or("");
                conn.prepare_cached(
                    "INSERT INTO profile_fields (user_id, name, content, observations, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, name) DO UPDATE SET \
                     content = excluded.content, observations = excluded.observations, \
                     updated_at = excluded.updated_at",
                )
                .map_err(sql_err)?
                .execute(params![
                    user.as_str(),
                    field,
                    to_json(content)?,
                    obs,
                    now.unix_ms()
                ])
                .map_err(sql_err)?;
            }
            None => {
                conn.prepare_cached("DELETE FROM profile_fields WHERE user_id = ?1 AND name = ?2")
                    .map_err(sql_err)?
                    .execute(params![user.as_str(), field])
                    .map_err(sql_err)?;
            }
        }
        let before_json = before.as_ref().map(to_json).transpose()?;
        let after_json = after.as_ref().map(to_json).transpose()?;
        conn.prepare_cached(
            "INSERT INTO profile_audit (user_id, field, op, before, after, observations, actor, \
             job_id, conversation_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(sql_err)?
        .execute(params![
            user.as_str(),
            field,
            op,
            before_json,
            after_json,
            observations,
            source.actor,
            source.job_id,
            source.conversation_id,
            now.unix_ms()
        ])
        .map_err(sql_err)?;
        out.push(AuditEntry {
            id: conn.last_insert_rowid(),
            user: user.as_str().to_string(),
            field,
            op: op.to_string(),
            before,
            after,
            observations,
            source: source.clone(),
            at: now,
        });
    }
    Ok(out)
}

/// The audit trail, newest first.
pub fn history(
    conn: &Connection,
    user: &UserId,
    field: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    conn.prepare_cached(
        "SELECT pk, field, op, before, after, observations, actor, job_id, conversation_id, at \
         FROM profile_audit WHERE user_id = ?1 AND (?2 IS NULL OR field = ?2) \
         ORDER BY pk DESC LIMIT ?3",
    )
    .map_err(sql_err)?
    .query_map(params![user.as_str(), field, limit.clamp(1, 10_000)], |r| {
        let before: Option<String> = r.get(3)?;
        let after: Option<String> = r.get(4)?;
        Ok(AuditEntry {
            id: r.get(0)?,
            user: user.as_str().to_string(),
            field: r.get(1)?,
            op: r.get(2)?,
            before: before.as_deref().map(parse_content).transpose()?,
            after: after.as_deref().map(parse_content).transpose()?,
            observations: r.get(5)?,
            source: ChangeSource {
                actor: r.get(6)?,
                job_id: r.get(7)?,
                conversation_id: r.get(8)?,
            },
            at: Timestamp::from_unix_ms(r.get(9)?),
        })
    })
    .map_err(sql_err)?
    .collect::<rusqlite::Result<_>>()
    .map_err(sql_err)
}
