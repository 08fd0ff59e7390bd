//! What every handler shares: the store, the settings, the auth-mode cache, metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use convo_core::{ConversationManager, Store, UserId};

use crate::ServerConfig;
use crate::error::ApiResult;
use crate::metrics::Metrics;

/// Extra Prometheus text appended to `/metrics` (e.g. the cognition workers').
pub type ExtraMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// How long "does the store hold any key?" is remembered. A new key is still honoured
/// at once (a presented bearer is always looked up); only the switch out of local
/// mode for *keyless* requests waits this long.
const KEY_MODE_TTL: Duration = Duration::from_secs(1);

pub(crate) struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ServerConfig,
    pub metrics: Metrics,
    pub extra_metrics: Option<ExtraMetrics>,
    keys_exist: Mutex<Option<(bool, Instant)>>,
}

pub(crate) type Shared = Arc<AppState>;

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        config: ServerConfig,
        extra_metrics: Option<ExtraMetrics>,
    ) -> Self {
        AppState {
            store,
            config,
            metrics: Metrics::default(),
            extra_metrics,
            keys_exist: Mutex::new(None),
        }
    }

    /// True when the store holds at least one API key (revoked ones count: a server
    /// that once had keys never falls back to open local mode by revoking them).
    pub async fn keys_exist(&self) -> convo_core::Result<bool> {
        {
            let cached = self.keys_exist.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((exist, at)) = *cached
                && (exist || at.elapsed() < KEY_MODE_TTL)
            {
                return Ok(exist);
            }
        }
        let exist = !self.store.list_api_keys().await?.is_empty();
        *self.keys_exist.lock().unwrap_or_else(|p| p.into_inner()) = Some((exist, Instant::now()));
        Ok(exist)
    }

    /// Forgets the cached auth mode (keys were erased).
    pub fn forget_key_mode(&self) {
        *self.keys_exist.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Remembers that keys exist (one was just used).
    pub fn note_keys_exist(&self, exist: bool) {
        *self.keys_exist.lock().unwrap_or_else(|p| p.into_inner()) = Some((exist, Instant::now()));
    }

    /// A manager for one request (cheap: it holds an `Arc` of the store).
    pub fn manager(&self, user: &UserId, persona: &str) -> ApiResult<ConversationManager> {
        Ok(ConversationManager::with_config(
            self.store.clone(),
            user.as_str(),
            persona,
            self.config.manager.clone(),
        )?)
    }
}
