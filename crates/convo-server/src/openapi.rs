//! The OpenAPI document (`/openapi.json`): every route, with the shapes it takes and
//! answers. The structs here describe the wire for the document only; handlers build
//! their JSON directly.
#![allow(dead_code)] // documentation-only types: never constructed

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// OpenAI's error body.
#[derive(ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    message: String,
    #[schema(rename = "type")]
    kind: String,
    param: Option<String>,
    code: Option<String>,
}

/// A conversation as on `/v1` (OpenAI's fields plus `persona` and `name`).
#[derive(ToSchema)]
pub(crate) struct ConversationObject {
    id: String,
    #[schema(example = "conversation")]
    object: String,
    /// Unix seconds.
    created_at: i64,
    metadata: BTreeMap<String, String>,
    /// convo extension.
    persona: String,
    /// convo extension: the title (empty until named).
    name: String,
}

/// A conversation with convo's own fields.
#[derive(ToSchema, serde::Serialize)]
pub(crate) struct ConvoConversation {
    id: String,
    object: String,
    created_at: i64,
    updated_at: i64,
    metadata: BTreeMap<String, String>,
    persona: String,
    name: String,
    user: String,
    name_set_by_person: bool,
    has_chat_log: bool,
}

/// What renaming answers: the conversation (`name`) or the queued job (`auto`).
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub(crate) enum RenameAnswer {
    /// `{"name": ...}`: the renamed conversation.
    Conversation(ConvoConversation),
    /// `{"auto": true}`: the queued naming job.
    Job(JobObject),
}

/// A page of the caller's conversations.
#[derive(ToSchema)]
pub(crate) struct ConversationPage {
    object: String,
    data: Vec<ConvoConversation>,
    has_more: bool,
    next_cursor: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct DeletedConversation {
    id: String,
    #[schema(example = "conversation.deleted")]
    object: String,
    deleted: bool,
}

/// An item: `message` (role, content parts), `function_call` (call_id, name,
/// arguments) or `function_call_output` (call_id, output). No other fields.
#[derive(ToSchema)]
pub(crate) struct ItemObject {
    #[schema(rename = "type")]
    kind: String,
    id: String,
    status: String,
    role: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    content: Option<Value>,
    call_id: Option<String>,
    name: Option<String>,
    arguments: Option<String>,
    #[schema(value_type = Option<Object>)]
    output: Option<Value>,
}

#[derive(ToSchema)]
pub(crate) struct ItemList {
    object: String,
    data: Vec<ItemObject>,
    first_id: Option<String>,
    last_id: Option<String>,
    has_more: bool,
}

#[derive(ToSchema)]
pub(crate) struct CreateConversation {
    /// At most 20.
    #[schema(value_type = Option<Vec<Object>>)]
    items: Option<Value>,
    /// At most 16 pairs; keys up to 64 characters, values up to 512.
    metadata: Option<BTreeMap<String, String>>,
    /// convo extension (default `default`).
    persona: Option<String>,
    /// convo extension.
    name: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct UpdateConversation {
    /// Replaces the whole map; `null` clears it.
    metadata: Option<BTreeMap<String, String>>,
    /// convo extension: rename.
    name: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct CreateItems {
    /// 1 to 20 items, stored all or nothing.
    #[schema(value_type = Vec<Object>)]
    items: Value,
}

#[derive(ToSchema)]
pub(crate) struct Rename {
    name: Option<String>,
    /// Queue naming by the model instead.
    auto: Option<bool>,
}

#[derive(ToSchema)]
pub(crate) struct SaveChatLog {
    chat_log: String,
    /// Default `default`.
    persona: Option<String>,
    name: Option<String>,
    /// Unix seconds or RFC 3339.
    #[schema(value_type = Option<Object>)]
    timestamp: Option<Value>,
}

#[derive(ToSchema)]
pub(crate) struct SaveResult {
    object: String,
    created: bool,
    jobs_queued: u32,
    conversation: ConvoConversation,
}

#[derive(ToSchema)]
pub(crate) struct ChatLog {
    object: String,
    conversation_id: String,
    chat_log: String,
}

/// `format=openai`: `messages`, `tokens`, `truncated`; `format=anthropic`: `system`
/// and `messages`.
#[derive(ToSchema)]
pub(crate) struct HistoryObject {
    object: String,
    format: String,
    #[schema(value_type = Vec<Object>)]
    messages: Value,
    tokens: Option<u32>,
    truncated: Option<bool>,
    system: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct ListObject {
    object: String,
    #[schema(value_type = Vec<Object>)]
    data: Value,
}

#[derive(ToSchema)]
pub(crate) struct ProfileObject {
    object: String,
    user: String,
    #[schema(value_type = Vec<Object>)]
    fields: Value,
}

#[derive(ToSchema)]
pub(crate) struct SetField {
    /// A string or a list of strings.
    #[schema(value_type = Object)]
    content: Value,
    observations: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct DeletedField {
    object: String,
    field: String,
    deleted: bool,
}

#[derive(ToSchema, serde::Serialize)]
pub(crate) struct JobObject {
    object: String,
    id: String,
    kind: String,
    user: String,
    conversation_id: String,
    state: String,
    attempts: u32,
    max_attempts: u32,
    last_error: Option<String>,
}

#[derive(ToSchema)]
pub(crate) struct JobCountsObject {
    object: String,
    pending: u64,
    running: u64,
    done: u64,
    failed: u64,
}

#[derive(ToSchema)]
pub(crate) struct ErasureObject {
    object: String,
    user: String,
    conversations: u64,
    items: u64,
    profile_fields: u64,
    audit_entries: u64,
    jobs: u64,
    api_keys: u64,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "convo", description = "Conversations for LLM applications: the OpenAI Conversations API under /v1, convo's extensions under /v1/convo. Authorization: Bearer <key>; an admin key names the user it acts for in X-Convo-User."),
    paths(
        crate::v1::create_conversation,
        crate::v1::get_conversation,
        crate::v1::update_conversation,
        crate::v1::delete_conversation,
        crate::v1::create_items,
        crate::v1::list_items,
        crate::v1::get_item,
        crate::v1::delete_item,
        crate::ext::conversations::list_conversations,
        crate::ext::conversations::get_conversation,
        crate::ext::conversations::list_items,
        crate::ext::conversations::rename,
        crate::ext::conversations::save_chat_log,
        crate::ext::conversations::get_chat_log,
        crate::ext::conversations::history,
        crate::ext::conversations::search,
        crate::ext::profile::get_profile,
        crate::ext::profile::set_field,
        crate::ext::profile::remove_field,
        crate::ext::profile::history,
        crate::ext::jobs::list_jobs,
        crate::ext::jobs::job_counts,
        crate::ext::jobs::get_job,
        crate::ext::jobs::erase_user,
        crate::ops::healthz,
        crate::ops::noop,
        crate::ops::metrics,
        crate::ops::openapi_json,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "conversations", description = "OpenAI Conversations API"),
        (name = "items", description = "OpenAI Conversations API: items"),
        (name = "convo", description = "convo's extensions"),
        (name = "operations", description = "Health, metrics and this document (no auth)"),
    )
)]
struct ApiDoc;

/// The OpenAPI document of every route (also served at `/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
