//! What every command gets: the store, the settings, and how to print.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use convo_core::{ConversationManager, ManagerConfig, Store};
use convo_store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::Settings;

/// The persona a manager is opened with when a command does not name one; commands
/// that create conversations always take `--persona`.
pub const NO_PERSONA: &str = "default";

/// Shared state of one command run.
pub struct Ctx {
    /// The opened store.
    pub store: Arc<dyn Store>,
    /// Loaded settings.
    pub settings: Settings,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
}

impl Ctx {
    /// Opens the configured database; `long_running` preallocates its WAL (see
    /// [`SqliteOptions::preallocate_wal`]).
    pub async fn open(
        settings: Settings,
        json: bool,
        quiet: bool,
        long_running: bool,
    ) -> Result<Ctx> {
        let path = settings.database_path()?;
        let options = SqliteOptions {
            preallocate_wal: long_running,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(&path, options)
            .await
            .with_context(|| format!("could not open the database {}", path.display()))?;
        tracing::debug!(db = %path.display(), "opened");
        Ok(Ctx {
            store: Arc::new(store),
            settings,
            json,
            quiet,
        })
    }

    /// Manager settings: the attempts a queued job gets come from `[cognition]`.
    pub fn manager_config(&self) -> ManagerConfig {
        let mut config = ManagerConfig::default();
        if let Some(n) = self
            .settings
            .cognition
            .get("attempts")
            .and_then(serde_json::Value::as_u64)
        {
            config.job_attempts = n.clamp(1, 100) as u32;
        }
        config
    }

    /// A manager for `user` (and `persona`, when the command has one).
    pub fn manager(&self, user: &str, persona: Option<&str>) -> Result<ConversationManager> {
        Ok(ConversationManager::with_config(
            self.store.clone(),
            user,
            persona.unwrap_or(NO_PERSONA),
            self.manager_config(),
        )?)
    }

    /// True when progress bars may be drawn: a terminal on stderr, not `--json`/`-q`.
    pub fn show_progress(&self) -> bool {
        !self.json && !self.quiet && std::io::stderr().is_terminal()
    }

    /// Flushes and closes the store so every write is committed before exit.
    pub async fn close(&self) -> Result<()> {
        self.store
            .close()
            .await
            .context("could not close the database")
    }
}
