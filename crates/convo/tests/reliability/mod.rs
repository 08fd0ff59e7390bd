//! What the crash, concurrency and security suites share: the real `convo` binary as
//! a child process (`convo serve`, `convo work`, CLI writers) over one SQLite file, a
//! tiny HTTP/1.1 client (one request per connection, so a response read to the end
//! is exactly an acknowledgement), a seeded random source, and database checks.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `convo --db <db>` with a clean environment: no `CONVO_*` from the caller, and a
/// home, config and data directory inside `home` (no settings file is read).
pub fn convo(db: &Path, home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_convo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CONVO_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .arg("--db")
        .arg(db);
    c
}

/// A running `convo serve` child, killed when dropped.
pub struct ServerProc {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Every line it wrote to stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl ServerProc {
    /// Starts `cmd` (a `convo … serve --addr 127.0.0.1:0 …`) and waits for the line
    /// that names its bound address. `convo serve` prints `listening on http://ADDR`
    /// on stderr once bound, so no sleep and no port race.
    pub fn start(mut cmd: Command) -> ServerProc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn convo serve");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = lines.clone();
        // Drains stderr for the life of the child (a full pipe would block it).
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && let Some(t) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = t.send(addr);
                }
                keep.lock().unwrap().push(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => ServerProc {
                child,
                addr,
                stderr: lines,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "convo serve did not report its address: {:?}",
                    lines.lock().unwrap()
                );
            }
        }
    }

    /// SIGKILL: no chance to flush, drain or clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().unwrap()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

/// One request on its own connection (`Connection: close`), read to the end. An
/// error means no acknowledgement (refused, reset, or cut mid-answer).
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> std::io::Result<Answer> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    parse_answer(&raw).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete HTTP answer")
    })
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut rest = raw[split + 4..].to_vec();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        rest = dechunk(&rest)?;
    } else if let Some(n) = header("content-length") {
        let n: usize = n.parse().ok()?;
        if rest.len() < n {
            return None; // cut mid-answer: not acknowledged
        }
        rest.truncate(n);
    }
    let text = String::from_utf8(rest).ok()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some(Answer { status, body, text })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if b.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Every item id and text of a conversation, oldest first, paging through the
/// extension route (1,000 a page).
pub async fn all_items(addr: &str, headers: &[(&str, &str)], conv: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let path = format!("/v1/convo/conversations/{conv}/items?order=asc&limit=1000{after}");
        let a = request(addr, "GET", &path, headers, None).await.unwrap();
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        let data = a.body["data"].as_array().unwrap();
        for i in data {
            let text = i["content"]
                .as_array()
                .and_then(|p| p.first())
                .and_then(|p| p["text"].as_str())
                .or_else(|| i["content"].as_str())
                .unwrap_or("")
                .to_string();
            out.push((i["id"].as_str().unwrap().to_string(), text));
        }
        if !a.body["has_more"].as_bool().unwrap_or(false) || data.is_empty() {
            return out;
        }
        after = format!("&after={}", out.last().unwrap().0);
    }
}

/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check` on the file.
pub fn assert_db_intact(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "integrity_check of {}", db.display());
    let mut fk = conn.prepare("PRAGMA foreign_key_check").unwrap();
    let bad: Vec<String> = fk
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(bad.is_empty(), "foreign key violations in {bad:?}");
}

/// A small seeded random source (xorshift64*): the seed is printed, and
/// `CONVO_TEST_SEED` replays a run.
pub struct Rng(u64);

impl Rng {
    pub fn from_env() -> Rng {
        let seed = std::env::var("CONVO_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random seed {seed} (CONVO_TEST_SEED={seed} replays it)");
        Rng(seed)
    }

    /// A source with a given seed (for tasks forked from the main one).
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// How long a time-bounded suite runs: `var` in seconds, else `default`.
pub fn budget(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

/// A temp dir holding `convo.db`.
pub struct Dir {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Dir {
    pub fn new() -> Dir {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("convo.db");
        Dir { dir, db }
    }

    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// `convo --db … serve --addr 127.0.0.1:0` plus `extra` arguments.
    pub fn serve(&self, extra: &[&str]) -> Command {
        let mut c = convo(&self.db, self.home());
        c.args(["serve", "--addr", "127.0.0.1:0"]).args(extra);
        c
    }
}

/// Waits until `f` is true, polling, or panics after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
