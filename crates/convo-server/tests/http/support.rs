//! A real server on loopback over a real SQLite file, and a small client.

use std::sync::Arc;

use convo_core::{Store, Timestamp};
use convo_server::{ServerConfig, keys, router, serve};
use convo_store_sqlite::{SqliteOptions, SqliteStore};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(ServerConfig::default(), None).await
    }

    pub async fn start_with(
        config: ServerConfig,
        extra: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(dir.path().join("convo.db"), SqliteOptions::default())
                .await
                .unwrap(),
        );
        // Bind first, then spawn: the port is ready before any request is sent.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(store.clone(), config, extra);
        let task = tokio::spawn(serve(listener, app, async move {
            let _ = rx.await;
        }));
        Server {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            store,
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Signals graceful shutdown.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    pub fn req(&self, method: Method, path: &str) -> Call {
        Call {
            rb: self.http.request(method, format!("{}{path}", self.base)),
        }
    }

    pub fn get(&self, path: &str) -> Call {
        self.req(Method::GET, path)
    }

    pub fn post(&self, path: &str, body: Value) -> Call {
        self.req(Method::POST, path).json(body)
    }

    pub fn delete(&self, path: &str) -> Call {
        // What the SDK sends: a JSON content type and no body.
        self.req(Method::DELETE, path)
            .header("content-type", "application/json")
    }

    pub async fn key(&self, user: &str) -> String {
        keys::create_key(self.store.as_ref(), Some(user), false, "test", None)
            .await
            .unwrap()
            .1
    }

    pub async fn admin_key(&self) -> String {
        keys::create_key(self.store.as_ref(), None, true, "test", None)
            .await
            .unwrap()
            .1
    }

    pub async fn key_expiring(&self, user: &str, at: Timestamp) -> String {
        keys::create_key(self.store.as_ref(), Some(user), false, "test", Some(at))
            .await
            .unwrap()
            .1
    }

    /// Creates a conversation with `n` user messages ("m0", "m1", ...) as `key`.
    pub async fn conversation_with(&self, key: Option<&str>, n: usize) -> (String, Vec<String>) {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"type": "message", "role": "user", "content": format!("m{i}")}))
            .collect();
        let c = self
            .post("/v1/conversations", json!({}))
            .auth(key)
            .send()
            .await
            .ok();
        let id = c.body["id"].as_str().unwrap().to_string();
        let mut ids = Vec::new();
        for chunk in items.chunks(20) {
            let r = self
                .post(
                    &format!("/v1/conversations/{id}/items"),
                    json!({ "items": chunk }),
                )
                .auth(key)
                .send()
                .await
                .ok();
            for i in r.body["data"].as_array().unwrap() {
                ids.push(i["id"].as_str().unwrap().to_string());
            }
        }
        (id, ids)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Call {
    rb: reqwest::RequestBuilder,
}

impl Call {
    pub fn json(mut self, body: Value) -> Call {
        self.rb = self.rb.json(&body);
        self
    }

    pub fn body(mut self, body: impl Into<reqwest::Body>) -> Call {
        self.rb = self.rb.body(body);
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Call {
        self.rb = self.rb.header(k, v);
        self
    }

    pub fn auth(mut self, key: Option<&str>) -> Call {
        if let Some(k) = key {
            self.rb = self.rb.bearer_auth(k);
        }
        self
    }

    pub fn key(self, key: &str) -> Call {
        self.auth(Some(key))
    }

    pub fn user(self, user: &str) -> Call {
        self.header("x-convo-user", user)
    }

    pub async fn send(self) -> Resp {
        let r = self.rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    fn assert_json(&self) {
        let ct = self
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "content type {ct:?} for {} {}",
            self.status,
            self.text
        );
    }

    /// Asserts a 200 JSON answer and returns self.
    #[track_caller]
    pub fn ok(self) -> Resp {
        assert_eq!(self.status, 200, "{}", self.text);
        self.assert_json();
        self
    }

    /// Asserts OpenAI's error body with this status and param.
    #[track_caller]
    pub fn err(&self, status: u16, param: Option<&str>) -> &Resp {
        assert_eq!(self.status, status, "{}", self.text);
        self.assert_json();
        let e = self.body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("no error object: {}", self.text));
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert!(e["type"].is_string(), "{}", self.text);
        assert!(
            e.contains_key("param") && e.contains_key("code"),
            "{}",
            self.text
        );
        match param {
            Some(p) => assert_eq!(e["param"], json!(p), "{}", self.text),
            None if status == 404 => assert!(e["param"].is_null(), "{}", self.text),
            None => {}
        }
        self
    }
}

/// The keys of a JSON object, sorted.
pub fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}
