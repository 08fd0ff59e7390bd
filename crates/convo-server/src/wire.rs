//! The OpenAI wire shapes of conversations and items, both ways.
//!
//! Items on `/v1` carry exactly OpenAI's fields (agent frameworks replay them into the
//! next model request, where unknown fields are rejected); convo's own per-item data
//! lives on the extension endpoints.

use convo_core::{Content, Conversation, Item, ItemBody, NewItem, Role};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// Most items one `/v1` call may create (OpenAI's limit).
pub(crate) const MAX_ITEMS_PER_CALL: usize = 20;

/// The conversation object, with convo's `persona` and `name` beside OpenAI's fields.
pub(crate) fn conversation(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "object": "conversation",
        "created_at": c.created_at.unix_seconds(),
        "metadata": c.metadata,
        "persona": c.persona.as_str(),
        "name": c.name,
    })
}

/// The deleted-conversation object.
pub(crate) fn deleted(id: &str) -> Value {
    json!({"id": id, "object": "conversation.deleted", "deleted": true})
}

/// A list of items as OpenAI pages them (`first_id`/`last_id` null when empty).
pub(crate) fn item_list(data: Vec<Value>, has_more: bool) -> Value {
    let first = data.first().map(|i| i["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|i| i["id"].clone()).unwrap_or(Value::Null);
    json!({
        "object": "list",
        "data": data,
        "first_id": first,
        "last_id": last,
        "has_more": has_more,
    })
}

/// A page of items as [`item_list`] shapes it, serialized straight from the stored
/// items: every append answers one, and building a `Value` tree first cost more
/// allocations than the rest of the answer.
pub(crate) struct ItemPage<'a> {
    pub items: &'a [Item],
    pub has_more: bool,
}

impl Serialize for ItemPage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("object", "list")?;
        m.serialize_entry("data", &Seq(self.items, WireItem))?;
        m.serialize_entry("first_id", &self.items.first().map(|i| i.id.as_str()))?;
        m.serialize_entry("last_id", &self.items.last().map(|i| i.id.as_str()))?;
        m.serialize_entry("has_more", &self.has_more)?;
        m.end()
    }
}

/// A slice serialized element by element through a wrapper.
struct Seq<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for Seq<'a, T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&(self.1)(x))?;
        }
        seq.end()
    }
}

/// One item exactly as OpenAI returns it: `type`, `id`, `status` and the fields of its
/// kind; message content is always a list of parts (plain text becomes one
/// `input_text` part, or `output_text` on assistant messages), and `output_text`
/// parts always carry `annotations`.
pub(crate) struct WireItem<'a>(pub &'a Item);

impl Serialize for WireItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.0;
        let mut m = s.serialize_map(None)?;
        match &i.body {
            ItemBody::Message { role, content } => {
                m.serialize_entry("type", "message")?;
                m.serialize_entry("id", &i.id)?;
                m.serialize_entry("status", "completed")?;
                m.serialize_entry("role", role.as_str())?;
                m.serialize_entry("content", &MessageParts(*role, content))?;
            }
            ItemBody::FunctionCall {
                call_id,
                name,
                arguments,
                ..
            } => {
                m.serialize_entry("type", "function_call")?;
                m.serialize_entry("id", &i.id)?;
                m.serialize_entry("status", "completed")?;
                m.serialize_entry("call_id", call_id)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("arguments", arguments)?;
            }
            ItemBody::FunctionCallOutput { call_id, output } => {
                m.serialize_entry("type", "function_call_output")?;
                m.serialize_entry("id", &i.id)?;
                m.serialize_entry("status", "completed")?;
                m.serialize_entry("call_id", call_id)?;
                match output {
                    Content::Text(t) => m.serialize_entry("output", t)?,
                    Content::Parts(p) => m.serialize_entry("output", p)?,
                }
            }
        }
        m.end()
    }
}

/// A message's content as a list of parts.
struct MessageParts<'a>(Role, &'a Content);

impl Serialize for MessageParts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text_part = |kind: &str, t: &str, annotations: bool, s: S| {
            let mut seq = s.serialize_seq(Some(1))?;
            seq.serialize_element(&TextPart(kind, t, annotations))?;
            seq.end()
        };
        match self.1 {
            Content::Text(t) if self.0 == Role::Assistant => text_part("output_text", t, true, s),
            Content::Text(t) => text_part("input_text", t, false, s),
            Content::Parts(parts) => Seq(parts, AnnotatedPart).serialize(s),
        }
    }
}

/// `{"type", "text"}` and, when asked, `"annotations": []`.
struct TextPart<'a>(&'a str, &'a str, bool);

impl Serialize for TextPart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.0)?;
        m.serialize_entry("text", self.1)?;
        if self.2 {
            m.serialize_entry("annotations", &[(); 0])?;
        }
        m.end()
    }
}

/// A stored part, with `"annotations": []` appended to an `output_text` part
/// without them (as [`add_annotations`] does).
struct AnnotatedPart<'a>(&'a Value);

impl Serialize for AnnotatedPart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(o)
                if o.get("type").and_then(Value::as_str) == Some("output_text")
                    && !o.contains_key("annotations") =>
            {
                let mut m = s.serialize_map(Some(o.len() + 1))?;
                for (k, v) in o {
                    m.serialize_entry(k, v)?;
                }
                m.serialize_entry("annotations", &[(); 0])?;
                m.end()
            }
            v => v.serialize(s),
        }
    }
}

/// An item exactly as OpenAI returns it, as a `Value` for answers that add fields;
/// [`WireItem`] is the one definition of the shape.
pub(crate) fn item(i: &Item) -> Value {
    serde_json::to_value(WireItem(i)).expect("an item serializes to JSON")
}

/// Adds `"annotations": []` to an `output_text` part without them.
fn add_annotations(part: &mut Value) {
    if let Value::Object(o) = part
        && o.get("type").and_then(Value::as_str) == Some("output_text")
        && !o.contains_key("annotations")
    {
        o.insert("annotations".into(), json!([]));
    }
}

/// Parses the `items` of a request: at most 20, every one valid, or a 400 naming
/// `items` (nothing is stored: the batch is all or nothing).
pub(crate) fn parse_items(v: Option<&Value>) -> ApiResult<Vec<NewItem>> {
    let items = match v {
        None => return Ok(vec![]),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("Invalid type for 'items': expected an array of items.")),
    };
    if items.len() > MAX_ITEMS_PER_CALL {
        return Err(bad(format!(
            "Invalid 'items': array too long. Expected an array with maximum length {MAX_ITEMS_PER_CALL}, but got an array with length {} instead.",
            items.len()
        ))
        .with_code("array_above_max_length"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| parse_item(i, v))
        .collect()
}

/// A create-items body of the common shape, `{"items": [{"type": "message",
/// "role": ..., "content": "text"}, ...]}` with 1 to 20 valid items and no other
/// fields, parsed without a `Value` tree; `None` for anything else (which
/// [`parse_items`] then accepts or refuses with its exact error).
pub(crate) fn plain_messages(body: &[u8]) -> Option<Vec<NewItem>> {
    use std::borrow::Cow;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body<'a> {
        #[serde(borrow)]
        items: Vec<Message<'a>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Message<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<Cow<'a, str>>,
        #[serde(borrow)]
        role: Cow<'a, str>,
        #[serde(borrow)]
        content: Cow<'a, str>,
    }

    let body: Body = serde_json::from_slice(body).ok()?;
    if body.items.is_empty() || body.items.len() > MAX_ITEMS_PER_CALL {
        return None;
    }
    body.items
        .into_iter()
        .map(|m| {
            if m.kind.as_deref().is_some_and(|k| k != "message") {
                return None;
            }
            let role = match m.role.as_ref() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => Role::System,
                "developer" => Role::Developer,
                _ => return None,
            };
            Some(NewItem::message(
                role,
                Content::Text(m.content.into_owned()),
            ))
        })
        .collect()
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("items", message)
}

fn str_field<'a>(o: &'a Map<String, Value>, i: usize, key: &str) -> ApiResult<&'a str> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(bad(format!(
            "Missing required parameter: 'items[{i}].{key}'."
        ))),
        Some(_) => Err(bad(format!(
            "Invalid type for 'items[{i}].{key}': expected a string."
        ))),
    }
}

fn parse_item(i: usize, v: &Value) -> ApiResult<NewItem> {
    let Value::Object(o) = v else {
        return Err(bad(format!(
            "Invalid type for 'items[{i}]': expected an object."
        )));
    };
    let kind = match o.get("type") {
        None | Some(Value::Null) if o.contains_key("role") => "message",
        None | Some(Value::Null) => {
            return Err(bad(format!(
                "Missing required parameter: 'items[{i}].type'."
            )));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(bad(format!(
                "Invalid type for 'items[{i}].type': expected a string."
            )));
        }
    };
    match kind {
        "message" => {
            let role = match str_field(o, i, "role")? {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => Role::System,
                "developer" => Role::Developer,
                other => {
                    return Err(bad(format!(
                        "Invalid value for 'items[{i}].role': '{}'. Supported values are: 'user', 'assistant', 'system' and 'developer'.",
                        other.chars().take(40).collect::<String>()
                    )));
                }
            };
            let content = match o.get("content") {
                Some(Value::String(s)) => Content::Text(s.clone()),
                Some(Value::Array(parts)) => Content::Parts(message_content(i, role, parts)?),
                None | Some(Value::Null) => {
                    return Err(bad(format!(
                        "Missing required parameter: 'items[{i}].content'."
                    )));
                }
                Some(_) => {
                    return Err(bad(format!(
                        "Invalid type for 'items[{i}].content': expected a string or an array of content parts."
                    )));
                }
            };
            Ok(NewItem::message(role, content))
        }
        "function_call" => {
            let call_id = non_empty(o, i, "call_id")?;
            let name = str_field(o, i, "name")?;
            let arguments = str_field(o, i, "arguments")?;
            Ok(NewItem::function_call(call_id, name, arguments))
        }
        "function_call_output" => {
            let call_id = non_empty(o, i, "call_id")?;
            let output = match o.get("output") {
                Some(Value::String(s)) => Content::Text(s.clone()),
                Some(Value::Array(parts)) => {
                    for (j, p) in parts.iter().enumerate() {
                        let t = part_type(i, j, p)?;
                        if !matches!(t, "input_text" | "input_image" | "input_file") {
                            return Err(bad(format!(
                                "Invalid value for 'items[{i}].output[{j}].type': '{t}'. Supported values are: 'input_text', 'input_image' and 'input_file'."
                            )));
                        }
                        if t == "input_text" {
                            part_text(i, j, p, "text")?;
                        }
                    }
                    Content::Parts(parts.clone())
                }
                None | Some(Value::Null) => {
                    return Err(bad(format!(
                        "Missing required parameter: 'items[{i}].output'."
                    )));
                }
                Some(_) => {
                    return Err(bad(format!(
                        "Invalid type for 'items[{i}].output': expected a string or an array of content parts."
                    )));
                }
            };
            Ok(NewItem::function_call_output(call_id, output))
        }
        other => Err(bad(format!(
            "Invalid value for 'items[{i}].type': '{}'. Supported values are: 'message', 'function_call' and 'function_call_output'.",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

fn non_empty<'a>(o: &'a Map<String, Value>, i: usize, key: &str) -> ApiResult<&'a str> {
    let s = str_field(o, i, key)?;
    if s.is_empty() {
        return Err(bad(format!("Invalid 'items[{i}].{key}': empty string.")));
    }
    Ok(s)
}

fn part_type(i: usize, j: usize, p: &Value) -> ApiResult<&str> {
    p.get("type").and_then(Value::as_str).ok_or_else(|| {
        bad(format!(
            "Invalid 'items[{i}].content[{j}]': expected an object with a string 'type'."
        ))
    })
}

fn part_text(i: usize, j: usize, p: &Value, key: &str) -> ApiResult<()> {
    match p.get(key) {
        Some(Value::String(_)) => Ok(()),
        _ => Err(bad(format!(
            "Invalid 'items[{i}].content[{j}].{key}': expected a string."
        ))),
    }
}

/// Checks message parts against the role (assistant: `output_text`/`refusal`; others:
/// `input_*`) and adds `annotations: []` to `output_text` parts that lack it.
fn message_content(i: usize, role: Role, parts: &[Value]) -> ApiResult<Vec<Value>> {
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let t = part_type(i, j, p)?;
        let allowed: &[&str] = if role == Role::Assistant {
            &["output_text", "refusal"]
        } else {
            &["input_text", "input_image", "input_file"]
        };
        if !allowed.contains(&t) {
            return Err(bad(format!(
                "Invalid value for 'items[{i}].content[{j}].type': '{}' is not allowed in a {} message. Supported values are: {}.",
                t.chars().take(40).collect::<String>(),
                role.as_str(),
                allowed
                    .iter()
                    .map(|a| format!("'{a}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        match t {
            "input_text" | "output_text" => part_text(i, j, p, "text")?,
            "refusal" => part_text(i, j, p, "refusal")?,
            _ => {}
        }
        if t == "output_text" && p.get("annotations").is_some_and(|a| !a.is_array()) {
            return Err(bad(format!(
                "Invalid type for 'items[{i}].content[{j}].annotations': expected an array."
            )));
        }
        let mut p = p.clone();
        add_annotations(&mut p);
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, body: ItemBody) -> Item {
        Item {
            id: id.into(),
            conversation_id: "conv_1".into(),
            position: 1,
            created_at: convo_core::Timestamp::now(),
            tokens: 3,
            body,
        }
    }

    /// Every shape an item can answer in, with text that needs escaping.
    fn every_shape() -> Vec<Item> {
        let text = "line \"one\"\n\ttwo \u{1F600} </script> \\ end";
        let mut items = Vec::new();
        for role in [Role::User, Role::Assistant, Role::System, Role::Developer] {
            items.push(stored(
                "msg_t",
                ItemBody::Message {
                    role,
                    content: Content::Text(text.into()),
                },
            ));
        }
        let parts = vec![
            json!({"type": "output_text", "text": text}),
            json!({"type": "output_text", "text": "b", "annotations": [{"type": "url_citation"}]}),
            json!({"type": "refusal", "refusal": "no"}),
            json!({"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"}),
            json!({"text": "untyped", "z": 1, "a": [1, 2.5, null, true]}),
            json!("a bare string"),
        ];
        items.push(stored(
            "msg_p",
            ItemBody::Message {
                role: Role::Assistant,
                content: Content::Parts(parts.clone()),
            },
        ));
        items.push(stored(
            "fc_1",
            ItemBody::FunctionCall {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
                message_id: Some("msg_p".into()),
            },
        ));
        items.push(stored(
            "fco_t",
            ItemBody::FunctionCallOutput {
                call_id: "call_1".into(),
                output: Content::Text(text.into()),
            },
        ));
        items.push(stored(
            "fco_p",
            ItemBody::FunctionCallOutput {
                call_id: "call_1".into(),
                output: Content::Parts(parts),
            },
        ));
        items
    }

    /// What the `Value` path makes of a body (the handler's own steps).
    fn value_path(body: &str) -> Option<Vec<NewItem>> {
        let body = crate::extract::JsonBody::parse(body.as_bytes()).ok()?;
        match body.get("items") {
            Some(Value::Array(a)) if !a.is_empty() => {
                parse_items(Some(&Value::Array(a.clone()))).ok()
            }
            _ => None,
        }
    }

    #[test]
    fn the_fast_path_takes_only_what_the_value_path_takes_and_makes_the_same_items() {
        let twenty = format!(
            r#"{{"items": [{}]}}"#,
            vec![r#"{"role": "user", "content": "x"}"#; 20].join(",")
        );
        let twenty_one = twenty.replacen('[', r#"[{"role": "user", "content": "x"},"#, 1);
        let taken = [
            r#"{"items": [{"type": "message", "role": "user", "content": "How warm is it?"}]}"#,
            r#"{"items": [{"role": "assistant", "content": "esc \"q\" \n \u00e9 \ud83d\ude00"}]}"#,
            r#"{"items": [{"type": null, "role": "system", "content": ""}, {"role": "developer", "content": "d"}]}"#,
            r#" {"items":[{"content":"c","role":"user","type":"message"}]} "#,
            twenty.as_str(),
        ];
        for body in taken {
            let fast = plain_messages(body.as_bytes()).unwrap_or_else(|| panic!("{body}"));
            assert_eq!(Some(fast), value_path(body), "{body}");
        }
        // Bodies the fast path leaves to the Value path: valid ones (extra fields,
        // other item types, parts) and every kind of error.
        let left = [
            r#"{"items": [{"role": "user", "content": "x"}], "extra": 1}"#,
            r#"{"items": [{"role": "user", "content": "x", "status": "completed"}]}"#,
            r#"{"items": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}]}"#,
            r#"{"items": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]}"#,
            r#"{"items": [{"role": "user", "content": "x", "role": "assistant"}]}"#,
            r#"{"items": [{"role": "user", "content": "x"}], "items": []}"#,
            r#"{"items": [{"role": "robot", "content": "x"}]}"#,
            r#"{"items": [{"type": "mesage", "role": "user", "content": "x"}]}"#,
            r#"{"items": [{"role": "user", "content": null}]}"#,
            r#"{"items": [{"role": "user"}]}"#,
            r#"{"items": [{"role": null, "content": "x"}]}"#,
            r#"{"items": [{"role": "user", "content": 5}]}"#,
            r#"{"items": []}"#,
            r#"{"items": {}}"#,
            r#"{"items": [{"role": "user", "content": "\ud800"}]}"#,
            r#"{"items": [{"role": "user", "content": "x"}]} trailing"#,
            r#"[{"role": "user", "content": "x"}]"#,
            "",
            twenty_one.as_str(),
        ];
        for body in left {
            assert_eq!(plain_messages(body.as_bytes()), None, "{body}");
        }
        // Of those, the valid ones the Value path still takes.
        for body in &left[..5] {
            assert!(value_path(body).is_some(), "{body}");
        }
    }

    #[test]
    fn typed_pages_are_byte_for_byte_the_value_pages() {
        let items = every_shape();
        for n in [0, 1, items.len()] {
            for has_more in [false, true] {
                let page = ItemPage {
                    items: &items[..n],
                    has_more,
                };
                let values = item_list(items[..n].iter().map(item).collect(), has_more);
                assert_eq!(
                    serde_json::to_string(&page).unwrap(),
                    serde_json::to_string(&values).unwrap()
                );
            }
        }
    }

    #[test]
    fn shorthand_and_roles() {
        let items = parse_items(Some(&json!([
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "yo"}]},
        ])))
        .unwrap();
        assert_eq!(items.len(), 2);
        match &items[1].body {
            ItemBody::Message {
                content: Content::Parts(p),
                ..
            } => {
                assert_eq!(p[0]["annotations"], json!([]))
            }
            other => panic!("{other:?}"),
        }
        let err = parse_items(Some(&json!([
            {"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "x"}]}
        ])))
        .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("items"));
        assert!(parse_items(Some(&json!([{"type": "reasoning"}]))).is_err());
        assert!(parse_items(Some(&json!([{"role": "tool", "content": "x"}]))).is_err());
        let many: Vec<Value> = (0..21)
            .map(|_| json!({"role": "user", "content": "x"}))
            .collect();
        assert!(parse_items(Some(&Value::Array(many))).is_err());
    }
}
