//! Full-text search over a user's messages: FTS5 finds them in the index file
//! (attached to every read connection as `search`, see [`crate::search_file`]), BM25
//! over the user's own messages ranks them, and snippets are cut from the stored text.

use convo_core::relevance::{CorpusStats, Terms, rank, snippet};
use convo_core::{Error, Result, SearchHit, SearchQuery, Timestamp, UserId};
use rusqlite::{Connection, params};

use crate::sql_err;

/// The search token of a user: one FTS5 token (letters and digits) derived from the
/// user id by FNV-1a, stored with each of the user's messages.
pub fn tag(user: &str) -> String {
    format!("u{:016x}", convo_core::hash::fnv1a(user.as_bytes()))
}

/// One query word as an FTS5 phrase in the text column: quotes and control characters
/// are dropped, so no user input is ever read as FTS5 syntax.
fn phrase(word: &str) -> String {
    let w = word.replace(|c: char| c == '"' || c.is_control(), "");
    format!("text : \"{w}\"")
}

/// Most matches one search ranks, the newest: bounds a search for a word in most of a
/// heavy user's messages. For a user with 818,000 messages, 457,000 of them holding
/// the word, a whole `convo search` took 0.44 s and 85 MB with 100,000 ranked, 0.12 s
/// and 21 MB with 10,000 (FTS5's `bm25()` over all of them: 375 ms for the ranking
/// query alone).
pub const MAX_RANKED: i64 = 10_000;

/// Pks whose index entries may still hold the words of a deleted message: deletions
/// of messages the store logged and the index has not replayed. SQLite may have given
/// such a pk to a new row since, which the old words must not find (a search's
/// catch-up replays every deletion made before it, not those made while it reads).
///
/// Must be the snapshot's first statement: SQLite starts the read transactions of one
/// statement in the order of the databases, `main` first, so the store's snapshot is
/// no newer than the index's. The log is cleared only after the index file commits
/// its replay, so no deletion the index still lacks is missing from the store's log.
fn stale_pks(conn: &Connection) -> Result<std::collections::HashSet<i64>> {
    conn.prepare_cached(
        "SELECT u.pk FROM main.search_unindex u \
         WHERE u.message = 1 AND u.seq > (SELECT unindexed_through FROM search.progress)",
    )
    .map_err(sql_err)?
    .query_map([], |r| r.get(0))
    .map_err(sql_err)?
    .collect::<rusqlite::Result<_>>()
    .map_err(sql_err)
}

/// Most messages above the index's mark that [`search_if_indexed`] looks through for
/// the user's own (pks above the mark, counted from the newest: a new row takes the
/// largest pk plus one). Rows carry their text, so a longer tail took milliseconds.
const MAX_TAIL: i64 = 1024;

/// Most conversations of the user that [`search_if_indexed`] looks into, one index
/// seek each, when the tail above the mark is longer than [`MAX_TAIL`] (as while the
/// indexer rewrites the index after an erasure and appends go on). A longer tail and a
/// user with more conversations than this (or a store whose index file is still being
/// built) leave the search to the indexer.
const MAX_CONVERSATIONS: i64 = 2000;

/// Whether the index, in this snapshot, holds every message of the user that the store
/// holds: no deletion waits to be replayed (after one, a new message may reuse an
/// indexed pk at or below the mark), and none of the user's messages lies above the
/// mark, found among a short tail or through the user's conversations.
fn indexed_for(conn: &Connection, user: &str, tag: &str) -> Result<bool> {
    conn.prepare_cached(
        // CASE, so each way of looking runs only when its bound holds. NOT INDEXED: with
        // its statistics SQLite 3.40 planned a skip-scan of `items_by_conversation` for
        // the pks above the mark (13 ms over a million items), not the table's pk range.
        "SELECT CASE \
             WHEN EXISTS (SELECT 1 FROM main.search_unindex WHERE seq > p.unindexed_through) \
                 THEN 0 \
             WHEN coalesce((SELECT max(pk) FROM main.items), 0) - p.indexed_through <= ?3 \
                 THEN NOT EXISTS (SELECT 1 FROM main.items NOT INDEXED \
                     WHERE pk > p.indexed_through AND search_tag = ?2) \
             WHEN (SELECT count(*) FROM (SELECT 1 FROM main.conversations WHERE user_id = ?1 \
                 LIMIT ?4 + 1)) <= ?4 \
                 THEN NOT EXISTS (SELECT 1 FROM main.conversations c WHERE c.user_id = ?1 \
                     AND EXISTS (SELECT 1 FROM main.items i WHERE i.conversation_pk = c.pk \
                         AND i.pk > p.indexed_through)) \
             ELSE 0 \
         END FROM search.progress p",
    )
    .map_err(sql_err)?
    .query_row(params![user, tag, MAX_TAIL, MAX_CONVERSATIONS], |r| {
        r.get(0)
    })
    .map_err(sql_err)
}

/// Ranked hits: the user's messages holding every word, found through the index
/// (newest first) and ranked by BM25 over the user's own messages
/// ([`convo_core::relevance`]), then snippets for the best `limit` only. The index must
/// have caught up with every message acknowledged before the call (the indexer's
/// `catch_up`), unless [`search_if_indexed`] found it had.
pub fn search(conn: &Connection, user: &UserId, q: &SearchQuery) -> Result<Vec<SearchHit>> {
    search_in(conn, user, q, false).map(|hits| hits.unwrap_or_default())
}

/// [`search`] without waiting for the indexer: `None` when the index may lack some of
/// the user's messages or deletions, which the caller then has the indexer catch up
/// with before searching again. Searches mostly find the index ready, and no longer
/// wait behind the indexer's work, such as its rewrite of the whole index after an
/// erasure (2.2 s at a million messages).
pub fn search_if_indexed(
    conn: &Connection,
    user: &UserId,
    q: &SearchQuery,
) -> Result<Option<Vec<SearchHit>>> {
    search_in(conn, user, q, true)
}

fn search_in(
    conn: &Connection,
    user: &UserId,
    q: &SearchQuery,
    only_if_indexed: bool,
) -> Result<Option<Vec<SearchHit>>> {
    let terms = Terms::parse(&q.text);
    if terms.is_empty() {
        return Err(Error::invalid("query", "search text has no words"));
    }
    let user_tag = tag(user.as_str());
    let of_user = format!("search_tag : \"{user_tag}\"");
    let phrases: Vec<String> = terms.words().iter().map(|w| phrase(w)).collect();
    let fts = format!("{of_user} AND {}", phrases.join(" AND "));
    let persona = q.persona.as_ref().map(|p| p.as_str());
    // One snapshot for every step: a conversation deleted between finding the matches
    // and cutting their snippets would otherwise leave a hit with no row.
    let snapshot = conn.unchecked_transaction().map_err(sql_err)?;
    let conn: &Connection = &snapshot;
    let stale = stale_pks(conn)?;
    if only_if_indexed && !indexed_for(conn, user.as_str(), &user_tag)? {
        return Ok(None);
    }
    let mut matches: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT i.pk, i.text \
             FROM search.items_fts f JOIN items i ON i.pk = f.rowid \
                 JOIN conversations c ON c.pk = i.conversation_pk \
             WHERE f.items_fts MATCH ?1 AND c.user_id = ?2 AND (?3 IS NULL OR c.persona = ?3) \
             ORDER BY f.rowid DESC LIMIT ?4",
        )
        .map_err(sql_err)?
        .query_map(params![fts, user.as_str(), persona, MAX_RANKED], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        })
        .map_err(sql_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_err)?;
    if !stale.is_empty() {
        matches.retain(|(pk, _)| !stale.contains(pk));
    }
    if matches.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mut count = conn
        .prepare_cached("SELECT count(*) FROM search.items_fts WHERE items_fts MATCH ?1")
        .map_err(sql_err)?;
    let mut count = |query: &str| -> Result<u64> {
        count
            .query_row([query], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(sql_err)
    };
    let stats = CorpusStats {
        docs: count(&of_user)?,
        docs_with: phrases
            .iter()
            .map(|p| count(&format!("{of_user} AND {p}")))
            .collect::<Result<_>>()?,
    };
    // Entries of messages deleted since the index's last pass find no row here.
    let mut hit = conn
        .prepare_cached(
            "SELECT c.id, c.name, c.persona, i.id, coalesce(i.role, ''), i.created_at, i.text \
             FROM items i JOIN conversations c ON c.pk = i.conversation_pk WHERE i.pk = ?1",
        )
        .map_err(sql_err)?;
    let limit = q.limit.clamp(1, 1000) as usize;
    rank(&terms, &stats, matches)
        .into_iter()
        .take(limit)
        .map(|(pk, score)| {
            hit.query_row([pk], |r| {
                Ok(SearchHit {
                    conversation_id: r.get(0)?,
                    conversation_name: r.get(1)?,
                    persona: r.get(2)?,
                    item_id: r.get(3)?,
                    role: r.get(4)?,
                    snippet: snippet(&terms, &r.get::<_, Option<String>>(6)?.unwrap_or_default()),
                    score,
                    created_at: Timestamp::from_unix_ms(r.get(5)?),
                })
            })
            .map_err(sql_err)
        })
        .collect::<Result<_>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use crate::schema::tests::{add, add_conversation};
    use crate::search_file;
    use convo_core::{SearchQuery, UserId};
    use rusqlite::Connection;
    use std::time::Duration;

    fn found(reader: &Connection, text: &str) -> Vec<String> {
        let q = SearchQuery {
            text: text.into(),
            persona: None,
            limit: 20,
        };
        super::search(reader, &UserId::new("alice").unwrap(), &q)
            .unwrap()
            .into_iter()
            .map(|h| h.item_id)
            .collect()
    }

    /// [`add`], with alice's search tag, as the store's appends write it.
    fn add_message(store: &Connection, id: &str, text: &str) {
        add(store, id, "message", text);
        store
            .execute(
                "UPDATE items SET search_tag = ?1 WHERE id = ?2",
                [super::tag("alice").as_str(), id],
            )
            .unwrap();
    }

    /// `n` messages of bob's ("apple" in each), as the store's appends write them.
    fn add_bobs(store: &Connection, n: i64) {
        store
            .execute(
                "INSERT OR IGNORE INTO conversations (id, user_id, persona, created_at, updated_at) \
                 VALUES ('conv_b', 'bob', 'Helper', 1, 1)",
                [],
            )
            .unwrap();
        store
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO items (id, conversation_pk, kind, role, text, created_at, search_tag) \
                 SELECT 'msg_bob_' || (SELECT count(*) FROM items) || '_' || i, \
                     (SELECT pk FROM conversations WHERE id = 'conv_b'), 'message', 'user', \
                     'apple from bob', 1, ?2 FROM n",
                rusqlite::params![n, super::tag("bob")],
            )
            .unwrap();
    }

    /// What [`super::search_if_indexed`] answers for alice's "apple": `None` when it
    /// leaves the search to the indexer.
    fn ready(reader: &Connection) -> Option<Vec<String>> {
        let q = SearchQuery {
            text: "apple".into(),
            persona: None,
            limit: 20,
        };
        super::search_if_indexed(reader, &UserId::new("alice").unwrap(), &q)
            .unwrap()
            .map(|hits| hits.into_iter().map(|h| h.item_id).collect())
    }

    /// A store with alice's conversation holding `messages` (id, text), its index file
    /// after one pass, and a reader with the index attached, as the store's are.
    struct Fixture {
        store: Connection,
        idx: search_file::Files,
        reader: Connection,
        _dir: tempfile::TempDir,
    }

    fn fixture(messages: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("convo.db");
        let mut store = Connection::open(&db).unwrap();
        store.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        crate::schema::migrate(&mut store).unwrap();
        add_conversation(&store);
        for (id, text) in messages {
            add_message(&store, id, text);
        }
        let mut idx = search_file::open(&db, Duration::from_secs(5)).unwrap();
        search_file::pass(&mut idx, None, &|_| {}).unwrap();
        let reader = Connection::open(&db).unwrap();
        reader
            .execute(
                "ATTACH DATABASE ?1 AS search",
                [search_file::path_for(&db).to_str().unwrap()],
            )
            .unwrap();
        Fixture {
            store,
            idx,
            reader,
            _dir: dir,
        }
    }

    /// A search may skip the indexer only when the index holds everything of the
    /// user's that the store does: none of the user's messages above the mark, no
    /// deletion waiting to be replayed, and a tail short enough to look through.
    #[test]
    fn a_search_skips_the_indexer_only_when_the_index_holds_all_the_users_messages() {
        let Fixture {
            store,
            mut idx,
            reader,
            _dir,
        } = fixture(&[("msg_1", "apple one")]);
        let pass = |idx: &mut search_file::Files| {
            let done = search_file::pass(idx, None, &|_| {}).unwrap();
            search_file::clear_unindex_log(&store, done.unindexed_through).unwrap();
        };
        assert_eq!(ready(&reader), Some(vec!["msg_1".to_string()]));

        add_message(&store, "msg_2", "apple two");
        assert_eq!(
            ready(&reader),
            None,
            "alice's new message is not indexed yet"
        );
        pass(&mut idx);
        assert_eq!(ready(&reader), Some(vec!["msg_2".into(), "msg_1".into()]));

        add_bobs(&store, 10);
        assert_eq!(
            ready(&reader),
            Some(vec!["msg_2".into(), "msg_1".into()]),
            "someone else's messages waiting for the index do not hold alice's search"
        );

        store
            .execute("DELETE FROM items WHERE id = 'msg_2'", [])
            .unwrap();
        assert_eq!(ready(&reader), None, "a deletion waits to be replayed");
        pass(&mut idx);
        assert_eq!(ready(&reader), Some(vec!["msg_1".to_string()]));

        add_bobs(&store, super::MAX_TAIL + 1);
        assert_eq!(
            ready(&reader),
            Some(vec!["msg_1".to_string()]),
            "past a long tail, alice's conversations show nothing new"
        );
        add_message(&store, "msg_3", "apple three");
        assert_eq!(
            ready(&reader),
            None,
            "alice's conversation has a message not indexed"
        );
        assert_eq!(
            found(&reader, "apple"),
            ["msg_1"],
            "the usual search reads what the index holds"
        );
        pass(&mut idx);
        assert_eq!(ready(&reader), Some(vec!["msg_3".into(), "msg_1".into()]));

        add_bobs(&store, super::MAX_TAIL + 1);
        store
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO conversations (id, user_id, persona, created_at, updated_at) \
                 SELECT 'conv_alice_' || i, 'alice', 'Helper', 1, 1 FROM n",
                [super::MAX_CONVERSATIONS],
            )
            .unwrap();
        assert_eq!(
            ready(&reader),
            None,
            "a long tail and too many conversations to look into"
        );
    }

    /// A message deleted and its pk given to a new one while a search reads (after its
    /// catch-up): the index still holds the old words under that pk.
    #[test]
    fn words_of_a_deleted_message_never_find_the_row_that_took_its_pk() {
        let Fixture {
            store,
            mut idx,
            reader,
            _dir,
        } = fixture(&[("msg_kept", "apple kept"), ("msg_old", "apple pie")]);
        assert_eq!(found(&reader, "apple"), ["msg_old", "msg_kept"]);

        store
            .execute("DELETE FROM items WHERE id = 'msg_old'", [])
            .unwrap();
        add_message(&store, "msg_new", "banana split");
        let pk = |id: &str| -> i64 {
            store
                .query_row("SELECT pk FROM items WHERE id = ?1", [id], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(pk("msg_new"), 2, "SQLite reused the deleted pk");
        assert_eq!(found(&reader, "apple"), ["msg_kept"], "before the replay");
        assert!(found(&reader, "banana").is_empty(), "not indexed yet");

        let done = search_file::pass(&mut idx, None, &|_| {}).unwrap();
        assert_eq!(found(&reader, "apple"), ["msg_kept"]);
        assert_eq!(
            found(&reader, "banana"),
            ["msg_new"],
            "replayed, before the log is cleared"
        );
        search_file::clear_unindex_log(&store, done.unindexed_through).unwrap();
        assert_eq!(found(&reader, "banana"), ["msg_new"], "after");
    }

    #[test]
    fn tags_never_change() {
        // Stored with every indexed message: a new value would hide old messages.
        assert_eq!(super::tag("alice"), "u508b2abb65a03907");
    }

    #[test]
    fn user_text_is_never_fts_syntax() {
        let phrases: Vec<String> =
            convo_core::relevance::Terms::parse("NEAR(a b) OR \"x\u{7}y  * - ")
                .words()
                .iter()
                .map(|w| super::phrase(w))
                .collect();
        assert_eq!(
            phrases,
            [
                "text : \"NEAR(a\"",
                "text : \"b)\"",
                "text : \"OR\"",
                "text : \"xy\""
            ]
        );
    }
}
