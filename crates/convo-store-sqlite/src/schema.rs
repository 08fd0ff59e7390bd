//! Versioned, forward-only migrations, tracked in `PRAGMA user_version`.

use convo_core::{Error, Result};
use rusqlite::Connection;

use crate::sql_err;

/// One migration.
enum Step {
    /// Statements run in the migration's transaction.
    Sql(&'static str),
    /// Replaces `from` with `to` in `table`'s stored definition (nothing when `from` is
    /// absent), for changes SQLite cannot make with ALTER TABLE but that leave every
    /// stored row and index valid.
    Redefine {
        table: &'static str,
        from: &'static str,
        to: &'static str,
    },
}

/// Each entry migrates from version `i` to `i + 1`.
const MIGRATIONS: &[Step] = &[
    // 1: conversations, items with full-text search, profiles, jobs, API keys.
    Step::Sql(
        r#"
CREATE TABLE conversations (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    persona TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    name_by_person INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    chat_log TEXT
);
-- A user's conversations by recency, with or without a persona filter.
CREATE INDEX conversations_by_user ON conversations(user_id, updated_at DESC, pk DESC);
CREATE INDEX conversations_by_user_persona ON conversations(user_id, persona, updated_at DESC, pk DESC);

CREATE TABLE items (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    conversation_pk INTEGER NOT NULL REFERENCES conversations(pk) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('message', 'function_call', 'function_call_output')),
    role TEXT,
    text TEXT NOT NULL DEFAULT '',
    parts TEXT,
    call_id TEXT,
    name TEXT,
    arguments TEXT,
    message_id TEXT,
    search_tag TEXT,
    tokens INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
-- A conversation's items in insertion order (pk is monotonic).
CREATE INDEX items_by_conversation ON items(conversation_pk, pk);
-- Call ids are unique within a conversation; outputs find their call through this.
CREATE UNIQUE INDEX items_calls ON items(conversation_pk, call_id) WHERE kind = 'function_call';
CREATE INDEX items_outputs ON items(conversation_pk, call_id) WHERE kind = 'function_call_output';

-- Messages are indexed with a token naming their user (`search_tag`), so a search
-- reads only that user's postings instead of filtering everyone's matches.
CREATE VIRTUAL TABLE items_fts USING fts5(
    text, search_tag, content = 'items', content_rowid = 'pk',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON items WHEN new.kind = 'message' BEGIN
    INSERT INTO items_fts(rowid, text, search_tag) VALUES (new.pk, new.text, new.search_tag);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON items WHEN old.kind = 'message' BEGIN
    INSERT INTO items_fts(items_fts, rowid, text, search_tag)
        VALUES ('delete', old.pk, old.text, old.search_tag);
END;

CREATE TABLE profile_fields (
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    observations TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, name)
) WITHOUT ROWID;

CREATE TABLE profile_audit (
    pk INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    field TEXT NOT NULL,
    op TEXT NOT NULL,
    before TEXT,
    after TEXT,
    observations TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL,
    job_id TEXT,
    conversation_id TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX profile_audit_by_user ON profile_audit(user_id, pk DESC);

CREATE TABLE jobs (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    conversation_pk INTEGER NOT NULL REFERENCES conversations(pk) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_after INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error TEXT,
    last_reply TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- One pending job per conversation and kind: saving twice does not queue twice.
CREATE UNIQUE INDEX jobs_one_pending ON jobs(conversation_pk, kind) WHERE state = 'pending';
CREATE INDEX jobs_runnable ON jobs(state, run_after);
CREATE INDEX jobs_by_user ON jobs(user_id, kind, pk);
CREATE INDEX jobs_by_conversation ON jobs(conversation_pk);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    user_id TEXT,
    admin INTEGER NOT NULL DEFAULT 0,
    label TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;
"#,
    ),
    // 2: messages reach the full-text index in batches. An append only notes the
    // message in `items_fts_pending`; the writer indexes what is pending every few
    // hundred milliseconds inside a group commit, and a search first indexes whatever
    // is still pending, so a search always sees every acknowledged message. One FTS5
    // segment per batch instead of one per commit (and the merges those cause) was
    // most of the pages written per append.
    Step::Sql(
        r#"
CREATE TABLE items_fts_pending (pk INTEGER PRIMARY KEY);
DROP TRIGGER items_fts_insert;
CREATE TRIGGER items_fts_insert AFTER INSERT ON items WHEN new.kind = 'message' BEGIN
    INSERT INTO items_fts_pending(pk) VALUES (new.pk);
END;
DROP TRIGGER items_fts_delete;
-- A message still pending was never indexed: it only leaves the queue.
CREATE TRIGGER items_fts_delete AFTER DELETE ON items WHEN old.kind = 'message' BEGIN
    INSERT INTO items_fts(items_fts, rowid, text, search_tag)
        SELECT 'delete', old.pk, old.text, old.search_tag
        WHERE NOT EXISTS (SELECT 1 FROM items_fts_pending WHERE pk = old.pk);
    DELETE FROM items_fts_pending WHERE pk = old.pk;
END;
"#,
    ),
    // 3: the queue becomes a mark. Every message with a pk at or below
    // `search_progress.indexed_through` is indexed and none above it is; the writer's
    // indexing pass moves the mark. An append then writes nothing for search: the
    // queue's trigger made each insert a multi-row statement, and SQLite copied every
    // page it touched into a statement journal, with the queue row's own B-tree insert
    // on top. SQLite gives a new row the largest pk plus one, so deleting the newest
    // rows would let a new row reuse an indexed pk; the delete trigger therefore lowers
    // the mark to the largest pk left.
    Step::Sql(
        r#"
INSERT INTO items_fts(rowid, text, search_tag)
    SELECT i.pk, i.text, i.search_tag FROM items_fts_pending p JOIN items i ON i.pk = p.pk
    ORDER BY p.pk;
DROP TRIGGER items_fts_insert;
DROP TRIGGER items_fts_delete;
DROP TABLE items_fts_pending;
CREATE TABLE search_progress (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    indexed_through INTEGER NOT NULL
);
INSERT INTO search_progress (one, indexed_through) VALUES (1, (SELECT coalesce(max(pk), 0) FROM items));
-- One trigger, so the index entry leaves before the mark can move below its pk.
CREATE TRIGGER items_unindex AFTER DELETE ON items BEGIN
    INSERT INTO items_fts(items_fts, rowid, text, search_tag)
        SELECT 'delete', old.pk, old.text, old.search_tag
        WHERE old.kind = 'message' AND old.pk <= (SELECT indexed_through FROM search_progress);
    UPDATE search_progress SET indexed_through = newest.pk
        FROM (SELECT coalesce(max(pk), 0) AS pk FROM items) AS newest
        WHERE indexed_through > newest.pk;
END;
"#,
    ),
    // 4: the items table's kind check as comparisons. With `IN` and three values,
    // SQLite built (and dropped) a temporary B-tree on every insert to test one value
    // against the list: ~10k instructions, 5% of an HTTP append's user-space CPU.
    // Every stored row passes both forms.
    Step::Redefine {
        table: "items",
        from: "CHECK (kind IN ('message', 'function_call', 'function_call_output'))",
        to: "CHECK (kind = 'message' OR kind = 'function_call' OR kind = 'function_call_output')",
    },
    // 5: the search index moves to a file of its own, written by its own thread
    // (`search_file`), so indexing never holds a group commit. The store keeps a log
    // of what that index must forget: every deleted message, and every delete after
    // which SQLite may hand a deleted pk to a new row (the newest row's), with the
    // newest pk left. The index file replays the log; the writer clears what it has
    // replayed. AUTOINCREMENT keeps sequence numbers rising when the log is empty.
    Step::Sql(
        r#"
DROP TRIGGER items_unindex;
DROP TABLE items_fts;
DROP TABLE search_progress;
CREATE TABLE search_unindex (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    pk INTEGER NOT NULL,
    message INTEGER NOT NULL,
    newest INTEGER NOT NULL
);
CREATE TRIGGER items_unindex AFTER DELETE ON items BEGIN
    INSERT INTO search_unindex (pk, message, newest)
        SELECT old.pk, old.kind = 'message', newest.pk
        FROM (SELECT coalesce(max(pk), 0) AS pk FROM items) AS newest
        WHERE old.kind = 'message' OR old.pk > newest.pk;
END;
"#,
    ),
    // 6: the same log, without a scan of every item for each deleted one. SQLite pushed
    // the trigger's WHERE into its `max(pk)` subquery, which then read the whole table
    // instead of the newest row: erasing a user of 10,000 items in a database of a
    // million took minutes.
    Step::Sql(
        r#"
DROP TRIGGER items_unindex;
CREATE TRIGGER items_unindex AFTER DELETE ON items BEGIN
    INSERT INTO search_unindex (pk, message, newest)
        SELECT old.pk, old.kind = 'message', newest.pk
        FROM (SELECT coalesce((SELECT max(pk) FROM items), 0) AS pk) AS newest
        WHERE old.kind = 'message' OR old.pk > newest.pk;
END;
"#,
    ),
];

/// Migration `i`'s statements (tests build older versions from them).
#[cfg(test)]
fn sql(i: usize) -> &'static str {
    match MIGRATIONS[i] {
        Step::Sql(sql) => sql,
        Step::Redefine { .. } => panic!("migration {} is not plain SQL", i + 1),
    }
}

/// The newest schema version this build knows.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the schema to [`LATEST`]; refuses a database from a newer convo.
pub fn migrate(conn: &mut Connection) -> Result<i64> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    if found > LATEST {
        return Err(Error::SchemaTooNew {
            found,
            supported: LATEST,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql_err)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql_err)?;
        if now > i as i64 {
            continue;
        }
        match step {
            Step::Sql(sql) => tx.execute_batch(sql).map_err(sql_err)?,
            Step::Redefine { table, from, to } => redefine(&tx, table, from, to)?,
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
        tracing::info!(version = i + 1, "migrated the SQLite schema");
    }
    Ok(LATEST)
}

/// SQLite's documented procedure for changing a table's definition in place
/// (<https://sqlite.org/lang_altertable.html>, "making other kinds of table schema
/// changes"): edit the stored SQL, then bump the schema version so every other
/// connection, in this process or another, rereads the schema before its next
/// statement.
fn redefine(conn: &Connection, table: &str, from: &str, to: &str) -> Result<()> {
    let present: bool = conn
        .query_row(
            "SELECT instr(sql, ?2) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            (table, from),
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    if !present {
        return Ok(());
    }
    let version: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .map_err(sql_err)?;
    conn.pragma_update(None, "writable_schema", true)
        .map_err(sql_err)?;
    let edited = conn.execute(
        "UPDATE sqlite_schema SET sql = replace(sql, ?2, ?3) WHERE type = 'table' AND name = ?1",
        (table, from, to),
    );
    let bumped = conn.pragma_update(None, "schema_version", version + 1);
    // RESET: off, and this connection rereads the schema too.
    conn.pragma_update(None, "writable_schema", "RESET")
        .map_err(sql_err)?;
    edited.and(bumped).map_err(sql_err)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use rusqlite::Connection;

    #[test]
    fn version_three_databases_check_kinds_without_a_temporary_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        at_version(&conn, 3);
        add_conversation(&conn);
        add(&conn, "msg_before", "message", "before words");
        let insert = "INSERT INTO items (id, conversation_pk, kind, text, created_at) \
                      VALUES (?1, 1, ?2, '', 1)";
        let plan = |conn: &Connection| -> Vec<String> {
            let mut stmt = conn.prepare(&format!("EXPLAIN {insert}")).unwrap();
            stmt.query_map(("x", "message"), |r| r.get::<_, String>(1))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert!(plan(&conn).iter().any(|op| op == "OpenEphemeral"));

        assert_eq!(super::migrate(&mut conn).unwrap(), super::LATEST);
        assert!(!plan(&conn).iter().any(|op| op == "OpenEphemeral"));
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        // Still checked, and every kind still accepted; the old row is untouched.
        let bad = conn.execute(insert, ("msg_bad", "note")).unwrap_err();
        assert!(bad.to_string().contains("CHECK constraint failed"), "{bad}");
        for (id, kind) in [
            ("m", "message"),
            ("c", "function_call"),
            ("o", "function_call_output"),
        ] {
            conn.execute(insert, (id, kind)).unwrap();
        }
        let kept: String = conn
            .query_row("SELECT text FROM items WHERE id = 'msg_before'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(kept, "before words");
        // Migrating again finds nothing to change.
        assert_eq!(super::migrate(&mut conn).unwrap(), super::LATEST);
    }

    #[test]
    fn other_connections_see_a_redefined_table_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let mut writer = Connection::open(&path).unwrap();
        at_version(&writer, 3);
        let other = Connection::open(&path).unwrap();
        let definition = |c: &Connection| -> String {
            c.query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'items'",
                [],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert!(definition(&other).contains("kind IN ("));
        super::migrate(&mut writer).unwrap();
        assert!(definition(&other).contains("kind = 'message' OR"));
        let bad = other
            .execute(
                "INSERT INTO items (id, conversation_pk, kind, text, created_at) \
                 VALUES ('x', 1, 'note', '', 1)",
                [],
            )
            .unwrap_err();
        assert!(bad.to_string().contains("kind = 'message' OR"), "{bad}");
    }

    /// Builds the schema of `version` on `conn`, as that version's build left it.
    /// VM steps to delete one message and one function call of 5,000 items, with
    /// the triggers deletes fire.
    fn steps_to_delete_one_item(conn: &Connection) -> i32 {
        add_conversation(conn);
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO items (id, conversation_pk, kind, role, call_id, text, created_at) \
             SELECT 'item_' || i, 1, iif(i % 2, 'message', 'function_call'), \
                 iif(i % 2, 'user', NULL), iif(i % 2, NULL, 'call_' || i), 'words', 1 FROM n",
        )
        .unwrap();
        let mut delete = conn.prepare("DELETE FROM items WHERE id = ?1").unwrap();
        delete.execute(["item_101"]).unwrap();
        delete.execute(["item_102"]).unwrap();
        delete.get_status(rusqlite::StatementStatus::VmStep)
    }

    /// A scan of the items for each deleted one made deleting a conversation or a user
    /// quadratic (version 5's trigger): minutes for 10,000 items of a million.
    #[test]
    fn deleting_an_item_never_reads_every_item() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::migrate(&mut conn).unwrap();
        let steps = steps_to_delete_one_item(&conn);
        assert!(steps < 500, "{steps} VM steps to delete two items of 5,000");
    }

    pub(crate) fn at_version(conn: &Connection, version: usize) {
        for i in 0..version {
            conn.execute_batch(super::sql(i)).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
    }

    pub(crate) fn add(conn: &Connection, id: &str, kind: &str, text: &str) {
        let role = (kind == "message").then_some("user");
        let call = (kind != "message").then_some(id);
        conn.execute(
            "INSERT INTO items (id, conversation_pk, kind, role, text, call_id, created_at) \
             VALUES (?1, 1, ?2, ?3, ?4, ?5, 1)",
            rusqlite::params![id, kind, role, text, call],
        )
        .unwrap();
    }

    /// Conversation pk 1, which `add` appends to.
    pub(crate) fn add_conversation(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO conversations (id, user_id, persona, created_at, updated_at) \
             VALUES ('conv_a', 'alice', 'Helper', 1, 1);",
        )
        .unwrap();
    }
}
