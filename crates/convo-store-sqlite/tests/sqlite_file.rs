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
    conn.execute(
        "INSERT INTO items_fts(items_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .expect("the search index matches the items");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 64 * 20);
}
