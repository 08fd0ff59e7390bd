//! `convo keys`, `convo work` and `convo serve` (a real child process over loopback).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::Env;

#[test]
fn keys_are_created_listed_and_revoked() {
    let env = Env::new();
    assert!(env.ok(&["keys", "list"]).contains("local mode"));
    let k = env.json(&["keys", "create", "--user", "alice", "--label", "laptop"]);
    let secret = k["secret"].as_str().unwrap();
    assert!(secret.starts_with("convo_sk_"), "{k}");
    assert_eq!(k["user"], "alice");
    assert_eq!(k["admin"], false);
    let plain = env.ok(&["keys", "create", "--admin"]);
    assert!(plain.trim().starts_with("convo_sk_"));

    let list = env.json(&["keys", "list"]);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(
        !list.to_string().contains(secret),
        "secrets are never listed"
    );
    assert!(data.iter().all(|k| k.get("hash").is_none()));

    let id = k["id"].as_str().unwrap();
    let r = env.json(&["keys", "revoke", id]);
    assert_eq!(r["revoked"], true);
    let table = env.ok(&["keys", "list"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(id) && !l.contains(" - ")),
        "{table}"
    );
    let err = env.fails(&["keys", "revoke", "key_nope"], 2);
    assert!(err.contains("no API key"), "{err}");
    env.fails(&["keys", "create"], 2);
}

#[test]
fn work_runs_the_queued_jobs_with_the_offline_provider() {
    let env = Env::new();
    let id = env.ok(&["new", "--user", "alice", "--persona", "Helper"]);
    let id = id.trim();
    env.ok(&[
        "add",
        "--user",
        "alice",
        id,
        "--role",
        "user",
        "How do I repot an orchid?",
    ]);
    env.ok(&[
        "add",
        "--user",
        "alice",
        id,
        "--role",
        "assistant",
        "Use bark, not soil.",
    ]);
    env.ok(&[
        "save",
        "--user",
        "alice",
        "--persona",
        "Helper",
        id,
        "User: How do I repot an orchid?",
    ]);
    assert_eq!(
        env.json(&["jobs", "--state", "pending"])["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let s = env.json(&["work"]);
    assert_eq!(s["done"], 2, "{s}");
    assert_eq!(s["failed"], 0);
    assert_eq!(
        env.json(&["jobs", "--state", "done"])["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let c = env.json(&["show", "--user", "alice", id]);
    assert!(
        !c["conversation"]["name"].as_str().unwrap().is_empty(),
        "{c}"
    );
    assert!(env.ok(&["work"]).contains("0 done"));
}

#[test]
fn invalid_cognition_settings_are_a_clear_error() {
    let env = Env::new();
    let out = env
        .cmd()
        .env("CONVO_COGNITION_PROVIDER", "telepathy")
        .arg("work")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[cognition]"), "{err}");
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_answers_on_loopback_and_stops_on_sigterm() {
    let env = Env::new();
    env.ok(&[
        "new",
        "--user",
        "local",
        "--persona",
        "Helper",
        "--id",
        "from-cli",
    ]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("convo"))
        .arg("--db")
        .arg(&env.db)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("HOME", env.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // The server prints its address after binding: no sleeping, no guessing.
    while !line.contains("listening on http://") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited before listening"
        );
    }
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(line.contains("local mode"));

    let health = get(&addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // The server writes its WAL out at full length once, so commits never grow it.
    let wal = std::path::PathBuf::from(format!("{}-wal", env.db.display()));
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(wal_len > 32 << 20, "WAL of {wal_len} bytes while serving");
    let conv = get(&addr, "/v1/conversations/from-cli");
    assert!(
        conv.starts_with("HTTP/1.1 200") && conv.contains("\"from-cli\""),
        "{conv}"
    );

    let killed = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "a graceful stop exits 0: {status}");
    assert!(
        !wal.exists(),
        "a stopped server leaves no log behind (everything is in the database)"
    );
}

#[test]
fn serve_refuses_a_public_address_without_keys() {
    let env = Env::new();
    let err = env.fails(&["serve", "--addr", "0.0.0.0:0"], 2);
    assert!(
        err.contains("API key") && err.contains("convo keys create"),
        "{err}"
    );
    let err = env.fails(&["serve", "--addr", "nonsense"], 2);
    assert!(err.contains("HOST:PORT"), "{err}");
}
