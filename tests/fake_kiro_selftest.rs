//! Tests of the fake Kiro itself: its frame encoder against the spec's golden bytes, its
//! streams read back over raw TCP and decoded by a small independent decoder below, its
//! management and token endpoints, its token checks and its concurrency.
//!
//! These tests must not use the gateway crate: the fake is the reference the gateway is
//! tested against, so it is checked on its own.

mod fake_kiro;

use fake_kiro::{Ev, FakeKiro, Recorded, Reply};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client that keeps the chunk structure, and an event-stream decoder
// ------------------------------------------------------------------------------------------

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// Each HTTP chunk as sent.
    chunks: Vec<Vec<u8>>,
    /// Whether the `0\r\n\r\n` terminator arrived.
    terminated: bool,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

/// Sends a request and reads until the server closes the connection (`Connection: close`
/// unless `keep_alive`, in which case only a cut or the terminator-less close ends it).
fn raw_request(
    fake: &FakeKiro,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    keep_alive: bool,
) -> RawResponse {
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        fake.addr(),
        body.len()
    );
    if !keep_alive {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("the fake closes the connection");
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> RawResponse {
    let head_end = find(bytes, b"\r\n\r\n").expect("complete head");
    let head = std::str::from_utf8(&bytes[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut rest = &bytes[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked");
    let mut chunks = Vec::new();
    let mut terminated = false;
    if !chunked {
        chunks.push(rest.to_vec());
        terminated = true;
    } else {
        while let Some(line_end) = find(rest, b"\r\n") {
            let size_text = std::str::from_utf8(&rest[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text, 16).unwrap();
            if size == 0 {
                terminated = &rest[line_end..] == b"\r\n\r\n";
                break;
            }
            let start = line_end + 2;
            if rest.len() < start + size + 2 {
                break;
            }
            assert_eq!(&rest[start + size..start + size + 2], b"\r\n");
            chunks.push(rest[start..start + size].to_vec());
            rest = &rest[start + size + 2..];
        }
    }
    RawResponse {
        status,
        headers,
        chunks,
        terminated,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A bit-at-a-time CRC32 (IEEE), deliberately not the fake's table-driven one.
fn crc32_bitwise(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[derive(Debug)]
struct Frame {
    /// String headers as text; other types as `<type N>`.
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Frame {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap()
    }

    fn payload_text(&self) -> &str {
        std::str::from_utf8(&self.payload).unwrap()
    }
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Decodes back-to-back frames, checking both CRCs of each.
fn decode(mut bytes: &[u8]) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 16 {
            return Err(format!("{} trailing bytes", bytes.len()));
        }
        let total = be32(&bytes[0..]);
        let headers_len = be32(&bytes[4..]);
        if be32(&bytes[8..]) as u32 != crc32_bitwise(&bytes[..8]) {
            return Err("prelude CRC mismatch".into());
        }
        if bytes.len() < total || total < 16 + headers_len {
            return Err("truncated frame".into());
        }
        if be32(&bytes[total - 4..]) as u32 != crc32_bitwise(&bytes[..total - 4]) {
            return Err("message CRC mismatch".into());
        }
        let mut h = &bytes[12..12 + headers_len];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let name_len = h[0] as usize;
            let name = String::from_utf8(h[1..1 + name_len].to_vec()).unwrap();
            let kind = h[1 + name_len];
            h = &h[2 + name_len..];
            let (value, used) = match kind {
                0 | 1 => (format!("<type {kind}>"), 0),
                2 => (format!("<type {kind}>"), 1),
                3 => (format!("<type {kind}>"), 2),
                4 => (format!("<type {kind}>"), 4),
                5 | 8 => (format!("<type {kind}>"), 8),
                9 => (format!("<type {kind}>"), 16),
                6 | 7 => {
                    let len = u16::from_be_bytes([h[0], h[1]]) as usize;
                    let text = if kind == 7 {
                        String::from_utf8(h[2..2 + len].to_vec()).unwrap()
                    } else {
                        format!("<type {kind}>")
                    };
                    (text, 2 + len)
                }
                other => return Err(format!("bad header type {other}")),
            };
            headers.push((name, value));
            h = &h[used..];
        }
        frames.push(Frame {
            headers,
            payload: bytes[12 + headers_len..total - 4].to_vec(),
        });
        bytes = &bytes[total..];
    }
    Ok(frames)
}

fn hex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
        .collect()
}

fn legacy_call(fake: &FakeKiro) -> RawResponse {
    raw_request(
        fake,
        "POST",
        "/generateAssistantResponse",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer test-token"),
        ],
        r#"{"conversationState":{"currentMessage":{"userInputMessage":{"content":"hi","modelId":"claude-sonnet-4.5"}}}}"#,
        false,
    )
}

fn frames_of(resp: &RawResponse) -> Vec<Frame> {
    decode(&resp.body()).unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    )
}

fn read(resp: ureq::http::Response<ureq::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post_json(url: &str, body: &Value, bearer: Option<&str>) -> (u16, Value) {
    let mut req = agent().post(url).header("Content-Type", "application/json");
    if let Some(t) = bearer {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    read(req.send(body.to_string()).unwrap())
}

fn get_json(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = agent().get(url);
    if let Some(t) = bearer {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    read(req.call().unwrap())
}

// ------------------------------------------------------------------------------------------
// Encoder
// ------------------------------------------------------------------------------------------

#[test]
fn golden_frame_matches_appendix_a() {
    let expected = hex("0000007c 0000005c 3bddcf78
         0b 3a6576656e742d74797065 07 0016 617373697374616e74526573706f6e73654576656e74
         0d 3a636f6e74656e742d74797065 07 0010 6170706c69636174696f6e2f6a736f6e
         0d 3a6d6573736167652d74797065 07 0005 6576656e74
         7b22636f6e74656e74223a224869227d
         b02babdc");
    assert_eq!(expected.len(), 124);
    let frame = fake_kiro::encode_event("assistantResponseEvent", r#"{"content":"Hi"}"#);
    assert_eq!(frame, expected);
    assert_eq!(Ev::text("Hi").encode(), expected);
}

#[test]
fn crc32_matches_check_value_and_bitwise_reference() {
    assert_eq!(fake_kiro::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(fake_kiro::crc32(b""), 0);
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 13) as u8).collect();
    assert_eq!(fake_kiro::crc32(&data), crc32_bitwise(&data));
}

#[test]
fn payloads_keep_kiro_key_order() {
    let metering = decode(&Ev::Metering(0.5).encode()).unwrap();
    assert_eq!(
        metering[0].payload_text(),
        r#"{"unit":"credit","unitPlural":"credits","usage":0.5}"#
    );
    let stop = decode(&Ev::tool_stop("t1", "bash").encode()).unwrap();
    assert_eq!(
        stop[0].payload_text(),
        r#"{"name":"bash","stop":true,"toolUseId":"t1"}"#
    );
    let input = decode(&Ev::tool_input("t1", "bash", "{\"a\":").encode()).unwrap();
    assert_eq!(
        input[0].payload_text(),
        r#"{"input":"{\"a\":","name":"bash","toolUseId":"t1"}"#
    );
    let meta = decode(
        &Ev::Metadata {
            input: 3,
            output: 4,
        }
        .encode(),
    )
    .unwrap();
    assert_eq!(
        meta[0].payload_text(),
        r#"{"tokenUsage":{"uncachedInputTokens":3,"cacheReadInputTokens":0,"cacheWriteInputTokens":0,"outputTokens":4,"totalTokens":7}}"#
    );
}

#[test]
fn exception_frame_has_exception_headers() {
    let ev = Ev::exception(
        "ThrottlingException",
        "Rate exceeded",
        Some("USER_REQUEST_RATE_EXCEEDED"),
    );
    let frames = decode(&ev.encode()).unwrap();
    assert_eq!(frames[0].header(":message-type"), Some("exception"));
    assert_eq!(
        frames[0].header(":exception-type"),
        Some("ThrottlingException")
    );
    assert_eq!(
        frames[0].json(),
        json!({"message": "Rate exceeded", "reason": "USER_REQUEST_RATE_EXCEEDED"})
    );
}

// ------------------------------------------------------------------------------------------
// Streams over the wire
// ------------------------------------------------------------------------------------------

#[test]
fn text_reply_streams_one_chunked_frame_per_word_with_valid_crcs() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text("Hello from fake Kiro"));
    let resp = legacy_call(&fake);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    assert!(resp.header("x-amzn-requestid").is_some());
    assert!(resp.terminated);
    let frames = frames_of(&resp);
    assert_eq!(frames.len(), resp.chunks.len(), "one frame per chunk");
    let types: Vec<&str> = frames
        .iter()
        .map(|f| f.header(":event-type").unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "assistantResponseEvent",
            "assistantResponseEvent",
            "assistantResponseEvent",
            "assistantResponseEvent",
            "meteringEvent",
            "contextUsageEvent",
            "metadataEvent"
        ]
    );
    let text: Vec<String> = frames[..4]
        .iter()
        .map(|f| f.json()["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, ["Hello", " from", " fake", " Kiro"]);
    for f in &frames {
        assert_eq!(f.header(":message-type"), Some("event"));
        assert_eq!(f.header(":content-type"), Some("application/json"));
    }
    assert_eq!(frames[4].json()["usage"], json!(fake_kiro::DEFAULT_CREDITS));
    assert_eq!(
        frames[5].json()["contextUsagePercentage"],
        json!(fake_kiro::DEFAULT_CONTEXT_PCT)
    );
    assert_eq!(frames[6].json()["tokenUsage"]["outputTokens"], json!(4));
}

#[test]
fn empty_queue_serves_default_reply_and_queue_is_fifo() {
    let fake = FakeKiro::start();
    fake.push_replies([Reply::text("one"), Reply::text("two")]);
    let first = |r: RawResponse| frames_of(&r)[0].json()["content"].clone();
    assert_eq!(first(legacy_call(&fake)), json!("one"));
    assert_eq!(first(legacy_call(&fake)), json!("two"));
    let default_text: String = frames_of(&legacy_call(&fake))
        .iter()
        .filter(|f| f.header(":event-type") == Some("assistantResponseEvent"))
        .map(|f| f.json()["content"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(default_text, "Hello from fake Kiro");
    fake.set_default_reply(Reply::text("changed"));
    assert_eq!(first(legacy_call(&fake)), json!("changed"));
    assert_eq!(fake.pending_replies(), 0);
}

#[test]
fn runtime_shape_requires_a_known_target() {
    let fake = FakeKiro::start();
    for target in [
        "KiroRuntimeService.GenerateAssistantResponse",
        "AmazonCodeWhispererStreamingService.GenerateAssistantResponse",
    ] {
        let resp = raw_request(
            &fake,
            "POST",
            "/",
            &[
                ("Content-Type", "application/x-amz-json-1.0"),
                ("X-Amz-Target", target),
            ],
            "{}",
            false,
        );
        assert_eq!(resp.status, 200, "{target}");
        assert!(!frames_of(&resp).is_empty());
    }
    let resp = raw_request(
        &fake,
        "POST",
        "/",
        &[("Content-Type", "application/x-amz-json-1.0")],
        "{}",
        false,
    );
    assert_eq!(resp.status, 404);
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(fake.unmatched_requests().len(), 1);
    assert_eq!(fake.requests()[0].path, "/");
}

#[test]
fn requests_are_recorded_with_lowercased_headers() {
    let fake = FakeKiro::start();
    legacy_call(&fake);
    raw_request(
        &fake,
        "POST",
        "/generateAssistantResponse",
        &[("X-Custom-Thing", "Value")],
        "not json",
        false,
    );
    let recorded: Vec<Recorded> = fake.requests();
    assert_eq!(recorded.len(), 2);
    let first = &recorded[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/generateAssistantResponse");
    assert!(first.headers.iter().any(|(n, _)| n == "content-type"));
    assert!(first
        .headers
        .iter()
        .all(|(n, _)| *n == n.to_ascii_lowercase()));
    assert_eq!(
        first.header("Content-Type").as_deref(),
        Some("application/json")
    );
    assert_eq!(first.bearer().as_deref(), Some("test-token"));
    assert_eq!(first.user_content().as_deref(), Some("hi"));
    assert_eq!(first.model_id().as_deref(), Some("claude-sonnet-4.5"));
    assert_eq!(first.status, 200);
    let second = &recorded[1];
    assert_eq!(second.header("x-custom-thing").as_deref(), Some("Value"));
    assert_eq!(second.body, Value::Null);
    assert_eq!(second.raw_body, "not json");
    fake.clear_requests();
    assert!(fake.requests().is_empty());
}

#[test]
fn tool_call_reply_splits_arguments_into_fragments() {
    let fake = FakeKiro::start();
    let args = r#"{"command":"ls -la","path":"/tmp"}"#;
    fake.push_reply(Reply::tool_call("tooluse_1", "bash", args, 3));
    let frames = frames_of(&legacy_call(&fake));
    let tool: Vec<Value> = frames
        .iter()
        .filter(|f| f.header(":event-type") == Some("toolUseEvent"))
        .map(Frame::json)
        .collect();
    assert_eq!(tool.len(), 5, "start, 3 fragments, stop");
    for t in &tool {
        assert_eq!(t["name"], "bash");
        assert_eq!(t["toolUseId"], "tooluse_1");
    }
    assert!(tool[0].get("input").is_none());
    let joined: String = tool[1..4]
        .iter()
        .map(|t| t["input"].as_str().unwrap())
        .collect();
    assert_eq!(joined, args);
    assert_eq!(tool[4]["stop"], true);
    let tail: Vec<&str> = frames[5..]
        .iter()
        .map(|f| f.header(":event-type").unwrap())
        .collect();
    assert_eq!(tail, ["meteringEvent", "contextUsageEvent"]);
}

#[test]
fn long_stream_frames_have_the_requested_size() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::long_stream(10, 1024));
    let resp = legacy_call(&fake);
    let frames = frames_of(&resp);
    assert_eq!(frames.len(), 13);
    for chunk in &resp.chunks[..10] {
        assert_eq!(chunk.len(), 1024);
    }
    assert_eq!(
        frames[9].header(":event-type"),
        Some("assistantResponseEvent")
    );
    assert_eq!(frames[12].json()["tokenUsage"]["outputTokens"], json!(10));
}

#[test]
fn corrupt_crc_frame_fails_the_message_crc_check() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("ok"),
        Ev::corrupt_crc(Ev::text("bad")),
    ]));
    let resp = legacy_call(&fake);
    assert_eq!(resp.chunks.len(), 2);
    assert!(decode(&resp.chunks[0]).is_ok());
    assert_eq!(decode(&resp.chunks[1]).unwrap_err(), "message CRC mismatch");
    assert_eq!(
        decode(&Ev::corrupt_prelude(Ev::text("x")).encode()).unwrap_err(),
        "prelude CRC mismatch"
    );
}

#[test]
fn split_and_together_change_chunking_not_bytes() {
    let fake = FakeKiro::start();
    let mut events = Ev::split(Ev::text("straddling"), 3, Duration::from_millis(20));
    events.push(Ev::Together(vec![Ev::text("a"), Ev::text("b")]));
    fake.push_reply(Reply::events(events));
    let resp = legacy_call(&fake);
    assert_eq!(resp.chunks.len(), 4);
    let frames = frames_of(&resp);
    let text: Vec<Value> = frames.iter().map(|f| f.json()["content"].clone()).collect();
    assert_eq!(text, [json!("straddling"), json!("a"), json!("b")]);
}

#[test]
fn cut_ends_the_body_without_terminator() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("partial"),
        Ev::Cut,
        Ev::text("never sent"),
    ]));
    let started = Instant::now();
    let resp = raw_request(
        &fake,
        "POST",
        "/generateAssistantResponse",
        &[],
        "{}",
        true, // keep-alive: only the cut can end this read
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!resp.terminated);
    let frames = frames_of(&resp);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].json()["content"], "partial");
}

#[test]
fn delay_between_flushes_each_frame_on_its_own() {
    let fake = FakeKiro::start();
    fake.push_reply(
        Reply::events(vec![Ev::text("first"), Ev::text("second")])
            .delay_between(Duration::from_millis(400)),
    );
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    stream
        .write_all(b"POST /generateAssistantResponse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    // The head and the first frame arrive together, well before the second frame.
    while find(&got, b"first").is_none() {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let first_at = started.elapsed();
    assert!(find(&got, b"second").is_none());
    stream.read_to_end(&mut got).unwrap();
    let second_at = started.elapsed();
    assert!(second_at - first_at >= Duration::from_millis(300));
}

#[test]
fn delay_first_frame_sends_the_head_first() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text("late").delay_first_frame(Duration::from_millis(400)));
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    stream
        .write_all(b"POST /generateAssistantResponse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    while find(&got, b"\r\n\r\n").is_none() {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    let head_at = started.elapsed();
    assert!(find(&got, b"late").is_none());
    stream.read_to_end(&mut got).unwrap();
    assert!(started.elapsed() - head_at >= Duration::from_millis(300));
    assert!(find(&got, b"late").is_some());
}

#[test]
fn status_reply_carries_its_headers_and_body() {
    let fake = FakeKiro::start();
    fake.push_reply(
        Reply::error(429, "Rate exceeded", Some("USER_REQUEST_RATE_EXCEEDED"))
            .header("Retry-After", "3"),
    );
    let resp = legacy_call(&fake);
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after"), Some("3"));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&resp.body()).unwrap();
    assert_eq!(body["reason"], "USER_REQUEST_RATE_EXCEEDED");
    assert_eq!(fake.requests()[0].status, 429);
}

#[test]
fn json_on_200_is_plain_json_with_status_200() {
    let fake = FakeKiro::start();
    let throttle = json!({"__type": "com.amazon.aws.codewhisperer#ThrottlingException", "message": "Rate exceeded"});
    fake.push_reply(Reply::json_on_200(throttle.clone()));
    let resp = legacy_call(&fake);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        serde_json::from_slice::<Value>(&resp.body()).unwrap(),
        throttle
    );
}

#[test]
fn reply_fn_chooses_a_reply_from_the_request() {
    let fake = FakeKiro::start();
    fake.set_reply_fn(|r| {
        (r.user_content().as_deref() == Some("hi")).then(|| Reply::text("matched"))
    });
    assert_eq!(
        frames_of(&legacy_call(&fake))[0].json()["content"],
        "matched"
    );
    fake.push_reply(Reply::text("queued"));
    assert_eq!(
        frames_of(&legacy_call(&fake))[0].json()["content"],
        "queued"
    );
}

// ------------------------------------------------------------------------------------------
// Management endpoints
// ------------------------------------------------------------------------------------------

#[test]
fn models_are_paginated_with_next_token() {
    let fake = FakeKiro::start();
    let base = format!(
        "{}/List-Available-Models?origin=AI_EDITOR&profileArn={}",
        fake.url(),
        "arn%3Aaws%3Acodewhisperer%3Aus-east-1%3A1%3Aprofile%2FX"
    );
    let mut ids = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &next {
            Some(t) => format!("{base}&nextToken={t}"),
            None => base.clone(),
        };
        let (status, body) = get_json(&url, Some("tok"));
        assert_eq!(status, 200);
        pages += 1;
        assert!(body["defaultModel"].is_object());
        for m in body["models"].as_array().unwrap() {
            ids.push(m["modelId"].as_str().unwrap().to_string());
        }
        match body.get("nextToken").and_then(Value::as_str) {
            Some(t) => next = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        ids,
        [
            "claude-sonnet-4.5",
            "claude-haiku-4.5",
            "claude-opus-4.8",
            "gpt-5.6-sol"
        ]
    );
    assert_eq!(fake.models_count(), 2);
    let recorded = fake.management_requests();
    assert_eq!(
        recorded[0].query_param("origin").as_deref(),
        Some("AI_EDITOR")
    );
    assert_eq!(
        recorded[0].query_param("profileArn").as_deref(),
        Some("arn:aws:codewhisperer:us-east-1:1:profile/X")
    );

    let (_, first_page) = get_json(&base, None);
    assert_eq!(first_page["models"].as_array().unwrap().len(), 2);
    fake.set_models_page_size(0);
    let (_, all) = get_json(&base, None);
    let models = all["models"].as_array().unwrap();
    assert_eq!(models.len(), 4);
    assert!(all.get("nextToken").is_none());
    assert_eq!(
        models[2]["additionalModelRequestFieldsSchema"]["properties"]["output_config"]
            ["properties"]["effort"]["enum"],
        json!(["low", "medium", "high", "xhigh", "max"])
    );
    assert_eq!(models[0]["tokenLimits"]["maxInputTokens"], 200000);
    assert!(models[0]
        .get("additionalModelRequestFieldsSchema")
        .is_none());
}

#[test]
fn unknown_next_token_is_rejected() {
    let fake = FakeKiro::start();
    let (status, _) = get_json(
        &format!(
            "{}/List-Available-Models?origin=AI_EDITOR&nextToken=bogus",
            fake.url()
        ),
        None,
    );
    assert_eq!(status, 400);
}

#[test]
fn set_models_replaces_the_catalogue() {
    let fake = FakeKiro::start();
    fake.set_models(vec![json!({"modelId": "only-one"})]);
    let (_, body) = get_json(&format!("{}/List-Available-Models", fake.url()), None);
    assert_eq!(body["models"], json!([{"modelId": "only-one"}]));
}

#[test]
fn profiles_list_the_configured_arn() {
    let fake = FakeKiro::start();
    let url = format!("{}/List-Available-Profiles", fake.url());
    let (status, body) = post_json(&url, &json!({}), Some("tok"));
    assert_eq!(status, 200);
    assert_eq!(body["profiles"][0]["arn"], fake_kiro::DEFAULT_PROFILE_ARN);
    fake.set_profile_arn("arn:aws:codewhisperer:eu-central-1:9:profile/EU");
    let (_, body) = post_json(&url, &json!({}), Some("tok"));
    assert_eq!(
        body["profiles"],
        json!([{"arn": "arn:aws:codewhisperer:eu-central-1:9:profile/EU", "profileName": "fake"}])
    );
    assert_eq!(fake.profiles_count(), 2);
}

#[test]
fn management_reply_overrides_the_next_call() {
    let fake = FakeKiro::start();
    fake.push_management_reply(Reply::error(500, "boom", None));
    let url = format!("{}/List-Available-Models", fake.url());
    assert_eq!(get_json(&url, None).0, 500);
    assert_eq!(get_json(&url, None).0, 200);
}

#[test]
fn unknown_path_gets_404() {
    let fake = FakeKiro::start();
    assert_eq!(get_json(&format!("{}/nope", fake.url()), None).0, 404);
    assert_eq!(
        get_json(&format!("{}/refreshToken", fake.url()), None).0,
        404,
        "GET on a POST endpoint"
    );
}

// ------------------------------------------------------------------------------------------
// Token endpoints and checks
// ------------------------------------------------------------------------------------------

#[test]
fn desktop_refresh_rotates_tokens() {
    let fake = FakeKiro::start();
    fake.set_expires_in(120);
    let url = format!("{}/refreshToken", fake.url());
    let (status, first) = post_json(&url, &json!({"refreshToken": "seed"}), None);
    assert_eq!(status, 200);
    assert_eq!(first["expiresIn"], 120);
    assert_eq!(first["profileArn"], fake_kiro::DEFAULT_PROFILE_ARN);
    let access1 = first["accessToken"].as_str().unwrap().to_string();
    let refresh1 = first["refreshToken"].as_str().unwrap().to_string();
    assert!(access1.starts_with("fake-access-"));
    assert_ne!(refresh1, "seed");
    let (_, second) = post_json(&url, &json!({ "refreshToken": refresh1 }), None);
    assert_ne!(second["accessToken"].as_str().unwrap(), access1);
    assert_ne!(second["refreshToken"].as_str().unwrap(), refresh1);
    assert_eq!(fake.refresh_count(), 2);
    assert_eq!(fake.issued_access_tokens().len(), 2);
    assert_eq!(
        fake.last_access_token().as_deref(),
        second["accessToken"].as_str()
    );
    assert_eq!(
        fake.auth_requests()[0].body,
        json!({"refreshToken": "seed"})
    );
}

#[test]
fn revoked_refresh_token_gets_401() {
    let fake = FakeKiro::start();
    fake.revoke_refresh_token("stale");
    let url = format!("{}/refreshToken", fake.url());
    let (status, body) = post_json(&url, &json!({"refreshToken": "stale"}), None);
    assert_eq!(status, 401);
    assert_eq!(body, json!({"message": "Invalid refresh token"}));
    assert_eq!(fake.refresh_count(), 1);
    assert!(fake.issued_access_tokens().is_empty());
}

#[test]
fn rotated_refresh_tokens_can_be_revoked_or_left_empty() {
    let fake = FakeKiro::start();
    let url = format!("{}/refreshToken", fake.url());
    fake.set_revoke_rotated_refresh_tokens(true);
    assert_eq!(post_json(&url, &json!({"refreshToken": "r0"}), None).0, 200);
    assert_eq!(post_json(&url, &json!({"refreshToken": "r0"}), None).0, 401);
    fake.set_rotate_refresh_tokens(false);
    let (_, body) = post_json(&url, &json!({"refreshToken": "r1"}), None);
    assert_eq!(body["refreshToken"], "");
}

#[test]
fn oidc_create_token_takes_camel_case_json() {
    let fake = FakeKiro::start();
    let url = format!("{}/token", fake.url());
    let good = json!({"grantType": "refresh_token", "clientId": "cid", "clientSecret": "sec", "refreshToken": "r0"});
    let (status, body) = post_json(&url, &good, None);
    assert_eq!(status, 200);
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["expiresIn"], 3600);
    assert!(body["accessToken"]
        .as_str()
        .unwrap()
        .starts_with("fake-access-"));
    assert!(body["refreshToken"].as_str().is_some());
    let snake = json!({"grant_type": "refresh_token", "client_id": "cid", "client_secret": "sec", "refresh_token": "r0"});
    assert_eq!(post_json(&url, &snake, None).0, 400);
    fake.revoke_refresh_token("r0");
    let (status, body) = post_json(&url, &good, None);
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(fake.oidc_count(), 3);
}

#[test]
fn external_idp_refresh_takes_a_form_and_answers_snake_case() {
    let fake = FakeKiro::start();
    let form = "grant_type=refresh_token&refresh_token=ext%2Br0&client_id=app-1";
    let resp = agent()
        .post(&format!("{}/oauth2/token", fake.url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form)
        .unwrap();
    let (status, body) = read(resp);
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"]
        .as_str()
        .unwrap()
        .starts_with("fake-access-"));
    assert!(body["refresh_token"].as_str().is_some());
    let recorded = &fake.auth_requests()[0];
    assert_eq!(recorded.raw_body, form);
    assert_eq!(recorded.body, Value::Null);
    assert_eq!(
        recorded.form_param("refresh_token").as_deref(),
        Some("ext+r0")
    );
    assert_eq!(fake.external_count(), 1);
}

#[test]
fn auth_reply_and_refresh_delay_apply_to_auth_calls() {
    let fake = FakeKiro::start();
    fake.push_auth_reply(Reply::error(500, "down", None));
    fake.set_refresh_delay(Duration::from_millis(300));
    let url = format!("{}/refreshToken", fake.url());
    let started = Instant::now();
    assert_eq!(post_json(&url, &json!({"refreshToken": "r"}), None).0, 500);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(post_json(&url, &json!({"refreshToken": "r"}), None).0, 200);
}

#[test]
fn token_check_rejects_unknown_and_revoked_tokens() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text("kept for the good call"));
    // Off by default: any token passes.
    fake.revoke_access_token("revoked");
    let call = |token: &str| {
        raw_request(
            &fake,
            "POST",
            "/generateAssistantResponse",
            &[("Authorization", &format!("Bearer {token}"))],
            "{}",
            false,
        )
    };
    assert_eq!(
        call("revoked").status,
        403,
        "revoked even when not required"
    );
    fake.require_issued_tokens(true);
    let rejected = call("made-up");
    assert_eq!(rejected.status, 403);
    assert_eq!(
        serde_json::from_slice::<Value>(&rejected.body()).unwrap(),
        json!({"message": "The bearer token included in the request is invalid."})
    );
    let (_, issued) = post_json(
        &format!("{}/refreshToken", fake.url()),
        &json!({"refreshToken": "r"}),
        None,
    );
    let token = issued["accessToken"].as_str().unwrap().to_string();
    let ok = call(&token);
    assert_eq!(ok.status, 200);
    assert_eq!(
        frames_of(&ok)[0].json()["content"],
        "kept",
        "a rejected call does not consume the scripted reply"
    );
    fake.accept_token("ksk_api_key");
    assert_eq!(call("ksk_api_key").status, 200);
    let models = format!("{}/List-Available-Models", fake.url());
    assert_eq!(get_json(&models, Some("made-up")).0, 403);
    assert_eq!(get_json(&models, Some(&token)).0, 200);
    fake.revoke_access_token(&token);
    assert_eq!(call(&token).status, 403);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 403, 200, 200, 403]);
}

// ------------------------------------------------------------------------------------------
// Server behaviour
// ------------------------------------------------------------------------------------------

#[test]
fn serves_200_concurrent_slow_streams() {
    let fake = Arc::new(FakeKiro::start());
    fake.set_default_reply(Reply::text("a b c").delay_first_frame(Duration::from_millis(500)));
    let n = 200;
    let barrier = Arc::new(Barrier::new(n));
    let started = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let fake = Arc::clone(&fake);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let resp = legacy_call(&fake);
                assert_eq!(resp.status, 200);
                assert!(resp.terminated);
                frames_of(&resp).len()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 6);
    }
    // Serially (or with a small fixed pool) this would take 200 × 0.5 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(fake.requests().len(), n);
}

#[test]
fn keep_alive_connection_serves_consecutive_requests() {
    let fake = FakeKiro::start();
    let agent = agent();
    for _ in 0..3 {
        let resp = agent
            .post(&format!("{}/generateAssistantResponse", fake.url()))
            .header("Content-Type", "application/json")
            .send("{}")
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let bytes = resp.into_body().read_to_vec().unwrap();
        assert_eq!(decode(&bytes).unwrap().len(), 7);
    }
    assert_eq!(fake.requests().len(), 3);
}

#[cfg(target_os = "linux")]
#[test]
fn accepted_sockets_have_nodelay() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text("x").delay_first_frame(Duration::from_millis(500)));
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    let local = stream.local_addr().unwrap();
    stream
        .write_all(
            b"POST /generateAssistantResponse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        )
        .unwrap();
    // Wait for the head so the connection has certainly been accepted.
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap();
    assert!(n > 0);
    assert_eq!(fake_kiro::accepted_socket_nodelay(&fake, local), Some(true));
}

#[test]
fn wait_for_sees_background_calls() {
    let fake = Arc::new(FakeKiro::start());
    let url = format!("{}/refreshToken", fake.url());
    assert!(!fake.wait_for(Duration::from_millis(50), |f| f.refresh_count() == 1));
    let caller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        post_json(&url, &json!({"refreshToken": "r"}), None).0
    });
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.refresh_count() == 1));
    assert_eq!(caller.join().unwrap(), 200);
}

#[test]
fn then_appends_steps_after_the_tail() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text("hi").then(Ev::MetadataStop("end_turn".into())));
    let frames = frames_of(&legacy_call(&fake));
    let last = frames.last().unwrap();
    assert_eq!(last.header(":event-type"), Some("metadataEvent"));
    assert_eq!(last.json(), json!({"stopReason": "end_turn"}));
}

#[test]
fn dropping_the_fake_stops_it() {
    let fake = FakeKiro::start();
    let addr = fake.addr();
    assert_eq!(legacy_call(&fake).status, 200);
    drop(fake);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let refused = match TcpStream::connect(addr) {
            Err(_) => true,
            Ok(mut s) => {
                // Accepted by a dying listener: the request must not be answered.
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let _ = s.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
                let mut buf = [0u8; 16];
                !matches!(s.read(&mut buf), Ok(n) if n > 0)
            }
        };
        if refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fake still answers after drop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn disconnect_closes_without_a_response() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::disconnect());
    let mut stream = TcpStream::connect(fake.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"POST /generateAssistantResponse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        )
        .unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("closed, not timed out");
    assert!(got.is_empty());
    assert_eq!(fake.requests()[0].status, 0);
}

#[test]
fn stream_content_type_can_be_overridden() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text("x").header("Content-Type", "application/octet-stream"));
    let resp = legacy_call(&fake);
    let types: Vec<_> = resp
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .collect();
    assert_eq!(types.len(), 1);
    assert_eq!(
        resp.header("content-type"),
        Some("application/octet-stream")
    );
}
