//! A user's long-term profile: fields, the operations that change them, the audit trail.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::{Error, Result, Timestamp};

/// Longest field name, in characters.
pub const MAX_FIELD_NAME: usize = 64;
/// Longest content of one operation, in characters.
pub const MAX_CONTENT: usize = 2000;
/// Most operations one job may apply.
pub const MAX_OPS_PER_JOB: usize = 20;
/// Most fields one profile may hold.
pub const MAX_FIELDS: usize = 200;

/// A field's content: one text, or a list once something was appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldContent {
    /// One text.
    Text(String),
    /// Several texts, oldest first.
    List(Vec<String>),
}

impl FieldContent {
    /// `self` with `more` appended: a text becomes a list.
    pub fn appended(&self, more: &str) -> FieldContent {
        let mut list = match self {
            FieldContent::Text(t) => vec![t.clone()],
            FieldContent::List(l) => l.clone(),
        };
        list.push(more.to_string());
        FieldContent::List(list)
    }

    /// Joined for prompts and tables.
    pub fn joined(&self, sep: &str) -> String {
        match self {
            FieldContent::Text(t) => t.clone(),
            FieldContent::List(l) => l.join(sep),
        }
    }
}

/// One field of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileField {
    /// The field's name.
    pub name: String,
    /// What the profile says.
    pub content: FieldContent,
    /// Why it says it.
    pub observations: String,
    /// Last change.
    pub updated_at: Timestamp,
}

/// A user's profile: fields by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Fields, sorted by name.
    pub fields: Vec<ProfileField>,
}

impl Profile {
    /// The field of that name.
    pub fn get(&self, name: &str) -> Option<&ProfileField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The seed's JSON file shape: `{"Field": {"Content": ..., "observations": ...}}`.
    pub fn to_seed_json(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    serde_json::json!({"Content": f.content, "observations": f.observations}),
                )
            })
            .collect();
        Value::Object(map)
    }

    /// Reads the seed's JSON file shape into `addfield` operations (one per field).
    pub fn ops_from_seed_json(v: &Value) -> Result<Vec<ProfileOp>> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::invalid("profile", "expected a JSON object of fields"))?;
        let mut ops = Vec::with_capacity(obj.len());
        for (name, field) in obj {
            let content = match field.get("Content").or_else(|| field.get("content")) {
                Some(Value::String(s)) => FieldContent::Text(s.clone()),
                Some(Value::Array(a)) => FieldContent::List(
                    a.iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect(),
                ),
                Some(Value::Null) | None => FieldContent::Text(String::new()),
                Some(other) => FieldContent::Text(other.to_string()),
            };
            let observations = field
                .get("observations")
                .or_else(|| field.get("Observations"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            ops.push(ProfileOp::SetField {
                field_name: name.clone(),
                content,
                observations,
            });
        }
        Ok(ops)
    }
}

/// An operation on a profile. The first three are what a model may emit (the seed's
/// `addfield`, `appendContentByField`, `None`); `SetField` and `RemoveField` are for
/// people and imports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum ProfileOp {
    /// Add a field, or replace its content if it exists.
    #[serde(rename = "addfield")]
    AddField {
        /// Field name.
        #[serde(rename = "fieldName")]
        field_name: String,
        /// Content.
        content: String,
        /// Why.
        #[serde(default)]
        observations: String,
    },
    /// Append to a field's content (it becomes a list); creates the field if missing.
    #[serde(rename = "appendContentByField")]
    AppendContentByField {
        /// Field name.
        #[serde(rename = "fieldName")]
        field_name: String,
        /// Content to append.
        content: String,
        /// Why.
        #[serde(default)]
        observations: String,
    },
    /// Nothing to change.
    #[serde(rename = "None")]
    None,
    /// Set a field to exactly this content (manual edits, imports, undo).
    #[serde(rename = "setfield")]
    SetField {
        /// Field name.
        #[serde(rename = "fieldName")]
        field_name: String,
        /// Content.
        content: FieldContent,
        /// Why.
        #[serde(default)]
        observations: String,
    },
    /// Remove a field.
    #[serde(rename = "removefield")]
    RemoveField {
        /// Field name.
        #[serde(rename = "fieldName")]
        field_name: String,
    },
}

impl ProfileOp {
    /// The field it touches, if any.
    pub fn field_name(&self) -> Option<&str> {
        match self {
            ProfileOp::AddField { field_name, .. }
            | ProfileOp::AppendContentByField { field_name, .. }
            | ProfileOp::SetField { field_name, .. }
            | ProfileOp::RemoveField { field_name } => Some(field_name),
            ProfileOp::None => None,
        }
    }

    /// The operation's wire name.
    pub fn name(&self) -> &'static str {
        match self {
            ProfileOp::AddField { .. } => "addfield",
            ProfileOp::AppendContentByField { .. } => "appendContentByField",
            ProfileOp::None => "None",
            ProfileOp::SetField { .. } => "setfield",
            ProfileOp::RemoveField { .. } => "removefield",
        }
    }
}

/// Placeholder names small models copy from prompts; never real facts.
const PLACEHOLDER_FIELDS: &[&str] = &[
    "new field name",
    "field name",
    "fieldname",
    "field_name",
    "example",
    "example field",
    "name of the field",
];

/// Validates a batch of operations against the limits, all or nothing. Returns the
/// operations that change something (drops `None`).
pub fn validate_ops(ops: &[ProfileOp]) -> Result<Vec<ProfileOp>> {
    if ops.len() > MAX_OPS_PER_JOB {
        return Err(Error::invalid(
            "operations",
            format!(
                "{} operations, at most {MAX_OPS_PER_JOB} are allowed",
                ops.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if let Some(name) = op.field_name() {
            check_field_name(name).map_err(|m| {
                Error::invalid("operations", format!("operation {i} ({}): {m}", op.name()))
            })?;
        }
        let contents: Vec<&str> = match op {
            ProfileOp::AddField { content, .. }
            | ProfileOp::AppendContentByField { content, .. } => vec![content],
            ProfileOp::SetField { content, .. } => match content {
                FieldContent::Text(t) => vec![t],
                FieldContent::List(l) => l.iter().map(String::as_str).collect(),
            },
            _ => vec![],
        };
        for c in contents {
            let n = c.chars().count();
            if n > MAX_CONTENT {
                return Err(Error::invalid(
                    "operations",
                    format!(
                        "operation {i} ({}): content is {n} characters, at most {MAX_CONTENT}",
                        op.name()
                    ),
                ));
            }
        }
        if matches!(
            op,
            ProfileOp::AddField { content, .. } | ProfileOp::AppendContentByField { content, .. }
                if content.trim().is_empty()
        ) {
            return Err(Error::invalid(
                "operations",
                format!("operation {i} ({}): content is empty", op.name()),
            ));
        }
        if !matches!(op, ProfileOp::None) {
            out.push(op.clone());
        }
    }
    Ok(out)
}

fn check_field_name(name: &str) -> std::result::Result<(), String> {
    let n = name.chars().count();
    if n == 0 || name.trim().is_empty() {
        return Err("field name is empty".into());
    }
    if n > MAX_FIELD_NAME {
        return Err(format!(
            "field name is {n} characters, at most {MAX_FIELD_NAME}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("field name contains control characters".into());
    }
    if PLACEHOLDER_FIELDS.contains(&name.trim().to_lowercase().as_str()) {
        return Err(format!("field name {name:?} is a placeholder, not a fact"));
    }
    Ok(())
}

/// Who or what caused a profile change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSource {
    /// `job`, `person`, `import` or `undo`.
    pub actor: String,
    /// The job that made the change, if any.
    pub job_id: Option<String>,
    /// The conversation the change came from, if any.
    pub conversation_id: Option<String>,
}

impl ChangeSource {
    /// A change made by hand.
    pub fn person() -> Self {
        ChangeSource {
            actor: "person".into(),
            job_id: None,
            conversation_id: None,
        }
    }

    /// A change made by an import.
    pub fn import() -> Self {
        ChangeSource {
            actor: "import".into(),
            job_id: None,
            conversation_id: None,
        }
    }
}

/// One applied change, kept so a person can see why the profile says something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number (increasing).
    pub id: i64,
    /// The user.
    pub user: String,
    /// The field.
    pub field: String,
    /// The operation's wire name.
    pub op: String,
    /// Content before (None: the field did not exist).
    pub before: Option<FieldContent>,
    /// Content after (None: the field was removed).
    pub after: Option<FieldContent>,
    /// Observations given with the change.
    pub observations: String,
    /// Who or what made it.
    pub source: ChangeSource,
    /// When.
    pub at: Timestamp,
}

/// One change [`apply_ops`] made, to be written to the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The field.
    pub field: String,
    /// The operation's wire name.
    pub op: &'static str,
    /// Content before (None: it did not exist).
    pub before: Option<FieldContent>,
    /// Content after (None: removed).
    pub after: Option<FieldContent>,
    /// Observations given with the change.
    pub observations: String,
}

/// Applies validated operations to a field map (name to content and observations),
/// the way every backend must, returning one record per change.
pub fn apply_ops(
    fields: &mut BTreeMap<String, (FieldContent, String)>,
    ops: &[ProfileOp],
) -> Result<Vec<FieldChange>> {
    let mut changes = Vec::new();
    for op in ops {
        let name = match op.field_name() {
            Some(n) => n.trim().to_string(),
            None => continue,
        };
        let before = fields.get(&name).map(|(c, _)| c.clone());
        let (after, obs) = match op {
            ProfileOp::AddField {
                content,
                observations,
                ..
            } => (
                Some(FieldContent::Text(content.clone())),
                observations.clone(),
            ),
            ProfileOp::AppendContentByField {
                content,
                observations,
                ..
            } => (
                Some(match &before {
                    Some(b) => b.appended(content),
                    None => FieldContent::Text(content.clone()),
                }),
                observations.clone(),
            ),
            ProfileOp::SetField {
                content,
                observations,
                ..
            } => (Some(content.clone()), observations.clone()),
            ProfileOp::RemoveField { .. } => (None, String::new()),
            ProfileOp::None => continue,
        };
        match &after {
            Some(a) => {
                let observations = if obs.is_empty() {
                    fields
                        .get(&name)
                        .map(|(_, o)| o.clone())
                        .unwrap_or_default()
                } else {
                    obs.clone()
                };
                fields.insert(name.clone(), (a.clone(), observations));
            }
            None => {
                fields.remove(&name);
            }
        }
        if fields.len() > MAX_FIELDS {
            return Err(Error::invalid(
                "operations",
                format!("the profile would hold more than {MAX_FIELDS} fields"),
            ));
        }
        if before != after {
            changes.push(FieldChange {
                field: name,
                op: op.name(),
                before,
                after,
                observations: obs,
            });
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_parse_in_the_seed_shape() {
        let v: Vec<ProfileOp> = serde_json::from_str(
            r#"[{"op":"addfield","fieldName":"Pets","content":"a cat","observations":"said so"},
                {"op":"None"}]"#,
        )
        .unwrap();
        assert_eq!(validate_ops(&v).unwrap().len(), 1);
    }

    #[test]
    fn limits_reject_the_whole_batch() {
        let long = ProfileOp::AddField {
            field_name: "x".into(),
            content: "y".repeat(2001),
            observations: String::new(),
        };
        assert!(validate_ops(&[long]).is_err());
        let placeholder = ProfileOp::AddField {
            field_name: "New Field Name".into(),
            content: "y".into(),
            observations: String::new(),
        };
        assert!(validate_ops(&[placeholder]).is_err());
        assert!(validate_ops(&vec![ProfileOp::None; 21]).is_err());
    }

    #[test]
    fn append_turns_text_into_a_list() {
        let mut f = BTreeMap::new();
        let ops = vec![
            ProfileOp::AddField {
                field_name: "Likes".into(),
                content: "tea".into(),
                observations: "o".into(),
            },
            ProfileOp::AppendContentByField {
                field_name: "Likes".into(),
                content: "jazz".into(),
                observations: String::new(),
            },
        ];
        let changes = apply_ops(&mut f, &ops).unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(
            f["Likes"].0,
            FieldContent::List(vec!["tea".into(), "jazz".into()])
        );
        assert_eq!(f["Likes"].1, "o");
    }
}
