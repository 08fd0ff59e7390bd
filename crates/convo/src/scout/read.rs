//! Reading a legacy persona database, read only, whatever its state.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

/// A legacy `conversations` row.
#[derive(Debug, Clone)]
pub struct LegacyConversation {
    /// Row id (later rows of the same conversation id win).
    pub rowid: i64,
    /// `user`.
    pub user: Option<String>,
    /// `conversation_id`.
    pub conversation_id: Option<String>,
    /// `chat_log`.
    pub chat_log: Option<String>,
    /// `timestamp`, raw.
    pub timestamp: Value,
    /// `persona`.
    pub persona: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `date_modified`, raw.
    pub date_modified: Value,
}

/// A legacy `messages` row.
#[derive(Debug, Clone)]
pub struct LegacyMessage {
    /// `id`.
    pub id: i64,
    /// `role`.
    pub role: Option<String>,
    /// `content` (ids still in it).
    pub content: Option<String>,
    /// `timestamp`, raw.
    pub timestamp: Value,
}

/// A legacy `function_calls` row.
#[derive(Debug, Clone)]
pub struct LegacyCall {
    /// `id`.
    pub id: i64,
    /// `message_id`, the issuing message.
    pub message_id: Option<i64>,
    /// `function_name`.
    pub function_name: Option<String>,
    /// `arguments` (with a trailing id line).
    pub arguments: Option<String>,
    /// `timestamp`, raw.
    pub timestamp: Value,
}

/// A legacy `responses` row.
#[derive(Debug, Clone)]
pub struct LegacyResponse {
    /// `id`.
    pub id: i64,
    /// `function_call_id`: an integer, or the literal text `[function_call_id]`.
    pub function_call_id: Value,
    /// `response_data`.
    pub response_data: Option<String>,
    /// `timestamp`, raw.
    pub timestamp: Value,
}

/// Rows of one conversation, found by `(user, conversation_id)`.
#[derive(Debug, Clone, Default)]
pub struct LegacyRows {
    /// Messages.
    pub messages: Vec<LegacyMessage>,
    /// Function calls.
    pub calls: Vec<LegacyCall>,
    /// Responses.
    pub responses: Vec<LegacyResponse>,
}

/// Everything read from one legacy file.
#[derive(Debug)]
pub struct LegacyDb {
    /// The persona when a row has none: the `users` table's, else the file name's.
    pub persona: String,
    /// `conversations` rows, in row order.
    pub conversations: Vec<LegacyConversation>,
    /// Message, call and response rows by `(user, conversation_id)`.
    pub rows: HashMap<(String, String), LegacyRows>,
    /// Rows that could not be attributed to any conversation, with why.
    pub unreadable_rows: Vec<String>,
}

impl LegacyDb {
    /// Conversations to convert: ids with a row or with messages, calls or responses.
    pub fn conversation_count(&self) -> usize {
        let mut keys: HashSet<(Option<&String>, Option<&String>)> = self
            .conversations
            .iter()
            .map(|c| (c.user.as_ref(), c.conversation_id.as_ref()))
            .collect();
        keys.extend(self.rows.keys().map(|(u, c)| (Some(u), Some(c))));
        keys.len()
    }
}

/// Reads a legacy persona database (opened read only; nothing is written to it).
pub fn read(path: &Path) -> Result<LegacyDb> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("could not open {} read only", path.display()))?;
    let tables = table_names(&conn)
        .with_context(|| format!("{} is not a SQLite database", path.display()))?;
    if !tables.contains("conversations") && !tables.contains("messages") {
        anyhow::bail!(
            "{} has no conversations or messages table; is it a SCOUT persona database?",
            path.display()
        );
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let persona = if tables.contains("users") {
        conn.query_row(
            "SELECT persona_name FROM users WHERE persona_name IS NOT NULL AND persona_name != '' ORDER BY id LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap_or(stem)
    } else {
        stem
    };
    let mut db = LegacyDb {
        persona,
        conversations: Vec::new(),
        rows: HashMap::new(),
        unreadable_rows: Vec::new(),
    };
    let ctx = |t: &str| format!("could not read the {t} table of {}", path.display());
    if tables.contains("conversations") {
        let cols = [
            "user",
            "conversation_id",
            "chat_log",
            "timestamp",
            "persona",
            "name",
            "date_modified",
        ];
        for r in select(&conn, "conversations", &cols).with_context(|| ctx("conversations"))? {
            db.conversations.push(LegacyConversation {
                rowid: int(&r[0]).unwrap_or(0),
                user: text(&r[1]),
                conversation_id: text(&r[2]),
                chat_log: text(&r[3]),
                timestamp: r[4].clone(),
                persona: text(&r[5]),
                name: text(&r[6]),
                date_modified: r[7].clone(),
            });
        }
    }
    if tables.contains("messages") {
        let cols = ["user", "conversation_id", "role", "content", "timestamp"];
        for r in select(&conn, "messages", &cols).with_context(|| ctx("messages"))? {
            let m = LegacyMessage {
                id: int(&r[0]).unwrap_or(0),
                role: text(&r[3]),
                content: text(&r[4]),
                timestamp: r[5].clone(),
            };
            match key(&r[1], &r[2]) {
                Some(k) => db.rows.entry(k).or_default().messages.push(m),
                None => db
                    .unreadable_rows
                    .push(format!("message {}: no user or conversation id", m.id)),
            }
        }
    }
    if tables.contains("function_calls") {
        let cols = [
            "user",
            "conversation_id",
            "message_id",
            "function_name",
            "arguments",
            "timestamp",
        ];
        for r in select(&conn, "function_calls", &cols).with_context(|| ctx("function_calls"))? {
            let c = LegacyCall {
                id: int(&r[0]).unwrap_or(0),
                message_id: int(&r[3]),
                function_name: text(&r[4]),
                arguments: text(&r[5]),
                timestamp: r[6].clone(),
            };
            match key(&r[1], &r[2]) {
                Some(k) => db.rows.entry(k).or_default().calls.push(c),
                None => db.unreadable_rows.push(format!(
                    "function call {}: no user or conversation id",
                    c.id
                )),
            }
        }
    }
    if tables.contains("responses") {
        let cols = [
            "user",
            "conversation_id",
            "function_call_id",
            "response_data",
            "timestamp",
        ];
        for r in select(&conn, "responses", &cols).with_context(|| ctx("responses"))? {
            let resp = LegacyResponse {
                id: int(&r[0]).unwrap_or(0),
                function_call_id: r[3].clone(),
                response_data: text(&r[4]),
                timestamp: r[5].clone(),
            };
            match key(&r[1], &r[2]) {
                Some(k) => db.rows.entry(k).or_default().responses.push(resp),
                None => db
                    .unreadable_rows
                    .push(format!("response {}: no user or conversation id", resp.id)),
            }
        }
    }
    Ok(db)
}

fn table_names(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<HashSet<_>>>()?;
    Ok(names)
}

/// `SELECT rowid-or-id, cols...` where a missing column reads as NULL (older files
/// lack `name` and `date_modified`).
fn select(conn: &Connection, table: &str, cols: &[&str]) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut info = conn.prepare(&format!("PRAGMA table_info(\"{table}\")"))?;
    let present: HashSet<String> = info
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<_>>()?;
    let id = if present.contains("id") {
        "\"id\""
    } else {
        "rowid"
    };
    let list: Vec<String> = std::iter::once(id.to_string())
        .chain(cols.iter().map(|c| {
            if present.contains(*c) {
                format!("\"{c}\"")
            } else {
                "NULL".to_string()
            }
        }))
        .collect();
    let sql = format!("SELECT {} FROM \"{table}\" ORDER BY {id}", list.join(", "));
    let mut stmt = conn.prepare(&sql)?;
    let n = list.len();
    let rows = stmt
        .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())?
        .collect::<rusqlite::Result<Vec<Vec<Value>>>>()?;
    Ok(rows)
}

fn key(user: &Value, conversation: &Value) -> Option<(String, String)> {
    Some((text(user)?, text(conversation)?))
}

/// A cell as text (numbers as their decimal form); `None` for NULL or empty.
pub fn text(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::Integer(n) => n.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    };
    (!s.is_empty()).then_some(s)
}

/// A cell as an integer, when it is one (or text holding one).
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(n) => Some(*n),
        Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
        Value::Text(s) => s.trim().parse().ok(),
        _ => None,
    }
}
