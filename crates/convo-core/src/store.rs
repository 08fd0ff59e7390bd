//! The storage interface every backend implements.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::{
    AuditEntry, ChangeSource, Conversation, ConversationPatch, Item, Job, JobCounts, JobKind,
    JobOutcome, JobQuery, PersonaName, PreparedConversation, PreparedItem, Profile, ProfileOp,
    Result, Timestamp, UserId,
};

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The entries.
    pub data: Vec<T>,
    /// True exactly when entries remain past this page.
    pub has_more: bool,
    /// Pass as `after`/`cursor` to get the next page (present when `has_more`).
    pub next_cursor: Option<String>,
}

/// Listing order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// Which conversations to list: a user's, newest activity first.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationQuery {
    /// Only this persona's.
    pub persona: Option<PersonaName>,
    /// Page size (1-1000).
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for ConversationQuery {
    fn default() -> Self {
        ConversationQuery {
            persona: None,
            limit: 50,
            cursor: None,
        }
    }
}

/// Which items to list.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemQuery {
    /// Items strictly after this item id, in `order`.
    pub after: Option<String>,
    /// Page size (1-1000).
    pub limit: u32,
    /// Insertion order, ascending or descending.
    pub order: Order,
}

impl Default for ItemQuery {
    fn default() -> Self {
        ItemQuery {
            after: None,
            limit: 20,
            order: Order::Desc,
        }
    }
}

/// A full-text query over one user's messages.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Words to find (plain text; operators are not interpreted).
    pub text: String,
    /// Only this persona's conversations.
    pub persona: Option<PersonaName>,
    /// At most this many hits (default 20).
    pub limit: u32,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The conversation.
    pub conversation_id: String,
    /// Its name.
    pub conversation_name: String,
    /// Its persona.
    pub persona: String,
    /// The matching item.
    pub item_id: String,
    /// Who said it.
    pub role: String,
    /// The matching passage, hits in `[` `]`.
    pub snippet: String,
    /// Relevance (higher is better).
    pub score: f64,
    /// When it was said.
    pub created_at: Timestamp,
}

/// What `insert_conversation` (the seed's save) writes.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveConversation {
    /// The conversation record to create, or to update if it exists (chat log,
    /// `updated_at`, and the name when one is given).
    pub conversation: PreparedConversation,
    /// Queue these cognition jobs in the same transaction.
    pub enqueue: Vec<JobKind>,
    /// Attempts each queued job gets.
    pub max_attempts: u32,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaveOutcome {
    /// The conversation after the save.
    pub conversation: Conversation,
    /// True if it was created by this save.
    pub created: bool,
    /// Jobs queued by this save (an already pending job is not queued twice).
    pub jobs_queued: u32,
}

/// What deleting a conversation removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteReceipt {
    /// Items (messages, calls, outputs) removed.
    pub items: u64,
    /// Jobs cancelled.
    pub jobs: u64,
}

/// What erasing a user removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReceipt {
    /// Conversations removed.
    pub conversations: u64,
    /// Items removed (with their search entries).
    pub items: u64,
    /// Profile fields removed.
    pub profile_fields: u64,
    /// Audit entries removed.
    pub audit_entries: u64,
    /// Jobs removed.
    pub jobs: u64,
    /// API keys removed.
    pub api_keys: u64,
}

/// A stored API key (never the secret: only its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public id (`key_…`).
    pub id: String,
    /// SHA-256 of the secret, hex.
    #[serde(skip_serializing)]
    pub hash: String,
    /// The user it acts as; `None` for an admin key.
    pub user: Option<String>,
    /// Admin keys act for any user named in `X-Convo-User`.
    pub admin: bool,
    /// A label.
    pub label: String,
    /// Created.
    pub created_at: Timestamp,
    /// Expires, if set.
    pub expires_at: Option<Timestamp>,
    /// Revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// Conversations, items, search, profiles, jobs and keys, on one database.
///
/// Implementations validate nothing the manager already validated (persona names,
/// sizes), but enforce everything that needs the database: ownership (another user's
/// conversation is *not found*), call ids, cursors, and all-or-nothing batches.
/// Every multi-row change is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // -- conversations --
    /// Creates a conversation with initial items, all or nothing.
    async fn create_conversation(
        &self,
        conversation: PreparedConversation,
        items: Vec<PreparedItem>,
    ) -> Result<(Conversation, Vec<Item>)>;
    /// The user's conversation.
    async fn get_conversation(&self, user: &UserId, id: &str) -> Result<Conversation>;
    /// The user's conversations, newest activity first.
    async fn list_conversations(
        &self,
        user: &UserId,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>>;
    /// Renames or replaces metadata.
    async fn update_conversation(
        &self,
        user: &UserId,
        id: &str,
        patch: ConversationPatch,
    ) -> Result<Conversation>;
    /// Deletes a conversation and everything under it.
    async fn delete_conversation(&self, user: &UserId, id: &str) -> Result<DeleteReceipt>;
    /// The seed's save: upsert with chat log, and queue cognition jobs.
    async fn save_conversation(&self, save: SaveConversation) -> Result<SaveOutcome>;
    /// Imports a conversation and its items exactly as given (ids, times, names, links
    /// unchecked), in one transaction. If the id exists: `replace` deletes it first,
    /// otherwise nothing is written and `Ok(None)` says it was skipped. `Ok(Some(true))`
    /// means an existing one was replaced.
    async fn import_conversation(
        &self,
        conversation: PreparedConversation,
        items: Vec<PreparedItem>,
        replace: bool,
    ) -> Result<Option<bool>>;

    // -- items --
    /// Appends items in order, all or nothing. When the conversation does not exist
    /// and `create` is given, it is created first in the same transaction (the seed
    /// appended messages before saving the conversation).
    async fn append_items(
        &self,
        user: &UserId,
        conversation_id: &str,
        items: Vec<PreparedItem>,
        create: Option<PreparedConversation>,
    ) -> Result<Vec<Item>>;
    /// One page of items.
    async fn list_items(
        &self,
        user: &UserId,
        conversation_id: &str,
        query: &ItemQuery,
    ) -> Result<Page<Item>>;
    /// Every item, oldest first (history, transcripts, exports).
    async fn all_items(&self, user: &UserId, conversation_id: &str) -> Result<Vec<Item>>;
    /// One item.
    async fn get_item(&self, user: &UserId, conversation_id: &str, item_id: &str) -> Result<Item>;
    /// Deletes one item.
    async fn delete_item(&self, user: &UserId, conversation_id: &str, item_id: &str) -> Result<()>;

    // -- search --
    /// Ranked full-text hits in the user's messages.
    async fn search(&self, user: &UserId, query: &SearchQuery) -> Result<Vec<SearchHit>>;

    // -- profiles --
    /// The user's profile.
    async fn get_profile(&self, user: &UserId) -> Result<Profile>;
    /// Applies validated operations in one transaction, with audit entries.
    async fn apply_profile_ops(
        &self,
        user: &UserId,
        ops: Vec<ProfileOp>,
        source: ChangeSource,
    ) -> Result<Vec<AuditEntry>>;
    /// The audit trail, newest first; optionally of one field.
    async fn profile_history(
        &self,
        user: &UserId,
        field: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;

    // -- jobs --
    /// Queues a job for a conversation (unless one of that kind is already pending).
    /// Queuing a `Name` job by request releases a name set by a person, so the new
    /// name may replace it.
    async fn enqueue_job(
        &self,
        user: &UserId,
        conversation_id: &str,
        kind: JobKind,
        max_attempts: u32,
    ) -> Result<Job>;
    /// Leases the next runnable job to `worker` until `now + lease`. Profile jobs of
    /// one user are handed out one at a time, in the order they were queued.
    async fn claim_job(&self, worker: &str, lease: Duration, now: Timestamp)
    -> Result<Option<Job>>;
    /// Ends an attempt. Effects are written only if `worker` still holds the lease and
    /// the job still exists; returns false (and writes nothing) otherwise.
    async fn finish_job(&self, job_id: &str, worker: &str, outcome: JobOutcome) -> Result<bool>;
    /// Hands `worker`'s running jobs back to the queue (graceful stop).
    async fn release_jobs(&self, worker: &str) -> Result<u64>;
    /// One job.
    async fn get_job(&self, id: &str) -> Result<Job>;
    /// Jobs, newest first.
    async fn list_jobs(&self, query: &JobQuery) -> Result<Vec<Job>>;
    /// Jobs by state.
    async fn job_counts(&self) -> Result<JobCounts>;

    // -- users --
    /// Every user with a conversation or a profile, sorted.
    async fn list_users(&self) -> Result<Vec<String>>;
    /// Removes every conversation, item, search entry, profile field, audit entry, job
    /// and API key of the user, in one transaction. A backend should also overwrite
    /// what its files keep of the removed data (freed pages, logs, index segments)
    /// before it returns, or say in its documentation what it leaves.
    async fn erase_user(&self, user: &UserId) -> Result<ErasureReceipt>;

    // -- API keys --
    /// Stores a key (its hash).
    async fn create_api_key(&self, key: ApiKey) -> Result<ApiKey>;
    /// The key with this hash, if any (revoked ones included; the caller checks).
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>>;
    /// Every key.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key; false if there is none with that id.
    async fn revoke_api_key(&self, id: &str) -> Result<bool>;

    // -- operations --
    /// Runs pending schema migrations (also done on open); returns the schema version.
    async fn migrate(&self) -> Result<i64>;
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;
    /// Flushes and closes; later calls fail with [`Error::Closed`](crate::Error::Closed).
    async fn close(&self) -> Result<()>;
    /// A short description for logs (`sqlite:/path/convo.db`).
    fn describe(&self) -> String;
}
