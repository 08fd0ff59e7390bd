//! OpenAI-compatible chat completions: OpenAI, Ollama, vLLM, llama.cpp server, LM
//! Studio, OpenRouter and the like.
//!
//! These servers differ in which structured-output modes they accept, so the provider
//! tries the strongest first (`json_schema`), steps down when a server refuses it
//! (`json_object` with a schema, then plain text), and remembers what worked.

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use super::http::{self, Answer};
use super::{CognitionRequest, Provider, ProviderReply, Secret};
use crate::ProviderError;

/// How the provider asks for structured output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructuredMode {
    /// `response_format: {type: json_schema, json_schema: {name, schema, strict}}`
    /// (OpenAI, Ollama, vLLM).
    JsonSchema,
    /// `response_format: {type: json_object, schema}` (llama-cpp-python's grammar).
    JsonObject,
    /// No response format; the prompt alone asks for JSON.
    Text,
}

impl StructuredMode {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => StructuredMode::JsonSchema,
            1 => StructuredMode::JsonObject,
            _ => StructuredMode::Text,
        }
    }

    fn as_u8(self) -> u8 {
        self as u8
    }

    fn weaker(self) -> Option<Self> {
        match self {
            StructuredMode::JsonSchema => Some(StructuredMode::JsonObject),
            StructuredMode::JsonObject => Some(StructuredMode::Text),
            StructuredMode::Text => None,
        }
    }
}

/// Settings of an [`OpenAiProvider`].
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// API root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:18080/v1`.
    pub base_url: String,
    /// Model name.
    pub model: String,
    /// Bearer key, if the server needs one.
    pub api_key: Option<Secret>,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Per-call timeout.
    pub timeout: Duration,
}

/// A chat-completions provider.
pub struct OpenAiProvider {
    url: String,
    model: String,
    key: Option<Secret>,
    timeout: Duration,
    client: reqwest::Client,
    mode: AtomicU8,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("url", &http::redact_userinfo(&self.url))
            .field("model", &self.model)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("mode", &self.mode())
            .finish()
    }
}

impl OpenAiProvider {
    /// A provider for these settings (no call is made yet).
    pub fn new(settings: OpenAiSettings) -> Result<Self, ProviderError> {
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
        if let Some(key) = &settings.api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                .map_err(|_| ProviderError::Config("the API key is not a valid header".into()))?;
            v.set_sensitive(true);
            fixed.insert(AUTHORIZATION, v);
        }
        Ok(OpenAiProvider {
            url: format!("{base}/chat/completions"),
            model: settings.model,
            client: http::client(&settings.headers, fixed, settings.timeout)?,
            key: settings.api_key,
            timeout: settings.timeout,
            mode: AtomicU8::new(StructuredMode::JsonSchema.as_u8()),
        })
    }

    /// The structured-output mode the next call starts with (the last that worked).
    pub fn mode(&self) -> StructuredMode {
        StructuredMode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    fn body(&self, req: &CognitionRequest, mode: StructuredMode, max_tokens: u32) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.user},
            ],
            "max_tokens": max_tokens,
            "stream": false,
        });
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t);
        }
        match mode {
            StructuredMode::JsonSchema => {
                body["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": {"name": req.schema_name, "schema": req.schema, "strict": true},
                });
            }
            StructuredMode::JsonObject => {
                body["response_format"] = json!({"type": "json_object", "schema": req.schema});
            }
            StructuredMode::Text => {}
        }
        body
    }

    /// One call in one mode.
    async fn call(
        &self,
        req: &CognitionRequest,
        mode: StructuredMode,
        max_tokens: u32,
    ) -> Result<Result<Completion, Answer>, ProviderError> {
        let answer = http::post_json(
            &self.client,
            &self.url,
            &self.body(req, mode, max_tokens),
            self.timeout,
        )
        .await?;
        if !(200..300).contains(&answer.status) {
            return Ok(Err(answer));
        }
        Ok(Ok(self.read(&answer.body)?))
    }

    fn read(&self, body: &str) -> Result<Completion, ProviderError> {
        let malformed = |message: &str| ProviderError::Malformed {
            message: message.to_string(),
            body: Some(http::scrubbed(body, self.key.as_ref())),
        };
        let v: Value = serde_json::from_str(body).map_err(|_| malformed("not JSON"))?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            // Some servers answer 200 with an error object.
            return Err(ProviderError::Server {
                status: 200,
                message: http::scrubbed(&err.to_string(), self.key.as_ref()),
            });
        }
        let choice = v
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| malformed("no choices"))?;
        let message = choice.get("message");
        let text = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .or_else(|| {
                message
                    .and_then(|m| m.get("refusal"))
                    .and_then(Value::as_str)
            })
            .unwrap_or("")
            .to_string();
        let usage = v.get("usage");
        let count = |k: &str| {
            usage
                .and_then(|u| u.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32
        };
        Ok(Completion {
            text,
            cut: choice.get("finish_reason").and_then(Value::as_str) == Some("length"),
            prompt_tokens: count("prompt_tokens"),
            completion_tokens: count("completion_tokens"),
        })
    }
}

struct Completion {
    text: String,
    cut: bool,
    prompt_tokens: u32,
    completion_tokens: u32,
}

#[async_trait]
impl Provider for OpenAiProvider {
    async fn complete(&self, req: &CognitionRequest) -> Result<ProviderReply, ProviderError> {
        let started = Instant::now();
        let mut mode = self.mode();
        let mut max_tokens = req.max_tokens.max(16);
        let mut grown = false;
        let (mut prompt_tokens, mut completion_tokens) = (0u32, 0u32);
        loop {
            match self.call(req, mode, max_tokens).await? {
                Err(answer) => {
                    let step_down = mode
                        .weaker()
                        .filter(|_| http::refuses_response_format(&answer));
                    if let Some(weaker) = step_down {
                        tracing::info!(
                            from = ?mode, to = ?weaker, status = answer.status,
                            "the server refused the response format; stepping down"
                        );
                        mode = weaker;
                        continue;
                    }
                    return Err(http::status_error(&answer, self.key.as_ref()));
                }
                Ok(c) => {
                    // Remember the mode that worked, for every later call.
                    self.mode.store(mode.as_u8(), Ordering::Relaxed);
                    prompt_tokens = prompt_tokens.saturating_add(c.prompt_tokens);
                    completion_tokens = completion_tokens.saturating_add(c.completion_tokens);
                    if c.cut {
                        if !grown {
                            // A cut reply is never half-parsed: ask once more with room.
                            grown = true;
                            max_tokens = max_tokens.saturating_mul(2);
                            continue;
                        }
                        return Err(ProviderError::Truncated {
                            max_tokens,
                            reply: c.text,
                        });
                    }
                    return Ok(ProviderReply {
                        text: c.text,
                        prompt_tokens,
                        completion_tokens,
                        latency: started.elapsed(),
                    });
                }
            }
        }
    }

    fn name(&self) -> &'static str {
        "openai"
    }
}
