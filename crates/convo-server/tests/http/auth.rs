//! API keys, local single-user mode, and isolation between users.

use convo_core::Timestamp;
use serde_json::json;

use crate::support::Server;

#[tokio::test]
async fn local_mode_without_keys() {
    let s = Server::start().await;
    // No key at all, or any bearer (the SDK always sends one): the local user.
    let c = s.post("/v1/conversations", json!({})).send().await.ok();
    let id = c.body["id"].as_str().unwrap().to_string();
    s.get(&format!("/v1/conversations/{id}"))
        .key("sk-anything")
        .send()
        .await
        .ok();
    let ext = s
        .get(&format!("/v1/convo/conversations/{id}"))
        .send()
        .await
        .ok();
    assert_eq!(ext.body["user"], "local");
    // X-Convo-User picks the user in local mode; users stay apart.
    s.get(&format!("/v1/conversations/{id}"))
        .user("someone")
        .send()
        .await
        .err(404, None);
    s.get("/v1/convo/conversations")
        .user(&"u".repeat(257))
        .send()
        .await
        .err(400, Some("X-Convo-User"));
}

#[tokio::test]
async fn a_new_key_takes_effect_at_once() {
    let s = Server::start().await;
    s.post("/v1/conversations", json!({})).send().await.ok();
    let alice = s.key("alice").await;
    let c = s
        .post("/v1/conversations", json!({}))
        .key(&alice)
        .send()
        .await
        .ok();
    let ext = s
        .get(&format!(
            "/v1/convo/conversations/{}",
            c.body["id"].as_str().unwrap()
        ))
        .key(&alice)
        .send()
        .await
        .ok();
    assert_eq!(ext.body["user"], "alice");
    // Once a key was seen, keyless requests are refused.
    s.get("/v1/convo/conversations").send().await.err(401, None);
}

#[tokio::test]
async fn missing_bad_revoked_and_expired_keys_are_401() {
    let s = Server::start().await;
    let (key, secret) =
        convo_server::keys::create_key(s.store.as_ref(), Some("alice"), false, "t", None)
            .await
            .unwrap();
    assert!(secret.starts_with("convo_sk_") && secret.len() == "convo_sk_".len() + 64);
    assert_eq!(key.hash, convo_server::keys::hash_secret(&secret));
    assert!(key.id.starts_with("key_"));
    assert!(
        !serde_json::to_string(&s.store.list_api_keys().await.unwrap())
            .unwrap()
            .contains(&secret)
    );
    s.get("/v1/convo/conversations")
        .key(&secret)
        .send()
        .await
        .ok();

    let r = s.get("/v1/convo/conversations").send().await;
    r.err(401, None);
    assert_eq!(r.body["error"]["code"], "invalid_api_key");
    s.get("/v1/convo/conversations")
        .key("convo_sk_wrong")
        .send()
        .await
        .err(401, None);
    s.post("/v1/conversations", json!({}))
        .header("authorization", "Basic abc")
        .send()
        .await
        .err(401, None);

    let expired = s
        .key_expiring(
            "alice",
            Timestamp::from_unix_ms(Timestamp::now().unix_ms() - 1000),
        )
        .await;
    s.get("/v1/convo/conversations")
        .key(&expired)
        .send()
        .await
        .err(401, None);
    let later = s
        .key_expiring(
            "alice",
            Timestamp::from_unix_ms(Timestamp::now().unix_ms() + 3_600_000),
        )
        .await;
    s.get("/v1/convo/conversations")
        .key(&later)
        .send()
        .await
        .ok();

    assert!(s.store.revoke_api_key(&key.id).await.unwrap());
    s.get("/v1/convo/conversations")
        .key(&secret)
        .send()
        .await
        .err(401, None);
    // The key never appears in an answer.
    let r = s.get("/v1/convo/conversations").key(&secret).send().await;
    assert!(!r.text.contains(&secret));
}

#[tokio::test]
async fn users_never_see_each_other() {
    let s = Server::start().await;
    let alice = s.key("alice").await;
    let bob = s.key("bob").await;
    let admin = s.admin_key().await;

    let (id, items) = s.conversation_with(Some(&alice), 3).await;
    let item = &items[0];
    s.req(
        reqwest::Method::PUT,
        &format!("/v1/convo/conversations/{id}/chat_log"),
    )
    .json(json!({"chat_log": "alice's log"}))
    .key(&alice)
    .send()
    .await
    .ok();

    // Every conversation route, as bob: 404, never 403, and nothing changes.
    let attempts: Vec<(reqwest::Method, String, Option<serde_json::Value>)> = vec![
        (
            reqwest::Method::GET,
            format!("/v1/conversations/{id}"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/v1/conversations/{id}"),
            Some(json!({"metadata": {"x": "y"}})),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/conversations/{id}"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/v1/conversations/{id}/items"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/v1/conversations/{id}/items"),
            Some(json!({"items": [{"role": "user", "content": "hi"}]})),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/conversations/{id}/items/{item}"),
            None,
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/conversations/{id}/items/{item}"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/v1/convo/conversations/{id}"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/v1/convo/conversations/{id}/items"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/v1/convo/conversations/{id}/name"),
            Some(json!({"name": "pwned"})),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/convo/conversations/{id}/name"),
            Some(json!({"auto": true})),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/convo/conversations/{id}/chat_log"),
            None,
        ),
        (
            reqwest::Method::PUT,
            format!("/v1/convo/conversations/{id}/chat_log"),
            Some(json!({"chat_log": "bob's"})),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/convo/conversations/{id}/history"),
            None,
        ),
    ];
    for (who, key, user) in [("bob", &bob, None), ("admin as bob", &admin, Some("bob"))] {
        for (m, path, body) in &attempts {
            let mut call = s.req(m.clone(), path).key(key);
            if let Some(u) = user {
                call = call.user(u);
            }
            if let Some(b) = body {
                call = call.json(b.clone());
            } else if *m == reqwest::Method::DELETE {
                call = call.header("content-type", "application/json");
            }
            let r = call.send().await;
            assert_eq!(r.status, 404, "{who}: {m} {path}: {}", r.text);
            r.err(404, None);
        }
    }
    // Bob's listings and searches hold nothing of alice's.
    let l = s.get("/v1/convo/conversations").key(&bob).send().await.ok();
    assert!(l.body["data"].as_array().unwrap().is_empty());
    let hits = s.get("/v1/convo/search?q=m0").key(&bob).send().await.ok();
    assert!(hits.body["data"].as_array().unwrap().is_empty());
    let jobs = s.get("/v1/convo/jobs").key(&bob).send().await.ok();
    assert!(jobs.body["data"].as_array().unwrap().is_empty());
    let alice_jobs = s.get("/v1/convo/jobs").key(&alice).send().await.ok();
    let job_id = alice_jobs.body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.get(&format!("/v1/convo/jobs/{job_id}"))
        .key(&bob)
        .send()
        .await
        .err(404, None);

    // Alice's data is intact.
    let c = s
        .get(&format!("/v1/convo/conversations/{id}"))
        .key(&alice)
        .send()
        .await
        .ok();
    assert_eq!(c.body["metadata"], json!({}));
    assert_eq!(c.body["name"], "");
    let l = s
        .get(&format!("/v1/conversations/{id}/items"))
        .key(&alice)
        .send()
        .await
        .ok();
    assert_eq!(l.body["data"].as_array().unwrap().len(), 3);
    let log = s
        .get(&format!("/v1/convo/conversations/{id}/chat_log"))
        .key(&alice)
        .send()
        .await
        .ok();
    assert_eq!(log.body["chat_log"], "alice's log");

    // An admin names the user it acts for; without one, user routes are a 400.
    s.get(&format!("/v1/conversations/{id}"))
        .key(&admin)
        .send()
        .await
        .err(400, Some("X-Convo-User"));
    s.get(&format!("/v1/conversations/{id}"))
        .key(&admin)
        .user("alice")
        .send()
        .await
        .ok();
    // A user key ignores X-Convo-User.
    s.get(&format!("/v1/conversations/{id}"))
        .key(&bob)
        .user("alice")
        .send()
        .await
        .err(404, None);

    // Erasing a user: admin only.
    s.delete("/v1/convo/users/alice")
        .key(&bob)
        .send()
        .await
        .err(403, None);
    let r = s
        .delete("/v1/convo/users/alice")
        .key(&admin)
        .send()
        .await
        .ok();
    assert_eq!(r.body["object"], "convo.user.erased");
    assert_eq!(r.body["conversations"], 1);
    assert_eq!(r.body["items"], 3);
    assert_eq!(r.body["api_keys"], 1);
    s.get("/v1/convo/conversations")
        .key(&alice)
        .send()
        .await
        .err(401, None);
    s.get(&format!("/v1/conversations/{id}"))
        .key(&admin)
        .user("alice")
        .send()
        .await
        .err(404, None);
}
