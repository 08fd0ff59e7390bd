//! convo's core: the domain model (conversations, items, profiles, jobs), validation
//! with typed errors, the [`Store`] trait every backend implements, prompt history
//! rendering, and [`ConversationManager`], the library face with the seed's operations.
//!
//! No SQL and no HTTP live here.

mod ascii_pieces;
mod bpe;
mod error;
pub mod hash;
pub mod history;
pub mod ids;
mod job;
mod manager;
mod model;
mod names;
pub mod prepare;
pub mod profile;
pub mod relevance;
pub mod store;
mod time;
pub mod tokens;
mod vocab_tables;

pub use error::{Error, Result};
pub use history::{
    AnthropicHistory, ChatContent, ChatMessage, FunctionCall, History, HistoryOptions, ToolCall,
    ToolKind,
};
pub use job::{Job, JobCounts, JobKind, JobOutcome, JobQuery, JobState};
pub use manager::{ConversationManager, ManagerConfig};
pub use model::{
    Content, Conversation, ConversationPatch, Item, ItemBody, Metadata, NewConversation, NewItem,
    PreparedConversation, PreparedItem, Role,
};
pub use names::{PersonaName, UserId};
pub use prepare::Limits;
pub use profile::{AuditEntry, ChangeSource, FieldContent, Profile, ProfileField, ProfileOp};
pub use store::{
    ApiKey, ConversationQuery, DeleteReceipt, ErasureReceipt, ItemQuery, Order, Page,
    SaveConversation, SaveOutcome, SearchHit, SearchQuery, Store,
};
pub use time::Timestamp;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
