//! Several processes on one SQLite file at once: `convo serve` with many clients on
//! many conversations (and its in-process worker), CLI writers (`convo add`,
//! `convo save`) in loops, and a `convo work --follow`. No "database is locked" (or
//! any other error) may reach a user, and nothing acknowledged may be lost or
//! reordered.

mod reliability;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use convo_core::Store;
use reliability::{Dir, ServerProc, all_items, assert_db_intact, convo, request};
use serde_json::{Value, json};

const HTTP_CLIENTS: usize = 8;
const CONVERSATIONS: usize = 32;
const REQUESTS_PER_CLIENT: usize = 30;
const CLI_ADDS: usize = 12;
const CLI_SAVES: usize = 8;

/// (writer label, conversation index, item id, text), as acknowledged.
type Acked = Arc<Mutex<Vec<(String, usize, String, String)>>>;

/// Runs a CLI command to completion; any failure, or "locked" anywhere in its
/// output, is returned as an error for the test to report.
fn run(mut c: Command) -> Result<String, String> {
    let out = c.stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() || stderr.to_lowercase().contains("locked") {
        return Err(format!("{c:?}: {}: {stderr}", out.status));
    }
    Ok(stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_cli_writers_and_worker_share_one_file() {
    let dir = Dir::new();
    let server = ServerProc::start(dir.serve(&[]));
    let addr = server.addr.clone();
    let mut convs = Vec::new();
    for _ in 0..CONVERSATIONS {
        let a = request(
            &addr,
            "POST",
            "/v1/conversations",
            &[],
            Some(&json!({"persona": "Helper"})),
        )
        .await
        .unwrap();
        assert_eq!(a.status, 200, "{}", a.text);
        convs.push(a.body["id"].as_str().unwrap().to_string());
    }

    // The background worker, following the queue the whole time.
    let worker = convo(&dir.db, dir.home())
        .args(["work", "--follow"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let acked: Acked = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();

    // CLI writers on the two busiest conversations, and a CLI saver queueing jobs.
    let mut threads = Vec::new();
    for (w, conv) in convs.iter().take(2).enumerate() {
        let (db, home) = (dir.db.clone(), dir.home().to_path_buf());
        let conv = conv.clone();
        let (acked, failures) = (acked.clone(), failures.clone());
        threads.push(std::thread::spawn(move || {
            for n in 0..CLI_ADDS {
                let text = format!("cli{w}-{n}");
                let mut c = convo(&db, &home);
                c.args(["add", "--user", "local", &conv, "--role", "user", &text]);
                match run(c) {
                    Ok(out) => acked.lock().unwrap().push((
                        format!("cli{w}"),
                        w,
                        out.trim().to_string(),
                        text,
                    )),
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }
    {
        let (db, home) = (dir.db.clone(), dir.home().to_path_buf());
        let failures = failures.clone();
        threads.push(std::thread::spawn(move || {
            for n in 0..CLI_SAVES {
                let mut c = convo(&db, &home);
                c.args([
                    "save",
                    "--user",
                    "local",
                    "--persona",
                    "Helper",
                    &format!("saved-{n}"),
                    "User: I grow orchids on my balcony.",
                ]);
                if let Err(e) = run(c) {
                    failures.lock().unwrap().push(e);
                }
            }
        }));
    }

    // Many HTTP clients over many conversations, 1-3 items a request.
    let mut tasks = Vec::new();
    for t in 0..HTTP_CLIENTS {
        let (addr, convs) = (addr.clone(), convs.clone());
        let (acked, failures) = (acked.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            for r in 0..REQUESTS_PER_CLIENT {
                let c = (t + r * HTTP_CLIENTS) % CONVERSATIONS;
                let n = 1 + (t + r) % 3;
                let texts: Vec<String> = (0..n).map(|k| format!("h{t}-{r}-{k}")).collect();
                let items: Vec<Value> = texts
                    .iter()
                    .map(|x| json!({"type": "message", "role": "user", "content": x}))
                    .collect();
                let path = format!("/v1/conversations/{}/items", convs[c]);
                let a = request(&addr, "POST", &path, &[], Some(&json!({ "items": items })))
                    .await
                    .unwrap();
                if a.status != 200 {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("POST {path}: {} {}", a.status, a.text));
                    continue;
                }
                let mut acked = acked.lock().unwrap();
                for (i, x) in a.body["data"].as_array().unwrap().iter().zip(texts) {
                    acked.push((format!("h{t}"), c, i["id"].as_str().unwrap().to_string(), x));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "errors reached a user: {failures:#?}");

    // Every acknowledged item is there, and each writer's items are in its order.
    let acked = acked.lock().unwrap().clone();
    let mut checked = 0;
    for (c, conv) in convs.iter().enumerate() {
        let stored = all_items(&addr, &[], conv).await;
        let pos: std::collections::HashMap<&str, usize> = stored
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.as_str(), i))
            .collect();
        assert_eq!(pos.len(), stored.len(), "duplicate items in {conv}");
        let mut last: std::collections::HashMap<&str, usize> = Default::default();
        for (writer, _, id, text) in acked.iter().filter(|a| a.1 == c) {
            let p = *pos
                .get(id.as_str())
                .unwrap_or_else(|| panic!("acknowledged {id} ({text}) is lost"));
            assert_eq!(&stored[p].1, text);
            if let Some(&before) = last.get(writer.as_str()) {
                assert!(before < p, "{writer}'s {text} is out of order in {conv}");
            }
            last.insert(writer, p);
            checked += 1;
        }
        assert_eq!(
            stored.len(),
            acked.iter().filter(|a| a.1 == c).count(),
            "{conv} holds items nobody was told about"
        );
    }

    // The worker drains what the saves queued; then it stops cleanly on SIGTERM.
    let store = convo_store_sqlite::SqliteStore::open(&dir.db, Default::default())
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let c = store.job_counts().await.unwrap();
        if c.pending == 0 && c.running == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "worker did not drain: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = store.job_counts().await.unwrap();
    assert_eq!(counts.done, 2 * CLI_SAVES as u64, "{counts:?}");
    let pid = worker.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let out = worker.wait_with_output().unwrap();
    let werr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "convo work: {werr}");
    assert!(!werr.to_lowercase().contains("locked"), "{werr}");
    let serr = server.stderr_text();
    assert!(!serr.to_lowercase().contains("locked"), "{serr}");
    drop(server);
    assert_db_intact(&dir.db);
    eprintln!(
        "concurrency: 1 server ({HTTP_CLIENTS} clients, {CONVERSATIONS} conversations), 2 CLI writers, 1 CLI saver, `convo work --follow` and the server's own worker on one file; {checked} acknowledged items checked, {} jobs done, no error reached a user",
        counts.done
    );
}
