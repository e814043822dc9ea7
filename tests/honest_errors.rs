//! End-to-end: every failure reaches the client as an honest error in its own format, with the
//! fitting status and Kiro's own words; a reply that breaks mid-stream never looks complete
//! (issue 6, item 3).

mod common;
mod fake_kiro;

use std::time::Duration;

use common::{Gateway, SseEvent, KEY};
use fake_kiro::{Ev, FakeKiro, Reply};
use serde_json::{json, Value};

fn chat(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
           "messages": [{"role": "user", "content": "Hi"}]})
}

fn anthropic_message() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
           "messages": [{"role": "user", "content": "Hi"}]})
}

fn post(gw: &Gateway, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Value) {
    let (status, headers, text) =
        gw.post_raw(path, &[("authorization", &format!("Bearer {KEY}"))], body);
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "not_json": text }));
    (status, headers, v)
}

/// The OpenAI error object: `{"error": {"message", "type", "code"}}`, a real message.
fn assert_openai_error(body: &Value, status: u16, kind: &str) {
    let e = &body["error"];
    let message = e["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    assert!(!message.trim().is_empty(), "{body}");
    assert!(!message.contains("Unknown error"), "{body}");
    assert_eq!(e["type"], kind, "{status}: {body}");
    assert!(!e["code"].is_null(), "{body}");
    assert!(e.get("param").is_some(), "{body}");
}

/// The Anthropic error object: `{"type": "error", "error": {"type", "message"}}`.
fn assert_anthropic_error(body: &Value, kind: &str) {
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        !message.trim().is_empty() && !message.contains("Unknown error"),
        "{body}"
    );
}

/// One scenario: how the fake answers, extra settings, what the client sends, and the expected
/// status and OpenAI `type`.
struct Case {
    name: &'static str,
    reply: Option<Reply>,
    env: Vec<(&'static str, &'static str)>,
    path: &'static str,
    body: Vec<u8>,
    status: u16,
    kind: &'static str,
    /// Text the message must contain.
    says: &'static str,
}

fn cases() -> Vec<Case> {
    let ok = chat(false).to_string().into_bytes();
    vec![
        Case {
            name: "malformed JSON",
            reply: None,
            env: vec![],
            path: "/v1/chat/completions",
            body: b"{\"model\": ".to_vec(),
            status: 400,
            kind: "invalid_request_error",
            says: "not valid JSON",
        },
        Case {
            name: "unknown model",
            reply: None,
            env: vec![],
            path: "/v1/chat/completions",
            body: json!({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
                .to_string()
                .into_bytes(),
            status: 404,
            kind: "invalid_request_error",
            says: "no-such-model",
        },
        Case {
            name: "unknown route",
            reply: None,
            env: vec![],
            path: "/v1/chat/nowhere",
            body: ok.clone(),
            status: 404,
            kind: "not_found_error",
            says: "/v1/chat/nowhere",
        },
        Case {
            name: "body too large",
            reply: None,
            env: vec![("MAX_REQUEST_BODY_BYTES", "64")],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 413,
            kind: "invalid_request_error",
            says: "MAX_REQUEST_BODY_BYTES",
        },
        Case {
            name: "Kiro 403",
            reply: Some(Reply::error(
                403,
                "User is not authorized to make this call.",
                None,
            )),
            env: vec![],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 403,
            kind: "permission_error",
            says: "User is not authorized",
        },
        Case {
            name: "Kiro 429",
            reply: Some(Reply::error(
                429,
                "Rate exceeded",
                Some("SERVICE_REQUEST_RATE_EXCEEDED"),
            )),
            env: vec![],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 429,
            kind: "rate_limit_error",
            says: "Rate exceeded",
        },
        Case {
            name: "Kiro 500",
            reply: Some(Reply::error(500, "Encountered an unexpected error.", None)),
            env: vec![],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 500,
            kind: "kiro_api_error",
            says: "Encountered an unexpected error.",
        },
        Case {
            name: "Kiro 500 without a message",
            reply: Some(Reply::status(500, json!({}))),
            env: vec![],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 500,
            kind: "kiro_api_error",
            says: "500",
        },
        Case {
            name: "Kiro 502 from a proxy (HTML)",
            reply: Some(Reply::status_text(
                502,
                "text/html",
                "<html><body>502 Bad Gateway</body></html>",
            )),
            env: vec![],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 502,
            kind: "kiro_api_error",
            says: "502 Bad Gateway",
        },
        Case {
            name: "Kiro 503",
            reply: Some(Reply::error(
                503,
                "Service is temporarily unavailable",
                None,
            )),
            env: vec![],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 503,
            kind: "overloaded_error",
            says: "temporarily unavailable",
        },
        Case {
            name: "no first token",
            reply: Some(Reply::text("late").delay_first_frame(Duration::from_secs(3))),
            env: vec![("FIRST_TOKEN_TIMEOUT", "1"), ("MAX_RETRIES", "1")],
            path: "/v1/chat/completions",
            body: ok.clone(),
            status: 504,
            kind: "timeout_error",
            says: "did not respond within 1s",
        },
        Case {
            name: "Kiro unreachable",
            reply: None,
            env: vec![("KIRO_API_URL", "http://127.0.0.1:1"), ("MAX_RETRIES", "1")],
            path: "/v1/chat/completions",
            body: ok,
            status: 502,
            kind: "kiro_api_error",
            says: "Could not reach the Kiro API",
        },
    ]
}

#[test]
fn every_failure_has_the_openai_shape_and_the_fitting_status() {
    for case in cases() {
        let fake = FakeKiro::start();
        if let Some(r) = &case.reply {
            fake.set_default_reply(r.clone());
        }
        let gw = Gateway::start(&fake.url(), &case.env);
        let (status, headers, body) = post(&gw, case.path, &case.body);
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_openai_error(&body, status, case.kind);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(case.says), "{}: {message}", case.name);
        let ct = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        assert_eq!(ct, Some("application/json"), "{}", case.name);
    }
}

#[test]
fn a_missing_key_is_a_401_in_both_formats() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, _, text) = gw.post_raw(
        "/v1/chat/completions",
        &[],
        chat(false).to_string().as_bytes(),
    );
    assert_eq!(status, 401);
    assert_openai_error(
        &serde_json::from_str(&text).unwrap(),
        401,
        "authentication_error",
    );
    let (status, _, text) = gw.post_raw(
        "/v1/messages",
        &[],
        anthropic_message().to_string().as_bytes(),
    );
    assert_eq!(status, 401);
    assert_anthropic_error(
        &serde_json::from_str(&text).unwrap(),
        "authentication_error",
    );
}

#[test]
fn kiro_failures_have_the_anthropic_shape_on_the_messages_api() {
    for (reply, status, kind) in [
        (
            Reply::error(429, "Rate exceeded", Some("INSUFFICIENT_MODEL_CAPACITY")),
            429,
            "rate_limit_error",
        ),
        (
            Reply::error(400, "Improperly formed request.", None),
            400,
            "invalid_request_error",
        ),
        (
            Reply::error(500, "Encountered an unexpected error.", None),
            500,
            "api_error",
        ),
        // Anthropic's status for an overload: its SDKs raise OverloadedError.
        (
            Reply::error(503, "Service is temporarily unavailable", None),
            529,
            "overloaded_error",
        ),
    ] {
        let fake = FakeKiro::start();
        fake.set_default_reply(reply);
        let gw = Gateway::start(&fake.url(), &[]);
        let (got, _, body) = post(
            &gw,
            "/v1/messages",
            anthropic_message().to_string().as_bytes(),
        );
        assert_eq!(got, status, "{body}");
        assert_anthropic_error(&body, kind);
    }
}

#[test]
fn context_overflow_is_a_400_context_length_exceeded_without_retry() {
    for (message, reason) in [
        (
            "Input is too long.",
            Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        ),
        ("Input is too long for requested model.", None),
    ] {
        let fake = FakeKiro::start();
        fake.set_default_reply(Reply::error(400, message, reason));
        let gw = Gateway::start(&fake.url(), &[]);
        let (status, _, body) = post(
            &gw,
            "/v1/chat/completions",
            chat(false).to_string().as_bytes(),
        );
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "context_length_exceeded");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains("context limit"), "{m}");
        assert!(m.contains(message), "{m}");
        assert_eq!(fake.requests().len(), 1);
    }
}

/// The ways a reply can break after its first frame, and what the error must mention. The pause
/// after the first frame makes sure it has reached the client before the fault (a fault in the
/// very first read is retried, see `a_corrupt_first_frame_is_retried_before_anything_is_sent`).
fn mid_stream_faults() -> Vec<(&'static str, Vec<Ev>, &'static str)> {
    let pause = || Ev::Sleep(Duration::from_millis(200));
    vec![
        (
            "exception frame",
            vec![
                Ev::text("The answer is"),
                pause(),
                Ev::exception("InternalServerException", "boom in the middle", None),
                Ev::text(" never delivered"),
            ],
            "boom in the middle",
        ),
        (
            "corrupt CRC",
            vec![
                Ev::text("The answer is"),
                pause(),
                Ev::corrupt_crc(Ev::text(" forty")),
                Ev::text(" two"),
            ],
            "frame",
        ),
        (
            "cut connection",
            vec![Ev::text("The answer is"), pause(), Ev::Cut],
            "connection",
        ),
        (
            "cut inside a frame",
            {
                let mut evs = vec![Ev::text("The answer is"), pause()];
                let bytes = Ev::text(" forty two").encode();
                evs.push(Ev::Raw(bytes[..bytes.len() / 2].to_vec()));
                evs.push(Ev::Cut);
                evs
            },
            "connection",
        ),
    ]
}

fn deltas(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn a_stream_that_breaks_mid_way_ends_with_an_error_event_not_a_normal_end() {
    for (name, evs, says) in mid_stream_faults() {
        let fake = FakeKiro::start();
        fake.push_reply(Reply::events(evs));
        let gw = Gateway::start(&fake.url(), &[]);
        let mut body = chat(true);
        body["stream_options"] = json!({"include_usage": true});
        let events = gw.stream("/v1/chat/completions", &body);
        assert_eq!(deltas(&events), "The answer is", "{name}: {events:?}");
        assert!(
            events.iter().all(|e| e.data != "[DONE]"),
            "{name}: {events:?}"
        );
        assert!(
            events
                .iter()
                .all(|e| e.json()["choices"][0]["finish_reason"].is_null()),
            "{name}: a finish_reason was sent: {events:?}"
        );
        assert!(
            events.iter().all(|e| e.json().get("usage").is_none()),
            "{name}"
        );
        let last = events.last().unwrap().json();
        assert_openai_error(&last, 502, "kiro_api_error");
        let m = last["error"]["message"].as_str().unwrap();
        assert!(m.contains(says), "{name}: {m}");
        assert_eq!(
            fake.requests().len(),
            1,
            "{name}: retried after the first byte"
        );
        // The gateway serves the next request normally.
        let events = gw.stream("/v1/chat/completions", &chat(true));
        assert_eq!(events.last().unwrap().data, "[DONE]", "{name}");
    }
}

#[test]
fn a_reply_that_breaks_mid_way_is_a_502_for_non_streaming_clients() {
    for (name, evs, says) in mid_stream_faults() {
        let fake = FakeKiro::start();
        fake.push_reply(Reply::events(evs));
        let gw = Gateway::start(&fake.url(), &[]);
        let (status, _, body) = post(
            &gw,
            "/v1/chat/completions",
            chat(false).to_string().as_bytes(),
        );
        assert_eq!(status, 502, "{name}: {body}");
        assert_openai_error(&body, 502, "kiro_api_error");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains(says), "{name}: {m}");
        assert!(
            !body.to_string().contains("The answer is"),
            "no partial answer as a success"
        );
        assert_eq!(
            post(
                &gw,
                "/v1/chat/completions",
                chat(false).to_string().as_bytes()
            )
            .0,
            200
        );
    }
}

#[test]
fn context_overflow_in_the_middle_of_a_stream_keeps_its_code() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("a"),
        Ev::exception(
            "ValidationException",
            "Input is too long.",
            Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        ),
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = gw.stream("/v1/chat/completions", &chat(true));
    let last = events.last().unwrap().json();
    assert_eq!(
        last["error"]["code"], "context_length_exceeded",
        "{events:?}"
    );
    assert!(events.iter().all(|e| e.data != "[DONE]"));
}

#[test]
fn a_corrupt_first_frame_is_retried_before_anything_is_sent() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![Ev::corrupt_crc(Ev::text("garbled"))]));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = gw.stream("/v1/chat/completions", &chat(true));
    assert_eq!(deltas(&events), fake_kiro::DEFAULT_TEXT);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert_eq!(fake.requests().len(), 2);
}

/// Kiro going silent in the middle of its answer is a timeout, not a broken stream: 504 with
/// the timeout type in both shapes (the anthropic SDKs raise GatewayTimeoutError), and the same
/// type in the stream's error event.
#[test]
fn silence_in_the_middle_of_an_answer_is_a_timeout() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::events(vec![
        Ev::text("The answer is"),
        Ev::Sleep(Duration::from_secs(5)),
        Ev::text(" late"),
    ]));
    let gw = Gateway::start(&fake.url(), &[("STREAMING_READ_TIMEOUT", "1")]);
    let (status, _, body) = post(
        &gw,
        "/v1/chat/completions",
        chat(false).to_string().as_bytes(),
    );
    assert_eq!(status, 504, "{body}");
    assert_openai_error(&body, 504, "timeout_error");
    assert_eq!(body["error"]["code"], "timeout");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("STREAMING_READ_TIMEOUT"));
    let (status, _, body) = post(
        &gw,
        "/v1/messages",
        anthropic_message().to_string().as_bytes(),
    );
    assert_eq!(status, 504, "{body}");
    assert_anthropic_error(&body, "timeout_error");
    let mut streamed = anthropic_message();
    streamed["stream"] = json!(true);
    let events = gw.stream("/v1/messages", &streamed);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"), "{events:?}");
    assert_anthropic_error(&last.json(), "timeout_error");
}
