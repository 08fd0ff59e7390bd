//! UTC timestamps with millisecond precision.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in time, UTC, millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Now, cut to milliseconds.
    pub fn now() -> Self {
        Self::from_unix_ms(Utc::now().timestamp_millis())
    }

    /// From Unix milliseconds (out-of-range values clamp to the epoch).
    pub fn from_unix_ms(ms: i64) -> Self {
        Timestamp(Utc.timestamp_millis_opt(ms).single().unwrap_or_default())
    }

    /// From any chrono time, cut to milliseconds.
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        Self::from_unix_ms(dt.timestamp_millis())
    }

    /// Unix milliseconds.
    pub fn unix_ms(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// Unix seconds (what OpenAI's `created_at` carries).
    pub fn unix_seconds(self) -> i64 {
        self.0.timestamp()
    }

    /// The chrono value.
    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }

    /// RFC 3339 with milliseconds and `Z`, e.g. `2026-11-27T08:44:49.123Z`.
    pub fn to_rfc3339(self) -> String {
        self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Parses RFC 3339.
    pub fn parse_rfc3339(s: &str) -> crate::Result<Self> {
        DateTime::parse_from_rfc3339(s)
            .map(|d| Self::from_datetime(d.with_timezone(&Utc)))
            .map_err(|e| crate::Error::invalid("timestamp", format!("{s:?} is not RFC 3339: {e}")))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Self::from_datetime(dt)
    }
}
