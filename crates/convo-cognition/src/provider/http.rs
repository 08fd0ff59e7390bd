//! HTTP plumbing shared by the remote providers: one client per provider, status
//! classification, `Retry-After`, and keeping keys out of messages.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

use super::Secret;
use crate::ProviderError;

/// Longest server body kept in an error message.
const MAX_BODY_IN_ERROR: usize = 500;

/// A client with the extra headers and the per-call timeout.
pub(crate) fn client(
    headers: &BTreeMap<String, String>,
    fixed: HeaderMap,
    timeout: Duration,
) -> Result<reqwest::Client, ProviderError> {
    let mut map = fixed;
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ProviderError::Config(format!("invalid header name {k:?}")))?;
        // The value may be a credential: never echo it.
        let mut value = HeaderValue::from_str(v)
            .map_err(|_| ProviderError::Config(format!("invalid value for header {k:?}")))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    reqwest::Client::builder()
        .default_headers(map)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .build()
        .map_err(|e| ProviderError::Config(format!("cannot build the HTTP client: {e}")))
}

/// A complete HTTP answer.
pub(crate) struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

/// POSTs JSON and reads the whole answer, mapping transport failures.
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    timeout: Duration,
) -> Result<Answer, ProviderError> {
    let resp = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| transport(e, timeout))?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = resp.text().await.map_err(|e| transport(e, timeout))?;
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// A transport error, without the URL (it may carry credentials).
fn transport(e: reqwest::Error, timeout: Duration) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout(timeout);
    }
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ProviderError::Connection(msg)
}

/// The error an unsuccessful status means.
pub(crate) fn status_error(answer: &Answer, key: Option<&Secret>) -> ProviderError {
    let message = scrubbed(&answer.body, key);
    match answer.status {
        429 => ProviderError::RateLimited {
            retry_after: answer.retry_after,
        },
        408 | 500..=599 => ProviderError::Server {
            status: answer.status,
            message,
        },
        status => ProviderError::Rejected { status, message },
    }
}

/// The body with the key removed, shortened for a message.
pub(crate) fn scrubbed(body: &str, key: Option<&Secret>) -> String {
    let body = match key {
        Some(k) => k.scrub(body),
        None => body.to_string(),
    };
    shorten(body.trim(), MAX_BODY_IN_ERROR)
}

/// The URL with any `user:password@` part hidden, for `Debug` and logs.
pub(crate) fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}[redacted]@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// At most `max` characters, marked when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// `retry-after-ms` (OpenAI) or `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let ms = get("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0);
    if let Some(ms) = ms {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    parse_retry_after(get("retry-after")?, chrono::Utc::now())
}

/// Parses a `Retry-After` value: delta seconds, or an HTTP date (then the time left
/// until it, zero if past).
pub(crate) fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = (at.with_timezone(&chrono::Utc) - now)
        .num_milliseconds()
        .max(0);
    Some(Duration::from_millis(ms as u64))
}

/// True when an error body says the server refused the `response_format` we sent
/// (llama.cpp answers 500 with a validation error; others 400 or 422).
pub(crate) fn refuses_response_format(answer: &Answer) -> bool {
    if !matches!(answer.status, 400 | 422 | 500) {
        return false;
    }
    let b = answer.body.to_ascii_lowercase();
    b.contains("response_format") || b.contains("json_schema") || b.contains("json_object")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn urls_hide_credentials() {
        assert_eq!(
            redact_userinfo("https://bob:hunter2@llm.example/v1/chat/completions"),
            "https://[redacted]@llm.example/v1/chat/completions"
        );
        assert_eq!(
            redact_userinfo("http://127.0.0.1:8080/v1"),
            "http://127.0.0.1:8080/v1"
        );
        assert_eq!(redact_userinfo("http://h/v1/a@b"), "http://h/v1/a@b");
    }

    #[test]
    fn statuses_map_to_retryable_or_permanent() {
        let a = |status, body: &str| Answer {
            status,
            retry_after: None,
            body: body.into(),
        };
        assert!(status_error(&a(429, ""), None).is_retryable());
        assert!(status_error(&a(503, ""), None).is_retryable());
        assert!(!status_error(&a(401, ""), None).is_retryable());
        assert!(!status_error(&a(404, ""), None).is_retryable());
        let key = Secret::new("sk-secret-123");
        let e = status_error(
            &a(401, "Incorrect API key provided: sk-secret-123"),
            Some(&key),
        );
        assert!(!e.to_string().contains("sk-secret-123"), "{e}");
    }
}
