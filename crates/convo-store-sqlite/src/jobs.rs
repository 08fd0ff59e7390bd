//! The durable job queue: leases, attempts, backoff, and effects written with the
//! job's completion in one transaction.

use convo_core::{
    ChangeSource, Error, Job, JobCounts, JobKind, JobOutcome, JobQuery, Result, Timestamp, UserId,
    ids,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::time::Duration;

use crate::rows::{self, JOB_COLS};
use crate::{profiles, sql_err};

/// Queues a pending job unless one of that kind is already pending for the
/// conversation; returns whether one was queued.
pub fn insert_pending(
    conn: &Connection,
    conversation_pk: i64,
    conversation_id: &str,
    user: &str,
    kind: JobKind,
    max_attempts: u32,
) -> Result<bool> {
    let now = Timestamp::now().unix_ms();
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO jobs (id, kind, user_id, conversation_pk, conversation_id, \
             state, attempts, max_attempts, run_after, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, ?7, ?7)",
        )
        .map_err(sql_err)?
        .execute(params![
            ids::new_id(ids::JOB),
            kind.as_str(),
            user,
            conversation_pk,
            conversation_id,
            max_attempts.max(1),
            now
        ])
        .map_err(sql_err)?;
    Ok(n > 0)
}

/// Queues a job on request; a `Name` request releases a name set by a person.
pub fn enqueue(
    conn: &Connection,
    user: &UserId,
    conversation_id: &str,
    kind: JobKind,
    max_attempts: u32,
) -> Result<Job> {
    let pk = rows::conversation_pk(conn, user, conversation_id)?;
    if kind == JobKind::Name {
        conn.execute(
            "UPDATE conversations SET name_by_person = 0 WHERE pk = ?1",
            [pk],
        )
        .map_err(sql_err)?;
    }
    insert_pending(conn, pk, conversation_id, user.as_str(), kind, max_attempts)?;
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLS} FROM jobs WHERE conversation_pk = ?1 AND kind = ?2 AND state = 'pending'"
    ))
    .map_err(sql_err)?
    .query_row(params![pk, kind.as_str()], rows::job)
    .map_err(sql_err)
}

/// Leases the next runnable job.
pub fn claim(
    conn: &Connection,
    worker: &str,
    lease: Duration,
    now: Timestamp,
) -> Result<Option<Job>> {
    let now_ms = now.unix_ms();
    // A job whose worker died with its last attempt is failed, not run again.
    conn.prepare_cached(
        "UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_until = NULL, updated_at = ?1, \
         last_error = 'the worker stopped during the last attempt (lease expired)' \
         WHERE state = 'running' AND lease_until < ?1 AND attempts >= max_attempts",
    )
    .map_err(sql_err)?
    .execute([now_ms])
    .map_err(sql_err)?;
    let pk: Option<i64> = conn
        .prepare_cached(
            "SELECT j.pk FROM jobs j \
             WHERE ((j.state = 'pending' AND j.run_after <= ?1) \
                 OR (j.state = 'running' AND j.lease_until < ?1)) \
               AND (j.kind <> 'profile' OR NOT EXISTS ( \
                   SELECT 1 FROM jobs k WHERE k.user_id = j.user_id AND k.kind = 'profile' \
                   AND k.pk < j.pk AND k.state IN ('pending', 'running'))) \
             ORDER BY j.pk LIMIT 1",
        )
        .map_err(sql_err)?
        .query_row([now_ms], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    let Some(pk) = pk else { return Ok(None) };
    let until = now_ms + lease.as_millis() as i64;
    conn.prepare_cached(
        "UPDATE jobs SET state = 'running', lease_owner = ?1, lease_until = ?2, \
         attempts = attempts + 1, updated_at = ?3 WHERE pk = ?4",
    )
    .map_err(sql_err)?
    .execute(params![worker, until, now_ms, pk])
    .map_err(sql_err)?;
    conn.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE pk = ?1"))
        .map_err(sql_err)?
        .query_row([pk], rows::job)
        .optional()
        .map_err(sql_err)
}

fn has_pending_sibling(conn: &Connection, pk: i64) -> Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM jobs s, jobs j WHERE j.pk = ?1 AND s.conversation_pk = j.conversation_pk \
         AND s.kind = j.kind AND s.state = 'pending' AND s.pk <> j.pk",
    )
    .map_err(sql_err)?
    .exists([pk])
    .map_err(sql_err)
}

/// What `finish` needs of a job row.
struct Leased {
    pk: i64,
    state: String,
    owner: Option<String>,
    attempts: u32,
    max_attempts: u32,
    kind: String,
    user: String,
    conv_pk: i64,
    conv_id: String,
}

/// Ends an attempt; writes effects only while `worker` holds the lease.
pub fn finish(conn: &Connection, job_id: &str, worker: &str, outcome: JobOutcome) -> Result<bool> {
    let row: Option<Leased> = conn
        .prepare_cached(
            "SELECT pk, state, lease_owner, attempts, max_attempts, kind, user_id, \
             conversation_pk, conversation_id FROM jobs WHERE id = ?1",
        )
        .map_err(sql_err)?
        .query_row([job_id], |r| {
            Ok(Leased {
                pk: r.get(0)?,
                state: r.get(1)?,
                owner: r.get(2)?,
                attempts: r.get(3)?,
                max_attempts: r.get(4)?,
                kind: r.get(5)?,
                user: r.get(6)?,
                conv_pk: r.get(7)?,
                conv_id: r.get(8)?,
            })
        })
        .optional()
        .map_err(sql_err)?;
    let Some(Leased {
        pk,
        state,
        owner,
        attempts,
        max_attempts,
        kind,
        user,
        conv_pk,
        conv_id,
    }) = row
    else {
        return Ok(false);
    };
    if state != "running" || owner.as_deref() != Some(worker) {
        return Ok(false);
    }
    let now = Timestamp::now().unix_ms();
    let end = |state: &str, error: Option<&str>, reply: Option<&str>, run_after: Option<i64>| {
        conn.prepare_cached(
            "UPDATE jobs SET state = ?1, last_error = ?2, last_reply = coalesce(?3, last_reply), \
             run_after = coalesce(?4, run_after), lease_owner = NULL, lease_until = NULL, \
             updated_at = ?5 WHERE pk = ?6",
        )
        .map_err(sql_err)?
        .execute(params![state, error, reply, run_after, now, pk])
        .map_err(sql_err)
    };
    match outcome {
        JobOutcome::Done {
            name,
            profile_ops,
            note,
        } => {
            let mut note = note;
            if let Some(name) = name.filter(|n| !n.is_empty()) {
                conn.prepare_cached(
                    "UPDATE conversations SET name = ?1 WHERE pk = ?2 AND name_by_person = 0",
                )
                .map_err(sql_err)?
                .execute(params![name, conv_pk])
                .map_err(sql_err)?;
            }
            if !profile_ops.is_empty() && kind == JobKind::Profile.as_str() {
                let source = ChangeSource {
                    actor: "job".into(),
                    job_id: Some(job_id.to_string()),
                    conversation_id: Some(conv_id.clone()),
                };
                let user = UserId::new(user)
                    .map_err(|e| Error::storage(std::io::Error::other(e.to_string())))?;
                conn.execute_batch("SAVEPOINT profile_ops")
                    .map_err(sql_err)?;
                match profiles::apply(conn, &user, profile_ops, &source) {
                    Ok(_) => conn.execute_batch("RELEASE profile_ops").map_err(sql_err)?,
                    Err(e) if e.is_client_error() => {
                        conn.execute_batch("ROLLBACK TO profile_ops; RELEASE profile_ops")
                            .map_err(sql_err)?;
                        note = Some(format!("profile operations rejected: {e}"));
                    }
                    Err(e) => return Err(e),
                }
            }
            end("done", note.as_deref(), None, None)?;
        }
        JobOutcome::Retry {
            error,
            reply,
            run_after,
        } => {
            if attempts >= max_attempts {
                end("failed", Some(&error), reply.as_deref(), None)?;
            } else if has_pending_sibling(conn, pk)? {
                let why = format!("superseded by a newer pending job after: {error}");
                end("done", Some(&why), reply.as_deref(), None)?;
            } else {
                end(
                    "pending",
                    Some(&error),
                    reply.as_deref(),
                    Some(run_after.unix_ms()),
                )?;
            }
        }
        JobOutcome::Failed { error, reply } => {
            end("failed", Some(&error), reply.as_deref(), None)?;
        }
    }
    Ok(true)
}

/// Hands a worker's running jobs back to the queue; the interrupted attempt is not
/// counted.
pub fn release(conn: &Connection, worker: &str) -> Result<u64> {
    let now = Timestamp::now().unix_ms();
    conn.prepare_cached(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = ?2, \
         last_error = 'superseded by a newer pending job' \
         WHERE state = 'running' AND lease_owner = ?1 AND EXISTS (SELECT 1 FROM jobs s \
             WHERE s.conversation_pk = jobs.conversation_pk AND s.kind = jobs.kind \
             AND s.state = 'pending')",
    )
    .map_err(sql_err)?
    .execute(params![worker, now])
    .map_err(sql_err)?;
    let n = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'pending', lease_owner = NULL, lease_until = NULL, \
             attempts = max(attempts - 1, 0), updated_at = ?2 \
             WHERE state = 'running' AND lease_owner = ?1",
        )
        .map_err(sql_err)?
        .execute(params![worker, now])
        .map_err(sql_err)?;
    Ok(n as u64)
}

/// One job.
pub fn get(conn: &Connection, id: &str) -> Result<Job> {
    conn.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"))
        .map_err(sql_err)?
        .query_row([id], rows::job)
        .optional()
        .map_err(sql_err)?
        .ok_or_else(|| Error::JobNotFound(id.to_string()))
}

/// Jobs, newest first.
pub fn list(conn: &Connection, q: &JobQuery) -> Result<Vec<Job>> {
    let sql = format!(
        "SELECT {JOB_COLS} FROM jobs WHERE (?1 IS NULL OR user_id = ?1) \
         AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR conversation_id = ?3) \
         ORDER BY pk DESC LIMIT ?4"
    );
    conn.prepare_cached(&sql)
        .map_err(sql_err)?
        .query_map(
            params![
                q.user,
                q.state.map(|s| s.as_str()),
                q.conversation_id,
                q.limit.unwrap_or(100).clamp(1, 10_000)
            ],
            rows::job,
        )
        .map_err(sql_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_err)
}

/// Jobs by state.
pub fn counts(conn: &Connection) -> Result<JobCounts> {
    let mut c = JobCounts::default();
    let mut stmt = conn
        .prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .map_err(sql_err)?;
    for r in rows {
        let (state, n) = r.map_err(sql_err)?;
        match state.as_str() {
            "pending" => c.pending = n,
            "running" => c.running = n,
            "done" => c.done = n,
            "failed" => c.failed = n,
            _ => {}
        }
    }
    Ok(c)
}
