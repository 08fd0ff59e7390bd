//! Extension routes on conversations: listing, renaming, the seed's chat-log save,
//! the chat log, items with convo's own fields, the history, and search.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use convo_core::{
    Conversation, ConversationQuery, Error, HistoryOptions, Item, PersonaName, Timestamp,
};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams, wrong_type};
use crate::openapi as doc;
use crate::state::Shared;
use crate::v1::{DEFAULT_PERSONA, item_query};
use crate::wire;

use super::{list, tagged};

/// A conversation with convo's own fields.
pub(crate) fn conversation(c: &Conversation) -> Value {
    let mut v = wire::conversation(c);
    if let Value::Object(o) = &mut v {
        o.insert("updated_at".into(), json!(c.updated_at.unix_seconds()));
        o.insert("user".into(), json!(c.user.as_str()));
        o.insert("name_set_by_person".into(), json!(c.name_set_by_person));
        o.insert("has_chat_log".into(), json!(c.chat_log.is_some()));
    }
    v
}

fn item(i: &Item) -> Value {
    let mut v = wire::item(i);
    if let Value::Object(o) = &mut v {
        o.insert("created_at".into(), json!(i.created_at.unix_seconds()));
        o.insert("position".into(), json!(i.position));
        o.insert("tokens".into(), json!(i.tokens));
    }
    v
}

fn persona_param(p: Option<&str>) -> ApiResult<Option<PersonaName>> {
    p.map(PersonaName::new).transpose().map_err(ApiError::from)
}

/// The caller's conversations, newest activity first.
#[utoipa::path(get, path = "/v1/convo/conversations", tag = "convo",
    params(("persona" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1-100, default 20"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = doc::ConversationPage), (status = 400, body = doc::ErrorBody)))]
pub(crate) async fn list_conversations(
    State(st): State<Shared>,
    caller: Caller,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let query = ConversationQuery {
        persona: persona_param(q.str("persona"))?,
        limit: q.u32_in("limit", 1, 100)?.unwrap_or(20),
        cursor: q.str("cursor").map(str::to_string),
    };
    let page = st
        .store
        .list_conversations(caller.user()?, &query)
        .await
        .map_err(|e| match e {
            Error::InvalidCursor(_) => {
                ApiError::bad_request("cursor", "The cursor is not one this listing gave.")
            }
            e => e.into(),
        })?;
    Ok(Json(json!({
        "object": "list",
        "data": page.data.iter().map(conversation).collect::<Vec<_>>(),
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    })))
}

/// One conversation with convo's own fields.
#[utoipa::path(get, path = "/v1/convo/conversations/{conversation_id}", tag = "convo",
    params(("conversation_id" = String, Path)),
    responses((status = 200, body = doc::ConvoConversation), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn get_conversation(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let c = st.store.get_conversation(caller.user()?, &id).await?;
    Ok(Json(conversation(&c)))
}

/// A page of items with `created_at`, `position` and `tokens`.
#[utoipa::path(get, path = "/v1/convo/conversations/{conversation_id}/items", tag = "convo",
    params(("conversation_id" = String, Path), ("after" = Option<String>, Query),
        ("limit" = Option<u32>, Query, description = "1-1000, default 20"), ("order" = Option<String>, Query)),
    responses((status = 200, body = doc::ItemList), (status = 400, body = doc::ErrorBody), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn list_items(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let query = item_query(&q, 1000)?;
    let page = st.store.list_items(caller.user()?, &id, &query).await?;
    Ok(Json(wire::item_list(
        page.data.iter().map(item).collect(),
        page.has_more,
    )))
}

/// Rename (`{"name": ...}`), or queue naming by the model (`{"auto": true}`).
#[utoipa::path(post, path = "/v1/convo/conversations/{conversation_id}/name", tag = "convo",
    params(("conversation_id" = String, Path)), request_body = doc::Rename,
    responses((status = 200, description = "The conversation (name), or the queued job (auto)", body = doc::RenameAnswer),
        (status = 400, body = doc::ErrorBody), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn rename(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let mgr = st.manager(user, DEFAULT_PERSONA)?;
    if body.opt_bool("auto")?.unwrap_or(false) {
        // Check ownership first so another user's id is a 404 whatever the store does.
        st.store.get_conversation(user, &id).await?;
        let job = mgr.request_name(user.as_str(), &id).await?;
        return Ok(Json(tagged("convo.job", &job)?));
    }
    let name = body.opt_str("name")?.ok_or_else(|| {
        ApiError::bad_request(
            "name",
            "Give 'name', or 'auto': true to let the model name it.",
        )
    })?;
    let c = mgr.rename_conversation(user.as_str(), &id, &name).await?;
    Ok(Json(conversation(&c)))
}

fn timestamp(body: &JsonBody) -> ApiResult<Option<Timestamp>> {
    match body.get("timestamp") {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(s) if s >= 0 => Ok(Some(Timestamp::from_unix_ms(s.saturating_mul(1000)))),
            _ => Err(wrong_type(
                "timestamp",
                "Unix seconds or an RFC 3339 string",
            )),
        },
        Some(Value::String(s)) => Timestamp::parse_rfc3339(s)
            .map(Some)
            .map_err(|_| wrong_type("timestamp", "Unix seconds or an RFC 3339 string")),
        Some(_) => Err(wrong_type(
            "timestamp",
            "Unix seconds or an RFC 3339 string",
        )),
    }
}

/// The seed's save (`insert_conversation`): create or update the conversation with
/// its chat log, then queue naming and profile jobs.
#[utoipa::path(put, path = "/v1/convo/conversations/{conversation_id}/chat_log", tag = "convo",
    params(("conversation_id" = String, Path)), request_body = doc::SaveChatLog,
    responses((status = 200, body = doc::SaveResult), (status = 400, body = doc::ErrorBody), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn save_chat_log(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let chat_log = body.req_str("chat_log")?;
    let persona = body
        .opt_str("persona")?
        .unwrap_or_else(|| DEFAULT_PERSONA.into());
    let name = body.opt_str("name")?;
    let ts = timestamp(&body)?;
    let mgr = st.manager(user, &persona)?;
    let out = mgr
        .save(user.as_str(), &id, &chat_log, ts, &persona, name.as_deref())
        .await
        .map_err(|e| match e {
            // Another user's id: not found, like everywhere else.
            Error::ConversationExists(_) => ApiError::conversation_not_found(&id),
            e => e.into(),
        })?;
    Ok(Json(json!({
        "object": "convo.save",
        "created": out.created,
        "jobs_queued": out.jobs_queued,
        "conversation": conversation(&out.conversation),
    })))
}

/// The saved chat log, or a transcript rendered from the items.
#[utoipa::path(get, path = "/v1/convo/conversations/{conversation_id}/chat_log", tag = "convo",
    params(("conversation_id" = String, Path)),
    responses((status = 200, body = doc::ChatLog), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn get_chat_log(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let log = st
        .manager(user, DEFAULT_PERSONA)?
        .get_chat_log(user.as_str(), &id)
        .await?;
    Ok(Json(json!({
        "object": "convo.chat_log",
        "conversation_id": id,
        "chat_log": log,
    })))
}

/// The body of a chat-completions history.
#[derive(serde::Serialize)]
struct OpenAiHistory {
    object: &'static str,
    format: &'static str,
    messages: Vec<convo_core::ChatMessage>,
    tokens: u32,
    truncated: bool,
}

/// The conversation as a prompt: chat-completions messages (default) or the
/// Anthropic Messages shape, optionally cut to `max_tokens`.
#[utoipa::path(get, path = "/v1/convo/conversations/{conversation_id}/history", tag = "convo",
    params(("conversation_id" = String, Path), ("max_tokens" = Option<u32>, Query),
        ("format" = Option<String>, Query, description = "openai (default) or anthropic")),
    responses((status = 200, body = doc::HistoryObject), (status = 400, body = doc::ErrorBody), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn history(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Response> {
    let user = caller.user()?;
    let options = HistoryOptions {
        max_tokens: q.u32_in("max_tokens", 1, u32::MAX)?,
    };
    let mgr = st.manager(user, DEFAULT_PERSONA)?;
    match q.str("format").unwrap_or("openai") {
        "openai" | "chat" => {
            let h = mgr.get_history_with(user.as_str(), &id, options).await?;
            // Serialized straight from the typed messages: no Value tree per message.
            Ok(Json(OpenAiHistory {
                object: "convo.history",
                format: "openai",
                messages: h.messages,
                tokens: h.tokens,
                truncated: h.truncated,
            })
            .into_response())
        }
        "anthropic" => {
            let h = mgr
                .get_history_anthropic(user.as_str(), &id, options)
                .await?;
            Ok(Json(json!({
                "object": "convo.history",
                "format": "anthropic",
                "system": h.system,
                "messages": h.messages,
            }))
            .into_response())
        }
        _ => Err(ApiError::bad_request(
            "format",
            "Invalid 'format': expected 'openai' or 'anthropic'.",
        )),
    }
}

/// Full-text search over the caller's messages.
#[utoipa::path(get, path = "/v1/convo/search", tag = "convo",
    params(("q" = String, Query), ("persona" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1-100, default 20")),
    responses((status = 200, body = doc::ListObject), (status = 400, body = doc::ErrorBody)))]
pub(crate) async fn search(
    State(st): State<Shared>,
    caller: Caller,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let text = q
        .str("q")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("q", "Missing required parameter: 'q'."))?;
    let persona = persona_param(q.str("persona"))?;
    let limit = q.u32_in("limit", 1, 100)?.unwrap_or(20);
    let hits = st
        .manager(user, DEFAULT_PERSONA)?
        .search(
            user.as_str(),
            text,
            persona.as_ref().map(PersonaName::as_str),
            limit,
        )
        .await?;
    let data = hits
        .iter()
        .map(|h| tagged("convo.search_hit", h))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(list(data)))
}
