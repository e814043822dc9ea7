//! End-to-end: tool names Kiro refuses (over 64 characters, or characters outside
//! `[A-Za-z0-9_-]`) reach Kiro as short aliases and come back under the client's own name, in
//! every API, streamed or not, and in the history sent back to Kiro
//! (`docs/kiro-wire.md#tool-names`). The fake Kiro validates every body as Kiro does.

mod common;
mod fake_kiro;

use common::Gateway;
use fake_kiro::{Ev, FakeKiro, Recorded, Reply};
use serde_json::{json, Value};

/// An MCP tool as Claude Code names it: 91 characters.
const LONG: &str =
    "mcp__weather_service_for_long_names__fetch_the_current_weather_report_for_a_given_city_name";
const DESCRIPTION: &str = "Weather report for a city.";

fn kiro_tools(body: &Value) -> Vec<Value> {
    body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        ["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The name Kiro was given for the weather tool.
fn kiro_name(rec: &Recorded) -> Option<String> {
    kiro_tools(&rec.body)
        .iter()
        .find(|t| t["toolSpecification"]["description"] == DESCRIPTION)
        .and_then(|t| t["toolSpecification"]["name"].as_str())
        .map(str::to_string)
}

/// A fake that validates bodies and, when the weather tool is offered, calls it by the name Kiro
/// was given.
fn start() -> (FakeKiro, Gateway) {
    let fake = FakeKiro::start();
    fake.validate_bodies(true);
    fake.set_reply_fn(|rec| {
        let name = kiro_name(rec)?;
        Some(Reply::events(Ev::tool_call(
            "tooluse_w1",
            &name,
            r#"{"city":"Paris"}"#,
            2,
        )))
    });
    let gw = Gateway::start(&fake.url(), &[]);
    (fake, gw)
}

fn alias_sent(fake: &FakeKiro) -> String {
    let alias = kiro_name(&fake.last_request().unwrap()).expect("the tool was offered");
    assert_ne!(alias, LONG);
    assert!(alias.len() <= 64, "{alias}");
    alias
}

#[test]
fn anthropic_sees_its_own_long_name_and_its_history_reaches_kiro_aliased() {
    let (fake, gw) = start();
    let tools = json!([{"name": LONG, "description": DESCRIPTION,
                        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let ask = json!({"role": "user", "content": "weather in Paris?"});
    let (status, resp) = gw.post(
        "/v1/messages",
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "tools": tools, "messages": [ask]}),
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["content"][0]["type"], "tool_use");
    assert_eq!(resp["content"][0]["name"], LONG);
    let alias = alias_sent(&fake);

    // The streamed answer too.
    let events = gw.stream(
        "/v1/messages",
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
                "tools": tools, "messages": [ask]}),
    );
    let start = events
        .iter()
        .map(|e| e.json())
        .find(|d| d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start["content_block"]["name"], LONG);
    assert!(!events.iter().any(|e| e.data.contains(&alias)));

    // The next turn carries the call in history: Kiro gets the alias there as well.
    fake.set_reply_fn(|_| None);
    let (status, resp) = gw.post(
        "/v1/messages",
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "tools": tools, "messages": [
            ask,
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "tooluse_w1", "name": LONG, "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "tooluse_w1", "content": "sunny"}]}]}),
    );
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        sent["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"][0]["name"],
        alias.as_str()
    );
    assert!(!sent.to_string().contains(&format!("\"name\":\"{LONG}\"")));
}

#[test]
fn chat_completions_see_their_own_name_streamed_and_not() {
    let (fake, gw) = start();
    let dotted = "weather.report";
    let tools = json!([
        {"type": "function", "function": {"name": LONG, "description": DESCRIPTION,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": dotted, "description": "other",
            "parameters": {"type": "object", "properties": {}}}}]);
    let body = json!({"model": "claude-sonnet-4-5", "tools": tools,
                      "messages": [{"role": "user", "content": "weather?"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        LONG
    );
    alias_sent(&fake);
    let names: Vec<String> = kiro_tools(&fake.last_request().unwrap().body)
        .iter()
        .map(|t| t["toolSpecification"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.contains(&dotted.to_string()), "{names:?}");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = gw.stream("/v1/chat/completions", &streamed);
    let name = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .find_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"]
                .as_str()
                .map(str::to_string)
        })
        .expect("a streamed tool call");
    assert_eq!(name, LONG);
}

#[test]
fn responses_see_their_own_name() {
    let (fake, gw) = start();
    let (status, resp) = gw.post(
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "input": "weather?",
                "tools": [{"type": "function", "name": LONG, "description": DESCRIPTION,
                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}),
    );
    assert_eq!(status, 200, "{resp}");
    let call = resp["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "function_call")
        .expect("a function_call item");
    assert_eq!(call["name"], LONG);
    alias_sent(&fake);
}
