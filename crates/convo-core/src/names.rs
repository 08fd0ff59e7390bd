//! Validated user ids and persona names.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::{Error, Result};

/// An end user of the LLM application: an opaque string (`alice`, an email, a UUID),
/// 1-256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// Validates and wraps a user id.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        let n = id.chars().count();
        let reason = if n == 0 {
            Some("must not be empty")
        } else if n > 256 {
            Some("must be at most 256 characters")
        } else if id.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidUser { reason }),
            None => Ok(UserId(id)),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        UserId::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The assistant personality a conversation is held with: 1-64 characters of letters,
/// digits, space, `_`, `-`, `.`; not starting with `.`. The seed built file paths from
/// it, so anything path-like (`../x`, `a/b`) is refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PersonaName(String);

impl PersonaName {
    /// Validates and wraps a persona name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let n = name.chars().count();
        let reason = if n == 0 {
            Some("must not be empty")
        } else if n > 64 {
            Some("must be at most 64 characters")
        } else if name.starts_with('.') {
            Some("must not start with '.'")
        } else if name.contains('/') || name.contains('\\') {
            Some("must not contain / or \\")
        } else if name.trim() != name {
            Some("must not start or end with a space")
        } else if !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '-' | '.'))
        {
            Some("may contain only letters, digits, space, '_', '-' and '.'")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidPersona {
                name: name.chars().take(80).collect(),
                reason,
            }),
            None => Ok(PersonaName(name)),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PersonaName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        PersonaName::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persona_names() {
        for ok in ["Helper", "Code Genius", "v1.2_beta-3", "Ünïcødé"] {
            assert!(PersonaName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            ".hidden",
            "a/b",
            "a\\b",
            "a\0b",
            " x",
            "x;drop",
            &"x".repeat(65),
        ] {
            assert!(PersonaName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn user_ids() {
        assert!(UserId::new("alice@example.com").is_ok());
        assert!(UserId::new("Robert'); DROP TABLE users;--").is_ok());
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new("x".repeat(257)).is_err());
    }
}
