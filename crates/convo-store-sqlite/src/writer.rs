//! The one writer: a thread that owns the write connection and commits queued writes
//! in groups; all writes of a group are acknowledged only after their common COMMIT
//! (and, at full durability, the sync thread's fsync after it: see
//! [`crate::durable`]), so many concurrent writers share one fsync.
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

use crate::durable::{Durable, Syncer};
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
    pub pass: Task,
    /// All remaining work.
    pub drain: Task,
    /// Whether any work waits (checked before draining, so a writer that wrote
    /// nothing never takes the write lock to close).
    pub waiting: Task,
}

/// A piece of upkeep on the write connection; answers whether work remains.
pub type Task = Box<dyn Fn(&Connection) -> Result<bool> + Send>;

/// When upkeep runs next.
struct UpkeepState {
    upkeep: Upkeep,
    due: Instant,
}

impl UpkeepState {
    /// Whether the next commit runs a pass.
    fn is_due(&self) -> bool {
        Instant::now() >= self.due
    }

    /// Runs a pass inside the open transaction if one is due; a failing pass is
    /// rolled back alone and retried after `every`.
    fn maybe_run(&mut self, conn: &Connection) {
        if !self.is_due() {
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

pub(crate) trait WriteOp: Send {
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
        let Op { f, result, reply } = *self;
        // Before the answer: a caller sharing data with `f` then holds the only handle
        // to it when it wakes (appends take their items back this way, uncopied).
        drop(f);
        let out = match (commit, result) {
            (Ok(()), Some(r)) => r,
            (Err(_), Some(Err(own))) if own.is_client_error() => Err(own),
            (Err(e), _) => Err(Error::Storage(e.into())),
            (Ok(()), None) => Err(Error::Closed),
        };
        let _ = reply.send(out);
    }
}

enum Msg {
    Op(Box<dyn WriteOp>),
    /// The sync thread acknowledged the last committed group.
    Synced,
    Close(oneshot::Sender<()>),
}

/// The write connection, its upkeep schedule and, when commits do not sync
/// themselves, the sync thread. The writer thread uses it; so does a caller whose
/// write is the only one in flight (see [`Writer::write`]). `None` once the writer
/// has closed.
struct Core {
    conn: Connection,
    upkeep: UpkeepState,
    syncer: Option<Syncer>,
    /// The connection's busy timeout (how long BEGIN waits for another process).
    busy_timeout: Duration,
}

impl Core {
    /// Opens a group's transaction unless another process holds the write lock (then
    /// returns `None` at once instead of waiting out the busy timeout).
    fn begin_unless_busy(&self) -> Option<Open> {
        let _ = self.conn.busy_timeout(Duration::ZERO);
        let began = run_cached(&self.conn, "BEGIN IMMEDIATE").is_ok();
        let _ = self.conn.busy_timeout(self.busy_timeout);
        began.then(Open::fresh)
    }

    /// Acknowledges the writes of `group` after its commit: at once, or with a sync
    /// thread after the fsync that makes the commit durable, made on this thread when
    /// `wait` (a lone write gains nothing from a hand-off). Returns whether the sync
    /// thread took the group (it then sends [`Msg::Synced`]).
    fn acknowledge(
        &self,
        group: &mut Vec<Box<dyn WriteOp>>,
        committed: std::result::Result<bool, String>,
        wait: bool,
    ) -> bool {
        match (&self.syncer, committed) {
            (Some(s), Ok(true)) if wait => finish(group, s.sync_now()),
            (Some(s), Ok(true)) => {
                let next = Vec::with_capacity(group.capacity());
                return s.submit(std::mem::replace(group, next));
            }
            (_, outcome) => finish(group, outcome.map(drop)),
        }
        false
    }
}

/// Delivers each write's result once its group's fate is known.
pub(crate) fn finish(group: &mut Vec<Box<dyn WriteOp>>, outcome: std::result::Result<(), String>) {
    for op in group.drain(..) {
        op.finish(outcome.clone());
    }
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
    /// How long the last write committed on its caller's thread took, fsync included
    /// (µs; starts high, so the first one hands its thread's other tasks over).
    last_inline_us: AtomicU64,
    /// [`SHORT_INLINE`], or another bound in tests.
    short_inline: Duration,
    epoch: Instant,
}

/// A lone write that took at most this long last time commits on its async worker
/// without `block_in_place`. Handing the worker's other tasks to another thread and
/// back cost ~75 µs of CPU per lone HTTP append here, more than the write itself on
/// fast storage; a write this short holds up nothing. Slow storage, a busy database
/// or due upkeep sends the write through `block_in_place` again.
const SHORT_INLINE: Duration = Duration::from_micros(250);

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
    /// an earlier process is picked up with the first writes. With `durable`, writes
    /// are acknowledged after a sync thread syncs their commit (`conn` then commits
    /// without syncing, see [`crate::durable`]).
    pub fn start(conn: Connection, upkeep: Upkeep, durable: Option<Durable>) -> Writer {
        let (tx, rx) = mpsc::channel::<Msg>();
        let synced = tx.clone();
        let syncer = durable.map(|d| {
            Syncer::start(
                d,
                Box::new(move || {
                    let _ = synced.send(Msg::Synced);
                }),
            )
        });
        let busy_ms: u64 = conn
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap_or(0);
        let core: SharedCore = Arc::new(Mutex::new(Some(Core {
            conn,
            upkeep: UpkeepState {
                upkeep,
                due: Instant::now(),
            },
            syncer,
            busy_timeout: Duration::from_millis(busy_ms),
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
            last_inline_us: AtomicU64::new(u64::MAX),
            short_inline: SHORT_INLINE,
            epoch: Instant::now(),
        }
    }

    /// Runs `f` in the next group transaction and waits for the commit. `f` runs again
    /// (after a rollback of its earlier run) when its group is replayed, so it must
    /// depend only on what it captured and the database.
    ///
    /// A write that is the only one in flight, with no concurrent writes lately,
    /// commits on the caller's thread instead of the writer thread: handing it over
    /// and back costs two thread wake-ups, ~30 µs each on a virtual machine, which is
    /// as much as the write itself when fsync is fast. It runs in `block_in_place`
    /// unless the last such write was short (see [`SHORT_INLINE`]). Concurrent writes
    /// queue to the writer thread and share its group commits.
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
                    let last = &self.last_inline_us;
                    let short = last.load(Ordering::Relaxed)
                        <= self.short_inline.as_micros() as u64
                        && !core.upkeep.is_due();
                    // Never wait for another process's lock without block_in_place.
                    let open = short.then(|| core.begin_unless_busy()).flatten();
                    let here = open.is_some();
                    // Timed without the hand-off, which would otherwise keep every
                    // later write on the slow path.
                    let commit = move |core: &mut Core| {
                        let started = Instant::now();
                        let mut group = vec![op];
                        let outcome = commit_group(&core.conn, &mut group, open, &mut core.upkeep);
                        core.acknowledge(&mut group, outcome, true);
                        last.store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    };
                    if here {
                        commit(core);
                    } else {
                        tokio::task::block_in_place(|| commit(core));
                    }
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
        crate::join_thread(&self.thread).await;
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let (done, _rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Close(done));
    }
}

/// The writer thread. With a sync thread, a group's transaction stays open while the
/// previous group's fsync runs and takes in the writes that arrive meanwhile: it
/// commits when the sync thread is free again, so each fsync covers one large group
/// and the writer applies writes instead of waiting for the disk.
fn run(core: SharedCore, rx: mpsc::Receiver<Msg>) {
    let mut group: Vec<Box<dyn WriteOp>> = Vec::with_capacity(MAX_GROUP);
    let mut open: Option<Open> = None;
    let mut syncing = false;
    let mut closing: Option<oneshot::Sender<()>> = None;
    // Held while a transaction is open, so no caller commits on its own thread then.
    let mut guard: Option<MutexGuard<'_, Option<Core>>> = None;
    loop {
        if group.is_empty() || syncing {
            match rx.recv() {
                Ok(msg) => take(msg, &mut group, &mut syncing, &mut closing),
                Err(_) => break,
            }
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(msg) => take(msg, &mut group, &mut syncing, &mut closing),
                Err(_) => break,
            }
        }
        let stop = closing.is_some();
        if group.is_empty() {
            if stop {
                break;
            }
            continue;
        }
        let c = guard
            .get_or_insert_with(|| lock(&core))
            .as_mut()
            .expect("open until this thread closes it");
        if let Err(e) = apply_new(&c.conn, &mut group, &mut open) {
            open = None;
            let e = abandon(&c.conn, &group, e);
            finish(&mut group, Err(e));
            guard = None;
            continue;
        }
        if syncing && group.len() < MAX_GROUP && !stop {
            continue;
        }
        open = None;
        let outcome = commit_open(&c.conn, &group, &mut c.upkeep);
        syncing = c.acknowledge(&mut group, outcome, false);
        guard = None;
        if stop {
            break;
        }
    }
    // From here on callers queue rather than write on their own threads.
    let Some(mut core) = guard.unwrap_or_else(|| lock(&core)).take() else {
        return;
    };
    // Anything sent after Close still gets an answer.
    for msg in rx.try_iter() {
        match msg {
            Msg::Op(op) => group.push(op),
            Msg::Synced => {}
            Msg::Close(done) => {
                let _ = done.send(());
            }
        }
    }
    if !group.is_empty() {
        let outcome = commit_group(&core.conn, &mut group, open, &mut core.upkeep);
        core.acknowledge(&mut group, outcome, true);
    }
    core.upkeep.drain(&core.conn);
    let _ = core.conn.execute_batch("PRAGMA optimize");
    if let Some(s) = &core.syncer {
        let _ = s.sync_now();
    }
    // Closes the connection, then waits for the sync thread's last acknowledgements.
    drop(core);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Files a message for the writer loop.
fn take(
    msg: Msg,
    group: &mut Vec<Box<dyn WriteOp>>,
    syncing: &mut bool,
    closing: &mut Option<oneshot::Sender<()>>,
) {
    match msg {
        Msg::Op(op) => group.push(op),
        Msg::Synced => *syncing = false,
        Msg::Close(done) => *closing = Some(done),
    }
}

/// Runs a statement without results through the statement cache: transaction
/// control runs several times per group, and parsing it each time showed in profiles.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Applies what `group` has not applied yet (in its `open` transaction, or a new
/// one) and commits what it changed, leaving its writes unanswered; returns whether a
/// COMMIT was made (not when every write failed).
fn commit_group(
    conn: &Connection,
    group: &mut Vec<Box<dyn WriteOp>>,
    mut open: Option<Open>,
    upkeep: &mut UpkeepState,
) -> std::result::Result<bool, String> {
    match apply_new(conn, group, &mut open) {
        Ok(()) => commit_open(conn, group, upkeep),
        Err(e) => Err(abandon(conn, group, e)),
    }
}

/// The open transaction of a group being applied.
struct Open {
    /// Writes of the group already applied in it.
    applied: usize,
    /// Whether each write runs in a savepoint (after a replay).
    isolate: bool,
}

impl Open {
    /// A transaction just begun, nothing applied, writes not isolated.
    fn fresh() -> Open {
        Open {
            applied: 0,
            isolate: false,
        }
    }
}

/// Applies the writes of `group` not yet applied, opening the group's transaction
/// first if `open` is `None`, and leaves it open. A write that fails after changing
/// rows (or whose error ended the transaction) keeps its error and is left out of a
/// replay of the others from the start; a replay isolates each write in a
/// savepoint, so it never needs another.
fn apply_new(
    conn: &Connection,
    group: &mut [Box<dyn WriteOp>],
    open: &mut Option<Open>,
) -> std::result::Result<(), String> {
    let mut st = match open.take() {
        Some(st) => st,
        None => {
            begin(conn)?;
            Open::fresh()
        }
    };
    'replay: loop {
        for op in group[st.applied..].iter_mut() {
            st.applied += 1;
            if st.isolate && op.failed() {
                continue;
            }
            let before = conn.total_changes();
            op.apply(conn, st.isolate);
            // SQLite ends the transaction itself on some errors (disk full, I/O).
            let ended = conn.is_autocommit();
            if ended && (st.isolate || !op.failed()) {
                return Err("the group's transaction ended early".into());
            }
            if op.failed() && !st.isolate && (ended || conn.total_changes() != before) {
                if !ended {
                    run_cached(conn, "ROLLBACK").map_err(|e| e.to_string())?;
                }
                begin(conn)?;
                st = Open {
                    applied: 0,
                    isolate: true,
                };
                continue 'replay;
            }
        }
        *open = Some(st);
        return Ok(());
    }
}

/// Commits the open transaction of `group`, applied in full; rolls it back when
/// every write failed. Returns whether a COMMIT was made.
fn commit_open(
    conn: &Connection,
    group: &[Box<dyn WriteOp>],
    upkeep: &mut UpkeepState,
) -> std::result::Result<bool, String> {
    let outcome = if group.iter().all(|op| op.failed()) {
        // Nothing to keep: no commit, no fsync.
        run_cached(conn, "ROLLBACK")
            .map(|()| false)
            .map_err(|e| e.to_string())
    } else {
        upkeep.maybe_run(conn);
        run_cached(conn, "COMMIT").map(|()| true).map_err(|e| {
            rollback_open(conn);
            e.to_string()
        })
    };
    if let Err(e) = &outcome {
        tracing::error!(error = %e, writes = group.len(), "a group commit failed");
    }
    outcome
}

fn rollback_open(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

/// Rolls back a group whose transaction could not be opened or applied; returns the
/// error its writes get.
fn abandon(conn: &Connection, group: &[Box<dyn WriteOp>], e: String) -> String {
    rollback_open(conn);
    tracing::error!(error = %e, writes = group.len(), "a group commit failed");
    e
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
                pass: Box::new(nothing),
                drain: Box::new(nothing),
                waiting: Box::new(nothing),
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
        let outcome = commit_group(conn, &mut group, None, &mut upkeep());
        finish(&mut group, outcome.map(drop));
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
    fn a_write_lets_go_of_its_closure_before_it_answers() {
        // Appends share their items with the closure and take them back uncopied when
        // the answer arrives, which needs the closure gone by then.
        type Answer = oneshot::Receiver<Result<()>>;
        struct Guard(Arc<Mutex<Answer>>, Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Guard {
            fn drop(&mut self) {
                let answered = self.0.lock().unwrap().try_recv().is_ok();
                self.1.store(answered, Ordering::SeqCst);
            }
        }
        let (reply, rx) = oneshot::channel();
        let rx = Arc::new(Mutex::new(rx));
        let answered_first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let guard = Guard(rx.clone(), answered_first.clone());
        let op: Box<dyn WriteOp> = Box::new(Op {
            f: move |_: &Connection| {
                let _ = &guard;
                Ok(())
            },
            result: Some(Ok(())),
            reply,
        });
        op.finish(Ok(()));
        assert!(!answered_first.load(Ordering::SeqCst));
        assert!(rx.lock().unwrap().try_recv().unwrap().is_ok());
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

    fn no_upkeep() -> Upkeep {
        upkeep().upkeep
    }

    #[test]
    fn a_lone_write_never_holds_its_worker_while_another_process_has_the_lock() {
        // One async worker: whatever blocks it stops every other task.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (dir, conn) = open();
        let mut writer = Writer::start(conn, no_upkeep(), None);
        // Every lone write counts as short, however slow this machine's disk.
        writer.short_inline = Duration::from_secs(60);
        let writer = Arc::new(writer);
        let insert = |w: &Arc<Writer>, v: &'static str| {
            let w = w.clone();
            tokio::spawn(async move {
                w.write(move |c| {
                    c.execute("INSERT INTO t (v) VALUES (?1)", [v])
                        .map(drop)
                        .map_err(sql_err)
                })
                .await
            })
        };
        rt.block_on(async {
            // Past the quiet period, then a lone write that commits on its worker.
            tokio::time::sleep(QUIET_BEFORE_INLINE * 2).await;
            insert(&writer, "a").await.unwrap().unwrap();
            // Another process takes the write lock and keeps it until the ticker below
            // has ticked ten times (or 4 s, within the connection's 5 s busy timeout,
            // have passed): the write waits for the lock all that while, and the
            // ticker can only tick if the write leaves their one worker free.
            let other = Connection::open(dir.path().join("w.db")).unwrap();
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            let ticks = Arc::new(AtomicU32::new(0));
            let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let holder = {
                let (ticks, released) = (ticks.clone(), released.clone());
                std::thread::spawn(move || {
                    let give_up = Instant::now() + Duration::from_secs(4);
                    while ticks.load(Ordering::SeqCst) < 10 && Instant::now() < give_up {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    released.store(true, Ordering::SeqCst);
                    other.execute_batch("COMMIT").unwrap();
                })
            };
            let ticker = {
                let ticks = ticks.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        ticks.fetch_add(1, Ordering::SeqCst);
                    }
                })
            };
            insert(&writer, "b").await.unwrap().unwrap();
            assert!(
                released.load(Ordering::SeqCst),
                "the write finished while another process held the lock"
            );
            ticker.abort();
            holder.join().unwrap();
            let n = ticks.load(Ordering::SeqCst);
            assert!(
                n >= 10,
                "only {n} ticks while the write waited: it held the worker"
            );
        });
        let check = Connection::open(dir.path().join("w.db")).unwrap();
        assert_eq!(stored(&check), ["a", "b"]);
    }

    fn insert_row(c: &Connection) -> Result<i64> {
        c.execute("INSERT INTO n DEFAULT VALUES", [])
            .map_err(sql_err)?;
        Ok(c.last_insert_rowid())
    }

    fn open_counter() -> (tempfile::TempDir, Connection) {
        let (dir, conn) = open();
        conn.execute_batch("CREATE TABLE n (k INTEGER PRIMARY KEY)")
            .unwrap();
        (dir, conn)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_acknowledged_only_after_a_sync_covers_them() {
        let (dir, conn) = open_counter();
        // The stand-in fsync notes the newest committed row before its pause: that is
        // what a real fsync starting then makes durable.
        let reader = Mutex::new(Connection::open(dir.path().join("w.db")).unwrap());
        let covered = Arc::new(AtomicU64::new(0));
        let syncs = Arc::new(AtomicU32::new(0));
        let (cov, n) = (covered.clone(), syncs.clone());
        let durable = Durable::new(Box::new(move || {
            let newest: i64 = reader
                .lock()
                .unwrap()
                .query_row("SELECT coalesce(max(k), 0) FROM n", [], |r| r.get(0))
                .unwrap();
            std::thread::sleep(Duration::from_millis(2));
            cov.fetch_max(newest as u64, Ordering::SeqCst);
            n.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }));
        let writer = Arc::new(Writer::start(conn, no_upkeep(), Some(durable)));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (w, covered) = (writer.clone(), covered.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let k = w.write(insert_row).await.unwrap() as u64;
                    let c = covered.load(Ordering::SeqCst);
                    assert!(c >= k, "row {k} acknowledged when syncs covered {c}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let syncs = syncs.load(Ordering::SeqCst);
        assert!(
            (1..320).contains(&syncs),
            "{syncs} syncs for 640 concurrent writes"
        );
        writer.close().await;
    }

    #[tokio::test]
    async fn after_a_failed_sync_every_write_fails() {
        let (_dir, conn) = open_counter();
        let tries = Arc::new(AtomicU32::new(0));
        let t = tries.clone();
        let durable = Durable::new(Box::new(move || {
            t.fetch_add(1, Ordering::SeqCst);
            Err(std::io::Error::other("the disk went away"))
        }));
        let writer = Writer::start(conn, no_upkeep(), Some(durable));
        for _ in 0..2 {
            let e = writer.write(insert_row).await.unwrap_err();
            assert!(matches!(e, Error::Storage(_)), "{e:?}");
            assert!(e.to_string().contains("durable"), "{e}");
        }
        // The second write was refused without trusting a later fsync.
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        writer.close().await;
    }
}
