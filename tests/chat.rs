//! End-to-end: the OpenAI Chat Completions path against the fake Kiro (issue 3).

mod common;
mod fake_kiro;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Gateway, KEY};
use fake_kiro::{Ev, FakeKiro, Reply};
use serde_json::{json, Value};

fn chat(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
           "messages": [{"role": "user", "content": "Hi"}]})
}

#[test]
fn non_streaming_chat_returns_the_assembled_completion() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post("/v1/chat/completions", &chat(false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from fake Kiro"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    // The fake's metadataEvent reports 42 input tokens.
    assert_eq!(body["usage"]["prompt_tokens"], 42);
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(body["usage"]["credits_used"], 0.25);
    let sent = fake.last_request().unwrap();
    assert_eq!(sent.model_id().as_deref(), Some("claude-sonnet-4.5"));
}

#[test]
fn streaming_chat_sends_role_first_then_deltas_then_done() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let mut body = chat(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = gw.stream("/v1/chat/completions", &body);
    let last = events.last().unwrap();
    assert_eq!(last.data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from fake Kiro");
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")], "exactly one finish_reason");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 42);
}

#[test]
fn without_include_usage_no_usage_chunk_is_sent() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let events = gw.stream("/v1/chat/completions", &chat(true));
    assert!(events.iter().all(|e| e.json().get("usage").is_none()));
}

#[test]
fn first_chunk_leaves_before_kiro_finishes() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("first"),
        Ev::Sleep(Duration::from_millis(1500)),
        Ev::text(" second"),
        Ev::Metering(0.1),
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    let started = Instant::now();
    let resp = common::agent()
        .post(&format!("{}/v1/chat/completions", gw.url))
        .header("authorization", &format!("Bearer {KEY}"))
        .send(chat(true).to_string().as_bytes())
        .unwrap();
    let mut reader = resp.into_body().into_reader();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("first") {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let first_at = started.elapsed();
    assert!(
        first_at < Duration::from_millis(1000),
        "first chunk after {first_at:?}"
    );
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.contains(" second") && rest.contains("[DONE]"));
}

#[test]
fn history_and_system_prompt_reach_kiro_in_order() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let body = json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "uno"},
        {"role": "user", "content": "two"},
        {"role": "user", "content": "three"}
    ]});
    let (status, _) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200);
    let sent = fake.last_request().unwrap().body;
    let state = &sent["conversationState"];
    let history = state["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    let first = history[0]["userInputMessage"]["content"].as_str().unwrap();
    assert!(first.starts_with("You are terse."), "{first}");
    assert!(first.ends_with("one"), "{first}");
    assert_eq!(history[1]["assistantResponseMessage"]["content"], "uno");
    // Two user turns in a row are merged.
    let current = state["currentMessage"]["userInputMessage"]["content"]
        .as_str()
        .unwrap();
    assert_eq!(current, "two\nthree");
    assert_eq!(state["chatTriggerType"], "MANUAL");
    assert_eq!(
        state["currentMessage"]["userInputMessage"]["modelId"],
        "claude-sonnet-4.5"
    );
    assert_eq!(
        state["currentMessage"]["userInputMessage"]["origin"],
        "AI_EDITOR"
    );
    assert_eq!(state["rootConversationId"], state["conversationId"]);
    assert_eq!(sent["agentMode"], "vibe");
    assert_eq!(sent["profileArn"], fake_kiro::DEFAULT_PROFILE_ARN);
}

#[test]
fn runtime_identity_headers_are_the_ide_shape() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    assert_eq!(gw.post("/v1/chat/completions", &chat(false)).0, 200);
    let r = fake.last_request().unwrap();
    assert_eq!(r.path, "/");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(
        r.header("x-amz-target").as_deref(),
        Some("KiroRuntimeService.GenerateAssistantResponse")
    );
    let ua = r.header("user-agent").unwrap();
    assert!(ua.starts_with("aws-sdk-js/1.0.0 ua/2.1 "), "{ua}");
    assert!(
        ua.contains("api/kiroruntime#1.0.0 m/N KiroIDE-1.1.70-"),
        "{ua}"
    );
    let machine_id = ua
        .split("KiroIDE-1.1.70-")
        .nth(1)
        .unwrap()
        .split('-')
        .next()
        .unwrap();
    assert_eq!(machine_id.len(), 64);
    assert!(machine_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(r.header("x-amz-user-agent").unwrap().contains(machine_id));
    assert_eq!(
        r.header("x-amzn-kiro-client-attribution").as_deref(),
        Some("kiro-ide")
    );
    assert!(r.header("amz-sdk-invocation-id").is_some());
    assert!(r.header("tokentype").is_none());
    assert!(r.bearer().unwrap().starts_with("fake-access-"));

    // The machine id is stable across restarts for the same login.
    drop(gw);
    let gw = Gateway::start(&fake.url(), &[]);
    assert_eq!(gw.post("/v1/chat/completions", &chat(false)).0, 200);
    let ua2 = fake.last_request().unwrap().header("user-agent").unwrap();
    assert!(ua2.contains(machine_id));
}

#[test]
fn cli_profile_uses_the_streaming_service_target() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("KIRO_CLIENT_PROFILE", "cli")]);
    assert_eq!(gw.post("/v1/chat/completions", &chat(false)).0, 200);
    let r = fake.last_request().unwrap();
    assert_eq!(
        r.header("x-amz-target").as_deref(),
        Some("AmazonCodeWhispererStreamingService.GenerateAssistantResponse")
    );
    assert!(r.header("user-agent").unwrap().starts_with("aws-sdk-rust/"));
}

#[test]
fn legacy_profile_posts_json_to_the_path() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("KIRO_CLIENT_PROFILE", "ide-legacy")]);
    assert_eq!(gw.post("/v1/chat/completions", &chat(false)).0, 200);
    let r = fake.last_request().unwrap();
    assert_eq!(r.path, "/generateAssistantResponse");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(r.header("x-amz-target").is_none());
    assert!(r.body.get("agentMode").is_none());
    assert!(r.header("user-agent").unwrap().contains("KiroIDE-1.1.70-"));
}

#[test]
fn wrong_or_missing_key_gets_openai_shaped_401() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = chat(false).to_string();
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "bearer test-proxy-key-0123456789")],
        vec![("x-api-key", "wrong")],
    ] {
        let (status, _, text) = gw.post_raw("/v1/chat/completions", &headers, body.as_bytes());
        assert_eq!(status, 401, "{headers:?}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["type"], "authentication_error");
    }
    let (status, _, _) = gw.post_raw(
        "/v1/chat/completions",
        &[("x-api-key", KEY)],
        body.as_bytes(),
    );
    assert_eq!(status, 200);
    assert!(
        fake.requests().len() == 1,
        "only the authorised request reached Kiro"
    );
    // / and /health need no key.
    let r = common::agent()
        .get(&format!("{}/health", gw.url))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn models_list_has_every_kiro_page_and_the_readme_names() {
    let fake = FakeKiro::start();
    fake.set_models_page_size(2);
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.models_count() >= 2));
    let mut ids = Vec::new();
    for _ in 0..50 {
        let (status, body) = gw.get("/v1/models");
        assert_eq!(status, 200);
        assert_eq!(body["object"], "list");
        ids = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        if ids.iter().any(|i| i == "gpt-5.6-sol") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // gpt-5.6-sol is on the fake's second page.
    for want in [
        "claude-sonnet-4.5",
        "gpt-5.6-sol",
        "claude-sonnet-4-5",
        "claude-3-7-sonnet-20250219",
        "auto-kiro",
    ] {
        assert!(ids.iter().any(|i| i == want), "{want} missing from {ids:?}");
    }
    let r = common::agent()
        .get(&format!("{}/v1/models", gw.url))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn unknown_model_is_404_listing_valid_names() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post(
        "/v1/chat/completions",
        &json!({"model": "mistral-tiny", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("claude-sonnet-4.5"));
    assert!(fake.requests().is_empty());
}

#[test]
fn outdated_ide_version_is_refused_at_start() {
    let mut env = common::base_env("http://127.0.0.1:9");
    env.push(("KIRO_IDE_VERSION".into(), "0.7.45".into()));
    let (code, out) = common::run_to_exit(&env, &[]);
    assert_eq!(code, 2);
    assert!(out.contains("KIRO_IDE_VERSION"), "{out}");
    assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
}

#[test]
fn no_key_refuses_a_public_address_but_serves_loopback() {
    let mut env: Vec<(String, String)> = common::base_env("http://127.0.0.1:9")
        .into_iter()
        .filter(|(k, _)| k != "PROXY_API_KEY" && k != "SERVER_HOST")
        .collect();
    let (code, out) = common::run_to_exit(&env, &[]);
    assert_eq!(code, 2);
    assert!(
        out.contains("PROXY_API_KEY") && out.contains("127.0.0.1"),
        "{out}"
    );
    env.push((
        "PROXY_API_KEY".into(),
        "my-super-secret-password-123".into(),
    ));
    let (code, out) = common::run_to_exit(&env, &["--host", "0.0.0.0"]);
    assert_eq!(code, 2, "{out}");
    // Loopback works without a key, with a warning.
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("PROXY_API_KEY", "")]);
    assert!(gw.logs().contains("no PROXY_API_KEY"));
    let (status, _, _) = gw.post_raw(
        "/v1/chat/completions",
        &[],
        chat(false).to_string().as_bytes(),
    );
    assert_eq!(status, 200);
}

#[test]
fn help_and_version_exit_zero() {
    let (code, out) = common::run_to_exit(&[], &["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("kiro-gateway "));
    let (code, out) = common::run_to_exit(&[], &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--env-file"));
}

#[test]
fn dotenv_file_is_read_and_environment_wins() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("dotenv");
    std::fs::write(
        dir.join(".env"),
        format!("# settings\nPROXY_API_KEY=\"from-dotenv-key\"\nKIRO_API_URL={}\nMAX_RETRIES=not-a-number\n", fake.url()),
    )
    .unwrap();
    let mut env: Vec<(String, String)> = common::base_env(&fake.url())
        .into_iter()
        .filter(|(k, _)| k != "PROXY_API_KEY")
        .collect();
    // The .env's invalid MAX_RETRIES is overridden by the environment.
    env.push(("MAX_RETRIES".into(), "2".into()));
    let gw = Gateway::start_env(env, dir);
    let (status, _, _) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", "Bearer from-dotenv-key")],
        chat(false).to_string().as_bytes(),
    );
    assert_eq!(status, 200);
}
