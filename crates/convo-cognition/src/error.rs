//! Errors of providers and of the cognition crate.

use std::time::Duration;

/// Why a model call failed. [`is_retryable`](Self::is_retryable) tells the worker
/// whether to try again later or give up now.
///
/// Messages never carry an API key: providers scrub their key from server bodies
/// before building one of these, and URLs are left out of transport errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// HTTP 429: the provider asks us to slow down.
    #[error("rate limited by the provider (HTTP 429){}", retry_hint(.retry_after))]
    RateLimited {
        /// What its `Retry-After` (or `retry-after-ms`) header asked for.
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx (or 408): the provider failed; it may work later.
    #[error("provider error (HTTP {status}): {message}")]
    Server {
        /// The status code.
        status: u16,
        /// The body, shortened.
        message: String,
    },
    /// No answer within the per-call timeout.
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed (refused, reset, DNS).
    #[error("could not reach the provider: {0}")]
    Connection(String),
    /// The answer was cut by the token limit even after a retry with more room.
    #[error("the reply was cut at {max_tokens} tokens (finish reason \"length\")")]
    Truncated {
        /// The limit of the last try.
        max_tokens: u32,
        /// What came before the cut.
        reply: String,
    },
    /// A success status with a body that is not the provider's wire format.
    #[error("the provider's response could not be read: {message}")]
    Malformed {
        /// What was wrong.
        message: String,
        /// The body, shortened, if any.
        body: Option<String>,
    },
    /// HTTP 4xx other than 429 (and 408): the request itself is wrong (bad key, unknown
    /// model, refused parameters); trying again will not help.
    #[error("the provider refused the request (HTTP {status}): {message}")]
    Rejected {
        /// The status code.
        status: u16,
        /// The body, shortened.
        message: String,
    },
    /// The provider is misconfigured (no model, bad URL, a missing key variable).
    #[error("bad provider configuration: {0}")]
    Config(String),
}

fn retry_hint(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!("; retry after {:.1} s", d.as_secs_f64()),
        None => String::new(),
    }
}

impl ProviderError {
    /// True when the same request may succeed later (429, 5xx, timeouts, connection
    /// failures, cut or unreadable replies); false for refused requests and bad config.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            ProviderError::Rejected { .. } | ProviderError::Config(_)
        )
    }

    /// The delay the provider asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// The model's text or the provider's body, when one came, kept for diagnosis.
    pub fn reply(&self) -> Option<&str> {
        match self {
            ProviderError::Truncated { reply, .. } => Some(reply),
            ProviderError::Malformed { body, .. } => body.as_deref(),
            _ => None,
        }
    }
}

/// Errors of the cognition crate outside a model call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CognitionError {
    /// The configuration cannot build a provider.
    #[error("bad cognition configuration: {0}")]
    Config(String),
    /// The provider cannot be built.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] convo_core::Error),
}
