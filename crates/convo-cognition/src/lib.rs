//! convo's background cognition: the [`Provider`] trait and its implementations
//! (OpenAI-compatible chat completions, Anthropic messages, an offline heuristic, and
//! none), the prompt that asks a model to name a conversation and update the user's
//! profile, the lenient parser for what models answer, and the [`Worker`] that runs the
//! durable job queue of any [`convo_core::Store`].
//!
//! Nothing here holds a store lock across a model call: a slow provider slows only
//! its own jobs, never appends or reads.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use convo_cognition::{CognitionConfig, Worker, build_provider};
//! use convo_core::{ConversationManager, Role, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! let store: Arc<dyn Store> = Arc::new(
//!     convo_store_sqlite::SqliteStore::open(dir.path().join("convo.db"), Default::default())
//!         .await
//!         .unwrap(),
//! );
//! let convo = ConversationManager::new(store.clone(), "alice", "Helper").unwrap();
//! let id = convo.conversation_id();
//! convo.add_message("alice", &id, Role::User, "How do I repot an orchid?", None).await.unwrap();
//! convo.insert_conversation("alice", &id, "", None, "Helper").await.unwrap(); // queues jobs
//!
//! let config = CognitionConfig::default(); // the offline heuristic
//! let worker = Worker::new(store.clone(), build_provider(&config).unwrap(), config);
//! worker.run_until_empty().await.unwrap();
//! let named = convo.get_conversation("alice", &id).await.unwrap();
//! assert_eq!(named.name, "How do I repot an orchid?");
//! # });
//! ```

mod config;
mod error;
pub mod grounding;
mod metrics;
pub mod prompt;
mod provider;
pub mod reply;
mod worker;

pub use config::{CognitionConfig, ProviderKind};
pub use error::{CognitionError, ProviderError};
pub use metrics::{JobTally, Metrics, render_job_counts};
pub use provider::{
    AnthropicProvider, AnthropicSettings, CognitionRequest, HeuristicProvider, NoneProvider,
    OpenAiProvider, OpenAiSettings, Provider, ProviderReply, Secret, StructuredMode,
    build_provider,
};
pub use worker::{Attempt, WorkSummary, Worker};
