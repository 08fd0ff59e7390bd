//! Reading what a model answered, leniently: model output is untrusted and often
//! untidy.
//!
//! First the structured answer (`{"name": ..., "profile_operations": [...]}`), also
//! inside code fences or prose; otherwise the seed's format: the name in double quotes
//! on the first line, then a JSON array of operations. Both tolerate code fences, extra
//! prose, single quotes, trailing commas and trailing text.

use convo_core::ProfileOp;
use convo_core::profile::validate_ops;
use serde_json::{Map, Value};

/// Longest conversation name, in characters.
pub const MAX_NAME_CHARS: usize = 80;

/// What a reply says.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReply {
    /// The sanitised name, if the reply gave a usable one.
    pub name: Option<String>,
    /// The profile operations: `None` when the reply has none at all; `Some(Err(why))`
    /// when they were rejected as a whole (an unknown operation, a limit); otherwise
    /// the validated operations that change something (`None` operations dropped).
    pub operations: Option<Result<Vec<ProfileOp>, String>>,
}

/// A reply that could not be understood; the text is kept for diagnosis.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the model's reply could not be understood: {reason}")]
pub struct ReplyError {
    /// Why.
    pub reason: String,
    /// The reply as it came.
    pub reply: String,
}

/// Longest reply parsed, in bytes; longer ones fail the attempt. Replies are asked
/// for with `max_reply_tokens` (512 by default, about 2 KB).
pub const MAX_REPLY_BYTES: usize = 16 * 1024;

/// Reads a reply: structured JSON first, then the seed's format.
pub fn parse_reply(text: &str) -> Result<ParsedReply, ReplyError> {
    let fail = |reason: &str| ReplyError {
        reason: reason.to_string(),
        reply: text.chars().take(MAX_REPLY_BYTES).collect(),
    };
    if text.trim().is_empty() {
        return Err(fail("the reply is empty"));
    }
    // The lenient search for JSON inside prose is superlinear on pathological input
    // (10,000 `{` took seconds); a real reply is a few KB.
    if text.len() > MAX_REPLY_BYTES {
        return Err(fail("the reply is longer than 16 KiB"));
    }
    let blocks = candidates(text);
    for block in &blocks {
        if let Some(obj) = find_value(block, '{', |v| {
            v.as_object()
                .is_some_and(|o| NAME_KEYS.iter().chain(OPS_KEYS).any(|k| o.contains_key(*k)))
        }) {
            return Ok(from_object(
                obj.as_object().expect("checked to be an object"),
            ));
        }
    }
    // The seed's name line sits outside any fence, so the whole text goes first.
    for block in blocks.iter().rev() {
        if let Some(parsed) = seed_format(block) {
            return Ok(parsed);
        }
    }
    Err(fail(
        "neither the JSON answer nor a quoted name with an array of operations was found",
    ))
}

const NAME_KEYS: &[&str] = &["name", "title", "conversation_name", "conversationName"];
const OPS_KEYS: &[&str] = &[
    "profile_operations",
    "profileOperations",
    "operations",
    "ops",
];

fn from_object(obj: &Map<String, Value>) -> ParsedReply {
    let name = NAME_KEYS
        .iter()
        .find_map(|k| obj.get(*k))
        .and_then(Value::as_str)
        .and_then(sanitize_name);
    let operations = OPS_KEYS.iter().find_map(|k| obj.get(*k)).map(|v| match v {
        Value::Array(a) => operations(a),
        Value::Null => Ok(vec![]),
        _ => Err("profile_operations is not a list".to_string()),
    });
    ParsedReply { name, operations }
}

/// The seed's format: a quoted name on the first line, then an array.
fn seed_format(text: &str) -> Option<ParsedReply> {
    let mut name = None;
    let mut rest = text;
    // The first line that starts with a quote, before the array begins (a line of
    // prose like "Here is my answer:" may come first).
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let t = line.trim();
        if t.starts_with(['[', '{', '`']) {
            break;
        }
        if let Some(n) = quoted(t) {
            name = sanitize_name(n);
            rest = &text[offset..];
            break;
        }
    }
    let ops = find_value(rest, '[', |v| {
        v.as_array().is_some_and(|a| a.iter().all(Value::is_object))
    })
    .map(|v| operations(v.as_array().expect("checked to be an array")));
    if name.is_none() && ops.is_none() {
        return None;
    }
    Some(ParsedReply {
        name,
        operations: ops,
    })
}

/// The text between the quotes (`"` or `“”`) a line starts with (after an optional
/// `Name:`/`Title:` label or markdown emphasis).
fn quoted(line: &str) -> Option<&str> {
    let mut line = line.trim_start_matches(['*', '#', ' ']);
    for label in ["name:", "title:"] {
        if line.len() >= label.len()
            && line.is_char_boundary(label.len())
            && line[..label.len()].eq_ignore_ascii_case(label)
        {
            line = line[label.len()..].trim_start_matches(['*', ' ']);
        }
    }
    let (open, close) = match line.chars().next()? {
        '“' => ('“', '”'),
        '"' => ('"', '"'),
        _ => return None,
    };
    let start = open.len_utf8();
    let end = start + line[start..].find(close)?;
    let inner = &line[start..end];
    (!inner.trim().is_empty()).then_some(inner)
}

/// The blocks to search: the contents of code fences first, then the whole text.
fn candidates(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        // Skip the info string (`json`, `JSON`, ...).
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = &after[body_start..];
        match body.find("```") {
            Some(close) => {
                out.push(body[..close].to_string());
                rest = &body[close + 3..];
            }
            None => {
                out.push(body.to_string());
                break;
            }
        }
    }
    out.push(text.to_string());
    out
}

/// The first JSON value starting at an `open` character that parses (strictly, or
/// after repairs) and satisfies `want`; trailing text is ignored.
fn find_value(text: &str, open: char, want: impl Fn(&Value) -> bool) -> Option<Value> {
    for (i, _) in text.match_indices(open) {
        let tail = &text[i..];
        if let Some(v) = first_value(tail).filter(&want) {
            return Some(v);
        }
        if let Some(v) = first_value(&repair(tail)).filter(&want) {
            return Some(v);
        }
    }
    None
}

fn first_value(text: &str) -> Option<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// Makes Python-ish or sloppy JSON parse: single-quoted strings become double-quoted,
/// commas before `]` or `}` are dropped, and `None`/`True`/`False` become JSON.
fn repair(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                let quote = c;
                out.push('"');
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    if d == '\\' && i + 1 < chars.len() {
                        let next = chars[i + 1];
                        if next == '\'' {
                            out.push('\'');
                        } else {
                            out.push('\\');
                            out.push(next);
                        }
                        i += 2;
                        continue;
                    }
                    if d == quote {
                        break;
                    }
                    match d {
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        '\t' => out.push_str("\\t"),
                        '\r' => {}
                        _ => out.push(d),
                    }
                    i += 1;
                }
                out.push('"');
                i += 1;
            }
            ',' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if !matches!(chars.get(j), Some(']' | '}')) {
                    out.push(',');
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push_str(match word.as_str() {
                    "None" => "null",
                    "True" => "true",
                    "False" => "false",
                    w => w,
                });
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Reads a list of operations, all or nothing, and validates them.
fn operations(items: &[Value]) -> Result<Vec<ProfileOp>, String> {
    let mut ops = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        ops.push(operation(item).map_err(|e| format!("operation {i}: {e}; nothing was applied"))?);
    }
    validate_ops(&ops).map_err(|e| format!("{e}; nothing was applied"))
}

fn operation(item: &Value) -> Result<ProfileOp, String> {
    let obj = item.as_object().ok_or("not an object")?;
    let get = |keys: &[&str]| keys.iter().find_map(|k| obj.get(*k)).map(text_of);
    let op = match obj
        .get("op")
        .or_else(|| obj.get("operation"))
        .or_else(|| obj.get("type"))
    {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Null) | None => "None".to_string(),
        Some(other) => return Err(format!("unknown operation {other}")),
    };
    let field_name = get(&["fieldName", "field_name", "field", "FieldName"])
        .unwrap_or_default()
        .trim()
        .to_string();
    let content = get(&["content", "Content", "value"]).unwrap_or_default();
    let observations = get(&["observations", "Observations", "observation"]).unwrap_or_default();
    let known = matches!(
        op.to_ascii_lowercase().as_str(),
        "addfield" | "add_field" | "appendcontentbyfield" | "append_content_by_field"
    );
    if known && field_name.is_empty() && content.trim().is_empty() {
        // Filler a schema-bound model emits when it has nothing to say: no field and
        // no content carry no change.
        return Ok(ProfileOp::None);
    }
    match op.to_ascii_lowercase().as_str() {
        "addfield" | "add_field" => Ok(ProfileOp::AddField {
            field_name,
            content,
            observations,
        }),
        "appendcontentbyfield" | "append_content_by_field" => Ok(ProfileOp::AppendContentByField {
            field_name,
            content,
            observations,
        }),
        "none" | "" => Ok(ProfileOp::None),
        _ => Err(format!(
            "unknown operation {:?} (known: addfield, appendContentByField, None)",
            op.chars().take(40).collect::<String>()
        )),
    }
}

/// A value as text: strings as they are, lists joined, anything else as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

/// Makes a model's name safe to store: the first non-empty line, trimmed, without
/// surrounding quotes or a `Name:`/`Title:` label, control characters removed,
/// whitespace collapsed, at most [`MAX_NAME_CHARS`] characters cut at a word.
/// `None` when nothing is left.
pub fn sanitize_name(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut s = line;
    for label in ["name:", "title:", "conversation name:"] {
        if s.len() >= label.len()
            && s.is_char_boundary(label.len())
            && s[..label.len()].eq_ignore_ascii_case(label)
        {
            s = s[label.len()..].trim();
        }
    }
    const QUOTES: &[char] = &['"', '\'', '`', '“', '”', '‘', '’', '«', '»', '*'];
    let s = s.trim_matches(|c: char| QUOTES.contains(&c) || c.is_whitespace());
    let cleaned: String = s
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let cut = cut_at_word(&cleaned, MAX_NAME_CHARS);
    let cut = cut.trim_end_matches([' ', ',', ';', ':', '-']).to_string();
    (!cut.is_empty()).then_some(cut)
}

/// At most `max` characters, cut at the last space when there is one in the second
/// half.
fn cut_at_word(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    match head.rfind(' ') {
        Some(i) if head[..i].chars().count() >= max / 2 => head[..i].to_string(),
        _ => head,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_oversized_reply_fails_without_parsing() {
        let e = parse_reply(&"{".repeat(100_000)).unwrap_err();
        assert!(e.reason.contains("longer than"), "{}", e.reason);
        assert_eq!(e.reply.len(), MAX_REPLY_BYTES, "the reply is kept, cut");
    }

    use super::*;

    fn ops(r: &ParsedReply) -> &Vec<ProfileOp> {
        r.operations.as_ref().unwrap().as_ref().unwrap()
    }

    #[test]
    fn structured_json_plain_fenced_or_in_prose() {
        let plain = r#"{"name":"Trip to Lisbon","profile_operations":[{"op":"addfield","fieldName":"Home city","content":"Porto","observations":"said so"}]}"#;
        let r = parse_reply(plain).unwrap();
        assert_eq!(r.name.as_deref(), Some("Trip to Lisbon"));
        assert_eq!(ops(&r).len(), 1);
        let fenced = format!("Sure! Here you go:\n```json\n{plain}\n```\nAnything else?");
        assert_eq!(parse_reply(&fenced).unwrap(), r);
        let prose = format!("The answer is {plain} -- hope it helps {{not json}}");
        assert_eq!(parse_reply(&prose).unwrap(), r);
    }

    #[test]
    fn seed_format_with_fences_single_quotes_and_trailing_commas() {
        let seed = "\"Planning a garden\"\n```json\n[{'op': 'addfield', 'fieldName': 'Hobby', 'content': \"gardening, it's fun\", 'observations': 'mentioned',},]\n```\nThat's all.";
        let r = parse_reply(seed).unwrap();
        assert_eq!(r.name.as_deref(), Some("Planning a garden"));
        match &ops(&r)[0] {
            ProfileOp::AddField { content, .. } => assert_eq!(content, "gardening, it's fun"),
            o => panic!("{o:?}"),
        }
        let only_name = parse_reply("\"Just a name\"").unwrap();
        assert_eq!(only_name.name.as_deref(), Some("Just a name"));
        assert_eq!(only_name.operations, None);
        let filler = parse_reply(
            r#"{"name":"Hi","profile_operations":[{"op":"addfield","fieldName":"","content":"","observations":""}]}"#,
        )
        .unwrap();
        assert_eq!(ops(&filler), &Vec::<ProfileOp>::new());
        let none = parse_reply("\"Chit-chat\"\n[{\"op\": \"None\"}]").unwrap();
        assert_eq!(ops(&none), &Vec::<ProfileOp>::new());
    }

    #[test]
    fn unknown_operations_reject_the_whole_list_but_keep_the_name() {
        let r = parse_reply(
            r#"{"name":"X","profile_operations":[{"op":"addfield","fieldName":"A","content":"b"},{"op":"deleteEverything","fieldName":"A"}]}"#,
        )
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("X"));
        let why = r.operations.unwrap().unwrap_err();
        assert!(why.contains("deleteEverything"), "{why}");
        let bare = parse_reply(r#"{"name":"X","profile_operations":[{"op":"clearProfile"}]}"#);
        assert!(bare.unwrap().operations.unwrap().is_err());
        let placeholder = parse_reply(
            r#"{"name":"X","profile_operations":[{"op":"addfield","fieldName":"New Field Name","content":"b"}]}"#,
        )
        .unwrap();
        assert!(placeholder.operations.unwrap().is_err());
    }

    #[test]
    fn garbage_is_an_error_that_keeps_the_reply() {
        for garbage in ["I cannot help with that.", "", "{{{{", "[1, 2, 3]"] {
            let e = parse_reply(garbage).unwrap_err();
            assert_eq!(e.reply, garbage);
        }
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(
            sanitize_name("  \"Trip\u{7} to  Paris\"  \nsecond line").as_deref(),
            Some("Trip to Paris")
        );
        assert_eq!(
            sanitize_name("Title: 'Rust help'").as_deref(),
            Some("Rust help")
        );
        assert_eq!(sanitize_name("\"\"  "), None);
        let long = sanitize_name(&"abcdefg ".repeat(20)).unwrap();
        assert!(long.chars().count() <= MAX_NAME_CHARS);
        assert!(long.ends_with("abcdefg"), "{long}");
        let unbroken = sanitize_name(&"x".repeat(200)).unwrap();
        assert_eq!(unbroken.chars().count(), MAX_NAME_CHARS);
    }
}
