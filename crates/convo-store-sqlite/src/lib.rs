//! convo's [`Store`] on SQLite: one embedded file, zero set-up.
//!
//! One writer thread owns the only write connection and commits queued writes in
//! groups (each acknowledged after the fsync that follows the shared COMMIT, made by
//! a sync thread while the next group is applied; a write that fails is undone
//! alone), so concurrent writers share an fsync. A pool of read-only connections
//! serves reads; in WAL mode they never wait on the writer. Schema migrations run on
//! open. Full-text search uses FTS5 in a file of its own beside the database, kept up
//! to date by an indexer thread (see `search_file`).

mod checkpointer;
mod conversations;
mod durable;
mod items;
mod jobs;
mod profiles;
mod readers;
mod rows;
mod schema;
mod search;
mod search_file;
mod users;
mod wal_file;
mod writer;

use async_trait::async_trait;
use convo_core::{
    ApiKey, AuditEntry, ChangeSource, Conversation, ConversationPatch, ConversationQuery,
    DeleteReceipt, ErasureReceipt, Error, Item, ItemQuery, Job, JobCounts, JobKind, JobOutcome,
    JobQuery, Page, PreparedConversation, PreparedItem, Profile, ProfileOp, Result,
    SaveConversation, SaveOutcome, SearchHit, SearchQuery, Store, Timestamp, UserId,
};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use schema::LATEST as SCHEMA_VERSION;

/// How durable a commit is (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A write is acknowledged only after an fsync of the WAL holding its commit: it
    /// survives power loss (default). The fsync runs on a sync thread while the writer
    /// applies the next group, so a commit can be visible to readers about one fsync
    /// before it is acknowledged.
    #[default]
    Full,
    /// fsync at checkpoints: survives a process crash, may lose the newest commits on
    /// power loss.
    Normal,
}

/// Options for opening a SQLite store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Commit durability.
    pub durability: Durability,
    /// Read connections (default 4).
    pub readers: usize,
    /// How long a connection waits for another process's lock (default 5 s).
    pub busy_timeout: Duration,
    /// Write the write-ahead log out at its full length (~36 MB of zeros, ~25 ms)
    /// when the store opens, so commits overwrite blocks instead of growing the file
    /// (default true; see `wal_file`). Worth it for a process that keeps the store
    /// open; a command that writes once and exits can skip it.
    pub preallocate_wal: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            preallocate_wal: true,
        }
    }
}

/// A conversation store in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    writer: writer::Writer,
    readers: readers::Readers,
    indexer: search_file::Indexer,
    /// `None` for a database without a log file (in memory).
    checkpointer: Option<checkpointer::Checkpointer>,
    closed: AtomicBool,
}

/// How often the writer clears the deletion log the search index has replayed.
const CLEAR_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Maps a rusqlite error to convo's storage error.
pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    Error::storage(e)
}

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout).map_err(sql_err)?;
    let sync = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync}; PRAGMA temp_store = MEMORY;"
    ))
    .map_err(sql_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Opens (creating if needed) the database at `path` for writing, in WAL mode.
pub(crate) fn open_wal(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sql_err)?;
    conn.busy_timeout(busy_timeout).map_err(sql_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::storage(std::io::Error::other(format!(
            "could not switch {} to WAL mode (got {mode})",
            path.display()
        ))));
    }
    Ok(conn)
}

/// How long the scrub after an erasure waits for the writer's transaction in flight
/// and for readers still using the log. The writer waits for the scrub at most this
/// long plus the copy, well within its own busy timeout (5 s by default).
const SCRUB_WAIT: Duration = Duration::from_secs(1);

/// How long an erasure waits for the search index's rewrite before it returns and
/// leaves the rewrite to finish in the background (a store opened on a large legacy
/// database may still be building its index).
const PURGE_WAIT: Duration = Duration::from_secs(30);

/// Copies the whole log of `conn`'s database into the database file and empties the
/// log (SQLite's `TRUNCATE` checkpoint), so no frame keeps a page that later commits
/// overwrote. It waits (the connection's busy timeout) for the writer's transaction in
/// flight, then holds writes back while it copies and while readers still use the log.
pub(crate) fn empty_log(conn: &Connection) -> Result<()> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(sql_err)?;
    if busy != 0 {
        return Err(Error::storage(std::io::Error::other(
            "the writer or readers kept using the log",
        )));
    }
    Ok(())
}

/// After an erasure, on a connection of its own: empties the store's log
/// ([`empty_log`]), then writes its zeros again ([`preallocate_wal`]). Another
/// checkpoint in progress (the checkpoint thread's) makes SQLite give up at once, so
/// it tries again for [`SCRUB_WAIT`]. If the log stays busy, copies what it can instead
/// ([`copy_log`]): the database file then holds the zeroed pages, and the log its old
/// frames until it comes round or the store closes.
fn scrub(path: &Path) -> Result<()> {
    let conn = Connection::open(path).map_err(sql_err)?;
    conn.busy_timeout(SCRUB_WAIT).map_err(sql_err)?;
    let deadline = std::time::Instant::now() + SCRUB_WAIT;
    loop {
        match empty_log(&conn) {
            Ok(()) => {
                preallocate_wal(&conn);
                return Ok(());
            }
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not empty the log after an erasure; copying it instead");
                return copy_log(&conn);
            }
        }
    }
}

/// Copies every page the log held when called into the database file without holding
/// up the writer: SQLite's `PASSIVE` checkpoint, which stops at pages an older reader
/// may still need and does not run while another checkpoint does, tried again every
/// 10 ms for up to a second until it has copied them. Later commits are left to the
/// next checkpoint.
fn copy_log(conn: &Connection) -> Result<()> {
    let mut target = None;
    for _ in 0..100 {
        let (busy, log, copied): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(sql_err)?;
        // Busy (another connection checkpoints), the counts are -1.
        if busy == 0 && log >= 0 {
            let want = *target.get_or_insert(log);
            // A shorter log started over, which SQLite does only after copying all of it.
            if copied >= want || log < want {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(Error::storage(std::io::Error::other(
        "readers or another checkpoint held the checkpoint back for a second",
    )))
}

/// Waits, off the async workers, for a store thread that was told to stop.
pub(crate) async fn join_thread(thread: &std::sync::Mutex<Option<std::thread::JoinHandle<()>>>) {
    let handle = thread.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(h) = handle {
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }
}

/// The writer's upkeep: clear the entries of the store's deletion log that the search
/// index has replayed.
fn clear_replayed_log(indexer: &search_file::Indexer) -> writer::Upkeep {
    let cleared = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let replayed = indexer.replayed();
    let waiting = {
        let (cleared, replayed) = (cleared.clone(), replayed.clone());
        move |_: &Connection| Ok(replayed.load(Ordering::Acquire) > cleared.load(Ordering::Acquire))
    };
    let clear = move |c: &Connection| {
        let through = replayed.load(Ordering::Acquire);
        if through > cleared.load(Ordering::Acquire) {
            search_file::clear_unindex_log(c, through)?;
            cleared.store(through, Ordering::Release);
        }
        Ok(false)
    };
    let clear = Arc::new(clear);
    let again = clear.clone();
    writer::Upkeep {
        every: CLEAR_EVERY,
        pass: Box::new(move |c| clear(c)),
        drain: Box::new(move |c| again(c)),
        waiting: Box::new(waiting),
    }
}

/// Preallocates the log of `conn`'s database; a failure (a full disk) costs only
/// speed, so it is logged, not returned.
fn preallocate_wal(conn: &Connection) {
    let Some(wal) = wal_file::wal_path(conn) else {
        return;
    };
    let page_size = conn
        .pragma_query_value(None, "page_size", |r| r.get::<_, u64>(0))
        .unwrap_or(4096);
    match wal_file::preallocate(&wal, page_size) {
        Ok(0) => {}
        Ok(bytes) => tracing::debug!(path = %wal.display(), bytes, "preallocated the WAL"),
        Err(e) => {
            tracing::warn!(path = %wal.display(), error = %e, "could not preallocate the WAL; commits will grow it")
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema.
    /// A database written by a newer convo is refused with [`Error::SchemaTooNew`].
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&p, options))
            .await
            .map_err(|e| Error::storage(std::io::Error::other(e.to_string())))?
    }

    fn open_blocking(path: &Path, options: SqliteOptions) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(Error::storage)?;
        }
        let mut conn = open_wal(path, options.busy_timeout)?;
        configure(&conn, &options)?;
        // Deleted rows are overwritten with zeros, and so are the pages they free: without
        // it an erased user's text stays in the file's free space until reused.
        conn.execute_batch("PRAGMA secure_delete = ON")
            .map_err(sql_err)?;
        schema::migrate(&mut conn)?;
        wal_file::set_checkpoint_threshold(&conn).map_err(sql_err)?;
        if options.preallocate_wal {
            preallocate_wal(&conn);
        }
        let index_path = search_file::path_for(path);
        let index_path = index_path.to_str().ok_or_else(|| {
            Error::storage(std::io::Error::other(format!(
                "the database path {} is not UTF-8",
                path.display()
            )))
        })?;
        let indexer = search_file::Indexer::start(search_file::open(path, options.busy_timeout)?);
        let mut readers = Vec::with_capacity(options.readers.max(1));
        for _ in 0..options.readers.max(1) {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(sql_err)?;
            configure(&r, &options)?;
            r.execute_batch("PRAGMA query_only = ON").map_err(sql_err)?;
            r.execute("ATTACH DATABASE ?1 AS search", [index_path])
                .map_err(sql_err)?;
            readers.push(r);
        }
        // At full durability the sync thread fsyncs each commit (see `durable`), so
        // the write connection's own COMMITs need not wait for it.
        let durable = match options.durability {
            Durability::Full => durable::Durable::for_wal_of(&conn),
            Durability::Normal => None,
        };
        if durable.is_some() {
            conn.execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(sql_err)?;
        }
        let checkpointer = match wal_file::wal_path(&conn) {
            Some(_) => {
                let c = Connection::open(path).map_err(sql_err)?;
                configure(&c, &options)?;
                Some(checkpointer::Checkpointer::start(c))
            }
            None => None,
        };
        tracing::debug!(path = %path.display(), "opened the SQLite store");
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: writer::Writer::start(conn, clear_replayed_log(&indexer), durable),
            readers: readers::Readers::new(readers),
            indexer,
            checkpointer,
            closed: AtomicBool::new(false),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// A read bounded by a page size or by one conversation, on the caller's thread
    /// (see [`readers`]).
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        self.check_open()?;
        self.readers.read(f).await
    }

    /// A read whose work grows with the database, on the blocking pool.
    async fn read_offloaded<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.check_open()?;
        self.readers.read_offloaded(f).await
    }

    /// [`Self::write`] of a write that stores `items`: the writer reads them where the
    /// request allocated them, and they come back with `f`'s answer, uncopied (the
    /// writer lets go of its handle before it answers: `writer::Op::finish`).
    async fn write_items<T, F>(
        &self,
        items: Vec<PreparedItem>,
        mut f: F,
    ) -> Result<(Vec<PreparedItem>, T)>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &[PreparedItem]) -> Result<T> + Send + 'static,
    {
        let items = Arc::new(items);
        let shared = items.clone();
        let out = self.write(move |c| f(c, &shared)).await?;
        let items = Arc::try_unwrap(items).unwrap_or_else(|still| (*still).clone());
        Ok((items, out))
    }

    /// Runs `f` in the writer's next group commit. `f` may run more than once: a group
    /// is replayed when another write in it fails after changing rows.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T> + Send + 'static,
    {
        self.check_open()?;
        self.writer.write(f).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_conversation(
        &self,
        conversation: PreparedConversation,
        items: Vec<PreparedItem>,
    ) -> Result<(Conversation, Vec<Item>)> {
        let (items, (conversation, placed)) = self
            .write_items(items, move |c, items| {
                conversations::create(c, &conversation, items)
            })
            .await?;
        let items = items::assemble(items, placed, &conversation.id);
        Ok((conversation, items))
    }

    async fn get_conversation(&self, user: &UserId, id: &str) -> Result<Conversation> {
        self.read(|c| rows::get_conversation(c, user, id)).await
    }

    async fn list_conversations(
        &self,
        user: &UserId,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>> {
        self.read(|c| conversations::list(c, user, query)).await
    }

    async fn update_conversation(
        &self,
        user: &UserId,
        id: &str,
        patch: ConversationPatch,
    ) -> Result<Conversation> {
        let (user, id) = (user.clone(), id.to_string());
        self.write(move |c| conversations::update(c, &user, &id, patch.clone()))
            .await
    }

    async fn delete_conversation(&self, user: &UserId, id: &str) -> Result<DeleteReceipt> {
        let (user, id) = (user.clone(), id.to_string());
        self.write(move |c| conversations::delete(c, &user, &id))
            .await
    }

    async fn save_conversation(&self, save: SaveConversation) -> Result<SaveOutcome> {
        self.write(move |c| conversations::save(c, &save)).await
    }

    async fn import_conversation(
        &self,
        conversation: PreparedConversation,
        items: Vec<PreparedItem>,
        replace: bool,
    ) -> Result<Option<bool>> {
        self.write_items(items, move |c, items| {
            conversations::import(c, &conversation, items, replace)
        })
        .await
        .map(|(_, imported)| imported)
    }

    async fn append_items(
        &self,
        user: &UserId,
        conversation_id: &str,
        new_items: Vec<PreparedItem>,
        create: Option<PreparedConversation>,
    ) -> Result<Vec<Item>> {
        let (user, id) = (user.clone(), conversation_id.to_string());
        let (new_items, placed) = self
            .write_items(new_items, move |c, items| {
                items::append(c, &user, &id, items, create.as_ref())
            })
            .await?;
        Ok(items::assemble(new_items, placed, conversation_id))
    }

    async fn list_items(
        &self,
        user: &UserId,
        conversation_id: &str,
        query: &ItemQuery,
    ) -> Result<Page<Item>> {
        self.read(|c| items::list(c, user, conversation_id, query))
            .await
    }

    async fn all_items(&self, user: &UserId, conversation_id: &str) -> Result<Vec<Item>> {
        self.read(|c| items::all(c, user, conversation_id)).await
    }

    async fn get_item(&self, user: &UserId, conversation_id: &str, item_id: &str) -> Result<Item> {
        self.read(|c| items::get(c, user, conversation_id, item_id))
            .await
    }

    async fn delete_item(&self, user: &UserId, conversation_id: &str, item_id: &str) -> Result<()> {
        let (user, id, item) = (
            user.clone(),
            conversation_id.to_string(),
            item_id.to_string(),
        );
        self.write(move |c| items::delete(c, &user, &id, &item))
            .await
    }

    async fn search(&self, user: &UserId, query: &SearchQuery) -> Result<Vec<SearchHit>> {
        self.check_open()?;
        let (u, q) = (user.clone(), query.clone());
        if let Some(hits) = self
            .read_offloaded(move |c| search::search_if_indexed(c, &u, &q))
            .await?
        {
            return Ok(hits);
        }
        // Messages or deletions acknowledged before this search wait for the index.
        self.indexer.catch_up().await?;
        let (user, query) = (user.clone(), query.clone());
        self.read_offloaded(move |c| search::search(c, &user, &query))
            .await
    }

    async fn get_profile(&self, user: &UserId) -> Result<Profile> {
        self.read(|c| profiles::get(c, user)).await
    }

    async fn apply_profile_ops(
        &self,
        user: &UserId,
        ops: Vec<ProfileOp>,
        source: ChangeSource,
    ) -> Result<Vec<AuditEntry>> {
        let user = user.clone();
        self.write(move |c| profiles::apply(c, &user, ops.clone(), &source))
            .await
    }

    async fn profile_history(
        &self,
        user: &UserId,
        field: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        // Up to 10,000 entries a call, and off the chat path: not worth a worker's time.
        let (user, field) = (user.clone(), field.map(str::to_string));
        self.read_offloaded(move |c| profiles::history(c, &user, field.as_deref(), limit))
            .await
    }

    async fn enqueue_job(
        &self,
        user: &UserId,
        conversation_id: &str,
        kind: JobKind,
        max_attempts: u32,
    ) -> Result<Job> {
        let (user, id) = (user.clone(), conversation_id.to_string());
        self.write(move |c| jobs::enqueue(c, &user, &id, kind, max_attempts))
            .await
    }

    async fn claim_job(
        &self,
        worker: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Result<Option<Job>> {
        let worker = worker.to_string();
        self.write(move |c| jobs::claim(c, &worker, lease, now))
            .await
    }

    async fn finish_job(&self, job_id: &str, worker: &str, outcome: JobOutcome) -> Result<bool> {
        let (job, worker) = (job_id.to_string(), worker.to_string());
        self.write(move |c| jobs::finish(c, &job, &worker, outcome.clone()))
            .await
    }

    async fn release_jobs(&self, worker: &str) -> Result<u64> {
        let worker = worker.to_string();
        self.write(move |c| jobs::release(c, &worker)).await
    }

    async fn get_job(&self, id: &str) -> Result<Job> {
        self.read(|c| jobs::get(c, id)).await
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Vec<Job>> {
        let query = query.clone();
        self.read_offloaded(move |c| jobs::list(c, &query)).await
    }

    async fn job_counts(&self) -> Result<JobCounts> {
        self.read_offloaded(jobs::counts).await
    }

    async fn list_users(&self) -> Result<Vec<String>> {
        self.read_offloaded(users::list).await
    }

    async fn erase_user(&self, user: &UserId) -> Result<ErasureReceipt> {
        let user = user.clone();
        let receipt = self.write(move |c| users::erase(c, &user)).await?;
        // The erasure's zeroed pages are in the log, beside older frames that hold the
        // text; the database file holds the old pages until a checkpoint copies them,
        // which at the log's length may take long. The search index keeps the words
        // until it is rewritten.
        let path = self.path.clone();
        let scrubbed = tokio::task::spawn_blocking(move || scrub(&path));
        let purged = tokio::time::timeout(PURGE_WAIT, self.indexer.purge());
        let (scrubbed, purged) = tokio::join!(scrubbed, purged);
        if let Err(e) = scrubbed
            .map_err(|e| Error::storage(std::io::Error::other(e.to_string())))
            .and_then(|r| r)
        {
            tracing::warn!(error = %e, "could not checkpoint after an erasure; the next checkpoint will");
        }
        match purged {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the search index was not rewritten after an erasure")
            }
            Err(_) => {
                tracing::warn!(
                    "the search index is still being rewritten after an erasure; it finishes in the background"
                )
            }
        }
        Ok(receipt)
    }

    async fn create_api_key(&self, key: ApiKey) -> Result<ApiKey> {
        self.write(move |c| users::create_key(c, &key).map(|_| key.clone()))
            .await
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.read(|c| users::find_key(c, hash)).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.read_offloaded(users::list_keys).await
    }

    async fn revoke_api_key(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |c| users::revoke_key(c, &id)).await
    }

    async fn migrate(&self) -> Result<i64> {
        // Migrations ran on open; report the version the file has now.
        self.read(|c| {
            c.query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(sql_err)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(sql_err)
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Readers first: the last connection to close checkpoints the whole WAL into
        // the database and deletes it, and only the writer may write the database.
        // Closing it last leaves the database file complete on its own.
        // The indexer before the writer, for the same reason: of the index file's
        // connections, it is the one that may write. The checkpoint thread's connection
        // is one more the writer must outlive.
        self.readers.close().await;
        self.indexer.close().await;
        if let Some(c) = &self.checkpointer {
            c.close().await;
        }
        self.writer.close().await;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}
