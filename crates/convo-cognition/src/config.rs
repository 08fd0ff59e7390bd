//! The `[cognition]` section of convo's configuration.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Which provider answers cognition jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Built in and offline: names a conversation from its first user message and
    /// proposes no profile changes.
    #[default]
    Heuristic,
    /// Any OpenAI-compatible chat-completions server (OpenAI, Ollama, vLLM, llama.cpp
    /// server, LM Studio, OpenRouter, ...).
    #[serde(alias = "openai-compatible", alias = "ollama")]
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
    /// No cognition: jobs end done with nothing written (see [`crate::NoneProvider`]).
    None,
}

impl ProviderKind {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Heuristic => "heuristic",
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::None => "none",
        }
    }
}

/// Cognition settings, read from the config file (every key has a default).
///
/// ```toml
/// [cognition]
/// provider = "openai"                   # heuristic (default) | openai | anthropic | none
/// base_url = "http://127.0.0.1:11434/v1" # Ollama; llama.cpp server: http://127.0.0.1:8080/v1
/// model = "qwen2.5:1.5b"
/// # api_key_env = "OPENROUTER_API_KEY"  # the variable's name, never the key
/// timeout_secs = 120
/// concurrency = 1
/// ```
///
/// The API key itself is never part of the config: `api_key_env` names the environment
/// variable that holds it, read once when the provider is built. `Debug` shows header
/// names but not their values, which may be credentials.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct CognitionConfig {
    /// `heuristic` (default), `openai`, `anthropic` or `none`.
    pub provider: ProviderKind,
    /// The model to ask (default: `gpt-4o-mini` for openai, `claude-3-5-haiku-latest`
    /// for anthropic).
    pub model: Option<String>,
    /// The API root, e.g. `http://127.0.0.1:11434/v1` (default: the vendor's).
    pub base_url: Option<String>,
    /// The environment variable holding the API key; when set, it must exist. When
    /// not set: with no `base_url` the vendor's variable is required
    /// (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`); with a `base_url` (a local server) no
    /// key is sent, so a vendor key never reaches a third party by accident.
    pub api_key_env: Option<String>,
    /// Extra HTTP headers sent with every call (e.g. OpenRouter's `HTTP-Referer`).
    pub headers: BTreeMap<String, String>,
    /// Per-call timeout, seconds (default 30).
    pub timeout_secs: u64,
    /// Jobs run at once by one worker (default 2).
    pub concurrency: usize,
    /// Attempts a job gets before it fails (default 5).
    pub attempts: u32,
    /// How long a claimed job stays leased, seconds (default 60; raised to cover the
    /// slowest call, so a live worker never loses its lease).
    pub lease_secs: u64,
    /// Token budget of one prompt, transcript and profile included (default 3000).
    pub max_prompt_tokens: u32,
    /// Token limit of one reply (default 512; doubled once when a reply is cut).
    pub max_reply_tokens: u32,
    /// Sampling temperature sent to the model, if set.
    pub temperature: Option<f32>,
    /// First retry delay, seconds (default 2); doubles each attempt, with jitter.
    pub backoff_base_secs: f64,
    /// Longest retry delay, seconds (default 300), unless the provider asks for more
    /// with `Retry-After`.
    pub backoff_max_secs: f64,
    /// How often an idle worker looks for new jobs, milliseconds (default 500).
    pub poll_interval_ms: u64,
    /// Keep only profile operations grounded in what the user said about themselves
    /// (default true; see [`crate::grounding`]).
    pub ground_profile: bool,
}

impl Default for CognitionConfig {
    fn default() -> Self {
        CognitionConfig {
            provider: ProviderKind::Heuristic,
            model: None,
            base_url: None,
            api_key_env: None,
            headers: BTreeMap::new(),
            timeout_secs: 30,
            concurrency: 2,
            attempts: 5,
            lease_secs: 60,
            max_prompt_tokens: 3000,
            max_reply_tokens: 512,
            temperature: None,
            backoff_base_secs: 2.0,
            backoff_max_secs: 300.0,
            poll_interval_ms: 500,
            ground_profile: true,
        }
    }
}

impl CognitionConfig {
    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// The lease a worker takes: the configured one, or longer when a call (with its
    /// one retry for a cut reply) could outlast it.
    pub fn lease(&self) -> Duration {
        let slowest_call = self.timeout() * 2 + Duration::from_secs(10);
        Duration::from_secs(self.lease_secs).max(slowest_call)
    }

    /// The idle poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }
}

impl fmt::Debug for CognitionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may be credentials (Authorization, X-Api-Key): names only.
        let headers: BTreeMap<&str, &str> = self
            .headers
            .keys()
            .map(|k| (k.as_str(), "[redacted]"))
            .collect();
        f.debug_struct("CognitionConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("headers", &headers)
            .field("timeout_secs", &self.timeout_secs)
            .field("concurrency", &self.concurrency)
            .field("attempts", &self.attempts)
            .field("lease_secs", &self.lease_secs)
            .field("max_prompt_tokens", &self.max_prompt_tokens)
            .field("max_reply_tokens", &self.max_reply_tokens)
            .field("temperature", &self.temperature)
            .field("backoff_base_secs", &self.backoff_base_secs)
            .field("backoff_max_secs", &self.backoff_max_secs)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("ground_profile", &self.ground_profile)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_keys() {
        let c: CognitionConfig =
            serde_json::from_value(serde_json::json!({"provider": "openai", "concurrency": 4}))
                .unwrap();
        assert_eq!(c.provider, ProviderKind::Openai);
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.timeout_secs, 30);
        assert_eq!(c.attempts, 5);
        assert_eq!(c.max_prompt_tokens, 3000);
        let d: CognitionConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(d.provider, ProviderKind::Heuristic);
    }

    #[test]
    fn debug_hides_header_values() {
        let mut c = CognitionConfig::default();
        c.headers
            .insert("Authorization".into(), "Bearer sk-very-secret".into());
        let shown = format!("{c:?}");
        assert!(shown.contains("Authorization"));
        assert!(!shown.contains("sk-very-secret"), "{shown}");
    }

    #[test]
    fn lease_covers_the_slowest_call() {
        let c = CognitionConfig {
            timeout_secs: 120,
            lease_secs: 60,
            ..Default::default()
        };
        assert!(c.lease() >= Duration::from_secs(250));
    }
}
