//! Runs the real `convo` binary against a database file in a temp dir.

#![allow(dead_code)]

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

/// A temp dir with a database path in it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("convo.db");
        Env { dir, db }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `convo --db <db>` with a clean environment (no settings file, no CONVO_*).
    pub fn cmd(&self) -> Command {
        let mut c = self.bare();
        c.arg("--db").arg(&self.db);
        c
    }

    /// `convo` with a clean environment and no `--db`.
    pub fn bare(&self) -> Command {
        let mut c = Command::cargo_bin("convo").unwrap();
        for (k, _) in std::env::vars() {
            if k.starts_with("CONVO_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"));
        c
    }

    /// Runs and returns stdout; panics with stderr on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "convo {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs, expects failure with `code`, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.cmd().args(args).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "convo {args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "no data on failure: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// A conversation of `user` with a message, a call and its output, and an answer.
    pub fn weather(&self, user: &str) -> String {
        let id = self.ok(&[
            "new",
            "--user",
            user,
            "--persona",
            "Helper",
            "--name",
            "Weather",
        ]);
        let id = id.trim().to_string();
        self.ok(&[
            "add",
            "--user",
            user,
            &id,
            "--role",
            "user",
            "What's the weather in Paris?",
        ]);
        self.ok(&[
            "call",
            "--user",
            user,
            &id,
            "get_weather",
            r#"{"city":"Paris"}"#,
            "--call-id",
            "call_1",
        ]);
        self.ok(&["output", "--user", user, &id, "call_1", "18°C, sunny"]);
        self.ok(&[
            "add",
            "--user",
            user,
            &id,
            "--role",
            "assistant",
            "It's 18°C and sunny.",
        ]);
        id
    }

    /// Everything a user could query, to compare before and after a failed command.
    pub fn snapshot(&self, users: &[&str]) -> String {
        let mut out = String::new();
        for u in users {
            out += &self.ok(&["export", "--user", u]);
            out += &self.ok(&["--json", "profile", "--user", u]);
            out += &self.ok(&["--json", "profile", "--user", u, "--history"]);
            out += &self.ok(&["--json", "jobs", "--user", u]);
        }
        out
    }
}
