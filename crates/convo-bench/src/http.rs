//! HTTP scenarios against a real `convo serve` child process over loopback: appends
//! and history reads beside the server's own no-op route under the same load,
//! appends while 1,000 jobs run against a slow provider, and resident memory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::stats::{Row, Series};
use crate::{Plan, Verdict};

/// A running `convo serve`.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(
        convo: &Path,
        db: &Path,
        work: bool,
        env: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        let mut cmd = Command::new(convo);
        cmd.arg("--db")
            .arg(db)
            .args(["-q", "serve", "--addr", "127.0.0.1:0"]);
        if !work {
            cmd.arg("--no-work");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let mut lines = BufReader::new(stderr).lines();
        let base = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("listening on ") {
                    return Ok(rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string());
                }
            }
            anyhow::bail!("convo serve exited before listening")
        })
        .await??;
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server { child, base })
    }

    /// CPU time the server has used, exited threads included (`/proc/PID/stat`, in
    /// clock ticks of 10 ms). Summing the live threads' `schedstat` instead lost the
    /// time of blocking-pool threads that exited mid-series, and read 0.
    fn cpu(&self) -> Option<Duration> {
        let pid = self.child.id()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name: utime and stime are 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
    }
}

/// What one load request does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Noop,
    Append,
    History,
}

/// `conns` connections, each sending requests back to back for `secs`, spread over
/// up to two client threads with an event loop each, as `wrk -t2` does. The load
/// generator shares the two vCPUs with the server it measures, so its own work per
/// request is kept near wrk's: reqwest (a shared connection pool behind a lock, and
/// its per-request machinery) took about as much CPU per append as the server did.
async fn load(
    base: &str,
    kind: Load,
    conns: usize,
    secs: f64,
    convs: &[String],
) -> anyhow::Result<(usize, Duration, Vec<Duration>)> {
    let addr = base
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http:// address: {base}"))?
        .trim_end_matches('/')
        .to_string();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let threads = conns.clamp(1, 2);
    let clients: Vec<std::thread::JoinHandle<anyhow::Result<Vec<Duration>>>> = (0..threads)
        .map(|t| {
            let targets: Vec<String> = (t..conns)
                .step_by(threads)
                .map(|c| convs[c % convs.len()].clone())
                .collect();
            let addr = addr.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(async move {
                        let mut set = tokio::task::JoinSet::new();
                        for conv in targets {
                            set.spawn(connection(addr.clone(), kind, conv, deadline));
                        }
                        let mut lat = Vec::new();
                        while let Some(done) = set.join_next().await {
                            lat.extend(done??);
                        }
                        Ok(lat)
                    })
            })
        })
        .collect();
    let lat = tokio::task::spawn_blocking(move || {
        let mut lat = Vec::new();
        for c in clients {
            let mine = c
                .join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
            lat.extend(mine);
        }
        anyhow::Ok(lat)
    })
    .await??;
    Ok((lat.len(), start.elapsed(), lat))
}

/// One keep-alive connection sending `kind` requests back to back until `deadline`;
/// returns each request's latency. Any failed request fails the benchmark.
async fn connection(
    addr: String,
    kind: Load,
    conv: String,
    deadline: Instant,
) -> anyhow::Result<Vec<Duration>> {
    use http_body_util::{BodyExt, Full};
    use hyper::{Method, Request, header};

    let stream = tokio::net::TcpStream::connect(&addr).await?;
    stream.set_nodelay(true)?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    // Built once: only the request's own bytes are made per request.
    let (method, path, body) = match kind {
        Load::Noop => (Method::GET, "/noop".to_string(), bytes::Bytes::new()),
        Load::Append => (
            Method::POST,
            format!("/v1/conversations/{conv}/items"),
            bytes::Bytes::from(
                json!({"items": [{"type": "message", "role": "user", "content": "How warm is it in Paris today? I am packing for a trip."}]})
                    .to_string(),
            ),
        ),
        Load::History => (
            Method::GET,
            format!("/v1/convo/conversations/{conv}/history"),
            bytes::Bytes::new(),
        ),
    };
    let mut lat = Vec::new();
    while Instant::now() < deadline {
        let t = Instant::now();
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path.as_str())
            .header(header::HOST, addr.as_str());
        if kind == Load::Append {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        send.ready().await?;
        let res = send
            .send_request(req.body(Full::new(body.clone()))?)
            .await?;
        let status = res.status();
        let answer = res.into_body().collect().await?.to_bytes();
        anyhow::ensure!(
            status.is_success(),
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        lat.push(t.elapsed());
    }
    drop(send);
    driver.await??;
    Ok(lat)
}

/// `rounds` rounds of [`load`]; prints the server's CPU time per request, which
/// moves far less than throughput when the machine is noisy.
async fn series(
    server: &Server,
    kind: Load,
    conns: usize,
    secs: f64,
    rounds: usize,
    convs: &[String],
) -> anyhow::Result<Series> {
    let mut s = interleaved(server, &[(kind, convs)], conns, secs, rounds).await?;
    Ok(s.remove(0))
}

/// `rounds` rounds of each load in `loads` (with the conversations it uses), taken in
/// turn: a round of each, then the next. A virtual machine's speed drifts over
/// seconds (the no-op rate moved from 83k to 112k requests/s between neighbouring
/// runs here); series run one after the other put that drift into their ratio, while
/// interleaved rounds share it. Prints each load's server CPU time per request.
async fn interleaved(
    server: &Server,
    loads: &[(Load, &[String])],
    conns: usize,
    secs: f64,
    rounds: usize,
) -> anyhow::Result<Vec<Series>> {
    let mut out = vec![Series::default(); loads.len()];
    let mut cpu = vec![(Duration::ZERO, 0usize); loads.len()];
    for _ in 0..rounds {
        for (i, (kind, convs)) in loads.iter().enumerate() {
            let before = server.cpu();
            let (n, elapsed, lat) = load(&server.base, *kind, conns, secs, convs).await?;
            if let (Some(a), Some(b)) = (before, server.cpu()) {
                cpu[i].0 += b.saturating_sub(a);
            }
            cpu[i].1 += n;
            out[i].round(n, elapsed, lat);
        }
    }
    for ((kind, _), (time, requests)) in loads.iter().zip(cpu) {
        let name = match kind {
            Load::Noop => "no-op",
            Load::Append => "append",
            Load::History => "history",
        };
        println!(
            "  server CPU per request, {name} at {conns} connections: {:.1} µs",
            time.as_secs_f64() * 1e6 / requests.max(1) as f64
        );
    }
    Ok(out)
}

/// Creates `n` conversations of `items` messages each; returns their ids.
async fn conversations(base: &str, n: usize, items: usize) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let r: serde_json::Value = client
            .post(format!("{base}/v1/conversations"))
            .json(&json!({}))
            .send()
            .await?
            .json()
            .await?;
        let id = r["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no id in {r}"))?
            .to_string();
        let mut left = items;
        while left > 0 {
            let batch: Vec<_> = (0..left.min(20))
                .map(|i| json!({"type": "message", "role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("message {i} about the weather in Paris and trains to Lyon")}))
                .collect();
            left -= batch.len();
            let r = client
                .post(format!("{base}/v1/conversations/{id}/items"))
                .json(&json!({"items": batch}))
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "seeding failed: {}", r.status());
        }
        ids.push(id);
    }
    Ok(ids)
}

/// A stand-in LLM that answers every chat completion after `delay`.
async fn slow_provider(delay: Duration) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // Read one request (headers + Content-Length body), answer, repeat.
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + len);
                    tokio::time::sleep(delay).await;
                    let content = r#"{\"name\": \"Weather in Paris\", \"profile_operations\": []}"#;
                    let body = format!(
                        r#"{{"id":"x","object":"chat.completion","created":0,"model":"slow","choices":[{{"index":0,"finish_reason":"stop","message":{{"role":"assistant","content":"{content}"}}}}],"usage":{{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}}}"#
                    );
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(format!("http://{addr}/v1"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn fresh_db(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    crate::dbfile::remove(&p);
    p
}

/// Runs the HTTP scenarios with the `convo` binary at `convo`.
pub async fn run(
    convo: &Path,
    dir: &Path,
    plan: &Plan,
    quick: bool,
    rows: &mut Vec<Row>,
    verdicts: &mut Vec<Verdict>,
) -> anyhow::Result<()> {
    // Eleven series of two rounds in a quick run: at 1 s a round they took ~22 s, and
    // the whole run passed a minute on a slow host.
    let secs = if quick { 0.8 } else { 3.0 };
    let rounds = if quick { 2 } else { plan.rounds };
    let server = Server::start(convo, &fresh_db(dir, "http.db"), false, &[]).await?;
    // Appends go to their own conversations, so the history reads always read 100.
    let convs = conversations(&server.base, 64, 1).await?;
    let read_convs = conversations(&server.base, 16, 100).await?;
    for conns in [1usize, 16, 64] {
        let loads = [
            (Load::Noop, convs.as_slice()),
            (Load::Append, convs.as_slice()),
            (Load::History, read_convs.as_slice()),
        ];
        let mut measured = interleaved(&server, &loads, conns, secs, rounds)
            .await?
            .into_iter();
        let (noop, append, history) = (
            measured.next().expect("three loads"),
            measured.next().expect("three loads"),
            measured.next().expect("three loads"),
        );
        let ratio = append.rate() / noop.rate();
        if conns == 64 {
            verdicts.push(Verdict {
                name: "http-append-64",
                ratio,
                pass: ratio >= 0.5,
                rule: ">=0.50x no-op",
            });
        }
        let base_rate = noop.rate();
        rows.push(Row {
            scenario: format!("HTTP no-op, {conns} connections"),
            series: noop,
            baseline: None,
        });
        rows.push(Row {
            scenario: format!("HTTP append 1 message, {conns} connections"),
            series: append,
            baseline: Some(("no-op".into(), base_rate)),
        });
        rows.push(Row {
            scenario: format!("HTTP history of 100 items, {conns} connections"),
            series: history,
            baseline: Some(("no-op".into(), base_rate)),
        });
    }
    drop(server);

    // Appends while 1,000 jobs run against a provider that takes 2 s a call, vs an
    // idle queue.
    let provider = slow_provider(Duration::from_secs(2)).await?;
    let env = [
        ("CONVO_COGNITION_PROVIDER", "openai".to_string()),
        ("CONVO_COGNITION_BASE_URL", provider),
        ("CONVO_COGNITION_MODEL", "slow".to_string()),
        ("CONVO_COGNITION_CONCURRENCY", "4".to_string()),
    ];
    let db = fresh_db(dir, "jobs.db");
    let idle = Server::start(convo, &db, false, &env).await?;
    let convs = conversations(&idle.base, 16, 4).await?;
    let quiet = series(&idle, Load::Append, 16, secs, rounds, &convs).await?;
    drop(idle);
    let busy = Server::start(convo, &db, true, &env).await?;
    let client = reqwest::Client::new();
    for i in 0..500 {
        let id = format!("conv_jobs_{i:04}");
        let r = client
            .put(format!("{}/v1/convo/conversations/{id}/chat_log", busy.base))
            .json(&json!({"chat_log": format!("User: trip {i}\nAssistant: sure"), "persona": "Helper"}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "save failed: {}", r.status());
    }
    let queued: serde_json::Value = client
        .get(format!("{}/v1/convo/jobs/counts", busy.base))
        .send()
        .await?
        .json()
        .await?;
    let loaded = series(&busy, Load::Append, 16, secs, rounds, &convs).await?;
    let ratio = loaded.rate() / quiet.rate();
    verdicts.push(Verdict {
        name: "jobs-no-slowdown",
        ratio,
        pass: ratio >= 0.8,
        rule: ">=0.80x idle queue",
    });
    let quiet_rate = quiet.rate();
    rows.push(Row {
        scenario: "HTTP append, 16 conns, idle queue".into(),
        series: quiet,
        baseline: None,
    });
    rows.push(Row {
        scenario: format!(
            "HTTP append, 16 conns, {} jobs queued, slow provider",
            queued["pending"].as_u64().unwrap_or(0) + queued["running"].as_u64().unwrap_or(0)
        ),
        series: loaded,
        baseline: Some(("idle queue".into(), quiet_rate)),
    });
    drop(busy);

    // Resident memory after the same reads over small and large databases.
    let mut rss = Vec::new();
    for items in [plan.items.0, plan.items.1] {
        let db = crate::reads::history_db(dir, items).await?;
        let server = Server::start(convo, &db, false, &[]).await?;
        let client = reqwest::Client::new();
        for _ in 0..50 {
            let r = client
                .get(format!(
                    "{}/v1/convo/conversations/conv_target/history",
                    server.base
                ))
                .header("x-convo-user", "target")
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "history failed: {}", r.status());
            r.bytes().await?;
            client
                .get(format!("{}/v1/convo/conversations?limit=50", server.base))
                .header("x-convo-user", "target")
                .send()
                .await?
                .bytes()
                .await?;
        }
        let kib = server.rss_kib().unwrap_or(0);
        println!(
            "  server RSS over {items} items: {:.1} MiB",
            kib as f64 / 1024.0
        );
        rss.push(kib as f64);
    }
    let ratio = rss[1] / rss[0].max(1.0);
    verdicts.push(Verdict {
        name: "rss-flat",
        ratio,
        pass: ratio <= 1.5,
        rule: "large/small <=1.50",
    });
    Ok(())
}

/// The `convo` binary beside this one (built by `cargo build --release -p convo`).
pub fn convo_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let me = std::env::current_exe().ok()?;
    let p = me.parent()?.join("convo");
    p.exists().then_some(p)
}
