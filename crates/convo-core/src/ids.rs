//! Time-ordered, prefixed ids (`conv_…`, `msg_…`, `fc_…`).

use rand::RngCore;
use std::sync::Mutex;

use crate::time::Timestamp;

/// Id prefix of conversations.
pub const CONVERSATION: &str = "conv_";
/// Id prefix of message items.
pub const MESSAGE: &str = "msg_";
/// Id prefix of function call items.
pub const FUNCTION_CALL: &str = "fc_";
/// Id prefix of function call output items.
pub const FUNCTION_CALL_OUTPUT: &str = "fco_";
/// Id prefix of background jobs.
pub const JOB: &str = "job_";
/// Id prefix of API keys (the key's public id, not the secret).
pub const API_KEY: &str = "key_";

/// Longest id convo accepts from a caller.
pub const MAX_ID_LEN: usize = 256;

static LAST: Mutex<(i64, u128)> = Mutex::new((0, 0));

/// A new id: `prefix` + 12 hex digits of Unix milliseconds + 20 hex digits that
/// increase within a millisecond in this process (random start), so ids sort by
/// creation time and never collide.
pub fn new_id(prefix: &str) -> String {
    let now = Timestamp::now().unix_ms();
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let tail = if now <= last.0 {
        last.1.wrapping_add(1) & ((1u128 << 80) - 1)
    } else {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        // Leave headroom so increments within one millisecond do not wrap.
        u128::from_le_bytes(bytes) & ((1u128 << 79) - 1)
    };
    let ms = now.max(last.0);
    *last = (ms, tail);
    format!("{prefix}{ms:012x}{tail:020x}")
}

/// Checks an id supplied by a caller: 1-256 characters, no control characters,
/// no whitespace at either end, no `/` or `\` (ids end up in URL paths and file names).
pub fn validate(what: &'static str, id: &str) -> crate::Result<()> {
    let reason = if id.is_empty() {
        Some("must not be empty")
    } else if id.len() > MAX_ID_LEN {
        Some("must be at most 256 bytes")
    } else if id.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else if id.contains('/') || id.contains('\\') {
        Some("must not contain / or \\")
    } else if id.trim() != id {
        Some("must not start or end with white space")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(crate::Error::InvalidId {
            what,
            id: id.chars().take(80).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_sorted() {
        let ids: Vec<String> = (0..1000).map(|_| new_id(MESSAGE)).collect();
        assert!(ids.iter().all(|i| i.starts_with("msg_") && i.len() == 36));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids, "ids must be strictly increasing");
    }

    #[test]
    fn caller_ids_are_checked() {
        assert!(validate("conversation", "alice_1700000000_9f1c").is_ok());
        assert!(validate("conversation", "").is_err());
        assert!(validate("conversation", "../etc").is_err());
        assert!(validate("conversation", "a\0b").is_err());
        assert!(validate("conversation", &"x".repeat(257)).is_err());
    }
}
