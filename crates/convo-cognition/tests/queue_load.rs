//! Measurements for the closing note (ignored by default; run with `--ignored
//! --nocapture`): a stand-in provider's round trip, and the queue under 1,000 jobs.

mod common;

use common::{config, manager, openai_reply, saved_conversation, store, structured};
use convo_cognition::{OpenAiProvider, OpenAiSettings, ProviderKind, Worker, build_provider};
use convo_core::{JobCounts, Role};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run with --ignored --nocapture"]
async fn a_thousand_queued_jobs() {
    let (_dir, store) = store().await;
    let m = manager(&store, 5);
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push(
            saved_conversation(
                &m,
                &[&format!("Question number {i} about sourdough"), "Answer."],
            )
            .await,
        );
    }
    println!(
        "saved 500 conversations (1,000 jobs) in {:?}",
        started.elapsed()
    );
    assert_eq!(store.job_counts().await.unwrap().pending, 1000);

    // Appends while the queue is full and a worker drains it against a slow provider.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(openai_reply(&structured("Bread", json!([])), "stop"))
                .set_delay(Duration::from_millis(200)),
        )
        .mount(&server)
        .await;
    let cfg = config(ProviderKind::Openai);
    let provider = Arc::new(
        OpenAiProvider::new(OpenAiSettings {
            base_url: format!("{}/v1", server.uri()),
            model: "m".into(),
            api_key: None,
            headers: Default::default(),
            timeout: cfg.timeout(),
        })
        .unwrap(),
    );
    let appends = |n: usize| {
        let m = &m;
        let id = ids[0].clone();
        async move {
            let t = Instant::now();
            for i in 0..n {
                m.add_message("alice", &id, Role::User, format!("more {i}").as_str(), None)
                    .await
                    .unwrap();
            }
            n as f64 / t.elapsed().as_secs_f64()
        }
    };
    let idle_rate = appends(300).await;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let slow = Worker::new(store.clone(), provider, cfg.clone());
    let running = tokio::spawn(slow.clone().run(rx));
    let busy_rate = appends(300).await;
    stop.send(true).unwrap();
    let s = running.await.unwrap().unwrap();
    println!(
        "appends/s with an idle queue: {idle_rate:.0}; while a worker drains 1,000 jobs against a 200 ms provider: {busy_rate:.0} ({:.2}x); the slow worker did {s:?}",
        busy_rate / idle_rate
    );

    // A stand-in round trip, measured through the metrics.
    let lat = slow.metrics().render_prometheus();
    let sum = lat
        .lines()
        .find_map(|l| l.strip_prefix("convo_provider_latency_seconds_sum "))
        .unwrap_or("0");
    println!(
        "stand-in calls: {} (latency sum {sum} s)",
        slow.metrics().provider_calls()
    );

    // The offline heuristic drains the rest.
    let cfg = config(ProviderKind::Heuristic);
    let worker = Worker::new(store.clone(), build_provider(&cfg).unwrap(), cfg);
    let t = Instant::now();
    let summary = worker.run_until_empty().await.unwrap();
    let took = t.elapsed();
    println!(
        "heuristic drained {} jobs in {took:?} ({:.0} jobs/s)",
        summary.done,
        summary.done as f64 / took.as_secs_f64()
    );
    let counts = store.job_counts().await.unwrap();
    assert_eq!(
        counts,
        JobCounts {
            done: 1000,
            ..Default::default()
        }
    );
}

#[tokio::test]
#[ignore = "a measurement, not a check; run with --ignored --nocapture"]
async fn a_stand_in_round_trip() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(openai_reply(&structured("Bread", json!([])), "stop")),
        )
        .mount(&server)
        .await;
    let p = OpenAiProvider::new(OpenAiSettings {
        base_url: format!("{}/v1", server.uri()),
        model: "m".into(),
        api_key: None,
        headers: Default::default(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let conv = convo_core::Conversation {
        id: "conv_1".into(),
        user: convo_core::UserId::new("alice").unwrap(),
        persona: convo_core::PersonaName::new("Helper").unwrap(),
        name: String::new(),
        name_set_by_person: false,
        created_at: convo_core::Timestamp::now(),
        updated_at: convo_core::Timestamp::now(),
        metadata: Default::default(),
        chat_log: Some("User: how do I bake bread?\nAssistant: ...".repeat(50)),
    };
    let t = Instant::now();
    let req = convo_cognition::prompt::build_request(
        &conv,
        &[],
        &Default::default(),
        Default::default(),
        None,
    );
    println!(
        "first prompt build (tokenizer load included): {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    for _ in 0..100 {
        convo_cognition::prompt::build_request(
            &conv,
            &[],
            &Default::default(),
            Default::default(),
            None,
        );
    }
    println!("prompt build: {:?} each", t.elapsed() / 100);
    use convo_cognition::Provider;
    p.complete(&req).await.unwrap();
    let t = Instant::now();
    for _ in 0..200 {
        p.complete(&req).await.unwrap();
    }
    println!("stand-in round trip: {:?} each", t.elapsed() / 200);
}
