//! `/v1/convo/...`: what the OpenAI API lacks, in the same style (JSON bodies,
//! OpenAI's error body, the same auth). Conversations here carry convo's own fields
//! (`updated_at`, `user`, `name_set_by_person`); items carry `created_at`, `position`
//! and `tokens`. Times are Unix seconds on conversations and items (as on `/v1`), RFC
//! 3339 strings on jobs, profiles and search hits (the library's own serialisation).

pub(crate) mod conversations;
pub(crate) mod jobs;
pub(crate) mod profile;

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// `v` serialised, with `"object": object` first.
pub(crate) fn tagged(object: &str, v: &impl Serialize) -> ApiResult<Value> {
    let inner = serde_json::to_value(v).map_err(|e| ApiError::internal(&e))?;
    let mut out = json!({ "object": object });
    if let (Value::Object(o), Value::Object(i)) = (&mut out, inner) {
        o.extend(i);
    }
    Ok(out)
}

/// A list object.
pub(crate) fn list(data: Vec<Value>) -> Value {
    json!({"object": "list", "data": data})
}
