//! The Anthropic Messages API. It has no response format, so the answer is asked for
//! as the input of one forced tool whose `input_schema` is the wanted schema.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use super::http;
use super::{CognitionRequest, Provider, ProviderReply, Secret};
use crate::ProviderError;

/// Settings of an [`AnthropicProvider`].
#[derive(Debug, Clone)]
pub struct AnthropicSettings {
    /// API root, e.g. `https://api.anthropic.com/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// The `x-api-key`.
    pub api_key: Option<Secret>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Per-call timeout.
    pub timeout: Duration,
}

/// A Messages API provider.
pub struct AnthropicProvider {
    url: String,
    model: String,
    key: Option<Secret>,
    timeout: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("url", &http::redact_userinfo(&self.url))
            .field("model", &self.model)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The version of the Messages API this speaks.
const API_VERSION: &str = "2023-06-01";

impl AnthropicProvider {
    /// A provider for these settings (no call is made yet).
    pub fn new(settings: AnthropicSettings) -> Result<Self, ProviderError> {
        if settings.model.trim().is_empty() {
            return Err(ProviderError::Config("no model given".into()));
        }
        let base = settings.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ProviderError::Config(format!(
                "base URL {base:?} must start with http:// or https://"
            )));
        }
        let mut fixed = HeaderMap::new();
        fixed.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(API_VERSION),
        );
        if let Some(key) = &settings.api_key {
            let mut v = HeaderValue::from_str(key.expose())
                .map_err(|_| ProviderError::Config("the API key is not a valid header".into()))?;
            v.set_sensitive(true);
            fixed.insert(HeaderName::from_static("x-api-key"), v);
        }
        Ok(AnthropicProvider {
            url: format!("{base}/messages"),
            model: settings.model,
            client: http::client(&settings.headers, fixed, settings.timeout)?,
            key: settings.api_key,
            timeout: settings.timeout,
        })
    }

    fn body(&self, req: &CognitionRequest, max_tokens: u32) -> Value {
        let mut body = json!({
            "model": self.model,
            "max_tokens": max_tokens,
            "system": req.system,
            "messages": [{"role": "user", "content": req.user}],
            "tools": [{
                "name": req.schema_name,
                "description": "Record the conversation's name and the profile operations.",
                "input_schema": req.schema,
            }],
            "tool_choice": {"type": "tool", "name": req.schema_name},
        });
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        body
    }

    fn read(&self, body: &str) -> Result<(String, bool, u32, u32), ProviderError> {
        let malformed = |message: &str| ProviderError::Malformed {
            message: message.to_string(),
            body: Some(http::scrubbed(body, self.key.as_ref())),
        };
        let v: Value = serde_json::from_str(body).map_err(|_| malformed("not JSON"))?;
        let blocks = v
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed("no content"))?;
        // The forced tool's input is the answer; text blocks are a fallback.
        let text = blocks
            .iter()
            .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
            .and_then(|b| b.get("input"))
            .map(Value::to_string)
            .unwrap_or_else(|| {
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        let cut = v.get("stop_reason").and_then(Value::as_str) == Some("max_tokens");
        let usage = v.get("usage");
        let count = |k: &str| {
            usage
                .and_then(|u| u.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32
        };
        Ok((text, cut, count("input_tokens"), count("output_tokens")))
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    async fn complete(&self, req: &CognitionRequest) -> Result<ProviderReply, ProviderError> {
        let started = Instant::now();
        let mut max_tokens = req.max_tokens.max(16);
        let (mut input, mut output) = (0u32, 0u32);
        for last in [false, true] {
            let answer = http::post_json(
                &self.client,
                &self.url,
                &self.body(req, max_tokens),
                self.timeout,
            )
            .await?;
            if !(200..300).contains(&answer.status) {
                return Err(http::status_error(&answer, self.key.as_ref()));
            }
            let (text, cut, i, o) = self.read(&answer.body)?;
            input = input.saturating_add(i);
            output = output.saturating_add(o);
            if !cut {
                return Ok(ProviderReply {
                    text,
                    prompt_tokens: input,
                    completion_tokens: output,
                    latency: started.elapsed(),
                });
            }
            if last {
                return Err(ProviderError::Truncated {
                    max_tokens,
                    reply: text,
                });
            }
            // A cut reply is never half-parsed: ask once more with room.
            max_tokens = max_tokens.saturating_mul(2);
        }
        unreachable!("the loop returns on its last pass")
    }

    fn name(&self) -> &'static str {
        "anthropic"
    }
}
