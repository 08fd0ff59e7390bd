//! The model-reply parser: any text a model (or an attacker behind it) sends is read
//! without panicking, and what comes out is within the limits: a name is one
//! trimmed line of at most 80 characters, operations are already validated.

use convo_cognition::reply::{MAX_NAME_CHARS, parse_reply, sanitize_name};
use convo_core::profile::{MAX_OPS_PER_JOB, validate_ops};

fn check_name(n: &str) {
    assert!(!n.trim().is_empty(), "empty name {n:?}");
    assert_eq!(n.trim(), n, "untrimmed name {n:?}");
    assert!(n.chars().count() <= MAX_NAME_CHARS, "long name {n:?}");
    assert!(
        !n.chars().any(char::is_control),
        "control characters in {n:?}"
    );
}

/// Feeds `data` (as text, when it is UTF-8) to the parser and checks the result.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(n) = sanitize_name(text) {
        check_name(&n);
    }
    match parse_reply(text) {
        Ok(parsed) => {
            if let Some(n) = &parsed.name {
                check_name(n);
            }
            if let Some(Ok(ops)) = &parsed.operations {
                assert!(ops.len() <= MAX_OPS_PER_JOB, "{} operations", ops.len());
                assert!(validate_ops(ops).is_ok(), "unvalidated operations {ops:?}");
            }
        }
        Err(e) => assert_eq!(e.reply, text, "the failed reply is kept as it came"),
    }
}
