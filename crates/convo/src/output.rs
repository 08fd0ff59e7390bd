//! Printing: aligned tables, JSON, times, and the one-sentence error message.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, Result};
use convo_core::Timestamp;
use serde::Serialize;

/// A mistake in how the command was called (caught before touching the database).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Fails with a usage error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// The error chain as one sentence, with a hint for the errors people hit most.
pub fn error_sentence(e: &anyhow::Error) -> String {
    let mut text = format!("{e:#}");
    if let Some(core) = e
        .chain()
        .find_map(|c| c.downcast_ref::<convo_core::Error>())
    {
        let hint = match core {
            convo_core::Error::ConversationNotFound(_) => {
                Some("it does not exist for this user; `convo list --user USER` shows theirs")
            }
            convo_core::Error::InvalidPersona { .. } => {
                Some("use letters, digits, space, '_', '-' or '.'")
            }
            convo_core::Error::UnknownCall(_) => {
                Some("`convo show --user USER CONVERSATION` lists its call ids")
            }
            _ => None,
        };
        if let Some(h) = hint {
            text.push_str("; ");
            text.push_str(h);
        }
    }
    text
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints one line on stdout.
pub fn line(text: impl std::fmt::Display) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(())
}

/// A time for people: UTC, to the second.
pub fn time(t: Timestamp) -> String {
    t.as_datetime().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Shortens `s` to `max` characters on one line, ending with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A table with aligned columns; the last column is not padded.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// True when only the header is there.
    pub fn is_empty(&self) -> bool {
        self.rows.len() == 1
    }

    /// Prints it on stdout.
    pub fn print(&self) -> Result<()> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = std::io::stdout().lock();
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// The text of an argument, or all of stdin when it is `-` (one trailing newline
/// dropped, as `echo` adds it).
pub fn text_arg(arg: &str) -> Result<String> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("could not read stdin")?;
    let mut text = String::from_utf8(buf)
        .map_err(|_| usage("stdin is not valid UTF-8 text; convo stores text only"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// Asks `question [y/N]` on a terminal; without a terminal, refuses unless `yes`.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(
            "refusing to proceed without confirmation: stdin is not a terminal, pass --yes",
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
