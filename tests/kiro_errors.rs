//! End-to-end: the errors Kiro sends since late 2026 — a model temporarily unavailable (before and
//! after output started), a suspended account, a refused reasoning signature — and answers
//! without token counts.

mod common;
mod fake_kiro;

use common::{Gateway, KEY};
use fake_kiro::{Ev, FakeKiro, Reply, DEFAULT_TEXT};
use serde_json::{json, Value};

fn chat(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
           "messages": [{"role": "user", "content": "Hi"}]})
}

fn unavailable() -> Reply {
    Reply::error(
        400,
        "The model is temporarily unavailable. Please try again later.",
        Some("MODEL_TEMPORARILY_UNAVAILABLE"),
    )
}

#[test]
fn a_model_temporarily_unavailable_before_the_first_byte_is_retried_on_the_same_endpoint() {
    let fake = FakeKiro::start();
    fake.push_reply(unavailable());
    fake.push_reply(Reply::events(vec![Ev::exception(
        "ServiceUnavailableException",
        "Model temporarily unavailable",
        Some("MODEL_TEMPORARILY_UNAVAILABLE"),
    )]));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post("/v1/chat/completions", &chat(false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/", "/", "/"]);
}

#[test]
fn a_model_temporarily_unavailable_on_one_account_moves_to_the_next() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("accounts");
    let path = dir.join("accounts.json");
    std::fs::write(
        &path,
        json!([
            {"name": "first", "api_key": "ksk_first", "priority": 0},
            {"name": "second", "api_key": "ksk_second", "priority": 1}
        ])
        .to_string(),
    )
    .unwrap();
    let path = path.to_string_lossy().to_string();
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_ACCOUNTS_FILE", &path), ("REFRESH_TOKEN", "")],
    );
    fake.push_reply(unavailable());
    let (status, body) = gw.post("/v1/chat/completions", &chat(false));
    assert_eq!(status, 200, "{body}");
    let bearers: Vec<String> = fake.requests().iter().filter_map(|r| r.bearer()).collect();
    assert_eq!(bearers, vec!["ksk_first", "ksk_second"]);
}

#[test]
fn a_model_temporarily_unavailable_after_output_ends_the_stream_with_an_error() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("The first half"),
        Ev::exception(
            "ServiceUnavailableException",
            "Model temporarily unavailable",
            Some("MODEL_TEMPORARILY_UNAVAILABLE"),
        ),
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = gw.stream("/v1/chat/completions", &chat(true));
    let texts: String = events
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(texts, "The first half");
    let error = events
        .iter()
        .find(|e| e.json().get("error").is_some())
        .expect("an error event");
    let message = error.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("MODEL_TEMPORARILY_UNAVAILABLE"),
        "{message}"
    );
    // Output had started: never sent again.
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn a_suspended_account_is_a_403_that_says_so_and_is_not_retried() {
    for reply in [
        Reply::error(
            403,
            "Your account is temporarily suspended.",
            Some("TEMPORARILY_SUSPENDED"),
        ),
        Reply::error(
            403,
            "We have locked your account for unusual activity.",
            None,
        ),
        Reply::error(403, "This account temporarily is suspended", None),
    ] {
        let fake = FakeKiro::start();
        let gw = Gateway::start(&fake.url(), &[]);
        fake.push_reply(reply.clone());
        let (status, body) = gw.post("/v1/chat/completions", &chat(false));
        assert_eq!(status, 403, "{reply:?}: {body}");
        assert_eq!(body["error"]["type"], "permission_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("suspended"), "{message}");
        // No token refresh, no retry, no other host.
        assert_eq!(fake.requests().len(), 1, "{reply:?}");
        assert_eq!(fake.refresh_count(), 1, "{reply:?}");
        assert!(fake.unmatched_requests().is_empty());
    }
}

#[test]
fn a_refused_reasoning_signature_is_sent_once_more_without_the_history_reasoning() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::error(
        400,
        "Invalid signature in thinking block",
        Some("THINKING_SIGNATURE_INVALID"),
    ));
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 200,
        "messages": [
            {"role": "user", "content": "Think first"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I considered it", "signature": "SIG-OLD"},
                {"type": "text", "text": "Done"}
            ]},
            {"role": "user", "content": "And now?"}
        ]
    });
    let (status, _, text) = gw.post_raw(
        "/v1/messages",
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let reasoning = |r: &fake_kiro::Recorded| {
        r.body["conversationState"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| {
                t["assistantResponseMessage"]
                    .get("reasoningContent")
                    .is_some()
            })
    };
    assert!(reasoning(&reqs[0]), "{}", reqs[0].raw_body);
    assert!(!reasoning(&reqs[1]), "{}", reqs[1].raw_body);
    assert!(!reqs[1].raw_body.contains("SIG-OLD"));
}

#[test]
fn a_second_signature_refusal_reaches_the_client() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::error(
        400,
        "Invalid signature in thinking block",
        Some("THINKING_SIGNATURE_INVALID"),
    ));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post("/v1/chat/completions", &chat(false));
    assert_eq!(status, 400, "{body}");
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn an_answer_without_token_counts_gets_usage_from_the_context_percentage() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("Four words of answer"),
        Ev::Metering(0.02),
        Ev::ContextUsage(1.0),
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post("/v1/chat/completions", &chat(false));
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!(completion > 0, "{usage}");
    // 1 % of claude-sonnet-4.5's 200k window, less the output.
    assert!((1500..=2000).contains(&prompt), "{usage}");
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);
}
