//! Legacy rows to conversations and items: ordering, id stripping, and linking.

use std::collections::{BTreeMap, HashMap, HashSet};

use convo_core::{
    Content, ItemBody, Limits, Metadata, NewItem, PersonaName, PreparedConversation, Role,
    Timestamp, UserId, ids, prepare,
};
use serde::Serialize;

use super::clean::strip_ids;
use super::read::{
    LegacyCall, LegacyConversation, LegacyDb, LegacyResponse, LegacyRows, int, text,
};
use super::timestamp;
use crate::exchange::ToWrite;

/// What the conversion saw and decided, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Conversations found (rows, or message groups without a row).
    pub conversations: u64,
    /// Extra rows of an already seen conversation id (the newest row was used).
    pub duplicate_rows: u64,
    /// Conversations rebuilt from their messages because their row was missing.
    pub without_conversation_row: u64,
    /// Messages.
    pub messages: u64,
    /// Function calls.
    pub function_calls: u64,
    /// Calls linked to the message that issued them.
    pub calls_linked_to_messages: u64,
    /// Responses linked to their call by its id.
    pub outputs_linked_by_id: u64,
    /// Responses without a usable call id, linked to the preceding unanswered call.
    pub outputs_linked_by_position: u64,
    /// Responses with no call to answer, kept as `tool` messages.
    pub outputs_kept_as_messages: u64,
    /// Messages whose role was unknown, kept as `user` messages.
    pub unknown_roles: u64,
    /// Timestamps no format fitted (the previous item's time was used).
    pub unparsed_timestamps: u64,
}

/// What converting one legacy file left out and counted.
#[derive(Debug)]
pub struct Converted {
    /// Conversations left out: `(id, reason)`.
    pub skipped: Vec<(String, String)>,
    /// Counts.
    pub stats: Stats,
}

/// Converts what was read from one legacy file, handing each conversation ready to
/// write to `emit` as soon as it is converted.
pub fn convert(db: LegacyDb, limits: &Limits, mut emit: impl FnMut(ToWrite)) -> Converted {
    let mut stats = Stats::default();
    let mut skipped: Vec<(String, String)> = db
        .unreadable_rows
        .iter()
        .map(|r| (String::new(), r.clone()))
        .collect();

    // The seed deleted and re-inserted on save; the newest row of an id is the truth.
    let mut rows: BTreeMap<(String, String), LegacyConversation> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for c in db.conversations {
        let (Some(user), Some(id)) = (c.user.clone(), c.conversation_id.clone()) else {
            skipped.push((
                c.conversation_id.clone().unwrap_or_default(),
                format!(
                    "conversations row {} has no user or conversation id",
                    c.rowid
                ),
            ));
            continue;
        };
        let k = (user, id);
        if rows.insert(k.clone(), c).is_some() {
            stats.duplicate_rows += 1;
        } else {
            order.push(k);
        }
    }
    let mut data = db.rows;
    // Messages whose conversation row is missing are kept: the conversation is
    // rebuilt from them.
    let mut orphans: Vec<(String, String)> = data
        .keys()
        .filter(|k| !rows.contains_key(*k))
        .cloned()
        .collect();
    orphans.sort();
    stats.without_conversation_row = orphans.len() as u64;

    for k in order.iter().chain(&orphans) {
        stats.conversations += 1;
        let row = rows.remove(k);
        let legacy_rows = data.remove(k).unwrap_or_default();
        match one(
            k,
            row.as_ref(),
            legacy_rows,
            &db.persona,
            limits,
            &mut stats,
        ) {
            Ok(w) => emit(w),
            Err(reason) => skipped.push((k.1.clone(), reason)),
        }
    }
    Converted { skipped, stats }
}

#[derive(Debug)]
enum Entry<'a> {
    Message(usize),
    Call(&'a LegacyCall),
    Response(&'a LegacyResponse),
}

fn one(
    (user, id): &(String, String),
    row: Option<&LegacyConversation>,
    rows: LegacyRows,
    default_persona: &str,
    limits: &Limits,
    stats: &mut Stats,
) -> Result<ToWrite, String> {
    let user = UserId::new(user.as_str()).map_err(|e| e.to_string())?;
    ids::validate("conversation", id).map_err(|e| e.to_string())?;
    let persona_text = row
        .and_then(|r| r.persona.clone())
        .unwrap_or_else(|| default_persona.to_string());
    let persona = PersonaName::new(persona_text.trim()).map_err(|e| e.to_string())?;

    let created_row = row.and_then(|r| timestamp::parse(&r.timestamp));
    let created_hint = created_row.or_else(|| timestamp::from_conversation_id(id));

    // A row without a readable time sorts at the time of the row before it (by id)
    // in its own table: legacy ids grew with time.
    let fallback_ms = created_hint.map(|t| t.unix_ms()).unwrap_or(0);
    let msg_time = sort_times(
        rows.messages.iter().map(|m| (m.id, &m.timestamp)),
        fallback_ms,
    );
    let call_time = sort_times(rows.calls.iter().map(|c| (c.id, &c.timestamp)), fallback_ms);
    let resp_time = sort_times(
        rows.responses.iter().map(|r| (r.id, &r.timestamp)),
        fallback_ms,
    );

    // Messages in time order (ties by id); calls and responses hang off what they
    // link to, the rest is placed by its own time.
    let mut messages: Vec<_> = rows.messages.iter().collect();
    messages.sort_by_key(|m| (msg_time[&m.id], m.id));
    let message_index: HashMap<i64, usize> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (m.id, i))
        .collect();
    let call_ids: HashSet<i64> = rows.calls.iter().map(|c| c.id).collect();
    let mut calls_of: HashMap<usize, Vec<&LegacyCall>> = HashMap::new();
    let mut responses_of: HashMap<i64, Vec<&LegacyResponse>> = HashMap::new();
    let mut top: Vec<(i64, u8, i64, Entry)> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (msg_time[&m.id], 0, m.id, Entry::Message(i)))
        .collect();
    for c in &rows.calls {
        match c.message_id.and_then(|m| message_index.get(&m)) {
            Some(&i) => {
                stats.calls_linked_to_messages += 1;
                calls_of.entry(i).or_default().push(c);
            }
            None => top.push((call_time[&c.id], 1, c.id, Entry::Call(c))),
        }
    }
    for r in &rows.responses {
        match int(&r.function_call_id).filter(|c| call_ids.contains(c)) {
            Some(c) => responses_of.entry(c).or_default().push(r),
            None => top.push((resp_time[&r.id], 2, r.id, Entry::Response(r))),
        }
    }
    top.sort_by_key(|(t, rank, lid, _)| (*t, *rank, *lid));

    let mut out = Builder {
        items: Vec::new(),
        unanswered: Vec::new(),
        last_time: created_hint,
        stats,
    };
    for (_, _, _, entry) in &top {
        match entry {
            Entry::Message(i) => {
                let m = messages[*i];
                let msg_id = out.message(m.role.as_deref(), m.content.as_deref(), &m.timestamp);
                if let Some(calls) = calls_of.get_mut(i) {
                    calls.sort_by_key(|c| c.id);
                    for c in calls.iter() {
                        out.call(c, Some(msg_id.clone()), &mut responses_of);
                    }
                }
            }
            Entry::Call(c) => out.call(c, None, &mut responses_of),
            Entry::Response(r) => out.unlinked_response(r),
        }
    }
    let Builder { items, stats, .. } = out;
    stats.messages += rows.messages.len() as u64;
    stats.function_calls += rows.calls.len() as u64;

    let now = Timestamp::now();
    let first_item = items.iter().filter_map(|i| i.created_at).min();
    let last_item = items.iter().filter_map(|i| i.created_at).max();
    let created = created_hint.or(first_item).unwrap_or(now);
    let updated = row
        .and_then(|r| timestamp::parse(&r.date_modified))
        .or(last_item)
        .unwrap_or(created)
        .max(created);
    let prepared = items
        .into_iter()
        .map(|i| prepare::item(i, limits, now))
        .collect::<convo_core::Result<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    let name = row
        .and_then(|r| r.name.as_deref())
        .map(clean_name)
        .unwrap_or_default();
    Ok(ToWrite {
        conversation: PreparedConversation {
            id: id.clone(),
            user,
            persona,
            name,
            // The background namer set legacy names; a new namer may improve them.
            name_set_by_person: false,
            created_at: created,
            updated_at: updated,
            metadata: Metadata::from([("imported_from".to_string(), "scout".to_string())]),
            chat_log: row.and_then(|r| r.chat_log.clone()),
        },
        items: prepared,
    })
}

/// Sort times (Unix ms) by legacy id: a row's own time, else the time of the row
/// before it by id, else `fallback`.
fn sort_times<'a>(
    rows: impl Iterator<Item = (i64, &'a rusqlite::types::Value)>,
    fallback: i64,
) -> HashMap<i64, i64> {
    let mut rows: Vec<_> = rows.collect();
    rows.sort_by_key(|(id, _)| *id);
    let mut last = fallback;
    rows.into_iter()
        .map(|(id, ts)| {
            if let Some(t) = timestamp::parse(ts) {
                last = t.unix_ms();
            }
            (id, last)
        })
        .collect()
}

struct Builder<'s> {
    items: Vec<NewItem>,
    unanswered: Vec<String>,
    last_time: Option<Timestamp>,
    stats: &'s mut Stats,
}

impl Builder<'_> {
    fn time(&mut self, cell: &rusqlite::types::Value) -> Option<Timestamp> {
        match timestamp::parse(cell) {
            Some(t) => {
                self.last_time = Some(t);
                Some(t)
            }
            None => {
                self.stats.unparsed_timestamps += 1;
                self.last_time
            }
        }
    }

    fn push(&mut self, body: ItemBody, when: Option<Timestamp>) -> String {
        let id = ids::new_id(body.id_prefix());
        self.items.push(NewItem {
            id: Some(id.clone()),
            created_at: when,
            body,
        });
        id
    }

    fn message(
        &mut self,
        role: Option<&str>,
        content: Option<&str>,
        ts: &rusqlite::types::Value,
    ) -> String {
        let role = match role.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
            Some("system") => Role::System,
            Some("developer") => Role::Developer,
            Some("user") | Some("human") => Role::User,
            Some("assistant") | Some("bot") | Some("ai") => Role::Assistant,
            Some("tool") | Some("function") => Role::Tool,
            _ => {
                self.stats.unknown_roles += 1;
                Role::User
            }
        };
        let when = self.time(ts);
        self.push(
            ItemBody::Message {
                role,
                content: Content::Text(strip_ids(content.unwrap_or(""))),
            },
            when,
        )
    }

    fn call(
        &mut self,
        c: &LegacyCall,
        message_id: Option<String>,
        responses_of: &mut HashMap<i64, Vec<&LegacyResponse>>,
    ) {
        let call_id = format!("call_{}", c.id);
        let name = c
            .function_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or("unknown_function")
            .chars()
            .take(prepare::MAX_FUNCTION_NAME)
            .collect::<String>();
        let when = self.time(&c.timestamp);
        self.push(
            ItemBody::FunctionCall {
                call_id: call_id.clone(),
                name,
                arguments: strip_ids(c.arguments.as_deref().unwrap_or("")),
                message_id,
            },
            when,
        );
        self.unanswered.push(call_id.clone());
        if let Some(mut rs) = responses_of.remove(&c.id) {
            rs.sort_by_key(|r| r.id);
            for r in rs {
                self.stats.outputs_linked_by_id += 1;
                self.output(&call_id, r);
            }
        }
    }

    fn output(&mut self, call_id: &str, r: &LegacyResponse) {
        self.unanswered.retain(|c| c != call_id);
        let when = self.time(&r.timestamp);
        self.push(
            ItemBody::FunctionCallOutput {
                call_id: call_id.to_string(),
                output: Content::Text(strip_ids(r.response_data.as_deref().unwrap_or(""))),
            },
            when,
        );
    }

    /// A response whose call id is the literal `[function_call_id]`, missing, or names
    /// no call of this conversation: it answers the newest unanswered call before it,
    /// or, with none, is kept as a `tool` message rather than dropped.
    fn unlinked_response(&mut self, r: &LegacyResponse) {
        if let Some(call_id) = self.unanswered.last().cloned() {
            self.stats.outputs_linked_by_position += 1;
            self.output(&call_id, r);
        } else {
            self.stats.outputs_kept_as_messages += 1;
            let note = text(&r.function_call_id).unwrap_or_default();
            tracing::debug!(response = r.id, call = %note, "legacy response kept as a tool message");
            let when = self.time(&r.timestamp);
            self.push(
                ItemBody::Message {
                    role: Role::Tool,
                    content: Content::Text(strip_ids(r.response_data.as_deref().unwrap_or(""))),
                },
                when,
            );
        }
    }
}

/// A legacy name made valid: one line, trimmed, at most 256 characters.
fn clean_name(n: &str) -> String {
    let one: String = n
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one.trim()
        .chars()
        .take(prepare::MAX_NAME_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}
