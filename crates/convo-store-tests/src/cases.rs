//! The cases. Each takes a harness with a fresh database.

use convo_core::{
    ChangeSource, Content, Conversation, ConversationManager, ConversationQuery, Error,
    FieldContent, HistoryOptions, ItemBody, ItemQuery, JobKind, JobOutcome, JobQuery, JobState,
    NewConversation, NewItem, Order, Page, PersonaName, ProfileOp, Role, Timestamp, UserId,
};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Harness, manager};

const LEASE: Duration = Duration::from_secs(60);

fn user(u: &str) -> UserId {
    UserId::new(u).unwrap()
}

/// Every seed operation through the manager, and the history it yields.
pub async fn seed_operations_round_trip<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.init_conversation_id();
    assert!(id.starts_with("conv_"));
    assert!(!m.conversation_exists("alice", &id).await.unwrap());
    let msg = m
        .add_message("alice", &id, Role::User, "Weather in Paris?", None)
        .await
        .unwrap();
    assert!(msg.starts_with("msg_"));
    m.add_message("alice", &id, Role::Assistant, "Let me check.", None)
        .await
        .unwrap();
    let call = m
        .add_function_call("alice", &id, "get_weather", r#"{"city":"Paris"}"#, None)
        .await
        .unwrap();
    assert!(call.starts_with("fc_"));
    let out = m
        .add_response("alice", &id, "18C sunny", None)
        .await
        .unwrap();
    assert!(out.starts_with("fco_"));
    assert!(m.conversation_exists("alice", &id).await.unwrap());
    assert!(!m.conversation_exists("bob", &id).await.unwrap());

    let saved = m
        .insert_conversation("alice", &id, "User: Weather in Paris?", None, "Helper")
        .await
        .unwrap();
    assert!(!saved.created, "messages created the conversation already");
    assert_eq!(saved.jobs_queued, 2);
    assert_eq!(
        m.get_chat_log("alice", &id).await.unwrap(),
        "User: Weather in Paris?"
    );

    let convs = m
        .get_conversations("alice", Some("Helper"), None)
        .await
        .unwrap();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0].id, id);
    assert_eq!(
        m.get_conversations("alice", None, Some(&id))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        m.get_conversations("alice", Some("Other"), None)
            .await
            .unwrap()
            .is_empty()
    );

    let h = m.get_history("alice", &id).await.unwrap();
    assert_eq!(h.messages.len(), 3, "{:#?}", h.messages);
    assert_eq!(h.messages[1].tool_calls[0].function.name, "get_weather");
    assert_eq!(h.messages[2].role, Role::Tool);
    assert_eq!(h.messages[2].text(), Some("18C sunny"));
    assert!(!h.messages[0].text().unwrap().contains("Message ID"));
    // The wire shape chat-completions APIs take.
    let wire = serde_json::to_value(&h.messages).unwrap();
    assert_eq!(wire[1]["tool_calls"][0]["type"], "function");
    assert_eq!(wire[1]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(wire[2]["role"], "tool");
    assert_eq!(wire[2]["tool_call_id"], h.messages[1].tool_calls[0].id);
    assert!(wire[0].get("tool_calls").is_none());

    m.update_conversation_id(&id).unwrap();
    assert_eq!(m.conversation_id(), id);
    let other = m.generate_new_conversation_id();
    assert_ne!(other, id);

    let r = m.delete_conversation("alice", &id).await.unwrap();
    assert_eq!(r.items, 4);
    assert!(!m.conversation_exists("alice", &id).await.unwrap());
    m.close_connection().await.unwrap();
    assert!(matches!(m.establish_connection().await, Err(Error::Closed)));
}

/// Items come back in append order under concurrent appends to many conversations.
pub async fn items_keep_order_under_concurrent_appends<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = std::sync::Arc::new(manager(&store, "alice"));
    let convs: Vec<String> = (0..8).map(|_| m.generate_new_conversation_id()).collect();
    let mut tasks = Vec::new();
    for (ci, conv) in convs.iter().enumerate() {
        for w in 0..2 {
            let (m, conv) = (m.clone(), conv.clone());
            tasks.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..25 {
                    let text = format!("c{ci} w{w} n{n}");
                    ids.push(
                        m.add_message("alice", &conv, Role::User, text, None)
                            .await
                            .unwrap(),
                    );
                }
                (conv, w, ids)
            }));
        }
    }
    let mut acked: BTreeMap<(String, i32), Vec<String>> = BTreeMap::new();
    for t in tasks {
        let (conv, w, ids) = t.await.unwrap();
        acked.insert((conv, w), ids);
    }
    for conv in &convs {
        let items = m.all_items("alice", conv).await.unwrap();
        assert_eq!(items.len(), 50);
        let positions: Vec<i64> = items.iter().map(|i| i.position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "positions increase"
        );
        for w in 0..2 {
            let seen: Vec<&String> = items
                .iter()
                .map(|i| &i.id)
                .filter(|id| acked[&(conv.clone(), w)].contains(id))
                .collect();
            let want: Vec<&String> = acked[&(conv.clone(), w)].iter().collect();
            assert_eq!(seen, want, "one writer's items keep their order");
        }
    }
}

fn nf<T>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::ConversationNotFound(_)))
}

/// Another user's conversation is not found, for every operation.
pub async fn users_are_isolated<H: Harness>(h: &H) {
    let store = h.open().await;
    let a = manager(&store, "alice");
    let b = manager(&store, "bob");
    let id = a.conversation_id();
    let item = a
        .add_message("alice", &id, Role::User, "secret", None)
        .await
        .unwrap();
    assert!(nf(b.get_conversation("bob", &id).await));
    assert!(nf(b.all_items("bob", &id).await));
    assert!(nf(b.get_item("bob", &id, &item).await));
    assert!(nf(b.delete_item("bob", &id, &item).await));
    assert!(nf(b.list_items("bob", &id, &ItemQuery::default()).await));
    assert!(nf(b.get_history("bob", &id).await));
    assert!(nf(b.get_chat_log("bob", &id).await));
    assert!(nf(b.rename_conversation("bob", &id, "mine").await));
    assert!(nf(b.set_metadata("bob", &id, BTreeMap::new()).await));
    assert!(nf(b.delete_conversation("bob", &id).await));
    assert!(nf(b.request_name("bob", &id).await));
    // bob's manager would create a conversation on append, but the id is taken.
    assert!(nf(b.add_message("bob", &id, Role::User, "x", None).await));
    assert!(
        b.get_conversations("bob", None, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.search("bob", "secret", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing of alice's changed.
    let items = a.all_items("alice", &id).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(a.get_conversation("alice", &id).await.unwrap().name, "");
}

/// Deleting a conversation removes its items, search entries and pending jobs.
pub async fn delete_cascades_to_items_search_and_jobs<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.conversation_id();
    m.add_message("alice", &id, Role::User, "zebra crossing", None)
        .await
        .unwrap();
    m.insert_conversation("alice", &id, "log", None, "Helper")
        .await
        .unwrap();
    let keep = m.generate_new_conversation_id();
    m.add_message("alice", &keep, Role::User, "zebra stripes", None)
        .await
        .unwrap();
    assert_eq!(m.search("alice", "zebra", None, 10).await.unwrap().len(), 2);
    assert_eq!(
        store
            .list_jobs(&JobQuery {
                conversation_id: Some(id.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .len(),
        2
    );
    let r = m.delete_conversation("alice", &id).await.unwrap();
    assert_eq!((r.items, r.jobs), (1, 2));
    let hits = m.search("alice", "zebra", None, 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].conversation_id, keep);
    assert!(
        store
            .list_jobs(&JobQuery {
                conversation_id: Some(id.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        m.delete_conversation("alice", &id).await,
        Err(Error::ConversationNotFound(_))
    ));
}

/// Limits, `has_more` at exact boundaries, `after` both ways, unknown cursors.
pub async fn item_pagination_edges<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.conversation_id();
    let items: Vec<NewItem> = (0..10)
        .map(|i| NewItem::message(Role::User, format!("m{i}")))
        .collect();
    let ids: Vec<String> = m
        .append_items("alice", &id, items)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    let q = |after: Option<&str>, limit, order| ItemQuery {
        after: after.map(str::to_string),
        limit,
        order,
    };
    // Default order is newest first.
    let p = m
        .list_items("alice", &id, &ItemQuery::default())
        .await
        .unwrap();
    assert_eq!(p.data.first().unwrap().id, ids[9]);
    assert!(!p.has_more);
    // Exact boundary: 10 items, page of 10 → no more.
    let p = m
        .list_items("alice", &id, &q(None, 10, Order::Asc))
        .await
        .unwrap();
    assert_eq!(p.data.len(), 10);
    assert!(!p.has_more);
    assert!(p.next_cursor.is_none());
    // Walk asc in pages of 3.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = m
            .list_items("alice", &id, &q(after.as_deref(), 3, Order::Asc))
            .await
            .unwrap();
        seen.extend(p.data.iter().map(|i| i.id.clone()));
        if !p.has_more {
            break;
        }
        after = p.next_cursor;
    }
    assert_eq!(seen, ids);
    // after + desc returns items strictly before, newest first.
    let p = m
        .list_items("alice", &id, &q(Some(&ids[5]), 2, Order::Desc))
        .await
        .unwrap();
    assert_eq!(
        p.data.iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&ids[4], &ids[3]]
    );
    assert!(p.has_more);
    let p = m
        .list_items("alice", &id, &q(Some(&ids[1]), 5, Order::Desc))
        .await
        .unwrap();
    assert_eq!(p.data.len(), 1);
    assert!(!p.has_more);
    // Last item as cursor: empty page.
    let p = m
        .list_items("alice", &id, &q(Some(&ids[9]), 5, Order::Asc))
        .await
        .unwrap();
    assert!(p.data.is_empty() && !p.has_more);
    // Unknown cursor and bad limits are errors.
    assert!(matches!(
        m.list_items("alice", &id, &q(Some("msg_nope"), 5, Order::Asc))
            .await,
        Err(Error::InvalidCursor(_))
    ));
    assert!(
        m.list_items("alice", &id, &q(None, 0, Order::Asc))
            .await
            .is_err()
    );
    assert!(
        m.list_items("alice", &id, &q(None, 1001, Order::Asc))
            .await
            .is_err()
    );
    // get and delete one item.
    assert_eq!(m.get_item("alice", &id, &ids[2]).await.unwrap().id, ids[2]);
    m.delete_item("alice", &id, &ids[2]).await.unwrap();
    assert!(matches!(
        m.get_item("alice", &id, &ids[2]).await,
        Err(Error::ItemNotFound(_))
    ));
    assert!(matches!(
        m.delete_item("alice", &id, &ids[2]).await,
        Err(Error::ItemNotFound(_))
    ));
}

/// Alice's first page of conversations, most recently active first.
async fn newest_first(m: &ConversationManager) -> Page<Conversation> {
    m.list_conversations("alice", &ConversationQuery::default())
        .await
        .unwrap()
}

/// Conversations list newest activity first, page by cursor, filter by persona.
pub async fn conversation_pagination_and_persona_filter<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let mut made = Vec::new();
    for i in 0..7 {
        let persona = if i % 2 == 0 { "Helper" } else { "Coder" };
        let (c, _) = m
            .create_conversation(
                NewConversation {
                    id: None,
                    user: user("alice"),
                    persona: PersonaName::new(persona).unwrap(),
                    name: None,
                    metadata: BTreeMap::new(),
                    created_at: Some(Timestamp::from_unix_ms(1_700_000_000_000 + i * 1000)),
                },
                vec![],
            )
            .await
            .unwrap();
        made.push(c.id);
    }
    let _ = made.iter().rev();
    let mut all = Vec::new();
    let mut q = ConversationQuery {
        persona: None,
        limit: 3,
        cursor: None,
    };
    loop {
        let p = m.list_conversations("alice", &q).await.unwrap();
        all.extend(p.data.into_iter().map(|c| c.id));
        if !p.has_more {
            break;
        }
        q.cursor = p.next_cursor;
    }
    assert_eq!(all.len(), 7);
    let unique: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), 7, "no duplicates across pages");
    let helper = m
        .list_conversations(
            "alice",
            &ConversationQuery {
                persona: Some(PersonaName::new("Helper").unwrap()),
                limit: 50,
                cursor: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(helper.data.len(), 4);
    assert!(helper.data.iter().all(|c| c.persona.as_str() == "Helper"));
    // Activity moves a conversation to the front.
    let oldest = made[0].clone();
    m.add_message("alice", &oldest, Role::User, "bump", None)
        .await
        .unwrap();
    assert_eq!(newest_first(&m).await.data[0].id, oldest);
    // Also when a create and the append share a millisecond (timestamps tie there):
    // rounds of a create, then at once an append elsewhere. Each round starts past the
    // millisecond the last one touched, and the moved conversation's time stays on
    // the clock.
    for round in 0..20 {
        tokio::time::sleep(Duration::from_millis(2)).await;
        m.create_conversation(
            NewConversation {
                id: None,
                user: user("alice"),
                persona: PersonaName::new("Helper").unwrap(),
                name: None,
                metadata: BTreeMap::new(),
                created_at: None,
            },
            vec![],
        )
        .await
        .unwrap();
        let target = &made[round % made.len()];
        m.add_message("alice", target, Role::User, "again", None)
            .await
            .unwrap();
        let listed = newest_first(&m).await;
        assert_eq!(&listed.data[0].id, target, "round {round}");
        let ahead = listed.data[0].updated_at.unix_ms() - Timestamp::now().unix_ms();
        assert!(ahead <= 1, "updated_at {ahead} ms ahead of the clock");
    }
    // Two conversations taking turns faster than the clock ticks: neither runs ahead
    // of it (several touched within one millisecond list by key among themselves).
    for i in 0..200 {
        m.add_message("alice", &made[i % 2], Role::User, "turn", None)
            .await
            .unwrap();
    }
    let listed = newest_first(&m).await;
    let newest = listed.data.iter().map(|c| c.updated_at.unix_ms()).max();
    let ahead = newest.unwrap() - Timestamp::now().unix_ms();
    assert!(ahead <= 1, "updated_at {ahead} ms ahead of the clock");
    assert!(matches!(
        m.list_conversations(
            "alice",
            &ConversationQuery {
                cursor: Some("garbage".into()),
                ..Default::default()
            }
        )
        .await,
        Err(Error::InvalidCursor(_))
    ));
}

/// Rejected input leaves the store exactly as it was.
pub async fn invalid_input_changes_nothing<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.conversation_id();
    m.add_message("alice", &id, Role::User, "first", None)
        .await
        .unwrap();
    let before = m.all_items("alice", &id).await.unwrap();
    let conv_before = m.get_conversation("alice", &id).await.unwrap();
    // A batch whose last item is invalid: nothing of it is stored.
    let batch = vec![
        NewItem::message(Role::User, "ok"),
        NewItem::function_call_output("call_missing", "x"),
    ];
    assert!(matches!(
        m.append_items("alice", &id, batch).await,
        Err(Error::UnknownCall(_))
    ));
    // Oversized content.
    let big = "x".repeat((1 << 20) + 1);
    assert!(matches!(
        m.add_message("alice", &id, Role::User, big, None).await,
        Err(Error::TooLarge { .. })
    ));
    // Malformed parts.
    let bad_parts = NewItem::message(
        Role::User,
        Content::Parts(vec![serde_json::json!({"text": "no type"})]),
    );
    assert!(matches!(
        m.append_items("alice", &id, vec![bad_parts]).await,
        Err(Error::Invalid { .. })
    ));
    // Metadata over the limits.
    let mut meta = BTreeMap::new();
    for i in 0..17 {
        meta.insert(format!("k{i}"), "v".to_string());
    }
    assert!(matches!(
        m.set_metadata("alice", &id, meta).await,
        Err(Error::Invalid {
            field: "metadata",
            ..
        })
    ));
    let mut long = BTreeMap::new();
    long.insert("k".repeat(65), "v".into());
    assert!(m.set_metadata("alice", &id, long).await.is_err());
    // Bad persona, user and ids.
    assert!(matches!(
        convo_core::ConversationManager::new(store.clone(), "alice", "../x"),
        Err(Error::InvalidPersona { .. })
    ));
    assert!(matches!(
        m.add_message("", &id, Role::User, "x", None).await,
        Err(Error::InvalidUser { .. })
    ));
    assert!(matches!(
        m.add_message("alice", "a/b", Role::User, "x", None).await,
        Err(Error::InvalidId { .. })
    ));
    assert!(matches!(
        "wizard".parse::<Role>(),
        Err(Error::InvalidRole(_))
    ));
    // Duplicate item id in a batch.
    let dup = vec![
        NewItem::message(Role::User, "a").with_id("msg_same"),
        NewItem::message(Role::User, "b").with_id("msg_same"),
    ];
    assert!(m.append_items("alice", &id, dup).await.is_err());
    assert_eq!(m.all_items("alice", &id).await.unwrap(), before);
    assert_eq!(m.get_conversation("alice", &id).await.unwrap(), conv_before);
    assert!(m.search("alice", "ok", None, 10).await.unwrap().is_empty());
}

/// Outputs answer calls of the same conversation; arguments are kept verbatim.
pub async fn function_call_outputs_must_answer_a_call<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let a = m.conversation_id();
    let b = m.generate_new_conversation_id();
    let asst = m
        .add_message("alice", &a, Role::Assistant, "calling", None)
        .await
        .unwrap();
    let truncated = r#"{"city": "Par"#; // models emit truncated JSON; the store keeps it
    let items = m
        .append_items(
            "alice",
            &a,
            vec![NewItem::function_call("call_1", "get_weather", truncated)],
        )
        .await
        .unwrap();
    match &items[0].body {
        ItemBody::FunctionCall {
            arguments,
            message_id,
            ..
        } => {
            assert_eq!(arguments, truncated);
            assert_eq!(
                message_id.as_deref(),
                Some(asst.as_str()),
                "linked to the issuing message"
            );
        }
        other => panic!("{other:?}"),
    }
    m.add_message("alice", &b, Role::User, "other conversation", None)
        .await
        .unwrap();
    assert!(matches!(
        m.add_function_call_output("alice", &b, "call_1", "x", None)
            .await,
        Err(Error::UnknownCall(_))
    ));
    assert!(matches!(
        m.append_items(
            "alice",
            &a,
            vec![NewItem::function_call("call_1", "again", "{}")]
        )
        .await,
        Err(Error::DuplicateCall(_))
    ));
    m.add_function_call_output("alice", &a, "call_1", "sunny", None)
        .await
        .unwrap();
    // The seed's add_response with no unanswered call left.
    assert!(matches!(
        m.add_response("alice", &a, "late", None).await,
        Err(Error::UnknownCall(_))
    ));
    // A call and its output in one batch.
    m.append_items(
        "alice",
        &a,
        vec![
            NewItem::function_call("call_2", "f", "{}"),
            NewItem::function_call_output("call_2", "ok"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(m.all_items("alice", &a).await.unwrap().len(), 5);
}

/// Saving again updates the conversation and keeps its items; jobs are queued once.
pub async fn save_is_an_idempotent_upsert<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.conversation_id();
    let first = m
        .insert_conversation("alice", &id, "v1", None, "Helper")
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.jobs_queued, 2);
    m.add_message("alice", &id, Role::User, "hello", None)
        .await
        .unwrap();
    let again = m
        .insert_conversation("alice", &id, "v2", None, "Helper")
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.jobs_queued, 0, "a pending job is not queued twice");
    assert_eq!(m.get_chat_log("alice", &id).await.unwrap(), "v2");
    assert_eq!(
        m.all_items("alice", &id).await.unwrap().len(),
        1,
        "saving never loses items"
    );
    let counts = store.job_counts().await.unwrap();
    assert_eq!(counts.pending, 2);
    // A name given at save time is a person's name: no naming job.
    let named = m.generate_new_conversation_id();
    let out = m
        .save("alice", &named, "log", None, "Helper", Some("My trip"))
        .await
        .unwrap();
    assert_eq!(out.jobs_queued, 1);
    assert!(out.conversation.name_set_by_person);
    assert_eq!(out.conversation.name, "My trip");
    // Another user's id, or another persona, is refused.
    let b = manager(&store, "bob");
    assert!(
        b.insert_conversation("bob", &id, "mine", None, "Helper")
            .await
            .is_err()
    );
    assert!(
        m.insert_conversation("alice", &id, "v3", None, "Other")
            .await
            .is_err()
    );
    assert_eq!(m.get_chat_log("alice", &id).await.unwrap(), "v2");
}

/// Closing and reopening the database keeps conversations, items, profiles and jobs.
pub async fn reopening_keeps_everything<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.conversation_id();
    m.add_message("alice", &id, Role::User, "remember me", None)
        .await
        .unwrap();
    m.insert_conversation("alice", &id, "log", None, "Helper")
        .await
        .unwrap();
    m.set_profile_field(
        "alice",
        "City",
        FieldContent::Text("Lyon".into()),
        "said so",
    )
    .await
    .unwrap();
    let items = m.all_items("alice", &id).await.unwrap();
    let conv = m.get_conversation("alice", &id).await.unwrap();
    m.close_connection().await.unwrap();
    let store = h.open().await;
    let m = manager(&store, "alice");
    assert_eq!(
        m.create_all_tables().await.unwrap(),
        m.create_all_tables().await.unwrap()
    );
    assert_eq!(m.all_items("alice", &id).await.unwrap(), items);
    assert_eq!(m.get_conversation("alice", &id).await.unwrap(), conv);
    assert_eq!(
        m.get_profile("alice")
            .await
            .unwrap()
            .get("City")
            .unwrap()
            .content,
        FieldContent::Text("Lyon".into())
    );
    assert_eq!(store.job_counts().await.unwrap().pending, 2);
    assert_eq!(
        m.search("alice", "remember", None, 5).await.unwrap().len(),
        1
    );
}

/// Search finds a user's words, ranks better matches first, filters by persona, and
/// reads no query syntax from the input.
pub async fn search_ranks_and_filters<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let coder = convo_core::ConversationManager::new(store.clone(), "alice", "Coder").unwrap();
    let a = m.conversation_id();
    m.add_message("alice", &a, Role::User, "I love hiking in the Alps", None)
        .await
        .unwrap();
    m.add_message(
        "alice",
        &a,
        Role::Assistant,
        "Hiking hiking hiking: the Alps are great for hiking",
        None,
    )
    .await
    .unwrap();
    let c = coder.conversation_id();
    coder
        .add_message("alice", &c, Role::User, "hiking app in Rust", None)
        .await
        .unwrap();
    let hits = m.search("alice", "hiking", None, 10).await.unwrap();
    assert_eq!(hits.len(), 3);
    assert!(
        hits[0].snippet.contains("[hiking]") || hits[0].snippet.contains("[Hiking]"),
        "{:?}",
        hits[0]
    );
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    // BM25: four uses in nine words, then one in four words, then one in six.
    let roles: Vec<&str> = hits.iter().map(|h| h.role.as_str()).collect();
    assert_eq!(roles, ["assistant", "user", "user"]);
    assert_eq!(hits[1].conversation_id, c);
    assert!(hits[0].score > hits[1].score && hits[1].score > hits[2].score);
    // A word in every message still scores visibly above zero (`convo search` prints
    // two decimals).
    assert!(hits.iter().all(|h| h.score >= 0.01), "{hits:?}");
    let only = m
        .search("alice", "hiking", Some("Coder"), 10)
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].conversation_id, c);
    for hostile in [
        "\"unbalanced",
        "NEAR(",
        "a OR",
        "'; DROP TABLE items; --",
        "*",
    ] {
        let r = m.search("alice", hostile, None, 10).await;
        assert!(
            matches!(r, Ok(_) | Err(Error::Invalid { .. })),
            "{hostile}: {r:?}"
        );
    }
    assert!(m.search("alice", "   ", None, 10).await.is_err());
    // Accents: the index matches "cafe" to "café", and the ranking counts them alike
    // (three uses in four words beat one in two).
    for text in ["un café", "Café CAFÉ cafe lait"] {
        m.add_message("alice", &a, Role::User, text, None)
            .await
            .unwrap();
    }
    let cafe = m.search("alice", "cafe", None, 10).await.unwrap();
    assert_eq!(cafe.len(), 2, "{cafe:?}");
    assert!(cafe[0].snippet.starts_with("[Café] [CAFÉ]"), "{cafe:?}");
}

/// A user's search answers the same, scores included, whatever other users write:
/// ranking statistics come from the searching user's own messages, so scores neither
/// drift with the database nor tell anything about anyone else's words.
pub async fn search_scores_ignore_other_users<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let a = m.conversation_id();
    for text in [
        "Paris weather: rain in Paris all week",
        "Lyon weather is sunny",
        "Pack a raincoat for Paris",
        "Book the hotel",
    ] {
        m.add_message("alice", &a, Role::User, text, None)
            .await
            .unwrap();
    }
    let before = m.search("alice", "paris weather", None, 10).await.unwrap();
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0].score > 0.0 && before[0].score.is_finite());
    let words = m.search("alice", "paris", None, 10).await.unwrap();
    assert_eq!(words.len(), 2);
    // Two uses in seven words rank above one in five.
    assert!(words[0].snippet.starts_with("[Paris]"), "{words:?}");

    let b = manager(&store, "bob");
    let bc = b.conversation_id();
    for i in 0..40 {
        b.add_message("bob", &bc, Role::User, format!("paris weather {i}"), None)
            .await
            .unwrap();
    }
    let after = m.search("alice", "paris weather", None, 10).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(m.search("alice", "paris", None, 10).await.unwrap(), words);
    assert_eq!(
        b.search("bob", "paris weather", None, 100)
            .await
            .unwrap()
            .len(),
        40
    );
}

async fn queued(h_store: &std::sync::Arc<dyn convo_core::Store>, user_id: &str) -> String {
    let m = manager(h_store, user_id);
    let id = m.generate_new_conversation_id();
    m.add_message(user_id, &id, Role::User, "I have a cat named Tom", None)
        .await
        .unwrap();
    m.insert_conversation(user_id, &id, "log", None, "Helper")
        .await
        .unwrap();
    id
}

/// Leases expire, retries back off, attempts run out into `failed` with the error.
pub async fn job_queue_leases_retries_and_fails<H: Harness>(h: &H) {
    let store = h.open().await;
    let conv = queued(&store, "alice").await;
    let now = Timestamp::now();
    let j1 = store
        .claim_job("w1", LEASE, now)
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(j1.kind, JobKind::Name);
    assert_eq!(j1.state, JobState::Running);
    assert_eq!(j1.attempts, 1);
    assert_eq!(j1.conversation_id, conv);
    // The profile job is the other one.
    let j2 = store
        .claim_job("w1", LEASE, now)
        .await
        .unwrap()
        .expect("a second job");
    assert_eq!(j2.kind, JobKind::Profile);
    assert!(store.claim_job("w1", LEASE, now).await.unwrap().is_none());
    // A worker that died: after the lease, another worker takes the job.
    let later = Timestamp::from_unix_ms(now.unix_ms() + 61_000);
    let again = store
        .claim_job("w2", LEASE, later)
        .await
        .unwrap()
        .expect("lease expired");
    assert_eq!(again.id, j1.id);
    assert_eq!(again.attempts, 2);
    // The first worker lost the lease: its result is not written.
    let stale = JobOutcome::Done {
        name: Some("stale".into()),
        profile_ops: vec![],
        note: None,
    };
    assert!(!store.finish_job(&j1.id, "w1", stale).await.unwrap());
    // Retry with backoff.
    let run_after = Timestamp::from_unix_ms(later.unix_ms() + 5_000);
    let retry = JobOutcome::Retry {
        error: "HTTP 429".into(),
        reply: None,
        run_after,
    };
    assert!(store.finish_job(&j1.id, "w2", retry).await.unwrap());
    let j = store.get_job(&j1.id).await.unwrap();
    assert_eq!(
        (j.state, j.last_error.as_deref()),
        (JobState::Pending, Some("HTTP 429"))
    );
    assert!(
        store
            .claim_job("w2", LEASE, later)
            .await
            .unwrap()
            .map(|j| j.id != j1.id)
            .unwrap_or(true)
    );
    // Use up the attempts.
    let mut t = run_after.unix_ms() + 200_000;
    loop {
        let Some(j) = store
            .claim_job("w3", LEASE, Timestamp::from_unix_ms(t))
            .await
            .unwrap()
        else {
            break;
        };
        let out = JobOutcome::Retry {
            error: "garbage reply".into(),
            reply: Some("???".into()),
            run_after: Timestamp::from_unix_ms(t + 1),
        };
        store.finish_job(&j.id, "w3", out).await.unwrap();
        t += 200_000;
    }
    let j = store.get_job(&j1.id).await.unwrap();
    assert_eq!(j.state, JobState::Failed);
    assert_eq!(j.attempts, j.max_attempts);
    assert_eq!(j.last_error.as_deref(), Some("garbage reply"));
    assert_eq!(j.last_reply.as_deref(), Some("???"));
    assert_eq!(store.job_counts().await.unwrap().failed, 2);
    // Release hands a running job back without counting the attempt.
    let m = manager(&store, "alice");
    m.request_name("alice", &conv).await.unwrap();
    let j = store
        .claim_job("w4", LEASE, Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.release_jobs("w4").await.unwrap(), 1);
    let j = store.get_job(&j.id).await.unwrap();
    assert_eq!((j.state, j.attempts), (JobState::Pending, 0));
}

/// Profile jobs of one user run one at a time, in save order.
pub async fn profile_jobs_of_a_user_run_in_order<H: Harness>(h: &H) {
    let store = h.open().await;
    let first = queued(&store, "alice").await;
    let second = queued(&store, "alice").await;
    let other_user = queued(&store, "bob").await;
    let now = Timestamp::now();
    let mut claimed = Vec::new();
    while let Some(j) = store.claim_job("w", LEASE, now).await.unwrap() {
        claimed.push(j);
    }
    let profile: Vec<&str> = claimed
        .iter()
        .filter(|j| j.kind == JobKind::Profile)
        .map(|j| j.conversation_id.as_str())
        .collect();
    // alice's second profile job waits for her first; bob's runs alongside.
    assert_eq!(profile, vec![first.as_str(), other_user.as_str()]);
    let p1 = claimed
        .iter()
        .find(|j| j.kind == JobKind::Profile && j.conversation_id == first)
        .unwrap();
    store
        .finish_job(
            &p1.id,
            "w",
            JobOutcome::Done {
                name: None,
                profile_ops: vec![],
                note: None,
            },
        )
        .await
        .unwrap();
    let next = store
        .claim_job("w", LEASE, now)
        .await
        .unwrap()
        .expect("second profile job");
    assert_eq!(
        (next.kind, next.conversation_id.as_str()),
        (JobKind::Profile, second.as_str())
    );
}

/// Effects are written with the job's completion, once; a person's name wins.
pub async fn finished_job_writes_effects_once<H: Harness>(h: &H) {
    let store = h.open().await;
    let conv = queued(&store, "alice").await;
    let now = Timestamp::now();
    let name_job = store.claim_job("w", LEASE, now).await.unwrap().unwrap();
    let profile_job = store.claim_job("w", LEASE, now).await.unwrap().unwrap();
    let done = JobOutcome::Done {
        name: Some("Tom the cat".into()),
        profile_ops: vec![],
        note: None,
    };
    assert!(
        store
            .finish_job(&name_job.id, "w", done.clone())
            .await
            .unwrap()
    );
    assert!(
        !store.finish_job(&name_job.id, "w", done).await.unwrap(),
        "a finished job is not finished twice"
    );
    let ops = vec![ProfileOp::AppendContentByField {
        field_name: "Pets".into(),
        content: "a cat named Tom".into(),
        observations: "said so".into(),
    }];
    let out = JobOutcome::Done {
        name: None,
        profile_ops: ops.clone(),
        note: None,
    };
    assert!(
        store
            .finish_job(&profile_job.id, "w", out.clone())
            .await
            .unwrap()
    );
    assert!(!store.finish_job(&profile_job.id, "w", out).await.unwrap());
    let m = manager(&store, "alice");
    assert_eq!(
        m.get_conversation("alice", &conv).await.unwrap().name,
        "Tom the cat"
    );
    let p = m.get_profile("alice").await.unwrap();
    assert_eq!(
        p.get("Pets").unwrap().content,
        FieldContent::Text("a cat named Tom".into())
    );
    let audit = m.profile_history("alice", None, 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].source.job_id.as_deref(),
        Some(profile_job.id.as_str())
    );
    assert_eq!(
        audit[0].source.conversation_id.as_deref(),
        Some(conv.as_str())
    );
    // A person renames; a later naming job does not overwrite it.
    m.rename_conversation("alice", &conv, "My cat")
        .await
        .unwrap();
    m.insert_conversation("alice", &conv, "log2", None, "Helper")
        .await
        .unwrap();
    while let Some(j) = store.claim_job("w", LEASE, Timestamp::now()).await.unwrap() {
        store
            .finish_job(
                &j.id,
                "w",
                JobOutcome::Done {
                    name: Some("Robot name".into()),
                    profile_ops: vec![],
                    note: None,
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(
        m.get_conversation("alice", &conv).await.unwrap().name,
        "My cat"
    );
    // Unless the person asks for a name again.
    m.request_name("alice", &conv).await.unwrap();
    let j = store
        .claim_job("w", LEASE, Timestamp::now())
        .await
        .unwrap()
        .unwrap();
    store
        .finish_job(
            &j.id,
            "w",
            JobOutcome::Done {
                name: Some("Fresh name".into()),
                profile_ops: vec![],
                note: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        m.get_conversation("alice", &conv).await.unwrap().name,
        "Fresh name"
    );
}

/// Deleting a conversation while its job runs: the job's effects never appear.
pub async fn delete_during_a_job_writes_nothing<H: Harness>(h: &H) {
    let store = h.open().await;
    let conv = queued(&store, "alice").await;
    let now = Timestamp::now();
    let a = store.claim_job("w", LEASE, now).await.unwrap().unwrap();
    let b = store.claim_job("w", LEASE, now).await.unwrap().unwrap();
    let m = manager(&store, "alice");
    m.delete_conversation("alice", &conv).await.unwrap();
    let ops = vec![ProfileOp::AddField {
        field_name: "Pets".into(),
        content: "cat".into(),
        observations: String::new(),
    }];
    for j in [a, b] {
        let out = JobOutcome::Done {
            name: Some("ghost".into()),
            profile_ops: ops.clone(),
            note: None,
        };
        assert!(!store.finish_job(&j.id, "w", out).await.unwrap());
    }
    assert!(m.get_profile("alice").await.unwrap().fields.is_empty());
    assert_eq!(store.job_counts().await.unwrap(), Default::default());
}

/// Profile operations, limits, audit trail, seed JSON import/export.
pub async fn profile_ops_and_audit_trail<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let seed = serde_json::json!({"Hobbies": {"Content": ["chess", "go"], "observations": "mentioned"}, "City": {"Content": "Lyon", "observations": "lives there"}});
    assert_eq!(m.import_profile("alice", &seed).await.unwrap(), 2);
    assert_eq!(m.get_profile("alice").await.unwrap().to_seed_json(), seed);
    let ops = vec![
        ProfileOp::AppendContentByField {
            field_name: "City".into(),
            content: "Paris".into(),
            observations: "moved".into(),
        },
        ProfileOp::None,
    ];
    m.apply_profile_ops("alice", &ops, ChangeSource::person())
        .await
        .unwrap();
    assert_eq!(
        m.get_profile("alice")
            .await
            .unwrap()
            .get("City")
            .unwrap()
            .content,
        FieldContent::List(vec!["Lyon".into(), "Paris".into()])
    );
    // An invalid batch is rejected whole.
    let bad = vec![
        ProfileOp::AddField {
            field_name: "Ok".into(),
            content: "fine".into(),
            observations: String::new(),
        },
        ProfileOp::AddField {
            field_name: "x".repeat(65),
            content: "too long a name".into(),
            observations: String::new(),
        },
    ];
    assert!(
        m.apply_profile_ops("alice", &bad, ChangeSource::person())
            .await
            .is_err()
    );
    assert!(m.get_profile("alice").await.unwrap().get("Ok").is_none());
    assert!(m.remove_profile_field("alice", "Hobbies").await.unwrap());
    assert!(!m.remove_profile_field("alice", "Hobbies").await.unwrap());
    let trail = m.profile_history("alice", None, 50).await.unwrap();
    assert_eq!(trail.len(), 4);
    assert_eq!(trail[0].op, "removefield");
    assert_eq!(trail[0].after, None);
    assert_eq!(
        m.profile_history("alice", Some("City"), 50)
            .await
            .unwrap()
            .len(),
        2
    );
    // At most 200 fields.
    for chunk in 0..10 {
        let ops: Vec<ProfileOp> = (0..20)
            .map(|i| ProfileOp::AddField {
                field_name: format!("f{chunk}_{i}"),
                content: "v".into(),
                observations: String::new(),
            })
            .collect();
        let r = m
            .apply_profile_ops("alice", &ops, ChangeSource::person())
            .await;
        if chunk < 9 {
            r.unwrap();
        } else {
            assert!(r.is_err(), "the 201st field is refused");
        }
    }
}

/// Erasing a user removes all of theirs and nothing of anyone else's.
pub async fn erase_user_removes_everything<H: Harness>(h: &H) {
    let store = h.open().await;
    let conv = queued(&store, "alice").await;
    queued(&store, "alice").await;
    let bob_conv = queued(&store, "bob").await;
    let m = manager(&store, "alice");
    m.set_profile_field("alice", "City", FieldContent::Text("Lyon".into()), "")
        .await
        .unwrap();
    m.set_profile_field("bob", "City", FieldContent::Text("Oslo".into()), "")
        .await
        .unwrap();
    let r = m.erase_user("alice").await.unwrap();
    assert_eq!(
        (
            r.conversations,
            r.items,
            r.profile_fields,
            r.audit_entries,
            r.jobs
        ),
        (2, 2, 1, 1, 4)
    );
    assert!(!m.conversation_exists("alice", &conv).await.unwrap());
    assert!(m.search("alice", "cat", None, 10).await.unwrap().is_empty());
    assert!(m.get_profile("alice").await.unwrap().fields.is_empty());
    assert!(
        store
            .list_jobs(&JobQuery {
                user: Some("alice".into()),
                ..Default::default()
            })
            .await
            .unwrap()
            .is_empty()
    );
    assert!(m.conversation_exists("bob", &bob_conv).await.unwrap());
    assert_eq!(m.search("bob", "cat", None, 10).await.unwrap().len(), 1);
    assert_eq!(m.get_profile("bob").await.unwrap().fields.len(), 1);
    assert_eq!(m.list_users().await.unwrap(), vec!["bob".to_string()]);
}

/// Imports keep ids, times, names and links, and skip or replace existing ids.
pub async fn import_keeps_ids_and_times<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.conversation_id();
    m.add_message("alice", &id, Role::User, "hi", None)
        .await
        .unwrap();
    m.append_items("alice", &id, vec![NewItem::function_call("c1", "f", "{}")])
        .await
        .unwrap();
    m.rename_conversation("alice", &id, "Named").await.unwrap();
    let conv = m.get_conversation("alice", &id).await.unwrap();
    let items = m.all_items("alice", &id).await.unwrap();
    m.delete_conversation("alice", &id).await.unwrap();
    assert_eq!(
        m.import_conversation(conv.clone(), items.clone(), false)
            .await
            .unwrap(),
        Some(false)
    );
    assert_eq!(
        m.import_conversation(conv.clone(), items.clone(), false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        m.import_conversation(conv.clone(), items.clone(), true)
            .await
            .unwrap(),
        Some(true)
    );
    assert_eq!(m.get_conversation("alice", &id).await.unwrap(), conv);
    let back = m.all_items("alice", &id).await.unwrap();
    let strip = |v: &[convo_core::Item]| {
        v.iter()
            .map(|i| (i.id.clone(), i.created_at, i.body.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&back), strip(&items));
}

/// API keys are stored by hash, listed, revoked.
pub async fn api_keys_round_trip<H: Harness>(h: &H) {
    let store = h.open().await;
    let key = convo_core::ApiKey {
        id: "key_1".into(),
        hash: "ab".repeat(32),
        user: Some("alice".into()),
        admin: false,
        label: "laptop".into(),
        created_at: Timestamp::now(),
        expires_at: None,
        revoked_at: None,
    };
    store.create_api_key(key.clone()).await.unwrap();
    assert_eq!(
        store.find_api_key(&key.hash).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(store.find_api_key("cd").await.unwrap(), None);
    assert_eq!(store.list_api_keys().await.unwrap().len(), 1);
    assert!(store.revoke_api_key("key_1").await.unwrap());
    assert!(
        store
            .find_api_key(&key.hash)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(!store.revoke_api_key("key_nope").await.unwrap());
}

/// The history pairs calls with outputs and respects a token budget.
pub async fn history_pairs_tool_calls_with_outputs<H: Harness>(h: &H) {
    let store = h.open().await;
    let m = manager(&store, "alice");
    let id = m.conversation_id();
    m.add_message("alice", &id, Role::System, "You are helpful.", None)
        .await
        .unwrap();
    for i in 0..20 {
        m.add_message(
            "alice",
            &id,
            Role::User,
            format!("question {i} {}", "word ".repeat(50)),
            None,
        )
        .await
        .unwrap();
        m.add_message("alice", &id, Role::Assistant, "", None)
            .await
            .unwrap();
        m.append_items(
            "alice",
            &id,
            vec![
                NewItem::function_call(format!("call_{i}a"), "lookup", r#"{"q":1}"#),
                NewItem::function_call(format!("call_{i}b"), "lookup", r#"{"q":2}"#),
            ],
        )
        .await
        .unwrap();
        m.add_function_call_output("alice", &id, &format!("call_{i}a"), "A", None)
            .await
            .unwrap();
        m.add_function_call_output("alice", &id, &format!("call_{i}b"), "B", None)
            .await
            .unwrap();
        m.add_message("alice", &id, Role::Assistant, format!("answer {i}"), None)
            .await
            .unwrap();
    }
    let full = m.get_history("alice", &id).await.unwrap();
    assert_eq!(full.messages.len(), 1 + 20 * 5);
    assert!(!full.truncated);
    let cut = m
        .get_history_with(
            "alice",
            &id,
            HistoryOptions {
                max_tokens: Some(400),
            },
        )
        .await
        .unwrap();
    assert!(cut.truncated);
    assert!(cut.tokens <= 400, "{}", cut.tokens);
    assert_eq!(cut.messages[0].role, Role::System);
    // Every tool message follows an assistant message that carries its call.
    let mut open_calls: Vec<String> = Vec::new();
    for msg in &cut.messages[1..] {
        if !msg.tool_calls.is_empty() {
            open_calls = msg.tool_calls.iter().map(|c| c.id.clone()).collect();
        } else if msg.role == Role::Tool {
            let id = msg.tool_call_id.as_deref().unwrap();
            assert!(
                open_calls.iter().any(|c| c == id),
                "tool result {id} without its call"
            );
        }
    }
    assert_eq!(cut.messages.last().unwrap().text(), Some("answer 19"));
    let anthropic = m
        .get_history_anthropic("alice", &id, HistoryOptions::default())
        .await
        .unwrap();
    assert_eq!(anthropic.system.as_deref(), Some("You are helpful."));
    let roles: Vec<&str> = anthropic
        .messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert!(roles.windows(2).all(|w| w[0] != w[1]), "roles alternate");
    assert_eq!(anthropic.messages[1]["content"][0]["type"], "tool_use");
    assert_eq!(anthropic.messages[1]["content"][0]["input"]["q"], 1);
}
