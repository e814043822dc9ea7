//! End-to-end: long agent sessions (issue 10) — overflow errors clients compact on, optional
//! trimming, token figures from Kiro's context usage, cut tool calls.

mod common;
mod fake_kiro;

use common::{Gateway, KEY};
use fake_kiro::{Ev, FakeKiro, Reply};
use serde_json::{json, Value};

/// A conversation of `turns` old turns of `size` bytes each, with a tool call in the middle.
fn long_chat(turns: usize, size: usize) -> Value {
    let mut messages = vec![json!({"role": "system", "content": "SYSTEM PROMPT"})];
    for i in 0..turns {
        messages.push(json!({"role": "user", "content": format!("q{i} {}", "x".repeat(size))}));
        if i == turns / 2 {
            messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_mid", "type": "function", "function": {"name": "read", "arguments": "{\"p\":1}"}}]}));
            messages
                .push(json!({"role": "tool", "tool_call_id": "call_mid", "content": "file body"}));
        }
        messages.push(json!({"role": "assistant", "content": format!("a{i}")}));
    }
    messages.push(json!({"role": "user", "content": "the last question"}));
    json!({"model": "claude-sonnet-4-5", "messages": messages,
           "tools": [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]})
}

#[test]
fn conversation_over_the_body_budget_is_context_length_exceeded_for_openai() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("KIRO_MAX_BODY_BYTES", "20000")]);
    let (status, body) = gw.post("/v1/chat/completions", &long_chat(10, 3000));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        fake.requests().is_empty(),
        "Kiro never sees an oversize body"
    );
    // Streaming requests get the same error before any byte of a stream.
    let mut b = long_chat(10, 3000);
    b["stream"] = json!(true);
    let (status, body) = gw.post("/v1/chat/completions", &b);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
}

#[test]
fn kiro_saying_input_is_too_long_is_context_length_exceeded_without_retries() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    fake.push_reply(Reply::error(
        400,
        "Input is too long.",
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
    ));
    let (status, body) = gw.post("/v1/chat/completions", &long_chat(2, 10));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(fake.requests().len(), 1);
    // Anthropic clients read "prompt is too long".
    fake.push_reply(Reply::error(
        400,
        "Input is too long.",
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
    ));
    let (status, body) = gw.post(
        "/v1/messages",
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("prompt is too long"),
        "{body}"
    );
}

#[test]
fn trimming_drops_the_oldest_turns_and_says_so() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("KIRO_MAX_BODY_BYTES", "20000"),
            ("HISTORY_TRIM", "oldest"),
            ("FAKE_REASONING", "false"),
        ],
    );
    let (status, headers, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {KEY}"))],
        long_chat(10, 3000).to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let trimmed = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-kiro-gateway-trimmed"))
        .map(|(_, v)| v.clone())
        .expect("trimmed header");
    let n: usize = trimmed.trim_end_matches(" turns").parse().unwrap();
    assert!(n >= 4, "{trimmed}");
    let sent = fake.last_request().unwrap();
    assert!(sent.raw_body.len() <= 20000);
    let history = sent.body["conversationState"]["history"]
        .as_array()
        .unwrap()
        .clone();
    let first = history[0]["userInputMessage"]["content"].as_str().unwrap();
    assert!(
        first.starts_with("SYSTEM PROMPT"),
        "the system prompt survives: {first:.60}"
    );
    assert!(!sent.raw_body.contains("q0 "), "the oldest turn is gone");
    assert_eq!(sent.user_content().unwrap(), "the last question");
    // A tool call is never separated from its result.
    let uses = sent.raw_body.contains("\"toolUses\"");
    let results = sent.raw_body.contains("\"toolResults\"");
    assert_eq!(uses, results, "toolUses and toolResults travel together");
    assert!(gw.wait_logs(|l| l.contains("history trimmed"), 5));
}

#[test]
fn context_usage_becomes_the_prompt_token_count() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    // 10 % of claude-sonnet-4.5's 200000-token window, no metadataEvent.
    fake.push_reply(Reply::events(vec![
        Ev::text("four words right here"),
        Ev::Metering(0.1),
        Ev::ContextUsage(10.0),
    ]));
    let (status, body) = gw.post(
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status, 200);
    let prompt = body["usage"]["prompt_tokens"].as_u64().unwrap();
    let completion = body["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(prompt + completion, 20000, "{body}");
}

#[test]
fn count_tokens_learns_from_kiros_context_usage() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let req = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
                     "messages": [{"role": "user", "content": "hello there, how are you today?"}]});
    let (_, before) = gw.post("/v1/messages/count_tokens", &req);
    let before = before["input_tokens"].as_u64().unwrap();
    assert!(before > 0);
    // Kiro says the same request used far more tokens than we estimated.
    fake.push_reply(Reply::events(vec![
        Ev::text("ok"),
        Ev::Metadata {
            input: before * 3,
            output: 1,
        },
    ]));
    assert_eq!(gw.post("/v1/messages", &req).0, 200);
    let (_, after) = gw.post("/v1/messages/count_tokens", &req);
    let after = after["input_tokens"].as_u64().unwrap();
    assert!(
        after > before,
        "count_tokens corrected upward: {before} → {after}"
    );
}

#[test]
fn a_cut_tool_call_ends_with_length_and_is_logged() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    fake.push_reply(Reply::events(vec![
        Ev::tool_start("t1", "write_file"),
        Ev::tool_input(
            "t1",
            "write_file",
            "{\"path\": \"a.txt\", \"content\": \"very long",
        ),
        Ev::Metering(0.1),
    ]));
    let body = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "write"}],
        "tools": [{"type": "function", "function": {"name": "write_file", "parameters": {"type": "object"}}}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200);
    let choice = &resp["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    assert!(
        choice["message"].get("tool_calls").is_none(),
        "no broken call: {resp}"
    );
    assert!(choice["message"]["content"]
        .as_str()
        .unwrap()
        .contains("smaller"));
    assert!(gw.wait_logs(|l| l.contains("truncated tool call"), 5));
}
