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

/// Ranked hits: the user's messages holding every word, found through the index
/// (newest first) and ranked by BM25 over the user's own messages
/// ([`convo_core::relevance`]), then snippets for the best `limit` only.
pub fn search(conn: &Connection, user: &UserId, q: &SearchQuery) -> Result<Vec<SearchHit>> {
    let terms = Terms::parse(&q.text);
    if terms.is_empty() {
        return Err(Error::invalid("query", "search text has no words"));
    }
    let of_user = format!("search_tag : \"{}\"", tag(user.as_str()));
    let phrases: Vec<String> = terms.words().iter().map(|w| phrase(w)).collect();
    let fts = format!("{of_user} AND {}", phrases.join(" AND "));
    let persona = q.persona.as_ref().map(|p| p.as_str());
    // One snapshot for every step: a conversation deleted between finding the matches
    // and cutting their snippets would otherwise leave a hit with no row.
    let snapshot = conn.unchecked_transaction().map_err(sql_err)?;
    let conn: &Connection = &snapshot;
    let stale = stale_pks(conn)?;
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
        return Ok(Vec::new());
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
        .collect()
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

    /// A message deleted and its pk given to a new one while a search reads (after its
    /// catch-up): the index still holds the old words under that pk.
    #[test]
    fn words_of_a_deleted_message_never_find_the_row_that_took_its_pk() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("convo.db");
        let mut store = Connection::open(&db).unwrap();
        store.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        crate::schema::migrate(&mut store).unwrap();
        add_conversation(&store);
        add_message(&store, "msg_kept", "apple kept");
        add_message(&store, "msg_old", "apple pie");
        let mut idx = search_file::open(&db, Duration::from_secs(5)).unwrap();
        search_file::pass(&mut idx, None, &|_| {}).unwrap();
        let reader = Connection::open(&db).unwrap();
        reader
            .execute(
                "ATTACH DATABASE ?1 AS search",
                [search_file::path_for(&db).to_str().unwrap()],
            )
            .unwrap();
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
