//! Settings precedence: defaults < file < environment < flags.

mod common;

use common::Env;

#[test]
fn defaults_file_env_and_flags_in_that_order() {
    let env = Env::new();
    let file = env.path("convo.toml");
    std::fs::write(
        &file,
        "[database]\nurl = \"from-file.db\"\n[server]\naddr = \"127.0.0.1:1111\"\nbody_limit = 1000\n[log]\nlevel = \"info\"\n[cognition]\nprovider = \"openai\"\nmodel = \"from-file\"\n",
    )
    .unwrap();
    let show = |c: &mut assert_cmd::Command| -> serde_json::Value {
        let out = c.arg("--json").arg("config").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // Defaults.
    let s = show(&mut env.bare());
    assert_eq!(s["server"]["addr"], "127.0.0.1:8080");
    assert_eq!(s["log"]["level"], "warn");
    assert_eq!(s["log"]["format"], "text");
    assert_eq!(s["database"]["url"], serde_json::Value::Null);

    // The file beats defaults.
    let s = show(env.bare().arg("--config").arg(&file));
    assert_eq!(s["server"]["addr"], "127.0.0.1:1111");
    assert_eq!(s["server"]["body_limit"], 1000);
    assert_eq!(s["database"]["url"], "from-file.db");
    assert_eq!(s["cognition"]["model"], "from-file");

    // The environment beats the file (CONVO_CONFIG names the file too).
    let s = show(
        env.bare()
            .env("CONVO_CONFIG", &file)
            .env("CONVO_SERVER_ADDR", "127.0.0.1:2222")
            .env("CONVO_SERVER_BODY_LIMIT", "2000")
            .env("CONVO_DATABASE_URL", "from-env.db")
            .env("CONVO_COGNITION_MODEL", "from-env")
            .env("CONVO_LOG_FORMAT", "json"),
    );
    assert_eq!(s["server"]["addr"], "127.0.0.1:2222");
    assert_eq!(s["server"]["body_limit"], 2000);
    assert_eq!(s["database"]["url"], "from-env.db");
    assert_eq!(s["cognition"]["model"], "from-env");
    assert_eq!(s["cognition"]["provider"], "openai");
    assert_eq!(s["log"]["format"], "json");
    assert_eq!(s["log"]["level"], "info");

    // Flags beat the environment.
    let s = show(
        env.bare()
            .env("CONVO_CONFIG", &file)
            .env("CONVO_DATABASE_URL", "from-env.db")
            .args(["--db", "from-flag.db", "-vv"]),
    );
    assert_eq!(s["database"]["url"], "from-flag.db");
    assert_eq!(s["log"]["level"], "debug");
}

#[test]
fn a_missing_or_invalid_settings_file_is_a_clear_error() {
    let env = Env::new();
    let out = env
        .bare()
        .args(["--config", "/nonexistent/convo.toml", "config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let bad = env.path("bad.toml");
    std::fs::write(&bad, "[server]\naddr = 5\n").unwrap();
    let out = env
        .bare()
        .arg("--config")
        .arg(&bad)
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("settings are invalid"));
}

#[test]
fn the_default_database_lives_in_the_platform_data_directory() {
    let env = Env::new();
    let out = env
        .bare()
        .args(["new", "--user", "alice", "--persona", "Helper"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env.dir
            .path()
            .join("data")
            .join("convo")
            .join("convo.db")
            .is_file()
    );
}
