//! End-to-end: what Kiro's body validator requires of the gateway, with the fake Kiro checking
//! each body as Kiro does (`FakeKiro::validate_bodies`): stub tool specs for tool history on a
//! turn that offers no tools, in all three APIs.

mod common;
mod fake_kiro;

use common::Gateway;
use fake_kiro::{FakeKiro, DEFAULT_TEXT};
use serde_json::{json, Value};

fn current_tools(sent: &Value) -> Vec<Value> {
    sent["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        ["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn validating() -> (FakeKiro, Gateway) {
    let fake = FakeKiro::start();
    fake.validate_bodies(true);
    let gw = Gateway::start(&fake.url(), &[]);
    (fake, gw)
}

#[test]
fn a_chat_follow_up_without_tools_sends_stub_specs_for_the_history_tools() {
    let (fake, gw) = validating();
    // The client dropped its tools on the follow-up turn (a compaction request, say).
    let body = json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "user", "content": "list the files"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "bash", "arguments": "{\"cmd\":\"ls\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"},
        {"role": "user", "content": "summarise the conversation"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["choices"][0]["message"]["content"], DEFAULT_TEXT);
    assert!(resp["choices"][0]["message"].get("tool_calls").is_none());

    let sent = fake.last_request().unwrap().body;
    let tools = current_tools(&sent);
    assert_eq!(tools.len(), 1, "{sent}");
    assert_eq!(tools[0]["toolSpecification"]["name"], "bash");
    let history = sent["conversationState"]["history"].as_array().unwrap();
    assert_eq!(
        history[1]["assistantResponseMessage"]["toolUses"],
        json!([{"toolUseId": "call_1", "name": "bash", "input": {"cmd": "ls"}}])
    );
    // The result and the next question are one user turn: the current message.
    assert_eq!(history.len(), 2);
    assert_eq!(
        sent["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
            ["toolResults"][0]["toolUseId"],
        "call_1"
    );
}

#[test]
fn an_anthropic_follow_up_without_tools_sends_stub_specs() {
    let (fake, gw) = validating();
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [
        {"role": "user", "content": "read it"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "hello"},
            {"type": "text", "text": "and now?"}]}]});
    let (status, resp) = gw.post("/v1/messages", &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["content"][0]["text"], DEFAULT_TEXT);
    let sent = fake.last_request().unwrap().body;
    let tools = current_tools(&sent);
    assert_eq!(tools.len(), 1, "{sent}");
    assert_eq!(tools[0]["toolSpecification"]["name"], "read_file");
}

#[test]
fn a_responses_follow_up_without_tools_sends_stub_specs() {
    let (fake, gw) = validating();
    let body = json!({"model": "claude-sonnet-4-5", "input": [
        {"type": "message", "role": "user", "content": "run it"},
        {"type": "function_call", "call_id": "fc_1", "name": "shell",
         "arguments": "{\"cmd\":\"true\"}"},
        {"type": "function_call_output", "call_id": "fc_1", "output": "done"},
        {"type": "message", "role": "user", "content": "thanks"}]});
    let (status, resp) = gw.post("/v1/responses", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let tools = current_tools(&sent);
    assert_eq!(tools.len(), 1, "{sent}");
    assert_eq!(tools[0]["toolSpecification"]["name"], "shell");
}
