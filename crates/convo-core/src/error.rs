//! The one error type of convo's library crates.

use std::fmt;

/// Everything that can go wrong in convo's library, named where callers branch on it.
///
/// Validation variants mean the store was left unchanged. `Storage` boxes backend
/// failures (I/O, a corrupt file, a lost connection) that callers only report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A persona name failed validation.
    #[error("invalid persona name {name:?}: {reason}")]
    InvalidPersona {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A user id failed validation.
    #[error("invalid user id: {reason}")]
    InvalidUser {
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An id (conversation, item, job) failed validation.
    #[error("invalid {what} id {id:?}: {reason}")]
    InvalidId {
        /// Which kind of id.
        what: &'static str,
        /// The rejected id.
        id: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A message role that convo does not know.
    #[error("invalid role {0:?}: expected one of system, developer, user, assistant, tool")]
    InvalidRole(String),
    /// Any other field that failed validation; `field` names it (for HTTP `param`).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field, e.g. `metadata`, `items`, `limit`.
        field: &'static str,
        /// A human sentence saying what was wrong.
        message: String,
    },
    /// Content larger than the configured limit.
    #[error("{field} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Which field was too large.
        field: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// No conversation with this id belongs to this user.
    #[error("conversation {0:?} not found")]
    ConversationNotFound(String),
    /// A conversation with this id already exists.
    #[error("conversation {0:?} already exists")]
    ConversationExists(String),
    /// No item with this id is in this conversation.
    #[error("item {0:?} not found in this conversation")]
    ItemNotFound(String),
    /// A function call output answers a call id the conversation does not have.
    #[error("no function call with call id {0:?} in this conversation")]
    UnknownCall(String),
    /// A function call reuses a call id already in the conversation.
    #[error("call id {0:?} is already used by a function call in this conversation")]
    DuplicateCall(String),
    /// A pagination cursor (`after`) that names nothing or cannot be decoded.
    #[error("invalid cursor {0:?}: it names no item or conversation of this listing")]
    InvalidCursor(String),
    /// No job with this id.
    #[error("job {0:?} not found")]
    JobNotFound(String),
    /// The database was written by a newer convo.
    #[error(
        "the database schema is version {found}, newer than this convo supports ({supported}); upgrade convo"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// A backend failure (I/O, corruption, connection). Not caused by the input.
    #[error("storage error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps a backend error.
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Storage(Box::new(e))
    }

    /// Builds a validation error on `field`.
    pub fn invalid(field: &'static str, message: impl fmt::Display) -> Self {
        Error::Invalid {
            field,
            message: message.to_string(),
        }
    }

    /// True for errors caused by the caller's input (validation, not found, conflicts),
    /// false for backend failures.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::Storage(_) | Error::Closed | Error::SchemaTooNew { .. }
        )
    }

    /// True when the error means "that does not exist (for you)".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::ConversationNotFound(_) | Error::ItemNotFound(_) | Error::JobNotFound(_)
        )
    }
}

/// convo's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
