//! The JSON Lines exchange format of `convo export` / `convo import`, and the
//! all-or-nothing, per-conversation writer that imports share.

use std::sync::Arc;

use convo_core::{
    Conversation, Error, Item, ItemBody, Limits, Metadata, NewItem, PersonaName,
    PreparedConversation, PreparedItem, Store, Timestamp, UserId, ids, prepare,
};
use futures::StreamExt;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

/// One conversation, one line: everything needed to recreate it exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedConversation {
    /// Its id.
    pub id: String,
    /// Its user.
    pub user: String,
    /// Its persona.
    pub persona: String,
    /// Its name (may be empty).
    #[serde(default)]
    pub name: String,
    /// True when a person set the name.
    #[serde(default)]
    pub name_set_by_person: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Metadata, sorted by key.
    #[serde(default)]
    pub metadata: Metadata,
    /// The saved chat log, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_log: Option<String>,
    /// Every item, oldest first.
    #[serde(default)]
    pub items: Vec<ExportedItem>,
}

/// One item of an exported conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedItem {
    /// Its id.
    pub id: String,
    /// When it was appended.
    pub created_at: Timestamp,
    /// What it is (`type` and its fields).
    #[serde(flatten)]
    pub body: ItemBody,
}

impl ExportedConversation {
    /// From a stored conversation and its items.
    pub fn new(c: Conversation, items: Vec<Item>) -> Self {
        ExportedConversation {
            id: c.id,
            user: c.user.to_string(),
            persona: c.persona.to_string(),
            name: c.name,
            name_set_by_person: c.name_set_by_person,
            created_at: c.created_at,
            updated_at: c.updated_at,
            metadata: c.metadata,
            chat_log: c.chat_log,
            items: items
                .into_iter()
                .map(|i| ExportedItem {
                    id: i.id,
                    created_at: i.created_at,
                    body: i.body,
                })
                .collect(),
        }
    }

    /// Validates it into what a store writes, keeping ids and times.
    pub fn prepare(self, limits: &Limits) -> convo_core::Result<ToWrite> {
        ids::validate("conversation", &self.id)?;
        let name = prepare::name(&self.name)?;
        prepare::metadata(&self.metadata)?;
        let now = Timestamp::now();
        let items = self
            .items
            .into_iter()
            .map(|i| {
                let new = NewItem {
                    id: Some(i.id),
                    created_at: Some(i.created_at),
                    body: i.body,
                };
                prepare::item(new, limits, now)
            })
            .collect::<convo_core::Result<Vec<_>>>()?;
        Ok(ToWrite {
            conversation: PreparedConversation {
                id: self.id,
                user: UserId::new(self.user)?,
                persona: PersonaName::new(self.persona)?,
                name_set_by_person: self.name_set_by_person && !name.is_empty(),
                name,
                created_at: self.created_at,
                updated_at: self.updated_at.max(self.created_at),
                metadata: self.metadata,
                chat_log: self.chat_log,
            },
            items,
        })
    }
}

/// A validated conversation with its items, ready to be written.
#[derive(Debug, Clone)]
pub struct ToWrite {
    /// The conversation record.
    pub conversation: PreparedConversation,
    /// Its items, in order.
    pub items: Vec<PreparedItem>,
}

/// What writing one conversation did.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// Created, with this many items.
    Created(usize),
    /// Replaced an existing one (`--replace`), with this many items.
    Replaced(usize),
    /// Left alone.
    Skipped(String),
    /// Failed; nothing of it was written.
    Failed(String),
}

/// Conversations written at once: the store commits concurrent writes together, so
/// more in flight means fewer commits (measured on 10,000 legacy conversations: the
/// writing phase went from ~9 s with 16 in flight to ~7 s with 64).
const IN_FLIGHT: usize = 64;

/// Writes conversations, each all or nothing, several at a time so the store can
/// commit them in groups. Returns one outcome per input, in input order.
pub async fn write_all(
    store: &Arc<dyn Store>,
    batch: Vec<ToWrite>,
    replace: bool,
    bar: &ProgressBar,
) -> Vec<(String, Written)> {
    write_stream(store, futures::stream::iter(batch), replace, bar).await
}

/// [`write_all`] over conversations as they are produced (a migration converts the
/// next ones while these are written).
pub async fn write_stream(
    store: &Arc<dyn Store>,
    batch: impl futures::Stream<Item = ToWrite>,
    replace: bool,
    bar: &ProgressBar,
) -> Vec<(String, Written)> {
    let mut out: Vec<(usize, String, Written)> = batch
        .enumerate()
        .map(|(i, w)| {
            let store = store.clone();
            async move {
                let id = w.conversation.id.clone();
                let written = write_one(&store, w, replace).await;
                (i, id, written)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .inspect(|_| bar.inc(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, id, w)| (id, w)).collect()
}

async fn write_one(store: &Arc<dyn Store>, w: ToWrite, replace: bool) -> Written {
    let n = w.items.len();
    let user = w.conversation.user.clone();
    let id = w.conversation.id.clone();
    match store
        .import_conversation(w.conversation.clone(), w.items.clone(), false)
        .await
    {
        Ok(Some(_)) => return Written::Created(n),
        Ok(None) => {}
        Err(e) => return Written::Failed(e.to_string()),
    }
    // The id exists. Conversation ids are unique across users, and the store's
    // replace does not look at the owner: only ever replace the user's own.
    match store.get_conversation(&user, &id).await {
        Ok(_) if replace => match store
            .import_conversation(w.conversation, w.items, true)
            .await
        {
            Ok(_) => Written::Replaced(n),
            Err(e) => Written::Failed(e.to_string()),
        },
        Ok(_) => Written::Skipped("already exists (pass --replace to overwrite)".into()),
        Err(Error::ConversationNotFound(_)) => {
            Written::Skipped("the id is used by another user's conversation".into())
        }
        Err(e) => Written::Failed(e.to_string()),
    }
}
