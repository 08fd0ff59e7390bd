//! convo's extensions under /v1/convo.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Server;

#[tokio::test]
async fn list_conversations_by_persona_with_cursor() {
    let s = Server::start().await;
    let mut helper = Vec::new();
    for i in 0..5 {
        let persona = if i % 2 == 0 { "Helper" } else { "Coder" };
        let c = s
            .post("/v1/conversations", json!({"persona": persona}))
            .send()
            .await
            .ok();
        if persona == "Helper" {
            helper.push(c.body["id"].as_str().unwrap().to_string());
        }
    }
    let all = s.get("/v1/convo/conversations").send().await.ok();
    assert_eq!(all.body["data"].as_array().unwrap().len(), 5);
    assert_eq!(all.body["has_more"], false);
    let first = &all.body["data"][0];
    for k in [
        "updated_at",
        "user",
        "persona",
        "name",
        "created_at",
        "metadata",
    ] {
        assert!(first.get(k).is_some(), "{k} in {first}");
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/convo/conversations?persona=Helper&limit=2&cursor={c}"),
            None => "/v1/convo/conversations?persona=Helper&limit=2".to_string(),
        };
        let p = s.get(&q).send().await.ok();
        for c in p.body["data"].as_array().unwrap() {
            assert_eq!(c["persona"], "Helper");
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        if p.body["has_more"] == false {
            break;
        }
        cursor = Some(p.body["next_cursor"].as_str().unwrap().to_string());
    }
    seen.sort();
    helper.sort();
    assert_eq!(seen, helper);

    s.get("/v1/convo/conversations?persona=../etc")
        .send()
        .await
        .err(400, Some("persona"));
    s.get("/v1/convo/conversations?limit=0")
        .send()
        .await
        .err(400, Some("limit"));
    s.get("/v1/convo/conversations?cursor=garbage")
        .send()
        .await
        .err(400, Some("cursor"));
}

#[tokio::test]
async fn rename_save_log_and_items() {
    let s = Server::start().await;
    let (id, _) = s.conversation_with(None, 2).await;
    let r = s
        .post(
            &format!("/v1/convo/conversations/{id}/name"),
            json!({"name": "  Trip to Paris "}),
        )
        .send()
        .await
        .ok();
    assert_eq!(r.body["name"], "Trip to Paris");
    assert_eq!(r.body["name_set_by_person"], true);
    let j = s
        .post(
            &format!("/v1/convo/conversations/{id}/name"),
            json!({"auto": true}),
        )
        .send()
        .await
        .ok();
    assert_eq!(j.body["object"], "convo.job");
    assert_eq!(j.body["kind"], "name");
    s.post(&format!("/v1/convo/conversations/{id}/name"), json!({}))
        .send()
        .await
        .err(400, Some("name"));
    s.post(
        &format!("/v1/convo/conversations/{id}/name"),
        json!({"name": "a\nb"}),
    )
    .send()
    .await
    .err(400, Some("name"));

    // The seed's save: a legacy id, created then updated; jobs queued.
    let legacy = "alice_1700000000_9f1c";
    let path = format!("/v1/convo/conversations/{legacy}/chat_log");
    let saved = s
        .req(Method::PUT, &path)
        .json(json!({"chat_log": "User: hi\nAssistant: hello", "persona": "Helper", "timestamp": 1700000000}))
        .send()
        .await
        .ok();
    assert_eq!(saved.body["created"], true);
    assert!(saved.body["jobs_queued"].as_u64().unwrap() >= 1);
    assert_eq!(saved.body["conversation"]["id"], legacy);
    assert_eq!(saved.body["conversation"]["created_at"], 1700000000);
    let again = s
        .req(Method::PUT, &path)
        .json(json!({"chat_log": "User: hi again", "persona": "Helper"}))
        .send()
        .await
        .ok();
    assert_eq!(again.body["created"], false);
    let log = s.get(&path).send().await.ok();
    assert_eq!(log.body["chat_log"], "User: hi again");
    s.get(&format!("/v1/conversations/{legacy}"))
        .send()
        .await
        .ok();
    s.req(Method::PUT, &path)
        .json(json!({}))
        .send()
        .await
        .err(400, Some("chat_log"));
    s.req(Method::PUT, &path)
        .json(json!({"chat_log": "x", "timestamp": "yesterday"}))
        .send()
        .await
        .err(400, Some("timestamp"));
    // A transcript is rendered when no log was saved.
    let t = s
        .get(&format!("/v1/convo/conversations/{id}/chat_log"))
        .send()
        .await
        .ok();
    assert!(t.body["chat_log"].as_str().unwrap().contains("m1"));

    // Items with convo's own fields.
    let items = s
        .get(&format!("/v1/convo/conversations/{id}/items?order=asc"))
        .send()
        .await
        .ok();
    let data = items.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert!(data[0]["created_at"].is_i64());
    assert!(data[0]["position"].as_i64().unwrap() < data[1]["position"].as_i64().unwrap());
    assert!(data[0]["tokens"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn history_in_both_shapes_with_a_budget() {
    let s = Server::start().await;
    let (id, _) = s.conversation_with(None, 0).await;
    s.post(
        &format!("/v1/conversations/{id}/items"),
        json!({"items": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris? ".repeat(30)},
            {"role": "assistant", "content": "Checking."},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
            {"role": "assistant", "content": "18C and sunny."},
        ]}),
    )
    .send()
    .await
    .ok();
    let h = s
        .get(&format!("/v1/convo/conversations/{id}/history"))
        .send()
        .await
        .ok();
    let msgs = h.body["messages"].as_array().unwrap();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "assistant"]);
    assert_eq!(msgs[2]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(h.body["truncated"], false);

    let cut = s
        .get(&format!(
            "/v1/convo/conversations/{id}/history?max_tokens=60"
        ))
        .send()
        .await
        .ok();
    assert_eq!(cut.body["truncated"], true);
    assert!(cut.body["tokens"].as_u64().unwrap() <= 60);

    let a = s
        .get(&format!(
            "/v1/convo/conversations/{id}/history?format=anthropic"
        ))
        .send()
        .await
        .ok();
    assert_eq!(a.body["system"], "Be brief.");
    assert_eq!(a.body["messages"][0]["role"], "user");
    s.get(&format!("/v1/convo/conversations/{id}/history?format=xml"))
        .send()
        .await
        .err(400, Some("format"));
    s.get(&format!(
        "/v1/convo/conversations/{id}/history?max_tokens=lots"
    ))
    .send()
    .await
    .err(400, Some("max_tokens"));
    s.get("/v1/convo/conversations/conv_none/history")
        .send()
        .await
        .err(404, None);
}

#[tokio::test]
async fn search_finds_messages() {
    let s = Server::start().await;
    let (id, _) = s.conversation_with(None, 0).await;
    s.post(
        &format!("/v1/conversations/{id}/items"),
        json!({"items": [{"role": "user", "content": "The quick brown fox jumps"}]}),
    )
    .send()
    .await
    .ok();
    let r = s.get("/v1/convo/search?q=fox").send().await.ok();
    let hits = r.body["data"].as_array().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["conversation_id"], json!(id));
    assert_eq!(
        s.get("/v1/convo/search?q=zebra").send().await.ok().body["data"],
        json!([])
    );
    s.get("/v1/convo/search").send().await.err(400, Some("q"));
    s.get("/v1/convo/search?q=fox&limit=500")
        .send()
        .await
        .err(400, Some("limit"));
}

#[tokio::test]
async fn profile_edits_and_audit() {
    let s = Server::start().await;
    let p = s.get("/v1/convo/profile").send().await.ok();
    assert_eq!(p.body["fields"], json!([]));
    let set = s
        .req(Method::PUT, "/v1/convo/profile/fields/Hobbies")
        .json(json!({"content": ["chess", "go"], "observations": "said so"}))
        .send()
        .await
        .ok();
    assert_eq!(set.body["data"].as_array().unwrap().len(), 1);
    let p = s.get("/v1/convo/profile").send().await.ok();
    assert_eq!(p.body["fields"][0]["name"], "Hobbies");
    assert_eq!(p.body["fields"][0]["content"], json!(["chess", "go"]));
    s.req(Method::PUT, "/v1/convo/profile/fields/Hobbies")
        .json(json!({"content": 3}))
        .send()
        .await
        .err(400, Some("content"));
    s.req(Method::PUT, "/v1/convo/profile/fields/Hobbies")
        .json(json!({}))
        .send()
        .await
        .err(400, Some("content"));
    s.delete("/v1/convo/profile/fields/Hobbies")
        .send()
        .await
        .ok();
    s.delete("/v1/convo/profile/fields/Hobbies")
        .send()
        .await
        .err(404, None);
    let h = s.get("/v1/convo/profile/history").send().await.ok();
    let entries = h.body["data"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let h = s
        .get("/v1/convo/profile/history?field=Hobbies&limit=1")
        .send()
        .await
        .ok();
    assert_eq!(h.body["data"].as_array().unwrap().len(), 1);
    // Another user's profile is theirs alone.
    let other = s.get("/v1/convo/profile").user("bob").send().await.ok();
    assert_eq!(other.body["fields"], json!([]));
}

#[tokio::test]
async fn jobs_by_state_and_counts() {
    let s = Server::start().await;
    s.req(Method::PUT, "/v1/convo/conversations/conv_saved/chat_log")
        .json(json!({"chat_log": "User: hello"}))
        .send()
        .await
        .ok();
    let jobs = s.get("/v1/convo/jobs?state=pending").send().await.ok();
    let data = jobs.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let kinds: Vec<&Value> = data.iter().map(|j| &j["kind"]).collect();
    assert!(kinds.contains(&&json!("name")) && kinds.contains(&&json!("profile")));
    let one = s
        .get(&format!(
            "/v1/convo/jobs/{}",
            data[0]["id"].as_str().unwrap()
        ))
        .send()
        .await
        .ok();
    assert_eq!(one.body["id"], data[0]["id"]);
    assert_eq!(
        s.get("/v1/convo/jobs?state=done").send().await.ok().body["data"],
        json!([])
    );
    let c = s.get("/v1/convo/jobs/counts").send().await.ok();
    assert_eq!(c.body["pending"], 2);
    assert_eq!(c.body["done"], 0);
    s.get("/v1/convo/jobs?state=weird")
        .send()
        .await
        .err(400, Some("state"));
    s.get("/v1/convo/jobs/job_nope").send().await.err(404, None);
    let other = s.get("/v1/convo/jobs/counts").user("bob").send().await.ok();
    assert_eq!(other.body["pending"], 0);
}
