//! Broken replies by name: event streams damaged at the frame level (CRCs, lengths, headers,
//! truncation), payloads of the wrong shape for their event type, and in-stream errors. Shared
//! by `tests/broken_frames.rs` and the stand-alone fake (`fake_kiro` answers a current message
//! containing `KIRO_FAULT:<name>` with the named reply when its own list of faults has no such
//! name, for `scripts/fuzz_requests.py`).
//!
//! Every reply starts with [`LEAD`] as a text event unless its name says `first`, so most faults
//! arrive after the client has seen output: the worst case for a stream, which can no longer
//! turn into an error status.

use super::{encode_event, Ev, HeaderValue, Reply};
use serde_json::json;

/// The text every broken reply (but the `first` ones) sends before its fault.
pub const LEAD: &str = "Before the fault.";

/// What the client must see for a broken reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The reply is unusable: a stream ends with the format's error event, a non-streaming
    /// request gets an error status.
    Fails,
    /// The damage is harmless (or the fault is a legal variation): the answer is complete.
    Served,
}

/// The catalogue: name, expected outcome. Kept in one place so the test and the stand-alone
/// fake cannot drift apart.
pub const BROKEN: &[(&str, Outcome)] = &[
    ("prelude_crc", Outcome::Fails),
    ("prelude_crc_first", Outcome::Fails),
    ("message_crc", Outcome::Fails),
    ("message_crc_first", Outcome::Fails),
    ("total_below_prelude", Outcome::Fails),
    ("total_4gib", Outcome::Fails),
    ("total_over_limit", Outcome::Fails),
    ("headers_past_message", Outcome::Fails),
    ("header_value_overruns", Outcome::Fails),
    ("unknown_header_type", Outcome::Fails),
    ("header_name_not_utf8", Outcome::Fails),
    ("payload_not_json", Outcome::Fails),
    ("payload_not_utf8", Outcome::Fails),
    ("payload_array", Outcome::Fails),
    ("payload_deep", Outcome::Fails),
    ("text_content_number", Outcome::Fails),
    ("text_content_object", Outcome::Fails),
    ("tool_payload_string", Outcome::Fails),
    ("tool_name_number", Outcome::Fails),
    ("tool_input_number", Outcome::Fails),
    ("tool_without_name", Outcome::Fails),
    ("reasoning_text_number", Outcome::Fails),
    ("reasoning_payload_number", Outcome::Fails),
    ("event_without_type", Outcome::Fails),
    ("exception", Outcome::Fails),
    ("exception_first", Outcome::Fails),
    ("exception_plain_text", Outcome::Fails),
    ("exception_huge", Outcome::Fails),
    ("error_frame", Outcome::Fails),
    ("invalid_state", Outcome::Fails),
    ("cut_mid_prelude", Outcome::Fails),
    ("cut_mid_frame", Outcome::Fails),
    ("end_mid_frame", Outcome::Fails),
    ("garbage_after_frames", Outcome::Fails),
    ("zero_bytes", Outcome::Fails),
    // A clean end before any frame: no answer at all.
    ("empty_stream", Outcome::Fails),
    // Legal variations and damage that loses nothing the client asked for.
    ("split_every_byte", Outcome::Served),
    ("tool_input_object", Outcome::Served),
    ("tool_without_ids", Outcome::Served),
    ("tool_calls_interleaved", Outcome::Served),
    ("tool_input_not_json", Outcome::Served),
    ("metering_not_a_number", Outcome::Served),
    ("context_usage_object", Outcome::Served),
    ("token_usage_string", Outcome::Served),
    ("token_usage_huge", Outcome::Served),
    ("figures_huge", Outcome::Served),
    ("unknown_event", Outcome::Served),
    ("unknown_message_type", Outcome::Served),
    ("enormous_event", Outcome::Served),
];

/// The standard three headers of an event frame.
fn event_headers(event_type: &str) -> Vec<(String, HeaderValue)> {
    vec![
        (":event-type".into(), HeaderValue::String(event_type.into())),
        (
            ":content-type".into(),
            HeaderValue::String("application/json".into()),
        ),
        (":message-type".into(), HeaderValue::String("event".into())),
    ]
}

/// A prelude with these lengths and a correct CRC, so the lengths themselves are what is wrong.
fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&headers.to_be_bytes());
    let crc = super::crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A frame from a raw header block and payload, both CRCs correct.
fn frame_with_header_block(block: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 12 + block.len() + payload.len() + 4;
    let mut out = prelude(total as u32, block.len() as u32);
    out.extend_from_slice(block);
    out.extend_from_slice(payload);
    let crc = super::crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A frame of this event type with these payload bytes (not necessarily JSON).
fn raw_event(event_type: &str, payload: &[u8]) -> Ev {
    Ev::Frame {
        headers: event_headers(event_type),
        payload: payload.to_vec(),
    }
}

/// The usual end of a reply: metering, context usage, token usage.
fn tail() -> Vec<Ev> {
    vec![
        Ev::Metering(super::DEFAULT_CREDITS),
        Ev::ContextUsage(super::DEFAULT_CONTEXT_PCT),
        Ev::Metadata {
            input: super::DEFAULT_INPUT_TOKENS,
            output: 5,
        },
    ]
}

/// The named broken reply, or None for a name not in [`BROKEN`].
pub fn broken_reply(name: &str) -> Option<Reply> {
    let lead = Ev::text(LEAD);
    let after = |fault: Vec<Ev>| {
        let mut events = vec![lead.clone()];
        events.extend(fault);
        Reply::events(events)
    };
    let with_tail = |fault: Vec<Ev>| {
        let mut events = vec![lead.clone()];
        events.extend(fault);
        events.push(Ev::text(" After the fault."));
        events.extend(tail());
        Reply::events(events)
    };
    let text_frame = Ev::text(" more").encode();
    let reply = match name {
        "prelude_crc" => with_tail(vec![Ev::corrupt_prelude(Ev::text(" lost"))]),
        "prelude_crc_first" => Reply::events(vec![Ev::corrupt_prelude(Ev::text(LEAD))]),
        "message_crc" => with_tail(vec![Ev::corrupt_crc(Ev::text(" lost"))]),
        "message_crc_first" => Reply::events(vec![Ev::corrupt_crc(Ev::text(LEAD))]),
        "total_below_prelude" => with_tail(vec![Ev::Raw(prelude(8, 0))]),
        "total_4gib" => with_tail(vec![Ev::Raw(prelude(u32::MAX, 0))]),
        "total_over_limit" => with_tail(vec![Ev::Raw(prelude(16 * 1024 * 1024 + 1, 0))]),
        "headers_past_message" => {
            // A 40-byte frame that claims 100 bytes of headers; both CRCs are right.
            let mut bytes = prelude(40, 100);
            bytes.extend_from_slice(&[0u8; 24]);
            let crc = super::crc32(&bytes);
            bytes.extend_from_slice(&crc.to_be_bytes());
            with_tail(vec![Ev::Raw(bytes)])
        }
        "header_value_overruns" => {
            // A string header whose length points past the header block.
            let mut block = vec![11u8];
            block.extend_from_slice(b":event-type");
            block.push(7);
            block.extend_from_slice(&500u16.to_be_bytes());
            block.extend_from_slice(b"assistantResponseEvent");
            with_tail(vec![Ev::Raw(frame_with_header_block(
                &block,
                br#"{"content":"x"}"#,
            ))])
        }
        "unknown_header_type" => {
            let mut block = vec![4u8];
            block.extend_from_slice(b"oops");
            block.push(42);
            block.extend_from_slice(&[1, 2, 3, 4]);
            with_tail(vec![Ev::Raw(frame_with_header_block(
                &block,
                br#"{"content":"x"}"#,
            ))])
        }
        "header_name_not_utf8" => {
            let mut block = vec![3u8, 0xff, 0xfe, 0xfd, 7];
            block.extend_from_slice(&5u16.to_be_bytes());
            block.extend_from_slice(b"event");
            with_tail(vec![Ev::Raw(frame_with_header_block(
                &block,
                br#"{"content":"x"}"#,
            ))])
        }
        "payload_not_json" => with_tail(vec![raw_event("assistantResponseEvent", b"not json")]),
        "payload_not_utf8" => with_tail(vec![raw_event(
            "assistantResponseEvent",
            b"{\"content\":\"caf\xe9\"}",
        )]),
        "payload_array" => with_tail(vec![raw_event("assistantResponseEvent", b"[1,2,3]")]),
        "payload_deep" => {
            let deep = format!(
                "{{\"content\":{}1{}}}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            );
            with_tail(vec![raw_event("assistantResponseEvent", deep.as_bytes())])
        }
        "text_content_number" => with_tail(vec![Ev::custom(
            "assistantResponseEvent",
            json!({"content": 42}),
        )]),
        "text_content_object" => with_tail(vec![Ev::custom(
            "assistantResponseEvent",
            json!({"content": {"text": "lost"}}),
        )]),
        "tool_payload_string" => with_tail(vec![raw_event("toolUseEvent", b"\"a string\"")]),
        "tool_name_number" => with_tail(vec![
            Ev::custom("toolUseEvent", json!({"name": 5, "toolUseId": "tooluse_n"})),
            Ev::custom(
                "toolUseEvent",
                json!({"name": 5, "toolUseId": "tooluse_n", "input": "{}", "stop": true}),
            ),
        ]),
        "tool_input_number" => with_tail(vec![
            Ev::tool_start("tooluse_i", "get_weather"),
            Ev::custom(
                "toolUseEvent",
                json!({"name": "get_weather", "toolUseId": "tooluse_i", "input": 5}),
            ),
            Ev::tool_stop("tooluse_i", "get_weather"),
        ]),
        "reasoning_text_number" => Reply::events(vec![
            Ev::reasoning("Thinking first."),
            Ev::custom("reasoningContentEvent", json!({"text": 5})),
            lead.clone(),
        ]),
        "reasoning_payload_number" => with_tail(vec![raw_event("reasoningContentEvent", b"12345")]),
        "event_without_type" => with_tail(vec![Ev::Frame {
            headers: vec![(":message-type".into(), HeaderValue::String("event".into()))],
            payload: br#"{"content":" lost"}"#.to_vec(),
        }]),
        "exception" => after(vec![Ev::exception(
            "InternalServerException",
            "Encountered an unexpected error when processing the request, please try again.",
            None,
        )]),
        "exception_first" => Reply::events(vec![Ev::exception(
            "ValidationException",
            "Improperly formed request.",
            Some("REQUEST_BODY_INVALID"),
        )]),
        "exception_plain_text" => after(vec![Ev::Frame {
            headers: vec![
                (
                    ":exception-type".into(),
                    HeaderValue::String("InternalServerException".into()),
                ),
                (
                    ":message-type".into(),
                    HeaderValue::String("exception".into()),
                ),
            ],
            payload: b"something broke <html>".to_vec(),
        }]),
        // Kiro's words become the client's error message (and a log line): 4 MiB of them.
        "exception_huge" => after(vec![Ev::exception(
            "InternalServerException",
            &"very long message ".repeat(4 * 1024 * 1024 / 18),
            Some(&"R".repeat(100_000)),
        )]),
        "error_frame" => after(vec![Ev::ErrorFrame {
            code: "InternalFailure".into(),
            message: "the stream failed".into(),
        }]),
        "invalid_state" => after(vec![Ev::custom(
            "invalidStateEvent",
            json!({"reason": "INVALID_STATE", "message": "Conversation state is invalid"}),
        )]),
        "cut_mid_prelude" => after(vec![Ev::Raw(text_frame[..5].to_vec()), Ev::Cut]),
        "cut_mid_frame" => after(vec![
            Ev::Raw(text_frame[..text_frame.len() / 2].to_vec()),
            Ev::Cut,
        ]),
        // The HTTP body ends cleanly (chunk terminator) in the middle of a frame.
        "end_mid_frame" => after(vec![Ev::Raw(text_frame[..text_frame.len() - 3].to_vec())]),
        "garbage_after_frames" => after(vec![Ev::Raw(b"<html>502 Bad Gateway</html>".to_vec())]),
        // A 200 event stream with no frame at all, closed at once.
        "zero_bytes" => Reply::events(vec![Ev::Cut]),
        // The whole reply (text, a tool call, the usage tail) one byte per chunk, so every
        // frame boundary and every field of the prelude falls between two reads.
        "split_every_byte" => {
            let mut whole = vec![lead.clone(), Ev::text(" After the fault.")];
            whole.extend(Ev::tool_call(
                "tooluse_s",
                "get_weather",
                r#"{"city":"Paris"}"#,
                3,
            ));
            whole.extend(tail());
            let bytes: Vec<u8> = whole.iter().flat_map(Ev::encode).collect();
            Reply::events(bytes.into_iter().map(|b| Ev::Raw(vec![b])).collect())
        }
        "tool_input_object" => {
            let mut events = vec![lead.clone()];
            events.push(Ev::tool_start("tooluse_obj", "get_weather"));
            events.push(Ev::tool_input_object(
                "tooluse_obj",
                "get_weather",
                json!({"city": "Paris"}),
            ));
            events.push(Ev::tool_stop("tooluse_obj", "get_weather"));
            events.extend(tail());
            Reply::events(events)
        }
        "tool_without_name" => with_tail(vec![Ev::custom(
            "toolUseEvent",
            json!({"toolUseId": "tooluse_nameless", "input": "{}", "stop": true}),
        )]),
        // Calls that arrive without ids belong to the call in progress.
        "tool_without_ids" => {
            let mut events = vec![lead.clone()];
            events.push(Ev::custom("toolUseEvent", json!({"name": "get_weather"})));
            events.push(Ev::custom(
                "toolUseEvent",
                json!({"name": "get_weather", "input": "{\"city\":\"Paris\"}"}),
            ));
            events.push(Ev::custom(
                "toolUseEvent",
                json!({"name": "get_weather", "stop": true}),
            ));
            events.extend(tail());
            Reply::events(events)
        }
        "tool_calls_interleaved" => {
            let mut events = vec![lead.clone()];
            events.push(Ev::tool_start("tooluse_a", "get_weather"));
            events.push(Ev::tool_start("tooluse_b", "get_weather"));
            events.push(Ev::tool_input("tooluse_b", "get_weather", r#"{"city":"#));
            events.push(Ev::tool_input(
                "tooluse_a",
                "get_weather",
                r#"{"city":"Paris"}"#,
            ));
            events.push(Ev::tool_input("tooluse_b", "get_weather", r#""Oslo"}"#));
            events.push(Ev::tool_stop("tooluse_a", "get_weather"));
            events.push(Ev::tool_stop("tooluse_b", "get_weather"));
            events.extend(tail());
            Reply::events(events)
        }
        // Arguments that are not JSON at all, in a call Kiro says is complete.
        "tool_input_not_json" => {
            let mut events = vec![lead.clone()];
            events.extend(Ev::tool_call("tooluse_x", "get_weather", "{city: Paris", 2));
            events.extend(tail());
            Reply::events(events)
        }
        "metering_not_a_number" => with_tail(vec![Ev::custom(
            "meteringEvent",
            json!({"usage": "lots", "unit": "credit"}),
        )]),
        "context_usage_object" => with_tail(vec![Ev::custom(
            "contextUsageEvent",
            json!({"contextUsagePercentage": {"value": 3}}),
        )]),
        "token_usage_string" => with_tail(vec![Ev::custom(
            "metadataEvent",
            json!({"tokenUsage": "many"}),
        )]),
        // Figures no reply can have, as the last word on usage (no usual tail after them).
        "token_usage_huge" => after(vec![
            Ev::text(" After the fault."),
            Ev::custom(
                "metadataEvent",
                json!({"tokenUsage": {"uncachedInputTokens": 1e30, "cacheReadInputTokens": 1e30,
                    "cacheWriteInputTokens": 1e30, "outputTokens": 1e30, "totalTokens": 1e30}}),
            ),
        ]),
        "figures_huge" => after(vec![
            Ev::text(" After the fault."),
            Ev::custom("meteringEvent", json!({"usage": 1e308})),
            Ev::custom("meteringEvent", json!({"usage": 1e308})),
            Ev::custom("meteringEvent", json!({"usage": -5})),
            Ev::custom(
                "contextUsageEvent",
                json!({"contextUsagePercentage": 1e300}),
            ),
        ]),
        "unknown_event" => with_tail(vec![Ev::custom(
            "someFutureEvent",
            json!({"content": 5, "nested": [[[]]]}),
        )]),
        "unknown_message_type" => with_tail(vec![Ev::Frame {
            headers: vec![(
                ":message-type".into(),
                HeaderValue::String("telemetry".into()),
            )],
            payload: b"not even json".to_vec(),
        }]),
        "empty_stream" => Reply::events(Vec::new()),
        "enormous_event" => {
            // One text event just under the 16 MiB frame limit.
            let overhead = encode_event("assistantResponseEvent", r#"{"content":""}"#).len();
            let text = "y".repeat(16 * 1024 * 1024 - overhead - 16);
            let mut events = vec![lead.clone(), Ev::Text(text)];
            events.extend(tail());
            Reply::events(events)
        }
        _ => return None,
    };
    Some(reply)
}

/// The fault named in `content` after `KIRO_FAULT:`, if any.
pub fn fault_in(content: &str) -> Option<&str> {
    let rest = content.split("KIRO_FAULT:").nth(1)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    rest.get(..end)
}
