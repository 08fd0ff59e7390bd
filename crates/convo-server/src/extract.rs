//! Request extractors that fail with OpenAI's error body: a JSON object body and
//! query parameters (with `include[]` accepted and ignored).
//!
//! axum's own `Json` and `Query` reject with `text/plain` and 422/400; the SDK needs
//! JSON errors with `param`, so fields are read one by one here.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{Method, StatusCode, request::Parts};
use convo_core::Metadata;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// A request body that must be a JSON object (an empty body reads as `{}`).
/// DELETE bodies are never read: the SDK sends `Content-Type: application/json`
/// with nothing after it.
#[derive(Debug, Default)]
pub(crate) struct JsonBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        if req.method() == Method::DELETE || req.method() == Method::GET {
            return Ok(JsonBody::default());
        }
        JsonBody::parse(&body_bytes(req, state).await?)
    }
}

/// The raw body, or the error OpenAI answers when it cannot be read.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> ApiResult<Bytes> {
    Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(None)
        } else {
            ApiError::bad_body("We could not read the body of your request.")
        }
    })
}

/// The body of a create-items call. The common shape (only message items with text
/// content) is parsed straight into items; any other body goes through [`JsonBody`],
/// which accepts the same inputs and words every error. Why: appends are the hottest
/// write, and the `Value` tree cost more allocations than the rest of the request.
pub(crate) enum ItemsBody {
    /// Items parsed on the fast path: valid, 1 to 20 of them.
    Items(Vec<convo_core::NewItem>),
    /// Any other body.
    Json(JsonBody),
}

impl<S: Send + Sync> FromRequest<S> for ItemsBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> ApiResult<Self> {
        let bytes = body_bytes(req, state).await?;
        match crate::wire::plain_messages(&bytes) {
            Some(items) => Ok(ItemsBody::Items(items)),
            None => JsonBody::parse(&bytes).map(ItemsBody::Json),
        }
    }
}

impl JsonBody {
    /// A body that must be a JSON object (blank reads as `{}`).
    pub fn parse(bytes: &[u8]) -> ApiResult<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(JsonBody(map)),
            Ok(_) => Err(ApiError::bad_body(
                "The request body must be a JSON object.",
            )),
            Err(e) => Err(ApiError::bad_body(format!(
                "We could not parse the JSON body of your request: {e}."
            ))),
        }
    }

    /// The raw value of a field; JSON `null` reads as absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// True when the field is present, even as `null`.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// An optional string field.
    pub fn opt_str(&self, key: &str) -> ApiResult<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    /// A required string field.
    pub fn req_str(&self, key: &str) -> ApiResult<String> {
        self.opt_str(key)?.ok_or_else(|| missing(key))
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(key, "a boolean")),
        }
    }

    /// An optional metadata map (`null` reads as absent).
    pub fn opt_metadata(&self, key: &str) -> ApiResult<Option<Metadata>> {
        self.get(key).map(|v| metadata(key, v)).transpose()
    }
}

/// A metadata object: string keys to string values (limits are checked by core).
pub(crate) fn metadata(param: &str, v: &Value) -> ApiResult<Metadata> {
    let Value::Object(map) = v else {
        return Err(wrong_type(param, "an object of string values"));
    };
    let mut out = Metadata::new();
    for (k, v) in map {
        match v {
            Value::String(s) => {
                out.insert(k.clone(), s.clone());
            }
            _ => {
                return Err(ApiError::bad_request(
                    param,
                    format!(
                        "Invalid type for '{param}.{}': expected a string.",
                        k.chars().take(64).collect::<String>()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// 400 for a field of the wrong JSON type.
pub(crate) fn wrong_type(param: &str, expected: &str) -> ApiError {
    ApiError::bad_request(
        param,
        format!("Invalid type for '{param}': expected {expected}."),
    )
}

/// 400 for a missing required field.
pub(crate) fn missing(param: &str) -> ApiError {
    ApiError::bad_request(param, format!("Missing required parameter: '{param}'."))
}

/// Query parameters, last value wins; `include`/`include[]` are accepted and ignored
/// (we store none of the data they ask for).
#[derive(Debug, Default)]
pub(crate) struct QueryParams(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let mut out = HashMap::new();
        for pair in parts.uri.query().unwrap_or("").split('&') {
            if pair.is_empty() {
                continue;
            }
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode(k)
                .ok_or_else(|| ApiError::bad_body("The query string is not valid UTF-8."))?;
            if k == "include" || k == "include[]" {
                continue;
            }
            let v =
                decode(v).ok_or_else(|| ApiError::bad_request(k.clone(), "Not valid UTF-8."))?;
            out.insert(k, v);
        }
        Ok(QueryParams(out))
    }
}

impl QueryParams {
    /// A string parameter; empty reads as absent.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// An integer parameter within `min..=max`.
    pub fn u32_in(&self, key: &str, min: u32, max: u32) -> ApiResult<Option<u32>> {
        let Some(s) = self.str(key) else {
            return Ok(None);
        };
        match s.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::bad_request(
                key,
                format!("Invalid '{key}': expected an integer from {min} to {max}."),
            )),
        }
    }
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_query_components() {
        assert_eq!(decode("include%5B%5D").unwrap(), "include[]");
        assert_eq!(decode("a+b%20c").unwrap(), "a b c");
        assert_eq!(decode("100%").unwrap(), "100%");
        assert_eq!(decode("%e2%82%ac").unwrap(), "€");
        assert!(decode("%ff").is_none());
    }
}
