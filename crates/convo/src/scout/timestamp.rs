//! The legacy timestamps: free text in whatever format the code of the day wrote.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use convo_core::Timestamp;
use rusqlite::types::Value;

/// Naive formats seen in legacy data, tried in order (read as UTC).
const NAIVE: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S%.f",
    "%d/%m/%Y %H:%M",
    "%d-%m-%Y %H:%M:%S%.f",
    "%d-%m-%Y %H:%M",
    "%d.%m.%Y %H:%M:%S%.f",
    "%d.%m.%Y %H:%M",
    "%a %b %e %H:%M:%S %Y",
    "%a %b %d %H:%M:%S %Y",
    "%b %d %Y %H:%M:%S",
    "%B %d, %Y %H:%M:%S",
    "%Y%m%d%H%M%S",
];

/// Date-only formats.
const DATES: &[&str] = &["%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d", "%d-%m-%Y", "%d.%m.%Y"];

/// Parses a legacy timestamp cell (text, integer or real Unix time); `None` when no
/// format fits or the time is absurd (before 2000 or after 2200).
pub fn parse(cell: &Value) -> Option<Timestamp> {
    let t = match cell {
        Value::Integer(n) => from_unix(*n as f64),
        Value::Real(f) => from_unix(*f),
        Value::Text(s) => parse_text(s),
        Value::Null | Value::Blob(_) => None,
    }?;
    let year_2000 = 946_684_800_000;
    let year_2200 = 7_258_118_400_000;
    (year_2000..year_2200).contains(&t.unix_ms()).then_some(t)
}

fn from_unix(n: f64) -> Option<Timestamp> {
    if !n.is_finite() {
        return None;
    }
    // Milliseconds (13 digits) or seconds (10 digits).
    let ms = if n.abs() >= 1e12 { n } else { n * 1000.0 };
    Some(Timestamp::from_unix_ms(ms.round() as i64))
}

fn parse_text(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>() {
        return from_unix(n);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(Timestamp::from_datetime(d.with_timezone(&Utc)));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%a, %d %b %Y %H:%M:%S %z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(Timestamp::from_datetime(d.with_timezone(&Utc)));
        }
    }
    // Python's isoformat() of an aware UTC time ends in "+00:00"; a bare "Z" or "UTC"
    // suffix is common in hand-written logs.
    let bare = s
        .strip_suffix(" UTC")
        .or_else(|| s.strip_suffix('Z'))
        .unwrap_or(s);
    for f in NAIVE {
        if let Ok(d) = NaiveDateTime::parse_from_str(bare, f) {
            return Some(Timestamp::from_datetime(Utc.from_utc_datetime(&d)));
        }
    }
    for f in DATES {
        if let Ok(d) = NaiveDate::parse_from_str(bare, f) {
            return d
                .and_hms_opt(0, 0, 0)
                .map(|d| Timestamp::from_datetime(Utc.from_utc_datetime(&d)));
        }
    }
    None
}

/// The Unix seconds inside a legacy conversation id `<user>_<unix seconds>_<uuid4>`.
pub fn from_conversation_id(id: &str) -> Option<Timestamp> {
    id.split('_')
        .filter(|p| p.len() == 10 && p.bytes().all(|b| b.is_ascii_digit()))
        .find_map(|p| parse(&Value::Integer(p.parse().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<String> {
        parse(&Value::Text(s.into())).map(|t| t.to_rfc3339())
    }

    #[test]
    fn legacy_formats() {
        let want = Some("2024-03-05T14:07:09.000Z".to_string());
        for s in [
            "2024-03-05 14:07:09",
            "2024-03-05T14:07:09",
            "2024-03-05T14:07:09Z",
            "2024-03-05T14:07:09+00:00",
            "2024-03-05 14:07:09+00:00",
            "2024-03-05T16:07:09+02:00",
            "1709647629",
            "1709647629000",
            " 2024-03-05 14:07:09 ",
            "Tue Mar  5 14:07:09 2024",
            "05.03.2024 14:07:09",
        ] {
            assert_eq!(text(s), want, "{s}");
        }
        assert_eq!(
            text("2024-03-05 14:07:09.250").as_deref(),
            Some("2024-03-05T14:07:09.250Z")
        );
        assert_eq!(
            text("05/03/2024 14:07").as_deref(),
            Some("2024-03-05T14:07:00.000Z")
        );
        assert_eq!(
            text("2024-03-05").as_deref(),
            Some("2024-03-05T00:00:00.000Z")
        );
        assert_eq!(
            parse(&Value::Integer(1_709_647_629)).map(|t| t.unix_seconds()),
            Some(1_709_647_629)
        );
        assert_eq!(
            parse(&Value::Real(1_709_647_629.5)).map(|t| t.unix_ms()),
            Some(1_709_647_629_500)
        );
        for bad in ["", "yesterday", "[timestamp]", "0", "13/13/2024 10:00"] {
            assert_eq!(text(bad), None, "{bad}");
        }
        assert_eq!(
            from_conversation_id("alice_1709647629_9f1c2d3e-0000-4000-8000-000000000000")
                .map(|t| t.unix_seconds()),
            Some(1_709_647_629)
        );
    }
}
