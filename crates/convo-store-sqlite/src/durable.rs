//! Acknowledging writes after an fsync made off the writer thread (pipelined group
//! commit).
//!
//! At `synchronous=FULL`, SQLite fsyncs the WAL inside each COMMIT, and the writer
//! thread applies nothing while it waits (under 64 connections appending over HTTP,
//! the writer thread was ~97% busy at FULL and ~70% at NORMAL, at the same rate).
//! Instead, with
//! [`Durability::Full`](crate::Durability::Full) the write connection commits at
//! `synchronous=NORMAL` (the WAL is written, not synced) and hands the group's writes
//! to a sync thread, which fsyncs the WAL file and only then acknowledges them, while
//! the writer applies the next group. One fsync covers every group committed before
//! it, as PostgreSQL's WAL flush does.
//!
//! What holds: a write is acknowledged only after an fsync of the WAL holding its
//! commit, so acknowledged writes survive power loss as at FULL (at NORMAL a
//! checkpoint syncs the WAL before copying it, and the database before the log starts
//! over). What differs: a committed write is visible to readers for about one fsync
//! before its writer hears of it. After a failed fsync every later write fails: the
//! kernel may have dropped pages it could not write, so nothing later can be promised.

use std::fs::File;
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::JoinHandle;

use crate::writer::{WriteOp, finish};

/// Makes what was written to the WAL so far durable.
pub(crate) type SyncFn = Box<dyn Fn() -> std::io::Result<()> + Send + Sync>;

/// The WAL's fsync, failing for good after its first failure.
pub(crate) struct Durable {
    sync: SyncFn,
    failed: OnceLock<String>,
}

impl Durable {
    pub(crate) fn new(sync: SyncFn) -> Durable {
        Durable {
            sync,
            failed: OnceLock::new(),
        }
    }

    /// fsyncs of the WAL that `conn` writes to (SQLite names the file; it exists
    /// once the connection has read the database in WAL mode). `None` if it cannot be
    /// opened: the connection then keeps syncing in its commits.
    pub(crate) fn for_wal_of(conn: &rusqlite::Connection) -> Option<Durable> {
        let path = crate::wal_file::wal_path(conn)?;
        let wal = File::open(&path)
            .inspect_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot open the WAL to sync it; commits sync inline"))
            .ok()?;
        // The WAL's directory entry must be durable too; SQLite syncs it at the first
        // sync of a new WAL, which at NORMAL may come late.
        if let Some(dir) = path.parent().and_then(|d| File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Some(Durable::new(Box::new(move || wal.sync_data())))
    }

    /// Syncs, or repeats the first failure.
    pub(crate) fn sync(&self) -> Result<(), String> {
        if let Some(e) = self.failed.get() {
            return Err(e.clone());
        }
        (self.sync)().map_err(|e| {
            let msg = format!(
                "could not make the write durable (fsync of the write-ahead log failed: {e}); \
                 the store accepts no more writes until it is reopened"
            );
            self.failed.get_or_init(|| msg).clone()
        })
    }
}

/// The sync thread: acknowledges committed groups after the fsync that follows them.
pub(crate) struct Syncer {
    durable: Arc<Durable>,
    groups: Option<mpsc::Sender<Vec<Box<dyn WriteOp>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread; it calls `synced` after acknowledging what it was given.
    pub(crate) fn start(durable: Durable, synced: Box<dyn Fn() + Send>) -> Syncer {
        let durable = Arc::new(durable);
        let (groups, rx) = mpsc::channel::<Vec<Box<dyn WriteOp>>>();
        let d = durable.clone();
        let thread = std::thread::Builder::new()
            .name("convo-sqlite-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // Everything committed before this fsync starts is covered by it.
                    let mut ready = vec![first];
                    ready.extend(rx.try_iter());
                    let outcome = d.sync();
                    for mut group in ready {
                        finish(&mut group, outcome.clone());
                    }
                    synced();
                }
            })
            .expect("spawn the sync thread");
        Syncer {
            durable,
            groups: Some(groups),
            thread: Some(thread),
        }
    }

    /// Acknowledges `group` (committed) after the next fsync; returns whether the
    /// thread took it (if it is gone, this syncs and acknowledges here).
    pub(crate) fn submit(&self, group: Vec<Box<dyn WriteOp>>) -> bool {
        let Some(groups) = &self.groups else {
            return false;
        };
        match groups.send(group) {
            Ok(()) => true,
            Err(mpsc::SendError(mut group)) => {
                finish(&mut group, self.durable.sync());
                false
            }
        }
    }

    /// Syncs on the calling thread.
    pub(crate) fn sync_now(&self) -> Result<(), String> {
        self.durable.sync()
    }
}

impl Drop for Syncer {
    /// Acknowledges everything submitted, then stops the thread.
    fn drop(&mut self) {
        self.groups = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
