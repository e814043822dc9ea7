//! End-to-end: the Anthropic Messages API against the fake Kiro (issues 7 and 10).

mod common;
mod fake_kiro;

use common::{parse_sse, Gateway, SseEvent, KEY};
use fake_kiro::{Ev, FakeKiro, Reply};
use serde_json::{json, Value};

fn message(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream,
           "messages": [{"role": "user", "content": "Hi"}]})
}

/// POST with Anthropic's headers; returns status, headers and body text.
fn post(gw: &Gateway, path: &str, body: &Value) -> (u16, Vec<(String, String)>, String) {
    gw.post_raw(
        path,
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        body.to_string().as_bytes(),
    )
}

fn post_json(gw: &Gateway, body: &Value) -> (u16, Value) {
    let (status, _, text) = post(gw, "/v1/messages", body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn stream(gw: &Gateway, body: &Value) -> Vec<SseEvent> {
    let (status, _, text) = post(gw, "/v1/messages", body);
    assert_eq!(status, 200, "{text}");
    parse_sse(&text)
}

/// Wait until the gateway has Kiro's model list (the reasoning schemas come from it).
fn wait_for_models(gw: &Gateway) {
    assert!(
        gw.wait_logs(|l| l.contains("models from Kiro"), 10),
        "no model list: {}",
        gw.logs()
    );
}

fn names(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.event.clone().unwrap_or_default())
        .collect()
}

/// The event names with consecutive duplicates (delta runs) folded.
fn folded(events: &[SseEvent]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        let j = e.json();
        let name = match e.event.as_deref() {
            Some("content_block_start") => format!(
                "start {}",
                j["content_block"]["type"].as_str().unwrap_or("?")
            ),
            Some("content_block_delta") => j["delta"]["type"].as_str().unwrap_or("?").to_string(),
            Some(n) => n.to_string(),
            None => "?".into(),
        };
        if out.last() != Some(&name) {
            out.push(name);
        }
    }
    out
}

fn deltas(events: &[SseEvent], kind: &str, field: &str) -> String {
    events
        .iter()
        .map(|e| e.json())
        .filter(|j| j["delta"]["type"] == kind)
        .map(|j| j["delta"][field].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn non_streaming_message_is_assembled() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let (status, body) = post_json(&gw, &message(false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Hello from fake Kiro"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(body["usage"]["input_tokens"], 42);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(
        fake.last_request().unwrap().model_id().as_deref(),
        Some("claude-sonnet-4.5")
    );
}

#[test]
fn streaming_text_has_the_exact_event_order() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let events = stream(&gw, &message(true));
    assert_eq!(
        folded(&events),
        [
            "message_start",
            "start text",
            "text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        deltas(&events, "text_delta", "text"),
        "Hello from fake Kiro"
    );
    let start = events[0].json();
    assert_eq!(start["message"]["model"], "claude-sonnet-4-5");
    assert_eq!(start["message"]["content"], json!([]));
    assert!(start["message"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["input_tokens"], 42);
    // Every block index is started, then stopped, once.
    assert!(events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_start"))
        .all(|e| e.json()["index"] == 0));
}

#[test]
fn key_by_x_api_key_or_bearer_and_errors_in_anthropic_shape() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = message(false).to_string();
    for headers in [vec![], vec![("x-api-key", "wrong")]] {
        let (status, _, text) = gw.post_raw("/v1/messages", &headers, body.as_bytes());
        assert_eq!(status, 401);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
    }
    assert!(fake.requests().is_empty());
    let (status, _, _) = post(&gw, "/v1/messages", &message(false));
    assert_eq!(status, 200);
    let (status, _) = gw.post("/v1/messages", &message(false));
    assert_eq!(status, 200, "Bearer works too");
}

#[test]
fn invalid_requests_are_400_invalid_request_error_naming_the_field() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let mut no_max = message(false);
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let mut bad_role = message(false);
    bad_role["messages"][0]["role"] = json!("tool");
    let mut system_image = message(false);
    system_image["messages"].as_array_mut().unwrap().push(json!({"role": "system",
        "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}));
    let mut url_image = message(false);
    url_image["messages"][0]["content"] =
        json!([{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]);
    for (body, needle) in [
        (no_max, "max_tokens"),
        (bad_role, "role"),
        (
            system_image,
            "messages[1].content[0]: a system message may hold only text blocks",
        ),
        (url_image, "remote images not supported"),
    ] {
        let (status, v) = post_json(&gw, &body);
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains(needle), "{needle} not in {m}");
    }
    let (status, v) = post_json(
        &gw,
        &json!({"model": "mistral-tiny", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 404);
    assert_eq!(v["error"]["type"], "not_found_error");
    assert!(fake.requests().is_empty());
}

#[test]
fn count_tokens_answers_the_estimate_without_calling_kiro() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let short = json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Hi"}]});
    let long = json!({"model": "claude-sonnet-4-5", "system": [{"type": "text", "text": "Be kind."}],
        "messages": [{"role": "user", "content": "word ".repeat(2000)}],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}]});
    let count = |body: &Value| {
        let (status, _, text) = post(&gw, "/v1/messages/count_tokens", body);
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        v["input_tokens"].as_u64().unwrap()
    };
    let (a, b) = (count(&short), count(&long));
    assert!(a > 0);
    assert!(b > a + 1000, "{a} vs {b}");
    assert!(fake.requests().is_empty());
}

#[test]
fn tool_call_streams_input_json_as_fragments() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::tool_call(
        "tooluse_abc",
        "get_weather",
        r#"{"city":"Paris","unit":"c"}"#,
        3,
    ));
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let mut body = message(true);
    body["tools"] = json!([{"name": "get_weather", "description": "Weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let events = stream(&gw, &body);
    assert_eq!(
        folded(&events),
        [
            "message_start",
            "start tool_use",
            "input_json_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = events
        .iter()
        .find(|e| e.event.as_deref() == Some("content_block_start"))
        .unwrap()
        .json();
    assert_eq!(
        start["content_block"],
        json!({"type": "tool_use", "id": "tooluse_abc", "name": "get_weather", "input": {}})
    );
    let fragments = events
        .iter()
        .filter(|e| e.json()["delta"]["type"] == "input_json_delta")
        .count();
    assert!(fragments >= 2, "streamed in pieces, got {fragments}");
    let args: Value =
        serde_json::from_str(&deltas(&events, "input_json_delta", "partial_json")).unwrap();
    assert_eq!(args, json!({"city": "Paris", "unit": "c"}));
    assert_eq!(
        events[events.len() - 2].json()["delta"]["stop_reason"],
        "tool_use"
    );
    // The tool reached Kiro.
    let sent = fake.last_request().unwrap().body;
    let tools = &sent["conversationState"]["currentMessage"]["userInputMessage"]
        ["userInputMessageContext"]["tools"];
    assert_eq!(tools[0]["toolSpecification"]["name"], "get_weather");
}

#[test]
fn non_streaming_tool_call_has_a_parsed_input() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::tool_call("tooluse_1", "ls", r#"{"path":"/tmp"}"#, 2));
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let mut body = message(false);
    body["tools"] = json!([{"name": "ls", "input_schema": {"type": "object"}}]);
    let (status, v) = post_json(&gw, &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "tooluse_1", "name": "ls", "input": {"path": "/tmp"}}])
    );
    assert_eq!(v["stop_reason"], "tool_use");
}

#[test]
fn claude_code_tool_loop_reaches_kiro_translated() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let tools: Vec<Value> = (0..30)
        .map(|i| {
            json!({"name": format!("tool_{i}"), "description": format!("Tool {i}"),
            "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
            "cache_control": {"type": "ephemeral"}})
        })
        .collect();
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": false,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Use tools."}],
        "metadata": {"user_id": "user_abc"},
        "tools": tools,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Screenshot please"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Taking one."},
                {"type": "tool_use", "id": "tooluse_s1", "name": "tool_3", "input": {"x": "full"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "tooluse_s1", "is_error": true, "content": [
                    {"type": "text", "text": "partial capture"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
                {"type": "text", "text": "What do you see?", "cache_control": {"type": "ephemeral"}}]}
        ]
    });
    let (status, v) = post_json(&gw, &body);
    assert_eq!(status, 200, "{v}");
    let sent = fake.last_request().unwrap().body;
    let state = &sent["conversationState"];
    let history = state["history"].as_array().unwrap();
    let first = history[0]["userInputMessage"]["content"].as_str().unwrap();
    assert!(
        first.starts_with("You are Claude Code.\nUse tools."),
        "{first}"
    );
    let assistant = &history[1]["assistantResponseMessage"];
    assert_eq!(assistant["content"], "Taking one.");
    assert_eq!(assistant["toolUses"][0]["toolUseId"], "tooluse_s1");
    assert_eq!(assistant["toolUses"][0]["name"], "tool_3");
    assert_eq!(assistant["toolUses"][0]["input"], json!({"x": "full"}));
    let current = &state["currentMessage"]["userInputMessage"];
    assert!(current["content"]
        .as_str()
        .unwrap()
        .contains("What do you see?"));
    let ctx = &current["userInputMessageContext"];
    assert_eq!(ctx["tools"].as_array().unwrap().len(), 30);
    let result = &ctx["toolResults"][0];
    assert_eq!(result["toolUseId"], "tooluse_s1");
    assert_eq!(result["status"], "error");
    assert_eq!(result["content"][0]["text"], "partial capture");
    assert_eq!(current["images"][0]["format"], "png");
    assert_eq!(current["images"][0]["source"]["bytes"], "iVBORw0KGgo=");
}

#[test]
fn native_thinking_streams_kiros_signature() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::reasoning("Let me "),
        Ev::reasoning("think."),
        Ev::reasoning_signature("EqQBCkYreal"),
        Ev::text("Answer."),
        Ev::Metering(0.5),
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    wait_for_models(&gw);
    let mut body = message(true);
    body["model"] = json!("claude-opus-4.8");
    body["thinking"] = json!({"type": "adaptive"});
    let events = stream(&gw, &body);
    assert_eq!(
        folded(&events),
        [
            "message_start",
            "start thinking",
            "thinking_delta",
            "signature_delta",
            "content_block_stop",
            "start text",
            "text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        deltas(&events, "thinking_delta", "thinking"),
        "Let me think."
    );
    assert_eq!(
        deltas(&events, "signature_delta", "signature"),
        "EqQBCkYreal"
    );
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        sent["additionalModelRequestFields"]["output_config"]["effort"],
        "high"
    );
}

/// Claude Code sends `thinking.display: "omitted"`: thinking blocks come back with empty text and
/// a signature, and are replayed as they came. Kiro must still get the reasoning text back with
/// its own signature, exactly as when the text was shown.
#[test]
fn omitted_thinking_hides_the_text_and_its_replay_gives_kiro_the_signed_reasoning() {
    let fake = FakeKiro::start();
    let reply = || {
        Reply::events(vec![
            Ev::reasoning("Let me "),
            Ev::reasoning("think."),
            Ev::reasoning_signature("EqQBCkYreal"),
            Ev::text("Answer."),
            Ev::Metering(0.5),
        ])
    };
    fake.push_reply(reply());
    fake.push_reply(reply());
    let gw = Gateway::start(&fake.url(), &[]);
    wait_for_models(&gw);
    let ask = |stream: bool| {
        let mut body = message(stream);
        body["model"] = json!("claude-opus-4.8");
        body["thinking"] = json!({"type": "adaptive", "display": "omitted"});
        body
    };

    let events = stream(&gw, &ask(true));
    assert_eq!(
        folded(&events),
        [
            "message_start",
            "start thinking",
            "signature_delta",
            "content_block_stop",
            "start text",
            "text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = events[1].json();
    assert_eq!(
        start["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let streamed_sig = deltas(&events, "signature_delta", "signature");
    assert!(!streamed_sig.is_empty() && !streamed_sig.contains("EqQBCkYreal"));
    let all: String = events.iter().map(|e| e.data.clone()).collect();
    assert!(!all.contains("Let me"), "{all}");
    // Kiro is still asked for the reasoning text (the replay needs it).
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        sent["additionalModelRequestFields"]["thinking"]["display"],
        "summarized"
    );

    let (status, answer) = post_json(&gw, &ask(false));
    assert_eq!(status, 200, "{answer}");
    let block = &answer["content"][0];
    assert_eq!(block["type"], "thinking", "{answer}");
    assert_eq!(block["thinking"], "", "{answer}");
    let body_sig = block["signature"].as_str().unwrap().to_string();
    assert!(!body_sig.contains("EqQBCkYreal"), "{answer}");
    assert_eq!(answer["content"][1]["text"], "Answer.");

    // The history as Claude Code sends it back, and as a client shown the text would.
    let replay = |thinking: Value| {
        let mut body = ask(false);
        body["messages"] = json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [thinking, {"type": "text", "text": "Answer."}]},
            {"role": "user", "content": "next"}]);
        assert_eq!(post_json(&gw, &body).0, 200);
        fake.last_request().unwrap().body["conversationState"]["history"].clone()
    };
    let shown = replay(json!({"type": "thinking", "thinking": "Let me think.",
        "signature": "EqQBCkYreal"}));
    assert_eq!(
        shown[1]["assistantResponseMessage"]["reasoningContent"],
        json!({"reasoningText": {"text": "Let me think.", "signature": "EqQBCkYreal"}})
    );
    for sig in [streamed_sig, body_sig] {
        let omitted = replay(json!({"type": "thinking", "thinking": "", "signature": sig}));
        assert_eq!(omitted, shown);
    }
}

#[test]
fn prompt_tag_thinking_gets_a_placeholder_signature_and_the_budget() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("<thinking>plan"),
        Ev::text(" it</thinking>"),
        Ev::text("Done."),
        Ev::Metering(0.5),
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    let mut body = message(true);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let events = stream(&gw, &body);
    assert_eq!(
        folded(&events),
        [
            "message_start",
            "start thinking",
            "thinking_delta",
            "signature_delta",
            "content_block_stop",
            "start text",
            "text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(deltas(&events, "thinking_delta", "thinking"), "plan it");
    assert_eq!(deltas(&events, "text_delta", "text"), "Done.");
    let sig = deltas(&events, "signature_delta", "signature");
    assert!(sig.starts_with("sig_") && sig.len() == 36, "{sig}");
    let content = fake.last_request().unwrap().user_content().unwrap();
    assert!(
        content.contains("<max_thinking_length>2048</max_thinking_length>"),
        "{content}"
    );
}

/// Anthropic's thinking is opt-in: without `thinking` the model is not asked for thinking tags,
/// and the answer (stream or not) is text blocks only, as code reading `content[0].text` expects.
#[test]
fn a_request_without_thinking_gets_no_thinking_blocks() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = post_json(&gw, &message(false));
    assert_eq!(status, 200, "{body}");
    let types: Vec<&str> = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["text"], "{body}");
    let events = stream(&gw, &message(true));
    assert!(
        !folded(&events).iter().any(|e| e.contains("thinking")),
        "{:?}",
        folded(&events)
    );
    for sent in fake.requests() {
        let content = sent.user_content().unwrap();
        assert!(!content.contains("<thinking_mode>"), "{content}");
    }
}

/// The anthropic SDKs' tool runners open a server-held thread and then send only the newest
/// messages. The gateway keeps no threads: it refuses with the details code the SDKs act on
/// (they resend the whole conversation without `thread`), before Kiro sees anything, rather
/// than answer a lone tool result as if it were the whole conversation.
#[test]
fn a_message_thread_is_refused_with_the_code_the_sdks_fall_back_on() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    for (thread, stream) in [
        (json!({"type": "create"}), false),
        (
            json!({"type": "continue", "previous_message_id": "msg_0123"}),
            true,
        ),
    ] {
        let mut body = message(stream);
        body["thread"] = thread;
        let (status, headers, text) = post(&gw, "/v1/messages", &body);
        assert_eq!(status, 400, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert_eq!(
            v["error"]["details"]["error_code"], "thread_unsupported_request",
            "{v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("'thread'"),
            "{v}"
        );
        assert!(headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("x-should-retry") && v == "false"));
    }
    assert!(fake.requests().is_empty());
    let mut body = message(false);
    body["thread"] = Value::Null;
    let (status, text) = post_json(&gw, &body);
    assert_eq!(status, 200, "{text}");
}

#[test]
fn thinking_history_replays_real_signatures_only() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = |sig: &str| {
        json!({"model": "claude-opus-4.8", "max_tokens": 100, "thinking": {"type": "adaptive"},
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "pondering", "signature": sig},
                    {"type": "text", "text": "a"}]},
                {"role": "user", "content": "next"}]})
    };
    assert_eq!(post_json(&gw, &body("EqQBrealsig")).0, 200);
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        sent["conversationState"]["history"][1]["assistantResponseMessage"]["reasoningContent"],
        json!({"reasoningText": {"text": "pondering", "signature": "EqQBrealsig"}})
    );
    assert_eq!(
        post_json(&gw, &body("sig_0123456789abcdef0123456789abcdef")).0,
        200
    );
    let sent = fake.last_request().unwrap().body;
    assert!(
        sent["conversationState"]["history"][1]["assistantResponseMessage"]
            .get("reasoningContent")
            .is_none()
    );
}

#[test]
fn truncated_tool_call_ends_with_max_tokens_and_no_broken_call() {
    let cut = || {
        Reply::events(vec![
            Ev::tool_start("tooluse_big", "write_file"),
            Ev::tool_input(
                "tooluse_big",
                "write_file",
                r#"{"path":"a.txt","content":"aaaa"#,
            ),
        ])
    };
    let fake = FakeKiro::start();
    fake.push_replies([cut(), cut()]);
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let mut body = message(true);
    body["tools"] = json!([{"name": "write_file", "input_schema": {"type": "object"}}]);
    let events = stream(&gw, &body);
    assert_eq!(
        folded(&events),
        [
            "message_start",
            "start tool_use",
            "input_json_delta",
            "content_block_stop",
            "start text",
            "text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        events[events.len() - 2].json()["delta"]["stop_reason"],
        "max_tokens"
    );
    assert!(deltas(&events, "text_delta", "text").contains("[API Limitation]"));

    body["stream"] = json!(false);
    let (status, v) = post_json(&gw, &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stop_reason"], "max_tokens");
    let content = v["content"].as_array().unwrap();
    assert!(content.iter().all(|b| b["type"] != "tool_use"), "{v}");
    assert!(content[0]["text"]
        .as_str()
        .unwrap()
        .contains("[API Limitation]"));
}

#[test]
fn context_overflow_says_prompt_is_too_long_streaming_or_not() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::error(
        400,
        "Input is too long.",
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
    ));
    let gw = Gateway::start(&fake.url(), &[]);
    for stream in [false, true] {
        let (status, _, text) = post(&gw, "/v1/messages", &message(stream));
        assert_eq!(status, 400, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("prompt is too long"),
            "{v}"
        );
    }
    // Over the gateway's own body budget: refused before Kiro sees it.
    let before = fake.requests().len();
    let gw = Gateway::start(&fake.url(), &[("KIRO_MAX_BODY_BYTES", "20000")]);
    let mut big = message(false);
    big["messages"][0]["content"] = json!("x".repeat(50_000));
    let (status, v) = post_json(&gw, &big);
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("prompt is too long"));
    assert_eq!(fake.requests().len(), before);
}

#[test]
fn upstream_rate_limit_keeps_status_and_retry_after() {
    let fake = FakeKiro::start();
    fake.set_default_reply(
        Reply::error(429, "Too many requests", Some("THROTTLING")).header("Retry-After", "7"),
    );
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "1")]);
    let (status, headers, text) = post(&gw, "/v1/messages", &message(true));
    assert_eq!(status, 429, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    let retry = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.as_str());
    assert_eq!(retry, Some("7"));
}

#[test]
fn mid_stream_failure_ends_with_an_error_event_and_no_message_stop() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("partial"),
        Ev::exception("InternalServerException", "boom", None),
    ]));
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let events = stream(&gw, &message(true));
    let n = names(&events);
    assert_eq!(n.first().map(String::as_str), Some("message_start"));
    assert_eq!(n.last().map(String::as_str), Some("error"), "{n:?}");
    assert!(!n.iter().any(|e| e == "message_stop"));
    let err = events.last().unwrap().json();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "api_error");
}

#[test]
fn stop_sequences_cut_the_text_and_are_reported() {
    let fake = FakeKiro::start();
    fake.push_replies([
        Reply::text("one two STOP three"),
        Reply::text("one two STOP three"),
    ]);
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let mut body = message(true);
    body["stop_sequences"] = json!(["STOP"]);
    let events = stream(&gw, &body);
    assert_eq!(deltas(&events, "text_delta", "text"), "one two ");
    let d = events[events.len() - 2].json();
    assert_eq!(d["delta"]["stop_reason"], "stop_sequence");
    assert_eq!(d["delta"]["stop_sequence"], "STOP");
    body["stream"] = json!(false);
    let (_, v) = post_json(&gw, &body);
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], "STOP");
    assert_eq!(v["content"][0]["text"], "one two ");
}
