//! Where a model is reached: the [`Provider`] trait, what goes in and out of it, and
//! [`build_provider`] which picks one from the config.

mod anthropic;
mod heuristic;
mod http;
mod openai;

use async_trait::async_trait;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use anthropic::{AnthropicProvider, AnthropicSettings};
pub use heuristic::{HeuristicProvider, NoneProvider};
pub use openai::{OpenAiProvider, OpenAiSettings, StructuredMode};

use crate::{CognitionConfig, CognitionError, ProviderError, ProviderKind};

/// One model call: the prompts, the JSON schema the answer should follow, and a token
/// limit for the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CognitionRequest {
    /// Instructions.
    pub system: String,
    /// The task with its data (transcript, profile).
    pub user: String,
    /// A short name for the schema (`conversation_cognition`).
    pub schema_name: String,
    /// The JSON schema of the wanted answer.
    pub schema: Value,
    /// Most tokens the answer may take.
    pub max_tokens: u32,
    /// Sampling temperature, if set.
    pub temperature: Option<f32>,
    /// The conversation's first user message, for providers that do not read prompts
    /// (the offline heuristic).
    pub first_user_message: Option<String>,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderReply {
    /// The answer's text (for a tool-call answer, the tool input as JSON).
    pub text: String,
    /// Prompt tokens the provider counted (0 if it did not say).
    pub prompt_tokens: u32,
    /// Answer tokens the provider counted (0 if it did not say).
    pub completion_tokens: u32,
    /// Time from request to full answer, all tries included.
    pub latency: Duration,
}

impl ProviderReply {
    /// Tokens used, prompt and answer.
    pub fn tokens(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// An LLM (or a stand-in for one) that answers a [`CognitionRequest`].
///
/// One required method; implementations enforce their own per-call timeout and step
/// down between structured-output modes as their server needs.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// Asks the model.
    async fn complete(&self, request: &CognitionRequest) -> Result<ProviderReply, ProviderError>;

    /// A short name for logs and metrics (`openai`, `anthropic`, ...).
    fn name(&self) -> &'static str {
        "provider"
    }

    /// False when cognition is switched off: the worker then ends jobs without asking.
    fn is_enabled(&self) -> bool {
        true
    }

    /// False for providers that read only [`CognitionRequest::first_user_message`]:
    /// the worker then skips building (and tokenizing) the prompt.
    fn reads_prompt(&self) -> bool {
        true
    }
}

/// An API key: shown as `[redacted]` by `Debug` and `Display`, so it cannot reach a
/// log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the key in `text` (a server may echo it back).
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_string();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The API key for a provider, from the environment variable the config names. A
/// variable named in the config must be set. Without one, the vendor's usual variable
/// (`default_var`) is read only when the vendor's own URL is used, so a key meant for
/// OpenAI is never sent to a third-party `base_url`.
fn api_key(config: &CognitionConfig, default_var: &str) -> Result<Option<Secret>, CognitionError> {
    let (var, required) = match (&config.api_key_env, &config.base_url) {
        (Some(var), _) => (var.as_str(), true),
        (None, None) => (default_var, true),
        (None, Some(_)) => return Ok(None),
    };
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
        _ if required => Err(CognitionError::Config(format!(
            "the API key variable {var} is not set (cognition.api_key_env names it)"
        ))),
        _ => Ok(None),
    }
}

/// Builds the provider the config names. Reads the API key from the environment
/// variable the config names (never from the config itself).
pub fn build_provider(config: &CognitionConfig) -> Result<Arc<dyn Provider>, CognitionError> {
    Ok(match config.provider {
        ProviderKind::Heuristic => Arc::new(HeuristicProvider::new()),
        ProviderKind::None => Arc::new(NoneProvider),
        ProviderKind::Openai => {
            let settings = OpenAiSettings {
                base_url: config
                    .base_url
                    .clone()
                    .unwrap_or_else(|| "https://api.openai.com/v1".into()),
                model: config.model.clone().unwrap_or_else(|| "gpt-4o-mini".into()),
                api_key: api_key(config, "OPENAI_API_KEY")?,
                headers: config.headers.clone(),
                timeout: config.timeout(),
            };
            Arc::new(OpenAiProvider::new(settings)?)
        }
        ProviderKind::Anthropic => {
            let settings = AnthropicSettings {
                base_url: config
                    .base_url
                    .clone()
                    .unwrap_or_else(|| "https://api.anthropic.com/v1".into()),
                model: config
                    .model
                    .clone()
                    .unwrap_or_else(|| "claude-3-5-haiku-latest".into()),
                api_key: api_key(config, "ANTHROPIC_API_KEY")?,
                headers: config.headers.clone(),
                timeout: config.timeout(),
            };
            Arc::new(AnthropicProvider::new(settings)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-abcdef123456");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.scrub("bad key sk-abcdef123456!"), "bad key [redacted]!");
    }

    #[test]
    fn a_named_key_variable_must_exist() {
        let config = CognitionConfig {
            provider: ProviderKind::Openai,
            api_key_env: Some("CONVO_TEST_SURELY_UNSET_KEY_VAR".into()),
            ..Default::default()
        };
        let err = build_provider(&config).unwrap_err().to_string();
        assert!(err.contains("CONVO_TEST_SURELY_UNSET_KEY_VAR"), "{err}");
    }

    #[test]
    fn a_local_server_needs_no_key() {
        let config = CognitionConfig {
            provider: ProviderKind::Openai,
            base_url: Some("http://127.0.0.1:11434/v1".into()),
            model: Some("qwen2.5:1.5b".into()),
            ..Default::default()
        };
        let p = build_provider(&config).unwrap();
        assert_eq!(p.name(), "openai");
        assert!(format!("{p:?}").contains("key: None"), "{p:?}");
    }

    #[test]
    fn the_default_is_the_offline_heuristic() {
        let p = build_provider(&CognitionConfig::default()).unwrap();
        assert_eq!(p.name(), "heuristic");
        let none = build_provider(&CognitionConfig {
            provider: ProviderKind::None,
            ..Default::default()
        })
        .unwrap();
        assert!(!none.is_enabled());
    }
}
