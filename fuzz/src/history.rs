//! Item and content deserialisation and the history renderers: any JSON that
//! deserialises as items renders without panicking, to a prompt whose every `tool`
//! message answers a call of the assistant message before it.

use convo_core::history::{render_anthropic, render_chat, transcript};
use convo_core::{Content, HistoryOptions, Item};
use serde_json::Value;

/// Reads `data` as a list of items (and as content) and renders it every way.
pub fn check(data: &[u8]) {
    if let Ok(c) = serde_json::from_slice::<Content>(data) {
        let _ = c.plain_text();
        let _ = c.byte_len();
        if c.validate("content").is_ok() {
            let back: Content = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
            assert_eq!(back, c, "content does not round-trip");
        }
    }
    let Ok(items) = serde_json::from_slice::<Vec<Item>>(data) else {
        return;
    };
    let budget = data.len() as u32 % 200;
    for options in [
        HistoryOptions::default(),
        HistoryOptions {
            max_tokens: Some(budget),
        },
    ] {
        let h = render_chat(&items, options);
        // Checked on the JSON the API receives.
        let wire = serde_json::to_value(&h.messages).unwrap();
        check_tool_pairs(wire.as_array().unwrap());
        if options.max_tokens.is_none() {
            assert!(!h.truncated, "truncated without a budget");
        }
        let a = render_anthropic(&items, options);
        let _ = serde_json::to_string(&a).unwrap();
    }
    let _ = transcript(&items);
}

/// Every `tool` message answers a `tool_calls` entry of the nearest assistant
/// message before it (the API refuses a prompt otherwise).
fn check_tool_pairs(messages: &[Value]) {
    let mut open: Vec<String> = Vec::new();
    for m in messages {
        match m["role"].as_str() {
            Some("assistant") => {
                open = m["tool_calls"]
                    .as_array()
                    .map(|calls| {
                        calls
                            .iter()
                            .filter_map(|c| c["id"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                assert!(
                    open.iter().any(|c| c == id),
                    "tool message for {id:?} answers no preceding call: {messages:?}"
                );
            }
            _ => open.clear(),
        }
    }
}
