//! End-to-end: Kiro replies broken at the frame level (CRCs, lengths, header blocks, a stream cut
//! or ended mid-frame), payloads of the wrong shape for their event type, and in-stream errors,
//! each through all three APIs, streaming and not. A broken reply ends the client's response
//! with that API's own error (an error event on a stream, an error status otherwise), never a
//! silently different answer; damage that loses nothing leaves the answer whole; and the next
//! request is always served. The catalogue of faults is `tests/fake_kiro/broken.rs`.

mod common;
mod fake_kiro;

use common::{parse_sse, Gateway, SseEvent, KEY};
use fake_kiro::broken::{broken_reply, fault_in, Outcome, BROKEN, LEAD};
use fake_kiro::FakeKiro;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    Chat,
    Messages,
    Responses,
}

impl Api {
    fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Messages => "/v1/messages",
            Api::Responses => "/v1/responses",
        }
    }

    fn body(self, stream: bool, content: &str) -> Value {
        let tools = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        match self {
            Api::Chat => json!({"model": "claude-sonnet-4-5", "stream": stream, "tools": tools,
                "messages": [{"role": "user", "content": content}]}),
            Api::Messages => json!({"model": "claude-sonnet-4-5", "stream": stream,
                "max_tokens": 100, "messages": [{"role": "user", "content": content}],
                "tools": [{"name": "get_weather", "input_schema": tools[0]["function"]["parameters"]}]}),
            Api::Responses => json!({"model": "claude-sonnet-4-5", "stream": stream,
                "input": content, "store": false, "tools": [{"type": "function", "name": "get_weather",
                "parameters": tools[0]["function"]["parameters"]}]}),
        }
    }
}

/// What the client got: status, and the body (SSE events for a 200 stream, JSON otherwise).
struct Answer {
    status: u16,
    events: Vec<SseEvent>,
    json: Value,
    text: String,
}

fn ask(gw: &Gateway, api: Api, stream: bool, content: &str) -> Answer {
    let auth = format!("Bearer {KEY}");
    let (status, _, text) = gw.post_raw(
        api.path(),
        &[("authorization", &auth)],
        api.body(stream, content).to_string().as_bytes(),
    );
    let streamed = stream && status == 200;
    Answer {
        status,
        events: if streamed {
            parse_sse(&text)
        } else {
            Vec::new()
        },
        json: if streamed {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        },
        text,
    }
}

/// An error body in the API's own shape, with a message.
fn assert_error_shape(api: Api, v: &Value, what: &str) {
    let message = match api {
        Api::Chat | Api::Responses => v["error"]["message"].as_str(),
        Api::Messages => {
            assert_eq!(v["type"], "error", "{what}: {v}");
            v["error"]["message"].as_str()
        }
    };
    assert!(
        message.is_some_and(|m| !m.is_empty()),
        "{what}: no error message in {v}"
    );
    // Whatever Kiro sent, the message stays short enough to read and to log.
    let length = message.map_or(0, str::len);
    assert!(length <= 4096, "{what}: a message of {length} bytes");
}

/// The stream ended with the API's error event and without its success ending.
fn assert_stream_failed(api: Api, events: &[SseEvent], what: &str) {
    let last = events
        .last()
        .unwrap_or_else(|| panic!("{what}: empty stream"));
    match api {
        Api::Chat => {
            assert!(
                events.iter().all(|e| e.data != "[DONE]"),
                "{what}: a failed stream must not end with [DONE]: {events:?}"
            );
            assert_error_shape(api, &last.json(), what);
        }
        Api::Messages => {
            assert_eq!(last.event.as_deref(), Some("error"), "{what}: {events:?}");
            assert_error_shape(api, &last.json(), what);
            assert!(
                events
                    .iter()
                    .all(|e| e.event.as_deref() != Some("message_stop")),
                "{what}: {events:?}"
            );
        }
        Api::Responses => {
            assert_eq!(
                last.event.as_deref(),
                Some("response.failed"),
                "{what}: {events:?}"
            );
            assert_error_shape(api, &last.json()["response"], what);
        }
    }
}

/// The stream ended the API's normal way.
fn assert_stream_completed(api: Api, events: &[SseEvent], what: &str) {
    let last = events
        .last()
        .unwrap_or_else(|| panic!("{what}: empty stream"));
    match api {
        Api::Chat => assert_eq!(last.data, "[DONE]", "{what}: {events:?}"),
        Api::Messages => assert_eq!(
            last.event.as_deref(),
            Some("message_stop"),
            "{what}: {events:?}"
        ),
        // A call whose arguments are not JSON is withheld as cut off: the response says it is
        // incomplete, which is the honest ending (Chat and Messages say so in their stop reason).
        Api::Responses => assert!(
            matches!(
                last.event.as_deref(),
                Some("response.completed" | "response.incomplete")
            ),
            "{what}: {events:?}"
        ),
    }
}

/// No number in an answer is absurd (a broken figure from Kiro must not come out as
/// 18446744073709551615 tokens, nor overflow a sum), and credits are a number whenever they are
/// given.
fn assert_sane_figures(v: &Value, what: &str) {
    match v {
        Value::Number(n) => assert!(n.as_f64().is_some_and(|f| f.abs() <= 1e15), "{what}: {n}"),
        Value::Array(items) => items.iter().for_each(|i| assert_sane_figures(i, what)),
        Value::Object(map) => {
            if let Some(credits) = map.get("credits_used") {
                assert!(credits.is_number(), "{what}: credits_used {credits}");
            }
            map.values().for_each(|i| assert_sane_figures(i, what));
        }
        _ => {}
    }
}

fn check(gw: &Gateway, name: &str, outcome: Outcome, api: Api, stream: bool) {
    let what = format!("{name} via {api:?} (stream: {stream})");
    let got = ask(gw, api, stream, &format!("Hi KIRO_FAULT:{name}"));
    match (outcome, stream && got.status == 200) {
        (Outcome::Fails, true) => assert_stream_failed(api, &got.events, &what),
        (Outcome::Fails, false) => {
            assert!(got.status >= 400, "{what}: {} {}", got.status, got.text);
            assert_error_shape(api, &got.json, &what);
        }
        (Outcome::Served, true) => {
            assert_stream_completed(api, &got.events, &what);
            for event in &got.events {
                assert_sane_figures(&event.json(), &what);
            }
            assert!(
                got.text.contains("Before the fault") || name == "empty_stream",
                "{what}: {}",
                got.text
            );
        }
        (Outcome::Served, false) => {
            assert_eq!(got.status, 200, "{what}: {}", got.text);
            assert_sane_figures(&got.json, &what);
            assert!(
                got.text.contains(LEAD) || name == "empty_stream",
                "{what}: {}",
                got.text
            );
        }
    }
    // The next request is served as usual.
    let next = ask(gw, api, false, "Hi");
    assert_eq!(next.status, 200, "{what}, then: {}", next.text);
    assert!(
        next.text.contains(fake_kiro::DEFAULT_TEXT),
        "{what}, then: {}",
        next.text
    );
}

fn run_catalogue(api: Api) {
    let fake = FakeKiro::start();
    // Every attempt at a request gets its broken reply (one that breaks before any output may
    // be retried), any other request the default answer.
    fake.set_reply_fn(|request| {
        let content = request.user_content()?;
        fault_in(&content).and_then(broken_reply)
    });
    let gw = Gateway::start(&fake.url(), &[("WORKERS", "2")]);
    for &(name, outcome) in BROKEN {
        for stream in [true, false] {
            // The 16 MiB event once per API is enough.
            if name == "enormous_event" && !stream {
                continue;
            }
            check(&gw, name, outcome, api, stream);
        }
    }
    let logs = gw.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[test]
fn broken_kiro_replies_end_chat_completions_with_an_openai_error() {
    run_catalogue(Api::Chat);
}

#[test]
fn broken_kiro_replies_end_messages_with_an_anthropic_error() {
    run_catalogue(Api::Messages);
}

#[test]
fn broken_kiro_replies_end_responses_with_response_failed() {
    run_catalogue(Api::Responses);
}
