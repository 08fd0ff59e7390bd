//! Read scenarios: history of a 1,000-item conversation, listing a user's newest 50
//! conversations, full-text search — in small and large databases.

use convo_core::{ConversationManager, ConversationQuery, HistoryOptions, Store};
use convo_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::data::{self, Gen};
use crate::dbfile;
use crate::stats::{Row, Series, timed};
use crate::{Plan, Verdict};

const TARGET_USER: &str = "target";
const TARGET_CONV: &str = "conv_target";

async fn open(path: &Path, durability: Durability) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(
        SqliteStore::open(
            path,
            SqliteOptions {
                durability,
                ..Default::default()
            },
        )
        .await?,
    ))
}

/// A database of `items` items in conversations of 1,000, over 100 users; the target
/// user's conversation is one of them.
pub async fn history_db(dir: &Path, items: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("history-{items}.db"));
    if path.exists() {
        return Ok(path);
    }
    let t = Instant::now();
    let seeding = dbfile::start_seeding(&path);
    let store = open(&seeding, Durability::Normal).await?;
    let m = Arc::new(ConversationManager::new(
        store.clone(),
        TARGET_USER,
        "Helper",
    )?);
    let conversations = (items / 1000).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conversations {
        let m = m.clone();
        tasks.spawn(async move {
            let (id, user) = if c == conversations / 2 {
                (TARGET_CONV.to_string(), TARGET_USER.to_string())
            } else {
                (format!("conv_{c:08}"), format!("user{}", c % 100))
            };
            let at = 1_700_000_000_000 + c as i64 * 10_000;
            let its = Gen::new(c as u64).items(&id, 1000, at);
            let conv = data::conversation(&id, &user, "Helper", at);
            m.import_conversation(conv, its, false).await.expect("seed");
        });
        if tasks.len() >= 8 {
            tasks.join_next().await.transpose()?;
        }
    }
    while tasks.join_next().await.transpose()?.is_some() {}
    store.close().await?;
    dbfile::finish_seeding(&seeding, &path)?;
    println!(
        "  seeded {} ({items} items) in {:.1}s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(path)
}

/// A database of `n` conversations over 1,000 users plus 200 of the target user's.
async fn listing_db(dir: &Path, n: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("listing-{n}.db"));
    if path.exists() {
        return Ok(path);
    }
    let t = Instant::now();
    let seeding = dbfile::start_seeding(&path);
    let store = open(&seeding, Durability::Normal).await?;
    let m = Arc::new(ConversationManager::new(
        store.clone(),
        TARGET_USER,
        "Helper",
    )?);
    // Hundreds of imports in flight, so the writer commits them in large groups (four
    // at a time, one per task, took 6 s for 100k conversations).
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..n {
        let user = if c % (n / 200).max(1) == 0 {
            TARGET_USER.to_string()
        } else {
            format!("user{}", c % 1000)
        };
        let persona = if c % 3 == 0 { "Coder" } else { "Helper" };
        let conv = data::conversation(
            &format!("conv_{c:09}"),
            &user,
            persona,
            1_700_000_000_000 + c as i64 * 1000,
        );
        let m = m.clone();
        tasks.spawn(async move { m.import_conversation(conv, vec![], false).await });
        if tasks.len() >= 512
            && let Some(done) = tasks.join_next().await
        {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    store.close().await?;
    dbfile::finish_seeding(&seeding, &path)?;
    println!(
        "  seeded {} ({n} conversations) in {:.1}s",
        path.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(path)
}

fn bare_conn(path: &Path) -> anyhow::Result<Connection> {
    let c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.execute_batch("PRAGMA temp_store = MEMORY;")?;
    Ok(c)
}

type BareItem = (
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

fn bare_history(c: &Connection) -> anyhow::Result<Vec<BareItem>> {
    let pk: i64 = c
        .prepare_cached("SELECT pk FROM conversations WHERE id = ?1 AND user_id = ?2")?
        .query_row([TARGET_CONV, TARGET_USER], |r| r.get(0))?;
    let mut stmt = c.prepare_cached(
        "SELECT id, kind, role, text, parts, call_id, name, arguments, message_id, tokens, created_at \
         FROM items WHERE conversation_pk = ?1 ORDER BY pk",
    )?;
    let rows = stmt
        .query_map([pk], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The store's read of the items alone, to split history time between the read and
/// the rendering.
async fn items_series(path: &Path, plan: &Plan) -> anyhow::Result<Series> {
    let store = open(path, Durability::Full).await?;
    let m = Arc::new(ConversationManager::new(
        store.clone(),
        TARGET_USER,
        "Helper",
    )?);
    let mut s = Series::default();
    for _ in 0..plan.rounds {
        let m2 = m.clone();
        timed(&mut s, plan.reads, |_| {
            let m = m2.clone();
            async move {
                let items = m.all_items(TARGET_USER, TARGET_CONV).await.expect("items");
                assert_eq!(items.len(), 1000);
            }
        })
        .await;
    }
    let items = m.all_items(TARGET_USER, TARGET_CONV).await?;
    let mut r = Series::default();
    for _ in 0..plan.rounds {
        let mut lat = Vec::with_capacity(plan.reads);
        let start = Instant::now();
        for _ in 0..plan.reads {
            let t = Instant::now();
            let h = convo_core::history::render_chat(&items, HistoryOptions::default());
            std::hint::black_box(h);
            lat.push(t.elapsed());
        }
        r.round(plan.reads, start.elapsed(), lat);
    }
    println!(
        "  render 1000 items to chat JSON: p50 {:?}",
        r.pct(50.0).unwrap_or_default()
    );
    store.close().await?;
    Ok(s)
}

async fn history_series(
    path: &Path,
    plan: &Plan,
    budget: Option<u32>,
) -> anyhow::Result<(Series, Series)> {
    let store = open(path, Durability::Full).await?;
    let m = Arc::new(ConversationManager::new(
        store.clone(),
        TARGET_USER,
        "Helper",
    )?);
    let bare = bare_conn(path)?;
    let (mut ours, mut base) = (Series::default(), Series::default());
    // Warm both paths (page cache, statement caches, the tokenizer is not used on reads).
    m.get_history(TARGET_USER, TARGET_CONV).await?;
    bare_history(&bare)?;
    for _ in 0..plan.rounds {
        let mut lat = Vec::with_capacity(plan.reads);
        let start = Instant::now();
        for _ in 0..plan.reads {
            let t = Instant::now();
            assert_eq!(bare_history(&bare)?.len(), 1000);
            lat.push(t.elapsed());
        }
        base.round(plan.reads, start.elapsed(), lat);
        let m2 = m.clone();
        timed(&mut ours, plan.reads, |_| {
            let m = m2.clone();
            async move {
                let h = m
                    .get_history_with(
                        TARGET_USER,
                        TARGET_CONV,
                        HistoryOptions { max_tokens: budget },
                    )
                    .await
                    .expect("history");
                assert!(!h.messages.is_empty());
            }
        })
        .await;
    }
    store.close().await?;
    Ok((ours, base))
}

async fn list_series(path: &Path, plan: &Plan) -> anyhow::Result<(Series, Series)> {
    let store = open(path, Durability::Full).await?;
    let m = Arc::new(ConversationManager::new(
        store.clone(),
        TARGET_USER,
        "Helper",
    )?);
    let bare = bare_conn(path)?;
    let (mut ours, mut base) = (Series::default(), Series::default());
    for _ in 0..plan.rounds {
        let mut lat = Vec::with_capacity(plan.list_reads);
        let start = Instant::now();
        for _ in 0..plan.list_reads {
            let t = Instant::now();
            let mut stmt = bare.prepare_cached(
                "SELECT id, user_id, persona, name, name_by_person, created_at, updated_at, metadata, chat_log \
                 FROM conversations WHERE user_id = ?1 ORDER BY updated_at DESC, pk DESC LIMIT 50",
            )?;
            let n = stmt
                .query_map([TARGET_USER], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(7)?,
                    ))
                })?
                .count();
            assert_eq!(n, 50);
            lat.push(t.elapsed());
        }
        base.round(plan.list_reads, start.elapsed(), lat);
        let m2 = m.clone();
        timed(&mut ours, plan.list_reads, |_| {
            let m = m2.clone();
            async move {
                let q = ConversationQuery {
                    persona: None,
                    limit: 50,
                    cursor: None,
                };
                let p = m.list_conversations(TARGET_USER, &q).await.expect("list");
                assert_eq!(p.data.len(), 50);
            }
        })
        .await;
    }
    store.close().await?;
    Ok((ours, base))
}

/// Deletes of a 1,000-item conversation of the target user, each imported just before
/// (untimed), so the database ends as it began. A delete is one statement, but the
/// triggers it fires run once per item: version 5's took 40 s here for one such
/// delete in a database of a million items.
async fn delete_series(m: &ConversationManager, plan: &Plan) -> anyhow::Result<Series> {
    let mut s = Series::default();
    let per_round = 4;
    for round in 0..plan.rounds {
        let mut lat = Vec::with_capacity(per_round);
        for k in 0..per_round {
            let id = format!("conv_deleted_{round}_{k}");
            let at = 1_600_000_000_000;
            let its = Gen::new(9_000 + k as u64).items(&id, 1000, at);
            let conv = data::conversation(&id, TARGET_USER, "Helper", at);
            m.import_conversation(conv, its, false).await?;
            let t = Instant::now();
            m.delete_conversation(TARGET_USER, &id).await?;
            lat.push(t.elapsed());
        }
        let spent = lat.iter().sum();
        s.round(per_round, spent, lat);
    }
    Ok(s)
}

/// Runs the read scenarios.
pub async fn run(
    dir: &Path,
    plan: &Plan,
    rows: &mut Vec<Row>,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    let small = history_db(dir, plan.items.0).await?;
    let large = history_db(dir, plan.items.1).await?;
    let (s_ours, s_base) = history_series(&small, plan, None).await?;
    let (l_ours, l_base) = history_series(&large, plan, None).await?;
    let (b_ours, b_base) = history_series(&large, plan, Some(4000)).await?;
    let only_items = items_series(&large, plan).await?;
    let ratio = l_ours.rate() / l_base.rate();
    verdicts.push(Verdict {
        name: "history-1000",
        ratio,
        pass: ratio >= 0.5,
        rule: ">=0.50x bare select",
    });
    let flat = s_ours.rate() / l_ours.rate();
    verdicts.push(Verdict {
        name: "history-flat",
        ratio: flat,
        pass: flat <= 1.5,
        rule: "small/large <=1.50",
    });
    let n = |x: usize| {
        if x >= 1_000_000 {
            format!("{}M", x / 1_000_000)
        } else {
            format!("{}k", x / 1000)
        }
    };
    rows.push(Row {
        scenario: format!("history 1000 items, db {} items", n(plan.items.0)),
        series: s_ours,
        baseline: Some(("bare select".into(), s_base.rate())),
    });
    rows.push(Row {
        scenario: format!("history 1000 items, db {} items", n(plan.items.1)),
        series: l_ours,
        baseline: Some(("bare select".into(), l_base.rate())),
    });
    rows.push(Row {
        scenario: format!(
            "history 1000 items, 4000-token budget, db {}",
            n(plan.items.1)
        ),
        series: b_ours,
        baseline: Some(("bare select".into(), b_base.rate())),
    });
    rows.push(Row {
        scenario: format!(
            "  store read of the 1000 items only, db {}",
            n(plan.items.1)
        ),
        baseline: Some(("bare select".into(), l_base.rate())),
        series: only_items,
    });
    rows.push(Row {
        scenario: format!("  baseline: bare select 1000 rows, db {}", n(plan.items.1)),
        series: l_base,
        baseline: None,
    });

    // Full-text search over the large history database.
    let store = open(&large, Durability::Full).await?;
    let m = Arc::new(ConversationManager::new(
        store.clone(),
        TARGET_USER,
        "Helper",
    )?);
    let mut s = Series::default();
    for _ in 0..plan.rounds {
        let m2 = m.clone();
        timed(&mut s, plan.reads / 4, |i| {
            let m = m2.clone();
            let q = ["weather paris", "rust database", "hotel booking", "coffee"][i % 4];
            async move {
                m.search(TARGET_USER, q, None, 20).await.expect("search");
            }
        })
        .await;
    }
    rows.push(Row {
        scenario: format!("search a user's messages, db {} messages", n(plan.items.1)),
        series: s,
        baseline: None,
    });
    rows.push(Row {
        scenario: format!(
            "delete a 1000-item conversation, db {} items",
            n(plan.items.1)
        ),
        series: delete_series(&m, plan).await?,
        baseline: None,
    });
    store.close().await?;

    let small = listing_db(dir, plan.conversations.0).await?;
    let large = listing_db(dir, plan.conversations.1).await?;
    let (s_ours, s_base) = list_series(&small, plan).await?;
    let (l_ours, l_base) = list_series(&large, plan).await?;
    let flat = s_ours.rate() / l_ours.rate();
    verdicts.push(Verdict {
        name: "list-flat",
        ratio: flat,
        pass: flat <= 1.5,
        rule: "small/large <=1.50",
    });
    rows.push(Row {
        scenario: format!(
            "list newest 50, db {} conversations",
            n(plan.conversations.0)
        ),
        series: s_ours,
        baseline: Some(("bare select".into(), s_base.rate())),
    });
    rows.push(Row {
        scenario: format!(
            "list newest 50, db {} conversations",
            n(plan.conversations.1)
        ),
        series: l_ours,
        baseline: Some(("bare select".into(), l_base.rate())),
    });
    Ok(())
}
