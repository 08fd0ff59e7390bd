//! The OpenAI Conversations API: shapes, status codes, errors, pagination, limits.

use serde_json::{Value, json};

use crate::support::{Server, keys_of};

fn msg(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": text})
}

#[tokio::test]
async fn conversation_lifecycle() {
    let s = Server::start().await;
    let before = convo_core::Timestamp::now().unix_seconds();
    let c = s
        .post(
            "/v1/conversations",
            json!({"items": [msg("hello")], "metadata": {"topic": "demo"}, "unknown_field": 1}),
        )
        .send()
        .await
        .ok();
    let id = c.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("conv_"));
    assert_eq!(c.body["object"], "conversation");
    assert_eq!(c.body["metadata"], json!({"topic": "demo"}));
    assert_eq!(c.body["persona"], "default");
    let created = c.body["created_at"]
        .as_i64()
        .expect("created_at is an integer");
    assert!(
        created >= before && created <= before + 5,
        "unix seconds: {created}"
    );
    assert_eq!(
        keys_of(&c.body),
        ["created_at", "id", "metadata", "name", "object", "persona"]
    );

    let r = s.get(&format!("/v1/conversations/{id}")).send().await.ok();
    assert_eq!(r.body, c.body);

    // Update replaces the whole map.
    let u = s
        .post(
            &format!("/v1/conversations/{id}"),
            json!({"metadata": {"a": "1"}}),
        )
        .send()
        .await
        .ok();
    assert_eq!(u.body["metadata"], json!({"a": "1"}));
    // null clears it.
    let u = s
        .post(
            &format!("/v1/conversations/{id}"),
            json!({"metadata": null}),
        )
        .send()
        .await
        .ok();
    assert_eq!(u.body["metadata"], json!({}));
    // The key is required.
    s.post(&format!("/v1/conversations/{id}"), json!({}))
        .send()
        .await
        .err(400, Some("metadata"));

    // DELETE carries a JSON content type and no body, like the SDK's.
    let d = s
        .delete(&format!("/v1/conversations/{id}"))
        .send()
        .await
        .ok();
    assert_eq!(
        d.body,
        json!({"id": id, "object": "conversation.deleted", "deleted": true})
    );
    for path in [
        format!("/v1/conversations/{id}"),
        format!("/v1/conversations/{id}/items"),
    ] {
        s.get(&path).send().await.err(404, None);
    }
    s.delete(&format!("/v1/conversations/{id}"))
        .send()
        .await
        .err(404, None);
    s.post(
        &format!("/v1/conversations/{id}/items"),
        json!({"items": [msg("x")]}),
    )
    .send()
    .await
    .err(404, None);
}

#[tokio::test]
async fn create_accepts_empty_and_null_bodies() {
    let s = Server::start().await;
    for body in [json!({}), json!({"items": null, "metadata": null})] {
        let c = s.post("/v1/conversations", body).send().await.ok();
        assert_eq!(c.body["metadata"], json!({}));
    }
    let c = s
        .req(reqwest::Method::POST, "/v1/conversations")
        .header("content-type", "application/json")
        .send()
        .await
        .ok();
    assert_eq!(c.body["object"], "conversation");
    let c = s
        .post(
            "/v1/conversations",
            json!({"persona": "Helper", "name": "Trip"}),
        )
        .send()
        .await
        .ok();
    assert_eq!(
        (c.body["persona"].as_str(), c.body["name"].as_str()),
        (Some("Helper"), Some("Trip"))
    );
    s.post("/v1/conversations", json!({"persona": "../x"}))
        .send()
        .await
        .err(400, Some("persona"));
}

#[tokio::test]
async fn item_shapes_are_openai_exact() {
    let s = Server::start().await;
    let (id, _) = s.conversation_with(None, 0).await;
    let r = s
        .post(
            &format!("/v1/conversations/{id}/items?include[]=message.output_text.logprobs"),
            json!({"items": [
                {"role": "user", "content": "What's the weather?"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"} not json"},
                {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "18C"}]},
                {"type": "message", "role": "assistant", "content": "It is 18C.", "status": "in_progress", "id": "msg_client"},
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
            ]}),
        )
        .send()
        .await
        .ok();
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 6);
    assert_eq!(r.body["object"], "list");
    assert_eq!(r.body["has_more"], false);
    assert_eq!(r.body["first_id"], data[0]["id"]);
    assert_eq!(r.body["last_id"], data[5]["id"]);

    assert_eq!(
        keys_of(&data[0]),
        ["content", "id", "role", "status", "type"]
    );
    assert!(data[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(data[0]["status"], "completed");
    assert_eq!(
        data[0]["content"],
        json!([{"type": "input_text", "text": "What's the weather?"}])
    );
    assert_eq!(
        data[1]["content"],
        json!([{"type": "output_text", "text": "Let me check.", "annotations": []}])
    );
    assert_eq!(
        keys_of(&data[2]),
        ["arguments", "call_id", "id", "name", "status", "type"]
    );
    assert!(data[2]["id"].as_str().unwrap().starts_with("fc_"));
    assert_eq!(data[2]["arguments"], "{\"city\": \"Paris\"} not json");
    assert_eq!(
        keys_of(&data[3]),
        ["call_id", "id", "output", "status", "type"]
    );
    assert!(data[3]["id"].as_str().unwrap().starts_with("fco_"));
    assert_eq!(
        data[3]["output"],
        json!([{"type": "input_text", "text": "18C"}])
    );
    // The server assigns id and status; shorthand assistant text is output_text.
    assert_ne!(data[4]["id"], "msg_client");
    assert_eq!(data[4]["status"], "completed");
    assert_eq!(
        data[4]["content"],
        json!([{"type": "output_text", "text": "It is 18C.", "annotations": []}])
    );
    assert_eq!(data[5]["role"], "developer");

    // Retrieve gives the same objects; list (asc) too.
    for item in data {
        let got = s
            .get(&format!(
                "/v1/conversations/{id}/items/{}?include%5B%5D=message.output_text.logprobs&include=x",
                item["id"].as_str().unwrap()
            ))
            .send()
            .await
            .ok();
        assert_eq!(&got.body, item);
    }
    let l = s
        .get(&format!(
            "/v1/conversations/{id}/items?order=asc&include[]=a&include[]=b"
        ))
        .send()
        .await
        .ok();
    assert_eq!(l.body["data"].as_array().unwrap(), data);
}

#[tokio::test]
async fn item_delete_returns_the_conversation() {
    let s = Server::start().await;
    let (id, items) = s.conversation_with(None, 2).await;
    let (other, _) = s.conversation_with(None, 0).await;
    // An item is only reachable through its own conversation.
    s.get(&format!("/v1/conversations/{other}/items/{}", items[0]))
        .send()
        .await
        .err(404, None);
    s.delete(&format!("/v1/conversations/{other}/items/{}", items[0]))
        .send()
        .await
        .err(404, None);
    let d = s
        .delete(&format!("/v1/conversations/{id}/items/{}", items[0]))
        .send()
        .await
        .ok();
    assert_eq!(d.body["id"], id);
    assert_eq!(d.body["object"], "conversation");
    s.get(&format!("/v1/conversations/{id}/items/{}", items[0]))
        .send()
        .await
        .err(404, None);
    s.delete(&format!("/v1/conversations/{id}/items/{}", items[0]))
        .send()
        .await
        .err(404, None);
    let l = s
        .get(&format!("/v1/conversations/{id}/items"))
        .send()
        .await
        .ok();
    assert_eq!(l.body["data"].as_array().unwrap().len(), 1);
    s.get(&format!("/v1/conversations/{id}/items/msg_nope"))
        .send()
        .await
        .err(404, None);
}

async fn page(s: &Server, id: &str, q: &str) -> (Vec<String>, bool, Value) {
    let r = s
        .get(&format!("/v1/conversations/{id}/items?{q}"))
        .send()
        .await
        .ok();
    let ids = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    (ids, r.body["has_more"].as_bool().unwrap(), r.body)
}

#[tokio::test]
async fn pagination_edges() {
    let s = Server::start().await;
    let (id, ids) = s.conversation_with(None, 45).await;
    let mut rev = ids.clone();
    rev.reverse();

    // Default: 20, newest first.
    let (got, more, body) = page(&s, &id, "").await;
    assert_eq!(got, rev[..20]);
    assert!(more);
    assert_eq!(body["first_id"], json!(rev[0]));
    assert_eq!(body["last_id"], json!(rev[19]));

    // limit=1.
    let (got, more, _) = page(&s, &id, "limit=1&order=asc").await;
    assert_eq!(got, [ids[0].clone()]);
    assert!(more);

    // A page ending exactly on the last item says has_more=false.
    let (got, more, _) = page(&s, &id, "limit=45").await;
    assert_eq!(got, rev);
    assert!(!more);
    let (got, more, _) = page(&s, &id, &format!("limit=5&order=asc&after={}", ids[39])).await;
    assert_eq!(got, ids[40..]);
    assert!(!more);
    let (got, more, _) = page(&s, &id, &format!("limit=100&order=asc&after={}", ids[44])).await;
    assert!(got.is_empty() && !more);

    // Walking with after=last_id, both orders, gives every item once.
    for (order, expect) in [("asc", &ids), ("desc", &rev)] {
        let mut all = Vec::new();
        let mut after = String::new();
        loop {
            let q = if after.is_empty() {
                format!("limit=7&order={order}")
            } else {
                format!("limit=7&order={order}&after={after}")
            };
            let (got, more, body) = page(&s, &id, &q).await;
            all.extend(got);
            if !more {
                break;
            }
            after = body["last_id"].as_str().unwrap().to_string();
        }
        assert_eq!(&all, expect, "{order}");
    }

    // Empty conversation: null ids.
    let (empty, _) = s.conversation_with(None, 0).await;
    let (got, more, body) = page(&s, &empty, "").await;
    assert!(got.is_empty() && !more);
    assert!(body["first_id"].is_null() && body["last_id"].is_null());

    // Bad parameters.
    for q in ["limit=0", "limit=101", "limit=abc", "limit=-1"] {
        s.get(&format!("/v1/conversations/{id}/items?{q}"))
            .send()
            .await
            .err(400, Some("limit"));
    }
    s.get(&format!("/v1/conversations/{id}/items?order=up"))
        .send()
        .await
        .err(400, Some("order"));
    // Our choice for an unknown `after`: 400 naming it.
    s.get(&format!("/v1/conversations/{id}/items?after=msg_unknown"))
        .send()
        .await
        .err(400, Some("after"));
    // An item of another conversation is unknown here too.
    s.get(&format!("/v1/conversations/{empty}/items?after={}", ids[0]))
        .send()
        .await
        .err(400, Some("after"));
}

#[tokio::test]
async fn limits_are_enforced_and_batches_are_all_or_nothing() {
    let s = Server::start().await;
    let many: Vec<Value> = (0..21).map(|i| msg(&format!("{i}"))).collect();
    let twenty: Vec<Value> = (0..20).map(|i| msg(&format!("{i}"))).collect();
    s.post("/v1/conversations", json!({"items": many}))
        .send()
        .await
        .err(400, Some("items"));
    let list = s.get("/v1/convo/conversations").send().await.ok();
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        0,
        "nothing created"
    );
    s.post("/v1/conversations", json!({"items": twenty}))
        .send()
        .await
        .ok();

    let (id, _) = s.conversation_with(None, 1).await;
    let items_path = format!("/v1/conversations/{id}/items");
    s.post(&items_path, json!({"items": many}))
        .send()
        .await
        .err(400, Some("items"));
    s.post(&items_path, json!({"items": twenty}))
        .send()
        .await
        .ok();
    s.post(&items_path, json!({"items": []}))
        .send()
        .await
        .err(400, Some("items"));
    s.post(&items_path, json!({}))
        .send()
        .await
        .err(400, Some("items"));

    // One bad item rejects the batch: nothing stored.
    for bad in [
        json!({"type": "reasoning", "summary": []}),
        json!({"type": "message", "role": "tool", "content": "x"}),
        json!({"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "output_text", "text": "x"}]}),
        json!({"type": "message", "role": "user", "content": 5}),
        json!({"type": "message", "role": "user"}),
        json!({"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}),
        json!({"type": "function_call_output", "output": "x"}),
        json!("just a string"),
    ] {
        s.post(&items_path, json!({"items": [msg("ok"), bad]}))
            .send()
            .await
            .err(400, Some("items"));
    }
    // A call id the conversation does not have: the store refuses the whole batch.
    s.post(
        &items_path,
        json!({"items": [msg("ok"), {"type": "function_call_output", "call_id": "nope", "output": "x"}]}),
    )
    .send()
    .await
    .err(400, Some("call_id"));
    s.post(&items_path, json!({"items": "x"}))
        .send()
        .await
        .err(400, Some("items"));
    let l = s.get(&format!("{items_path}?limit=100")).send().await.ok();
    assert_eq!(
        l.body["data"].as_array().unwrap().len(),
        21,
        "only the good batch was stored"
    );

    // Metadata: 16 pairs, 64-char keys, 512-char values, strings only.
    let sixteen: serde_json::Map<String, Value> =
        (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
    let mut seventeen = sixteen.clone();
    seventeen.insert("k16".into(), json!("v"));
    let k64 = "k".repeat(64);
    let v512 = "é".repeat(512); // characters, not bytes
    s.post("/v1/conversations", json!({"metadata": sixteen}))
        .send()
        .await
        .ok();
    s.post(
        "/v1/conversations",
        json!({"metadata": {k64.clone(): v512.clone()}}),
    )
    .send()
    .await
    .ok();
    for bad in [
        Value::Object(seventeen.clone()),
        json!({"k".repeat(65): "v"}),
        json!({"k": "v".repeat(513)}),
        json!({"k": 1}),
        json!(["not", "an", "object"]),
    ] {
        s.post("/v1/conversations", json!({"metadata": bad}))
            .send()
            .await
            .err(400, Some("metadata"));
    }
    // A rejected update leaves the old metadata.
    let conv = format!("/v1/conversations/{id}");
    s.post(&conv, json!({"metadata": {"keep": "me"}}))
        .send()
        .await
        .ok();
    s.post(&conv, json!({"metadata": Value::Object(seventeen)}))
        .send()
        .await
        .err(400, Some("metadata"));
    let c = s.get(&conv).send().await.ok();
    assert_eq!(c.body["metadata"], json!({"keep": "me"}));
}

#[tokio::test]
async fn malformed_bodies_are_json_400s() {
    let s = Server::start().await;
    let r = s
        .req(reqwest::Method::POST, "/v1/conversations")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await;
    r.err(400, None);
    let r = s.post("/v1/conversations", json!([1, 2])).send().await;
    r.err(400, None);
    s.post("/v1/conversations", json!({"name": 5}))
        .send()
        .await
        .err(400, Some("name"));
}

#[tokio::test]
async fn body_over_the_limit_is_a_json_413() {
    let s = Server::start().await;
    let big = "x".repeat(3 << 20);
    let r = s
        .post("/v1/conversations", json!({"items": [msg(&big)]}))
        .send()
        .await;
    r.err(413, None);
    assert_eq!(r.body["error"]["code"], "request_too_large");
    // Under the body limit but over the 1 MiB content limit: a 400 naming the field.
    let (id, _) = s.conversation_with(None, 0).await;
    let r = s
        .post(
            &format!("/v1/conversations/{id}/items"),
            json!({"items": [msg(&"y".repeat((1 << 20) + 10))]}),
        )
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let s = Server::start().await;
    s.get("/v1/nothing").send().await.err(404, None);
    let r = s
        .req(reqwest::Method::PUT, "/v1/conversations/conv_x")
        .send()
        .await;
    r.err(405, None);
}
