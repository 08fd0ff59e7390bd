//! The full-text index of messages, in a database file of its own beside the store's
//! (`<db>-search`), written by a thread of its own under that file's write lock.
//!
//! Indexing a message (FTS5 splitting its text into tokens and writing postings, then
//! merging segments) costs ~4 µs a message, and a pass of thousands used to run inside
//! a group commit on the writer thread, holding every write of the group: at 64
//! concurrent writers the passes set the p99 of appends (10-26 ms against a p50 of
//! ~1 ms). Here the writer never indexes; this file's own lock and thread do.
//!
//! What keeps the two files in step, though SQLite commits them separately:
//! - `progress.indexed_through`: every message with a pk at or below it is indexed and
//!   none above it is. A pass indexes the messages of the store above the mark and moves
//!   it, in one transaction of this file.
//! - Deletions: the store logs each deleted message (and each delete that lowers the
//!   newest pk, after which SQLite may hand a deleted pk to a new row) in
//!   `search_unindex`, in the deleting transaction. A pass replays the log past
//!   `progress.unindexed_through` before indexing: it drops indexed entries and lowers
//!   the mark to the newest pk the store had left, so a reused pk is indexed afresh.
//!   The writer clears log entries this file has replayed.
//! - A search sees every acknowledged message: it reads the index at once when, in its
//!   snapshot, the index holds all the searching user's messages and every deletion
//!   (`crate::search::search_if_indexed`), and otherwise first asks the indexer to catch
//!   up with what the store holds. It leaves out pks with deletions the index has not
//!   replayed (`crate::search`), which SQLite may have given to new rows meanwhile.
//! - The store's file alone stays the whole store: a missing, unreadable or foreign
//!   index file is rebuilt from it.
//!
//! The index is contentless (`content = ''`): it holds no copy of the text, and
//! snippets are cut from the store's text ([`convo_core::relevance::snippet`]).

use convo_core::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::sql_err;

/// The index file of the store at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-search");
    PathBuf::from(p)
}

/// This build's layout of the index file (its `user_version`).
const VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE VIRTUAL TABLE items_fts USING fts5(
    text, search_tag, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE progress (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_through INTEGER NOT NULL,
    unindexed_through INTEGER NOT NULL
);
INSERT INTO progress (one, indexed_through, unindexed_through) VALUES (1, 0, 0);
"#;

/// Most messages one pass indexes: bounds a pass's transaction, so a search waiting
/// for the indexer sees progress and a crash loses little work.
pub const BATCH: i64 = 4096;

/// Most text one pass holds in memory (a batch of long messages ends early).
const MAX_PASS_BYTES: usize = 16 << 20;

/// How often the indexer looks for new messages when nobody asks.
const EVERY: Duration = Duration::from_millis(100);

/// Messages indexed between two calls of a pass's `pace`. While nobody waits for the
/// index, the indexer rests as long as each chunk took, so it takes at most half a
/// vCPU from the writer and request threads and still indexes ~100k messages a second.
/// (A pass's COMMIT, where FTS5 writes the segment and merges, is one burst of up to
/// ~15 ms for 4,096 messages.)
const CHUNK: usize = 48;

/// The indexer's two connections: the index file, and the store read-only. They are
/// never in one transaction: a write transaction of a connection with the store
/// attached holds a snapshot of the store for as long as it runs, and SQLite cannot
/// start the store's log over while a reader holds one. With passes back to back the
/// log grew past its preallocated length (to 66 MB in 16,000 appends), each commit
/// extending the file again, and under steady load it might never start over.
pub struct Files {
    /// The index file.
    pub index: Connection,
    /// The store, read-only, read in short transactions.
    pub store: Connection,
}

/// Opens the index file beside the store at `db` and a read-only connection to the
/// store; creates, upgrades or rebuilds the index file as needed.
pub fn open(db: &Path, busy_timeout: Duration) -> Result<Files> {
    let store = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    store.busy_timeout(busy_timeout).map_err(sql_err)?;
    store.set_prepared_statement_cache_capacity(16);
    let path = path_for(db);
    let index = match open_checked(&store, &path, busy_timeout) {
        Ok(conn) => conn,
        Err(e) => {
            // Derived data: start over from the store rather than refuse to open it.
            tracing::warn!(path = %path.display(), error = %e, "rebuilding the search index file");
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::storage(e)),
                }
            }
            open_checked(&store, &path, busy_timeout)?
        }
    };
    Ok(Files { index, store })
}

fn open_checked(store: &Connection, path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let mut conn = crate::open_wal(path, busy_timeout)?;
    // The index is rebuilt from the store after a power loss at worst: no fsync per pass.
    // `secure_delete = FAST` zeroes what deletes and merges free inside the pages they
    // write anyway; `ON`, which also zeroes freed pages, is kept for [`purge`].
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY; PRAGMA secure_delete = FAST;",
    )
    .map_err(sql_err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    // Read once: the store's deletion log only grows, so a reset to this point skips
    // nothing logged later.
    let (newest_item, newest_log) = {
        let r = store.unchecked_transaction().map_err(sql_err)?;
        (newest_pk(&r)?, newest_unindex(&r)?)
    };
    match version {
        0 => {
            tx.execute_batch(SCHEMA).map_err(sql_err)?;
            // Deletions logged before now concern nothing this file holds.
            tx.execute("UPDATE progress SET unindexed_through = ?1", [newest_log])
                .map_err(sql_err)?;
            tx.pragma_update(None, "user_version", VERSION)
                .map_err(sql_err)?;
            tracing::info!(path = %path.display(), "created the search index file");
        }
        VERSION => {
            let (indexed, unindexed) = progress(&tx)?;
            // A store restored from an older copy beside a newer index: the index
            // could hold entries for pks the store will reuse.
            if indexed > newest_item || unindexed > newest_log {
                tracing::warn!(path = %path.display(), "the search index is ahead of the store; rebuilding it");
                tx.execute_batch("INSERT INTO items_fts(items_fts) VALUES ('delete-all')")
                    .map_err(sql_err)?;
                tx.execute(
                    "UPDATE progress SET indexed_through = 0, unindexed_through = ?1",
                    [newest_log],
                )
                .map_err(sql_err)?;
            }
        }
        other => {
            return Err(Error::storage(std::io::Error::other(format!(
                "unknown search index layout {other} in {}",
                path.display()
            ))));
        }
    }
    tx.commit().map_err(sql_err)?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// The newest item's pk in the store.
fn newest_pk(store: &Connection) -> Result<i64> {
    store
        .prepare_cached("SELECT coalesce(max(pk), 0) FROM items")
        .map_err(sql_err)?
        .query_row([], |r| r.get(0))
        .map_err(sql_err)
}

/// The last sequence number the store's deletion log handed out (AUTOINCREMENT keeps
/// it even when the log is empty).
fn newest_unindex(store: &Connection) -> Result<i64> {
    store
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'search_unindex'")
        .map_err(sql_err)?
        .query_row([], |r| r.get(0))
        .optional()
        .map(|s| s.unwrap_or(0))
        .map_err(sql_err)
}

fn progress(index: &Connection) -> Result<(i64, i64)> {
    index
        .prepare_cached("SELECT indexed_through, unindexed_through FROM progress")
        .map_err(sql_err)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql_err)
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Whether messages may still wait (the batch was full).
    pub more: bool,
    /// The deletion log is replayed through this sequence number.
    pub unindexed_through: i64,
}

/// One pass in a transaction of the index file: replays the store's deletion log, then
/// indexes up to `limit` messages above the mark (all with `None`), calling `pace`
/// with the time each chunk of [`CHUNK`] messages took. What it needs from the store
/// is read first, in one short read transaction.
pub fn pass(files: &mut Files, limit: Option<i64>, pace: &dyn Fn(Duration)) -> Result<Pass> {
    let tx = files
        .index
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let (mut mark, mut unindexed) = progress(&tx)?;
    let (mark_before, unindexed_before) = (mark, unindexed);
    let (log, rows, upto, full) = {
        let r = files.store.unchecked_transaction().map_err(sql_err)?;
        let log: Vec<(i64, i64, bool, i64)> = r
            .prepare_cached(
                "SELECT seq, pk, message, newest FROM search_unindex WHERE seq > ?1 \
                 ORDER BY seq",
            )
            .map_err(sql_err)?
            .query_map([unindexed], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(sql_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql_err)?;
        // Replaying the log only lowers the mark.
        let from = log.iter().fold(mark, |m, e| m.min(e.3));
        let mut rows: Vec<(i64, String, Option<String>)> = Vec::new();
        let mut bytes = 0;
        let mut full = false;
        let mut select = r
            .prepare_cached(
                "SELECT pk, text, search_tag FROM items WHERE pk > ?1 AND kind = 'message' \
                 ORDER BY pk",
            )
            .map_err(sql_err)?;
        let mut found = select.query([from]).map_err(sql_err)?;
        while let Some(row) = found.next().map_err(sql_err)? {
            if limit.is_some_and(|n| rows.len() as i64 >= n) || bytes >= MAX_PASS_BYTES {
                full = true;
                break;
            }
            let text: String = row.get(1).map_err(sql_err)?;
            bytes += text.len();
            rows.push((
                row.get(0).map_err(sql_err)?,
                text,
                row.get(2).map_err(sql_err)?,
            ));
        }
        drop(found);
        drop(select);
        // A full batch ends at its last message; a short one covers every row, and the
        // mark moves to the newest.
        let upto = match rows.last() {
            Some(last) if full => last.0,
            _ => newest_pk(&r)?,
        };
        (log, rows, upto, full)
    };
    {
        let mut drop_entry = tx
            .prepare_cached("DELETE FROM items_fts WHERE rowid = ?1")
            .map_err(sql_err)?;
        for (seq, pk, message, newest) in log {
            if message && pk <= mark {
                drop_entry.execute([pk]).map_err(sql_err)?;
            }
            mark = mark.min(newest);
            unindexed = seq;
        }
        // In chunks, with `pace` after each: FTS5 keeps a transaction's postings in
        // memory and writes one segment at COMMIT, so chunks cost no more merging.
        let mut add = tx
            .prepare_cached("INSERT INTO items_fts(rowid, text, search_tag) VALUES (?1, ?2, ?3)")
            .map_err(sql_err)?;
        for chunk in rows.chunks(CHUNK) {
            let started = Instant::now();
            for (pk, text, tag) in chunk {
                add.execute(params![pk, text, tag]).map_err(sql_err)?;
            }
            if chunk.len() == CHUNK {
                pace(started.elapsed());
            }
        }
    }
    mark = mark.max(upto);
    if (mark, unindexed) != (mark_before, unindexed_before) {
        tx.prepare_cached("UPDATE progress SET indexed_through = ?1, unindexed_through = ?2")
            .map_err(sql_err)?
            .execute([mark, unindexed])
            .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
    }
    Ok(Pass {
        more: full,
        unindexed_through: unindexed,
    })
}

/// Clears the store's deletion log through `through` (entries the index file has
/// replayed); run by the writer, in a group commit.
pub fn clear_unindex_log(conn: &Connection, through: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM search_unindex WHERE seq <= ?1")
        .map_err(sql_err)?
        .execute([through])
        .map_err(sql_err)?;
    Ok(())
}

/// Rewrites the whole index into one segment without the entries of deleted
/// messages, zeroing the pages it frees, then empties the index's log, whose frames
/// still hold the old pages. FTS5 deletes an entry by marking it: the words stay in
/// their segment until a merge rewrites it, which for an old segment may be never.
/// Run after an erasure: 2.2 s for a million messages here, during which a search
/// that needs the indexer (its user has messages not indexed yet) waits for it.
pub fn purge(index: &Connection) -> Result<()> {
    let done = index
        .execute_batch(
            "PRAGMA secure_delete = ON; INSERT INTO items_fts(items_fts) VALUES ('optimize');",
        )
        .map_err(sql_err);
    let restored = index
        .execute_batch("PRAGMA secure_delete = FAST")
        .map_err(sql_err);
    done.and(restored)?;
    crate::empty_log(index)
}

enum Msg {
    /// Answer once everything committed before this request is indexed.
    CatchUp(oneshot::Sender<Result<()>>),
    /// Catch up, then [`purge`] the index; answer when it is done.
    Purge(oneshot::Sender<Result<()>>),
    /// Catch up, then stop.
    Close(oneshot::Sender<()>),
}

/// The indexer thread and how to reach it.
pub struct Indexer {
    tx: mpsc::Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    replayed: Arc<AtomicI64>,
    /// Set while someone waits for the index: the indexer stops resting.
    hurry: Arc<AtomicBool>,
    /// Catch-up requests sent and not yet taken by the thread.
    asked: Arc<AtomicUsize>,
}

impl Indexer {
    /// Starts the indexer thread over `files` (from [`open`]).
    pub fn start(files: Files) -> Indexer {
        let (tx, rx) = mpsc::channel();
        let replayed = Arc::new(AtomicI64::new(0));
        let hurry = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicUsize::new(0));
        let shared = Shared {
            replayed: replayed.clone(),
            hurry: hurry.clone(),
            asked: asked.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("convo-sqlite-indexer".into())
            .spawn(move || run(files, rx, &shared))
            .expect("spawn the indexer thread");
        Indexer {
            tx,
            thread: Mutex::new(Some(thread)),
            replayed,
            hurry,
            asked,
        }
    }

    /// How far the index file has replayed the store's deletion log: entries through
    /// it may be cleared.
    pub fn replayed(&self) -> Arc<AtomicI64> {
        self.replayed.clone()
    }

    /// Waits until every message committed before the call is indexed.
    pub async fn catch_up(&self) -> Result<()> {
        self.asked.fetch_add(1, Ordering::AcqRel);
        self.ask(Msg::CatchUp).await
    }

    /// Has the index replay every deletion committed before the call, then [`purge`]
    /// it; returns when the purge is done. Dropping the future leaves the purge to run
    /// in the background (closing the store lets it finish).
    pub async fn purge(&self) -> Result<()> {
        self.ask(Msg::Purge).await
    }

    /// Sends the thread a request (with it waiting, it does not rest) and waits for
    /// the answer.
    async fn ask(&self, request: impl FnOnce(oneshot::Sender<Result<()>>) -> Msg) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.hurry.store(true, Ordering::Release);
        self.tx.send(request(reply)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Indexes what waits, then stops the thread.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        self.hurry.store(true, Ordering::Release);
        if self.tx.send(Msg::Close(done)).is_ok() {
            let _ = rx.await;
        }
        crate::join_thread(&self.thread).await;
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        let (done, _rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Close(done));
    }
}

/// What the indexer thread shares with its handle.
struct Shared {
    replayed: Arc<AtomicI64>,
    hurry: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
}

/// How long a rewrite of the index ([`purge`]) waits for searches that asked the
/// indexer to catch up while the pass before it ran: they are answered by one more
/// pass instead of waiting out the rewrite (seconds at a million messages). Bounded,
/// so a stream of such searches cannot hold the rewrite off.
const PURGE_DEFER: Duration = Duration::from_millis(250);

/// The indexer thread: passes while messages wait, a look every [`EVERY`] otherwise,
/// and at once when a search asks.
fn run(mut files: Files, rx: mpsc::Receiver<Msg>, shared: &Shared) {
    let Shared {
        replayed,
        hurry,
        asked,
    } = shared;
    let mut waiting: Vec<oneshot::Sender<Result<()>>> = Vec::new();
    let mut closing: Option<oneshot::Sender<()>> = None;
    let mut more = true;
    let mut purging: Vec<oneshot::Sender<Result<()>>> = Vec::new();
    let mut purge_due: Option<Instant> = None;
    // Entries an earlier process replayed may be cleared before this one's first pass.
    if let Ok((_, unindexed)) = progress(&files.index) {
        replayed.store(unindexed, Ordering::Release);
    }
    loop {
        let first = if more {
            rx.try_recv()
                .map_err(|e| e == mpsc::TryRecvError::Disconnected)
        } else {
            rx.recv_timeout(EVERY)
                .map_err(|e| e == mpsc::RecvTimeoutError::Disconnected)
        };
        let mut gone = false;
        let next = || {
            Some(
                rx.try_recv()
                    .map_err(|e| e == mpsc::TryRecvError::Disconnected),
            )
        };
        for msg in std::iter::once(first).chain(std::iter::from_fn(next)) {
            match msg {
                Ok(Msg::CatchUp(reply)) => {
                    asked.fetch_sub(1, Ordering::AcqRel);
                    hurry.store(true, Ordering::Release);
                    waiting.push(reply);
                }
                Ok(Msg::Close(done)) => closing = Some(done),
                Ok(Msg::Purge(reply)) => {
                    hurry.store(true, Ordering::Release);
                    purging.push(reply);
                }
                Err(disconnected) => {
                    gone |= disconnected;
                    break;
                }
            }
        }
        if gone {
            hurry.store(true, Ordering::Release);
        }
        let rest = |took: Duration| {
            if !hurry.load(Ordering::Acquire) {
                std::thread::sleep(took);
            }
        };
        // Requests that arrived before this pass began are answered after a pass
        // that found nothing more to do.
        let outcome = match pending(&files) {
            Ok(false) => Ok(None),
            Ok(true) => pass(&mut files, Some(BATCH), &rest).map(Some),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(p) => {
                if let Some(p) = p {
                    replayed.store(p.unindexed_through, Ordering::Release);
                }
                more = p.is_some_and(|p| p.more);
                if !more {
                    if closing.is_none() && !gone {
                        hurry.store(false, Ordering::Release);
                    }
                    for w in waiting.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                }
                // After a pass that began after the request, so it replayed the
                // deletions; and after answering the searches that pass served, and
                // those that asked while it ran ([`PURGE_DEFER`]), which would otherwise
                // wait for the rewrite too.
                let due = (!purging.is_empty() && !more)
                    .then(|| *purge_due.get_or_insert_with(Instant::now));
                if due
                    .is_some_and(|d| asked.load(Ordering::Acquire) > 0 && d.elapsed() < PURGE_DEFER)
                {
                    more = true;
                } else if due.is_some() {
                    purge_due = None;
                    let started = Instant::now();
                    let done = purge(&files.index);
                    match &done {
                        Ok(()) => {
                            tracing::info!(took = ?started.elapsed(), "rewrote the search index without deleted messages")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "rewriting the search index after an erasure failed; the next erasure retries")
                        }
                    }
                    for p in purging.drain(..) {
                        let _ = p.send(match &done {
                            Ok(()) => Ok(()),
                            Err(e) => Err(Error::storage(std::io::Error::other(e.to_string()))),
                        });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "search indexing failed; retrying");
                for w in waiting.drain(..) {
                    let _ = w.send(Err(Error::storage(std::io::Error::other(e.to_string()))));
                }
                more = false;
            }
        }
        if (closing.is_some() || gone) && !more {
            break;
        }
    }
    drop(files);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Whether the store holds messages or deletions the index has not seen (read without
/// taking the index file's write lock: the idle indexer looks often).
fn pending(files: &Files) -> Result<bool> {
    let (mark, unindexed) = progress(&files.index)?;
    let r = files.store.unchecked_transaction().map_err(sql_err)?;
    Ok(newest_pk(&r)? > mark || newest_unindex(&r)? > unindexed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::tests::{add, add_conversation, at_version};

    /// A store file at `version` (the latest with `None`), with conversation pk 1.
    fn store(dir: &Path, version: Option<usize>) -> Connection {
        let mut conn = Connection::open(dir.join("convo.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        match version {
            Some(v) => at_version(&conn, v),
            None => {
                crate::schema::migrate(&mut conn).unwrap();
            }
        }
        add_conversation(&conn);
        conn
    }

    fn index(dir: &Path) -> Files {
        open(&dir.join("convo.db"), Duration::from_secs(5)).unwrap()
    }

    fn matches(index: &Connection, word: &str) -> i64 {
        index
            .query_row(
                "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?1",
                [format!("text : \"{word}\"")],
                |r| r.get(0),
            )
            .unwrap()
    }

    fn intact(index: &Connection) {
        index
            .execute(
                "INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .expect("the index is sound");
    }

    fn pk_of(store: &Connection, id: &str) -> i64 {
        store
            .query_row("SELECT pk FROM items WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn stores_of_every_version_are_indexed_in_the_new_file() {
        for version in 1..=3 {
            let dir = tempfile::tempdir().unwrap();
            let mut conn = store(dir.path(), Some(version));
            add(&conn, "msg_old", "message", "old words");
            crate::schema::migrate(&mut conn).unwrap();
            let gone: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'items_fts%' \
                     OR name = 'search_progress'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(gone, 0, "version {version}: the old index left the store");
            add(&conn, "msg_new", "message", "new words");
            let mut idx = index(dir.path());
            assert_eq!(
                matches(&idx.index, "old"),
                0,
                "nothing indexed before a pass"
            );
            assert_eq!(
                pass(&mut idx, None, &|_| {}).unwrap(),
                Pass {
                    more: false,
                    unindexed_through: 0
                }
            );
            assert_eq!(
                (matches(&idx.index, "old"), matches(&idx.index, "new")),
                (1, 1)
            );
            conn.execute("DELETE FROM items WHERE id = 'msg_old'", [])
                .unwrap();
            assert!(!pass(&mut idx, None, &|_| {}).unwrap().more);
            assert_eq!(
                (matches(&idx.index, "old"), matches(&idx.index, "new")),
                (0, 1)
            );
            intact(&idx.index);
        }
    }

    /// SQLite numbers a new row after the largest pk left, so deleting the newest rows
    /// must not let a new message take an indexed pk and be skipped.
    #[test]
    fn a_new_row_reusing_a_deleted_newest_pk_is_still_indexed() {
        for newest in ["message", "function_call"] {
            let dir = tempfile::tempdir().unwrap();
            let conn = store(dir.path(), None);
            let mut idx = index(dir.path());
            add(&conn, "msg_kept", "message", "kept words");
            add(&conn, "item_newest", newest, "newest words");
            pass(&mut idx, None, &|_| {}).unwrap();
            let pk = pk_of(&conn, "item_newest");
            conn.execute("DELETE FROM items WHERE id = 'item_newest'", [])
                .unwrap();
            add(&conn, "msg_reused", "message", "fresh words");
            assert_eq!(
                pk_of(&conn, "msg_reused"),
                pk,
                "SQLite reused the pk ({newest})"
            );
            let done = pass(&mut idx, None, &|_| {}).unwrap();
            assert_eq!(done.unindexed_through, 1, "{newest}");
            assert_eq!(matches(&idx.index, "fresh"), 1, "{newest}");
            assert_eq!(matches(&idx.index, "newest"), 0, "{newest}");
            assert_eq!(matches(&idx.index, "kept"), 1, "{newest}");
            intact(&idx.index);
            // The writer clears what was replayed; the next pass finds nothing new.
            clear_unindex_log(&conn, done.unindexed_through).unwrap();
            let left: i64 = conn
                .query_row("SELECT count(*) FROM search_unindex", [], |r| r.get(0))
                .unwrap();
            assert_eq!(left, 0);
            assert_eq!(pass(&mut idx, None, &|_| {}).unwrap(), done);
        }
    }

    #[test]
    fn bounded_passes_index_in_order_and_report_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let conn = store(dir.path(), None);
        let mut idx = index(dir.path());
        for i in 0..5 {
            add(&conn, &format!("msg_{i}"), "message", &format!("word{i}"));
            add(&conn, &format!("fc_{i}"), "function_call", "");
        }
        assert!(pass(&mut idx, Some(2), &|_| {}).unwrap().more);
        assert_eq!(
            (matches(&idx.index, "word1"), matches(&idx.index, "word2")),
            (1, 0)
        );
        // The last three fill the next pass exactly, and it knows nothing is left.
        assert!(!pass(&mut idx, Some(3), &|_| {}).unwrap().more);
        assert_eq!(matches(&idx.index, "word4"), 1);
        let mark: i64 = idx
            .index
            .query_row("SELECT indexed_through FROM progress", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            mark,
            pk_of(&conn, "fc_4"),
            "the mark covers the calls after them"
        );
        // Deleting a message not yet indexed, and calls, which never are, drops nothing.
        add(&conn, "msg_late", "message", "late words");
        conn.execute(
            "DELETE FROM items WHERE id = 'msg_late' OR kind = 'function_call'",
            [],
        )
        .unwrap();
        assert!(!pass(&mut idx, None, &|_| {}).unwrap().more);
        assert_eq!(matches(&idx.index, "late"), 0);
        assert_eq!(
            (0..5)
                .map(|i| matches(&idx.index, &format!("word{i}")))
                .sum::<i64>(),
            5
        );
        intact(&idx.index);
    }

    #[test]
    fn a_pass_holds_a_bounded_amount_of_text() {
        let dir = tempfile::tempdir().unwrap();
        let conn = store(dir.path(), None);
        let mut idx = index(dir.path());
        let long = "x".repeat(MAX_PASS_BYTES * 9 / 16);
        for i in 0..3 {
            add(
                &conn,
                &format!("msg_{i}"),
                "message",
                &format!("tail{i} {long}"),
            );
        }
        // Two fit in one pass (the second crosses the bound); the third waits.
        assert!(pass(&mut idx, None, &|_| {}).unwrap().more);
        assert_eq!(matches(&idx.index, "tail1"), 1);
        assert_eq!(matches(&idx.index, "tail2"), 0);
        assert!(!pass(&mut idx, None, &|_| {}).unwrap().more);
        assert_eq!(matches(&idx.index, "tail2"), 1);
    }

    #[test]
    fn a_lost_foreign_or_stale_index_file_is_rebuilt_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let conn = store(dir.path(), None);
        add(&conn, "msg_a", "message", "apple pie");
        let path = path_for(&dir.path().join("convo.db"));
        for damage in ["missing", "garbage", "ahead"] {
            {
                let mut idx = index(dir.path());
                pass(&mut idx, None, &|_| {}).unwrap();
                assert_eq!(matches(&idx.index, "apple"), 1);
                if damage == "ahead" {
                    idx.index
                        .execute("UPDATE progress SET indexed_through = 1000", [])
                        .unwrap();
                }
            }
            match damage {
                "missing" => std::fs::remove_file(&path).unwrap(),
                "garbage" => std::fs::write(&path, b"not a database, not at all").unwrap(),
                _ => {}
            }
            let mut idx = index(dir.path());
            assert_eq!(matches(&idx.index, "apple"), 0, "{damage}: starts empty");
            assert!(!pass(&mut idx, None, &|_| {}).unwrap().more);
            assert_eq!(matches(&idx.index, "apple"), 1, "{damage}: rebuilt");
            intact(&idx.index);
        }
    }

    #[test]
    fn paths_with_odd_characters_open_the_right_files() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a?b#c%d e");
        std::fs::create_dir(&odd).unwrap();
        let conn = store(&odd, None);
        add(&conn, "msg_a", "message", "odd place");
        let mut idx = index(&odd);
        pass(&mut idx, None, &|_| {}).unwrap();
        assert_eq!(matches(&idx.index, "odd"), 1);
        assert!(path_for(&odd.join("convo.db")).exists());
        // The store is opened read-only: the indexer can never write it.
        let denied = idx.store.execute("DELETE FROM items", []).unwrap_err();
        assert!(denied.to_string().contains("readonly"), "{denied}");
    }
}
