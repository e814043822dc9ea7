//! End-to-end: structured outputs (Chat `response_format`, Responses `text.format`, Anthropic
//! `output_config.format`), `parallel_tool_calls: false`, `n`, `logprobs` and stop sequences, as
//! the client sees them and as Kiro receives them.

mod common;
mod fake_kiro;

use common::Gateway;
use fake_kiro::{Ev, FakeKiro, Reply};
use serde_json::{json, Value};

const ANSWER: &str = r#"{"city":"Paris","temperature":21}"#;

fn schema() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string"},
        "temperature": {"type": "number"}}, "required": ["city", "temperature"],
        "additionalProperties": false})
}

fn chat_with_schema(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "response_format": {"type": "json_schema",
            "json_schema": {"name": "weather", "strict": true, "schema": schema()}}})
}

fn kiro_tools(body: &Value) -> Vec<String> {
    body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        ["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["toolSpecification"]["name"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn kiro_schema_of(body: &Value, name: &str) -> Value {
    body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]
        ["tools"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|t| t["toolSpecification"]["name"] == name)
                .map(|t| t["toolSpecification"]["inputSchema"]["json"].clone())
        })
        .unwrap_or(Value::Null)
}

/// Kiro answers by calling the answer tool, its arguments in three fragments.
fn answer_reply() -> Reply {
    Reply::tool_call("tooluse_1", "structured_answer", ANSWER, 3)
}

#[test]
fn chat_json_schema_is_a_forced_tool_whose_arguments_are_the_message() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    fake.push_reply(answer_reply());
    let (status, body) = gw.post("/v1/chat/completions", &chat_with_schema(false));
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop", "{body}");
    assert_eq!(choice["message"]["content"], ANSWER);
    assert!(choice["message"].get("tool_calls").is_none(), "{body}");
    assert!(choice["message"]["refusal"].is_null());
    let sent = &fake.requests()[0].body;
    assert_eq!(kiro_tools(sent), vec!["structured_answer"]);
    assert_eq!(
        kiro_schema_of(sent, "structured_answer")["required"],
        json!(["city", "temperature"])
    );
    assert!(sent
        .to_string()
        .contains("calling the tool `structured_answer`"));

    // Streamed: the arguments arrive as content deltas, and no tool call is seen.
    fake.push_reply(answer_reply());
    let events = gw.stream("/v1/chat/completions", &chat_with_schema(true));
    let chunks: Vec<Value> = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, ANSWER);
    // Held until the call ended and the answer was checked, then sent whole.
    let content_deltas = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].is_string())
        .count();
    assert_eq!(content_deltas, 1);
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&json!("stop")]);
}

#[test]
fn the_clients_own_tools_stay_callable_next_to_the_answer_tool() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    fake.push_reply(Reply::tool_call(
        "tooluse_9",
        "get_weather",
        r#"{"city":"Paris"}"#,
        1,
    ));
    let mut body = chat_with_schema(false);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let (status, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let calls = v["choices"][0]["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let sent = &fake.requests()[0].body;
    assert_eq!(kiro_tools(sent), vec!["get_weather", "structured_answer"]);
    assert!(sent
        .to_string()
        .contains("You must respond by calling one of the available tools"));
}

#[test]
fn an_answer_that_is_not_the_format_is_a_refusal_never_a_silent_success() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    fake.push_reply(Reply::text("I would rather not say."));
    let (status, v) = gw.post("/v1/chat/completions", &chat_with_schema(false));
    assert_eq!(status, 200, "{v}");
    let message = &v["choices"][0]["message"];
    assert_eq!(message["refusal"], "I would rather not say.", "{v}");
    assert!(message["content"].is_null(), "{v}");

    fake.push_reply(Reply::text("I would rather not say."));
    let events = gw.stream("/v1/chat/completions", &chat_with_schema(true));
    let refusal: String = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["refusal"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(refusal, "I would rather not say.");
}

#[test]
fn json_object_is_asked_for_and_checked() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Give me JSON"}],
        "response_format": {"type": "json_object"}});
    fake.push_reply(Reply::text("```json\n{\"ok\": true}\n```"));
    let (status, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "{\"ok\": true}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let sent = fake.requests()[0].body.to_string();
    assert!(sent.contains("Answer with one JSON object and nothing else"));
    assert!(kiro_tools(&fake.requests()[0].body).is_empty());

    fake.push_reply(Reply::text("Sure! ok: true"));
    let (_, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(
        v["choices"][0]["message"]["refusal"], "Sure! ok: true",
        "{v}"
    );
}

#[test]
fn responses_text_format_is_followed_and_echoed() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let format = json!({"type": "json_schema", "name": "weather", "strict": true,
        "schema": schema()});
    let body = json!({"model": "claude-sonnet-4-5", "input": "Weather in Paris?",
        "text": {"format": format}});
    fake.push_reply(answer_reply());
    let (status, v) = gw.post("/v1/responses", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["text"]["format"], format, "echoed as sent");
    assert_eq!(v["status"], "completed");
    let output = v["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{v}");
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["content"][0]["type"], "output_text");
    assert_eq!(output[0]["content"][0]["text"], ANSWER);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    fake.push_reply(answer_reply());
    let events = gw.stream("/v1/responses", &streamed);
    let deltas: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("response.output_text.delta"))
        .filter_map(|e| e.json()["delta"].as_str().map(str::to_string))
        .collect();
    assert_eq!(deltas, ANSWER);
    assert!(!events
        .iter()
        .any(|e| e.event.as_deref() == Some("response.function_call_arguments.delta")));
    let last = events.last().unwrap().json();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"]["text"]["format"]["name"], "weather");

    // Without a format, the echo says text.
    fake.push_reply(Reply::text("hi"));
    let (_, v) = gw.post(
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "input": "hi"}),
    );
    assert_eq!(v["text"]["format"], json!({"type": "text"}));
}

#[test]
fn responses_refusal_is_a_refusal_part() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    fake.push_reply(Reply::text("No."));
    let body = json!({"model": "claude-sonnet-4-5", "input": "Weather?",
        "text": {"format": {"type": "json_object"}}});
    let (status, v) = gw.post("/v1/responses", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["output"][0]["content"][0],
        json!({"type": "refusal", "refusal": "No."})
    );
}

#[test]
fn anthropic_output_config_format_is_followed() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 200,
        "messages": [{"role": "user", "content": "Title for this chat?"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema()}}});
    fake.push_reply(answer_reply());
    let (status, v) = gw.post("/v1/messages", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"], json!([{"type": "text", "text": ANSWER}]));

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    fake.push_reply(answer_reply());
    let events = gw.stream("/v1/messages", &streamed);
    let text: String = events
        .iter()
        .map(|e| e.json())
        .filter(|d| d["delta"]["type"] == "text_delta")
        .filter_map(|d| d["delta"]["text"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, ANSWER);
    assert!(!events.iter().any(|e| e.data.contains("tool_use")));

    fake.push_reply(Reply::text("Not JSON."));
    let (_, v) = gw.post("/v1/messages", &body);
    assert_eq!(v["stop_reason"], "refusal", "{v}");
    assert_eq!(v["content"][0]["text"], "Not JSON.");
}

#[test]
fn a_bad_format_is_a_400_naming_the_field_and_kiro_is_not_called() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let chat = |format: Value| {
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}],
            "response_format": format})
    };
    let cases = [
        (
            "/v1/chat/completions",
            chat(json!({"type": "json_schema", "json_schema": {"name": "a"}})),
            "response_format.json_schema.schema",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"type": "json_schema", "json_schema": {"name": "a", "schema": "object"}})),
            "response_format.json_schema.schema",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"type": "json_schema"})),
            "response_format.json_schema",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"type": "yaml"})),
            "response_format.type",
        ),
        (
            "/v1/responses",
            json!({"model": "claude-sonnet-4-5", "input": "x",
            "text": {"format": {"type": "json_schema", "name": "a"}}}),
            "text.format.schema",
        ),
        (
            "/v1/responses",
            json!({"model": "claude-sonnet-4-5", "input": "x",
            "text": {"format": {"type": "json_schema", "name": "a", "schema": [1]}}}),
            "text.format.schema",
        ),
    ];
    for (path, body, param) in cases {
        let (status, v) = gw.post(path, &body);
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(v["error"]["param"], param, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(param),
            "{v}"
        );
    }
    let (status, v) = gw.post(
        "/v1/messages",
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
            "messages": [{"role": "user", "content": "x"}],
            "output_config": {"format": {"type": "json_schema"}}}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("output_config.format.schema"));
    assert!(fake.requests().iter().all(|r| !r.path.contains("generate")));
}

#[test]
fn n_above_one_is_refused_and_logprobs_are_null() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, v) = gw.post(
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "n": 2,
            "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["param"], "n");
    assert!(fake.requests().iter().all(|r| !r.path.contains("generate")));
    fake.push_reply(Reply::text("hi"));
    let (status, v) = gw.post(
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "n": 1, "logprobs": true, "top_logprobs": 2,
            "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 200, "{v}");
    assert!(v["choices"][0]["logprobs"].is_null());
    assert_eq!(v["choices"].as_array().unwrap().len(), 1);
}

#[test]
fn parallel_tool_calls_false_is_told_and_only_the_first_call_returned() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let mut events = Vec::new();
    events.extend(Ev::tool_call(
        "tooluse_a",
        "get_weather",
        r#"{"city":"Paris"}"#,
        2,
    ));
    events.extend(Ev::tool_call(
        "tooluse_b",
        "get_weather",
        r#"{"city":"Rome"}"#,
        2,
    ));
    fake.push_reply(Reply::events(events.clone()));
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let body = json!({"model": "claude-sonnet-4-5", "parallel_tool_calls": false, "tools": tools,
        "messages": [{"role": "user", "content": "Paris and Rome?"}]});
    let (status, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{v}");
    let calls = v["choices"][0]["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{v}");
    assert_eq!(calls[0]["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert!(fake.requests()[0]
        .body
        .to_string()
        .contains("Call at most one tool in each answer"));

    // Responses, streamed: one function_call item.
    fake.push_reply(Reply::events(events));
    let body = json!({"model": "claude-sonnet-4-5", "parallel_tool_calls": false, "stream": true,
        "tools": [{"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "input": "Paris and Rome?"});
    let events = gw.stream("/v1/responses", &body);
    let done = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("response.output_item.done"))
        .filter(|e| e.json()["item"]["type"] == "function_call")
        .count();
    assert_eq!(done, 1);
}

#[test]
fn a_stop_sequence_is_a_normal_end_with_kiros_usage() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    let mut events = Ev::words("one two STOP three four");
    events.push(Ev::Metadata {
        input: 11,
        output: 7,
    });
    fake.push_reply(Reply::events(events));
    let (status, v) = gw.post(
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "stop": ["STOP"],
            "messages": [{"role": "user", "content": "count"}]}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "one two ");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 7, "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 11, "{v}");
    assert!(!gw.logs().contains("without a completion signal"));
}

/// Answers that are JSON but break [`schema`]: a required key missing, a value of the wrong type.
const BAD_ANSWERS: [(&str, &str); 2] = [
    (
        r#"{"city":"Paris"}"#,
        "$: missing required property 'temperature'",
    ),
    (
        r#"{"city":"Paris","temperature":"mild"}"#,
        "$.temperature: expected number, got string",
    ),
];

fn bad_reply(answer: &str) -> Reply {
    Reply::tool_call("tooluse_1", "structured_answer", answer, 3)
}

/// The log names where and why the answer broke the schema, never the answer itself.
fn assert_logged_without_content(gw: &Gateway, why: &str) {
    let logs = gw.logs();
    assert!(
        logs.contains(&format!("({why}); returned as a refusal")),
        "{logs}"
    );
    assert!(!logs.contains("Paris"), "{logs}");
}

#[test]
fn chat_an_answer_that_breaks_the_schema_is_a_refusal_with_null_content() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    for (bad, why) in BAD_ANSWERS {
        fake.push_reply(bad_reply(bad));
        let (status, v) = gw.post("/v1/chat/completions", &chat_with_schema(false));
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "refusal": bad}),
            "{v}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
        assert_logged_without_content(&gw, why);

        fake.push_reply(bad_reply(bad));
        let events = gw.stream("/v1/chat/completions", &chat_with_schema(true));
        assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        let deltas: Vec<Value> = events
            .iter()
            .filter(|e| e.data != "[DONE]")
            .map(|e| e.json()["choices"][0].clone())
            .collect();
        let refusal: String = deltas
            .iter()
            .filter_map(|c| c["delta"]["refusal"].as_str())
            .collect();
        assert_eq!(refusal, bad);
        assert!(
            deltas.iter().all(|c| c["delta"].get("content").is_none()
                || c["delta"]["content"].is_null()
                || c["delta"]["content"] == ""),
            "no answer text: {deltas:?}"
        );
        let finish: Vec<&Value> = deltas
            .iter()
            .map(|c| &c["finish_reason"])
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finish, vec![&json!("stop")]);
    }
}

#[test]
fn responses_an_answer_that_breaks_the_schema_is_a_refusal_part() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    let body = json!({"model": "claude-sonnet-4-5", "input": "Weather in Paris?",
        "text": {"format": {"type": "json_schema", "name": "weather", "strict": true,
            "schema": schema()}}});
    for (bad, why) in BAD_ANSWERS {
        fake.push_reply(bad_reply(bad));
        let (status, v) = gw.post("/v1/responses", &body);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "completed", "{v}");
        let output = v["output"].as_array().unwrap();
        assert_eq!(output.len(), 1, "{v}");
        assert_eq!(output[0]["type"], "message");
        assert_eq!(
            output[0]["content"],
            json!([{"type": "refusal", "refusal": bad}])
        );
        assert!(v["output_text"].as_str().unwrap_or("").is_empty(), "{v}");
        assert_logged_without_content(&gw, why);

        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        fake.push_reply(bad_reply(bad));
        let events = gw.stream("/v1/responses", &streamed);
        let names: Vec<&str> = events.iter().filter_map(|e| e.event.as_deref()).collect();
        assert!(!names.contains(&"response.output_text.delta"), "{names:?}");
        let refusal: String = events
            .iter()
            .filter(|e| e.event.as_deref() == Some("response.refusal.delta"))
            .filter_map(|e| e.json()["delta"].as_str().map(str::to_string))
            .collect();
        assert_eq!(refusal, bad);
        let done = events
            .iter()
            .find(|e| e.event.as_deref() == Some("response.refusal.done"))
            .map(|e| e.json())
            .unwrap();
        assert_eq!(done["refusal"], bad);
        let last = events.last().unwrap().json();
        assert_eq!(last["type"], "response.completed");
        assert_eq!(last["response"]["status"], "completed");
        assert_eq!(
            last["response"]["output"][0]["content"],
            json!([{"type": "refusal", "refusal": bad}])
        );
    }
}

#[test]
fn anthropic_an_answer_that_breaks_the_schema_stops_with_refusal() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 200,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema()}}});
    for (bad, why) in BAD_ANSWERS {
        fake.push_reply(bad_reply(bad));
        let (status, v) = gw.post("/v1/messages", &body);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["stop_reason"], "refusal", "{v}");
        assert_eq!(v["content"], json!([{"type": "text", "text": bad}]));
        assert_logged_without_content(&gw, why);

        let mut streamed = body.clone();
        streamed["stream"] = json!(true);
        fake.push_reply(bad_reply(bad));
        let events = gw.stream("/v1/messages", &streamed);
        let data: Vec<Value> = events.iter().map(|e| e.json()).collect();
        let text: String = data
            .iter()
            .filter(|d| d["delta"]["type"] == "text_delta")
            .filter_map(|d| d["delta"]["text"].as_str())
            .collect();
        assert_eq!(text, bad);
        let stop: Vec<&Value> = data
            .iter()
            .filter(|d| d["type"] == "message_delta")
            .map(|d| &d["delta"]["stop_reason"])
            .collect();
        assert_eq!(stop, vec![&json!("refusal")]);
        assert!(!events.iter().any(|e| e.data.contains("tool_use")));
        assert_eq!(data.last().unwrap()["type"], "message_stop");
    }
}

/// What pydantic's `model_json_schema()` writes for a model with a nested model, an enum, an
/// optional nested model and a recursive list.
fn pydantic_schema() -> Value {
    json!({
        "$defs": {
            "Unit": {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string"},
            "Reading": {"properties": {
                    "value": {"title": "Value", "type": "number"},
                    "unit": {"$ref": "#/$defs/Unit"}},
                "required": ["value", "unit"], "title": "Reading", "type": "object",
                "additionalProperties": false},
            "Place": {"properties": {
                    "name": {"title": "Name", "type": "string"},
                    "within": {"anyOf": [{"$ref": "#/$defs/Place"}, {"type": "null"}]}},
                "required": ["name", "within"], "title": "Place", "type": "object",
                "additionalProperties": false}
        },
        "properties": {
            "place": {"$ref": "#/$defs/Place"},
            "now": {"$ref": "#/$defs/Reading"},
            "later": {"anyOf": [{"$ref": "#/$defs/Reading"}, {"type": "null"}]},
            "days": {"items": {"type": "integer"}, "title": "Days", "type": "array"}
        },
        "required": ["place", "now", "later", "days"],
        "title": "Forecast", "type": "object", "additionalProperties": false
    })
}

#[test]
fn a_pydantic_schema_with_refs_lets_a_good_answer_through_and_stops_a_bad_one() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    let body = json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Forecast for Paris?"}],
        "response_format": {"type": "json_schema",
            "json_schema": {"name": "Forecast", "strict": true, "schema": pydantic_schema()}}});
    let good = r#"{"place":{"name":"Paris","within":{"name":"France","within":null}},"now":{"value":21.5,"unit":"celsius"},"later":null,"days":[1,2.0]}"#;
    fake.push_reply(bad_reply(good));
    let (status, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], good, "{v}");
    assert!(v["choices"][0]["message"]["refusal"].is_null(), "{v}");

    let bad = r#"{"place":{"name":"Paris","within":{"name":"France","within":null}},"now":{"value":21.5,"unit":"kelvin"},"later":null,"days":[1]}"#;
    fake.push_reply(bad_reply(bad));
    let (status, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["refusal"], bad, "{v}");
    assert!(v["choices"][0]["message"]["content"].is_null(), "{v}");
    assert_logged_without_content(&gw, "$.now.unit: not one of the enum values");
}

#[test]
fn json_written_as_text_instead_of_the_answer_call_is_checked_against_the_schema() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    fake.push_reply(Reply::text(BAD_ANSWERS[0].0));
    let (status, v) = gw.post("/v1/chat/completions", &chat_with_schema(false));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": null, "refusal": BAD_ANSWERS[0].0}),
        "{v}"
    );
    assert_logged_without_content(&gw, BAD_ANSWERS[0].1);

    fake.push_reply(Reply::text(ANSWER));
    let (status, v) = gw.post("/v1/chat/completions", &chat_with_schema(false));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], ANSWER, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}
