//! The OpenAI wire shapes of conversations and items, both ways.
//!
//! Items on `/v1` carry exactly OpenAI's fields (agent frameworks replay them into the
//! next model request, where unknown fields are rejected); convo's own per-item data
//! lives on the extension endpoints.

use convo_core::{Content, Conversation, Item, ItemBody, NewItem, Role};
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

/// An item exactly as OpenAI returns it.
pub(crate) fn item(i: &Item) -> Value {
    match &i.body {
        ItemBody::Message { role, content } => json!({
            "type": "message",
            "id": i.id,
            "status": "completed",
            "role": role.as_str(),
            "content": message_parts(*role, content),
        }),
        ItemBody::FunctionCall {
            call_id,
            name,
            arguments,
            ..
        } => json!({
            "type": "function_call",
            "id": i.id,
            "status": "completed",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }),
        ItemBody::FunctionCallOutput { call_id, output } => json!({
            "type": "function_call_output",
            "id": i.id,
            "status": "completed",
            "call_id": call_id,
            "output": match output {
                Content::Text(t) => Value::String(t.clone()),
                Content::Parts(p) => Value::Array(p.clone()),
            },
        }),
    }
}

/// Content as a list of parts: plain text becomes one `input_text` part, or an
/// `output_text` part on assistant messages; `output_text` always has `annotations`.
fn message_parts(role: Role, content: &Content) -> Value {
    match content {
        Content::Text(t) if role == Role::Assistant => {
            json!([{"type": "output_text", "text": t, "annotations": []}])
        }
        Content::Text(t) => json!([{"type": "input_text", "text": t}]),
        Content::Parts(parts) => Value::Array(
            parts
                .iter()
                .map(|p| {
                    let mut p = p.clone();
                    add_annotations(&mut p);
                    p
                })
                .collect(),
        ),
    }
}

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
