//! Providers that need no model: the offline heuristic (the default) and none.

use async_trait::async_trait;
use serde_json::json;
use std::time::{Duration, Instant};

use super::{CognitionRequest, Provider, ProviderReply};
use crate::ProviderError;
use crate::reply::sanitize_name;

/// Offline and instant: names a conversation after its first user message (its first
/// sentence, as a title) and proposes no profile changes. Answers in the same JSON a
/// model would, so the rest of the pipeline is shared.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeuristicProvider;

impl HeuristicProvider {
    /// The heuristic.
    pub fn new() -> Self {
        HeuristicProvider
    }
}

#[async_trait]
impl Provider for HeuristicProvider {
    async fn complete(&self, req: &CognitionRequest) -> Result<ProviderReply, ProviderError> {
        let started = Instant::now();
        let name = req
            .first_user_message
            .as_deref()
            .and_then(|m| title_from(m).or_else(|| sanitize_name(m)))
            .unwrap_or_default();
        Ok(ProviderReply {
            text: json!({"name": name, "profile_operations": []}).to_string(),
            prompt_tokens: 0,
            completion_tokens: 0,
            latency: started.elapsed(),
        })
    }

    fn name(&self) -> &'static str {
        "heuristic"
    }

    fn reads_prompt(&self) -> bool {
        false
    }
}

/// No cognition. The worker does not call it: with this provider a job ends *done*
/// with nothing written and a note saying cognition is off, so the queue does not grow
/// without end and `convo jobs` shows why nothing happened. (To queue nothing at all,
/// the binary can also leave `cognition_on_save` empty.)
#[derive(Debug, Clone, Copy, Default)]
pub struct NoneProvider;

#[async_trait]
impl Provider for NoneProvider {
    async fn complete(&self, _req: &CognitionRequest) -> Result<ProviderReply, ProviderError> {
        Ok(ProviderReply {
            text: json!({"name": "", "profile_operations": []}).to_string(),
            prompt_tokens: 0,
            completion_tokens: 0,
            latency: Duration::ZERO,
        })
    }

    fn name(&self) -> &'static str {
        "none"
    }

    fn is_enabled(&self) -> bool {
        false
    }
}

/// Greetings that say nothing about the topic.
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "howdy",
    "greetings",
    "good morning",
    "good afternoon",
    "good evening",
    "yo",
    "hi there",
    "hello there",
    "hey there",
];

/// A title from a user's message: the first sentence that is not a bare greeting,
/// with a leading greeting dropped, capitalised, without a closing full stop, at most
/// 80 characters cut at a word.
pub fn title_from(message: &str) -> Option<String> {
    let text = message.trim();
    for sentence in sentences(text) {
        let s = strip_greeting(sentence.trim());
        let s = s.trim_end_matches(['.', ',', ';', ':', ' ']).trim();
        if s.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
            continue;
        }
        let mut chars = s.chars();
        let capitalised: String = match chars.next() {
            Some(c) => c.to_uppercase().chain(chars).collect(),
            None => continue,
        };
        if let Some(name) = sanitize_name(&capitalised) {
            return Some(name);
        }
    }
    None
}

/// Lines, then sentences (ending in `.`, `?` or `!` followed by a space), in order.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let bytes = line.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(b, b'.' | b'?' | b'!') && bytes.get(i + 1).is_some_and(|n| *n == b' ') {
                out.push(&line[start..=i]);
                start = i + 1;
            }
        }
        if start < line.len() {
            out.push(&line[start..]);
        }
    }
    out
}

fn strip_greeting(s: &str) -> &str {
    let lower = s.to_lowercase();
    let mut best: Option<usize> = None;
    for g in GREETINGS {
        let whole_word = lower
            .strip_prefix(g)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', ',', '!', '.', '?']));
        if whole_word {
            best = Some(best.map_or(g.len(), |b: usize| b.max(g.len())));
        }
    }
    match best {
        // Lower-casing can change byte lengths only outside ASCII; greetings are ASCII.
        Some(n) if s.is_char_boundary(n) => s[n..].trim_start_matches([' ', ',', '!', '.', '?']),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_from_first_messages() {
        assert_eq!(
            title_from("  what's the weather in Paris tomorrow? I'm flying there.").as_deref(),
            Some("What's the weather in Paris tomorrow?")
        );
        assert_eq!(
            title_from("Hi! Can you help me plan a garden.").as_deref(),
            Some("Can you help me plan a garden")
        );
        assert_eq!(
            title_from("hello, fix my Rust lifetimes\nfn main() {}").as_deref(),
            Some("Fix my Rust lifetimes")
        );
        assert_eq!(title_from("hi"), None);
        assert_eq!(title_from(""), None);
        let long = title_from(&"word ".repeat(50)).unwrap();
        assert!(long.chars().count() <= 80 && !long.ends_with(' '), "{long}");
    }

    #[tokio::test]
    async fn answers_in_microseconds() {
        let req = CognitionRequest {
            system: String::new(),
            user: String::new(),
            schema_name: "x".into(),
            schema: json!({}),
            max_tokens: 10,
            temperature: None,
            first_user_message: Some("Plan a trip to Lisbon".into()),
        };
        let reply = HeuristicProvider.complete(&req).await.unwrap();
        // Microseconds of work; the bound leaves room for a descheduled thread on a
        // loaded machine while still failing anything that waits on I/O or a model.
        assert!(
            reply.latency < Duration::from_millis(250),
            "{:?}",
            reply.latency
        );
        let v: serde_json::Value = serde_json::from_str(&reply.text).unwrap();
        assert_eq!(v["name"], "Plan a trip to Lisbon");
        assert_eq!(v["profile_operations"], json!([]));
    }
}
