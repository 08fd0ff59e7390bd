//! Shared helpers of the integration tests: wire-format replies and a store.
#![allow(dead_code)]

use convo_cognition::CognitionConfig;
use convo_core::{ConversationManager, ManagerConfig, Role, Store};
use convo_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use std::sync::Arc;

/// An OpenAI chat-completions response carrying `text`.
pub fn openai_reply(text: &str, finish_reason: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "stand-in",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    })
}

/// An Anthropic messages response whose forced tool input is `input`.
pub fn anthropic_reply(input: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "stand-in",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "conversation_cognition", "input": input}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 90, "output_tokens": 30}
    })
}

/// A structured answer.
pub fn structured(name: &str, ops: Value) -> String {
    json!({"name": name, "profile_operations": ops}).to_string()
}

/// A fresh SQLite store in a temp dir (keep the dir alive).
pub async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("convo.db"), Default::default())
        .await
        .unwrap();
    (dir, Arc::new(store))
}

/// A manager for alice whose jobs get `attempts` attempts.
pub fn manager(store: &Arc<dyn Store>, attempts: u32) -> ConversationManager {
    ConversationManager::with_config(
        store.clone(),
        "alice",
        "Helper",
        ManagerConfig {
            job_attempts: attempts,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Appends `turns` (user, assistant alternating) and saves the conversation, which
/// queues a name and a profile job. Returns the conversation id.
pub async fn saved_conversation(m: &ConversationManager, turns: &[&str]) -> String {
    let id = m.init_conversation_id();
    for (i, t) in turns.iter().enumerate() {
        let role = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        m.add_message("alice", &id, role, *t, None).await.unwrap();
    }
    let log = turns.join("\n");
    m.insert_conversation("alice", &id, &log, None, "Helper")
        .await
        .unwrap();
    id
}

/// A config for tests: fast backoff and polling.
pub fn config(provider: convo_cognition::ProviderKind) -> CognitionConfig {
    CognitionConfig {
        provider,
        timeout_secs: 2,
        backoff_base_secs: 0.01,
        backoff_max_secs: 0.05,
        poll_interval_ms: 20,
        ..Default::default()
    }
}
