//! The write-ahead log's size: how far it grows before the writer copies it back
//! into the database (a checkpoint), and writing it out at that size up front.
//!
//! **Checkpoint threshold.** SQLite checkpoints after the commit that takes the log
//! past `wal_autocheckpoint` pages (1,000 by default), on the writer thread: it syncs
//! the log, copies the newest version of every page in it to the database and syncs
//! the database, while the writes queued behind it wait. A page rewritten by many
//! commits (a table's last leaf, a listing index) is copied once per checkpoint, so a
//! longer log copies less per commit and stalls the writer less often. At 8,192 pages
//! HTTP appends at 64 connections ran ~10% faster here (~40 against ~44 µs of server
//! CPU each); 16,384 and 32,768 gained nothing more. A thread of its own copies the
//! log between the writer's checkpoints ([`crate::checkpointer`]), so the writer's
//! copy is short even where the database is large.
//!
//! **Preallocation.** An fdatasync after a write that grew the file must also commit
//! the file system's metadata (the size, the new blocks): on ext4 a journal commit,
//! which made a one-row commit ~0.26 ms instead of ~0.14 ms here. SQLite restarts the
//! log from its start after a complete checkpoint, so once the file is as long as the
//! log gets, commits only overwrite blocks; but SQLite deletes the log when the last
//! connection closes, so every process start would grow it again commit by commit,
//! and a longer log takes longer to grow. Writing the log's full length in zeros when
//! the store opens (~25 ms for 36 MB here) grows it once, as PostgreSQL does for each
//! new WAL segment.
//!
//! Zeros past the log's end are never mistaken for frames: SQLite reads the log from
//! its start and stops at the first frame whose salt or checksum does not match the
//! header, and a header of zeros is no header (the first commit writes one). The
//! zeros are appended through `O_APPEND`, so they always land past whatever another
//! connection has written and never overwrite a frame.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// The log of the database `conn` has open: SQLite names it after the database's
/// full path (as `sqlite3_filename_wal` does), which `path` reports. `None` for an
/// in-memory database.
pub(crate) fn wal_path(conn: &Connection) -> Option<PathBuf> {
    let db = conn.path().filter(|p| !p.is_empty())?;
    Some(PathBuf::from(format!("{db}-wal")))
}

/// Pages the log may hold before the writer checkpoints it.
pub(crate) const CHECKPOINT_PAGES: u32 = 8192;

/// Sets the write connection's checkpoint threshold.
pub(crate) fn set_checkpoint_threshold(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)
}

/// The log's length when it holds [`CHECKPOINT_PAGES`] pages plus an eighth (the
/// commit that crosses the threshold, and commits while readers hold the checkpoint
/// back): a 32-byte header, then frames of a 24-byte header and one page.
fn full_length(page_size: u64) -> u64 {
    let frames = u64::from(CHECKPOINT_PAGES) * 9 / 8;
    32 + frames * (24 + page_size)
}

/// Appends zeros to the log at `wal` until it is [`full_length`] long, then syncs it.
/// Returns the bytes added. A missing log is left alone (SQLite creates it with the
/// connection's first read in WAL mode, before this runs).
pub(crate) fn preallocate(wal: &Path, page_size: u64) -> std::io::Result<u64> {
    let mut file = match std::fs::OpenOptions::new().append(true).open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let start = file.metadata()?.len();
    let want = full_length(page_size);
    if start >= want {
        return Ok(0);
    }
    let zeros = vec![0u8; 1 << 20];
    let mut len = start;
    while len < want {
        let n = (want - len).min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        len += n as u64;
    }
    file.sync_all()?;
    Ok(len - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db(dir: &Path) -> Connection {
        let conn = Connection::open(dir.join("db.sqlite")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    /// The database and its log as a crash leaves them (no wal-index, log not
    /// checkpointed), opened by a new connection, which recovers from the log.
    fn after_crash(dir: &Path) -> (tempfile::TempDir, Connection) {
        let copy = tempfile::tempdir().unwrap();
        for name in ["db.sqlite", "db.sqlite-wal"] {
            std::fs::copy(dir.join(name), copy.path().join(name)).unwrap();
        }
        let conn = Connection::open(copy.path().join("db.sqlite")).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        (copy, conn)
    }

    fn rows(conn: &Connection) -> (i64, i64) {
        conn.query_row("SELECT count(*), coalesce(sum(v), 0) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    #[test]
    fn commits_after_preallocation_overwrite_zeros_and_survive_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("db.sqlite-wal");
        let conn = wal_db(dir.path());
        let written = std::fs::metadata(&wal).unwrap().len();
        assert!(written > 0, "the first commit wrote frames");
        let added = preallocate(&wal, 4096).unwrap();
        assert_eq!(written + added, full_length(4096));
        assert_eq!(preallocate(&wal, 4096).unwrap(), 0, "already full length");

        for v in 0..100 {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [v]).unwrap();
        }
        assert_eq!(
            std::fs::metadata(&wal).unwrap().len(),
            full_length(4096),
            "commits overwrite the zeros instead of growing the file"
        );
        let (_copy, recovered) = after_crash(dir.path());
        assert_eq!(rows(&recovered), (100, 4950));
    }

    #[test]
    fn a_log_of_zeros_reads_as_empty_then_takes_commits() {
        let dir = tempfile::tempdir().unwrap();
        let conn = wal_db(dir.path());
        conn.execute("INSERT INTO t (v) VALUES (1)", []).unwrap();
        // Everything checkpointed and the log emptied, as a fresh process finds it.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let wal = dir.path().join("db.sqlite-wal");
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
        assert_eq!(preallocate(&wal, 4096).unwrap(), full_length(4096));

        let (_copy, recovered) = after_crash(dir.path());
        assert_eq!(rows(&recovered), (1, 1), "zeros hold no frames");
        conn.execute("INSERT INTO t (v) VALUES (7)", []).unwrap();
        let (_copy, recovered) = after_crash(dir.path());
        assert_eq!(rows(&recovered), (2, 8));
    }

    #[test]
    fn a_missing_log_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("nothing.sqlite-wal");
        assert_eq!(preallocate(&wal, 4096).unwrap(), 0);
        assert!(!wal.exists());
    }
}
