//! convo's HTTP server: the OpenAI Conversations API under `/v1` (so the official
//! `openai` SDKs work with only `base_url` and `api_key` changed), convo's extensions
//! under `/v1/convo/...`, API-key auth with per-user isolation, and the operations
//! routes (`/healthz`, `/metrics`, `/openapi.json`).
//!
//! The binary builds a [`router`] over a store and hands it to [`serve`] with a bound
//! listener. Handlers hold an `Arc<dyn Store>`; every error leaves as OpenAI's error
//! body through one [`ApiError`] type.

mod auth;
mod error;
mod ext;
mod extract;
pub mod keys;
mod layers;
mod metrics;
mod openapi;
mod ops;
mod serve;
mod state;
mod v1;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use convo_core::{ManagerConfig, Store};

pub use auth::USER_HEADER;
pub use error::ApiError;
pub use openapi::openapi;
pub use serve::serve;
pub use state::ExtraMetrics;

/// Settings of the HTTP server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Largest request body in bytes (default 2 MiB); past it the answer is 413.
    pub body_limit_bytes: usize,
    /// Longest a request may take before it is answered 504 (default 30 s).
    pub request_timeout: Duration,
    /// Origins allowed by CORS (`*` for any); empty turns CORS off (the default).
    pub cors_origins: Vec<String>,
    /// The user of local single-user mode (no API key in the store); default `local`.
    pub local_user: String,
    /// Settings of the per-request conversation managers (limits, cognition on save).
    pub manager: ManagerConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit_bytes: 2 << 20,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            local_user: "local".to_string(),
            manager: ManagerConfig::default(),
        }
    }
}

/// The whole HTTP application over `store`: every route and every layer (request
/// ids, tracing, metrics, CORS when configured, gzip, JSON errors, timeout, body
/// limit). `extra_metrics` is appended to `/metrics` (e.g. the cognition workers').
pub fn router(
    store: Arc<dyn Store>,
    config: ServerConfig,
    extra_metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
) -> Router {
    let state = Arc::new(state::AppState::new(store, config, extra_metrics));
    let routes = Router::new()
        // OpenAI Conversations API.
        .route("/v1/conversations", post(v1::create_conversation))
        .route(
            "/v1/conversations/{conversation_id}",
            get(v1::get_conversation)
                .post(v1::update_conversation)
                .delete(v1::delete_conversation),
        )
        .route(
            "/v1/conversations/{conversation_id}/items",
            get(v1::list_items).post(v1::create_items),
        )
        .route(
            "/v1/conversations/{conversation_id}/items/{item_id}",
            get(v1::get_item).delete(v1::delete_item),
        )
        // convo's extensions.
        .route(
            "/v1/convo/conversations",
            get(ext::conversations::list_conversations),
        )
        .route(
            "/v1/convo/conversations/{conversation_id}",
            get(ext::conversations::get_conversation),
        )
        .route(
            "/v1/convo/conversations/{conversation_id}/items",
            get(ext::conversations::list_items),
        )
        .route(
            "/v1/convo/conversations/{conversation_id}/name",
            post(ext::conversations::rename),
        )
        .route(
            "/v1/convo/conversations/{conversation_id}/chat_log",
            get(ext::conversations::get_chat_log).put(ext::conversations::save_chat_log),
        )
        .route(
            "/v1/convo/conversations/{conversation_id}/history",
            get(ext::conversations::history),
        )
        .route("/v1/convo/search", get(ext::conversations::search))
        .route("/v1/convo/profile", get(ext::profile::get_profile))
        .route(
            "/v1/convo/profile/fields/{field}",
            put(ext::profile::set_field).delete(ext::profile::remove_field),
        )
        .route("/v1/convo/profile/history", get(ext::profile::history))
        .route("/v1/convo/jobs", get(ext::jobs::list_jobs))
        .route("/v1/convo/jobs/counts", get(ext::jobs::job_counts))
        .route("/v1/convo/jobs/{job_id}", get(ext::jobs::get_job))
        .route(
            "/v1/convo/users/{user}",
            axum::routing::delete(ext::jobs::erase_user),
        )
        // Operations.
        .route("/healthz", get(ops::healthz))
        .route("/noop", get(ops::noop))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi_json))
        .fallback(layers::unknown_route);
    layers::apply(routes, state)
}
