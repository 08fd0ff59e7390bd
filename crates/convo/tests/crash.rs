//! The crash suite: `convo serve` on a SQLite file is SIGKILLed at random moments
//! while clients append (and while background jobs run), restarted, and checked:
//! every acknowledged write is there, in order, and the file is intact; every job
//! ends done or failed, none is lost and none is applied twice.
//!
//! Bounded in time: `CONVO_CRASH_SECS` (default 12) for the append rounds and
//! `CONVO_CRASH_JOB_SECS` (default 6) for the job rounds. `CONVO_TEST_SEED` replays
//! the kill points of a run.

mod reliability;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use convo_core::{JobKind, JobQuery, JobState, Store, UserId};
use reliability::{Dir, Rng, ServerProc, all_items, assert_db_intact, budget, request};
use serde_json::{Value, json};

/// Users the job rounds save for.
const USERS: u64 = 8;

/// Clients appending at once, and the conversations they share.
const WRITERS: usize = 6;
const CONVERSATIONS: usize = 4;

/// What client `w` got acknowledged: (item id, text), in the order acknowledged.
type Acked = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// Appends batches of 1-3 messages until the server goes away; records every
/// acknowledged item. Any answer other than 200 is a failure (returned).
async fn writer(
    addr: String,
    w: usize,
    conv: String,
    acked: Acked,
    sent: Arc<Mutex<Vec<usize>>>,
    seed: u64,
) -> Vec<String> {
    let mut rng = Rng::seeded(seed);
    let mut failures = Vec::new();
    loop {
        let n = rng.range(1, 4) as usize;
        // Sequence numbers are never reused, acknowledged or not, so a batch that
        // committed unacknowledged at a kill stays distinguishable.
        let seq = {
            let mut next = sent.lock().unwrap();
            next[w] += n;
            next[w] - n
        };
        let texts: Vec<String> = (0..n).map(|k| format!("w{w}-{}", seq + k)).collect();
        let items: Vec<Value> = texts
            .iter()
            .map(|t| json!({"type": "message", "role": "user", "content": t}))
            .collect();
        let path = format!("/v1/conversations/{conv}/items");
        match request(&addr, "POST", &path, &[], Some(&json!({ "items": items }))).await {
            Ok(a) if a.status == 200 => {
                let data = a.body["data"].as_array().unwrap();
                assert_eq!(data.len(), n, "{}", a.text);
                let mut mine = acked.lock().unwrap();
                for (item, t) in data.iter().zip(texts) {
                    mine[w].push((item["id"].as_str().unwrap().to_string(), t));
                }
            }
            Ok(a) => {
                failures.push(format!("{} {}", a.status, a.text));
                return failures;
            }
            Err(_) => return failures, // killed: this batch was not acknowledged
        }
    }
}

/// Checks every acknowledged item of every writer: present, same text, in the order
/// acknowledged, no duplicates; unacknowledged tails of a writer in order too.
/// Returns how many acknowledged items were checked.
async fn verify(addr: &str, convs: &[String], acked: &Acked) -> usize {
    let acked = acked.lock().unwrap().clone();
    let mut checked = 0;
    for (c, conv) in convs.iter().enumerate() {
        let stored = all_items(addr, &[], conv).await;
        let mut pos = HashMap::new();
        for (i, (id, _)) in stored.iter().enumerate() {
            assert!(pos.insert(id.clone(), i).is_none(), "duplicate item {id}");
        }
        for (w, mine) in acked
            .iter()
            .enumerate()
            .filter(|(w, _)| w % CONVERSATIONS == c)
        {
            let mut last = None;
            for (id, text) in mine {
                let Some(&p) = pos.get(id) else {
                    panic!("acknowledged item {id} ({text}) of writer {w} is lost");
                };
                assert_eq!(&stored[p].1, text, "item {id} changed");
                assert!(last < Some(p), "item {id} ({text}) is out of order");
                last = Some(p);
                checked += 1;
            }
            // Everything writer w wrote (acknowledged or not) is in its own order.
            let seqs: Vec<usize> = stored
                .iter()
                .filter_map(|(_, t)| t.strip_prefix(&format!("w{w}-"))?.parse().ok())
                .collect();
            assert!(
                seqs.windows(2).all(|p| p[0] < p[1]),
                "writer {w}'s items are out of order: {seqs:?}"
            );
            // Search sees every acknowledged message, whatever the kill left of the
            // search index file: the writer's newest is the likeliest to be missing.
            if let Some((id, text)) = mine.last() {
                let a = request(
                    addr,
                    "GET",
                    &format!("/v1/convo/search?q={text}"),
                    &[],
                    None,
                )
                .await
                .unwrap();
                assert_eq!(a.status, 200, "{}", a.text);
                let found = a.body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|h| h["item_id"] == id.as_str());
                assert!(
                    found,
                    "search for {text} misses acknowledged {id}: {}",
                    a.text
                );
            }
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_kill_9() {
    let dir = Dir::new();
    let mut rng = Rng::from_env();
    let limit = budget("CONVO_CRASH_SECS", 12);
    let mut server = ServerProc::start(dir.serve(&[]));
    let mut convs = Vec::new();
    for _ in 0..CONVERSATIONS {
        let a = request(
            &server.addr,
            "POST",
            "/v1/conversations",
            &[],
            Some(&json!({})),
        )
        .await
        .unwrap();
        assert_eq!(a.status, 200, "{}", a.text);
        convs.push(a.body["id"].as_str().unwrap().to_string());
    }
    let acked: Acked = Arc::new(Mutex::new(vec![Vec::new(); WRITERS]));
    let sent = Arc::new(Mutex::new(vec![0; WRITERS]));
    let start = Instant::now();
    let mut rounds = 0;
    let mut checks = 0;
    // At least three rounds however slow the machine: the budget bounds the time, not
    // what a run must show.
    while start.elapsed() < limit || rounds < 3 {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                tokio::spawn(writer(
                    server.addr.clone(),
                    w,
                    convs[w % CONVERSATIONS].clone(),
                    acked.clone(),
                    sent.clone(),
                    rng.next(),
                ))
            })
            .collect();
        // Kill at a random moment: one round in five as the first writes arrive (a
        // fresh process builds its tokenizer first), the others mid-stream, counted
        // from the round's first acknowledgement.
        if rng.range(0, 5) > 0 {
            let before: usize = acked.lock().unwrap().iter().map(Vec::len).sum();
            let wait = Instant::now();
            while acked.lock().unwrap().iter().map(Vec::len).sum::<usize>() == before
                && wait.elapsed() < Duration::from_secs(5)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.range(1, 400))).await;
        server.kill9();
        for t in tasks {
            let failures = t.await.unwrap();
            assert!(failures.is_empty(), "non-200 answers: {failures:?}");
        }
        rounds += 1;
        assert_db_intact(&dir.db);
        server = ServerProc::start(dir.serve(&[]));
        checks += verify(&server.addr, &convs, &acked).await;
    }
    let total = verify(&server.addr, &convs, &acked).await;
    assert!(server.terminate().success(), "{}", server.stderr_text());
    assert_db_intact(&dir.db);
    assert!(rounds >= 3, "only {rounds} rounds ran");
    assert!(total > 0, "nothing was acknowledged");
    eprintln!(
        "crash: {rounds} SIGKILL rounds survived; {total} acknowledged items all present and in order ({checks} item checks over the rounds); integrity_check ok after every kill"
    );
}

/// A stand-in for an OpenAI-compatible server: every request (after a random delay,
/// so kills land mid-call) answers a name and one profile operation.
async fn stand_in_llm(seed: u64) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let rng = Arc::new(Mutex::new(Rng::seeded(seed)));
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let rng = rng.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Read the head, then the body by its length.
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..h]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= h + 4 + len {
                            break;
                        }
                    }
                }
                let delay = rng.lock().unwrap().range(0, 40);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let content = json!({
                    "name": "Crash test",
                    "profile_operations": [{
                        "op": "appendContentByField",
                        "fieldName": "Hobbies",
                        "content": "crash testing",
                        "observations": "they said so",
                    }],
                })
                .to_string();
                let body = json!({
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "stand-in",
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                })
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_kill_9_and_run_once() {
    let dir = Dir::new();
    let mut rng = Rng::from_env();
    let limit = budget("CONVO_CRASH_JOB_SECS", 6);
    let llm = stand_in_llm(rng.next()).await;
    let cognition = [
        ("CONVO_COGNITION_PROVIDER", "openai".to_string()),
        ("CONVO_COGNITION_BASE_URL", format!("http://{llm}/v1")),
        ("CONVO_COGNITION_MODEL", "stand-in".to_string()),
        ("CONVO_COGNITION_TIMEOUT_SECS", "2".to_string()),
        ("CONVO_COGNITION_LEASE_SECS", "1".to_string()),
        ("CONVO_COGNITION_POLL_INTERVAL_MS", "20".to_string()),
        ("CONVO_COGNITION_CONCURRENCY", "4".to_string()),
        ("CONVO_COGNITION_BACKOFF_BASE_SECS", "0.05".to_string()),
        ("CONVO_COGNITION_BACKOFF_MAX_SECS", "0.2".to_string()),
    ];
    let serve = || {
        let mut c = dir.serve(&[]);
        c.envs(cognition.iter().map(|(k, v)| (*k, v.as_str())));
        ServerProc::start(c)
    };
    let mut server = serve();
    // Conversations whose save was acknowledged, with the jobs it queued.
    let saved: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let start = Instant::now();
    let mut rounds = 0;
    let mut seq = 0u64;
    while start.elapsed() < limit || rounds < 2 {
        let mut tasks = Vec::new();
        for w in 0..3 {
            let addr = server.addr.clone();
            let saved = saved.clone();
            let first = seq;
            seq += 1000;
            tasks.push(tokio::spawn(async move {
                for n in first.. {
                    let id = format!("crash-j{w}-{n}");
                    let body = json!({"chat_log": format!("User: I love crash testing ({n})"), "persona": "Helper"});
                    let path = format!("/v1/convo/conversations/{id}/chat_log");
                    // A user's profile jobs run one at a time, in order: spread the
                    // saves over several users so the queue drains in parallel.
                    let user = format!("u{}", n % USERS);
                    let headers = [("X-Convo-User", user.as_str())];
                    match request(&addr, "PUT", &path, &headers, Some(&body)).await {
                        Ok(a) => {
                            assert_eq!(a.status, 200, "{}", a.text);
                            let q = a.body["jobs_queued"].as_u64().unwrap();
                            saved.lock().unwrap().insert(id, q);
                        }
                        Err(_) => return,
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        // As above: most kills counted from the round's first acknowledged save.
        if rng.range(0, 4) > 0 {
            let before = saved.lock().unwrap().len();
            let wait = Instant::now();
            while saved.lock().unwrap().len() == before && wait.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.range(20, 500))).await;
        server.kill9();
        for t in tasks {
            t.await.unwrap();
        }
        rounds += 1;
        assert_db_intact(&dir.db);
        server = serve();
    }
    // Let the restarted worker drain the queue; jobs leased by a killed worker come
    // back when their lease runs out.
    let store = convo_store_sqlite::SqliteStore::open(&dir.db, Default::default())
        .await
        .unwrap();
    let drain = Instant::now();
    loop {
        let c = store.job_counts().await.unwrap();
        if c.pending == 0 && c.running == 0 {
            break;
        }
        if drain.elapsed() > Duration::from_secs(90) {
            let stuck = store
                .list_jobs(&JobQuery {
                    state: Some(JobState::Running),
                    ..Default::default()
                })
                .await;
            let pending = store
                .list_jobs(&JobQuery {
                    state: Some(JobState::Pending),
                    limit: Some(3),
                    ..Default::default()
                })
                .await;
            panic!(
                "jobs still pending or running after 90 s: {c:?}\nrunning: {stuck:?}\npending: {pending:?}\nserver log:\n{}",
                server.stderr_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(server.terminate().success(), "{}", server.stderr_text());
    assert_db_intact(&dir.db);

    let saved = saved.lock().unwrap().clone();
    let mut jobs_by_id = HashMap::new();
    for (conv, queued) in &saved {
        let q = JobQuery {
            conversation_id: Some(conv.clone()),
            limit: Some(100),
            ..Default::default()
        };
        let jobs = store.list_jobs(&q).await.unwrap();
        assert!(
            jobs.len() as u64 >= *queued,
            "{conv}: {queued} jobs queued, {} found",
            jobs.len()
        );
        for kind in [JobKind::Name, JobKind::Profile] {
            assert!(
                jobs.iter().any(|j| j.kind == kind),
                "{conv}: no {kind:?} job: lost"
            );
        }
        for j in jobs {
            assert!(
                matches!(j.state, JobState::Done | JobState::Failed),
                "{conv}: job {} ended {:?}",
                j.id,
                j.state
            );
            jobs_by_id.insert(j.id.clone(), j);
        }
    }
    // Applied once: each done profile job wrote its one operation exactly once.
    let mut per_job: HashMap<String, usize> = HashMap::new();
    for u in 0..USERS {
        let user = UserId::new(format!("u{u}")).unwrap();
        let audit = store.profile_history(&user, None, 1_000_000).await.unwrap();
        for e in &audit {
            if let Some(j) = &e.source.job_id {
                *per_job.entry(j.clone()).or_default() += 1;
            }
        }
    }
    for (job, n) in &per_job {
        assert_eq!(*n, 1, "job {job} was applied {n} times");
    }
    let done_profile: Vec<&String> = jobs_by_id
        .values()
        .filter(|j| j.kind == JobKind::Profile && j.state == JobState::Done)
        .map(|j| &j.id)
        .collect();
    for j in &done_profile {
        assert!(
            per_job.contains_key(*j),
            "done profile job {j} wrote nothing"
        );
    }
    let failed = jobs_by_id
        .values()
        .filter(|j| j.state == JobState::Failed)
        .count();
    // Jobs a kill interrupted and a restarted worker ran again.
    let rerun = jobs_by_id.values().filter(|j| j.attempts > 1).count();
    assert!(
        rounds >= 2 && !saved.is_empty(),
        "{rounds} rounds, {} saves",
        saved.len()
    );
    eprintln!(
        "crash with jobs: {rounds} SIGKILL rounds; {} acknowledged saves; {} jobs all done or failed ({failed} failed), none lost; {rerun} ran again after a kill; {} profile jobs applied exactly once",
        saved.len(),
        jobs_by_id.len(),
        done_profile.len()
    );
}
