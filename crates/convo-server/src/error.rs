//! `ApiError`: the one error type of every handler, rendered as OpenAI's error body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use convo_core::Error;
use serde_json::json;

/// An error answered to an HTTP client: a status and OpenAI's error body
/// `{"error": {"message", "type", "param", "code"}}`.
///
/// Internal failures keep their cause out of the body (it is logged once, here) so
/// that paths, SQL and other internals never reach a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human sentence.
    pub message: String,
    /// OpenAI's `type` (`invalid_request_error`, `server_error`, ...).
    pub kind: &'static str,
    /// The offending parameter, if one is to blame.
    pub param: Option<String>,
    /// A machine-readable code, if any.
    pub code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
        }
    }

    /// 400 blaming `param`.
    pub fn bad_request(param: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        e.param = Some(param.into());
        e
    }

    /// 400 with no single parameter to blame.
    pub fn bad_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
    }

    /// 404 for a conversation the caller cannot see (whether or not it exists).
    pub fn conversation_not_found(id: &str) -> Self {
        Self::not_found(format!("Conversation with id '{}' not found.", clip(id)))
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message);
        e.code = Some("invalid_api_key");
        e
    }

    /// 403 (only for admin-only routes; another user's data is 404, never 403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_error", message)
    }

    /// 413.
    pub fn too_large(limit: Option<usize>) -> Self {
        let msg = match limit {
            Some(l) => format!("The request body is larger than the limit of {l} bytes."),
            None => "The request body is larger than the configured limit.".to_string(),
        };
        let mut e = Self::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", msg);
        e.code = Some("request_too_large");
        e
    }

    /// 500 with a generic message; `cause` is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server had an error while processing your request.",
        )
    }

    /// Any status with OpenAI's body (used to dress bare responses of middleware).
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        Self::new(status, kind, message)
    }

    /// Sets `code`.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

/// Caller-supplied ids echoed in messages are cut short.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match &e {
            Error::InvalidPersona { .. } => ApiError::bad_request("persona", e.to_string()),
            Error::InvalidUser { .. } => ApiError::bad_request("user", e.to_string()),
            Error::InvalidId { what, .. } => {
                ApiError::bad_request(format!("{what}_id"), e.to_string())
            }
            Error::InvalidRole(_) => ApiError::bad_request("role", e.to_string()),
            Error::Invalid { field, message } => {
                ApiError::bad_request(*field, format!("Invalid '{field}': {message}"))
            }
            Error::TooLarge { field, .. } => {
                ApiError::bad_request(*field, e.to_string()).with_code("string_above_max_length")
            }
            Error::ConversationNotFound(id) => ApiError::conversation_not_found(id),
            Error::ItemNotFound(id) => {
                ApiError::not_found(format!("Item with id '{}' not found.", clip(id)))
            }
            Error::JobNotFound(id) => {
                ApiError::not_found(format!("Job with id '{}' not found.", clip(id)))
            }
            // Never 409: the SDK retries it, which would repeat the write.
            Error::ConversationExists(_) => {
                ApiError::bad_request("id", e.to_string()).with_code("conversation_exists")
            }
            Error::UnknownCall(_) | Error::DuplicateCall(_) => {
                ApiError::bad_request("call_id", e.to_string())
            }
            Error::InvalidCursor(_) => ApiError::bad_request(
                "after",
                "The 'after' cursor names no item of this conversation.",
            ),
            Error::Closed => {
                tracing::warn!("request after the store closed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "The server is shutting down.",
                )
            }
            _ => ApiError::internal(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.body())).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// A handler's result.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_never_409_or_5xx() {
        for e in [
            Error::ConversationExists("conv_1".into()),
            Error::DuplicateCall("c".into()),
            Error::UnknownCall("c".into()),
            Error::InvalidCursor("x".into()),
            Error::invalid("metadata", "too many"),
        ] {
            let a = ApiError::from(e);
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
        }
        let body = ApiError::not_found("x").body();
        assert!(body["error"]["param"].is_null() && body["error"]["code"].is_null());
        assert!(body["error"].as_object().unwrap().contains_key("param"));
    }
}
