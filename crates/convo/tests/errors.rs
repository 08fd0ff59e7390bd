//! Bad input: one sentence on stderr, a non-zero exit, and the database unchanged.

mod common;

use common::Env;

#[test]
fn bad_input_fails_clearly_and_changes_nothing() {
    let env = Env::new();
    let id = env.weather("alice");
    env.weather("bob");
    env.ok(&["profile", "--user", "alice", "--set", "City=Paris"]);
    let before = env.snapshot(&["alice", "bob"]);

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "add",
                "--user",
                "alice",
                "conv_nope",
                "--role",
                "user",
                "hi",
            ],
            "not found",
        ),
        // Another user's conversation is not found for them.
        (
            vec!["add", "--user", "bob", &id, "--role", "user", "hi"],
            "not found",
        ),
        (vec!["show", "--user", "bob", &id], "not found"),
        (vec!["history", "--user", "bob", &id], "not found"),
        (vec!["rename", "--user", "bob", &id, "mine"], "not found"),
        (vec!["delete", "--user", "bob", &id, "--yes"], "not found"),
        (
            vec!["output", "--user", "bob", &id, "call_1", "x"],
            "not found",
        ),
        (
            vec!["new", "--user", "alice", "--persona", "../x"],
            "invalid persona",
        ),
        (
            vec!["save", "--user", "alice", "--persona", "a/b", "c1", "log"],
            "invalid persona",
        ),
        (
            vec!["call", "--user", "alice", &id, "f", "{city: Paris}"],
            "not valid JSON",
        ),
        (
            vec!["add", "--user", "alice", &id, "--role", "wizard", "hi"],
            "invalid role",
        ),
        (
            vec!["output", "--user", "alice", &id, "call_404", "x"],
            "no function call",
        ),
        (
            vec!["new", "--user", "alice", "--persona", "Helper", "--id", &id],
            "already exists",
        ),
        (
            vec![
                "new",
                "--user",
                "alice",
                "--persona",
                "Helper",
                "--meta",
                "novalue",
            ],
            "KEY=VALUE",
        ),
        (vec!["list", "--user", "alice", "--limit", "0"], "limit"),
        (
            vec!["list", "--user", "alice", "--cursor", "garbage"],
            "cursor",
        ),
        (vec!["search", "--user", "alice", "   "], "empty"),
        (
            vec!["profile", "--user", "alice", "--set", "nofield"],
            "FIELD=VALUE",
        ),
    ];
    for (args, want) in &cases {
        let err = env.fails(args, 2);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
        assert!(
            err.to_lowercase().contains(&want.to_lowercase()),
            "{args:?}: {err}"
        );
    }
    assert_eq!(
        env.snapshot(&["alice", "bob"]),
        before,
        "failed commands changed the database"
    );
}

#[test]
fn usage_errors_exit_2_and_postgres_is_refused() {
    let env = Env::new();
    env.fails(&["add", "--user", "alice"], 2);
    let out = env
        .bare()
        .args(["--db", "postgres://localhost/convo", "list", "--user", "a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PostgreSQL is not supported yet"));
}
