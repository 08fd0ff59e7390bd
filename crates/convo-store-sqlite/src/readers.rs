//! A pool of read-only connections. In WAL mode readers never wait on the writer.

use convo_core::{Error, Result};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Read connections, each used by one blocking task at a time.
pub struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// A pool over these connections.
    pub fn new(conns: Vec<Connection>) -> Readers {
        Readers {
            permits: Arc::new(Semaphore::new(conns.len())),
            idle: Arc::new(Mutex::new(conns)),
        }
    }

    /// Runs `f` on a free connection, off the async workers.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Closed)?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let conn = idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .ok_or(Error::Closed)?;
            let out = f(&conn);
            idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::storage(std::io::Error::other(e.to_string())))?
    }

    /// Closes every connection.
    pub fn close(&self) {
        self.permits.close();
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
