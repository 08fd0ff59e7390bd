//! The remote providers against local stand-ins speaking the OpenAI chat-completions
//! and Anthropic messages wire formats.

mod common;

use common::{anthropic_reply, openai_reply, structured};
use convo_cognition::reply::parse_reply;
use convo_cognition::{
    AnthropicProvider, AnthropicSettings, CognitionRequest, OpenAiProvider, OpenAiSettings,
    Provider, ProviderError, Secret, StructuredMode,
};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-test-very-secret-key-123";

fn openai(server: &MockServer, timeout: Duration) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiSettings {
        base_url: format!("{}/v1", server.uri()),
        model: "stand-in".into(),
        api_key: Some(Secret::new(KEY)),
        headers: [("X-Title".to_string(), "convo-tests".to_string())].into(),
        timeout,
    })
    .unwrap()
}

fn anthropic(server: &MockServer) -> AnthropicProvider {
    AnthropicProvider::new(AnthropicSettings {
        base_url: format!("{}/v1", server.uri()),
        model: "stand-in".into(),
        api_key: Some(Secret::new(KEY)),
        headers: Default::default(),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
}

fn request(max_tokens: u32) -> CognitionRequest {
    CognitionRequest {
        system: "You name conversations.".into(),
        user: "<transcript>\nUser: hi\n</transcript>".into(),
        schema_name: "conversation_cognition".into(),
        schema: convo_cognition::prompt::schema(),
        max_tokens,
        temperature: None,
        first_user_message: Some("hi".into()),
    }
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json::<Value>().unwrap())
        .collect()
}

#[tokio::test]
async fn openai_structured_reply_with_json_schema_and_the_key() {
    let server = MockServer::start().await;
    let answer = structured(
        "Trip to Lisbon",
        json!([{"op": "addfield", "fieldName": "Home city", "content": "Porto", "observations": "said so"}]),
    );
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("x-title", "convo-tests"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_reply(&answer, "stop")))
        .mount(&server)
        .await;
    let p = openai(&server, Duration::from_secs(2));
    let reply = p.complete(&request(300)).await.unwrap();
    assert_eq!(reply.tokens(), 120);
    let parsed = parse_reply(&reply.text).unwrap();
    assert_eq!(parsed.name.as_deref(), Some("Trip to Lisbon"));
    assert_eq!(parsed.operations.unwrap().unwrap().len(), 1);
    let sent = &bodies(&server).await[0];
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["strict"], true);
    assert_eq!(sent["max_tokens"], 300);
    assert_eq!(sent["messages"][0]["role"], "system");
    // The key is sent, but never shown.
    assert!(!format!("{p:?}").contains(KEY));
}

#[tokio::test]
async fn openai_seed_format_reply_is_understood() {
    let server = MockServer::start().await;
    let seed = "\"Garden planning\"\n```json\n[{'op': 'None'}]\n```";
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_reply(seed, "stop")))
        .mount(&server)
        .await;
    let reply = openai(&server, Duration::from_secs(2))
        .complete(&request(100))
        .await
        .unwrap();
    let parsed = parse_reply(&reply.text).unwrap();
    assert_eq!(parsed.name.as_deref(), Some("Garden planning"));
    assert_eq!(parsed.operations, Some(Ok(vec![])));
}

#[tokio::test]
async fn json_schema_refused_with_500_steps_down_to_json_object_and_remembers() {
    let server = MockServer::start().await;
    // What llama-cpp-python answers for OpenAI's json_schema response format.
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"response_format": {"type": "json_schema"}}),
        ))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "detail": [{"type": "literal_error", "loc": ["body", "response_format", "type"],
                        "msg": "Input should be 'text' or 'json_object'"}]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"response_format": {"type": "json_object"}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(openai_reply(&structured("Stepped down", json!([])), "stop")),
        )
        .mount(&server)
        .await;
    let p = openai(&server, Duration::from_secs(2));
    assert_eq!(p.mode(), StructuredMode::JsonSchema);
    let first = p.complete(&request(100)).await.unwrap();
    assert_eq!(
        parse_reply(&first.text).unwrap().name.as_deref(),
        Some("Stepped down")
    );
    assert_eq!(p.mode(), StructuredMode::JsonObject);
    p.complete(&request(100)).await.unwrap();
    let sent = bodies(&server).await;
    let modes: Vec<&str> = sent
        .iter()
        .map(|b| b["response_format"]["type"].as_str().unwrap())
        .collect();
    // The second call starts with what worked.
    assert_eq!(modes, ["json_schema", "json_object", "json_object"]);
    assert!(sent[1]["response_format"]["schema"]["properties"]["name"].is_object());
}

#[tokio::test]
async fn a_cut_reply_is_retried_once_with_double_the_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 100})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(openai_reply("{\"name\": \"Cut", "length")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 200})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(openai_reply(&structured("Whole", json!([])), "stop")),
        )
        .mount(&server)
        .await;
    let reply = openai(&server, Duration::from_secs(2))
        .complete(&request(100))
        .await
        .unwrap();
    assert_eq!(
        parse_reply(&reply.text).unwrap().name.as_deref(),
        Some("Whole")
    );
    assert_eq!(reply.tokens(), 240, "both tries count");
    assert_eq!(bodies(&server).await.len(), 2);
}

#[tokio::test]
async fn a_reply_cut_twice_is_a_retryable_error_keeping_the_text() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(openai_reply("{\"name\": \"Cu", "length")),
        )
        .mount(&server)
        .await;
    let err = openai(&server, Duration::from_secs(2))
        .complete(&request(50))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Truncated {
                max_tokens: 100,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(err.reply(), Some("{\"name\": \"Cu"));
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "7")
                .set_body_string("slow down"),
        )
        .mount(&server)
        .await;
    let err = openai(&server, Duration::from_secs(2))
        .complete(&request(50))
        .await
        .unwrap_err();
    assert!(err.is_retryable());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_a_retryable_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(openai_reply(&structured("Late", json!([])), "stop"))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let err = openai(&server, Duration::from_millis(300))
        .complete(&request(50))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Timeout(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_refused_request_is_permanent_and_never_shows_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": format!("Incorrect API key provided: {KEY}"), "type": "invalid_request_error"}
        })))
        .mount(&server)
        .await;
    let err = openai(&server, Duration::from_secs(2))
        .complete(&request(50))
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("401"), "{shown}");
    assert!(!shown.contains(KEY), "{shown}");
}

#[tokio::test]
async fn server_errors_are_retryable_and_connection_failures_too() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .mount(&server)
        .await;
    let err = openai(&server, Duration::from_secs(2))
        .complete(&request(50))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Server { status: 503, .. }),
        "{err:?}"
    );
    // Nothing listens on a port we bound and closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = OpenAiProvider::new(OpenAiSettings {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "m".into(),
        api_key: None,
        headers: Default::default(),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    let err = dead.complete(&request(50)).await.unwrap_err();
    assert!(matches!(err, ProviderError::Connection(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn anthropic_structured_reply_through_a_forced_tool() {
    let server = MockServer::start().await;
    let input = json!({"name": "Tent for the Alps", "profile_operations": [
        {"op": "addfield", "fieldName": "Hobbies", "content": "Mountaineering", "observations": "plans an Alps trip"}
    ]});
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_reply(input, "tool_use")))
        .mount(&server)
        .await;
    let reply = anthropic(&server).complete(&request(200)).await.unwrap();
    assert_eq!(reply.tokens(), 120);
    let parsed = parse_reply(&reply.text).unwrap();
    assert_eq!(parsed.name.as_deref(), Some("Tent for the Alps"));
    assert_eq!(parsed.operations.unwrap().unwrap().len(), 1);
    let sent = &bodies(&server).await[0];
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "conversation_cognition"})
    );
    assert_eq!(sent["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(sent["system"], "You name conversations.");
}

#[tokio::test]
async fn anthropic_errors_and_cut_replies() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 64})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(anthropic_reply(json!({}), "max_tokens")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 128})))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_reply(
            json!({"name": "Roomier", "profile_operations": []}),
            "tool_use",
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 16})))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3")
                .set_body_json(json!({"type": "error", "error": {"type": "rate_limit_error"}})),
        )
        .mount(&server)
        .await;
    let p = anthropic(&server);
    let reply = p.complete(&request(64)).await.unwrap();
    assert_eq!(
        parse_reply(&reply.text).unwrap().name.as_deref(),
        Some("Roomier")
    );
    let err = p.complete(&request(16)).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
}
