//! `convo export` / `convo import`: JSON Lines, round trips, all-or-nothing.

mod common;

use common::Env;
use serde_json::Value;

#[test]
fn export_import_export_is_byte_identical() {
    let src = Env::new();
    let a = src.weather("alice");
    src.ok(&[
        "new",
        "--user",
        "alice",
        "--persona",
        "Coder",
        "--id",
        "imported-1",
        "--meta",
        "k=v",
        "--meta",
        "a=b",
    ]);
    src.ok(&[
        "add",
        "--user",
        "alice",
        "imported-1",
        "--role",
        "system",
        "Be brief.\nVery brief.",
    ]);
    src.ok(&[
        "save",
        "--user",
        "alice",
        "--persona",
        "Helper",
        "alice_1700000000_abc",
        "User: hi\nAssistant: hello",
    ]);
    src.ok(&["rename", "--user", "alice", &a, "Weather in Paris"]);
    src.weather("bob");

    let file = src.path("alice.jsonl");
    src.ok(&["export", "--user", "alice", "-o", file.to_str().unwrap()]);
    let first = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        first,
        src.ok(&["export", "--user", "alice"]),
        "-o and stdout agree"
    );
    assert_eq!(
        first.lines().count(),
        3,
        "bob's conversation is not alice's"
    );
    let line: Value =
        serde_json::from_str(first.lines().find(|l| l.contains(&a)).unwrap()).unwrap();
    for key in [
        "id",
        "user",
        "persona",
        "name",
        "name_set_by_person",
        "created_at",
        "updated_at",
        "metadata",
        "items",
    ] {
        assert!(line.get(key).is_some(), "{key} in {line}");
    }
    assert_eq!(line["items"].as_array().unwrap().len(), 4);
    assert_eq!(line["items"][1]["type"], "function_call");
    assert!(first.contains("\"chat_log\":\"User: hi\\nAssistant: hello\""));

    let dst = Env::new();
    let summary = dst.json(&["import", file.to_str().unwrap()]);
    assert_eq!(summary["imported"], 3);
    assert_eq!(summary["items"], 5);
    assert_eq!(dst.ok(&["export", "--user", "alice"]), first);

    // Again: everything exists and is skipped; nothing changes.
    let again = dst.json(&["import", file.to_str().unwrap()]);
    assert_eq!(again["imported"], 0);
    assert_eq!(again["skipped"].as_array().unwrap().len(), 3);
    assert_eq!(dst.ok(&["export", "--user", "alice"]), first);

    // --replace puts back what the file says.
    dst.ok(&[
        "add",
        "--user",
        "alice",
        &a,
        "--role",
        "user",
        "an extra message",
    ]);
    assert_ne!(dst.ok(&["export", "--user", "alice"]), first);
    let replaced = dst.json(&["import", "--replace", file.to_str().unwrap()]);
    assert_eq!(replaced["replaced"], 3);
    assert_eq!(dst.ok(&["export", "--user", "alice"]), first);

    // The imported conversation works like any other.
    let h = dst.json(&["history", "--user", "alice", &a]);
    assert_eq!(h["messages"][2]["tool_call_id"], "call_1");
    let by_persona = dst.ok(&["export", "--user", "alice", "--persona", "Coder"]);
    assert_eq!(by_persona.lines().count(), 1);
    assert!(by_persona.contains("imported-1"));
}

#[test]
fn import_reads_stdin() {
    let src = Env::new();
    src.weather("alice");
    let dump = src.ok(&["export", "--user", "alice"]);
    let dst = Env::new();
    let out = dst
        .cmd()
        .args(["import", "-"])
        .write_stdin(dump.clone())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 1"));
    assert_eq!(dst.ok(&["export", "--user", "alice"]), dump);
}

#[test]
fn an_unreadable_line_is_named_and_nothing_is_imported() {
    let src = Env::new();
    src.weather("alice");
    src.weather("alice");
    let dump = src.ok(&["export", "--user", "alice"]);
    let mut lines: Vec<String> = dump.lines().map(str::to_string).collect();
    lines.insert(1, "{\"id\": \"broken\"".to_string());
    let file = src.path("bad.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();

    let dst = Env::new();
    dst.weather("carol");
    let before = dst.snapshot(&["alice", "carol"]);
    let err = dst.fails(&["import", file.to_str().unwrap()], 2);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(dst.snapshot(&["alice", "carol"]), before);

    // A readable line with an invalid persona is refused the same way.
    let bad_persona = dump
        .lines()
        .next()
        .unwrap()
        .replace("\"persona\":\"Helper\"", "\"persona\":\"../x\"");
    std::fs::write(
        &file,
        format!("{}\n{bad_persona}\n", dump.lines().nth(1).unwrap()),
    )
    .unwrap();
    let err = dst.fails(&["import", file.to_str().unwrap()], 2);
    assert!(err.contains("line 2") && err.contains("persona"), "{err}");
    assert_eq!(dst.snapshot(&["alice", "carol"]), before);
}

#[test]
fn import_never_replaces_another_users_conversation() {
    let env = Env::new();
    let id = env.weather("alice");
    let alice = env.ok(&["export", "--user", "alice"]);
    let forged = alice.replace("\"user\":\"alice\"", "\"user\":\"mallory\"");
    let file = env.path("forged.jsonl");
    std::fs::write(&file, forged).unwrap();
    let r = env.json(&["import", "--replace", file.to_str().unwrap()]);
    assert_eq!(r["imported"], 0);
    assert_eq!(r["replaced"], 0);
    assert!(
        r["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("another user")
    );
    assert_eq!(env.ok(&["export", "--user", "alice"]), alice);
    env.ok(&["show", "--user", "alice", &id]);
}

#[test]
fn export_all_covers_every_user_and_round_trips() {
    let env = Env::new();
    env.weather("alice");
    env.weather("bob");
    let all = env.ok(&["export", "--all"]);
    assert_eq!(all.lines().count(), 2);
    assert!(all.contains("\"user\":\"alice\"") && all.contains("\"user\":\"bob\""));
    let file = env.path("all.jsonl");
    std::fs::write(&file, &all).unwrap();
    let fresh = Env::new();
    fresh.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(fresh.ok(&["export", "--all"]), all);
}

#[test]
fn content_parts_verbatim_arguments_and_dangling_outputs_survive_a_round_trip() {
    // Written by hand as another tool might: keys out of order, a time with a fraction.
    let line = r#"{"id":"c-parts","user":"u","persona":"Helper","name":"","name_set_by_person":false,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-01T00:00:05.5Z","metadata":{"z":"1","a":"2"},"items":[{"id":"m1","created_at":"2024-01-01T00:00:01Z","type":"message","role":"user","content":[{"type":"input_text","text":"look"},{"type":"input_image","image_url":"https://x/y.png","detail":"auto"}]},{"id":"f1","created_at":"2024-01-01T00:00:02Z","type":"function_call","call_id":"c1","name":"n","arguments":"not json at all","message_id":"m1"},{"id":"o1","created_at":"2024-01-01T00:00:03Z","type":"function_call_output","call_id":"c1","output":[{"type":"output_text","text":"r"}]},{"id":"o2","created_at":"2024-01-01T00:00:04Z","type":"function_call_output","call_id":"nope","output":"dangling"}]}"#;
    let env = Env::new();
    let file = env.path("parts.jsonl");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let out = env
        .cmd()
        .args(["--json", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "quiet in pipes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = env.ok(&["export", "--user", "u"]);
    let c: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(c["metadata"], serde_json::json!({"a": "2", "z": "1"}));
    assert_eq!(c["updated_at"], "2024-01-01T00:00:05.500Z");
    assert_eq!(c["items"][0]["content"][1]["type"], "input_image");
    assert_eq!(c["items"][1]["arguments"], "not json at all");
    assert_eq!(c["items"][1]["message_id"], "m1");
    assert_eq!(c["items"][3]["call_id"], "nope");

    let again = Env::new();
    let file2 = again.path("first.jsonl");
    std::fs::write(&file2, &first).unwrap();
    again.ok(&["import", file2.to_str().unwrap()]);
    assert_eq!(again.ok(&["export", "--user", "u"]), first);
}
