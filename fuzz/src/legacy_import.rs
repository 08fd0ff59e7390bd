//! The SCOUT importer (`convo import-scout`): a legacy persona database built from the
//! fuzz input (the seed's five tables, every cell of any type, the free-text
//! timestamps, ids spliced into text, dangling links) is read and converted without a
//! panic, and everything the converter emits validates.

use convo::scout;
use convo_core::{Limits, ids};
use rusqlite::Connection;
use rusqlite::types::Value;

const SCHEMA: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, persona_name TEXT UNIQUE);
CREATE TABLE conversations (id INTEGER PRIMARY KEY, user TEXT, conversation_id TEXT, chat_log TEXT,
    timestamp TEXT, persona TEXT, name TEXT NULL, date_modified TEXT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY, user TEXT, conversation_id TEXT, role TEXT,
    content TEXT, timestamp TEXT);
CREATE TABLE function_calls (id INTEGER PRIMARY KEY, user TEXT, conversation_id TEXT,
    message_id INTEGER NULL, function_name TEXT, arguments TEXT, timestamp TEXT);
CREATE TABLE responses (id INTEGER PRIMARY KEY, user TEXT, conversation_id TEXT,
    function_call_id INTEGER, response_data TEXT, timestamp TEXT);
";

/// Cells cut from the input: a type byte, then bytes up to the next 0xFF.
fn cells(data: &[u8]) -> Vec<Value> {
    data.split(|b| *b == 0xFF)
        .map(|chunk| match chunk.split_first() {
            None => Value::Null,
            Some((t, rest)) => {
                let text = String::from_utf8_lossy(rest).into_owned();
                match t % 6 {
                    0 => Value::Null,
                    1 => Value::Integer(text.trim().parse().unwrap_or(rest.len() as i64)),
                    2 => Value::Real(text.trim().parse().unwrap_or(0.5)),
                    3 => Value::Blob(rest.to_vec()),
                    // Few users and conversation ids, so rows link up.
                    4 => Value::Text(format!(
                        "u{}_{}",
                        rest.len() % 3,
                        rest.first().unwrap_or(&0) % 4
                    )),
                    _ => Value::Text(text),
                }
            }
        })
        .collect()
}

/// Builds the legacy file, reads and converts it.
pub fn check(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("Helper.db");
    {
        let conn = Connection::open(&path).expect("a legacy file");
        conn.execute_batch(SCHEMA).expect("the legacy schema");
        let cells = cells(data);
        let mut next = cells.iter().cycle();
        let mut take = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|_| next.next().cloned().unwrap_or(Value::Null))
                .collect()
        };
        let rows = (cells.len() / 4).clamp(1, 40);
        let tables: [(&str, usize); 5] = [
            ("INSERT OR IGNORE INTO users (persona_name) VALUES (?1)", 1),
            (
                "INSERT INTO conversations (user, conversation_id, chat_log, timestamp, persona, name, date_modified) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                7,
            ),
            (
                "INSERT INTO messages (user, conversation_id, role, content, timestamp) VALUES (?1, ?2, ?3, ?4, ?5)",
                5,
            ),
            (
                "INSERT INTO function_calls (user, conversation_id, message_id, function_name, arguments, timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                6,
            ),
            (
                "INSERT INTO responses (user, conversation_id, function_call_id, response_data, timestamp) VALUES (?1, ?2, ?3, ?4, ?5)",
                5,
            ),
        ];
        if cells.len() > 1 {
            for i in 0..rows {
                let (sql, n) = tables[i % tables.len()];
                let values = take(n);
                let _ = conn.execute(sql, rusqlite::params_from_iter(values));
            }
        }
    }
    let Ok(db) = scout::read(&path) else {
        return;
    };
    scout::convert(db, &Limits::default(), |w| {
        assert!(ids::validate("conversation", &w.conversation.id).is_ok());
        for item in &w.items {
            assert!(ids::validate("item", &item.id).is_ok());
        }
    });
}
