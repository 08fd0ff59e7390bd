//! `ConversationManager`: the seed's operations, by their names, over any [`Store`].

use std::sync::{Arc, Mutex};

use crate::history::{self, AnthropicHistory, History, HistoryOptions};
use crate::prepare::{self, Limits};
use crate::store::{
    ConversationQuery, DeleteReceipt, ErasureReceipt, ItemQuery, Page, SaveConversation,
    SaveOutcome, SearchHit, SearchQuery, Store,
};
use crate::{
    AuditEntry, ChangeSource, Content, Conversation, ConversationPatch, Error, FieldContent, Item,
    Job, JobKind, JobQuery, Metadata, NewConversation, NewItem, PersonaName, Profile, ProfileOp,
    Result, Role, Timestamp, UserId, ids,
};

/// Settings of a manager.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagerConfig {
    /// Input limits.
    pub limits: Limits,
    /// Cognition jobs queued by a save (default: name and profile).
    pub cognition_on_save: Vec<JobKind>,
    /// Attempts a queued job gets (default 5).
    pub job_attempts: u32,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            limits: Limits::default(),
            cognition_on_save: vec![JobKind::Name, JobKind::Profile],
            job_attempts: 5,
        }
    }
}

/// The conversation manager: every operation of the seed system, async, with typed
/// errors, over any [`Store`].
///
/// Like the seed, it is opened for a user and a persona and tracks a *current
/// conversation*; like the seed, its operations still take the user explicitly and
/// refuse another user's conversation as not found. It is cheap to create (it holds an
/// `Arc` of the store), so a server makes one per request.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use convo_core::{ConversationManager, Role};
/// # let dir = tempfile::tempdir().unwrap();
/// let store = convo_store_sqlite::SqliteStore::open(dir.path().join("convo.db"), Default::default())
///     .await
///     .unwrap();
/// let convo = ConversationManager::new(Arc::new(store), "alice", "Helper").unwrap();
/// let id = convo.conversation_id();
/// convo.add_message("alice", &id, Role::User, "What's the weather in Paris?", None).await.unwrap();
/// convo.add_function_call("alice", &id, "get_weather", r#"{"city":"Paris"}"#, None).await.unwrap();
/// convo.add_response("alice", &id, "18°C, sunny", None).await.unwrap();
/// convo.add_message("alice", &id, Role::Assistant, "It's 18°C and sunny.", None).await.unwrap();
/// let history = convo.get_history("alice", &id).await.unwrap();
/// // user; assistant with tool_calls; tool; assistant
/// assert_eq!(history.messages.len(), 4);
/// assert_eq!(history.messages[2].role, Role::Tool);
/// assert_eq!(history.messages[2].text(), Some("18°C, sunny"));
/// # });
/// ```
pub struct ConversationManager {
    store: Arc<dyn Store>,
    config: ManagerConfig,
    user: UserId,
    persona: PersonaName,
    current: Mutex<String>,
}

impl std::fmt::Debug for ConversationManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationManager")
            .field("store", &self.store.describe())
            .field("user", &self.user)
            .field("persona", &self.persona)
            .finish()
    }
}

impl ConversationManager {
    /// Opens a manager for `user` and `persona` (both validated: a persona like `../x`
    /// is refused) over a store, with a fresh current conversation id.
    pub fn new(store: Arc<dyn Store>, user: &str, persona: &str) -> Result<Self> {
        Self::with_config(store, user, persona, ManagerConfig::default())
    }

    /// Like [`new`](Self::new), with settings.
    pub fn with_config(
        store: Arc<dyn Store>,
        user: &str,
        persona: &str,
        config: ManagerConfig,
    ) -> Result<Self> {
        Ok(ConversationManager {
            store,
            config,
            user: UserId::new(user)?,
            persona: PersonaName::new(persona)?,
            current: Mutex::new(ids::new_id(ids::CONVERSATION)),
        })
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The manager's user.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The manager's persona.
    pub fn persona(&self) -> &PersonaName {
        &self.persona
    }

    /// The settings.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    fn now() -> Timestamp {
        Timestamp::now()
    }

    // ---- connection and schema ----

    /// Checks the store answers (the store was opened by its backend's constructor).
    pub async fn establish_connection(&self) -> Result<()> {
        self.store.ping().await
    }

    /// Closes the store: pending writes are committed first, later calls fail.
    pub async fn close_connection(&self) -> Result<()> {
        self.store.close().await
    }

    /// Runs the schema migrations (idempotent; also done when a store opens).
    pub async fn create_all_tables(&self) -> Result<i64> {
        self.store.migrate().await
    }

    // ---- the current conversation ----

    /// The current conversation id.
    pub fn conversation_id(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts a new current conversation id (time-ordered, unique) and returns it.
    pub fn init_conversation_id(&self) -> String {
        let id = ids::new_id(ids::CONVERSATION);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = id.clone();
        id
    }

    /// Same as [`init_conversation_id`](Self::init_conversation_id).
    pub fn generate_new_conversation_id(&self) -> String {
        self.init_conversation_id()
    }

    /// Switches the current conversation (to continue an older one).
    pub fn update_conversation_id(&self, id: &str) -> Result<()> {
        ids::validate("conversation", id)?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = id.to_string();
        Ok(())
    }

    // ---- conversations ----

    /// True only if `id` is a conversation of `user`.
    pub async fn conversation_exists(&self, user: &str, id: &str) -> Result<bool> {
        let user = UserId::new(user)?;
        match self.store.get_conversation(&user, id).await {
            Ok(_) => Ok(true),
            Err(Error::ConversationNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The seed's save: creates the conversation or updates it (chat log and time;
    /// items are kept), then queues naming and profile jobs in the same transaction.
    pub async fn insert_conversation(
        &self,
        user: &str,
        id: &str,
        chat_log: &str,
        timestamp: Option<Timestamp>,
        persona: &str,
    ) -> Result<SaveOutcome> {
        self.save(user, id, chat_log, timestamp, persona, None)
            .await
    }

    /// The seed's save with a name given by a person (never overwritten by naming).
    pub async fn save(
        &self,
        user: &str,
        id: &str,
        chat_log: &str,
        timestamp: Option<Timestamp>,
        persona: &str,
        name: Option<&str>,
    ) -> Result<SaveOutcome> {
        let now = Self::now();
        let mut conversation = prepare::conversation(
            NewConversation {
                id: Some(id.to_string()),
                user: UserId::new(user)?,
                persona: PersonaName::new(persona)?,
                name: name.map(str::to_string),
                metadata: Metadata::new(),
                created_at: timestamp,
            },
            now,
        )?;
        if chat_log.len() > self.config.limits.max_content_bytes {
            return Err(Error::TooLarge {
                field: "chat_log",
                size: chat_log.len(),
                limit: self.config.limits.max_content_bytes,
            });
        }
        conversation.chat_log = Some(chat_log.to_string());
        let mut enqueue = self.config.cognition_on_save.clone();
        if name.is_some() {
            enqueue.retain(|k| *k != JobKind::Name);
        }
        let out = self
            .store
            .save_conversation(SaveConversation {
                conversation,
                enqueue,
                max_attempts: self.config.job_attempts,
            })
            .await?;
        tracing::debug!(
            conversation = id,
            created = out.created,
            jobs = out.jobs_queued,
            "saved"
        );
        Ok(out)
    }

    /// Creates a conversation with metadata and initial items, all or nothing.
    pub async fn create_conversation(
        &self,
        new: NewConversation,
        items: Vec<NewItem>,
    ) -> Result<(Conversation, Vec<Item>)> {
        let now = Self::now();
        let conversation = prepare::conversation(new, now)?;
        let items = self.prepare_items(items, now)?;
        self.store.create_conversation(conversation, items).await
    }

    /// Imports a conversation and its items exactly as exported (ids, times, names,
    /// metadata, links), in one transaction. An existing id is skipped (`Ok(None)`) or,
    /// with `replace`, replaced (`Ok(Some(true))`); `Ok(Some(false))` is a new one.
    pub async fn import_conversation(
        &self,
        conversation: Conversation,
        items: Vec<Item>,
        replace: bool,
    ) -> Result<Option<bool>> {
        ids::validate("conversation", &conversation.id)?;
        prepare::metadata(&conversation.metadata)?;
        let mut prepared = Vec::with_capacity(items.len());
        for item in items {
            ids::validate("item", &item.id)?;
            let size = item.body.byte_len();
            if size > self.config.limits.max_content_bytes {
                return Err(Error::TooLarge {
                    field: "content",
                    size,
                    limit: self.config.limits.max_content_bytes,
                });
            }
            let text = item.body.plain_text();
            prepared.push(crate::PreparedItem {
                id: item.id,
                created_at: item.created_at,
                tokens: if item.tokens > 0 {
                    item.tokens
                } else {
                    crate::tokens::count(&text)
                },
                text,
                body: item.body,
            });
        }
        self.store
            .import_conversation(conversation, prepared, replace)
            .await
    }

    /// Every user with a conversation or a profile, sorted (exports of everything).
    pub async fn list_users(&self) -> Result<Vec<String>> {
        self.store.list_users().await
    }

    /// A user's conversations (optionally of one persona, or the one with `id`),
    /// newest activity first. Reads every page; see
    /// [`list_conversations`](Self::list_conversations) to page.
    pub async fn get_conversations(
        &self,
        user: &str,
        persona: Option<&str>,
        id: Option<&str>,
    ) -> Result<Vec<Conversation>> {
        let user = UserId::new(user)?;
        if let Some(id) = id {
            return match self.store.get_conversation(&user, id).await {
                Ok(c) if persona.is_none_or(|p| c.persona.as_str() == p) => Ok(vec![c]),
                Ok(_) | Err(Error::ConversationNotFound(_)) => Ok(vec![]),
                Err(e) => Err(e),
            };
        }
        let mut query = ConversationQuery {
            persona: persona.map(PersonaName::new).transpose()?,
            limit: 500,
            cursor: None,
        };
        let mut out = Vec::new();
        loop {
            let page = self.store.list_conversations(&user, &query).await?;
            out.extend(page.data);
            match page.next_cursor {
                Some(c) if page.has_more => query.cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// One page of a user's conversations.
    pub async fn list_conversations(
        &self,
        user: &str,
        query: &ConversationQuery,
    ) -> Result<Page<Conversation>> {
        check_limit(query.limit)?;
        self.store
            .list_conversations(&UserId::new(user)?, query)
            .await
    }

    /// One conversation of the user.
    pub async fn get_conversation(&self, user: &str, id: &str) -> Result<Conversation> {
        self.store.get_conversation(&UserId::new(user)?, id).await
    }

    /// Deletes the conversation and everything under it (items, outputs, search
    /// entries, pending jobs) in one transaction.
    pub async fn delete_conversation(&self, user: &str, id: &str) -> Result<DeleteReceipt> {
        let r = self
            .store
            .delete_conversation(&UserId::new(user)?, id)
            .await?;
        tracing::debug!(conversation = id, items = r.items, jobs = r.jobs, "deleted");
        Ok(r)
    }

    /// Renames a conversation; the name counts as set by a person.
    pub async fn rename_conversation(
        &self,
        user: &str,
        id: &str,
        name: &str,
    ) -> Result<Conversation> {
        let patch = ConversationPatch {
            name: Some(prepare::name(name)?),
            metadata: None,
        };
        self.store
            .update_conversation(&UserId::new(user)?, id, patch)
            .await
    }

    /// Replaces a conversation's metadata.
    pub async fn set_metadata(
        &self,
        user: &str,
        id: &str,
        metadata: Metadata,
    ) -> Result<Conversation> {
        prepare::metadata(&metadata)?;
        let patch = ConversationPatch {
            name: None,
            metadata: Some(metadata),
        };
        self.store
            .update_conversation(&UserId::new(user)?, id, patch)
            .await
    }

    /// Queues a naming job even if the conversation has a name (`rename --auto`).
    /// A name set by a person is released first, so the new name may replace it.
    pub async fn request_name(&self, user: &str, id: &str) -> Result<Job> {
        let user = UserId::new(user)?;
        self.store
            .enqueue_job(&user, id, JobKind::Name, self.config.job_attempts)
            .await
    }

    /// The saved chat log, or a transcript rendered from the items.
    pub async fn get_chat_log(&self, user: &str, id: &str) -> Result<String> {
        let user = UserId::new(user)?;
        let c = self.store.get_conversation(&user, id).await?;
        if let Some(log) = c.chat_log.filter(|l| !l.is_empty()) {
            return Ok(log);
        }
        let items = self.store.all_items(&user, id).await?;
        Ok(history::transcript(&items))
    }

    // ---- items ----

    fn prepare_items(
        &self,
        items: Vec<NewItem>,
        now: Timestamp,
    ) -> Result<Vec<crate::PreparedItem>> {
        if items.len() > self.config.limits.max_batch_items {
            return Err(Error::invalid(
                "items",
                format!(
                    "{} items in one call, at most {}",
                    items.len(),
                    self.config.limits.max_batch_items
                ),
            ));
        }
        items
            .into_iter()
            .map(|i| prepare::item(i, &self.config.limits, now))
            .collect()
    }

    fn implicit_conversation(
        &self,
        user: &UserId,
        id: &str,
        now: Timestamp,
    ) -> Result<Option<crate::PreparedConversation>> {
        if user != &self.user {
            return Ok(None);
        }
        prepare::conversation(
            NewConversation {
                id: Some(id.to_string()),
                user: user.clone(),
                persona: self.persona.clone(),
                name: None,
                metadata: Metadata::new(),
                created_at: None,
            },
            now,
        )
        .map(Some)
    }

    /// Appends items to a conversation in order, all or nothing. If the conversation
    /// does not exist and `user` is the manager's user, it is created with the
    /// manager's persona (the seed added messages before saving).
    pub async fn append_items(
        &self,
        user: &str,
        id: &str,
        items: Vec<NewItem>,
    ) -> Result<Vec<Item>> {
        let user = UserId::new(user)?;
        ids::validate("conversation", id)?;
        let now = Self::now();
        let prepared = self.prepare_items(items, now)?;
        let create = self.implicit_conversation(&user, id, now)?;
        let n = prepared.len();
        let out = self.store.append_items(&user, id, prepared, create).await?;
        tracing::debug!(conversation = id, items = n, "appended");
        Ok(out)
    }

    async fn append_one(&self, user: &str, id: &str, item: NewItem) -> Result<Item> {
        let mut v = self.append_items(user, id, vec![item]).await?;
        v.pop()
            .ok_or_else(|| Error::invalid("items", "nothing was appended"))
    }

    /// Appends a message; returns its id.
    pub async fn add_message(
        &self,
        user: &str,
        id: &str,
        role: Role,
        content: impl Into<Content>,
        timestamp: Option<Timestamp>,
    ) -> Result<String> {
        let mut item = NewItem::message(role, content);
        item.created_at = timestamp;
        Ok(self.append_one(user, id, item).await?.id)
    }

    /// Appends a function call with a generated call id, linked to the newest
    /// assistant message; returns the item id. Arguments are stored verbatim.
    pub async fn add_function_call(
        &self,
        user: &str,
        id: &str,
        function_name: &str,
        arguments: &str,
        timestamp: Option<Timestamp>,
    ) -> Result<String> {
        let call_id = format!("call_{}", &ids::new_id("")[12..]);
        let mut item = NewItem::function_call(call_id, function_name, arguments);
        item.created_at = timestamp;
        Ok(self.append_one(user, id, item).await?.id)
    }

    /// Appends the output of the newest unanswered function call; returns its id.
    pub async fn add_response(
        &self,
        user: &str,
        id: &str,
        response_data: &str,
        timestamp: Option<Timestamp>,
    ) -> Result<String> {
        self.add_function_call_output(user, id, "", response_data, timestamp)
            .await
    }

    /// Appends the output of the function call with `call_id` (empty: the newest
    /// unanswered call); returns its id.
    pub async fn add_function_call_output(
        &self,
        user: &str,
        id: &str,
        call_id: &str,
        output: impl Into<Content>,
        timestamp: Option<Timestamp>,
    ) -> Result<String> {
        let mut item = NewItem::function_call_output(call_id, output);
        item.created_at = timestamp;
        Ok(self.append_one(user, id, item).await?.id)
    }

    /// One page of a conversation's items.
    pub async fn list_items(&self, user: &str, id: &str, query: &ItemQuery) -> Result<Page<Item>> {
        check_limit(query.limit)?;
        self.store.list_items(&UserId::new(user)?, id, query).await
    }

    /// Every item of a conversation, oldest first.
    pub async fn all_items(&self, user: &str, id: &str) -> Result<Vec<Item>> {
        self.store.all_items(&UserId::new(user)?, id).await
    }

    /// One item.
    pub async fn get_item(&self, user: &str, id: &str, item_id: &str) -> Result<Item> {
        self.store.get_item(&UserId::new(user)?, id, item_id).await
    }

    /// Deletes one item.
    pub async fn delete_item(&self, user: &str, id: &str, item_id: &str) -> Result<()> {
        self.store
            .delete_item(&UserId::new(user)?, id, item_id)
            .await
    }

    // ---- history ----

    /// The conversation as chat-completions messages, ready to send: assistant
    /// messages carry their `tool_calls`, each followed by its `tool` message.
    pub async fn get_history(&self, user: &str, id: &str) -> Result<History> {
        self.get_history_with(user, id, HistoryOptions::default())
            .await
    }

    /// [`get_history`](Self::get_history) with a token budget.
    pub async fn get_history_with(
        &self,
        user: &str,
        id: &str,
        options: HistoryOptions,
    ) -> Result<History> {
        let items = self.store.all_items(&UserId::new(user)?, id).await?;
        Ok(history::render_chat_owned(items, options))
    }

    /// The history in the Anthropic Messages shape.
    pub async fn get_history_anthropic(
        &self,
        user: &str,
        id: &str,
        options: HistoryOptions,
    ) -> Result<AnthropicHistory> {
        let items = self.store.all_items(&UserId::new(user)?, id).await?;
        Ok(history::render_anthropic(&items, options))
    }

    // ---- search ----

    /// Ranked full-text hits in the user's messages.
    pub async fn search(
        &self,
        user: &str,
        text: &str,
        persona: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        if text.trim().is_empty() {
            return Err(Error::invalid("query", "search text is empty"));
        }
        check_limit(limit)?;
        let q = SearchQuery {
            text: text.to_string(),
            persona: persona.map(PersonaName::new).transpose()?,
            limit,
        };
        self.store.search(&UserId::new(user)?, &q).await
    }

    // ---- profiles ----

    /// The user's profile.
    pub async fn get_profile(&self, user: &str) -> Result<Profile> {
        self.store.get_profile(&UserId::new(user)?).await
    }

    /// Sets a field by hand.
    pub async fn set_profile_field(
        &self,
        user: &str,
        field: &str,
        content: FieldContent,
        observations: &str,
    ) -> Result<Vec<AuditEntry>> {
        let ops = crate::profile::validate_ops(&[ProfileOp::SetField {
            field_name: field.to_string(),
            content,
            observations: observations.to_string(),
        }])?;
        self.store
            .apply_profile_ops(&UserId::new(user)?, ops, ChangeSource::person())
            .await
    }

    /// Removes a field by hand; false if there was none.
    pub async fn remove_profile_field(&self, user: &str, field: &str) -> Result<bool> {
        let ops = vec![ProfileOp::RemoveField {
            field_name: field.to_string(),
        }];
        let changes = self
            .store
            .apply_profile_ops(&UserId::new(user)?, ops, ChangeSource::person())
            .await?;
        Ok(!changes.is_empty())
    }

    /// Applies operations (validated, all or nothing) with a source for the audit trail.
    pub async fn apply_profile_ops(
        &self,
        user: &str,
        ops: &[ProfileOp],
        source: ChangeSource,
    ) -> Result<Vec<AuditEntry>> {
        let ops = crate::profile::validate_ops(ops)?;
        self.store
            .apply_profile_ops(&UserId::new(user)?, ops, source)
            .await
    }

    /// Imports a profile in the seed's JSON file shape.
    pub async fn import_profile(&self, user: &str, seed_json: &serde_json::Value) -> Result<usize> {
        let ops = Profile::ops_from_seed_json(seed_json)?;
        let mut applied = 0;
        for chunk in ops.chunks(crate::profile::MAX_OPS_PER_JOB) {
            applied += self
                .apply_profile_ops(user, chunk, ChangeSource::import())
                .await?
                .len();
        }
        Ok(applied)
    }

    /// The profile's audit trail, newest first.
    pub async fn profile_history(
        &self,
        user: &str,
        field: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        self.store
            .profile_history(&UserId::new(user)?, field, limit)
            .await
    }

    // ---- jobs and users ----

    /// Jobs, newest first.
    pub async fn list_jobs(&self, query: &JobQuery) -> Result<Vec<Job>> {
        self.store.list_jobs(query).await
    }

    /// Removes every trace of a user in one transaction; returns what was removed.
    pub async fn erase_user(&self, user: &str) -> Result<ErasureReceipt> {
        let r = self.store.erase_user(&UserId::new(user)?).await?;
        tracing::info!(
            conversations = r.conversations,
            items = r.items,
            "erased a user"
        );
        Ok(r)
    }
}

fn check_limit(limit: u32) -> Result<()> {
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("{limit} is not between 1 and 1000"),
        ));
    }
    Ok(())
}
