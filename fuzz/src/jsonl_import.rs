//! The JSON Lines importer (`convo import`): any line either fails to parse, fails
//! validation with a typed error, or yields a conversation whose ids validate; a line
//! that parses re-serialises to a line that parses to the same value.

use convo::exchange::ExportedConversation;
use convo_core::{Limits, ids};

/// Feeds every line of `data` through the importer's parse and validation.
pub fn check(data: &[u8]) {
    for line in data.split(|b| *b == b'\n') {
        let Ok(parsed) = serde_json::from_slice::<ExportedConversation>(line) else {
            continue;
        };
        let again = serde_json::to_string(&parsed).expect("an exported line serialises");
        let back: ExportedConversation =
            serde_json::from_str(&again).expect("what export writes, import reads");
        assert_eq!(back, parsed, "the line format round-trips");
        if let Ok(w) = parsed.prepare(&Limits::default()) {
            assert!(ids::validate("conversation", &w.conversation.id).is_ok());
            for item in &w.items {
                assert!(ids::validate("item", &item.id).is_ok());
            }
            assert!(w.conversation.updated_at >= w.conversation.created_at);
        }
    }
}
