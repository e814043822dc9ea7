//! End-to-end: one Kiro `conversationId` per conversation, kept for its whole life
//! (`docs/kiro-wire.md#conversation-id`): from the client's own conversation key when it sends
//! one, else from the system prompt and the first user message.

mod common;
mod fake_kiro;

use common::Gateway;
use fake_kiro::FakeKiro;
use serde_json::{json, Value};

fn start() -> (FakeKiro, Gateway) {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    (fake, gw)
}

/// The conversation id (and root id) of the last body Kiro received.
fn sent_id(fake: &FakeKiro) -> String {
    let body = fake.last_request().unwrap().body;
    let state = &body["conversationState"];
    let id = state["conversationId"].as_str().unwrap().to_string();
    assert_eq!(state["rootConversationId"], id.as_str());
    id
}

fn is_uuid(id: &str) -> bool {
    let parts: Vec<usize> = id.split('-').map(str::len).collect();
    parts == [8, 4, 4, 4, 12] && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

fn chat(gw: &Gateway, body: Value) {
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
}

#[test]
fn every_turn_of_a_chat_conversation_has_the_same_id_and_another_conversation_another() {
    let (fake, gw) = start();
    let first = json!({"role": "user", "content": "plan a trip"});
    chat(
        &gw,
        json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "system", "content": "be brief"}, first]}),
    );
    let id = sent_id(&fake);
    assert!(is_uuid(&id), "{id}");
    chat(
        &gw,
        json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "system", "content": "be brief"}, first,
        {"role": "assistant", "content": "Where to?"},
        {"role": "user", "content": "Rome"}]}),
    );
    assert_eq!(sent_id(&fake), id);
    chat(
        &gw,
        json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "user", "content": "something else"}]}),
    );
    assert_ne!(sent_id(&fake), id);
}

#[test]
fn openai_user_with_the_first_message_keys_the_conversation() {
    let (fake, gw) = start();
    let ask = |user: &str, follow_up: bool| {
        let mut messages = vec![json!({"role": "user", "content": "hello"})];
        if follow_up {
            messages.push(json!({"role": "assistant", "content": "hi"}));
            messages.push(json!({"role": "user", "content": "more"}));
        }
        json!({"model": "claude-sonnet-4-5", "user": user, "messages": messages})
    };
    chat(&gw, ask("alice", false));
    let alice = sent_id(&fake);
    chat(&gw, ask("alice", true));
    assert_eq!(sent_id(&fake), alice);
    chat(&gw, ask("bob", false));
    assert_ne!(sent_id(&fake), alice, "same first message, another user");
}

#[test]
fn anthropic_session_in_metadata_user_id_keys_the_conversation() {
    let (fake, gw) = start();
    let ask = |session: &str, text: &str| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 50,
               "metadata": {"user_id": format!("user_{}_account__session_{session}", "a".repeat(64))},
               "messages": [{"role": "user", "content": text}]})
    };
    let post = |body: Value| {
        let (status, resp) = gw.post("/v1/messages", &body);
        assert_eq!(status, 200, "{resp}");
    };
    post(ask("11111111-2222-3333-4444-555555555555", "first"));
    let id = sent_id(&fake);
    // Claude Code's compaction rewrites the first message; the session stays.
    post(ask(
        "11111111-2222-3333-4444-555555555555",
        "a summary of the first part",
    ));
    assert_eq!(sent_id(&fake), id);
    post(ask("99999999-2222-3333-4444-555555555555", "first"));
    assert_ne!(sent_id(&fake), id);
}

#[test]
fn responses_prompt_cache_key_and_previous_response_chain_keep_the_id() {
    let (fake, gw) = start();
    let (status, first) = gw.post(
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "input": "start", "prompt_cache_key": "codex-conv-1"}),
    );
    assert_eq!(status, 200, "{first}");
    let id = sent_id(&fake);
    let (status, _) = gw.post(
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "input": "other words", "prompt_cache_key": "codex-conv-1"}),
    );
    assert_eq!(status, 200);
    assert_eq!(sent_id(&fake), id);

    // Without a key, a previous_response_id chain is still one conversation.
    let (status, root) = gw.post(
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "input": "chain start"}),
    );
    assert_eq!(status, 200);
    let chain = sent_id(&fake);
    assert_ne!(chain, id);
    let (status, _) = gw.post(
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "input": "next",
                "previous_response_id": root["id"]}),
    );
    assert_eq!(status, 200);
    assert_eq!(sent_id(&fake), chain);
}
