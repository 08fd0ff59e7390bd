//! `/v1`: the OpenAI Conversations API, as the official SDKs call it.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use convo_core::{
    ConversationPatch, ItemQuery, Limits, NewConversation, NewItem, Order, PersonaName,
    PreparedItem, Timestamp, UserId, prepare,
};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ItemsBody, JsonBody, QueryParams, missing};
use crate::openapi as doc;
use crate::state::Shared;
use crate::wire;

/// The persona of conversations created without one.
pub(crate) const DEFAULT_PERSONA: &str = "default";

/// Create a conversation, with initial items (at most 20) and metadata.
#[utoipa::path(post, path = "/v1/conversations", tag = "conversations",
    request_body = doc::CreateConversation,
    responses((status = 200, body = doc::ConversationObject), (status = 400, body = doc::ErrorBody), (status = 401, body = doc::ErrorBody)))]
pub(crate) async fn create_conversation(
    State(st): State<Shared>,
    caller: Caller,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let items = wire::parse_items(body.get("items"))?;
    let metadata = body.opt_metadata("metadata")?.unwrap_or_default();
    let persona = body
        .opt_str("persona")?
        .unwrap_or_else(|| DEFAULT_PERSONA.into());
    let name = body.opt_str("name")?;
    let now = Timestamp::now();
    let conversation = prepare::conversation(
        NewConversation {
            id: None,
            user: user.clone(),
            persona: PersonaName::new(persona)?,
            name,
            metadata,
            created_at: None,
        },
        now,
    )?;
    let items = prepare_items(items, st.config.manager.limits, now).await?;
    let (c, _) = st.store.create_conversation(conversation, items).await?;
    Ok(Json(wire::conversation(&c)))
}

/// Retrieve a conversation.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = String, Path)),
    responses((status = 200, body = doc::ConversationObject), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn get_conversation(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let c = st.store.get_conversation(caller.user()?, &id).await?;
    Ok(Json(wire::conversation(&c)))
}

/// Update a conversation: `metadata` replaces the whole map (`null` clears it);
/// convo also accepts `name`.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = String, Path)),
    request_body = doc::UpdateConversation,
    responses((status = 200, body = doc::ConversationObject), (status = 400, body = doc::ErrorBody), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn update_conversation(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let name = body
        .opt_str("name")?
        .map(|n| prepare::name(&n))
        .transpose()?;
    if !body.has("metadata") && name.is_none() {
        return Err(missing("metadata"));
    }
    let metadata = if body.has("metadata") {
        let m = body.opt_metadata("metadata")?.unwrap_or_default();
        prepare::metadata(&m)?;
        Some(m)
    } else {
        None
    };
    let c = st
        .store
        .update_conversation(user, &id, ConversationPatch { name, metadata })
        .await?;
    Ok(Json(wire::conversation(&c)))
}

/// Delete a conversation and everything in it.
#[utoipa::path(delete, path = "/v1/conversations/{conversation_id}", tag = "conversations",
    params(("conversation_id" = String, Path)),
    responses((status = 200, body = doc::DeletedConversation), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn delete_conversation(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    st.store.delete_conversation(caller.user()?, &id).await?;
    Ok(Json(wire::deleted(&id)))
}

/// Add items (at most 20, all or nothing); answers the new items in request order.
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/items", tag = "items",
    params(("conversation_id" = String, Path), ("include[]" = Option<Vec<String>>, Query, description = "Accepted and ignored")),
    request_body = doc::CreateItems,
    responses((status = 200, body = doc::ItemList), (status = 400, body = doc::ErrorBody), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn create_items(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    _query: QueryParams,
    body: ItemsBody,
) -> ApiResult<Response> {
    let user = caller.user()?;
    let body = match body {
        ItemsBody::Items(items) => return append(&st, user, &id, items).await,
        ItemsBody::Json(body) => body,
    };
    let items = match body.get("items") {
        None => return Err(missing("items")),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(ApiError::bad_request(
                "items",
                "Invalid 'items': empty array. Expected an array with minimum length 1.",
            ));
        }
        v => wire::parse_items(v)?,
    };
    append(&st, user, &id, items).await
}

/// Prepares and appends parsed items; answers them as a list.
async fn append(st: &Shared, user: &UserId, id: &str, items: Vec<NewItem>) -> ApiResult<Response> {
    let prepared = prepare_items(items, st.config.manager.limits, Timestamp::now()).await?;
    // No implicit creation here: an unknown conversation is a 404.
    let stored = st.store.append_items(user, id, prepared, None).await?;
    Ok(Json(wire::ItemPage {
        items: &stored,
        has_more: false,
    })
    .into_response())
}

/// Above this many bytes of content, items are prepared on the blocking pool.
const INLINE_PREPARE_BYTES: usize = 16 * 1024;

/// Validates items and counts their tokens. Counting is CPU work that grows faster
/// than linearly with long unbroken text, so big batches leave the async workers
/// free for other requests.
pub(crate) async fn prepare_items(
    items: Vec<NewItem>,
    limits: Limits,
    now: Timestamp,
) -> ApiResult<Vec<PreparedItem>> {
    let size: usize = items.iter().map(|i| i.body.byte_len()).sum();
    let work = move || {
        items
            .into_iter()
            .map(|i| prepare::item(i, &limits, now))
            .collect::<convo_core::Result<Vec<_>>>()
    };
    if size <= INLINE_PREPARE_BYTES {
        return Ok(work()?);
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(ApiError::from)
}

/// Parses `after`, `limit` (1-100, default 20) and `order` (default `desc`).
pub(crate) fn item_query(q: &QueryParams, max_limit: u32) -> ApiResult<ItemQuery> {
    let order = match q.str("order") {
        None | Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(_) => {
            return Err(ApiError::bad_request(
                "order",
                "Invalid 'order': expected 'asc' or 'desc'.",
            ));
        }
    };
    Ok(ItemQuery {
        after: q.str("after").map(str::to_string),
        limit: q.u32_in("limit", 1, max_limit)?.unwrap_or(20),
        order,
    })
}

/// List a conversation's items, one page (`after` naming no item of the conversation
/// is a 400 with `param: "after"`).
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/items", tag = "items",
    params(("conversation_id" = String, Path),
        ("after" = Option<String>, Query, description = "An item id: list the items after it (unknown: 400)"),
        ("limit" = Option<u32>, Query, description = "1-100, default 20"),
        ("order" = Option<String>, Query, description = "asc or desc (default)"),
        ("include[]" = Option<Vec<String>>, Query, description = "Accepted and ignored")),
    responses((status = 200, body = doc::ItemList), (status = 400, body = doc::ErrorBody), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn list_items(
    State(st): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryParams,
) -> ApiResult<Response> {
    let query = item_query(&q, 100)?;
    let page = st.store.list_items(caller.user()?, &id, &query).await?;
    Ok(Json(wire::ItemPage {
        items: &page.data,
        has_more: page.has_more,
    })
    .into_response())
}

/// Retrieve one item of a conversation.
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/items/{item_id}", tag = "items",
    params(("conversation_id" = String, Path), ("item_id" = String, Path),
        ("include[]" = Option<Vec<String>>, Query, description = "Accepted and ignored")),
    responses((status = 200, body = doc::ItemObject), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn get_item(
    State(st): State<Shared>,
    caller: Caller,
    Path((id, item_id)): Path<(String, String)>,
    _query: QueryParams,
) -> ApiResult<Json<Value>> {
    let item = st.store.get_item(caller.user()?, &id, &item_id).await?;
    Ok(Json(wire::item(&item)))
}

/// Delete one item; answers the conversation (as OpenAI does).
#[utoipa::path(delete, path = "/v1/conversations/{conversation_id}/items/{item_id}", tag = "items",
    params(("conversation_id" = String, Path), ("item_id" = String, Path)),
    responses((status = 200, body = doc::ConversationObject), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn delete_item(
    State(st): State<Shared>,
    caller: Caller,
    Path((id, item_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    // Read the conversation first: once the delete commits, nothing may fail.
    let c = st.store.get_conversation(user, &id).await?;
    st.store.delete_item(user, &id, &item_id).await?;
    Ok(Json(wire::conversation(&c)))
}
