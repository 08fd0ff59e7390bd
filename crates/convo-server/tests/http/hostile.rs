//! The hostile-input catalogue over real HTTP: each test sends one kind of bad input,
//! checks the status and OpenAI's JSON error body, and checks that the store did not
//! change (every user's conversations, items, profile and audit trail, every job and
//! every key, read back through the store).

use std::sync::Arc;

use convo_core::{ConversationQuery, JobQuery, Store, Timestamp, UserId};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Server;

/// SQL metacharacters, quoting and FTS5 syntax.
const SQLISH: &[&str] = &[
    "'; DROP TABLE items; --",
    "\" OR 1=1 --",
    "Robert'); DELETE FROM conversations;--",
    "%_%",
    "a' UNION SELECT hash FROM api_keys --",
    "NEAR(x y) OR \"z\" AND * ^ :col",
    "$1 ?1 :name @p `b` [c] {d}",
];

/// Everything the store holds, as text, for "unchanged" checks.
async fn snapshot(store: &Arc<dyn Store>) -> String {
    let mut out = String::new();
    for u in store.list_users().await.unwrap() {
        let user = UserId::new(u.as_str()).unwrap();
        let q = ConversationQuery {
            limit: 1000,
            ..Default::default()
        };
        for c in store.list_conversations(&user, &q).await.unwrap().data {
            out.push_str(&format!("{c:?}\n"));
            for i in store.all_items(&user, &c.id).await.unwrap() {
                out.push_str(&format!("  {i:?}\n"));
            }
        }
        out.push_str(&format!("{:?}\n", store.get_profile(&user).await.unwrap()));
        out.push_str(&format!(
            "{:?}\n",
            store.profile_history(&user, None, 1000).await.unwrap()
        ));
    }
    let jobs = JobQuery {
        limit: Some(1000),
        ..Default::default()
    };
    out.push_str(&format!("{:?}\n", store.list_jobs(&jobs).await.unwrap()));
    out.push_str(&format!("{:?}\n", store.list_api_keys().await.unwrap()));
    out
}

/// A server with keys for alice and bob, and one conversation each.
struct World {
    s: Server,
    alice: String,
    bob: String,
    admin: String,
    a: String,
    a_items: Vec<String>,
    b: String,
    b_items: Vec<String>,
}

async fn world() -> World {
    let s = Server::start().await;
    let alice = s.key("alice").await;
    let bob = s.key("bob").await;
    let admin = s.admin_key().await;
    let (a, a_items) = s.conversation_with(Some(&alice), 2).await;
    let (b, b_items) = s.conversation_with(Some(&bob), 2).await;
    World {
        s,
        alice,
        bob,
        admin,
        a,
        a_items,
        b,
        b_items,
    }
}

fn items_path(id: &str) -> String {
    format!("/v1/conversations/{id}/items")
}

#[tokio::test]
async fn path_like_and_control_persona_names_are_400() {
    let w = world().await;
    let before = snapshot(&w.s.store).await;
    for persona in [
        "../etc/passwd",
        "..\\x",
        "a/b",
        ".hidden",
        "nul\0",
        "bell\x07",
        "two\nlines",
        "",
        &"p".repeat(65),
    ] {
        w.s.post("/v1/conversations", json!({ "persona": persona }))
            .key(&w.alice)
            .send()
            .await
            .err(400, Some("persona"));
        w.s.req(
            Method::PUT,
            &format!("/v1/convo/conversations/{}/chat_log", w.a),
        )
        .json(json!({ "chat_log": "log", "persona": persona }))
        .key(&w.alice)
        .send()
        .await
        .err(400, Some("persona"));
        if persona.is_empty() {
            continue; // `?persona=` means "no filter"
        }
        w.s.get(&format!(
            "/v1/convo/conversations?persona={}",
            urlencode(persona)
        ))
        .key(&w.alice)
        .send()
        .await
        .err(400, Some("persona"));
    }
    assert_eq!(before, snapshot(&w.s.store).await);
}

#[tokio::test]
async fn control_characters_in_user_names_are_400() {
    let w = world().await;
    let before = snapshot(&w.s.store).await;
    // Header values can carry tabs and bytes past ASCII, not NUL or newlines (the
    // HTTP stack refuses those before we see them).
    for user in ["a\tb", "\t", &"u".repeat(257)] {
        w.s.get("/v1/convo/conversations")
            .key(&w.admin)
            .user(user)
            .send()
            .await
            .err(400, Some("X-Convo-User"));
    }
    let r =
        w.s.req(Method::GET, "/v1/convo/conversations")
            .key(&w.admin)
            .header("x-convo-user", "caf\u{e9}")
            .send()
            .await;
    assert!(
        r.status == 400 || r.status == 200,
        "non-ASCII user header: {} {}",
        r.status,
        r.text
    );
    // Keys are never made for invalid users.
    for user in ["nul\0", "bell\x07", "line\nbreak", ""] {
        assert!(
            convo_server::keys::create_key(w.s.store.as_ref(), Some(user), false, "x", None)
                .await
                .is_err(),
            "{user:?}"
        );
    }
    // A path-like user is an opaque id: `../bob` acting through the admin key is
    // another user, who sees none of bob's data.
    w.s.get(&format!("/v1/conversations/{}", w.b))
        .key(&w.admin)
        .user("../bob")
        .send()
        .await
        .err(404, None);
    assert_eq!(before, snapshot(&w.s.store).await);
}

#[tokio::test]
async fn ten_mib_of_content_is_a_json_413() {
    let w = world().await;
    let before = snapshot(&w.s.store).await;
    let big = "x".repeat(10 << 20);
    let r =
        w.s.post(
            &items_path(&w.a),
            json!({"items": [{"type": "message", "role": "user", "content": big}]}),
        )
        .key(&w.alice)
        .send()
        .await;
    r.err(413, None);
    assert_eq!(r.body["error"]["code"], "request_too_large", "{}", r.text);
    w.s.req(
        Method::PUT,
        &format!("/v1/convo/conversations/{}/chat_log", w.a),
    )
    .json(json!({ "chat_log": big }))
    .key(&w.alice)
    .send()
    .await
    .err(413, None);
    // Under the body limit but over the 1 MiB content limit: 400 naming the field.
    let over = "y".repeat((1 << 20) + 1);
    w.s.post(
        &items_path(&w.a),
        json!({"items": [{"type": "message", "role": "user", "content": over}]}),
    )
    .key(&w.alice)
    .send()
    .await
    .err(400, Some("content"));
    w.s.post(
        &items_path(&w.a),
        json!({"items": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": over}]}),
    )
    .key(&w.alice)
    .send()
    .await
    .err(400, None);
    assert_eq!(before, snapshot(&w.s.store).await);
}

#[tokio::test]
async fn invalid_utf8_and_broken_json_bodies_are_json_400() {
    let w = world().await;
    let before = snapshot(&w.s.store).await;
    let bodies: Vec<Vec<u8>> = vec![
        b"{\"items\": [{\"type\": \"message\", \"role\": \"user\", \"content\": \"\xff\xfe\"}]}"
            .to_vec(),
        b"\xc3\x28".to_vec(),
        b"{\"items\": [".to_vec(),
        b"[]".to_vec(),
        b"\"just a string\"".to_vec(),
        b"{\"items\": \"\\ud800\"}".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"{\"items\": [{\"type\": \"message\", \"role\": \"user\", \"content\": \"a\"}],}".to_vec(),
    ];
    for body in bodies {
        let r =
            w.s.req(Method::POST, &items_path(&w.a))
                .header("content-type", "application/json")
                .body(body.clone())
                .key(&w.alice)
                .send()
                .await;
        r.err(400, None);
    }
    assert_eq!(before, snapshot(&w.s.store).await);
}

#[tokio::test]
async fn deeply_nested_json_is_400_and_nested_arguments_are_verbatim() {
    let w = world().await;
    let before = snapshot(&w.s.store).await;
    // 100k open brackets as the body: the parser's depth limit answers, no stack
    // overflow, no 5xx.
    for body in [
        "[".repeat(100_000),
        format!("{{\"items\": {}", "[".repeat(100_000)),
        format!("{{\"metadata\": {}", "{\"a\":".repeat(50_000)),
    ] {
        w.s.req(Method::POST, &items_path(&w.a))
            .header("content-type", "application/json")
            .body(body)
            .key(&w.alice)
            .send()
            .await
            .err(400, None);
    }
    // Content parts nested past the parser's limit are refused too.
    let mut v = json!("leaf");
    for _ in 0..200 {
        v = json!([v]);
    }
    let body = json!({"items": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "t", "x": v}]}]});
    w.s.post(&items_path(&w.a), body)
        .key(&w.alice)
        .send()
        .await
        .err(400, None);
    assert_eq!(before, snapshot(&w.s.store).await);

    // Arguments are a string: 100k brackets *inside* it are the model's text, kept.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = w
        .s
        .post(
            &items_path(&w.a),
            json!({"items": [{"type": "function_call", "call_id": "deep", "name": "f", "arguments": deep}]}),
        )
        .key(&w.alice)
        .send()
        .await
        .ok();
    let id = r.body["data"][0]["id"].as_str().unwrap();
    let got =
        w.s.get(&format!("{}/{id}", items_path(&w.a)))
            .key(&w.alice)
            .send()
            .await
            .ok();
    assert_eq!(got.body["arguments"].as_str().unwrap(), deep);
}

#[tokio::test]
async fn sql_metacharacters_everywhere_are_stored_and_returned_verbatim() {
    let w = world().await;
    for (n, s) in SQLISH.iter().enumerate() {
        let mut metadata = serde_json::Map::new();
        metadata.insert(s.to_string(), json!(s));
        let c =
            w.s.post(
                "/v1/conversations",
                json!({
                    "name": s,
                    "metadata": metadata,
                    "items": [
                        {"type": "message", "role": "user", "content": format!("needle{n} {s}")},
                        {"type": "function_call", "call_id": s, "name": "lookup", "arguments": s},
                        {"type": "function_call_output", "call_id": s, "output": s},
                    ],
                }),
            )
            .key(&w.alice)
            .send()
            .await
            .ok();
        let id = c.body["id"].as_str().unwrap();
        assert_eq!(c.body["metadata"][*s], json!(s));
        assert_eq!(c.body["name"], json!(s));
        let items = w.s.get(&items_path(id)).key(&w.alice).send().await.ok();
        let data = items.body["data"].as_array().unwrap();
        assert_eq!(data.len(), 3);
        assert!(data.iter().any(|i| i["arguments"] == json!(s)));
        assert!(data.iter().any(|i| i["output"] == json!(s)));
        // SQL text as a path id, a cursor, a job id, a field name: 404 or 400, never 5xx.
        for path in [
            format!("/v1/conversations/{}", urlencode(s)),
            format!("/v1/conversations/{id}/items/{}", urlencode(s)),
            format!("/v1/convo/jobs/{}", urlencode(s)),
            format!("/v1/convo/conversations?cursor={}", urlencode(s)),
            format!("{}?after={}", items_path(id), urlencode(s)),
        ] {
            let r = w.s.get(&path).key(&w.alice).send().await;
            assert!(
                matches!(r.status, 400 | 404),
                "{path}: {} {}",
                r.status,
                r.text
            );
            r.err(r.status, None);
        }
        // A profile field named with SQL, holding SQL.
        let f =
            w.s.req(
                Method::PUT,
                &format!("/v1/convo/profile/fields/{}", urlencode(s)),
            )
            .json(json!({"content": s, "observations": s}))
            .key(&w.alice)
            .send()
            .await
            .ok();
        assert!(f.text.contains("\"after\""), "{}", f.text);
        let p = w.s.get("/v1/convo/profile").key(&w.alice).send().await.ok();
        assert!(
            p.text.contains(&serde_json::to_string(s).unwrap()),
            "{s:?} in {}",
            p.text
        );
        // Search text is data, never syntax.
        let r =
            w.s.get(&format!("/v1/convo/search?q={}", urlencode(s)))
                .key(&w.alice)
                .send()
                .await;
        assert!(matches!(r.status, 200 | 400), "search {s:?}: {}", r.text);
        let hits =
            w.s.get(&format!("/v1/convo/search?q=needle{n}"))
                .key(&w.alice)
                .send()
                .await
                .ok();
        assert_eq!(
            hits.body["data"].as_array().unwrap().len(),
            1,
            "{}",
            hits.text
        );
    }
    // bob's data is untouched by all of that.
    let b = w.s.get(&items_path(&w.b)).key(&w.bob).send().await.ok();
    assert_eq!(b.body["data"].as_array().unwrap().len(), 2);
    assert!(w.s.store.ping().await.is_ok());
}

#[tokio::test]
async fn another_users_ids_are_404_never_403() {
    let w = world().await;
    let before = snapshot(&w.s.store).await;
    let b = &w.b;
    let bi = &w.b_items[0];
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/conversations/{b}"), None),
        (
            Method::POST,
            format!("/v1/conversations/{b}"),
            Some(json!({"metadata": {"x": "y"}})),
        ),
        (Method::DELETE, format!("/v1/conversations/{b}"), None),
        (Method::GET, items_path(b), None),
        (
            Method::POST,
            items_path(b),
            Some(json!({"items": [{"type": "message", "role": "user", "content": "intruder"}]})),
        ),
        (Method::GET, format!("{}/{bi}", items_path(b)), None),
        (Method::DELETE, format!("{}/{bi}", items_path(b)), None),
        // bob's item under alice's own conversation.
        (Method::GET, format!("{}/{bi}", items_path(&w.a)), None),
        (Method::DELETE, format!("{}/{bi}", items_path(&w.a)), None),
        (Method::GET, format!("/v1/convo/conversations/{b}"), None),
        (
            Method::GET,
            format!("/v1/convo/conversations/{b}/items"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/convo/conversations/{b}/chat_log"),
            None,
        ),
        (
            Method::GET,
            format!("/v1/convo/conversations/{b}/history"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/convo/conversations/{b}/name"),
            Some(json!({"name": "mine"})),
        ),
        (
            Method::POST,
            format!("/v1/convo/conversations/{b}/name"),
            Some(json!({"auto": true})),
        ),
    ];
    for (method, path, body) in calls {
        let mut call = w.s.req(method.clone(), &path).key(&w.alice);
        if let Some(b) = body {
            call = call.json(b);
        } else if method == Method::DELETE {
            call = call.header("content-type", "application/json");
        }
        let r = call.send().await;
        r.err(404, None);
        assert!(!r.text.contains("bob"), "{method} {path} leaks: {}", r.text);
    }
    // Saving a chat log under bob's id as alice must not take it over.
    let r =
        w.s.req(
            Method::PUT,
            &format!("/v1/convo/conversations/{b}/chat_log"),
        )
        .json(json!({"chat_log": "mine now"}))
        .key(&w.alice)
        .send()
        .await;
    assert!(matches!(r.status, 400 | 404), "{}", r.text);
    r.err(r.status, None);
    assert_eq!(before, snapshot(&w.s.store).await);
    let _ = &w.a_items;
}

#[tokio::test]
async fn a_function_call_output_for_an_unknown_call_is_400() {
    let w = world().await;
    let before = snapshot(&w.s.store).await;
    w.s.post(
        &items_path(&w.a),
        json!({"items": [{"type": "function_call_output", "call_id": "call_nope", "output": "42"}]}),
    )
    .key(&w.alice)
    .send()
    .await
    .err(400, Some("call_id"));
    // bob's call id is unknown in alice's conversation.
    w.s.post(
        &items_path(&w.b),
        json!({"items": [{"type": "function_call", "call_id": "call_bob", "name": "f", "arguments": "{}"}]}),
    )
    .key(&w.bob)
    .send()
    .await
    .ok();
    let before_bob = snapshot(&w.s.store).await;
    assert_ne!(before, before_bob);
    w.s.post(
        &items_path(&w.a),
        json!({"items": [
            {"type": "message", "role": "user", "content": "first"},
            {"type": "function_call_output", "call_id": "call_bob", "output": "stolen"},
        ]}),
    )
    .key(&w.alice)
    .send()
    .await
    .err(400, Some("call_id"));
    assert_eq!(before_bob, snapshot(&w.s.store).await);
}

#[tokio::test]
async fn expired_revoked_and_unknown_keys_are_401() {
    let w = world().await;
    let expired =
        w.s.key_expiring(
            "alice",
            Timestamp::from_unix_ms(Timestamp::now().unix_ms() - 1000),
        )
        .await;
    let (revoked_key, revoked) =
        convo_server::keys::create_key(w.s.store.as_ref(), Some("alice"), false, "x", None)
            .await
            .unwrap();
    assert!(w.s.store.revoke_api_key(&revoked_key.id).await.unwrap());
    let before = snapshot(&w.s.store).await;
    // Alice's key with its last hex digit changed (to 1 if it was 0: a 0 kept would
    // leave her real key, one run in 16).
    let last = if w.alice.ends_with('0') { '1' } else { '0' };
    let almost = format!("{}{last}", &w.alice[..w.alice.len() - 1]);
    assert_ne!(almost, w.alice);
    for key in [
        expired.as_str(),
        revoked.as_str(),
        almost.as_str(),
        "convo_sk_' OR '1'='1",
        &"k".repeat(4096),
    ] {
        for (m, path) in [
            (Method::GET, format!("/v1/conversations/{}", w.a)),
            (Method::POST, items_path(&w.a)),
        ] {
            let r =
                w.s.req(m, &path)
                    .json(json!({"items": [{"type": "message", "role": "user", "content": "x"}]}))
                    .key(key)
                    .send()
                    .await;
            r.err(401, None);
            assert_eq!(r.body["error"]["code"], "invalid_api_key", "{}", r.text);
            assert!(!r.text.contains(key), "the key is echoed: {}", r.text);
        }
    }
    assert_eq!(before, snapshot(&w.s.store).await);
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_lives_on() {
    let w = world().await;
    let url = format!("{}/v1/conversations/{}", w.s.base, w.a);
    // One 1 MiB header, then 200 small ones.
    let big = "h".repeat(1 << 20);
    let r =
        w.s.http
            .get(&url)
            .bearer_auth(&w.alice)
            .header("x-big", big)
            .send()
            .await;
    // An error means the connection was closed on us: also a refusal.
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 431);
    }
    let mut rb = w.s.http.get(&url).bearer_auth(&w.alice);
    for i in 0..200 {
        rb = rb.header(format!("x-h{i}"), "v");
    }
    if let Ok(r) = rb.send().await {
        assert!(matches!(r.status().as_u16(), 200 | 431), "{}", r.status());
    }
    w.s.get(&format!("/v1/conversations/{}", w.a))
        .key(&w.alice)
        .send()
        .await
        .ok();
}

#[tokio::test]
async fn search_text_with_nul_is_not_a_server_error() {
    let w = world().await;
    for q in ["a%00", "hello%00world", "%00hello"] {
        let r =
            w.s.get(&format!("/v1/convo/search?q={q}"))
                .key(&w.alice)
                .send()
                .await;
        assert!(
            matches!(r.status, 200 | 400),
            "q={q}: {} {}",
            r.status,
            r.text
        );
    }
}

/// Percent-encodes everything but unreserved characters.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The fuzz target's check, shared with `fuzz/fuzz_targets/http_body.rs`.
#[allow(dead_code)]
#[path = "../../../../fuzz/src/http_body.rs"]
mod http_body;

/// Replays the committed fuzz corpus (seeds and any saved crash) through the same
/// check the fuzzer runs, so it needs no nightly and runs in every test run.
#[test]
fn the_http_body_fuzz_corpus_replays_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/http_body");
    let harness = http_body::Harness::new();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        harness.check(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 10, "only {n} corpus files in {}", dir.display());
}
