//! A pool of read-only connections. In WAL mode readers never wait on the writer.
//!
//! Most reads run on the caller's thread: a point lookup, a page of a listing or a
//! conversation's items take about as long as serializing their answer, which the
//! caller does on its thread anyway. Handing such a read to the blocking pool cost more
//! than the read: two thread wake-ups, and every string of the answer allocated on a
//! pool thread and freed on an async worker (mimalloc then collects the frees across
//! threads). For a 100-item history over HTTP at 64 connections that was half the
//! server's CPU per request (~200 µs against ~95 µs read in place, `wrk -t2 -c64` on
//! two vCPUs). Reads whose work grows with the whole database (search, counts, every
//! user, job listings, long audit trails) still go to the blocking pool, so they cannot
//! stall an async worker. The price: a read that must wait for a lock another process
//! holds (SQLite's recovery of a WAL after a crash, a schema change) waits on the
//! caller's thread, up to the busy timeout; in WAL mode ordinary writes never make a
//! reader wait.

use convo_core::{Error, Result};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Read connections, each used by one read at a time.
pub struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
    /// Connections in the pool, idle or not.
    size: u32,
}

impl Readers {
    /// A pool over these connections.
    pub fn new(conns: Vec<Connection>) -> Readers {
        Readers {
            permits: Arc::new(Semaphore::new(conns.len())),
            size: conns.len() as u32,
            idle: Arc::new(Mutex::new(conns)),
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)
    }

    /// Runs `f` on a free connection, on the caller's thread: for reads bounded by a
    /// page size or by one conversation.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let permit = self.permit().await?;
        with_connection(&self.idle, permit, f)
    }

    /// Runs `f` on a free connection on the blocking pool: for reads whose work grows
    /// with the database.
    pub async fn read_offloaded<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self.permit().await?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || with_connection(&idle, permit, f))
            .await
            .map_err(|e| Error::storage(std::io::Error::other(e.to_string())))?
    }

    /// Closes every connection once the reads in progress, and those already
    /// waiting for a connection, have finished; reads asked for after that get
    /// [`Error::Closed`].
    pub async fn close(&self) {
        // Every permit, so no connection is out; the semaphore is fair, so reads asked
        // for later queue behind this and are refused when it closes.
        let all = self.permits.acquire_many(self.size).await;
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.permits.close();
        drop(all);
    }
}

/// Runs `f` on an idle connection, which `permit` guarantees; the connection goes back
/// to the pool before the permit is released.
fn with_connection<T>(
    idle: &Mutex<Vec<Connection>>,
    permit: OwnedSemaphorePermit,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let conn = idle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .ok_or(Error::Closed)?;
    let out = f(&conn);
    idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
    drop(permit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn pool(n: usize) -> Readers {
        Readers::new(
            (0..n)
                .map(|_| Connection::open_in_memory().unwrap())
                .collect(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bounded_reads_run_in_place_and_heavy_ones_on_the_blocking_pool() {
        let readers = pool(2);
        let here = thread::current().id();
        let inline = readers.read(|_| Ok(thread::current().id())).await.unwrap();
        assert_eq!(inline, here);
        let offloaded = readers
            .read_offloaded(|_| Ok(thread::current().id()))
            .await
            .unwrap();
        assert_ne!(offloaded, here);
    }

    /// Starts an offloaded read that holds its connection until the returned sender
    /// is signalled (then answers 1), and waits until it holds it.
    async fn held_read(
        readers: &Arc<Readers>,
    ) -> (
        tokio::task::JoinHandle<Result<i64>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let read = {
            let readers = readers.clone();
            tokio::spawn(async move {
                readers
                    .read_offloaded(move |c| {
                        started_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                            .map_err(crate::sql_err)
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        (read, release_tx)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_waits_for_a_busy_connection_and_every_connection_comes_back() {
        let readers = Arc::new(pool(1));
        let (heavy, release_tx) = held_read(&readers).await;
        let waiting = {
            let readers = readers.clone();
            tokio::spawn(async move {
                readers
                    .read(|c| {
                        c.query_row("SELECT 2", [], |r| r.get::<_, i64>(0))
                            .map_err(crate::sql_err)
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the only connection was busy");
        release_tx.send(()).unwrap();
        assert_eq!(heavy.await.unwrap().unwrap(), 1);
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        assert_eq!(readers.idle.lock().unwrap().len(), 1);
        readers.close().await;
        assert!(matches!(readers.read(|_| Ok(())).await, Err(Error::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_waits_for_the_read_in_progress_then_drops_every_connection() {
        let readers = Arc::new(pool(2));
        let (reading, release_tx) = held_read(&readers).await;
        let closing = {
            let readers = readers.clone();
            tokio::spawn(async move { readers.close().await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!closing.is_finished(), "a read still holds a connection");
        release_tx.send(()).unwrap();
        reading.await.unwrap().unwrap();
        closing.await.unwrap();
        assert!(
            readers.idle.lock().unwrap().is_empty(),
            "every connection dropped"
        );
        assert!(matches!(readers.read(|_| Ok(())).await, Err(Error::Closed)));
    }
}
