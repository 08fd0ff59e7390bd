//! Security basics of the shipped binary: API keys are stored only as hashes and
//! shown once, user and admin scopes hold, the server will not serve other machines
//! without a key, and secrets never reach the logs, even at trace level.

mod reliability;

use std::process::Stdio;

use reliability::{Dir, ServerProc, convo, request};
use serde_json::json;

fn file_bytes(dir: &std::path::Path) -> Vec<u8> {
    // The database, its WAL and shared memory: wherever a secret could land.
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            all.extend(std::fs::read(p).unwrap());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn create_key(dir: &Dir, args: &[&str]) -> serde_json::Value {
    let out = convo(&dir.db, dir.home())
        .args(["--json", "keys", "create"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn keys_are_stored_only_as_hashes_and_shown_once() {
    let dir = Dir::new();
    let k = create_key(&dir, &["--user", "alice"]);
    let secret = k["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("convo_sk_") && secret.len() == 9 + 64,
        "{secret}"
    );
    let db_dir = dir.db.parent().unwrap();
    let bytes = file_bytes(db_dir);
    assert!(
        !contains(&bytes, secret),
        "the secret is in the database files"
    );
    assert!(
        !contains(&bytes, &secret[9..]),
        "the secret's hex is in the database files"
    );
    let hash = convo_server::keys::hash_secret(secret);
    let conn = rusqlite::Connection::open(&dir.db).unwrap();
    let stored: String = conn
        .query_row("SELECT hash FROM api_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, hash, "what is stored is the SHA-256 of the secret");
    // Never shown again: not by `keys list`, in either format.
    for args in [&["keys", "list"][..], &["--json", "keys", "list"][..]] {
        let out = convo(&dir.db, dir.home()).args(args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains(secret) && !text.contains(&hash), "{text}");
    }
}

#[test]
fn no_key_means_loopback_only() {
    let dir = Dir::new();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = convo(&dir.db, dir.home())
            .args(["serve", "--addr", addr])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "served {addr} with no key: {err}");
        assert!(err.contains("refusing"), "{err}");
    }
    // With a key, any address may be served.
    create_key(&dir, &["--admin"]);
    let mut c = convo(&dir.db, dir.home());
    c.args(["serve", "--addr", "0.0.0.0:0"]);
    let mut s = ServerProc::start(c);
    assert!(s.addr.starts_with("0.0.0.0:"), "{}", s.addr);
    s.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_hold_and_secrets_never_reach_the_logs() {
    let dir = Dir::new();
    let alice = create_key(&dir, &["--user", "alice"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = create_key(&dir, &["--user", "bob"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = create_key(&dir, &["--admin"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = convo(&dir.db, dir.home());
    c.args(["-vvv", "serve", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "trace");
    let mut server = ServerProc::start(c);
    let addr = server.addr.clone();
    let bearer = |k: &str| format!("Bearer {k}");

    let a = request(
        &addr,
        "POST",
        "/v1/conversations",
        &[("Authorization", &bearer(&alice))],
        Some(&json!({"items": [{"type": "message", "role": "user", "content": "alice's words"}]})),
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.text);
    let conv = a.body["id"].as_str().unwrap().to_string();
    // A user key acts as its user: X-Convo-User is ignored, bob sees nothing.
    let r = request(
        &addr,
        "GET",
        &format!("/v1/conversations/{conv}"),
        &[("Authorization", &bearer(&bob)), ("X-Convo-User", "alice")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404, "{}", r.text);
    // Only an admin erases users.
    let r = request(
        &addr,
        "DELETE",
        "/v1/convo/users/alice",
        &[("Authorization", &bearer(&bob))],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text);
    // An admin acts for the user it names.
    let r = request(
        &addr,
        "GET",
        &format!("/v1/conversations/{conv}"),
        &[
            ("Authorization", &bearer(&admin)),
            ("X-Convo-User", "alice"),
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    // A wrong key, near a real one.
    // (Its last character changed: to 'e' if it was an 'f', so it never equals it.)
    let last = if alice.ends_with('f') { 'e' } else { 'f' };
    let wrong = format!("{}{last}", &alice[..alice.len() - 1]);
    assert_ne!(wrong, alice);
    let r = request(
        &addr,
        "GET",
        "/v1/convo/conversations",
        &[("Authorization", &bearer(&wrong))],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(!r.text.contains(&wrong));

    server.terminate();
    let log = server.stderr_text();
    assert!(
        log.lines().count() > 3,
        "the server logged nothing at trace level: {log}"
    );
    for secret in [&alice, &bob, &admin, &wrong] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the log:\n{log}"
        );
        assert!(!log.contains(&secret[9..]), "a secret's hex is in the log");
        let hash = convo_server::keys::hash_secret(secret);
        assert!(!log.contains(&hash), "a key hash is in the log");
    }
    assert!(!log.contains("alice's words"), "request bodies are logged");
}
