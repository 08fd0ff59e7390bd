//! Extension routes on the caller's profile: read it, set or remove a field by hand,
//! and its audit trail.

use axum::Json;
use axum::extract::{Path, State};
use convo_core::FieldContent;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams, missing, wrong_type};
use crate::openapi as doc;
use crate::state::Shared;
use crate::v1::DEFAULT_PERSONA;

use super::{list, tagged};

/// The caller's profile.
#[utoipa::path(get, path = "/v1/convo/profile", tag = "convo",
    responses((status = 200, body = doc::ProfileObject)))]
pub(crate) async fn get_profile(
    State(st): State<Shared>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let p = st.store.get_profile(user).await?;
    Ok(Json(json!({
        "object": "convo.profile",
        "user": user.as_str(),
        "fields": serde_json::to_value(&p.fields).map_err(|e| ApiError::internal(&e))?,
    })))
}

/// Sets a field by hand (`content`: a string or a list of strings); answers the
/// audit entries written.
#[utoipa::path(put, path = "/v1/convo/profile/fields/{field}", tag = "convo",
    params(("field" = String, Path)), request_body = doc::SetField,
    responses((status = 200, body = doc::ListObject), (status = 400, body = doc::ErrorBody)))]
pub(crate) async fn set_field(
    State(st): State<Shared>,
    caller: Caller,
    Path(field): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let content = match body.get("content") {
        None => return Err(missing("content")),
        Some(Value::String(s)) => FieldContent::Text(s.clone()),
        Some(Value::Array(a)) => FieldContent::List(
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| wrong_type("content", "a string or a list of strings"))?,
        ),
        Some(_) => return Err(wrong_type("content", "a string or a list of strings")),
    };
    let observations = body.opt_str("observations")?.unwrap_or_default();
    let entries = st
        .manager(user, DEFAULT_PERSONA)?
        .set_profile_field(user.as_str(), &field, content, &observations)
        .await?;
    let data = entries
        .iter()
        .map(|e| tagged("convo.profile.audit_entry", e))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(list(data)))
}

/// Removes a field by hand (404 if there is none).
#[utoipa::path(delete, path = "/v1/convo/profile/fields/{field}", tag = "convo",
    params(("field" = String, Path)),
    responses((status = 200, body = doc::DeletedField), (status = 404, body = doc::ErrorBody)))]
pub(crate) async fn remove_field(
    State(st): State<Shared>,
    caller: Caller,
    Path(field): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let removed = st
        .manager(user, DEFAULT_PERSONA)?
        .remove_profile_field(user.as_str(), &field)
        .await?;
    if !removed {
        return Err(ApiError::not_found(format!(
            "Profile field '{}' not found.",
            field.chars().take(64).collect::<String>()
        )));
    }
    Ok(Json(json!({
        "object": "convo.profile.field.deleted",
        "field": field,
        "deleted": true,
    })))
}

/// The profile's audit trail, newest first (optionally of one field).
#[utoipa::path(get, path = "/v1/convo/profile/history", tag = "convo",
    params(("field" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1-1000, default 50")),
    responses((status = 200, body = doc::ListObject), (status = 400, body = doc::ErrorBody)))]
pub(crate) async fn history(
    State(st): State<Shared>,
    caller: Caller,
    q: QueryParams,
) -> ApiResult<Json<Value>> {
    let user = caller.user()?;
    let limit = q.u32_in("limit", 1, 1000)?.unwrap_or(50);
    let entries = st
        .store
        .profile_history(user, q.str("field"), limit)
        .await?;
    let data = entries
        .iter()
        .map(|e| tagged("convo.profile.audit_entry", e))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(list(data)))
}
