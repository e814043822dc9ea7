//! End-to-end: the OpenAI Responses API (`POST /v1/responses`) against the fake Kiro (issue 11):
//! whole and streamed responses, tool-call round trips, reasoning, follow-ups by
//! `previous_response_id`, and the errors clients act on.

mod common;
mod fake_kiro;

use common::{Gateway, SseEvent};
use fake_kiro::{Ev, FakeKiro, Reply, DEFAULT_TEXT};
use serde_json::{json, Value};

const MODEL: &str = "claude-sonnet-4-5";

fn start() -> (FakeKiro, Gateway) {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    (fake, gw)
}

/// The events' JSON, after checking what every Responses stream must satisfy: the SSE event
/// name is the `type`, sequence numbers count from 0 without gaps, `response.created` comes
/// first and exactly one terminal event comes last.
fn checked(events: &[SseEvent]) -> Vec<Value> {
    let data: Vec<Value> = events.iter().map(SseEvent::json).collect();
    for (i, (e, d)) in events.iter().zip(&data).enumerate() {
        assert_eq!(e.event.as_deref(), d["type"].as_str(), "{d}");
        assert_eq!(d["sequence_number"], json!(i), "{d}");
    }
    assert_eq!(data[0]["type"], "response.created");
    assert_eq!(data[1]["type"], "response.in_progress");
    let terminal = [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ];
    let ends: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, d)| terminal.contains(&d["type"].as_str().unwrap_or("")))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(ends, vec![data.len() - 1], "one terminal event, last");
    data
}

fn types(data: &[Value]) -> Vec<&str> {
    data.iter().map(|d| d["type"].as_str().unwrap()).collect()
}

fn kiro_history(body: &Value) -> Vec<Value> {
    body["conversationState"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn current(body: &Value) -> &Value {
    &body["conversationState"]["currentMessage"]["userInputMessage"]
}

#[test]
fn non_streaming_response_is_the_whole_response_object() {
    let (fake, gw) = start();
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "input": "Hi", "instructions": "Be terse."}),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["instructions"], "Be terse.");
    let out = body["output"].as_array().unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "message");
    assert_eq!(out[0]["role"], "assistant");
    assert!(out[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(out[0]["content"][0]["type"], "output_text");
    assert_eq!(out[0]["content"][0]["text"], DEFAULT_TEXT);
    assert_eq!(body["usage"]["input_tokens"], 42);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        body["usage"]["total_tokens"].as_u64().unwrap(),
        42 + body["usage"]["output_tokens"].as_u64().unwrap()
    );
    let sent = fake.last_request().unwrap().body;
    let content = current(&sent)["content"].as_str().unwrap();
    assert!(content.starts_with("Be terse."), "{content}");
    assert!(content.ends_with("Hi"), "{content}");
}

#[test]
fn streamed_text_follows_the_documented_event_order() {
    let (_fake, gw) = start();
    let events = gw.stream(
        "/v1/responses",
        &json!({"model": MODEL, "input": "Hi", "stream": true}),
    );
    let data = checked(&events);
    let t = types(&data);
    assert_eq!(
        &t[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(
        &t[t.len() - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let text: String = data
        .iter()
        .filter(|d| d["type"] == "response.output_text.delta")
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, DEFAULT_TEXT);
    let id = data[0]["response"]["id"].as_str().unwrap();
    let done = &data.last().unwrap()["response"];
    assert_eq!(done["id"], id);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], DEFAULT_TEXT);
    assert_eq!(done["usage"]["input_tokens"], 42);
}

#[test]
fn tool_call_round_trip_with_function_call_output_and_previous_response_id() {
    let (fake, gw) = start();
    fake.push_reply(Reply::tool_call(
        "tooluse_w1",
        "get_weather",
        r#"{"city":"Paris"}"#,
        3,
    ));
    let tools = json!([{"type": "function", "name": "get_weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]);
    let events = gw.stream(
        "/v1/responses",
        &json!({"model": MODEL, "stream": true, "tools": tools,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]}]}),
    );
    let data = checked(&events);
    let deltas: Vec<&str> = data
        .iter()
        .filter(|d| d["type"] == "response.function_call_arguments.delta")
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas.len(), 3, "arguments stream fragment by fragment");
    assert_eq!(deltas.concat(), r#"{"city":"Paris"}"#);
    let args_done = data
        .iter()
        .find(|d| d["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(args_done["arguments"], r#"{"city":"Paris"}"#);
    let done = &data.last().unwrap()["response"];
    assert_eq!(done["status"], "completed");
    let call = &done["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["call_id"], "tooluse_w1");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], r#"{"city":"Paris"}"#);
    assert!(call["id"].as_str().unwrap().starts_with("fc_"));
    let first_id = done["id"].as_str().unwrap();
    // Sent Kiro the tool in the current message.
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        current(&sent)["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"],
        "get_weather"
    );

    // The follow-up sends only the tool output; the gateway supplies the history.
    fake.push_reply(Reply::text("It is sunny in Paris."));
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": first_id, "tools": tools,
            "input": [{"type": "function_call_output", "call_id": "tooluse_w1", "output": "sunny, 24C"}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["previous_response_id"], first_id);
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "It is sunny in Paris."
    );
    let sent = fake.last_request().unwrap().body;
    let history = kiro_history(&sent);
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0]["userInputMessage"]["content"]
        .as_str()
        .unwrap()
        .contains("Weather in Paris?"));
    let uses = &history[1]["assistantResponseMessage"]["toolUses"];
    assert_eq!(uses[0]["toolUseId"], "tooluse_w1");
    assert_eq!(uses[0]["input"], json!({"city": "Paris"}));
    let results = &current(&sent)["userInputMessageContext"]["toolResults"];
    assert_eq!(results[0]["toolUseId"], "tooluse_w1");
    assert!(results[0]["content"].to_string().contains("sunny, 24C"));
}

#[test]
fn full_input_with_function_call_items_works_without_the_store() {
    let (fake, gw) = start();
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "store": false,
            "tools": [{"type": "function", "name": "ls", "parameters": {"type": "object"}}],
            "input": [
                {"role": "user", "content": "list files"},
                {"type": "function_call", "call_id": "call_1", "name": "ls", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"}]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"], false);
    let sent = fake.last_request().unwrap().body;
    let history = kiro_history(&sent);
    assert_eq!(
        history[1]["assistantResponseMessage"]["toolUses"][0]["toolUseId"],
        "call_1"
    );
    assert_eq!(
        current(&sent)["userInputMessageContext"]["toolResults"][0]["toolUseId"],
        "call_1"
    );
    // Not stored: it cannot be continued.
    let id = body["id"].as_str().unwrap();
    let (status, err) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": id, "input": "more"}),
    );
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["code"], "previous_response_not_found");
}

#[test]
fn follow_up_rebuilds_the_whole_conversation_over_several_turns() {
    let (fake, gw) = start();
    fake.push_replies([Reply::text("uno"), Reply::text("dos"), Reply::text("tres")]);
    let (_, r1) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "input": [
            {"role": "developer", "content": "Answer in Spanish."},
            {"role": "user", "content": "one"}]}),
    );
    let (_, r2) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": r1["id"], "input": "two"}),
    );
    assert_eq!(r2["output"][0]["content"][0]["text"], "dos");
    let (status, r3) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": r2["id"], "input": "three"}),
    );
    assert_eq!(status, 200, "{r3}");
    let sent = fake.last_request().unwrap().body;
    let history = kiro_history(&sent);
    let texts: Vec<String> = history
        .iter()
        .map(|h| {
            h.get("userInputMessage")
                .or_else(|| h.get("assistantResponseMessage"))
                .unwrap()["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts.len(), 4, "{texts:?}");
    // The developer message of the first request stays the system prompt.
    assert!(texts[0].starts_with("Answer in Spanish."), "{texts:?}");
    assert!(texts[0].ends_with("one"));
    assert_eq!(texts[1], "uno");
    assert_eq!(texts[2], "two");
    assert_eq!(texts[3], "dos");
    assert_eq!(current(&sent)["content"], "three");
    // An earlier response can still be branched from.
    let (status, _) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": r1["id"], "input": "other"}),
    );
    assert_eq!(status, 200);
    assert_eq!(kiro_history(&fake.last_request().unwrap().body).len(), 2);
}

#[test]
fn unknown_previous_response_is_404_in_openai_shape_and_kiro_is_not_called() {
    let (fake, gw) = start();
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": "resp_nope", "input": "x"}),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "previous_response_not_found");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "previous_response_id");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("resp_nope"));
    assert!(fake.requests().is_empty());
}

#[test]
fn store_size_evicts_the_least_recently_used_response() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("RESPONSES_STORE_SIZE", "1")]);
    let (_, r1) = gw.post("/v1/responses", &json!({"model": MODEL, "input": "a"}));
    let (_, r2) = gw.post("/v1/responses", &json!({"model": MODEL, "input": "b"}));
    let (s1, _) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": r1["id"], "input": "c"}),
    );
    assert_eq!(s1, 404);
    let (s2, _) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": r2["id"], "input": "c"}),
    );
    assert_eq!(s2, 200);
}

#[test]
fn a_response_whose_history_is_over_the_store_size_is_not_kept() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("RESPONSES_STORE_MB", "0")]);
    let (status, r1) = gw.post("/v1/responses", &json!({"model": MODEL, "input": "a"}));
    assert_eq!(status, 200, "{r1}");
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": r1["id"], "input": "b"}),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["param"], "previous_response_id");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("RESPONSES_STORE_MB"), "{message}");
    assert_eq!(fake.requests().len(), 1, "the follow-up never reached Kiro");
}

#[test]
fn a_response_object_cannot_be_retrieved_and_the_error_says_why() {
    let (fake, gw) = start();
    let (status, r1) = gw.post("/v1/responses", &json!({"model": MODEL, "input": "a"}));
    assert_eq!(status, 200, "{r1}");
    let id = r1["id"].as_str().unwrap_or_default();
    for path in [
        format!("/v1/responses/{id}"),
        format!("/v1/responses/{id}/input_items"),
    ] {
        let (status, body) = gw.get(&path);
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["type"], "not_found_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("does not keep response objects"),
            "{message}"
        );
    }
    let (status, _, text) = gw.post_raw(&format!("/v1/responses/{id}/cancel"), &[], b"");
    assert_eq!(status, 401, "no key, no answer about the store: {text}");
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn hosted_tools_are_left_out_and_named_in_a_header() {
    let (fake, gw) = start();
    let body = json!({"model": MODEL, "input": "x", "tools": [
        {"type": "function", "name": "ok", "parameters": {"type": "object"}},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "code_interpreter", "container": {"type": "auto"}}]});
    for _ in 0..2 {
        let (status, headers, text) = gw.post_raw(
            "/v1/responses",
            &[("authorization", &format!("Bearer {}", common::KEY))],
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{text}");
        let ignored = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-kiro-gateway-ignored-tools"))
            .map(|(_, v)| v.as_str());
        assert_eq!(ignored, Some("file_search, code_interpreter"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["tools"].as_array().unwrap().len(),
            3,
            "tools echoed as sent"
        );
    }
    let sent = fake.last_request().unwrap().body;
    let tools = current(&sent)["userInputMessageContext"]["tools"]
        .as_array()
        .unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["toolSpecification"]["name"], "ok");
    let logs = gw.logs();
    assert_eq!(
        logs.matches("hosted tool 'file_search'").count(),
        1,
        "{logs}"
    );
    // A tool type no API defines is still a mistake.
    let (status, v) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "input": "x", "tools": [{"type": "telepathy"}]}),
    );
    assert_eq!(status, 400);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("tools[0].type 'telepathy'"));
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn reasoning_streams_as_summary_and_its_signature_returns_to_kiro() {
    let (fake, gw) = start();
    fake.push_reply(Reply::events(vec![
        Ev::reasoning("Let me "),
        Ev::reasoning("think."),
        Ev::reasoning_signature("sig-abc"),
        Ev::text("42"),
        Ev::Metadata {
            input: 10,
            output: 5,
        },
    ]));
    let events = gw.stream(
        "/v1/responses",
        &json!({"model": MODEL, "input": "meaning of life?", "stream": true,
            "reasoning": {"effort": "high", "summary": "auto"}}),
    );
    let data = checked(&events);
    let t = types(&data);
    assert_eq!(t[2], "response.output_item.added");
    assert_eq!(data[2]["item"]["type"], "reasoning");
    assert_eq!(t[3], "response.reasoning_summary_part.added");
    let summary: String = data
        .iter()
        .filter(|d| d["type"] == "response.reasoning_summary_text.delta")
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(summary, "Let me think.");
    let done = &data.last().unwrap()["response"];
    assert_eq!(done["reasoning"]["effort"], "high");
    let out = done["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert!(out[0]["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(out[0]["summary"][0]["text"], "Let me think.");
    assert_eq!(out[0]["encrypted_content"], "kgw1:sig-abc");
    assert_eq!(out[1]["content"][0]["text"], "42");
    assert!(
        done["usage"]["output_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    // The follow-up carries the signed reasoning back in the assistant turn.
    let (status, _) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "previous_response_id": done["id"], "input": "why?"}),
    );
    assert_eq!(status, 200);
    let sent = fake.last_request().unwrap().body;
    let history = kiro_history(&sent);
    let rc = &history[1]["assistantResponseMessage"]["reasoningContent"]["reasoningText"];
    assert_eq!(rc["text"], "Let me think.");
    assert_eq!(rc["signature"], "sig-abc");

    // Replayed in full (store: false, as Codex does), our reasoning item is signed again; one
    // minted elsewhere keeps its text but goes without a signature.
    for (encrypted, signature) in [
        ("kgw1:sig-abc", json!("sig-abc")),
        ("gAAAAABforeign", Value::Null),
    ] {
        let (status, _) = gw.post(
            "/v1/responses",
            &json!({"model": MODEL, "store": false, "input": [
                {"role": "user", "content": "meaning of life?"},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Let me think."}],
                 "encrypted_content": encrypted},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "42"}]},
                {"role": "user", "content": "why?"}]}),
        );
        assert_eq!(status, 200);
        let sent = fake.last_request().unwrap().body;
        let history = kiro_history(&sent);
        let rc = &history[1]["assistantResponseMessage"]["reasoningContent"]["reasoningText"];
        assert_eq!(rc["signature"], signature, "{encrypted}: {rc}");
    }
}

#[test]
fn mid_stream_failure_ends_with_response_failed() {
    let (fake, gw) = start();
    fake.push_reply(Reply::events(vec![
        Ev::text("partial"),
        Ev::exception("InternalServerException", "boom", None),
    ]));
    let events = gw.stream(
        "/v1/responses",
        &json!({"model": MODEL, "input": "x", "stream": true}),
    );
    let data = checked(&events);
    let last = data.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["status"], "failed");
    assert_eq!(last["response"]["error"]["code"], "server_error");
    assert!(last["response"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("boom"));
    // What was streamed before the failure is in the failed response, marked incomplete.
    let output = &last["response"]["output"];
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["status"], "incomplete");
    assert_eq!(output[0]["content"][0]["text"], "partial");
}

#[test]
fn context_overflow_is_context_length_exceeded_before_and_during_the_stream() {
    let (fake, gw) = start();
    fake.push_reply(Reply::error(
        400,
        "Input is too long for requested model.",
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
    ));
    let (status, body) = gw.post("/v1/responses", &json!({"model": MODEL, "input": "x"}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded");

    fake.push_reply(Reply::events(vec![
        Ev::text("a"),
        Ev::exception(
            "ValidationException",
            "Input is too long.",
            Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        ),
    ]));
    let events = gw.stream(
        "/v1/responses",
        &json!({"model": MODEL, "input": "x", "stream": true}),
    );
    let data = checked(&events);
    let last = data.last().unwrap();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["error"]["code"], "context_length_exceeded");
}

#[test]
fn body_over_the_kiro_limit_is_context_length_exceeded() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("KIRO_MAX_BODY_BYTES", "20000")]);
    let big = "word ".repeat(10_000);
    let (status, body) = gw.post("/v1/responses", &json!({"model": MODEL, "input": big}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert!(fake.requests().is_empty());
}

#[test]
fn cut_tool_call_makes_an_incomplete_response_without_the_broken_call() {
    let (fake, gw) = start();
    fake.push_reply(Reply::events(vec![
        Ev::tool_start("tooluse_big", "write_file"),
        Ev::tool_input(
            "tooluse_big",
            "write_file",
            r#"{"path":"a.txt","content":"aaaa"#,
        ),
    ]));
    let tools =
        json!([{"type": "function", "name": "write_file", "parameters": {"type": "object"}}]);
    let events = gw.stream(
        "/v1/responses",
        &json!({"model": MODEL, "input": "write it", "stream": true, "tools": tools}),
    );
    let data = checked(&events);
    assert!(!types(&data).contains(&"response.function_call_arguments.done"));
    let last = data.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    let r = &last["response"];
    assert_eq!(r["status"], "incomplete");
    assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    let out = r["output"].as_array().unwrap();
    assert!(out.iter().all(|i| i["type"] != "function_call"), "{out:?}");
    let note = out[0]["content"][0]["text"].as_str().unwrap();
    assert!(note.contains("write_file"), "{note}");

    // Non-streaming: the same.
    fake.push_reply(Reply::events(vec![
        Ev::tool_start("tooluse_big", "write_file"),
        Ev::tool_input("tooluse_big", "write_file", r#"{"path":"#),
    ]));
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "input": "write it", "tools": tools}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["status"], "incomplete");
    assert!(body["output"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["type"] != "function_call"));
}

#[test]
fn codex_shaped_request_is_accepted_and_answered() {
    let (fake, gw) = start();
    let body = json!({
        "model": MODEL,
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>cwd=/repo</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]}
        ],
        "tools": [
            {"type": "function", "name": "shell", "description": "Runs a shell command", "strict": false,
             "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"], "additionalProperties": false}},
            {"type": "function", "name": "update_plan", "description": "Updates the plan", "strict": false,
             "parameters": {"type": "object", "properties": {}}}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199-abc",
        "text": {"verbosity": "medium"}
    });
    let events = gw.stream("/v1/responses", &body);
    let data = checked(&events);
    let done = data.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(done["response"]["tools"].as_array().unwrap().len(), 2);
    let sent = fake.last_request().unwrap().body;
    let content = current(&sent)["content"].as_str().unwrap();
    assert!(content.starts_with("You are Codex"), "{content}");
    assert!(content.contains("workspace-write"), "{content}");
    assert!(content.contains("cwd=/repo") && content.ends_with("fix the bug"));
    let tools = current(&sent)["userInputMessageContext"]["tools"]
        .as_array()
        .unwrap();
    assert_eq!(tools.len(), 2);
}

#[test]
fn images_go_to_kiro_and_file_ids_are_refused() {
    let (fake, gw) = start();
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]}]}),
    );
    assert_eq!(status, 200, "{body}");
    let sent = fake.last_request().unwrap().body;
    assert_eq!(current(&sent)["images"][0]["format"], "png");
    let (status, body) = gw.post(
        "/v1/responses",
        &json!({"model": MODEL, "input": [{"role": "user", "content": [
            {"type": "input_image", "file_id": "file-123"}]}]}),
    );
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("file_id"));
}

/// The official `openai` Python SDK (`client.responses.create` / `.stream`) against the gateway
/// and a fake Kiro that answers like a model would. Needs `python3` with `pip install openai`,
/// so it is not in the default run: `cargo test --test responses -- --ignored openai_sdk`.
#[test]
#[ignore]
fn openai_sdk_drives_the_responses_api() {
    let fake = FakeKiro::start();
    fake.set_reply_fn(|rec| {
        let user = &rec.body["conversationState"]["currentMessage"]["userInputMessage"];
        let content = user["content"].as_str().unwrap_or("");
        if user["userInputMessageContext"].get("toolResults").is_some() {
            return Some(Reply::text("It is 24C and sunny in Paris."));
        }
        if content.contains("weather") {
            return Some(Reply::tool_call(
                "tooluse_sdk1",
                "get_weather",
                r#"{"city":"Paris"}"#,
                3,
            ));
        }
        if content.contains("What is my name") {
            let known = rec.raw_body.contains("My name is Ada");
            return Some(Reply::text(if known { "Ada." } else { "I do not know." }));
        }
        if content.contains("17 * 23") {
            return Some(Reply::events(vec![
                Ev::reasoning("17 * 20 = 340, "),
                Ev::reasoning("17 * 3 = 51, sum 391."),
                Ev::reasoning_signature("sig-sdk"),
                Ev::text("17 * 23 = 391"),
                Ev::Metadata {
                    input: 30,
                    output: 12,
                },
            ]));
        }
        None
    });
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/e2e_responses.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("OPENAI_BASE_URL", format!("{}/v1", gw.url))
        .env("OPENAI_API_KEY", common::KEY)
        .env("E2E_EXPECT_REASONING", "1")
        .output()
        .expect("run python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}\ngateway logs:\n{}", gw.logs());
    assert!(text.contains("all Responses API checks passed"), "{text}");
}

#[test]
fn truncation_is_echoed_as_sent() {
    let (_fake, gw) = start();
    for (sent, echoed) in [
        (json!("auto"), json!("auto")),
        (Value::Null, json!("disabled")),
    ] {
        let (status, v) = gw.post(
            "/v1/responses",
            &json!({"model": MODEL, "input": "x", "truncation": sent}),
        );
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["truncation"], echoed);
    }
}
