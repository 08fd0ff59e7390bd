//! Operations: health, metrics, the OpenAPI document, layers, serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use convo_server::ServerConfig;
use serde_json::json;

use crate::support::Server;

#[tokio::test]
async fn healthz_follows_the_database() {
    let s = Server::start().await;
    let r = s.get("/healthz").send().await.ok();
    assert_eq!(r.body, json!({"status": "ok"}));
    s.store.close().await.unwrap();
    let r = s.get("/healthz").send().await;
    assert_eq!(r.status, 503);
}

#[tokio::test]
async fn metrics_count_routes_jobs_and_extras() {
    let extra: Arc<dyn Fn() -> String + Send + Sync> =
        Arc::new(|| "convo_provider_latency_seconds_count 7\n".to_string());
    let s = Server::start_with(ServerConfig::default(), Some(extra)).await;
    let (id, _) = s.conversation_with(None, 1).await;
    s.get(&format!("/v1/conversations/{id}")).send().await.ok();
    s.get("/v1/conversations/conv_missing").send().await;
    let r = s.get("/metrics").send().await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text;
    for needle in [
        "convo_http_requests_total{method=\"POST\",route=\"/v1/conversations\",status=\"200\"} 1",
        "convo_http_requests_total{method=\"GET\",route=\"/v1/conversations/{conversation_id}\",status=\"200\"} 1",
        "convo_http_requests_total{method=\"GET\",route=\"/v1/conversations/{conversation_id}\",status=\"404\"} 1",
        "convo_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/conversations/{conversation_id}/items\",le=\"+Inf\"} 1",
        "convo_jobs{state=\"pending\"} 0",
        "convo_provider_latency_seconds_count 7",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    // Concrete ids never become labels.
    assert!(!text.contains(&id));
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let s = Server::start().await;
    let doc = s.get("/openapi.json").send().await.ok().body;
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/conversations", &["post"][..]),
        (
            "/v1/conversations/{conversation_id}",
            &["get", "post", "delete"],
        ),
        (
            "/v1/conversations/{conversation_id}/items",
            &["get", "post"],
        ),
        (
            "/v1/conversations/{conversation_id}/items/{item_id}",
            &["get", "delete"],
        ),
        ("/v1/convo/conversations", &["get"]),
        ("/v1/convo/conversations/{conversation_id}", &["get"]),
        ("/v1/convo/conversations/{conversation_id}/items", &["get"]),
        ("/v1/convo/conversations/{conversation_id}/name", &["post"]),
        (
            "/v1/convo/conversations/{conversation_id}/chat_log",
            &["get", "put"],
        ),
        (
            "/v1/convo/conversations/{conversation_id}/history",
            &["get"],
        ),
        ("/v1/convo/search", &["get"]),
        ("/v1/convo/profile", &["get"]),
        ("/v1/convo/profile/fields/{field}", &["put", "delete"]),
        ("/v1/convo/profile/history", &["get"]),
        ("/v1/convo/jobs", &["get"]),
        ("/v1/convo/jobs/counts", &["get"]),
        ("/v1/convo/jobs/{job_id}", &["get"]),
        ("/v1/convo/users/{user}", &["delete"]),
        ("/healthz", &["get"]),
        ("/noop", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
    ] {
        let p = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        for m in methods {
            assert!(p.get(*m).is_some(), "{m} {path} missing");
        }
    }
    assert_eq!(
        paths.len(),
        22,
        "a route without a test here: {:?}",
        paths.keys()
    );
    assert_eq!(
        convo_server::openapi().paths.paths.len(),
        22,
        "the function and the route agree"
    );
}

#[tokio::test]
async fn request_ids_are_set_and_propagated() {
    let s = Server::start().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        let r = s.get("/healthz").send().await;
        let id = r.headers["x-request-id"].to_str().unwrap().to_string();
        // A version 4 UUID: 8-4-4-4-12 lowercase hex digits, version 4, RFC variant.
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12],
            "{id}"
        );
        assert!(
            id.chars()
                .all(|c| c == '-' || matches!(c, '0'..='9' | 'a'..='f')),
            "{id}"
        );
        assert!(groups[2].starts_with('4'), "{id}");
        assert!(matches!(&groups[3][..1], "8" | "9" | "a" | "b"), "{id}");
        assert!(seen.insert(id.clone()), "request ids repeat: {id}");
    }
    let r = s
        .get("/v1/nope")
        .header("x-request-id", "abc-123")
        .send()
        .await;
    assert_eq!(r.headers["x-request-id"], "abc-123");
}

#[tokio::test]
async fn large_responses_are_gzipped_when_asked_and_small_ones_are_not() {
    let s = Server::start().await;
    let (id, _) = s.conversation_with(None, 40).await;
    let r = s
        .get(&format!("/v1/conversations/{id}/items?limit=40"))
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-encoding"], "gzip");
    // A one-message append's answer (a few hundred bytes) is not worth a gzip stream.
    let r = s
        .post(
            &format!("/v1/conversations/{id}/items"),
            json!({"items": [{"role": "user", "content": "hi"}]}),
        )
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("content-encoding").is_none());
    assert_eq!(r.body["data"][0]["content"][0]["text"], "hi");
}

#[tokio::test]
async fn cors_only_when_configured() {
    let s = Server::start().await;
    let r = s
        .get("/healthz")
        .header("origin", "https://app.example")
        .send()
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());

    let config = ServerConfig {
        cors_origins: vec!["https://app.example".into()],
        ..ServerConfig::default()
    };
    let s = Server::start_with(config, None).await;
    let r = s
        .req(reqwest::Method::OPTIONS, "/v1/conversations")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let r = s
        .get("/healthz")
        .header("origin", "https://evil.example")
        .send()
        .await;
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

/// The default user's conversations, read from the store (not through the server).
async fn stored_conversations(s: &Server) -> Vec<convo_core::Conversation> {
    let local = convo_core::UserId::new("local").unwrap();
    s.store
        .list_conversations(&local, &Default::default())
        .await
        .unwrap()
        .data
}

#[tokio::test]
async fn timeouts_are_json_and_posts_are_not_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = ServerConfig {
        request_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let s = Server::start_with(config, None).await;
    // A body that never finishes arriving keeps the request under way past its time.
    // (A request that completes without ever waiting is answered however long it
    // took: a 1 ns timeout on a whole create answered 200 whenever the write was
    // done before the handler first looked.)
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"POST /v1/conversations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 40\r\nconnection: close\r\n\r\n{\"metadata\": ",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .expect("the server answers and closes the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 504"), "{answer}");
    assert!(
        answer.contains("content-type: application/json"),
        "{answer}"
    );
    assert!(answer.contains("x-should-retry: false"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    // Nothing was created (asked of the store: another request through this server
    // would itself be under the 300 ms timeout on a loaded machine).
    let stored = stored_conversations(&s).await;
    assert!(stored.is_empty(), "{stored:?}");
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting() {
    let mut s = Server::start().await;
    s.get("/healthz").send().await.ok();
    // A fresh client, so no kept-alive connection holds the server open.
    let base = s.base.clone();
    s.http = reqwest::Client::new();
    s.stop();
    let task = s.task.take().unwrap();
    // The idle kept-alive connection of the first client is closed by the shutdown.
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("serve returns after the shutdown signal")
        .unwrap()
        .unwrap();
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}

/// Sends raw bytes on a fresh connection and reads the whole answer.
async fn raw(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_a_json_413() {
    let config = ServerConfig {
        body_limit_bytes: 1024,
        ..ServerConfig::default()
    };
    let s = Server::start_with(config, None).await;
    // No Content-Length: the limit trips while the body is read, not up front.
    let chunk = "x".repeat(4000);
    let req = format!(
        "POST /v1/conversations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let answer = raw(&s.base, req.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert!(answer.contains("\"request_too_large\""), "{answer}");
}

#[tokio::test]
async fn shutdown_finishes_a_request_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = Server::start().await;
    let body = r#"{"metadata": {"k": "v"}}"#;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/conversations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // Headers and half the body: the request is under way.
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body.as_bytes()[..5]).await.unwrap();
    // A full round trip on another connection lets the server read those bytes.
    s.get("/healthz").send().await.ok();
    s.http = reqwest::Client::new();
    s.stop();
    tcp.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(tcp);
    tokio::time::timeout(Duration::from_secs(10), s.task.take().unwrap())
        .await
        .expect("serve returns once the request is done")
        .unwrap()
        .unwrap();
    // The write it acknowledged is stored.
    let stored = stored_conversations(&s).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].metadata["k"], "v");
}

#[tokio::test]
async fn a_body_limit_above_axums_default_is_honoured() {
    let config = ServerConfig {
        body_limit_bytes: 8 << 20,
        ..ServerConfig::default()
    };
    let s = Server::start_with(config, None).await;
    let text = "lorem ipsum ".repeat((1 << 20) / 12);
    let items: Vec<_> = (0..3)
        .map(|_| json!({"role": "user", "content": text}))
        .collect();
    let r = s
        .post("/v1/conversations", json!({ "items": items }))
        .send()
        .await
        .ok();
    assert_eq!(r.body["object"], "conversation");
}

#[tokio::test]
async fn long_unbroken_text_is_stored_quickly() {
    let s = Server::start().await;
    let text = "z".repeat(1 << 20);
    let start = Instant::now();
    let r = s
        .post(
            "/v1/conversations",
            json!({"items": [{"role": "user", "content": text}]}),
        )
        .send()
        .await
        .ok();
    assert_eq!(r.body["object"], "conversation");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}
