//! Copies the write-ahead log into the database file on a thread of its own, so the
//! writer's checkpoints find little left to copy.
//!
//! The writer checkpoints inside the COMMIT of the group that takes the log past
//! [`crate::wal_file::CHECKPOINT_PAGES`] pages, and every write queued behind it waits
//! for the copy and the database file's fsync. That fsync also waits for every other
//! dirty page of the file: after a copy, a restore or a bulk import of a large
//! database, hundreds of megabytes. On a freshly copied database of a million items,
//! appends at 16 connections had a p99 of 654-674 ms and a max of ~750 ms
//! (`scripts/erase-under-load.sh` without its `sync`). This thread runs a `PASSIVE`
//! checkpoint every [`EVERY`] beside the writer, so that fsync happens here: a passive
//! checkpoint takes no lock the writer needs and leaves out pages a reader may still
//! need. The same load then had a p99 of 44-68 ms and a max of ~155 ms. Once the file
//! is clean, both ways measure the same (p99 8-11 ms on that host).
//!
//! The writer's own checkpoint still runs at the threshold, and is still needed: SQLite
//! starts the log over only at a write transaction that begins after a checkpoint
//! copied all of it, which under steady writes only the writer's can. It now copies
//! only what arrived since this thread's last pass.

use rusqlite::Connection;
use std::sync::{Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread copies the log.
const EVERY: Duration = Duration::from_millis(100);

/// The checkpoint thread; dropping it stops the thread.
pub(crate) struct Checkpointer {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts checkpointing the database of `conn` (a connection of its own).
    pub(crate) fn start(conn: Connection) -> Checkpointer {
        let (stop, stopped) = mpsc::channel::<()>();
        // A pass that waits for a lock waits at most until the next one was due.
        let _ = conn.busy_timeout(EVERY);
        let thread = std::thread::Builder::new()
            .name("convo-sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "a background checkpoint failed; the writer's go on");
                    }
                }
            })
            .expect("spawn the checkpoint thread");
        Checkpointer {
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Stops the thread and closes its connection: before the writer's, so that the
    /// writer's is the last to close (it copies the whole log and removes it).
    pub(crate) async fn close(&self) {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        crate::join_thread(&self.thread).await;
    }
}
