//! Deterministic, realistic data: message lengths spread like real chats (mostly
//! short, some kilobytes), tool calls with JSON arguments.

use convo_core::{
    Content, Conversation, Item, ItemBody, Metadata, PersonaName, Role, Timestamp, UserId,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const WORDS: &[&str] = &[
    "the",
    "weather",
    "paris",
    "train",
    "ticket",
    "code",
    "rust",
    "function",
    "error",
    "hotel",
    "booking",
    "please",
    "thanks",
    "recipe",
    "garden",
    "meeting",
    "tomorrow",
    "budget",
    "report",
    "python",
    "database",
    "query",
    "music",
    "guitar",
    "travel",
    "flight",
    "cheap",
    "morning",
    "summary",
    "email",
    "draft",
    "invoice",
    "doctor",
    "appointment",
    "running",
    "marathon",
    "coffee",
];

/// A seeded generator of chat content.
pub struct Gen {
    rng: StdRng,
}

impl Gen {
    /// Same seed, same data.
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A message text: 70% 20-200 bytes, 25% up to 1 KB, 5% 1-4 KB.
    pub fn text(&mut self) -> String {
        let p: f64 = self.rng.random();
        let len = if p < 0.70 {
            self.rng.random_range(20..200)
        } else if p < 0.95 {
            self.rng.random_range(200..1000)
        } else {
            self.rng.random_range(1000..4000)
        };
        let mut s = String::with_capacity(len + 16);
        while s.len() < len {
            s.push_str(WORDS[self.rng.random_range(0..WORDS.len())]);
            s.push(' ');
        }
        s
    }

    /// JSON arguments of a tool call.
    pub fn arguments(&mut self) -> String {
        let city = WORDS[self.rng.random_range(0..WORDS.len())];
        format!(
            r#"{{"query":"{city}","limit":{},"filters":{{"lang":"en","recent":true}}}}"#,
            self.rng.random_range(1..50)
        )
    }

    /// `n` items of a conversation: user/assistant turns, a tool call every few turns.
    pub fn items(&mut self, conversation_id: &str, n: usize, t0: i64) -> Vec<Item> {
        let mut out = Vec::with_capacity(n);
        let mut i = 0;
        while out.len() < n {
            let at = Timestamp::from_unix_ms(t0 + out.len() as i64);
            let id = |kind: &str, k: usize| format!("{kind}_{conversation_id}_{k}");
            let body = if i % 10 == 7 && out.len() + 2 <= n {
                let call_id = format!("call_{conversation_id}_{i}");
                out.push(item(
                    id("fc", out.len()),
                    conversation_id,
                    at,
                    ItemBody::FunctionCall {
                        call_id: call_id.clone(),
                        name: "search".into(),
                        arguments: self.arguments(),
                        message_id: None,
                    },
                ));
                ItemBody::FunctionCallOutput {
                    call_id,
                    output: Content::Text(self.text()),
                }
            } else {
                let role = if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                };
                ItemBody::Message {
                    role,
                    content: Content::Text(self.text()),
                }
            };
            let k = out.len();
            out.push(item(id("it", k), conversation_id, at, body));
            i += 1;
        }
        out.truncate(n);
        out
    }
}

fn item(id: String, conversation_id: &str, at: Timestamp, body: ItemBody) -> Item {
    let tokens = (body.plain_text().len() / 4) as u32 + 1;
    Item {
        id,
        conversation_id: conversation_id.to_string(),
        position: 0,
        created_at: at,
        tokens,
        body,
    }
}

/// A conversation record for imports.
pub fn conversation(id: &str, user: &str, persona: &str, at: i64) -> Conversation {
    Conversation {
        id: id.to_string(),
        user: UserId::new(user).expect("valid user"),
        persona: PersonaName::new(persona).expect("valid persona"),
        name: format!("Conversation {id}"),
        name_set_by_person: false,
        created_at: Timestamp::from_unix_ms(at),
        updated_at: Timestamp::from_unix_ms(at),
        metadata: Metadata::new(),
        chat_log: None,
    }
}
