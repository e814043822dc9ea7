//! End-to-end: tool calling and images through `/v1/chat/completions` against the fake Kiro
//! (issue 5): tool specs and history as Kiro receives them, tool-call events streamed to the
//! client fragment by fragment, parallel and truncated calls, bracket-style calls, images.

mod common;
mod fake_kiro;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Gateway, SseEvent, KEY};
use fake_kiro::{Ev, FakeKiro, HeaderValue, Reply};
use serde_json::{json, Value};

const MODEL: &str = "claude-sonnet-4-5";

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"]}}})
}

fn ask(stream: bool, tools: Value) -> Value {
    json!({"model": MODEL, "stream": stream, "tools": tools,
           "messages": [{"role": "user", "content": "What is the weather in Paris?"}]})
}

/// The JSON chunks of a stream, without the final `[DONE]` (which must be there).
fn chunks(events: &[SseEvent]) -> Vec<Value> {
    assert_eq!(
        events.last().map(|e| e.data.as_str()),
        Some("[DONE]"),
        "stream must end with [DONE]: {events:?}"
    );
    events[..events.len() - 1]
        .iter()
        .map(SseEvent::json)
        .collect()
}

/// Every `delta.tool_calls[]` entry, in order.
fn tool_deltas(chunks: &[Value]) -> Vec<Value> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .cloned()
        .collect()
}

fn content(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The non-null finish reasons (there must be exactly one).
fn finish(chunks: &[Value]) -> String {
    let f: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(f.len(), 1, "exactly one finish_reason: {f:?}");
    f[0].as_str().unwrap().to_string()
}

/// The concatenated non-empty argument fragments of tool call `index`, and how many there were.
fn arguments_of(deltas: &[Value], index: u64) -> (String, usize) {
    let frags: Vec<&str> = deltas
        .iter()
        .filter(|d| d["index"] == index)
        .filter_map(|d| d["function"]["arguments"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    (frags.concat(), frags.len())
}

fn current_input(body: &Value) -> &Value {
    &body["conversationState"]["currentMessage"]["userInputMessage"]
}

fn current_tools(body: &Value) -> &Value {
    &current_input(body)["userInputMessageContext"]["tools"]
}

/// A toolUseEvent frame with exactly this payload text (so key order is ours to choose).
fn raw_tool_event(payload: &str) -> Ev {
    Ev::Frame {
        headers: vec![
            (
                ":event-type".into(),
                HeaderValue::String("toolUseEvent".into()),
            ),
            (
                ":content-type".into(),
                HeaderValue::String("application/json".into()),
            ),
            (":message-type".into(), HeaderValue::String("event".into())),
        ],
        payload: payload.as_bytes().to_vec(),
    }
}

// ------------------------------------------------------------------------------------------
// 1. The full round trip
// ------------------------------------------------------------------------------------------

#[test]
fn tool_round_trip_streams_fragments_and_sends_results_back_to_kiro() {
    let fake = FakeKiro::start();
    let args = r#"{"city":"Paris","unit":"celsius","days":3}"#;
    fake.push_reply(Reply::tool_call("tooluse_w1", "get_weather", args, 8));
    let gw = Gateway::start(&fake.url(), &[]);

    let events = gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()])));
    let chunks = chunks(&events);
    let deltas = tool_deltas(&chunks);
    let first = &deltas[0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["id"], "tooluse_w1");
    assert_eq!(first["type"], "function");
    assert_eq!(first["function"]["name"], "get_weather");
    assert!(
        deltas[1..]
            .iter()
            .all(|d| d.get("id").is_none() && d["function"].get("name").is_none()),
        "only the first delta names the call: {deltas:?}"
    );
    let (joined, count) = arguments_of(&deltas, 0);
    assert_eq!(joined, args);
    assert_eq!(count, 8, "one argument delta per Kiro fragment: {deltas:?}");
    assert_eq!(finish(&chunks), "tool_calls");
    // The role rides on the very first chunk, whatever it carries.
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let sent = fake.last_request().unwrap().body;
    let spec = &current_tools(&sent)[0]["toolSpecification"];
    assert_eq!(spec["name"], "get_weather");
    assert_eq!(spec["description"], "Current weather for a city");
    assert_eq!(spec["inputSchema"]["json"]["required"], json!(["city"]));

    // The client runs the tool and sends the call and its result back.
    let follow_up = json!({"model": MODEL, "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "tooluse_w1",
            "type": "function", "function": {"name": "get_weather", "arguments": joined}}]},
        {"role": "tool", "tool_call_id": "tooluse_w1", "content": "18 C and sunny"}
    ]});
    let (status, body) = gw.post("/v1/chat/completions", &follow_up);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from fake Kiro"
    );
    let sent = fake.last_request().unwrap().body;
    let history = sent["conversationState"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[0]["userInputMessage"]["userInputMessageContext"].is_null());
    let uses = &history[1]["assistantResponseMessage"]["toolUses"];
    assert_eq!(
        uses,
        &json!([{"toolUseId": "tooluse_w1", "name": "get_weather",
                 "input": {"city": "Paris", "unit": "celsius", "days": 3}}])
    );
    let ctx = &current_input(&sent)["userInputMessageContext"];
    assert_eq!(
        ctx["toolResults"],
        json!([{"toolUseId": "tooluse_w1", "content": [{"text": "18 C and sunny"}],
                "status": "success"}])
    );
    assert_eq!(ctx["tools"][0]["toolSpecification"]["name"], "get_weather");
}

#[test]
fn tool_arguments_reach_the_client_before_the_call_completes() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::tool_start("tooluse_slow", "write_file"),
        Ev::tool_input("tooluse_slow", "write_file", r#"{"path":"a.txt","#),
        Ev::Sleep(Duration::from_millis(1500)),
        Ev::tool_input("tooluse_slow", "write_file", r#""text":"hi"}"#),
        Ev::tool_stop("tooluse_slow", "write_file"),
        Ev::Metering(0.1),
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    let started = Instant::now();
    let resp = common::agent()
        .post(&format!("{}/v1/chat/completions", gw.url))
        .header("authorization", &format!("Bearer {KEY}"))
        .send(ask(true, json!([weather_tool()])).to_string().as_bytes())
        .unwrap();
    let mut reader = resp.into_body().into_reader();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("a.txt") {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let at = started.elapsed();
    assert!(
        at < Duration::from_millis(1000),
        "first fragment after {at:?}"
    );
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    let chunks = chunks(&common::parse_sse(&seen));
    let (args, count) = arguments_of(&tool_deltas(&chunks), 0);
    assert_eq!(args, r#"{"path":"a.txt","text":"hi"}"#);
    assert_eq!(count, 2);
    assert_eq!(finish(&chunks), "tool_calls");
}

// ------------------------------------------------------------------------------------------
// 2. Parallel calls
// ------------------------------------------------------------------------------------------

fn two_calls() -> Reply {
    let mut events = Ev::tool_call("tooluse_a", "get_weather", r#"{"city":"Paris"}"#, 3);
    events.extend(Ev::tool_call(
        "tooluse_b",
        "get_time",
        r#"{"zone":"Europe/Paris"}"#,
        4,
    ));
    events.push(Ev::Metering(0.2));
    Reply::events(events)
}

#[test]
fn parallel_tool_calls_get_indices_0_and_1_when_streamed() {
    let fake = FakeKiro::start();
    fake.push_reply(two_calls());
    let gw = Gateway::start(&fake.url(), &[]);
    let chunks = chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
    let deltas = tool_deltas(&chunks);
    let starts: Vec<(u64, &str, &str)> = deltas
        .iter()
        .filter(|d| d.get("id").is_some())
        .map(|d| {
            (
                d["index"].as_u64().unwrap(),
                d["id"].as_str().unwrap(),
                d["function"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        starts,
        vec![
            (0, "tooluse_a", "get_weather"),
            (1, "tooluse_b", "get_time")
        ]
    );
    assert_eq!(arguments_of(&deltas, 0).0, r#"{"city":"Paris"}"#);
    assert_eq!(arguments_of(&deltas, 1).0, r#"{"zone":"Europe/Paris"}"#);
    assert_eq!(finish(&chunks), "tool_calls");
}

#[test]
fn parallel_tool_calls_in_a_non_streaming_message() {
    let fake = FakeKiro::start();
    fake.push_reply(two_calls());
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["id"], "tooluse_a");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(calls[1]["id"], "tooluse_b");
    assert_eq!(calls[1]["function"]["name"], "get_time");
    let args: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"zone": "Europe/Paris"}));
}

// ------------------------------------------------------------------------------------------
// 3. Fragments, objects, key order
// ------------------------------------------------------------------------------------------

#[test]
fn arguments_split_over_many_fragments_arrive_intact() {
    let big = json!({"path": "src/main.rs", "content": "fn main() {\n    println!(\"Привет, {}\", \"мир\");\n}\n",
                     "mode": {"append": false, "lines": [1, 2, 3]}})
    .to_string();
    let fake = FakeKiro::start();
    fake.push_reply(Reply::tool_call("tooluse_big", "write_file", &big, 60));
    fake.push_reply(Reply::tool_call("tooluse_big", "write_file", &big, 60));
    let gw = Gateway::start(&fake.url(), &[]);

    let chunks = chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
    let (joined, count) = arguments_of(&tool_deltas(&chunks), 0);
    assert_eq!(joined, big);
    assert_eq!(count, 60);

    let (_, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], big.as_str());
}

#[test]
fn arguments_arriving_as_an_object_are_serialised_once() {
    let value = json!({"cmd": "ls -la", "cwd": "/tmp", "env": {"A": "1"}});
    let reply = || {
        Reply::events(vec![
            Ev::tool_start("tooluse_o", "run"),
            Ev::tool_input_object("tooluse_o", "run", value.clone()),
            Ev::tool_stop("tooluse_o", "run"),
            Ev::Metering(0.1),
        ])
    };
    let fake = FakeKiro::start();
    fake.push_replies([reply(), reply()]);
    let gw = Gateway::start(&fake.url(), &[]);

    let chunks = chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
    let (joined, _) = arguments_of(&tool_deltas(&chunks), 0);
    assert_eq!(serde_json::from_str::<Value>(&joined).unwrap(), value);
    assert_eq!(finish(&chunks), "tool_calls");

    let (_, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
    let args = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(args).unwrap(), value);
}

#[test]
fn tool_events_do_not_depend_on_json_key_order() {
    // Kiro happens to sort keys; nothing may depend on it. Ids first, stop before name, and
    // fragments that carry neither name nor id (they belong to the call in progress).
    let events = vec![
        raw_tool_event(r#"{"toolUseId":"tooluse_k","name":"get_weather"}"#),
        raw_tool_event(r#"{"toolUseId":"tooluse_k","name":"get_weather","input":"{\"ci"}"#),
        raw_tool_event(r#"{"toolUseId":"tooluse_k","input":"ty\":\"Oslo\"","name":"get_weather"}"#),
        raw_tool_event(r#"{"input":"}"}"#),
        raw_tool_event(r#"{"toolUseId":"tooluse_k","stop":true,"name":"get_weather"}"#),
        raw_tool_event(
            r#"{"stop":false,"toolUseId":"tooluse_l","input":{"zone":"UTC"},"name":"get_time"}"#,
        ),
        raw_tool_event(r#"{"stop":true,"toolUseId":"tooluse_l","name":"get_time"}"#),
        Ev::Metering(0.1),
    ];
    let fake = FakeKiro::start();
    fake.push_replies([Reply::events(events.clone()), Reply::events(events)]);
    let gw = Gateway::start(&fake.url(), &[]);

    let chunks = chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
    let deltas = tool_deltas(&chunks);
    assert_eq!(arguments_of(&deltas, 0).0, r#"{"city":"Oslo"}"#);
    assert_eq!(
        serde_json::from_str::<Value>(&arguments_of(&deltas, 1).0).unwrap(),
        json!({"zone": "UTC"})
    );
    assert_eq!(finish(&chunks), "tool_calls");

    let (_, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 2, "{body}");
    assert_eq!(calls[0]["id"], "tooluse_k");
    assert_eq!(calls[1]["id"], "tooluse_l");
    assert_eq!(calls[1]["function"]["name"], "get_time");
}

// ------------------------------------------------------------------------------------------
// 4. What Kiro receives: schemas, descriptions, names, tool_choice
// ------------------------------------------------------------------------------------------

#[test]
fn schemas_are_cleaned_at_every_depth_as_kiro_receives_them() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let tool = json!({"type": "function", "function": {"name": "edit", "description": "",
    "parameters": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object", "required": [], "additionalProperties": false,
        "properties": {
            "opts": {"type": "object", "required": [], "additionalProperties": {"type": "string"},
                     "properties": {"additionalProperties": {"type": "boolean"}}},
            "items": {"type": "array", "items": {"anyOf": [
                {"type": "object", "additionalProperties": false, "required": ["x"],
                 "properties": {"x": {"type": "integer"}}},
                {"type": "string"}]}}
        }}}});
    let (status, body) = gw.post("/v1/chat/completions", &ask(false, json!([tool])));
    assert_eq!(status, 200, "{body}");
    let sent = fake.last_request().unwrap().body;
    let spec = &current_tools(&sent)[0]["toolSpecification"];
    assert_eq!(
        spec["inputSchema"]["json"],
        json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "opts": {"type": "object",
                     "properties": {"additionalProperties": {"type": "boolean"}}},
            "items": {"type": "array", "items": {"anyOf": [
                {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
                {"type": "string"}]}}
        }})
    );
    // An empty description is not accepted by Kiro either.
    assert_eq!(spec["description"], "Tool: edit");
}

#[test]
fn long_descriptions_move_into_the_system_prompt() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let long = format!("Reads a file. {}", "Details. ".repeat(1200));
    assert!(long.chars().count() > 10_000);
    let exact = "x".repeat(10_000);
    let tools = json!([
        {"type": "function", "function": {"name": "read_file", "description": long,
            "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "exact", "description": exact,
            "parameters": {"type": "object"}}}
    ]);
    let body = json!({"model": MODEL, "tools": tools, "messages": [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "go"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let specs = current_tools(&sent);
    assert_eq!(
        specs[0]["toolSpecification"]["description"],
        "[Full documentation in system prompt under '## Tool: read_file']"
    );
    assert_eq!(specs[1]["toolSpecification"]["description"], exact.as_str());
    let prompt = current_input(&sent)["content"].as_str().unwrap();
    assert!(prompt.starts_with("You are an agent."), "{}", &prompt[..80]);
    assert!(prompt.contains(&format!("## Tool: read_file\n\n{long}")));
    assert!(!prompt.contains("## Tool: exact"));
    assert!(prompt.ends_with("go"));
}

#[test]
fn tool_description_limit_is_configurable_and_zero_disables_it() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("TOOL_DESCRIPTION_MAX_LENGTH", "20")]);
    let tools = json!([{"type": "function", "function": {"name": "t",
        "description": "a description longer than twenty", "parameters": {}}}]);
    gw.post("/v1/chat/completions", &ask(false, tools.clone()));
    let sent = fake.last_request().unwrap().body;
    assert!(current_tools(&sent)[0]["toolSpecification"]["description"]
        .as_str()
        .unwrap()
        .starts_with("[Full documentation"));
    drop(gw);
    let gw = Gateway::start(&fake.url(), &[("TOOL_DESCRIPTION_MAX_LENGTH", "0")]);
    let long = "y".repeat(20_000);
    let tools = json!([{"type": "function", "function": {"name": "t", "description": long}}]);
    gw.post("/v1/chat/completions", &ask(false, tools));
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        current_tools(&sent)[0]["toolSpecification"]["description"],
        long.as_str()
    );
}

#[test]
fn tool_names_over_64_characters_reach_kiro_aliased_and_64_as_is() {
    let fake = FakeKiro::start();
    fake.validate_bodies(true);
    let gw = Gateway::start(&fake.url(), &[]);
    let n64 = format!("mcp__{}", "a".repeat(59));
    let n65 = format!("mcp__{}", "b".repeat(60));
    let n70 = format!("mcp__{}", "c".repeat(65));
    assert_eq!((n64.len(), n65.len()), (64, 65));
    let tool = |n: &str| json!({"type": "function", "function": {"name": n, "parameters": {}}});
    let (status, body) = gw.post(
        "/v1/chat/completions",
        &ask(false, json!([tool(&n64), tool(&n65), tool(&n70)])),
    );
    assert_eq!(status, 200, "{body}");
    let sent = fake.last_request().unwrap().body;
    let names: Vec<String> = current_tools(&sent)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["toolSpecification"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names[0], n64, "a 64-character name is Kiro's as is");
    assert!(names[1] != n65 && names[1].len() <= 64, "{names:?}");
    assert!(names[2] != n70 && names[2].len() <= 64, "{names:?}");
    assert_ne!(names[1], names[2]);
}

#[test]
fn flat_cursor_style_tools_are_accepted() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let tools = json!([
        {"type": "function", "name": "codebase_search", "description": "Search the code",
         "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}},
        {"name": "read_file", "description": "Read", "input_schema":
            {"type": "object", "properties": {"path": {"type": "string"}}, "required": []}}
    ]);
    let (status, body) = gw.post("/v1/chat/completions", &ask(false, tools));
    assert_eq!(status, 200, "{body}");
    let sent = fake.last_request().unwrap().body;
    let specs = current_tools(&sent);
    assert_eq!(specs[0]["toolSpecification"]["name"], "codebase_search");
    assert_eq!(
        specs[0]["toolSpecification"]["description"],
        "Search the code"
    );
    assert_eq!(
        specs[0]["toolSpecification"]["inputSchema"]["json"]["properties"]["query"]["type"],
        "string"
    );
    assert_eq!(specs[1]["toolSpecification"]["name"], "read_file");
    assert_eq!(
        specs[1]["toolSpecification"]["inputSchema"]["json"],
        json!({"type": "object", "properties": {"path": {"type": "string"}}})
    );
}

#[test]
fn tool_choice_none_offers_kiro_only_a_stub_of_the_history_tool() {
    let fake = FakeKiro::start();
    fake.validate_bodies(true);
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": MODEL, "tools": [weather_tool()], "tool_choice": "none",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "warm"},
            {"role": "user", "content": "summarise"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let specs = sent["conversationState"]["currentMessage"]["userInputMessage"]
        ["userInputMessageContext"]["tools"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(specs.len(), 1, "{sent}");
    let spec = &specs[0]["toolSpecification"];
    assert_eq!(spec["name"], "get_weather");
    assert!(spec["description"]
        .as_str()
        .unwrap()
        .contains("not available"));
    assert_eq!(
        sent["conversationState"]["history"][1]["assistantResponseMessage"]["toolUses"][0]["input"],
        json!({"city": "Rome"})
    );
}

#[test]
fn a_forced_tool_becomes_an_instruction_in_the_prompt() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let mut body = ask(false, json!([weather_tool()]));
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let prompt = current_input(&sent)["content"].as_str().unwrap();
    assert!(
        prompt.contains("calling the tool `get_weather`"),
        "{prompt}"
    );
    assert_eq!(
        current_tools(&sent)[0]["toolSpecification"]["name"],
        "get_weather"
    );

    body["tool_choice"] = json!("required");
    gw.post("/v1/chat/completions", &body);
    let sent = fake.last_request().unwrap().body;
    assert!(current_input(&sent)["content"]
        .as_str()
        .unwrap()
        .contains("You must respond by calling one of the available tools"));

    body["tool_choice"] = json!({"type": "function", "function": {"name": "nope"}});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 400, "{resp}");
    assert!(resp["error"]["message"]
        .as_str()
        .unwrap()
        .contains("'nope'"));
}

#[test]
fn tool_call_arguments_that_are_not_json_get_a_400() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": MODEL, "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": Rome}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "warm"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 400, "{resp}");
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("get_weather") && msg.contains("not valid JSON"),
        "{msg}"
    );
}

#[test]
fn consecutive_tool_results_merge_and_orphans_become_text() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let call = |id: &str, city: &str| {
        json!({"id": id, "type": "function",
               "function": {"name": "get_weather", "arguments": json!({"city": city}).to_string()}})
    };
    let body = json!({"model": MODEL, "tools": [weather_tool()], "messages": [
        {"role": "tool", "tool_call_id": "ghost", "content": "stale"},
        {"role": "user", "content": "weather in two cities?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [call("c1", "Rome"), call("c2", "Oslo")]},
        {"role": "tool", "tool_call_id": "c1", "content": "warm"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "cold"}]},
        {"role": "tool", "tool_call_id": "c9", "content": "unknown id"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let history = sent["conversationState"]["history"].as_array().unwrap();
    let first_user = history[0]["userInputMessage"]["content"].as_str().unwrap();
    assert!(
        first_user.contains("[Tool Result (ghost)]\nstale"),
        "{first_user}"
    );
    assert!(history[0]["userInputMessage"]["userInputMessageContext"].is_null());
    let uses = history[1]["assistantResponseMessage"]["toolUses"]
        .as_array()
        .unwrap();
    assert_eq!(uses.len(), 2);
    let cur = current_input(&sent);
    let results = cur["userInputMessageContext"]["toolResults"]
        .as_array()
        .unwrap();
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["toolUseId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c1", "c2"]);
    assert_eq!(results[1]["content"], json!([{"text": "cold"}]));
    assert!(cur["content"]
        .as_str()
        .unwrap()
        .contains("[Tool Result (c9)]\nunknown id"));
}

// ------------------------------------------------------------------------------------------
// 5. Images
// ------------------------------------------------------------------------------------------

/// 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

#[test]
fn data_url_images_reach_kiro_in_each_format() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let mut parts = vec![json!({"type": "text", "text": "What is in these?"})];
    for media in [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/jpg",
    ] {
        parts.push(json!({"type": "image_url",
            "image_url": {"url": format!("data:{media};base64,{PNG}"), "detail": "auto"}}));
    }
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": parts}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let cur = current_input(&sent);
    let images = cur["images"].as_array().unwrap();
    let formats: Vec<&str> = images
        .iter()
        .map(|i| i["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["png", "jpeg", "gif", "webp", "jpeg"]);
    assert!(images.iter().all(|i| i["source"] == json!({"bytes": PNG})));
    assert!(cur["content"]
        .as_str()
        .unwrap()
        .ends_with("What is in these?"));
}

#[test]
fn remote_image_urls_are_refused_with_a_400() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let before = fake.requests().len();
    for url in ["https://example.com/cat.png", "http://example.com/cat.png"] {
        let body = json!({"model": MODEL, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]}]});
        let (status, resp) = gw.post("/v1/chat/completions", &body);
        assert_eq!(status, 400, "{resp}");
        assert!(resp["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Remote image URLs"));
    }
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 400, "{resp}");
    assert!(resp["error"]["message"]
        .as_str()
        .unwrap()
        .contains("image/bmp"));
    assert_eq!(fake.requests().len(), before);
}

#[test]
fn oversize_images_get_a_413() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("MAX_IMAGE_BYTES", "1000")]);
    let big = "QUJD".repeat(400); // 1200 bytes decoded
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{big}")}}]}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 413, "{resp}");
    assert!(resp["error"]["message"]
        .as_str()
        .unwrap()
        .contains("MAX_IMAGE_BYTES"));
    let small = "QUJD".repeat(300); // 900 bytes
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{small}")}}]}]});
    assert_eq!(gw.post("/v1/chat/completions", &body).0, 200);
}

/// A base64 image `n` characters long (valid alphabet; the fake does not decode it).
fn base64_of_len(n: usize) -> String {
    "QUJD".repeat(n / 4)
}

fn image_message(data: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": "what does this show?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}}]})
}

#[test]
fn screenshots_do_not_count_against_the_kiro_body_budget() {
    // The Kiro IDE itself sends images of up to 5 MiB of base64, so KIRO_MAX_BODY_BYTES (about
    // 1.2 MB, a guard against "Input is too long") must not count image data: a 2 MB screenshot
    // used to get the context-overflow error, which makes agents compact in vain.
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let shot = base64_of_len(2_000_000);
    let body = json!({"model": MODEL, "messages": [
        image_message(&shot),
        {"role": "assistant", "content": "A terminal."},
        image_message(&shot)]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        current_input(&sent)["images"][0]["source"]["bytes"],
        shot.as_str()
    );
    assert_eq!(
        sent["conversationState"]["history"][0]["userInputMessage"]["images"][0]["source"]["bytes"],
        shot.as_str()
    );
    // Text still counts.
    let long_text = "word ".repeat(300_000);
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": long_text}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 400, "{resp}");
    assert_eq!(resp["error"]["code"], "context_length_exceeded");
}

#[test]
fn an_image_over_kiros_base64_cap_gets_a_413_before_kiro_sees_it() {
    // Kiro refuses an image whose base64 is over 5 MiB (about 3.75 MiB decoded), whatever
    // MAX_IMAGE_BYTES allows, and an image kept in history then breaks every later turn.
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let before = fake.requests().len();
    let big = base64_of_len(5 * 1024 * 1024 + 4); // 3.75 MiB decoded: under MAX_IMAGE_BYTES
    let body = json!({"model": MODEL, "messages": [image_message(&big)]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 413, "{resp}");
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(msg.contains("5242880"), "{msg}");
    assert_eq!(fake.requests().len(), before, "nothing was sent to Kiro");
    let fits = base64_of_len(5 * 1024 * 1024);
    let body = json!({"model": MODEL, "messages": [image_message(&fits)]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
}

#[test]
fn an_image_inside_a_tool_result_goes_on_that_user_turn() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let screenshot = json!({"type": "function", "function": {"name": "screenshot",
        "parameters": {"type": "object"}}});
    let body = json!({"model": MODEL, "tools": [screenshot], "messages": [
        {"role": "user", "content": "take a screenshot"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "s1", "type": "function",
            "function": {"name": "screenshot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "s1", "content": [
            {"type": "text", "text": "here it is"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}}]}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let cur = current_input(&sent);
    assert_eq!(
        cur["images"],
        json!([{"format": "png", "source": {"bytes": PNG}}])
    );
    assert_eq!(
        cur["userInputMessageContext"]["toolResults"][0]["content"],
        json!([{"text": "here it is"}])
    );
}

// ------------------------------------------------------------------------------------------
// 8. Truncated tool calls
// ------------------------------------------------------------------------------------------

fn truncated_reply() -> Reply {
    let mut events = vec![Ev::text("Writing the file.")];
    events.push(Ev::tool_start("tooluse_cut", "write_file"));
    events.push(Ev::tool_input(
        "tooluse_cut",
        "write_file",
        r#"{"path":"big.txt","#,
    ));
    events.push(Ev::tool_input(
        "tooluse_cut",
        "write_file",
        r#""content":"lorem ipsum"#,
    ));
    events.push(Ev::Metering(0.3));
    Reply::events(events)
}

#[test]
fn a_truncated_tool_call_ends_the_stream_with_length_and_a_note() {
    let fake = FakeKiro::start();
    fake.push_reply(truncated_reply());
    let gw = Gateway::start(&fake.url(), &[]);
    let chunks = chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
    assert_eq!(finish(&chunks), "length");
    let text = content(&chunks);
    assert!(text.starts_with("Writing the file."), "{text}");
    assert!(text.contains("'write_file' was cut off"), "{text}");
    // The fragments went out as they arrived; the call was never completed (no `{}` was
    // substituted) and no further fragment followed the cut (issue 10).
    let (args, _) = arguments_of(&tool_deltas(&chunks), 0);
    assert!(
        args.starts_with(r#"{"path":"big.txt","content":"lorem ipsum"#),
        "{args}"
    );
    assert!(serde_json::from_str::<Value>(&args).is_err(), "{args}");
}

#[test]
fn after_a_cut_no_further_fragment_of_the_call_is_sent_at_any_cut_point() {
    let full = r#"{"path":"a.txt","lines":[1,{"t":"x\"y"}],"text":"héllo"}"#;
    let cuts: Vec<usize> = full.char_indices().map(|(i, _)| i).skip(1).collect();
    let fake = FakeKiro::start();
    for &cut in &cuts {
        fake.push_reply(Reply::events(vec![
            Ev::tool_start("tooluse_c", "write_file"),
            Ev::tool_input("tooluse_c", "write_file", &full[..cut]),
            Ev::Metering(0.1),
        ]));
    }
    let gw = Gateway::start(&fake.url(), &[]);
    for &cut in &cuts {
        let chunks =
            chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
        assert_eq!(finish(&chunks), "length", "cut at {cut}");
        let (args, _) = arguments_of(&tool_deltas(&chunks), 0);
        assert_eq!(args, &full[..cut], "cut at {cut}: exactly what Kiro sent");
    }
}

#[test]
fn a_truncated_tool_call_is_withheld_from_a_non_streaming_reply() {
    let fake = FakeKiro::start();
    fake.push_reply(truncated_reply());
    // Kiro also said stop, but the JSON is still broken.
    fake.push_reply(truncated_reply().then(Ev::tool_stop("tooluse_cut", "write_file")));
    let gw = Gateway::start(&fake.url(), &[]);
    for _ in 0..2 {
        let (status, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
        assert_eq!(status, 200, "{body}");
        let choice = &body["choices"][0];
        assert_eq!(choice["finish_reason"], "length");
        assert!(choice["message"].get("tool_calls").is_none(), "{body}");
        let text = choice["message"]["content"].as_str().unwrap();
        assert!(text.starts_with("Writing the file."), "{text}");
        assert!(
            text.contains("[API Limitation]") && text.contains("'write_file'"),
            "{text}"
        );
    }
    assert!(gw.logs().contains("truncated tool call: 'write_file'"));
}

#[test]
fn a_cut_tool_call_sent_back_by_the_client_does_not_wedge_the_conversation() {
    // Streamed fragments cannot be taken back, and clients keep them: LangChain re-sends an
    // invalid tool call with its raw arguments, an SDK loop may answer it with an error result.
    // A 400 here would fail every later turn of the conversation.
    let fake = FakeKiro::start();
    fake.push_reply(truncated_reply());
    let gw = Gateway::start(&fake.url(), &[]);
    let chunks = chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
    let deltas = tool_deltas(&chunks);
    let (partial, _) = arguments_of(&deltas, 0);
    let follow_up = json!({"model": MODEL, "tools": [weather_tool()], "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": content(&chunks), "tool_calls": [{"id": deltas[0]["id"],
            "type": "function", "function": {"name": "write_file", "arguments": partial}}]},
        {"role": "tool", "tool_call_id": deltas[0]["id"], "content": "Error: invalid JSON arguments"},
        {"role": "user", "content": "Write it in smaller pieces."}]});
    let (status, body) = gw.post("/v1/chat/completions", &follow_up);
    assert_eq!(status, 200, "{body}");
    let sent = fake.last_request().unwrap().body;
    let raw = sent.to_string();
    assert!(
        !raw.contains("toolUses") && !raw.contains("toolResults"),
        "{raw}"
    );
    let history = sent["conversationState"]["history"].as_array().unwrap();
    let said = history[1]["assistantResponseMessage"]["content"]
        .as_str()
        .unwrap();
    assert!(said.starts_with("Writing the file."), "{said}");
    assert!(
        said.contains("'write_file' (tooluse_cut) was cut off") && said.contains("not run"),
        "{said}"
    );
    let current = current_input(&sent)["content"].as_str().unwrap();
    assert!(current.contains("[Tool Result (tooluse_cut)]\nError: invalid JSON arguments"));
    assert!(current.contains("Write it in smaller pieces."), "{current}");
}

#[test]
fn a_complete_call_next_to_a_truncated_one_is_still_delivered() {
    let fake = FakeKiro::start();
    let mut events = Ev::tool_call("tooluse_ok", "get_weather", r#"{"city":"Rome"}"#, 2);
    events.push(Ev::tool_start("tooluse_cut", "write_file"));
    events.push(Ev::tool_input("tooluse_cut", "write_file", r#"{"path":"#));
    fake.push_reply(Reply::events(events));
    let gw = Gateway::start(&fake.url(), &[]);
    let (_, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["id"], "tooluse_ok");
}

// ------------------------------------------------------------------------------------------
// 9. Bracket-style calls
// ------------------------------------------------------------------------------------------

#[test]
fn bracket_style_calls_in_text_become_tool_calls() {
    let text =
        r#"Let me check. [Called get_weather with args: {"city": "Paris", "opts": {"unit": "C"}}]"#;
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text(text));
    fake.push_reply(Reply::text(text));
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);

    let chunks = chunks(&gw.stream("/v1/chat/completions", &ask(true, json!([weather_tool()]))));
    let deltas = tool_deltas(&chunks);
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    assert!(deltas[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(
        serde_json::from_str::<Value>(&arguments_of(&deltas, 0).0).unwrap(),
        json!({"city": "Paris", "opts": {"unit": "C"}})
    );
    assert_eq!(finish(&chunks), "tool_calls");

    let (_, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris", "opts": {"unit": "C"}})
    );
}

#[test]
fn a_bracket_call_repeating_a_structured_call_is_not_doubled() {
    let fake = FakeKiro::start();
    let mut events = vec![Ev::text(
        r#"[Called get_weather with args: {"city":"Rome"}]"#,
    )];
    events.extend(Ev::tool_call(
        "tooluse_r",
        "get_weather",
        r#"{"city": "Rome"}"#,
        2,
    ));
    fake.push_reply(Reply::events(events));
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let (_, body) = gw.post("/v1/chat/completions", &ask(false, json!([weather_tool()])));
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0]["id"], "tooluse_r");
}
