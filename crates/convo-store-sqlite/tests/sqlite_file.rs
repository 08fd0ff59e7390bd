//! Behaviour specific to the SQLite file: migrations, refusal of newer schemas,
//! durability settings, integrity after heavy concurrent writing.

use convo_core::{ConversationManager, Error, Role, Store};
use convo_store_sqlite::{Durability, SCHEMA_VERSION, SqliteOptions, SqliteStore};
use std::sync::Arc;

#[tokio::test]
async fn a_database_from_a_newer_convo_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let store = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    store.close().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match SqliteStore::open(&path, SqliteOptions::default()).await {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_leaves_everything_in_the_database_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let store = Arc::new(
        SqliteStore::open(&path, SqliteOptions::default())
            .await
            .unwrap(),
    );
    let m = ConversationManager::new(store.clone(), "alice", "Helper").unwrap();
    let id = m.conversation_id();
    m.add_message("alice", &id, Role::User, "kept in the file", None)
        .await
        .unwrap();
    assert_eq!(m.all_items("alice", &id).await.unwrap().len(), 1);
    store.close().await.unwrap();
    // The writer closed last, so it checkpointed the log and removed it: copying the
    // database file alone (a backup after stopping the server) copies everything.
    let wal = dir.path().join("convo.db-wal");
    assert!(!wal.exists(), "the log is gone after close");
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(&path, copy.path().join("convo.db")).unwrap();
    let conn = rusqlite::Connection::open(copy.path().join("convo.db")).unwrap();
    let text: String = conn
        .query_row("SELECT text FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(text, "kept in the file");
    drop(conn);
    // The search index is rebuilt from the database file when it is not beside it.
    let (copied, m) = open_for_alice(&copy.path().join("convo.db")).await;
    let hits = m.search("alice", "kept", None, 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].snippet, "[kept] in the file");
    copied.close().await.unwrap();
}

/// Items in the database file alone, read from a copy of it without its log; `None`
/// while the copy is torn by a checkpoint writing it.
fn items_in_file_alone(path: &std::path::Path) -> Option<i64> {
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(path, copy.path().join("convo.db")).ok()?;
    let conn = rusqlite::Connection::open(copy.path().join("convo.db")).ok()?;
    conn.query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_reach_the_database_file_without_waiting_for_the_log_to_fill() {
    // The writer checkpoints when the log holds 8,192 pages, inside a commit that every
    // write behind it waits for; the checkpoint thread copies the log beside it, so
    // that checkpoint has little left to copy. A few appends are far below the
    // threshold: only the checkpoint thread copies them into the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let (store, alice) = open_for_alice(&path).await;
    let id = alice.conversation_id();
    for i in 0..20 {
        alice
            .add_message("alice", &id, Role::User, format!("message {i}"), None)
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while items_in_file_alone(&path) != Some(20) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        items_in_file_alone(&path),
        Some(20),
        "the database file holds every committed append while the store runs"
    );
    store.close().await.unwrap();
    assert!(
        !dir.path().join("convo.db-wal").exists(),
        "the writer still closes last and removes the log"
    );
}

#[tokio::test]
async fn opening_twice_migrates_once_and_creates_parent_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/convo.db");
    let s1 = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    // A second handle on the same file (another process would do the same).
    let s2 = SqliteStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    assert_eq!(s1.migrate().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(s2.migrate().await.unwrap(), SCHEMA_VERSION);
    let m1 = ConversationManager::new(Arc::new(s1), "alice", "Helper").unwrap();
    let id = m1.conversation_id();
    m1.add_message("alice", &id, Role::User, "from handle one", None)
        .await
        .unwrap();
    let m2 = ConversationManager::new(Arc::new(s2), "alice", "Helper").unwrap();
    m2.add_message("alice", &id, Role::User, "from handle two", None)
        .await
        .unwrap();
    assert_eq!(m1.all_items("alice", &id).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_under_many_writers_keeps_the_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let options = SqliteOptions {
        durability: Durability::Normal,
        ..Default::default()
    };
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, options).await.unwrap());
    let m = Arc::new(ConversationManager::new(store.clone(), "alice", "Helper").unwrap());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            let id = m.generate_new_conversation_id();
            for n in 0..20 {
                m.add_message("alice", &id, Role::User, format!("n{n}"), None)
                    .await
                    .unwrap();
            }
            id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    store.close().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    // FTS5's own check that the index matches the items table.
    fts_intact(&path);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 64 * 20);
}

/// The search index file beside the store at `path`.
fn index_file(path: &std::path::Path) -> rusqlite::Connection {
    let mut p = path.as_os_str().to_owned();
    p.push("-search");
    assert!(
        std::path::Path::new(&p).exists(),
        "the index file is beside the store"
    );
    rusqlite::Connection::open(p).unwrap()
}

fn fts_matches(path: &std::path::Path, word: &str) -> i64 {
    index_file(path)
        .query_row(
            "SELECT count(*) FROM items_fts WHERE items_fts MATCH ?1",
            [format!("text : \"{word}\"")],
            |r| r.get(0),
        )
        .unwrap()
}

async fn assert_finds_nothing(m: &ConversationManager, word: &str) {
    let hits = m.search("alice", word, None, 10).await.unwrap();
    assert!(hits.is_empty(), "{word}: {hits:?}");
}

/// The store at `path` and a manager for alice over it.
async fn open_for_alice(path: &std::path::Path) -> (Arc<SqliteStore>, ConversationManager) {
    let store = Arc::new(
        SqliteStore::open(path, SqliteOptions::default())
            .await
            .unwrap(),
    );
    let m = ConversationManager::new(store.clone(), "alice", "Helper").unwrap();
    (store, m)
}

fn fts_intact(path: &std::path::Path) {
    index_file(path)
        .execute(
            "INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("the search index is sound");
}

#[tokio::test]
async fn messages_left_unindexed_by_a_crash_are_found_and_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let (store, m) = open_for_alice(&path).await;
    let id = m.conversation_id();
    m.add_message("alice", &id, Role::User, "first words", None)
        .await
        .unwrap();
    store.close().await.unwrap();
    // What a kill -9 between an append and the next indexing pass leaves: a committed
    // message still waiting in the queue.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO items (id, conversation_pk, kind, role, text, search_tag, created_at) \
         SELECT 'msg_crashed', conversation_pk, 'message', 'user', 'zebra crossing', search_tag, 1 \
         FROM items LIMIT 1",
        [],
    )
    .unwrap();
    assert_eq!(fts_matches(&path, "zebra"), 0, "still waiting");
    drop(conn);

    let (store, m) = open_for_alice(&path).await;
    let hits = m.search("alice", "zebra", None, 10).await.unwrap();
    assert_eq!(hits.len(), 1, "a search indexes what waits before it reads");
    assert_eq!(hits[0].item_id, "msg_crashed");
    store.close().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let newest: i64 = conn
        .query_row("SELECT max(pk) FROM items", [], |r| r.get(0))
        .unwrap();
    let indexed: i64 = index_file(&path)
        .query_row("SELECT indexed_through FROM progress", [], |r| r.get(0))
        .unwrap();
    assert_eq!(indexed, newest, "nothing waits after close");
    assert_eq!(fts_matches(&path, "zebra"), 1);
    fts_intact(&path);
}

#[tokio::test]
async fn deleting_waiting_and_indexed_messages_keeps_the_index_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let (store, m) = open_for_alice(&path).await;
    let indexed = m.generate_new_conversation_id();
    m.add_message("alice", &indexed, Role::User, "apple pie", None)
        .await
        .unwrap();
    // The search indexes "apple"; "banana" is appended after it and still waits.
    assert_eq!(m.search("alice", "apple", None, 10).await.unwrap().len(), 1);
    let waiting = m.generate_new_conversation_id();
    m.add_message("alice", &waiting, Role::User, "banana split", None)
        .await
        .unwrap();
    m.delete_conversation("alice", &indexed).await.unwrap();
    m.delete_conversation("alice", &waiting).await.unwrap();
    assert_finds_nothing(&m, "apple").await;
    assert_finds_nothing(&m, "banana").await;
    // Row ids are reused after deletes: a new message must be indexed, not skipped.
    let again = m.generate_new_conversation_id();
    m.add_message("alice", &again, Role::User, "cherry tart", None)
        .await
        .unwrap();
    assert_eq!(
        m.search("alice", "cherry", None, 10).await.unwrap().len(),
        1
    );
    store.close().await.unwrap();
    // The writer cleared the deletion log the index replayed before it closed.
    let logged: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM search_unindex", [], |r| r.get(0))
        .unwrap();
    assert_eq!(logged, 0);
    assert_eq!(
        fts_matches(&path, "apple") + fts_matches(&path, "banana"),
        0
    );
    fts_intact(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_search_index() {
    // Two stores on one file stand in for two processes (a server and a CLI command):
    // each has its own writer, indexer and readers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let (a, ma) = open_for_alice(&path).await;
    let (b, mb) = open_for_alice(&path).await;
    let id = ma.conversation_id();
    ma.add_message("alice", &id, Role::User, "written by one", None)
        .await
        .unwrap();
    let hits = mb.search("alice", "written", None, 10).await.unwrap();
    assert_eq!(
        hits.len(),
        1,
        "the other's search indexes what the first wrote"
    );
    mb.add_message("alice", &id, Role::User, "written by two", None)
        .await
        .unwrap();
    assert_eq!(
        ma.search("alice", "written", None, 10).await.unwrap().len(),
        2
    );
    ma.delete_conversation("alice", &id).await.unwrap();
    assert_finds_nothing(&mb, "written").await;
    a.close().await.unwrap();
    b.close().await.unwrap();
    assert_eq!(fts_matches(&path, "written"), 0);
    fts_intact(&path);
}

/// Whether the bytes of the file at `path` hold `needle` anywhere.
fn file_holds(path: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read(path)
        .unwrap()
        .windows(needle.len())
        .any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_users_text_is_gone_from_the_files_not_only_from_queries() {
    erased_text_is_gone_from_the_files(false).await;
}

/// Searches read the index without waiting for the indexer when it holds what they
/// need, so they run beside the rewrite of the index after an erasure, whose last
/// step empties the index's log: that must still succeed, and the searches too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_leaves_nothing_behind_while_others_search() {
    erased_text_is_gone_from_the_files(true).await;
}

/// Another user's searches, run back to back until `stop`; returns how many ran.
fn search_until(
    store: Arc<SqliteStore>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let bob = ConversationManager::new(store, "bob", "Helper").unwrap();
        let mut n = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let hits = bob.search("bob", "rain", None, 100).await.unwrap();
            assert_eq!(hits.len(), 40, "every one of bob's messages, every time");
            n += 1;
        }
        n
    })
}

async fn erased_text_is_gone_from_the_files(search_meanwhile: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("convo.db");
    let (store, alice) = open_for_alice(&path).await;
    let bob = ConversationManager::new(store.clone(), "bob", "Helper").unwrap();
    for i in 0..40 {
        for (m, user, text) in [
            (&alice, "alice", format!("my code word is qxvbrmplz {i}")),
            (&bob, "bob", format!("rain again today {i}")),
        ] {
            let id = m.generate_new_conversation_id();
            m.add_message(user, &id, Role::User, text, None)
                .await
                .unwrap();
        }
    }
    // A message long enough for overflow pages.
    let id = alice.conversation_id();
    alice
        .add_message(
            "alice",
            &id,
            Role::User,
            "qxvbrmplz and more ".repeat(1500),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        alice
            .search("alice", "qxvbrmplz", None, 100)
            .await
            .unwrap()
            .len(),
        41,
        "indexed before the erasure"
    );
    // As a checkpoint of a running server leaves it: the text in the database file.
    let other = rusqlite::Connection::open(&path).unwrap();
    let copy_all = || loop {
        // While another checkpoint runs (the store's checkpoint thread), SQLite answers
        // busy with -1 for both counts.
        let (busy, log, copied): (i64, i64, i64) = other
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        if busy == 0 && copied == log {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    copy_all();
    for file in ["convo.db", "convo.db-wal", "convo.db-search-wal"] {
        assert!(
            file_holds(&dir.path().join(file), b"vbrmplz"),
            "the test starts with the text in {file}"
        );
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let searches = search_meanwhile.then(|| search_until(store.clone(), stop.clone()));
    let receipt = alice.erase_user("alice").await.unwrap();
    assert_eq!(receipt.items, 41);
    if let Some(searches) = searches {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(
            searches.await.unwrap() > 0,
            "bob searched during the erasure"
        );
    }
    // Deleted rows and index entries leave their bytes in freed space unless they are
    // overwritten, and the logs keep the frames of earlier commits. FTS5 may store a
    // term after a prefix shared with the term before it.
    let files = [
        "convo.db",
        "convo.db-wal",
        "convo.db-search",
        "convo.db-search-wal",
    ];
    for file in files {
        assert!(
            !file_holds(&dir.path().join(file), b"vbrmplz"),
            "{file} still holds the erased word when the erasure returns"
        );
    }
    assert_finds_nothing(&alice, "qxvbrmplz").await;
    drop(other);
    store.close().await.unwrap();
    for file in ["convo.db", "convo.db-search"] {
        assert!(
            !file_holds(&dir.path().join(file), b"vbrmplz"),
            "{file} still holds the erased word after close"
        );
    }
    for wal in ["convo.db-wal", "convo.db-search-wal"] {
        assert!(!dir.path().join(wal).exists(), "{wal} is removed at close");
    }
    fts_intact(&path);
    let (store, _) = open_for_alice(&path).await;
    let bob = ConversationManager::new(store.clone(), "bob", "Helper").unwrap();
    assert_eq!(
        bob.search("bob", "rain", None, 100).await.unwrap().len(),
        40,
        "the others' messages stay"
    );
    store.close().await.unwrap();
}
