//! Append scenarios: one message per commit, batches, and concurrent writers sharing
//! commits (group commit), each beside a bare rusqlite insert of the same row.

use convo_core::{ConversationManager, NewItem, Role, Store};
use convo_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::data::Gen;
use crate::stats::{Row, Series};
use crate::{Plan, Verdict};

async fn fresh(
    dir: &Path,
    name: &str,
    durability: Durability,
) -> anyhow::Result<(Arc<dyn Store>, PathBuf)> {
    let path = dir.join(name);
    crate::dbfile::remove(&path);
    let store = SqliteStore::open(
        &path,
        SqliteOptions {
            durability,
            ..Default::default()
        },
    )
    .await?;
    Ok((Arc::new(store), path))
}

/// A bare connection with the store's pragmas, on a database with convo's schema and
/// one conversation; returns the connection and the conversation's row key.
async fn bare(dir: &Path, name: &str, durability: Durability) -> anyhow::Result<(Connection, i64)> {
    let (store, path) = fresh(dir, name, durability).await?;
    let m = ConversationManager::new(store.clone(), "bench", "Helper")?;
    let id = m.conversation_id();
    m.add_message("bench", &id, Role::User, "first", None)
        .await?;
    store.close().await?;
    let conn = Connection::open(&path)?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
    ))?;
    let pk = conn.query_row("SELECT pk FROM conversations WHERE id = ?1", [&id], |r| {
        r.get(0)
    })?;
    Ok((conn, pk))
}

const INSERT: &str = "INSERT INTO items (id, conversation_pk, kind, role, text, tokens, created_at) \
                      VALUES (?1, ?2, 'message', 'user', ?3, ?4, ?5)";

/// Inserts `texts` with the bare connection, `batch` rows per transaction; returns the
/// time it took and each transaction's latency. Row ids start with `tag`.
fn bare_chunk(
    conn: &Connection,
    pk: i64,
    texts: &[String],
    batch: usize,
    tag: &str,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    let mut lat = Vec::with_capacity(texts.len());
    let start = Instant::now();
    for (b, chunk) in texts.chunks(batch).enumerate() {
        let t = Instant::now();
        if batch > 1 {
            conn.execute_batch("BEGIN")?;
        }
        for (i, text) in chunk.iter().enumerate() {
            let id = format!("{tag}_{b}_{i}");
            stmt.execute(params![
                id,
                pk,
                text,
                (text.len() / 4) as i64,
                1_700_000_000_000i64
            ])?;
        }
        if batch > 1 {
            conn.execute_batch("COMMIT")?;
        }
        lat.push(t.elapsed());
    }
    Ok((start.elapsed(), lat))
}

fn bare_round(
    conn: &Connection,
    pk: i64,
    texts: &[String],
    batch: usize,
    series: &mut Series,
    round: usize,
) -> anyhow::Result<()> {
    let (elapsed, lat) = bare_chunk(conn, pk, texts, batch, &format!("bare_{round}"))?;
    series.round(texts.len(), elapsed, lat);
    Ok(())
}

/// Appends per slice of the one-per-commit comparison: convo and the bare connection
/// take turns this often, so a burst of host noise (this runs on shared virtual
/// machines) lands on both sides alike instead of on one side's whole round.
const TURN: usize = 10;

/// One round of the one-per-commit comparison, the two sides taking turns every
/// [`TURN`] appends (the side going first alternates too).
async fn one_per_commit_round(
    m: &ConversationManager,
    conv: &str,
    (conn, pk): (&Connection, i64),
    texts: &[String],
    round: usize,
    (ours, base): (&mut Series, &mut Series),
) -> anyhow::Result<()> {
    let (mut ours_time, mut base_time) = (Duration::ZERO, Duration::ZERO);
    let (mut ours_lat, mut base_lat) = (Vec::new(), Vec::new());
    for (turn, slice) in texts.chunks(TURN).enumerate() {
        for side in [turn % 2, 1 - turn % 2] {
            if side == 0 {
                let (t, lat) = bare_chunk(conn, pk, slice, 1, &format!("bare_{round}_{turn}"))?;
                base_time += t;
                base_lat.extend(lat);
                continue;
            }
            let start = Instant::now();
            for text in slice {
                let t = Instant::now();
                m.add_message("bench", conv, Role::User, text.clone(), None)
                    .await?;
                ours_lat.push(t.elapsed());
            }
            ours_time += start.elapsed();
        }
    }
    base.round(texts.len(), base_time, base_lat);
    ours.round(texts.len(), ours_time, ours_lat);
    Ok(())
}

/// Runs the append scenarios.
pub async fn run(
    dir: &Path,
    plan: &Plan,
    rows: &mut Vec<Row>,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let mut g = Gen::new(7);
    let texts: Vec<String> = (0..plan.appends).map(|_| g.text()).collect();

    // What counting tokens once per append costs (o200k, built once per process).
    convo_core::tokens::count("warm up the tokenizer");
    let mut tok = Series::default();
    for _ in 0..plan.rounds {
        let mut lat = Vec::with_capacity(texts.len());
        let start = Instant::now();
        for t in &texts {
            let s = Instant::now();
            std::hint::black_box(convo_core::tokens::count(t));
            lat.push(s.elapsed());
        }
        tok.round(texts.len(), start.elapsed(), lat);
    }
    rows.push(Row {
        scenario: "count tokens of one message (o200k)".into(),
        series: tok,
        baseline: None,
    });

    // One message per committed transaction, synchronous=FULL on both sides.
    let (bare_conn, bare_pk) = bare(dir, "bare-full.db", Durability::Full).await?;
    let (store, _) = fresh(dir, "append-full.db", Durability::Full).await?;
    let m = Arc::new(ConversationManager::new(store.clone(), "bench", "Helper")?);
    let conv = m.conversation_id();
    let (mut ours, mut base) = (Series::default(), Series::default());
    for r in 0..plan.rounds {
        one_per_commit_round(
            &m,
            &conv,
            (&bare_conn, bare_pk),
            &texts,
            r,
            (&mut ours, &mut base),
        )
        .await?;
    }
    let ratio = ours.rate() / base.rate();
    verdicts.push(Verdict {
        name: "append-1/tx",
        ratio,
        pass: ratio >= 0.8,
        rule: ">=0.80x bare",
    });
    rows.push(Row {
        scenario: "append 1 message/commit (FULL)".into(),
        series: ours,
        baseline: Some(("bare insert 1 row/commit (FULL)".into(), base.rate())),
    });
    rows.push(Row {
        scenario: "  baseline: bare insert 1 row/commit (FULL)".into(),
        series: base,
        baseline: None,
    });

    // Batches of 50.
    let (mut ours, mut base) = (Series::default(), Series::default());
    for r in 0..plan.rounds {
        bare_round(&bare_conn, bare_pk, &texts, 50, &mut base, r + 1000)?;
        let mut lat = Vec::new();
        let start = Instant::now();
        for chunk in texts.chunks(50) {
            let t = Instant::now();
            let items = chunk
                .iter()
                .map(|t| NewItem::message(Role::User, t.clone()))
                .collect();
            m.append_items("bench", &conv, items).await?;
            lat.push(t.elapsed());
        }
        ours.round(texts.len(), start.elapsed(), lat);
    }
    rows.push(Row {
        scenario: "append batches of 50 (FULL), items/s".into(),
        series: ours,
        baseline: Some(("bare 50 rows/commit".into(), base.rate())),
    });
    drop(bare_conn);
    store.close().await?;

    // Group commit: concurrent writers at FULL vs bare one row per commit at NORMAL.
    let (bare_conn, bare_pk) = bare(dir, "bare-normal.db", Durability::Normal).await?;
    let (store, _) = fresh(dir, "group-full.db", Durability::Full).await?;
    let m = Arc::new(ConversationManager::new(store.clone(), "bench", "Helper")?);
    let baseline_row = rows.len();
    let mut baseline_64 = Series::default();
    for writers in [1usize, 16, 64] {
        // Each writer appends at least 50 times a round, so a round measures
        // writers sharing commits rather than mostly its own start and ragged end
        // (at 10 appends each, a 64-writer round lasted ~15 ms); a lone writer, which
        // waits for an fsync per append, at most `plan.appends` times.
        let per = (plan.group_appends / writers).clamp(50, plan.appends);
        let (mut ours, mut base) = (Series::default(), Series::default());
        // As many rows as our round appends, so both sides' rounds last long enough
        // to measure more than their first milliseconds.
        let bare_texts: Vec<String> = texts.iter().cycle().take(per * writers).cloned().collect();
        for r in 0..plan.rounds {
            // The bare side runs a round before each of ours, so a stretch of host
            // noise (fsync time swings on shared virtual machines) lands on both.
            let label = 2000 + writers * plan.rounds + r;
            bare_round(&bare_conn, bare_pk, &bare_texts, 1, &mut base, label)?;
            let start = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..writers {
                let m = m.clone();
                let texts: Vec<String> = texts.iter().cycle().skip(w).take(per).cloned().collect();
                tasks.push(tokio::spawn(async move {
                    let conv = m.generate_new_conversation_id();
                    let mut lat: Vec<Duration> = Vec::with_capacity(per);
                    for t in texts {
                        let s = Instant::now();
                        m.add_message("bench", &conv, Role::User, t, None)
                            .await
                            .expect("append");
                        lat.push(s.elapsed());
                    }
                    lat
                }));
            }
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await?);
            }
            ours.round(per * writers, start.elapsed(), lat);
        }
        let ratio = ours.rate() / base.rate();
        rows.push(Row {
            scenario: format!("append, {writers} concurrent writers (FULL)"),
            series: ours,
            baseline: Some(("bare 1 row/commit (NORMAL)".into(), base.rate())),
        });
        if writers == 64 {
            verdicts.push(Verdict {
                name: "group-commit-64",
                ratio,
                pass: ratio >= 1.0,
                rule: ">=1.00x bare NORMAL",
            });
            baseline_64 = base;
        }
    }
    rows.insert(
        baseline_row,
        Row {
            scenario: "  baseline: bare insert 1 row/commit (NORMAL), beside 64 writers".into(),
            series: baseline_64,
            baseline: None,
        },
    );
    store.close().await?;
    Ok(())
}
