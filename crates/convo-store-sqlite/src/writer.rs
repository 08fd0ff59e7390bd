//! The one writer: a thread that owns the write connection and commits queued writes
//! in groups; all writes of a group are acknowledged only after their common COMMIT,
//! so many concurrent writers share one fsync.
//!
//! One failing write must not fail the others in its group. A savepoint per write
//! would do that, but SQLite then copies every page a write touches into the
//! savepoint's journal, a fifth of the writer's time in profiles. So writes run
//! without one, and a write that fails is checked instead: if it changed no rows
//! (the usual case: not found, invalid), the group goes on; if it did, the group's
//! transaction is rolled back and replayed without it, each write then in a savepoint.

use convo_core::{Error, Result};
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use crate::sql_err;

/// Most writes committed together.
const MAX_GROUP: usize = 512;

/// Work the writer does on its own, inside the group commits of ordinary writes so
/// it costs no extra fsync: a bounded pass every `every`, repeated at the next group
/// while it reports more to do, and a full drain before the writer closes.
pub struct Upkeep {
    /// How often a pass runs while writes arrive.
    pub every: Duration,
    /// One bounded pass; returns whether work remains.
    pub pass: fn(&Connection) -> Result<bool>,
    /// All remaining work.
    pub drain: fn(&Connection) -> Result<bool>,
    /// Whether any work waits (checked before draining, so a writer that wrote
    /// nothing never takes the write lock to close).
    pub waiting: fn(&Connection) -> Result<bool>,
}

/// When upkeep runs next.
struct UpkeepState {
    upkeep: Upkeep,
    due: Instant,
}

impl UpkeepState {
    /// Runs a pass inside the open transaction if one is due; a failing pass is
    /// rolled back alone and retried after `every`.
    fn maybe_run(&mut self, conn: &Connection) {
        if Instant::now() < self.due {
            return;
        }
        let outcome = run_cached(conn, "SAVEPOINT upkeep")
            .map_err(sql_err)
            .and_then(|()| (self.upkeep.pass)(conn));
        let more = match outcome {
            Ok(more) => run_cached(conn, "RELEASE upkeep").is_ok() && more,
            Err(e) => {
                tracing::warn!(error = %e, "writer upkeep failed; retrying later");
                let _ = run_cached(conn, "ROLLBACK TO upkeep")
                    .and_then(|()| run_cached(conn, "RELEASE upkeep"));
                false
            }
        };
        self.due = if more {
            Instant::now()
        } else {
            Instant::now() + self.upkeep.every
        };
    }

    /// Finishes the work in a transaction of its own.
    fn drain(&self, conn: &Connection) {
        if !(self.upkeep.waiting)(conn).unwrap_or(true) {
            return;
        }
        let outcome = begin(conn)
            .map_err(|e| Error::Storage(e.into()))
            .and_then(|()| {
                (self.upkeep.drain)(conn)?;
                run_cached(conn, "COMMIT").map_err(sql_err)
            });
        if let Err(e) = outcome {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::warn!(error = %e, "writer upkeep before close failed");
        }
    }
}

trait WriteOp: Send {
    /// Runs inside the group's transaction, in a savepoint of its own when `isolate`.
    /// Runs again if the group is replayed, unless it failed.
    fn apply(&mut self, conn: &Connection, isolate: bool);
    /// Whether `apply` failed.
    fn failed(&self) -> bool;
    /// Delivers the result once the group's fate is known.
    fn finish(self: Box<Self>, commit: std::result::Result<(), String>);
}

struct Op<T, F> {
    f: F,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> WriteOp for Op<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T> + Send,
{
    fn apply(&mut self, conn: &Connection, isolate: bool) {
        let f = &mut self.f;
        if !isolate {
            self.result = Some(f(conn));
            return;
        }
        let r = match run_cached(conn, "SAVEPOINT op") {
            Err(e) => Err(sql_err(e)),
            Ok(()) => {
                let r = f(conn);
                let end = if r.is_ok() {
                    run_cached(conn, "RELEASE op")
                } else {
                    run_cached(conn, "ROLLBACK TO op").and_then(|()| run_cached(conn, "RELEASE op"))
                };
                match end {
                    Ok(()) => r,
                    Err(e) => Err(sql_err(e)),
                }
            }
        };
        self.result = Some(r);
    }

    fn failed(&self) -> bool {
        matches!(self.result, Some(Err(_)))
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), String>) {
        let out = match (commit, self.result) {
            (Ok(()), Some(r)) => r,
            (Err(_), Some(Err(own))) if own.is_client_error() => Err(own),
            (Err(e), _) => Err(Error::Storage(e.into())),
            (Ok(()), None) => Err(Error::Closed),
        };
        let _ = self.reply.send(out);
    }
}

enum Msg {
    Op(Box<dyn WriteOp>),
    Close(oneshot::Sender<()>),
}

/// The write connection and its upkeep schedule. The writer thread uses it; so does
/// a caller whose write is the only one in flight (see [`Writer::write`]). `None` once
/// the writer has closed.
struct Core {
    conn: Connection,
    upkeep: UpkeepState,
}

type SharedCore = Arc<Mutex<Option<Core>>>;

fn lock(core: &SharedCore) -> MutexGuard<'_, Option<Core>> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

/// Handle to the writer thread.
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    core: SharedCore,
    in_flight: AtomicUsize,
    /// When a write last arrived while another was in flight (µs since `epoch`).
    contended_at: AtomicU64,
    epoch: Instant,
}

/// Writes commit on their callers' threads only after this long without concurrent
/// writes: under concurrency, group commits on the writer thread are cheaper.
const QUIET_BEFORE_INLINE: Duration = Duration::from_millis(20);

/// Counts a write in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether the current task may block its thread (`block_in_place` needs the
/// multi-threaded runtime).
fn may_block_here() -> bool {
    tokio::runtime::Handle::try_current()
        .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .unwrap_or(false)
}

impl Writer {
    /// Starts the writer thread over `conn`. Upkeep is due at once, so work left by
    /// an earlier process is picked up with the first writes.
    pub fn start(conn: Connection, upkeep: Upkeep) -> Writer {
        let (tx, rx) = mpsc::channel::<Msg>();
        let core: SharedCore = Arc::new(Mutex::new(Some(Core {
            conn,
            upkeep: UpkeepState {
                upkeep,
                due: Instant::now(),
            },
        })));
        let shared = core.clone();
        let thread = std::thread::Builder::new()
            .name("convo-sqlite-writer".into())
            .spawn(move || run(shared, rx))
            .expect("spawn the writer thread");
        Writer {
            tx,
            thread: Mutex::new(Some(thread)),
            core,
            in_flight: AtomicUsize::new(0),
            contended_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Runs `f` in the next group transaction and waits for the commit. `f` runs again
    /// (after a rollback of its earlier run) when its group is replayed, so it must
    /// depend only on what it captured and the database.
    ///
    /// A write that is the only one in flight, with no concurrent writes lately,
    /// commits on the caller's thread (`block_in_place`) instead of the writer thread:
    /// handing it over and back costs two thread wake-ups, ~30 µs each on a virtual
    /// machine, which is as much as the write itself when fsync is fast. Concurrent
    /// writes queue to the writer thread and share its group commits.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, mut rx) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(Op {
            f,
            result: None,
            reply,
        });
        let now = self.epoch.elapsed().as_micros() as u64;
        let alone = self.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
        let _in_flight = InFlight(&self.in_flight);
        if !alone {
            self.contended_at.store(now, Ordering::Relaxed);
        }
        let quiet = now.saturating_sub(self.contended_at.load(Ordering::Relaxed))
            > QUIET_BEFORE_INLINE.as_micros() as u64;
        let op = if alone && quiet && may_block_here() {
            match self.core.try_lock() {
                Ok(mut guard) if guard.is_some() => {
                    let core = guard.as_mut().expect("checked");
                    tokio::task::block_in_place(|| {
                        commit_group(&core.conn, &mut vec![op], &mut core.upkeep);
                    });
                    drop(guard);
                    return rx.try_recv().map_err(|_| Error::Closed)?;
                }
                _ => op,
            }
        } else {
            op
        };
        self.tx.send(Msg::Op(op)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Commits what is queued, then stops the thread.
    pub async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).is_ok() {
            let _ = rx.await;
        }
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let (done, _rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Close(done));
    }
}

fn run(core: SharedCore, rx: mpsc::Receiver<Msg>) {
    let mut group: Vec<Box<dyn WriteOp>> = Vec::with_capacity(MAX_GROUP);
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        match rx.recv() {
            Ok(Msg::Op(op)) => group.push(op),
            Ok(Msg::Close(done)) => closing = Some(done),
            Err(_) => break,
        }
        while group.len() < MAX_GROUP && closing.is_none() {
            match rx.try_recv() {
                Ok(Msg::Op(op)) => group.push(op),
                Ok(Msg::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            let mut guard = lock(&core);
            let core = guard.as_mut().expect("open until this thread closes it");
            commit_group(&core.conn, &mut group, &mut core.upkeep);
        }
    }
    // From here on callers queue rather than write on their own threads.
    let Some(Core { conn, mut upkeep }) = lock(&core).take() else {
        return;
    };
    // Anything sent after Close still gets an answer.
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Op(op) => group.push(op),
            Msg::Close(done) => {
                let _ = done.send(());
            }
        }
    }
    if !group.is_empty() {
        commit_group(&conn, &mut group, &mut upkeep);
    }
    upkeep.drain(&conn);
    let _ = conn.execute_batch("PRAGMA optimize");
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs a statement without results through the statement cache: transaction
/// control runs several times per group, and parsing it each time showed in profiles.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn commit_group(conn: &Connection, group: &mut Vec<Box<dyn WriteOp>>, upkeep: &mut UpkeepState) {
    let outcome = (|| {
        if let Err(e) = apply_all(conn, group) {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(e);
        }
        if group.iter().all(|op| op.failed()) {
            // Nothing to keep: no commit, no fsync.
            return run_cached(conn, "ROLLBACK").map_err(|e| e.to_string());
        }
        upkeep.maybe_run(conn);
        run_cached(conn, "COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        })
    })();
    if let Err(e) = &outcome {
        tracing::error!(error = %e, writes = group.len(), "a group commit failed");
    }
    for op in group.drain(..) {
        op.finish(outcome.clone());
    }
}

/// Opens the group's transaction and applies its writes, leaving it open. A write
/// that fails after changing rows (or whose error ended the transaction) keeps its
/// error and is left out of a replay of the others; a replay isolates each write in
/// a savepoint, so it never needs another.
fn apply_all(conn: &Connection, group: &mut [Box<dyn WriteOp>]) -> std::result::Result<(), String> {
    let mut isolate = false;
    'replay: loop {
        begin(conn)?;
        for op in group.iter_mut() {
            if isolate && op.failed() {
                continue;
            }
            let before = conn.total_changes();
            op.apply(conn, isolate);
            // SQLite ends the transaction itself on some errors (disk full, I/O).
            let ended = conn.is_autocommit();
            if ended && (isolate || !op.failed()) {
                return Err("the group's transaction ended early".into());
            }
            if op.failed() && !isolate && (ended || conn.total_changes() != before) {
                if !ended {
                    run_cached(conn, "ROLLBACK").map_err(|e| e.to_string())?;
                }
                isolate = true;
                continue 'replay;
            }
        }
        return Ok(());
    }
}

/// BEGIN IMMEDIATE, retrying while another process holds the write lock beyond the
/// busy timeout, so "database is locked" never reaches a caller under normal load.
fn begin(conn: &Connection) -> std::result::Result<(), String> {
    let mut tries = 0;
    loop {
        match run_cached(conn, "BEGIN IMMEDIATE") {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 20 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10 * tries));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn upkeep() -> UpkeepState {
        fn nothing(_: &Connection) -> Result<bool> {
            Ok(false)
        }
        UpkeepState {
            upkeep: Upkeep {
                every: Duration::from_secs(3600),
                pass: nothing,
                drain: nothing,
                waiting: nothing,
            },
            due: Instant::now() + Duration::from_secs(3600),
        }
    }

    fn open() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (v TEXT NOT NULL UNIQUE);")
            .unwrap();
        (dir, conn)
    }

    /// Commits one group of writes, each inserting `v` (and failing afterwards when
    /// its flag is set); answers each write's result and how many times it ran.
    fn commit(conn: &Connection, writes: &[(&'static str, bool)]) -> (Vec<Result<()>>, Vec<u32>) {
        let runs: Vec<_> = writes.iter().map(|_| Arc::new(AtomicU32::new(0))).collect();
        let mut replies = Vec::new();
        let mut group: Vec<Box<dyn WriteOp>> = Vec::new();
        for (&(v, then_fail), runs) in writes.iter().zip(&runs) {
            let (reply, rx) = oneshot::channel();
            let runs = runs.clone();
            let f = move |c: &Connection| {
                runs.fetch_add(1, Ordering::SeqCst);
                c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                    .map_err(sql_err)?;
                if then_fail {
                    return Err(Error::invalid("v", "refused after inserting"));
                }
                Ok(())
            };
            group.push(Box::new(Op {
                f,
                result: None,
                reply,
            }));
            replies.push(rx);
        }
        commit_group(conn, &mut group, &mut upkeep());
        let results = replies.iter_mut().map(|r| r.try_recv().unwrap()).collect();
        (
            results,
            runs.iter().map(|r| r.load(Ordering::SeqCst)).collect(),
        )
    }

    fn stored(conn: &Connection) -> Vec<String> {
        let mut st = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn a_write_failing_after_changes_is_undone_alone_and_the_others_replayed() {
        let (_dir, conn) = open();
        let (results, runs) = commit(&conn, &[("a", false), ("b", true), ("c", false)]);
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(Error::Invalid { .. })));
        assert!(results[2].is_ok());
        assert_eq!(stored(&conn), ["a", "c"]);
        // "a" ran before the failure and again in the replay; "b" never again.
        assert_eq!(runs, [2, 1, 1]);
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_write_failing_without_changes_costs_no_replay() {
        let (_dir, conn) = open();
        conn.execute("INSERT INTO t (v) VALUES ('b')", []).unwrap();
        // "b" is a unique violation: SQLite undoes the statement, so no row changed.
        let (results, runs) = commit(&conn, &[("a", false), ("b", false), ("c", false)]);
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [true, false, true]);
        assert_eq!(stored(&conn), ["a", "b", "c"]);
        assert_eq!(runs, [1, 1, 1]);
    }

    #[test]
    fn later_failures_in_a_replay_roll_back_alone() {
        let (_dir, conn) = open();
        let (results, _) = commit(
            &conn,
            &[("a", true), ("b", false), ("c", true), ("d", false)],
        );
        let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(ok, [false, true, false, true]);
        assert_eq!(stored(&conn), ["b", "d"]);
    }

    #[test]
    fn a_group_where_every_write_fails_leaves_the_file_as_it_was() {
        let (_dir, conn) = open();
        let (results, _) = commit(&conn, &[("a", true), ("b", true)]);
        assert!(results.iter().all(Result::is_err));
        assert!(stored(&conn).is_empty());
        assert!(conn.is_autocommit());
    }
}
