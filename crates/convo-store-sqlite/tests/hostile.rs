//! The hostile-input catalogue at the library level: `ConversationManager` over a
//! real SQLite file. Each test feeds one kind of bad input, checks the typed error,
//! and checks that the database file is byte-for-byte the same in content after
//! (every row of every table, read through a separate connection).

use std::sync::Arc;

use convo_core::{
    ConversationManager, Error, FieldContent, Metadata, NewConversation, NewItem, PersonaName,
    Role, Store, UserId,
};
use convo_store_sqlite::{SqliteOptions, SqliteStore};

/// Path-like, NUL and control-character names a caller might try.
const NASTY_NAMES: &[&str] = &[
    "../etc/passwd",
    "..\\..\\windows",
    "a/b",
    "nul\0byte",
    "bell\x07",
    "line\nbreak",
    "tab\there",
    "esc\x1b[31m",
    "del\x7f",
    "",
];

/// SQL metacharacters, quoting and FTS5 syntax: all must be stored and returned
/// verbatim, and never change the query that stores them.
const SQLISH: &[&str] = &[
    "'; DROP TABLE items; --",
    "\" OR 1=1 --",
    "Robert'); DELETE FROM conversations;--",
    "%_\\%",
    "a' UNION SELECT hash FROM api_keys --",
    "NEAR(x y) OR \"z\" AND * ^ :col",
    "`backtick` [bracket] {brace}",
    "$1 ?1 :name @p",
];

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<dyn Store>,
}

impl Fixture {
    /// A store with one conversation of alice's (two messages and a function call)
    /// and one of bob's, so "unchanged" has something to compare.
    async fn new() -> (Fixture, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("convo.db");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&path, SqliteOptions::default())
                .await
                .unwrap(),
        );
        let alice = ConversationManager::new(store.clone(), "alice", "Helper").unwrap();
        let a = alice.conversation_id();
        alice
            .add_message("alice", &a, Role::User, "hello", None)
            .await
            .unwrap();
        alice
            .add_message("alice", &a, Role::Assistant, "hi", None)
            .await
            .unwrap();
        alice
            .add_function_call("alice", &a, "lookup", r#"{"q":1}"#, None)
            .await
            .unwrap();
        let bob = ConversationManager::new(store.clone(), "bob", "Helper").unwrap();
        let b = bob.conversation_id();
        bob.add_message("bob", &b, Role::User, "bob's secret", None)
            .await
            .unwrap();
        (
            Fixture {
                _dir: dir,
                path,
                store,
            },
            a,
            b,
        )
    }

    fn manager(&self, user: &str) -> ConversationManager {
        ConversationManager::new(self.store.clone(), user, "Helper").unwrap()
    }

    /// Every row of every table, as text, through a separate read-only connection.
    fn snapshot(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut out = Vec::new();
        for t in tables {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM \"{}\"", t.replace('"', "\"\"")))
                .unwrap();
            let n = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let cells: Vec<String> = (0..n)
                    .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                    .collect();
                out.push(format!("{t}: {}", cells.join(" | ")));
            }
        }
        out
    }
}

/// Runs `f`, which must fail, and checks the store did not change.
macro_rules! refused {
    ($fx:expr, $call:expr, $pat:pat) => {{
        let before = $fx.snapshot();
        let r = $call.await;
        match r {
            Err($pat) => {}
            Err(e) => panic!("{}: wrong error: {e:?}", stringify!($call)),
            Ok(_) => panic!("{}: was accepted", stringify!($call)),
        }
        assert_eq!(
            before,
            $fx.snapshot(),
            "{} changed the store",
            stringify!($call)
        );
    }};
}

#[tokio::test]
async fn path_like_and_control_persona_names_are_refused() {
    let (fx, _, _) = Fixture::new().await;
    for name in NASTY_NAMES
        .iter()
        .chain(&["..", ".hidden", " padded", &*"p".repeat(65)])
    {
        match PersonaName::new(*name) {
            Err(Error::InvalidPersona { .. }) => {}
            other => panic!("persona {name:?}: {other:?}"),
        }
        assert!(
            ConversationManager::new(fx.store.clone(), "alice", name).is_err(),
            "manager for persona {name:?}"
        );
        let m = fx.manager("alice");
        refused!(
            fx,
            m.insert_conversation("alice", "c1", "log", None, name),
            Error::InvalidPersona { .. }
        );
    }
}

#[tokio::test]
async fn control_characters_in_user_ids_are_refused() {
    let (fx, a, _) = Fixture::new().await;
    for user in [
        "nul\0byte",
        "bell\x07",
        "line\nbreak",
        "esc\x1b[31m",
        "",
        &*"u".repeat(257),
    ] {
        assert!(matches!(UserId::new(user), Err(Error::InvalidUser { .. })));
        let m = fx.manager("alice");
        refused!(
            fx,
            m.add_message(user, &a, Role::User, "x", None),
            Error::InvalidUser { .. }
        );
    }
}

#[tokio::test]
async fn path_like_user_ids_are_opaque_and_stay_apart() {
    // A user id is opaque text: `../bob` is a different user from `bob`, never a path.
    let (fx, _, b) = Fixture::new().await;
    let m = fx.manager("../bob");
    refused!(
        fx,
        m.get_conversation("../bob", &b),
        Error::ConversationNotFound(_)
    );
    let id = m.conversation_id();
    m.add_message("../bob", &id, Role::User, "dots", None)
        .await
        .unwrap();
    assert_eq!(m.all_items("../bob", &id).await.unwrap().len(), 1);
    assert_eq!(
        fx.manager("bob").all_items("bob", &b).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn bad_conversation_ids_are_refused() {
    let (fx, _, _) = Fixture::new().await;
    let m = fx.manager("alice");
    let long = "i".repeat(257);
    for id in NASTY_NAMES
        .iter()
        .copied()
        .chain([" lead", "trail ", long.as_str()])
    {
        assert!(
            convo_core::ids::validate("conversation", id).is_err(),
            "{id:?}"
        );
        refused!(
            fx,
            m.add_message("alice", id, Role::User, "x", None),
            Error::InvalidId { .. }
        );
    }
}

#[tokio::test]
async fn content_over_the_limit_is_refused_whole() {
    let (fx, a, _) = Fixture::new().await;
    let m = fx.manager("alice");
    let ten_mib = "x".repeat(10 << 20);
    refused!(
        fx,
        m.add_message("alice", &a, Role::User, ten_mib.as_str(), None),
        Error::TooLarge {
            field: "content",
            ..
        }
    );
    refused!(
        fx,
        m.insert_conversation("alice", &a, &ten_mib, None, "Helper"),
        Error::TooLarge {
            field: "chat_log",
            ..
        }
    );
    // One oversized item in a batch rejects the whole batch.
    refused!(
        fx,
        m.append_items(
            "alice",
            &a,
            vec![
                NewItem::message(Role::User, "fine"),
                NewItem::message(Role::User, ten_mib.clone()),
            ],
        ),
        Error::TooLarge { .. }
    );
    refused!(
        fx,
        m.add_function_call("alice", &a, "f", &ten_mib, None),
        Error::TooLarge { .. }
    );
}

#[tokio::test]
async fn deeply_nested_and_huge_json_arguments_are_kept_verbatim() {
    // Arguments are the model's text, kept as given: a 100k-deep array must not blow
    // the stack anywhere on the way (store, history rendering, transcript).
    let (fx, a, _) = Fixture::new().await;
    let m = fx.manager("alice");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let id = m
        .add_function_call("alice", &a, "deep", &deep, None)
        .await
        .unwrap();
    let item = m.get_item("alice", &a, &id).await.unwrap();
    let call_id = match item.body {
        convo_core::ItemBody::FunctionCall {
            arguments, call_id, ..
        } => {
            assert_eq!(arguments, deep);
            call_id
        }
        other => panic!("{other:?}"),
    };
    // History shows answered calls only: answer it, then render.
    m.add_function_call_output("alice", &a, &call_id, "ok", None)
        .await
        .unwrap();
    let h = m.get_history("alice", &a).await.unwrap();
    assert!(serde_json::to_string(&h.messages).unwrap().contains("deep"));
    m.get_chat_log("alice", &a).await.unwrap();

    // Typed content parts nested deep are kept too; a part that is not an object
    // with a string type is refused.
    let mut v = serde_json::json!("leaf");
    for _ in 0..64 {
        v = serde_json::json!({ "n": v });
    }
    let parts = convo_core::Content::Parts(vec![
        serde_json::json!({"type": "input_text", "text": "t", "extra": v}),
    ]);
    let id = m
        .add_message("alice", &a, Role::User, parts.clone(), None)
        .await
        .unwrap();
    match m.get_item("alice", &a, &id).await.unwrap().body {
        convo_core::ItemBody::Message { content, .. } => assert_eq!(content, parts),
        other => panic!("{other:?}"),
    }
    let bad = convo_core::Content::Parts(vec![serde_json::json!(["not", "an", "object"])]);
    refused!(
        fx,
        m.add_message("alice", &a, Role::User, bad, None),
        Error::Invalid { .. }
    );
}

#[tokio::test]
async fn sql_metacharacters_are_stored_and_returned_verbatim() {
    let (fx, _, _) = Fixture::new().await;
    for (n, s) in SQLISH.iter().enumerate() {
        let user = format!("u{n}{s}");
        let m = ConversationManager::new(fx.store.clone(), &user, "Helper").unwrap();
        let id = format!("c{n}{}", s.replace(['/', '\\'], "_"));
        let mut metadata = Metadata::new();
        metadata.insert(s.to_string(), s.to_string());
        let (c, _) = m
            .create_conversation(
                NewConversation {
                    id: Some(id.clone()),
                    user: UserId::new(&*user).unwrap(),
                    persona: PersonaName::new("Helper").unwrap(),
                    name: Some(s.to_string()),
                    metadata: metadata.clone(),
                    created_at: None,
                },
                vec![NewItem::message(Role::User, format!("needle{n} {s}"))],
            )
            .await
            .unwrap();
        assert_eq!(c.id, id);
        let got = m.get_conversation(&user, &id).await.unwrap();
        assert_eq!((got.name.as_str(), &got.metadata), (*s, &metadata));
        assert_eq!(got.user.as_str(), user);
        let fc = m.add_function_call(&user, &id, s, s, None).await.unwrap();
        match m.get_item(&user, &id, &fc).await.unwrap().body {
            convo_core::ItemBody::FunctionCall {
                name, arguments, ..
            } => {
                assert_eq!((name.as_str(), arguments.as_str()), (*s, *s));
            }
            other => panic!("{other:?}"),
        }
        m.set_profile_field(&user, s, FieldContent::Text(s.to_string()), s)
            .await
            .unwrap();
        let p = m.get_profile(&user).await.unwrap();
        assert_eq!(p.get(s).unwrap().content, FieldContent::Text(s.to_string()));
        // The search text is data for FTS5, never syntax: any text answers, no error.
        // (Text with no word at all is a clear validation error instead.)
        let hits = m.search(&user, s, None, 10).await;
        assert!(
            matches!(hits, Ok(_) | Err(Error::Invalid { field: "query", .. })),
            "search {s:?}: {hits:?}"
        );
        let hits = m
            .search(&user, &format!("needle{n}"), None, 10)
            .await
            .unwrap();
        assert_eq!(hits.len(), 1, "search needle{n}");
        // And nobody else's rows moved: alice and bob still have theirs.
        assert_eq!(m.list_users().await.unwrap().len(), 3 + n);
    }
    let conn = rusqlite::Connection::open(&fx.path).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[tokio::test]
async fn another_users_conversation_is_not_found() {
    let (fx, a, b) = Fixture::new().await;
    let m = fx.manager("alice");
    refused!(
        fx,
        m.get_conversation("alice", &b),
        Error::ConversationNotFound(_)
    );
    refused!(fx, m.all_items("alice", &b), Error::ConversationNotFound(_));
    refused!(
        fx,
        m.get_history("alice", &b),
        Error::ConversationNotFound(_)
    );
    refused!(
        fx,
        m.delete_conversation("alice", &b),
        Error::ConversationNotFound(_)
    );
    refused!(
        fx,
        m.rename_conversation("alice", &b, "mine"),
        Error::ConversationNotFound(_)
    );
    refused!(
        fx,
        m.set_metadata("alice", &b, Metadata::new()),
        Error::ConversationNotFound(_)
    );
    refused!(
        fx,
        m.get_chat_log("alice", &b),
        Error::ConversationNotFound(_)
    );
    refused!(
        fx,
        m.request_name("alice", &b),
        Error::ConversationNotFound(_)
    );
    // Appending as alice to bob's id must not create a second conversation with it.
    refused!(
        fx,
        m.add_message("alice", &b, Role::User, "intruder", None),
        Error::ConversationNotFound(_) | Error::ConversationExists(_)
    );
    let bob_item = fx.manager("bob").all_items("bob", &b).await.unwrap()[0]
        .id
        .clone();
    refused!(
        fx,
        m.get_item("alice", &b, &bob_item),
        Error::ConversationNotFound(_)
    );
    refused!(
        fx,
        m.get_item("alice", &a, &bob_item),
        Error::ItemNotFound(_)
    );
    refused!(
        fx,
        m.delete_item("alice", &a, &bob_item),
        Error::ItemNotFound(_)
    );
    assert!(!m.conversation_exists("alice", &b).await.unwrap());
    let hits = m.search("alice", "secret", None, 10).await.unwrap();
    assert!(hits.is_empty(), "bob's words leaked to alice: {hits:?}");
}

#[tokio::test]
async fn a_function_call_output_for_an_unknown_call_is_refused() {
    let (fx, a, b) = Fixture::new().await;
    let m = fx.manager("alice");
    refused!(
        fx,
        m.add_function_call_output("alice", &a, "call_nope", "42", None),
        Error::UnknownCall(_)
    );
    // A call id that exists only in another user's conversation is unknown here too.
    let bob = fx.manager("bob");
    bob.add_message("bob", &b, Role::Assistant, "calling", None)
        .await
        .unwrap();
    let fc = bob
        .add_function_call("bob", &b, "f", "{}", None)
        .await
        .unwrap();
    let call_id = match bob.get_item("bob", &b, &fc).await.unwrap().body {
        convo_core::ItemBody::FunctionCall { call_id, .. } => call_id,
        other => panic!("{other:?}"),
    };
    refused!(
        fx,
        m.add_function_call_output("alice", &a, &call_id, "stolen", None),
        Error::UnknownCall(_)
    );
}

#[tokio::test]
async fn bad_names_and_metadata_are_refused() {
    let (fx, a, _) = Fixture::new().await;
    let m = fx.manager("alice");
    for name in ["two\nlines", "nul\0", &*"n".repeat(10_000)] {
        refused!(
            fx,
            m.rename_conversation("alice", &a, name),
            Error::Invalid { field: "name", .. }
        );
    }
    let mut too_many = Metadata::new();
    for i in 0..17 {
        too_many.insert(format!("k{i}"), "v".into());
    }
    refused!(
        fx,
        m.set_metadata("alice", &a, too_many),
        Error::Invalid {
            field: "metadata",
            ..
        }
    );
    let mut long_value = Metadata::new();
    long_value.insert("k".into(), "v".repeat(513));
    refused!(
        fx,
        m.set_metadata("alice", &a, long_value),
        Error::Invalid {
            field: "metadata",
            ..
        }
    );
    for field in ["", "nul\0", &*"f".repeat(10_000), "New Field Name"] {
        refused!(
            fx,
            m.set_profile_field("alice", field, FieldContent::Text("x".into()), ""),
            Error::Invalid { .. }
        );
    }
    refused!(
        fx,
        m.search("alice", "   ", None, 10),
        Error::Invalid { .. }
    );
}

#[tokio::test]
async fn search_text_with_nul_is_a_clear_answer() {
    let (fx, _, _) = Fixture::new().await;
    let m = fx.manager("alice");
    for text in ["a\0", "hello\0world", "\0hello"] {
        let r = m.search("alice", text, None, 10).await;
        assert!(
            matches!(r, Ok(_) | Err(Error::Invalid { field: "query", .. })),
            "search {text:?}: {r:?}"
        );
    }
}
