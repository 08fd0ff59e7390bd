//! Opt-in: naming and profile updates against a real OpenAI-compatible server.
//!
//! Runs only when `CONVO_TEST_LLM_URL` is set (e.g. `http://127.0.0.1:18080/v1`, see
//! `shared/llm/README.md`; or Ollama's `http://127.0.0.1:11434/v1`), with the model in
//! `CONVO_TEST_LLM_MODEL` (default `local`). Otherwise it prints a note and passes.
//!
//! ```sh
//! BASE=$(../shared/llm/start.sh 18080)
//! CONVO_TEST_LLM_URL=$BASE cargo test -p convo-cognition --test real_llm -- --nocapture
//! ```

mod common;

use common::{manager, saved_conversation, store};
use convo_cognition::{CognitionConfig, ProviderKind, Worker, build_provider};
use convo_core::{JobQuery, JobState, UserId};
use std::time::Instant;

#[tokio::test]
async fn names_and_profile_updates_from_a_real_model() {
    let Ok(url) = std::env::var("CONVO_TEST_LLM_URL") else {
        println!("skipped: set CONVO_TEST_LLM_URL (and CONVO_TEST_LLM_MODEL) to run it");
        return;
    };
    let model = std::env::var("CONVO_TEST_LLM_MODEL").unwrap_or_else(|_| "local".into());
    let (_dir, store) = store().await;
    let m = manager(&store, 3);
    let with_fact = saved_conversation(
        &m,
        &[
            "I'm a vegetarian and I live in Porto with my two cats. Can you suggest a quick dinner?",
            "Try a chickpea and spinach curry: it takes 20 minutes and keeps well.",
        ],
    )
    .await;
    let without_fact = saved_conversation(
        &m,
        &[
            "Write me a haiku about autumn rain.",
            "Cold rain on the eaves / red leaves drown in the gutter / the kettle sings on",
        ],
    )
    .await;
    let config = CognitionConfig {
        provider: ProviderKind::Openai,
        base_url: Some(url),
        model: Some(model),
        // A small model on a CPU takes its time; the queue waits.
        timeout_secs: 300,
        concurrency: 1,
        temperature: Some(0.0),
        // llama.cpp's default context is 2,048 tokens: prompt and reply must fit.
        max_prompt_tokens: 1400,
        max_reply_tokens: 400,
        backoff_base_secs: 0.5,
        backoff_max_secs: 2.0,
        ..Default::default()
    };
    let provider = build_provider(&config).unwrap();
    let worker = Worker::new(store.clone(), provider, config);
    let started = Instant::now();
    let summary = worker.run_until_empty().await.unwrap();
    let elapsed = started.elapsed();
    let alice = UserId::new("alice").unwrap();
    let jobs = store.list_jobs(&JobQuery::default()).await.unwrap();
    for j in &jobs {
        println!(
            "{} {} {:?} attempts={} note/error={:?}\n  reply={:?}",
            j.kind, j.conversation_id, j.state, j.attempts, j.last_error, j.last_reply
        );
    }
    let profile = store.get_profile(&alice).await.unwrap();
    let names = [
        store
            .get_conversation(&alice, &with_fact)
            .await
            .unwrap()
            .name,
        store
            .get_conversation(&alice, &without_fact)
            .await
            .unwrap()
            .name,
    ];
    println!("names: {names:?}\nprofile: {profile:#?}\n{summary:?} in {elapsed:?}");
    println!(
        "provider calls: {}, tokens: {}",
        worker.metrics().provider_calls(),
        worker.metrics().tokens_used()
    );
    for n in &names {
        assert!(
            !n.is_empty() && n.chars().count() <= 80 && !n.contains('\n'),
            "{n:?}"
        );
    }
    assert!(jobs.iter().all(|j| j.state == JobState::Done), "{jobs:#?}");
    // Every field the model wrote passed validation and is traced to its job.
    let audit = store.profile_history(&alice, None, 100).await.unwrap();
    assert!(audit.iter().all(|a| a.source.actor == "job"));
    // A conversation without a fact about the user writes nothing to the profile.
    assert!(
        audit
            .iter()
            .all(|a| a.source.conversation_id.as_deref() != Some(without_fact.as_str())),
        "{audit:#?}"
    );
}
