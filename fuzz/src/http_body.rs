//! Request bodies, queries and headers through the whole router in-process (no
//! socket), over a SQLite file: whatever comes in, the answer is never a 5xx, and
//! every error is OpenAI's JSON error body.
//!
//! The first input byte picks the route; the rest is the body (or the query).

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use convo_core::{ConversationManager, Role, Store};
use convo_server::{ServerConfig, router};
use convo_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use tower::ServiceExt;

/// A router over a temporary SQLite store with a fixture conversation (`fuzz`: a
/// message, a call `call_1` and its output) in local mode (user `local`).
pub struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
    _dir: tempfile::TempDir,
}

/// (method, path) by the input's first byte. Writes go to `fuzz-w`, so the
/// conversation that reads render stays small however long a run is.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/conversations"),
    ("POST", "/v1/conversations/fuzz-w/items"),
    ("POST", "/v1/conversations/fuzz-w"),
    ("PUT", "/v1/convo/conversations/fuzz-s/chat_log"),
    ("PUT", "/v1/convo/profile/fields/Hobbies"),
    ("POST", "/v1/convo/conversations/fuzz-w/name"),
    ("GET", "/v1/conversations/fuzz/items?"),
    ("GET", "/v1/convo/search?q="),
    ("GET", "/v1/convo/conversations/fuzz/history?"),
    ("GET", "/v1/convo/conversations?"),
    ("GET", "/v1/convo/jobs?"),
    ("GET", "/v1/conversations/"),
];

impl Harness {
    /// A new harness (a temp dir, a store, the fixture).
    pub fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            durability: Durability::Normal,
            ..Default::default()
        };
        let app = rt.block_on(async {
            let store: Arc<dyn Store> = Arc::new(
                SqliteStore::open(dir.path().join("fuzz.db"), options)
                    .await
                    .unwrap(),
            );
            let m = ConversationManager::new(store.clone(), "local", "Helper").unwrap();
            for id in ["fuzz", "fuzz-w"] {
                m.add_message("local", id, Role::Assistant, "calling", None)
                    .await
                    .unwrap();
                m.append_items(
                    "local",
                    id,
                    vec![
                        convo_core::NewItem::function_call("call_1", "f", "{}"),
                        convo_core::NewItem::function_call_output("call_1", "ok"),
                    ],
                )
                .await
                .unwrap();
            }
            router(store, ServerConfig::default(), None)
        });
        Harness { rt, app, _dir: dir }
    }

    /// One harness per process (what a fuzz target uses).
    pub fn shared() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(Harness::new)
    }

    /// Sends one request built from `data` and checks the answer.
    pub fn check(&self, data: &[u8]) {
        let Some((&pick, rest)) = data.split_first() else {
            return;
        };
        let (method, path) = ROUTES[pick as usize % ROUTES.len()];
        let (uri, body) = if method == "GET" {
            (format!("{path}{}", percent_encode(rest)), Vec::new())
        } else {
            (path.to_string(), rest.to_vec())
        };
        let req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let (status, bytes) = self.rt.block_on(async {
            let resp = self.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, bytes)
        });
        assert!(
            !status.is_server_error(),
            "{method} {uri} with {:?} answered {status}: {}",
            String::from_utf8_lossy(rest),
            String::from_utf8_lossy(&bytes)
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {uri}: answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        if status.is_client_error() {
            let e = &v["error"];
            assert!(
                e["message"].is_string() && e.get("param").is_some() && e.get("code").is_some(),
                "{method} {uri}: not OpenAI's error body: {v}"
            );
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

/// Percent-encodes all but unreserved characters and `=`/`&` (so the fuzzer can
/// build parameter lists).
fn percent_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 3);
    for &c in b {
        if c.is_ascii_alphanumeric() || b"-_.~=&".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}
