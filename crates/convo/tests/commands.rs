//! Every command against a real database file, human and `--json` output.

mod common;

use common::Env;
use serde_json::Value;

#[test]
fn new_prints_the_id_and_json_has_the_documented_shape() {
    let env = Env::new();
    let id = env.ok(&["new", "--user", "alice", "--persona", "Helper"]);
    assert!(id.trim().starts_with("conv_"), "{id}");
    assert_eq!(id.lines().count(), 1);

    let c = env.json(&[
        "new",
        "--user",
        "alice",
        "--persona",
        "Code Genius",
        "--id",
        "my-conv",
        "--name",
        "Trip",
        "--meta",
        "source=web",
        "--meta",
        "lang=fr",
    ]);
    assert_eq!(c["id"], "my-conv");
    assert_eq!(c["user"], "alice");
    assert_eq!(c["persona"], "Code Genius");
    assert_eq!(c["name"], "Trip");
    assert_eq!(c["name_set_by_person"], true);
    assert_eq!(
        c["metadata"],
        serde_json::json!({"lang": "fr", "source": "web"})
    );
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(c["updated_at"].is_string());
    assert_eq!(c["has_chat_log"], false);
}

#[test]
fn a_tool_call_round_trip_comes_back_as_chat_completions_history() {
    let env = Env::new();
    let id = env.weather("alice");
    let h = env.json(&["history", "--user", "alice", &id]);
    let m = h["messages"].as_array().unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(
        m[0],
        serde_json::json!({"role": "user", "content": "What's the weather in Paris?"})
    );
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(m[1]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(
        m[1]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        m[2],
        serde_json::json!({"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"})
    );
    assert_eq!(m[3]["content"], "It's 18°C and sunny.");
    assert!(h["tokens"].as_u64().unwrap() > 0);
    assert_eq!(h["truncated"], false);

    let text = env.ok(&["history", "--user", "alice", &id]);
    assert!(
        text.contains("user: What's the weather in Paris?"),
        "{text}"
    );
    assert!(
        text.contains("get_weather({\"city\":\"Paris\"}) [call_1]"),
        "{text}"
    );
    assert!(text.contains("tool: 18°C, sunny [call_1]"), "{text}");

    // A budget keeps the newest turns only.
    let cut = env.json(&["history", "--user", "alice", &id, "--max-tokens", "12"]);
    assert_eq!(cut["truncated"], true);
    assert!(cut["messages"].as_array().unwrap().len() < 4);

    let a = env.json(&["history", "--user", "alice", &id, "--format", "anthropic"]);
    let am = a["messages"].as_array().unwrap();
    assert_eq!(am[1]["content"][0]["type"], "tool_use");
    assert_eq!(am[2]["content"][0]["type"], "tool_result");
}

#[test]
fn add_call_and_output_print_ids_and_read_stdin() {
    let env = Env::new();
    let id = env.ok(&["new", "--user", "alice", "--persona", "Helper"]);
    let id = id.trim();
    let msg = env.ok(&[
        "add",
        "--user",
        "alice",
        id,
        "--role",
        "assistant",
        "Let me check.",
    ]);
    assert!(msg.trim().starts_with("msg_"));

    let out = env
        .cmd()
        .args([
            "call",
            "--user",
            "alice",
            id,
            "lookup",
            "-",
            "--message",
            msg.trim(),
        ])
        .write_stdin("{\"q\": \"x\"}\n")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    let (item, call) = line.trim().split_once(' ').unwrap();
    assert!(
        item.starts_with("fc_") && call.starts_with("call_"),
        "{line}"
    );

    let out = env
        .cmd()
        .args(["output", "--user", "alice", id, call, "-"])
        .write_stdin("line one\nline two\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = env
        .cmd()
        .args(["add", "--user", "alice", id, "--role", "user", "-"])
        .write_stdin("from stdin\n")
        .output()
        .unwrap();
    assert!(out.status.success());

    let shown = env.json(&["show", "--user", "alice", id]);
    let items = shown["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[1]["type"], "function_call");
    assert_eq!(items[1]["arguments"], "{\"q\": \"x\"}");
    assert_eq!(items[1]["message_id"], msg.trim());
    assert_eq!(items[2]["type"], "function_call_output");
    assert_eq!(items[2]["output"], "line one\nline two");
    assert_eq!(items[3]["content"], "from stdin");

    let j = env.json(&[
        "add",
        "--user",
        "alice",
        id,
        "--role",
        "system",
        "Be brief.",
    ]);
    assert_eq!(j["type"], "message");
    assert_eq!(j["role"], "system");
    assert!(j["id"].as_str().unwrap().starts_with("msg_"));
}

#[test]
fn show_puts_each_call_with_its_output() {
    let env = Env::new();
    let id = env.weather("alice");
    let text = env.ok(&["show", "--user", "alice", &id]);
    assert!(text.starts_with(&format!("{id}  Weather")), "{text}");
    assert!(text.contains("persona: Helper"));
    let call = text
        .lines()
        .position(|l| l.contains("get_weather({\"city\":\"Paris\"})  [call_1]"))
        .unwrap();
    assert!(
        text.lines().nth(call + 1).unwrap().trim() == "-> 18°C, sunny",
        "{text}"
    );
    let j = env.json(&["show", "--user", "alice", &id]);
    assert_eq!(j["conversation"]["id"], id.as_str());
    assert_eq!(j["items"].as_array().unwrap().len(), 4);
}

#[test]
fn list_is_newest_first_pages_with_a_cursor_and_filters_by_persona() {
    let env = Env::new();
    let mut ids = Vec::new();
    for (i, persona) in ["Helper", "Helper", "Coder"].iter().enumerate() {
        let id = env.ok(&[
            "new",
            "--user",
            "alice",
            "--persona",
            persona,
            "--name",
            &format!("c{i}"),
        ]);
        ids.push(id.trim().to_string());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    env.ok(&["new", "--user", "bob", "--persona", "Helper"]);

    let page = env.json(&["list", "--user", "alice", "--limit", "2"]);
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], ids[2].as_str());
    assert_eq!(data[1]["id"], ids[1].as_str());
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = env.json(&[
        "list", "--user", "alice", "--limit", "2", "--cursor", cursor,
    ]);
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(next["data"][0]["id"], ids[0].as_str());
    assert_eq!(next["has_more"], false);

    let helper = env.json(&["list", "--user", "alice", "--persona", "Helper"]);
    assert_eq!(helper["data"].as_array().unwrap().len(), 2);

    let table = env.ok(&["list", "--user", "alice"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PERSONA") && lines[0].contains("NAME")
    );
    assert_eq!(lines.len(), 4);
    // Columns line up.
    let col = lines[0].find("PERSONA").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l[col..].starts_with("Helper") || l[col..].starts_with("Coder"))
    );
    assert!(
        env.ok(&["list", "--user", "carol"])
            .contains("carol has no conversations")
    );
}

#[test]
fn rename_delete_and_log() {
    let env = Env::new();
    let id = env.weather("alice");
    let r = env.json(&["rename", "--user", "alice", &id, "Paris weather"]);
    assert_eq!(r["name"], "Paris weather");
    let job = env.json(&["rename", "--user", "alice", &id, "--auto"]);
    assert_eq!(job["kind"], "name");
    assert_eq!(job["state"], "pending");

    let log = env.ok(&["log", "--user", "alice", &id]);
    assert!(log.contains("What's the weather in Paris?"), "{log}");

    // Not a terminal and no --yes: refused, nothing deleted.
    let err = env.fails(&["delete", "--user", "alice", &id], 2);
    assert!(err.contains("--yes"), "{err}");
    env.ok(&["show", "--user", "alice", &id]);

    let d = env.json(&["delete", "--user", "alice", &id, "--yes"]);
    assert_eq!(d["deleted"], true);
    assert_eq!(d["items"], 4);
    let err = env.fails(&["show", "--user", "alice", &id], 2);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn save_stores_the_chat_log_and_queues_jobs() {
    let env = Env::new();
    let s = env.json(&[
        "save",
        "--user",
        "alice",
        "--persona",
        "Helper",
        "alice_1700000000_x",
        "User: hi\nAssistant: hello",
    ]);
    assert_eq!(s["created"], true);
    assert_eq!(s["jobs_queued"], 2);
    assert_eq!(s["conversation"]["has_chat_log"], true);
    let out = env
        .cmd()
        .args([
            "save",
            "--user",
            "alice",
            "--persona",
            "Helper",
            "alice_1700000000_x",
            "-",
            "--name",
            "Greeting",
        ])
        .write_stdin("User: hi again\n")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("updated"));
    assert_eq!(
        env.ok(&["log", "--user", "alice", "alice_1700000000_x"]),
        "User: hi again\n"
    );
    let log = env.json(&["log", "--user", "alice", "alice_1700000000_x"]);
    assert_eq!(log["chat_log"], "User: hi again");

    let jobs = env.json(&["jobs", "--user", "alice"]);
    let kinds: Vec<&str> = jobs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"name") && kinds.contains(&"profile"),
        "{kinds:?}"
    );
    let table = env.ok(&["jobs", "--state", "pending"]);
    assert!(table.lines().next().unwrap().contains("ATTEMPTS"));
    assert!(table.contains("0/5"), "{table}");
    assert!(env.ok(&["jobs", "--state", "failed"]).contains("no jobs"));
    let err = env.fails(&["jobs", "--state", "sleeping"], 2);
    assert!(err.contains("sleeping"), "{err}");
}

#[test]
fn search_ranks_hits_with_snippets() {
    let env = Env::new();
    let id = env.weather("alice");
    let other = env.ok(&["new", "--user", "alice", "--persona", "Coder"]);
    env.ok(&[
        "add",
        "--user",
        "alice",
        other.trim(),
        "--role",
        "user",
        "Rust weather station code",
    ]);
    env.weather("bob");

    let hits = env.json(&["search", "--user", "alice", "weather"]);
    let data = hits["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "bob's messages are not alice's: {hits}");
    assert!(
        data.iter()
            .all(|h| h["snippet"].as_str().unwrap().contains("[weather]"))
    );
    for key in [
        "conversation_id",
        "conversation_name",
        "persona",
        "item_id",
        "role",
        "score",
        "created_at",
    ] {
        assert!(data[0].get(key).is_some(), "{key}");
    }
    let only = env.json(&[
        "search",
        "--user",
        "alice",
        "weather",
        "--persona",
        "Helper",
    ]);
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    assert_eq!(only["data"][0]["conversation_id"], id.as_str());
    let table = env.ok(&["search", "--user", "alice", "paris"]);
    assert!(
        table.contains("SNIPPET") && table.contains("[Paris]"),
        "{table}"
    );
}

#[test]
fn profile_set_remove_history_export_import() {
    let env = Env::new();
    env.ok(&[
        "profile",
        "--user",
        "alice",
        "--set",
        "Home city=Paris",
        "--observations",
        "said so",
    ]);
    env.ok(&["profile", "--user", "alice", "--set", "Job=Baker"]);
    let p = env.json(&["profile", "--user", "alice"]);
    let fields = p["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0]["name"], "Home city");
    assert_eq!(fields[0]["content"], "Paris");
    assert_eq!(fields[0]["observations"], "said so");

    let exported = env.ok(&["profile", "--user", "alice", "--export"]);
    let seed: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(seed["Home city"]["Content"], "Paris");
    assert_eq!(seed["Job"]["observations"], "");

    let r = env.json(&["profile", "--user", "alice", "--remove", "Job"]);
    assert_eq!(r["removed"], true);
    assert!(
        env.ok(&["profile", "--user", "alice", "--remove", "Job"])
            .contains("nothing removed")
    );

    let h = env.json(&["profile", "--user", "alice", "--history"]);
    let ops: Vec<&str> = h["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert_eq!(h["data"][0]["field"], "Job");
    assert_eq!(h["data"][0]["after"], Value::Null);

    let file = env.path("bob.json");
    std::fs::write(&file, exported).unwrap();
    let i = env.json(&[
        "profile",
        "--user",
        "bob",
        "--import",
        file.to_str().unwrap(),
    ]);
    assert_eq!(i["fields_changed"], 2);
    let bob = env.json(&["profile", "--user", "bob"]);
    assert_eq!(bob["fields"].as_array().unwrap().len(), 2);
    assert!(env.ok(&["profile", "--user", "carol"]).contains("empty"));
    let table = env.ok(&["profile", "--user", "bob"]);
    assert!(table.starts_with("FIELD"), "{table}");
}

#[test]
fn erase_removes_a_user_after_confirmation_and_prints_the_receipt() {
    let env = Env::new();
    env.weather("alice");
    env.weather("alice");
    env.weather("bob");
    env.ok(&["profile", "--user", "alice", "--set", "City=Paris"]);
    let err = env.fails(&["erase", "--user", "alice"], 2);
    assert!(err.contains("--yes"), "{err}");
    let r = env.json(&["erase", "--user", "alice", "--yes"]);
    assert_eq!(r["conversations"], 2);
    assert_eq!(r["items"], 8);
    assert_eq!(r["profile_fields"], 1);
    assert_eq!(
        env.json(&["list", "--user", "alice"])["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        env.json(&["list", "--user", "bob"])["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let text = env.ok(&["erase", "--user", "bob", "--yes"]);
    assert!(
        text.contains("conversations") && text.contains("items"),
        "{text}"
    );
}

#[test]
fn completions_and_help_teach_by_example() {
    let env = Env::new();
    let bash = env.ok(&["completions", "bash"]);
    assert!(bash.contains("convo") && bash.contains("import-scout"));
    for cmd in [
        "new",
        "add",
        "call",
        "output",
        "save",
        "history",
        "log",
        "list",
        "show",
        "rename",
        "delete",
        "search",
        "profile",
        "jobs",
        "erase",
        "export",
        "import",
        "import-scout",
        "completions",
    ] {
        let help = env.ok(&[cmd, "--help"]);
        assert!(
            help.contains("Example"),
            "`convo {cmd} --help` has an example"
        );
    }
}
