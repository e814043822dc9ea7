//! A fake Kiro upstream for the end-to-end tests and the benchmark: one tiny_http server on
//! 127.0.0.1 that answers inference calls (runtime and legacy shapes) with scripted AWS
//! event-stream replies, serves the management calls (models, profiles) and the three token
//! refresh endpoints, and records every request so tests can assert what the gateway sent.
//!
//! It must not use the gateway crate: the frame encoder and the CRC32 below are written
//! independently so that the gateway's decoder is checked against a second implementation.
//! Include it from a test file with `mod fake_kiro;`.
#![allow(dead_code)]

pub mod broken;
mod idle;
pub mod mcp;
mod usage;
mod validator;
mod versions;
pub use versions::MANIFEST_PATH;
pub mod agent_script;

use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

// ------------------------------------------------------------------------------------------
// Wire format: CRC32 and event-stream frames
// ------------------------------------------------------------------------------------------

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// CRC32 as used by the AWS event-stream format (IEEE 802.3 / zlib: reflected polynomial
/// 0xEDB88320, initial value and final XOR 0xFFFFFFFF), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// A header value of the event-stream format; the discriminant is the wire type (0..=9).
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// Type 0 (true) or 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6: u16 length + bytes.
    Bytes(Vec<u8>),
    /// Type 7: u16 length + UTF-8.
    String(String),
    /// Type 8: milliseconds since the epoch.
    Timestamp(i64),
    /// Type 9: 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            HeaderValue::Bool(true) => out.push(0),
            HeaderValue::Bool(false) => out.push(1),
            HeaderValue::Byte(v) => {
                out.push(2);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                out.push(4);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                out.push(5);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) => {
                out.push(6);
                out.extend_from_slice(&(v.len() as u16).to_be_bytes());
                out.extend_from_slice(v);
            }
            HeaderValue::String(v) => {
                out.push(7);
                out.extend_from_slice(&(v.len() as u16).to_be_bytes());
                out.extend_from_slice(v.as_bytes());
            }
            HeaderValue::Timestamp(v) => {
                out.push(8);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                out.push(9);
                out.extend_from_slice(v);
            }
        }
    }
}

/// Encodes one event-stream message: prelude (total length, headers length, prelude CRC),
/// headers in the given order, payload, message CRC.
pub fn encode_frame(headers: &[(String, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        header_bytes.push(name.len() as u8);
        header_bytes.extend_from_slice(name.as_bytes());
        value.write_to(&mut header_bytes);
    }
    let total = 12 + header_bytes.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

/// Encodes a normal Kiro event: headers `:event-type`, `:content-type: application/json`,
/// `:message-type: event` (all strings, in that order) and the JSON payload as given.
pub fn encode_event(event_type: &str, payload_json: &str) -> Vec<u8> {
    encode_frame(
        &[
            (":event-type".into(), HeaderValue::String(event_type.into())),
            (
                ":content-type".into(),
                HeaderValue::String("application/json".into()),
            ),
            (":message-type".into(), HeaderValue::String("event".into())),
        ],
        payload_json.as_bytes(),
    )
}

/// Wraps bytes as one HTTP/1.1 chunk (`<hex len>\r\n<bytes>\r\n`).
fn push_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{:X}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// A JSON object with its keys in exactly the given order (values already serialised), so
/// payloads do not depend on serde_json's map ordering.
fn ordered_object(fields: &[(&str, String)]) -> String {
    let mut s = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&Value::from(*key).to_string());
        s.push(':');
        s.push_str(value);
    }
    s.push('}');
    s
}

fn js(value: impl Into<Value>) -> String {
    value.into().to_string()
}

// ------------------------------------------------------------------------------------------
// Scripted events and replies
// ------------------------------------------------------------------------------------------

/// `:event-type` of text deltas.
pub const ASSISTANT_RESPONSE_EVENT: &str = "assistantResponseEvent";
/// `:event-type` of tool-call frames.
pub const TOOL_USE_EVENT: &str = "toolUseEvent";
/// `:event-type` of native reasoning frames.
pub const REASONING_CONTENT_EVENT: &str = "reasoningContentEvent";
/// `:event-type` of credit usage.
pub const METERING_EVENT: &str = "meteringEvent";
/// `:event-type` of the context-window percentage.
pub const CONTEXT_USAGE_EVENT: &str = "contextUsageEvent";
/// `:event-type` of token usage / stop reason.
pub const METADATA_EVENT: &str = "metadataEvent";

/// Credits reported by the tail of [`Reply::text`], [`Reply::tool_call`] and
/// [`Reply::long_stream`].
pub const DEFAULT_CREDITS: f64 = 0.25;
/// Context usage percentage reported by the same tails.
pub const DEFAULT_CONTEXT_PCT: f64 = 1.5;
/// `uncachedInputTokens` reported by the metadataEvent of [`Reply::text`] and
/// [`Reply::long_stream`] (their `outputTokens` is the number of text frames).
pub const DEFAULT_INPUT_TOKENS: u64 = 42;
/// The text of the default reply.
pub const DEFAULT_TEXT: &str = "Hello from fake Kiro";

/// One step of a scripted event stream. Every frame-producing variant goes out as its own
/// HTTP chunk, flushed.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    /// assistantResponseEvent `{"content":…}`.
    Text(String),
    /// toolUseEvent `{"name","toolUseId"}` (start of a call, no input).
    ToolStart { id: String, name: String },
    /// toolUseEvent `{"input":"<fragment>","name","toolUseId"}`.
    ToolInput {
        id: String,
        name: String,
        fragment: String,
    },
    /// toolUseEvent `{"input":{…object…},"name","toolUseId"}`.
    ToolInputObject {
        id: String,
        name: String,
        value: Value,
    },
    /// toolUseEvent `{"name","stop":true,"toolUseId"}`.
    ToolStop { id: String, name: String },
    /// reasoningContentEvent `{"text":…}`.
    Reasoning { text: String },
    /// reasoningContentEvent `{"signature":…}`.
    ReasoningSignature { signature: String },
    /// reasoningContentEvent `{"redactedContent":…}`.
    RedactedReasoning { data: String },
    /// meteringEvent `{"unit":"credit","unitPlural":"credits","usage":x}`.
    Metering(f64),
    /// contextUsageEvent `{"contextUsagePercentage":x}`.
    ContextUsage(f64),
    /// metadataEvent `{"tokenUsage":{uncachedInputTokens,cacheReadInputTokens:0,
    /// cacheWriteInputTokens:0,outputTokens,totalTokens}}`.
    Metadata { input: u64, output: u64 },
    /// metadataEvent `{"stopReason":…}`.
    MetadataStop(String),
    /// `:message-type: exception` with `:exception-type: kind`, payload
    /// `{"message","reason"}` (reason `null` when `None`).
    Exception {
        kind: String,
        message: String,
        reason: Option<String>,
    },
    /// `:message-type: error` with `:error-code` / `:error-message` headers, empty payload.
    ErrorFrame { code: String, message: String },
    /// Any other event (followupPromptEvent, invalidStateEvent, …): the three standard
    /// headers and this payload.
    Custom { event_type: String, payload: Value },
    /// A fully custom frame: these headers in this order, these payload bytes.
    Frame {
        headers: Vec<(String, HeaderValue)>,
        payload: Vec<u8>,
    },
    /// The inner event's frame with its message CRC flipped.
    CorruptCrc(Box<Ev>),
    /// The inner event's frame with its prelude CRC flipped.
    CorruptPrelude(Box<Ev>),
    /// Several events' bytes sent together as one chunk (one write).
    Together(Vec<Ev>),
    /// These bytes as one chunk, not framed (nothing is sent for an empty vector).
    Raw(Vec<u8>),
    /// Close the connection right here: no chunk terminator. (Linux: the accepted socket is
    /// shut down; elsewhere the writer is only dropped and the client waits for its timeout.)
    Cut,
    /// Pause (after flushing what was written so far).
    Sleep(Duration),
}

impl Ev {
    /// A text delta.
    pub fn text(text: &str) -> Ev {
        Ev::Text(text.to_string())
    }

    /// Splits text into one text event per word, each word keeping the whitespace before
    /// it: `"Hello from fake Kiro"` → `"Hello"`, `" from"`, `" fake"`, `" Kiro"`.
    pub fn words(text: &str) -> Vec<Ev> {
        split_words(text).into_iter().map(Ev::Text).collect()
    }

    /// [`Ev::ToolStart`].
    pub fn tool_start(id: &str, name: &str) -> Ev {
        Ev::ToolStart {
            id: id.into(),
            name: name.into(),
        }
    }

    /// [`Ev::ToolInput`].
    pub fn tool_input(id: &str, name: &str, fragment: &str) -> Ev {
        Ev::ToolInput {
            id: id.into(),
            name: name.into(),
            fragment: fragment.into(),
        }
    }

    /// [`Ev::ToolInputObject`].
    pub fn tool_input_object(id: &str, name: &str, value: Value) -> Ev {
        Ev::ToolInputObject {
            id: id.into(),
            name: name.into(),
            value,
        }
    }

    /// [`Ev::ToolStop`].
    pub fn tool_stop(id: &str, name: &str) -> Ev {
        Ev::ToolStop {
            id: id.into(),
            name: name.into(),
        }
    }

    /// A whole tool call: start, `args_json` split into `fragments` input frames (by
    /// characters, no empty fragment; none when `args_json` is empty), stop.
    pub fn tool_call(id: &str, name: &str, args_json: &str, fragments: usize) -> Vec<Ev> {
        let mut events = vec![Ev::tool_start(id, name)];
        for fragment in split_in_pieces(args_json, fragments) {
            events.push(Ev::tool_input(id, name, &fragment));
        }
        events.push(Ev::tool_stop(id, name));
        events
    }

    /// [`Ev::Reasoning`].
    pub fn reasoning(text: &str) -> Ev {
        Ev::Reasoning { text: text.into() }
    }

    /// [`Ev::ReasoningSignature`].
    pub fn reasoning_signature(signature: &str) -> Ev {
        Ev::ReasoningSignature {
            signature: signature.into(),
        }
    }

    /// [`Ev::RedactedReasoning`].
    pub fn redacted_reasoning(data: &str) -> Ev {
        Ev::RedactedReasoning { data: data.into() }
    }

    /// An exception frame, e.g.
    /// `Ev::exception("ThrottlingException", "Rate exceeded", Some("USER_REQUEST_RATE_EXCEEDED"))`.
    pub fn exception(kind: &str, message: &str, reason: Option<&str>) -> Ev {
        Ev::Exception {
            kind: kind.into(),
            message: message.into(),
            reason: reason.map(str::to_string),
        }
    }

    /// [`Ev::Custom`].
    pub fn custom(event_type: &str, payload: Value) -> Ev {
        Ev::Custom {
            event_type: event_type.into(),
            payload,
        }
    }

    /// [`Ev::CorruptCrc`].
    pub fn corrupt_crc(ev: Ev) -> Ev {
        Ev::CorruptCrc(Box::new(ev))
    }

    /// [`Ev::CorruptPrelude`].
    pub fn corrupt_prelude(ev: Ev) -> Ev {
        Ev::CorruptPrelude(Box::new(ev))
    }

    /// The event's bytes cut into `pieces` raw chunks with `pause` between them (to make a
    /// frame straddle network reads).
    pub fn split(ev: Ev, pieces: usize, pause: Duration) -> Vec<Ev> {
        let bytes = ev.encode();
        let pieces = pieces.clamp(1, bytes.len().max(1));
        let size = bytes.len().div_ceil(pieces).max(1);
        let mut out = Vec::new();
        for (i, piece) in bytes.chunks(size).enumerate() {
            if i > 0 && !pause.is_zero() {
                out.push(Ev::Sleep(pause));
            }
            out.push(Ev::Raw(piece.to_vec()));
        }
        out
    }

    /// The bytes this step puts in the body (empty for `Sleep` and `Cut`).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Ev::Text(text) => encode_event(
                ASSISTANT_RESPONSE_EVENT,
                &ordered_object(&[("content", js(text.as_str()))]),
            ),
            Ev::ToolStart { id, name } => encode_event(
                TOOL_USE_EVENT,
                &ordered_object(&[("name", js(name.as_str())), ("toolUseId", js(id.as_str()))]),
            ),
            Ev::ToolInput { id, name, fragment } => encode_event(
                TOOL_USE_EVENT,
                &ordered_object(&[
                    ("input", js(fragment.as_str())),
                    ("name", js(name.as_str())),
                    ("toolUseId", js(id.as_str())),
                ]),
            ),
            Ev::ToolInputObject { id, name, value } => encode_event(
                TOOL_USE_EVENT,
                &ordered_object(&[
                    ("input", value.to_string()),
                    ("name", js(name.as_str())),
                    ("toolUseId", js(id.as_str())),
                ]),
            ),
            Ev::ToolStop { id, name } => encode_event(
                TOOL_USE_EVENT,
                &ordered_object(&[
                    ("name", js(name.as_str())),
                    ("stop", js(true)),
                    ("toolUseId", js(id.as_str())),
                ]),
            ),
            Ev::Reasoning { text } => encode_event(
                REASONING_CONTENT_EVENT,
                &ordered_object(&[("text", js(text.as_str()))]),
            ),
            Ev::ReasoningSignature { signature } => encode_event(
                REASONING_CONTENT_EVENT,
                &ordered_object(&[("signature", js(signature.as_str()))]),
            ),
            Ev::RedactedReasoning { data } => encode_event(
                REASONING_CONTENT_EVENT,
                &ordered_object(&[("redactedContent", js(data.as_str()))]),
            ),
            Ev::Metering(usage) => encode_event(
                METERING_EVENT,
                &ordered_object(&[
                    ("unit", js("credit")),
                    ("unitPlural", js("credits")),
                    ("usage", json!(usage).to_string()),
                ]),
            ),
            Ev::ContextUsage(pct) => encode_event(
                CONTEXT_USAGE_EVENT,
                &ordered_object(&[("contextUsagePercentage", json!(pct).to_string())]),
            ),
            Ev::Metadata { input, output } => {
                let usage = ordered_object(&[
                    ("uncachedInputTokens", js(*input)),
                    ("cacheReadInputTokens", js(0)),
                    ("cacheWriteInputTokens", js(0)),
                    ("outputTokens", js(*output)),
                    ("totalTokens", js(input.saturating_add(*output))),
                ]);
                encode_event(METADATA_EVENT, &ordered_object(&[("tokenUsage", usage)]))
            }
            Ev::MetadataStop(reason) => encode_event(
                METADATA_EVENT,
                &ordered_object(&[("stopReason", js(reason.as_str()))]),
            ),
            Ev::Exception {
                kind,
                message,
                reason,
            } => encode_frame(
                &[
                    (":exception-type".into(), HeaderValue::String(kind.clone())),
                    (
                        ":content-type".into(),
                        HeaderValue::String("application/json".into()),
                    ),
                    (
                        ":message-type".into(),
                        HeaderValue::String("exception".into()),
                    ),
                ],
                ordered_object(&[
                    ("message", js(message.as_str())),
                    ("reason", json!(reason).to_string()),
                ])
                .as_bytes(),
            ),
            Ev::ErrorFrame { code, message } => encode_frame(
                &[
                    (":error-code".into(), HeaderValue::String(code.clone())),
                    (
                        ":error-message".into(),
                        HeaderValue::String(message.clone()),
                    ),
                    (":message-type".into(), HeaderValue::String("error".into())),
                ],
                b"",
            ),
            Ev::Custom {
                event_type,
                payload,
            } => encode_event(event_type, &payload.to_string()),
            Ev::Frame { headers, payload } => encode_frame(headers, payload),
            Ev::CorruptCrc(inner) => {
                let mut bytes = inner.encode();
                if let Some(last) = bytes.last_mut() {
                    *last ^= 0xFF;
                }
                bytes
            }
            Ev::CorruptPrelude(inner) => {
                let mut bytes = inner.encode();
                if let Some(b) = bytes.get_mut(11) {
                    *b ^= 0xFF;
                }
                bytes
            }
            Ev::Together(events) => events.iter().flat_map(Ev::encode).collect(),
            Ev::Raw(bytes) => bytes.clone(),
            Ev::Cut | Ev::Sleep(_) => Vec::new(),
        }
    }
}

fn split_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut seen_word_char = false;
    for c in text.chars() {
        if c.is_whitespace() && seen_word_char {
            words.push(std::mem::take(&mut current));
            seen_word_char = false;
        }
        if !c.is_whitespace() {
            seen_word_char = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn split_in_pieces(text: &str, pieces: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let pieces = pieces.clamp(1, chars.len());
    let base = chars.len() / pieces;
    let extra = chars.len() % pieces;
    let mut out = Vec::with_capacity(pieces);
    let mut at = 0;
    for i in 0..pieces {
        let len = base + usize::from(i < extra);
        out.push(chars[at..at + len].iter().collect());
        at += len;
    }
    out
}

/// A prebuilt HTTP chunk (one frame), shared between replies without copying.
#[derive(Clone, PartialEq)]
struct Prebuilt(Arc<Vec<u8>>);

impl fmt::Debug for Prebuilt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    /// An event stream.
    Events(Vec<Ev>),
    /// `count` copies of one prebuilt frame, then `tail`.
    Repeat {
        chunk: Prebuilt,
        count: usize,
        tail: Vec<Ev>,
    },
    /// No response at all: the connection is closed.
    Disconnect,
    /// A plain (non-stream) response.
    Fixed {
        status: u16,
        content_type: String,
        body: String,
    },
}

/// One scripted answer to an inference call (or, via [`FakeKiro::push_auth_reply`] /
/// [`FakeKiro::push_management_reply`], to an auth or management call).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    body: Body,
    headers: Vec<(String, String)>,
    delay_headers: Duration,
    delay_first_frame: Duration,
    delay_between: Duration,
}

impl Reply {
    fn new(body: Body) -> Reply {
        Reply {
            body,
            headers: Vec::new(),
            delay_headers: Duration::ZERO,
            delay_first_frame: Duration::ZERO,
            delay_between: Duration::ZERO,
        }
    }

    /// A 200 event stream of exactly these steps.
    pub fn events(events: Vec<Ev>) -> Reply {
        Reply::new(Body::Events(events))
    }

    /// One assistantResponseEvent per word (see [`Ev::words`]), then
    /// `Metering(DEFAULT_CREDITS)`, `ContextUsage(DEFAULT_CONTEXT_PCT)` and
    /// `Metadata{input: DEFAULT_INPUT_TOKENS, output: <number of words>}`.
    pub fn text(text: &str) -> Reply {
        let mut events = Ev::words(text);
        let output = events.len() as u64;
        events.extend(usage_tail(output));
        Reply::events(events)
    }

    /// A tool call: start, `args_json` in `fragments` input frames, stop, then
    /// `Metering(DEFAULT_CREDITS)` and `ContextUsage(DEFAULT_CONTEXT_PCT)`.
    pub fn tool_call(id: &str, name: &str, args_json: &str, fragments: usize) -> Reply {
        let mut events = Ev::tool_call(id, name, args_json, fragments);
        events.push(Ev::Metering(DEFAULT_CREDITS));
        events.push(Ev::ContextUsage(DEFAULT_CONTEXT_PCT));
        Reply::events(events)
    }

    /// `frames` assistantResponseEvent frames of exactly `frame_bytes` bytes each (whole
    /// frame, prelude to CRC; at least 123), built once and reused, then the usual usage tail
    /// (metering, context usage, metadata with `output = frames`). 51200 × 1024 is the
    /// benchmark's 50 MB stream.
    pub fn long_stream(frames: usize, frame_bytes: usize) -> Reply {
        let frame = long_stream_frame(frame_bytes);
        let mut chunk = Vec::with_capacity(frame.len() + 12);
        push_chunk(&mut chunk, &frame);
        Reply::new(Body::Repeat {
            chunk: Prebuilt(Arc::new(chunk)),
            count: frames,
            tail: usage_tail(frames as u64),
        })
    }

    /// A plain response with this status and JSON body (`Content-Type: application/json`).
    pub fn status(code: u16, body: Value) -> Reply {
        Reply::status_text(code, "application/json", &body.to_string())
    }

    /// A plain response with this status, content type and body text (e.g. an HTML 502).
    pub fn status_text(code: u16, content_type: &str, body: &str) -> Reply {
        Reply::new(Body::Fixed {
            status: code,
            content_type: content_type.into(),
            body: body.into(),
        })
    }

    /// No HTTP response at all: the connection is closed as soon as the request has been read
    /// (Linux; elsewhere the client waits for its timeout). Recorded with status 0.
    pub fn disconnect() -> Reply {
        Reply::new(Body::Disconnect)
    }

    /// A Kiro-shaped error: `{"message":…,"reason":…}` (`reason` null when `None`).
    pub fn error(code: u16, message: &str, reason: Option<&str>) -> Reply {
        Reply::status(code, json!({"message": message, "reason": reason}))
    }

    /// A throttle answered as HTTP 200 with `Content-Type: application/json` and this body
    /// instead of an event stream.
    pub fn json_on_200(body: Value) -> Reply {
        Reply::status(200, body)
    }

    /// Adds a response header (e.g. `Retry-After`); a `Content-Type` given here replaces the
    /// default one (also on event streams).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits this long before sending the status line.
    pub fn delay_headers(mut self, delay: Duration) -> Reply {
        self.delay_headers = delay;
        self
    }

    /// Sends the head, then waits this long before the first frame.
    pub fn delay_first_frame(mut self, delay: Duration) -> Reply {
        self.delay_first_frame = delay;
        self
    }

    /// Waits this long between consecutive chunks.
    pub fn delay_between(mut self, delay: Duration) -> Reply {
        self.delay_between = delay;
        self
    }

    /// Appends a step to a streaming reply (after its tail). Panics on a plain reply.
    pub fn then(mut self, ev: Ev) -> Reply {
        match &mut self.body {
            Body::Events(events) => events.push(ev),
            Body::Repeat { tail, .. } => tail.push(ev),
            Body::Fixed { .. } | Body::Disconnect => {
                panic!("Reply::then on a non-streaming reply")
            }
        }
        self
    }

    /// The HTTP status this reply is sent with.
    pub fn status_code(&self) -> u16 {
        match &self.body {
            Body::Fixed { status, .. } => *status,
            Body::Disconnect => 0,
            _ => 200,
        }
    }

    /// The scripted steps of a streaming reply (the repeated frame of a long stream is not
    /// listed); empty for a plain reply.
    pub fn steps(&self) -> Vec<Ev> {
        match &self.body {
            Body::Events(events) => events.clone(),
            Body::Repeat { tail, .. } => tail.clone(),
            Body::Fixed { .. } | Body::Disconnect => Vec::new(),
        }
    }
}

fn usage_tail(output: u64) -> Vec<Ev> {
    vec![
        Ev::Metering(DEFAULT_CREDITS),
        Ev::ContextUsage(DEFAULT_CONTEXT_PCT),
        Ev::Metadata {
            input: DEFAULT_INPUT_TOKENS,
            output,
        },
    ]
}

/// One assistantResponseEvent frame of exactly `frame_bytes` bytes (or the smallest possible
/// frame with one character when that is less).
fn long_stream_frame(frame_bytes: usize) -> Vec<u8> {
    const PATTERN: &[u8] = b"lorem ipsum dolor sit amet consectetur adipiscing elit ";
    let overhead = Ev::text("").encode().len();
    let len = frame_bytes.saturating_sub(overhead).max(1);
    let content: String = PATTERN
        .iter()
        .cycle()
        .take(len)
        .map(|&b| b as char)
        .collect();
    Ev::Text(content).encode()
}

// ------------------------------------------------------------------------------------------
// Recorded requests
// ------------------------------------------------------------------------------------------

/// A request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The raw query string (without `?`), empty when none.
    pub query: String,
    /// All headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, `Null` when it is not JSON.
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
    /// The status the fake answered with (200 for event streams, 0 for
    /// [`Reply::disconnect`]).
    pub status: u16,
    /// The client's end of the TCP connection the request came on.
    pub peer: Option<SocketAddr>,
}

impl Recorded {
    /// The first value of a header, name matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<String> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_value(&self.query, name)
    }

    /// A field of a form-encoded body, percent-decoded.
    pub fn form_param(&self, name: &str) -> Option<String> {
        form_value(&self.raw_body, name)
    }

    /// `conversationState.currentMessage.userInputMessage.content` of an inference body.
    pub fn user_content(&self) -> Option<String> {
        self.user_input()?
            .get("content")?
            .as_str()
            .map(str::to_string)
    }

    /// `conversationState.currentMessage.userInputMessage.modelId` of an inference body.
    pub fn model_id(&self) -> Option<String> {
        self.user_input()?
            .get("modelId")?
            .as_str()
            .map(str::to_string)
    }

    fn user_input(&self) -> Option<&Value> {
        self.body
            .get("conversationState")?
            .get("currentMessage")?
            .get("userInputMessage")
    }
}

fn form_value(encoded: &str, name: &str) -> Option<String> {
    encoded.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------------------------------------
// The server
// ------------------------------------------------------------------------------------------

/// The profile ARN the fake starts with.
pub const DEFAULT_PROFILE_ARN: &str =
    "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKEPROFILE";

/// The IDE's model list call on the management host (AWS JSON 1.0, `POST /`).
pub const CONTROL_PLANE_MODELS: &str = "KiroControlPlaneBearerService.ListAvailableModels";

const INVALID_BEARER: &str = "The bearer token included in the request is invalid.";

type ReplyFn = Arc<dyn Fn(&Recorded) -> Option<Reply> + Send + Sync>;

struct State {
    replies: VecDeque<Reply>,
    default_reply: Reply,
    reply_fn: Option<ReplyFn>,
    auth_replies: VecDeque<Reply>,
    management_replies: VecDeque<Reply>,
    recording: bool,
    inference: Vec<Recorded>,
    auth: Vec<Recorded>,
    management: Vec<Recorded>,
    unmatched: Vec<Recorded>,
    refresh_count: usize,
    oidc_count: usize,
    external_count: usize,
    profiles_count: usize,
    models_count: usize,
    profile_arn: String,
    expires_in: u64,
    refresh_delay: Duration,
    rotate_refresh_tokens: bool,
    revoke_rotated: bool,
    revoked_refresh: HashSet<String>,
    token_serial: u64,
    issued_access: Vec<String>,
    issued_refresh: Vec<String>,
    accepted: HashSet<String>,
    revoked_access: HashSet<String>,
    require_issued: bool,
    models: Vec<Value>,
    models_page_size: usize,
    default_model: Value,
    versions: versions::Versions,
    idle_close: Option<Duration>,
    refuse_control_plane: bool,
    validate_bodies: bool,
}

impl State {
    fn new() -> State {
        State {
            replies: VecDeque::new(),
            default_reply: Reply::text(DEFAULT_TEXT),
            reply_fn: None,
            auth_replies: VecDeque::new(),
            management_replies: VecDeque::new(),
            recording: true,
            inference: Vec::new(),
            auth: Vec::new(),
            management: Vec::new(),
            unmatched: Vec::new(),
            refresh_count: 0,
            oidc_count: 0,
            external_count: 0,
            profiles_count: 0,
            models_count: 0,
            profile_arn: DEFAULT_PROFILE_ARN.into(),
            expires_in: 3600,
            refresh_delay: Duration::ZERO,
            rotate_refresh_tokens: true,
            revoke_rotated: false,
            revoked_refresh: HashSet::new(),
            token_serial: 0,
            issued_access: Vec::new(),
            issued_refresh: Vec::new(),
            accepted: HashSet::new(),
            revoked_access: HashSet::new(),
            require_issued: false,
            models: default_models(),
            models_page_size: 2,
            default_model: json!({"modelId": "claude-sonnet-4.5", "modelName": "Claude Sonnet 4.5"}),
            versions: versions::Versions::default(),
            idle_close: None,
            refuse_control_plane: false,
            validate_bodies: false,
        }
    }

    /// Whether this bearer token gets the 403 "bearer token invalid".
    fn rejects(&self, token: Option<&str>) -> bool {
        match token {
            Some(t) if self.revoked_access.contains(t) => true,
            Some(t) => {
                self.require_issued
                    && !self.accepted.contains(t)
                    && !self.issued_access.iter().any(|i| i == t)
            }
            None => self.require_issued,
        }
    }

    /// Issues a new access token and (when rotating) a new refresh token replacing `old`.
    fn issue(&mut self, old_refresh: &str) -> (String, String) {
        self.token_serial += 1;
        let access = format!("fake-access-{}", self.token_serial);
        self.issued_access.push(access.clone());
        let refresh = if self.rotate_refresh_tokens {
            let r = format!("fake-refresh-{}", self.token_serial);
            self.issued_refresh.push(r.clone());
            if self.revoke_rotated {
                self.revoked_refresh.insert(old_refresh.to_string());
            }
            r
        } else {
            String::new()
        };
        (access, refresh)
    }
}

/// The default model catalogue (see the module's brief): sonnet-4.5, haiku-4.5, opus-4.8
/// (with its reasoning schema) and gpt-5.6-sol (with its reasoning schema).
pub fn default_models() -> Vec<Value> {
    vec![
        json!({
            "modelId": "claude-sonnet-4.5",
            "modelName": "Claude Sonnet 4.5",
            "description": "Claude Sonnet 4.5",
            "supportedInputTypes": ["TEXT", "IMAGE"],
            "rateMultiplier": 1.3,
            "rateUnit": "Credit",
            "tokenLimits": {"maxInputTokens": 200000, "maxOutputTokens": 64000}
        }),
        json!({
            "modelId": "claude-haiku-4.5",
            "modelName": "Claude Haiku 4.5",
            "description": "Claude Haiku 4.5",
            "supportedInputTypes": ["TEXT", "IMAGE"],
            "rateMultiplier": 0.4,
            "rateUnit": "Credit",
            "tokenLimits": {"maxInputTokens": 200000, "maxOutputTokens": 64000}
        }),
        json!({
            "modelId": "claude-opus-4.8",
            "modelName": "Claude Opus 4.8",
            "description": "Claude Opus 4.8",
            "supportedInputTypes": ["TEXT", "IMAGE"],
            "rateMultiplier": 2.2,
            "rateUnit": "Credit",
            "tokenLimits": {"maxInputTokens": 1000000, "maxOutputTokens": 128000},
            "additionalModelRequestFieldsSchema": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "output_config": {
                        "type": "object",
                        "properties": {
                            "effort": {"type": "string", "enum": ["low", "medium", "high", "xhigh", "max"]}
                        }
                    },
                    "thinking": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string", "enum": ["adaptive", "disabled"]},
                            "display": {"type": "string", "enum": ["summarized", "omitted"]}
                        }
                    }
                }
            }
        }),
        json!({
            "modelId": "gpt-5.6-sol",
            "modelName": "GPT-5.6 Sol",
            "description": "GPT-5.6 Sol",
            "supportedInputTypes": ["TEXT", "IMAGE"],
            "rateMultiplier": 1.0,
            "rateUnit": "Credit",
            "tokenLimits": {"maxInputTokens": 272000, "maxOutputTokens": 128000},
            "additionalModelRequestFieldsSchema": {
                "properties": {
                    "reasoning": {
                        "properties": {
                            "effort": {"enum": ["none", "low", "medium", "high", "xhigh", "max"]}
                        }
                    }
                }
            }
        }),
    ]
}

struct Shared {
    state: Mutex<State>,
    mcp: mcp::Mcp,
    usage: usage::Usage,
    addr: SocketAddr,
    request_ids: AtomicU64,
    stopping: AtomicBool,
    workers: AtomicUsize,
    busy: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the fake down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed) + 1;
        format!("fa4e0000-0000-4000-8000-{n:012x}")
    }
}

/// The fake Kiro server. Stops accepting new requests when dropped.
pub struct FakeKiro {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
}

impl FakeKiro {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub fn start() -> FakeKiro {
        FakeKiro::start_on(0)
    }

    /// Starts on 127.0.0.1:`port` (0 = ephemeral).
    pub fn start_on(port: u16) -> FakeKiro {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("fake kiro: bind");
        tune_listener(&listener);
        let addr = listener.local_addr().expect("fake kiro: local addr");
        let server =
            Arc::new(tiny_http::Server::from_listener(listener, None).expect("fake kiro: server"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new()),
            mcp: mcp::Mcp::new(),
            usage: usage::Usage::default(),
            addr,
            request_ids: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            workers: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
        });
        for _ in 0..4 {
            spawn_worker(&shared, &server);
        }
        spawn_kicker(&shared);
        FakeKiro { shared, server }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The port the fake listens on.
    pub fn port(&self) -> u16 {
        self.shared.addr.port()
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    // --- scripting -------------------------------------------------------------------------

    /// Queues a reply for the next inference call that passes the token check.
    pub fn push_reply(&self, reply: Reply) {
        self.shared.lock().replies.push_back(reply);
    }

    /// Queues several replies, in order.
    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().replies.extend(replies);
    }

    /// How many queued replies have not been served yet.
    pub fn pending_replies(&self) -> usize {
        self.shared.lock().replies.len()
    }

    /// The reply used when the queue is empty (initially `Reply::text(DEFAULT_TEXT)`).
    pub fn set_default_reply(&self, reply: Reply) {
        self.shared.lock().default_reply = reply;
    }

    /// Consulted when the queue is empty, before the default reply; `None` falls through.
    pub fn set_reply_fn(&self, f: impl Fn(&Recorded) -> Option<Reply> + Send + Sync + 'static) {
        self.shared.lock().reply_fn = Some(Arc::new(f));
    }

    /// Removes the function set by [`FakeKiro::set_reply_fn`].
    pub fn clear_reply_fn(&self) {
        self.shared.lock().reply_fn = None;
    }

    /// Queues a reply that replaces the normal answer of the next auth call
    /// (`/refreshToken`, `/token` or `/oauth2/token`), e.g. a 500.
    pub fn push_auth_reply(&self, reply: Reply) {
        self.shared.lock().auth_replies.push_back(reply);
    }

    /// Queues a reply that replaces the normal answer of the next management call
    /// (`/List-Available-Models` or `/List-Available-Profiles`) that passes the token check.
    pub fn push_management_reply(&self, reply: Reply) {
        self.shared.lock().management_replies.push_back(reply);
    }

    // --- recording -------------------------------------------------------------------------

    /// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
    /// For calls the gateway makes in the background (timer refreshes, model listing).
    pub fn wait_for(&self, timeout: Duration, cond: impl Fn(&FakeKiro) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Inference calls, in arrival order (including ones answered 403).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().inference.clone()
    }

    /// The latest inference call.
    pub fn last_request(&self) -> Option<Recorded> {
        self.shared.lock().inference.last().cloned()
    }

    /// `/refreshToken`, `/token` and `/oauth2/token` calls.
    pub fn auth_requests(&self) -> Vec<Recorded> {
        self.shared.lock().auth.clone()
    }

    /// `/List-Available-Models` and `/List-Available-Profiles` calls.
    pub fn management_requests(&self) -> Vec<Recorded> {
        self.shared.lock().management.clone()
    }

    /// Requests that matched no endpoint (answered 404).
    pub fn unmatched_requests(&self) -> Vec<Recorded> {
        self.shared.lock().unmatched.clone()
    }

    /// Number of `/refreshToken` (Kiro desktop) calls.
    pub fn refresh_count(&self) -> usize {
        self.shared.lock().refresh_count
    }

    /// Number of `/token` (SSO OIDC CreateToken) calls.
    pub fn oidc_count(&self) -> usize {
        self.shared.lock().oidc_count
    }

    /// Number of `/oauth2/token` (external IdP) calls.
    pub fn external_count(&self) -> usize {
        self.shared.lock().external_count
    }

    /// Number of `/List-Available-Profiles` calls.
    pub fn profiles_count(&self) -> usize {
        self.shared.lock().profiles_count
    }

    /// Number of `/List-Available-Models` calls (one per page).
    pub fn models_count(&self) -> usize {
        self.shared.lock().models_count
    }

    /// Forgets every recorded request and resets the counters (scripted replies, tokens and
    /// configuration stay).
    pub fn clear_requests(&self) {
        let mut st = self.shared.lock();
        st.inference.clear();
        st.auth.clear();
        st.management.clear();
        st.unmatched.clear();
        st.refresh_count = 0;
        st.oidc_count = 0;
        st.external_count = 0;
        st.profiles_count = 0;
        st.models_count = 0;
    }

    /// Turns request recording on or off (the benchmark turns it off); counters still count.
    pub fn set_recording(&self, on: bool) {
        self.shared.lock().recording = on;
    }

    // --- tokens ----------------------------------------------------------------------------

    /// Access tokens issued so far, oldest first (`fake-access-<n>`).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.shared.lock().issued_access.clone()
    }

    /// The newest issued access token.
    pub fn last_access_token(&self) -> Option<String> {
        self.shared.lock().issued_access.last().cloned()
    }

    /// Refresh tokens issued so far, oldest first (`fake-refresh-<n>`).
    pub fn issued_refresh_tokens(&self) -> Vec<String> {
        self.shared.lock().issued_refresh.clone()
    }

    /// When on, inference and management calls whose bearer token the fake neither issued
    /// nor was told to accept get 403 "The bearer token included in the request is invalid."
    pub fn require_issued_tokens(&self, on: bool) {
        self.shared.lock().require_issued = on;
    }

    /// A token accepted in addition to issued ones (e.g. an API key or a seeded token).
    pub fn accept_token(&self, token: &str) {
        self.shared.lock().accepted.insert(token.into());
    }

    /// From now on this access token gets the 403, whatever `require_issued_tokens` says.
    pub fn revoke_access_token(&self, token: &str) {
        self.shared.lock().revoked_access.insert(token.into());
    }

    /// Refresh calls with this refresh token fail (401 desktop, 400 invalid_grant otherwise).
    pub fn revoke_refresh_token(&self, token: &str) {
        self.shared.lock().revoked_refresh.insert(token.into());
    }

    /// When off, refresh responses carry an empty refresh token (the client must keep its
    /// old one). On by default.
    pub fn set_rotate_refresh_tokens(&self, on: bool) {
        self.shared.lock().rotate_refresh_tokens = on;
    }

    /// When on, a refresh token stops working once it has been rotated. Off by default.
    pub fn set_revoke_rotated_refresh_tokens(&self, on: bool) {
        self.shared.lock().revoke_rotated = on;
    }

    /// `expiresIn` / `expires_in` of refresh responses (default 3600).
    pub fn set_expires_in(&self, secs: u64) {
        self.shared.lock().expires_in = secs;
    }

    /// Every auth call waits this long before answering (to test single-flight refresh).
    pub fn set_refresh_delay(&self, delay: Duration) {
        self.shared.lock().refresh_delay = delay;
    }

    // --- management ------------------------------------------------------------------------

    /// The ARN returned by List-Available-Profiles and desktop refreshes (empty: no profile
    /// listed, no `profileArn` in refresh responses).
    pub fn set_profile_arn(&self, arn: &str) {
        self.shared.lock().profile_arn = arn.into();
    }

    /// The configured profile ARN.
    pub fn profile_arn(&self) -> String {
        self.shared.lock().profile_arn.clone()
    }

    /// Replaces the model catalogue.
    pub fn set_models(&self, models: Vec<Value>) {
        self.shared.lock().models = models;
    }

    /// Models per List-Available-Models page (default 2; 0 = everything in one page).
    pub fn set_models_page_size(&self, n: usize) {
        self.shared.lock().models_page_size = n;
    }

    /// The `defaultModel` value of List-Available-Models (default
    /// `{"modelId":"claude-sonnet-4.5","modelName":"Claude Sonnet 4.5"}`; `Null` omits it).
    pub fn set_default_model(&self, model: Value) {
        self.shared.lock().default_model = model;
    }
}

impl FakeKiro {
    // --- client versions -------------------------------------------------------------------

    /// Inference calls whose User-Agent carries an IDE version below `floor` get Kiro's 400
    /// "no longer supported" (None: every version is accepted, the default).
    pub fn set_version_floor(&self, floor: Option<&str>) {
        self.shared.lock().versions.floor = floor.map(String::from);
    }

    /// The `version:` of the update manifest at [`MANIFEST_PATH`] (None: 404; default 1.1.70).
    pub fn set_manifest_version(&self, version: Option<&str>) {
        self.shared.lock().versions.manifest = version.map(String::from);
    }

    /// Connections that carry a request from now on are closed by the fake after `idle` without
    /// a next request, as Kiro does after a few minutes (None: kept open, the default).
    pub fn close_idle_after(&self, idle: Option<Duration>) {
        self.shared.lock().idle_close = idle;
    }

    /// When on, the AWS JSON form of the model list is refused (400), as an older management
    /// host would; the REST form keeps working. Off by default.
    pub fn refuse_control_plane_models(&self, on: bool) {
        self.shared.lock().refuse_control_plane = on;
    }

    /// When on, bodies that break Kiro's validation rules get its 400 (see `validator.rs`).
    pub fn validate_bodies(&self, on: bool) {
        self.shared.lock().validate_bodies = on;
    }

    /// Requests for the update manifest so far.
    pub fn manifest_count(&self) -> usize {
        self.shared.lock().versions.manifest_count
    }

    /// The IDE version (`KiroIDE-<version>-`) of every inference call so far, in order.
    pub fn seen_ide_versions(&self) -> Vec<String> {
        self.shared.lock().versions.seen.clone()
    }
}

impl Drop for FakeKiro {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for _ in 0..self.shared.workers.load(Ordering::SeqCst) {
            self.server.unblock();
        }
    }
}

/// Adds a worker that takes requests from the server; a worker that finds every other worker
/// busy adds one more, so slow streams never starve new requests (200+ concurrent ones).
fn spawn_worker(shared: &Arc<Shared>, server: &Arc<tiny_http::Server>) {
    shared.workers.fetch_add(1, Ordering::SeqCst);
    let mine = Arc::clone(shared);
    let server = Arc::clone(server);
    let spawned = thread::Builder::new()
        .name("fake-kiro".into())
        .spawn(move || {
            while !mine.stopping.load(Ordering::SeqCst) {
                let Ok(request) = server.recv() else { continue };
                if mine.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let busy = mine.busy.fetch_add(1, Ordering::SeqCst) + 1;
                if busy >= mine.workers.load(Ordering::SeqCst) {
                    spawn_worker(&mine, &server);
                }
                handle(&mine, request);
                mine.busy.fetch_sub(1, Ordering::SeqCst);
            }
            mine.workers.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        shared.workers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// tiny_http 0.12's thread pool can leave a new connection queued with no thread to serve it:
/// `TaskPool::spawn` sees an idle thread, queues the task and notifies, but a second connection
/// arriving before that thread wakes is queued for the same thread. The queue is looked at again
/// only when some thread finishes its connection, and the gateway keeps its upstream connections
/// alive, so a stranded request could wait forever. An empty connection every 50 ms gives the
/// pool a finished task (or a new thread) that picks the stranded one up.
fn spawn_kicker(shared: &Arc<Shared>) {
    let mine = Arc::clone(shared);
    let _ = thread::Builder::new()
        .name("fake-kiro-kick".into())
        .spawn(move || {
            while !mine.stopping.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(50));
                let _ = std::net::TcpStream::connect(mine.addr);
            }
        });
}

enum Route {
    Inference,
    Models,
    Profiles,
    DesktopRefresh,
    OidcToken,
    ExternalToken,
    Manifest,
    Mcp,
    UsageLimits,
    NotFound,
}

fn route(method: &str, path: &str, target: Option<&str>) -> Route {
    match (method, path) {
        ("POST", "/") => match target {
            Some("KiroRuntimeService.GenerateAssistantResponse")
            | Some("AmazonCodeWhispererStreamingService.GenerateAssistantResponse") => {
                Route::Inference
            }
            Some(CONTROL_PLANE_MODELS) => Route::Models,
            _ => Route::NotFound,
        },
        ("POST", "/generateAssistantResponse") => Route::Inference,
        ("GET", "/List-Available-Models") => Route::Models,
        ("POST", "/List-Available-Profiles") => Route::Profiles,
        ("POST", "/refreshToken") => Route::DesktopRefresh,
        ("POST", "/token") => Route::OidcToken,
        ("POST", "/oauth2/token") => Route::ExternalToken,
        ("GET", MANIFEST_PATH) => Route::Manifest,
        ("POST", "/mcp") => Route::Mcp,
        ("GET", "/Get-Usage-Limits") => Route::UsageLimits,
        _ => Route::NotFound,
    }
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let url = request.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut raw = Vec::new();
    if request.as_reader().read_to_end(&mut raw).is_err() {
        return;
    }
    let raw_body = String::from_utf8_lossy(&raw).into_owned();
    let mut rec = Recorded {
        method: request.method().as_str().to_string(),
        path,
        query,
        headers,
        body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
        raw_body,
        status: 0,
        peer: request.remote_addr().copied(),
    };
    let idle_close = shared.lock().idle_close;
    let peer = rec.peer;
    if idle_close.is_some() {
        idle::busy(shared.addr, peer);
    }
    match route(
        &rec.method,
        &rec.path,
        rec.header("x-amz-target").as_deref(),
    ) {
        Route::Inference => serve_inference(shared, request, rec),
        Route::Models | Route::Profiles => serve_management(shared, request, rec),
        Route::DesktopRefresh | Route::OidcToken | Route::ExternalToken => {
            serve_auth(shared, request, rec)
        }
        Route::Manifest => {
            let reply = shared.lock().versions.manifest_reply();
            send(shared, request, &reply);
        }
        Route::Mcp => mcp::serve(shared, request, rec),
        Route::UsageLimits => usage::serve(shared, request, rec),
        Route::NotFound => {
            rec.status = 404;
            {
                let mut st = shared.lock();
                if st.recording {
                    st.unmatched.push(rec);
                }
            }
            let reply = Reply::status(404, json!({"message": "Not Found"}));
            send(shared, request, &reply);
        }
    }
    if let Some(after) = idle_close {
        idle::close_after(shared.addr, peer, after);
    }
}

fn forbidden() -> Reply {
    Reply::status(403, json!({"message": INVALID_BEARER}))
}

fn serve_inference(shared: &Shared, request: tiny_http::Request, mut rec: Recorded) {
    let (queued, reply_fn) = {
        let mut st = shared.lock();
        if st.rejects(rec.bearer().as_deref()) {
            (Some(forbidden()), None)
        } else if let Some(refused) = st.versions.refusal(&rec) {
            (Some(refused), None)
        } else if let Some(refused) = st
            .validate_bodies
            .then(|| validator::refusal(&rec.body))
            .flatten()
        {
            (Some(refused), None)
        } else {
            match st.replies.pop_front() {
                Some(r) => (Some(r), None),
                None => (None, st.reply_fn.clone()),
            }
        }
    };
    let reply = match queued {
        Some(r) => r,
        None => match reply_fn.and_then(|f| f(&rec)) {
            Some(r) => r,
            None => shared.lock().default_reply.clone(),
        },
    };
    rec.status = reply.status_code();
    {
        let mut st = shared.lock();
        if st.recording {
            st.inference.push(rec);
        }
    }
    send(shared, request, &reply);
}

fn serve_management(shared: &Shared, request: tiny_http::Request, mut rec: Recorded) {
    let reply = {
        let mut st = shared.lock();
        let control_plane = rec.header("x-amz-target").as_deref() == Some(CONTROL_PLANE_MODELS);
        let models = rec.path == "/List-Available-Models" || control_plane;
        if models {
            st.models_count += 1;
        } else {
            st.profiles_count += 1;
        }
        let reply = if st.rejects(rec.bearer().as_deref()) {
            forbidden()
        } else if control_plane && st.refuse_control_plane {
            Reply::error(400, "UnknownOperationException", None)
        } else if let Some(r) = st.management_replies.pop_front() {
            r
        } else if models {
            let token = rec.query_param("nextToken").or_else(|| {
                rec.body
                    .get("nextToken")
                    .and_then(Value::as_str)
                    .map(String::from)
            });
            models_page(&st, token.as_deref())
        } else {
            let profiles = if st.profile_arn.is_empty() {
                json!([])
            } else {
                json!([{"arn": st.profile_arn, "profileName": "fake"}])
            };
            Reply::status(200, json!({ "profiles": profiles }))
        };
        rec.status = reply.status_code();
        if st.recording {
            st.management.push(rec);
        }
        reply
    };
    send(shared, request, &reply);
}

fn models_page(st: &State, next_token: Option<&str>) -> Reply {
    let start = match next_token {
        None | Some("") => 0,
        Some(token) => match token
            .strip_prefix("fake-next-")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) if n < st.models.len() => n,
            _ => return Reply::error(400, "Invalid nextToken", Some("INVALID_NEXT_TOKEN")),
        },
    };
    let size = if st.models_page_size == 0 {
        st.models.len().max(1)
    } else {
        st.models_page_size
    };
    let end = (start + size).min(st.models.len());
    let mut body = serde_json::Map::new();
    body.insert("models".into(), Value::from(st.models[start..end].to_vec()));
    if !st.default_model.is_null() {
        body.insert("defaultModel".into(), st.default_model.clone());
    }
    if end < st.models.len() {
        body.insert("nextToken".into(), Value::from(format!("fake-next-{end}")));
    }
    Reply::status(200, Value::Object(body))
}

fn serve_auth(shared: &Shared, request: tiny_http::Request, mut rec: Recorded) {
    let (delay, scripted) = {
        let mut st = shared.lock();
        match rec.path.as_str() {
            "/refreshToken" => st.refresh_count += 1,
            "/token" => st.oidc_count += 1,
            _ => st.external_count += 1,
        }
        (st.refresh_delay, st.auth_replies.pop_front())
    };
    if !delay.is_zero() {
        thread::sleep(delay);
    }
    let reply = {
        let mut st = shared.lock();
        let reply = match scripted {
            Some(r) => r,
            None => match rec.path.as_str() {
                "/refreshToken" => desktop_refresh(&mut st, &rec),
                "/token" => oidc_create_token(&mut st, &rec),
                _ => external_refresh(&mut st, &rec),
            },
        };
        rec.status = reply.status_code();
        if st.recording {
            st.auth.push(rec);
        }
        reply
    };
    send(shared, request, &reply);
}

fn desktop_refresh(st: &mut State, rec: &Recorded) -> Reply {
    let Some(old) = rec.body.get("refreshToken").and_then(Value::as_str) else {
        return Reply::status(400, json!({"message": "refreshToken is required"}));
    };
    if old.is_empty() || st.revoked_refresh.contains(old) {
        return Reply::status(401, json!({"message": "Invalid refresh token"}));
    }
    let (access, refresh) = st.issue(old);
    let mut body = json!({
        "accessToken": access,
        "refreshToken": refresh,
        "expiresIn": st.expires_in,
    });
    if !st.profile_arn.is_empty() {
        body["profileArn"] = Value::from(st.profile_arn.clone());
    }
    Reply::status(200, body)
}

fn oidc_create_token(st: &mut State, rec: &Recorded) -> Reply {
    let field = |name: &str| {
        rec.body
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if field("grantType").as_deref() != Some("refresh_token") {
        return invalid_request("grantType must be refresh_token");
    }
    if field("clientId").is_none() || field("clientSecret").is_none() {
        return invalid_request("clientId and clientSecret are required");
    }
    let Some(old) = field("refreshToken") else {
        return invalid_request("refreshToken is required");
    };
    if st.revoked_refresh.contains(&old) {
        return invalid_grant();
    }
    let (access, refresh) = st.issue(&old);
    Reply::status(
        200,
        json!({
            "accessToken": access,
            "refreshToken": refresh,
            "expiresIn": st.expires_in,
            "tokenType": "Bearer",
        }),
    )
}

fn external_refresh(st: &mut State, rec: &Recorded) -> Reply {
    let field = |name: &str| rec.form_param(name).filter(|s| !s.is_empty());
    if field("grant_type").as_deref() != Some("refresh_token") {
        return invalid_request("grant_type must be refresh_token");
    }
    if field("client_id").is_none() {
        return invalid_request("client_id is required");
    }
    let Some(old) = field("refresh_token") else {
        return invalid_request("refresh_token is required");
    };
    if st.revoked_refresh.contains(&old) {
        return invalid_grant();
    }
    let (access, refresh) = st.issue(&old);
    Reply::status(
        200,
        json!({
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": st.expires_in,
            "token_type": "Bearer",
        }),
    )
}

fn invalid_request(description: &str) -> Reply {
    Reply::status(
        400,
        json!({"error": "invalid_request", "error_description": description}),
    )
}

fn invalid_grant() -> Reply {
    Reply::status(
        400,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh token provided"}),
    )
}

// ------------------------------------------------------------------------------------------
// Sending replies
// ------------------------------------------------------------------------------------------

fn send(shared: &Shared, request: tiny_http::Request, reply: &Reply) {
    if !reply.delay_headers.is_zero() {
        thread::sleep(reply.delay_headers);
    }
    let request_id = shared.next_request_id();
    match &reply.body {
        Body::Fixed {
            status,
            content_type,
            body,
        } => {
            let mut response =
                tiny_http::Response::from_data(body.as_bytes().to_vec()).with_status_code(*status);
            let defaults = [
                ("Content-Type", content_type.as_str()),
                ("x-amzn-RequestId", &request_id),
            ];
            let extra = reply.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            for (name, value) in defaults.into_iter().chain(extra) {
                if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                    response.add_header(h);
                }
            }
            let _ = request.respond(response);
        }
        Body::Disconnect => {
            let peer = request.remote_addr().copied();
            let writer = request.into_writer();
            cut_connection(shared.addr, peer);
            drop(writer);
        }
        Body::Events(events) => send_stream(shared, request, reply, &request_id, events, None),
        Body::Repeat { chunk, count, tail } => send_stream(
            shared,
            request,
            reply,
            &request_id,
            tail,
            Some((&chunk.0, *count)),
        ),
    }
}

/// Writes the chunked event stream by hand: the head goes out in the same write as the first
/// frame (unless a first-frame delay separates them); every frame is its own chunk, flushed.
fn send_stream(
    shared: &Shared,
    request: tiny_http::Request,
    reply: &Reply,
    request_id: &str,
    events: &[Ev],
    repeat: Option<(&Vec<u8>, usize)>,
) {
    let close = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Connection") && h.value.as_str().eq_ignore_ascii_case("close"));
    let peer = request.remote_addr().copied();
    let mut head = String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n");
    let custom_type = reply
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !custom_type {
        head.push_str("Content-Type: application/vnd.amazon.eventstream\r\n");
    }
    head.push_str(&format!("x-amzn-RequestId: {request_id}\r\n"));
    if close {
        head.push_str("Connection: close\r\n");
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = StreamOut {
        writer: request.into_writer(),
        pending: head.into_bytes(),
        chunks_sent: 0,
        delay_between: reply.delay_between,
        ok: true,
    };
    if !reply.delay_first_frame.is_zero() {
        out.sleep(reply.delay_first_frame);
    }
    if let Some((chunk, count)) = repeat {
        for _ in 0..count {
            out.chunk(chunk);
        }
    }
    let mut buf = Vec::new();
    for ev in events {
        match ev {
            Ev::Sleep(d) => out.sleep(*d),
            Ev::Cut => {
                out.flush_pending();
                cut_connection(shared.addr, peer);
                return;
            }
            other => {
                let bytes = other.encode();
                if bytes.is_empty() {
                    continue;
                }
                buf.clear();
                push_chunk(&mut buf, &bytes);
                out.chunk(&buf);
            }
        }
    }
    out.finish();
}

struct StreamOut {
    writer: Box<dyn Write + Send>,
    pending: Vec<u8>,
    chunks_sent: usize,
    delay_between: Duration,
    ok: bool,
}

impl StreamOut {
    fn write(&mut self, bytes: &[u8]) {
        if self.ok {
            self.ok = self.writer.write_all(bytes).is_ok() && self.writer.flush().is_ok();
        }
    }

    /// One already chunk-wrapped frame; joined with whatever is pending (the head).
    fn chunk(&mut self, chunk: &[u8]) {
        if !self.ok {
            return;
        }
        if self.chunks_sent > 0 && !self.delay_between.is_zero() {
            thread::sleep(self.delay_between);
        }
        if self.pending.is_empty() {
            self.write(chunk);
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(chunk);
            self.write(&joined);
        }
        self.chunks_sent += 1;
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.write(&pending);
        }
    }

    fn sleep(&mut self, d: Duration) {
        self.flush_pending();
        if self.ok {
            thread::sleep(d);
        }
    }

    fn finish(&mut self) {
        let mut last = std::mem::take(&mut self.pending);
        last.extend_from_slice(b"0\r\n\r\n");
        self.write(&last);
    }
}

// ------------------------------------------------------------------------------------------
// Socket tweaks (tiny libc calls; std has no API for them on listeners / foreign sockets)
// ------------------------------------------------------------------------------------------

#[cfg(unix)]
mod sys {
    use std::os::raw::{c_int, c_void};

    extern "C" {
        pub fn setsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            value: *const c_void,
            len: u32,
        ) -> c_int;
        pub fn getsockopt(
            fd: c_int,
            level: c_int,
            name: c_int,
            value: *mut c_void,
            len: *mut u32,
        ) -> c_int;
        pub fn listen(fd: c_int, backlog: c_int) -> c_int;
        pub fn getsockname(fd: c_int, addr: *mut c_void, len: *mut u32) -> c_int;
        pub fn getpeername(fd: c_int, addr: *mut c_void, len: *mut u32) -> c_int;
        pub fn shutdown(fd: c_int, how: c_int) -> c_int;
        pub fn dup(fd: c_int) -> c_int;
        pub fn close(fd: c_int) -> c_int;
    }

    pub const IPPROTO_TCP: c_int = 6;
    pub const TCP_NODELAY: c_int = 1;
}

/// Sets TCP_NODELAY on the listener (Linux copies it to accepted sockets, so the fake's
/// small frames are not held back by Nagle) and widens the accept backlog for bursts of
/// concurrent connections.
fn tune_listener(listener: &TcpListener) {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let fd = listener.as_raw_fd();
        let one: std::os::raw::c_int = 1;
        // SAFETY: fd is a live socket owned by `listener`; the option value is a c_int.
        unsafe {
            sys::setsockopt(
                fd,
                sys::IPPROTO_TCP,
                sys::TCP_NODELAY,
                (&one as *const std::os::raw::c_int).cast(),
                4,
            );
            sys::listen(fd, 1024);
        }
    }
    #[cfg(not(unix))]
    let _ = listener;
}

/// The file descriptors of this process's accepted sockets for the connection `local` ⇄
/// `peer` (Linux: found by scanning /proc/self/fd).
#[cfg(target_os = "linux")]
fn accepted_socket_fds(local: SocketAddr, peer: SocketAddr) -> Vec<std::os::raw::c_int> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| socket_addr(fd, false) == Some(local) && socket_addr(fd, true) == Some(peer))
        .collect()
}

#[cfg(target_os = "linux")]
fn socket_addr(fd: std::os::raw::c_int, peer: bool) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let mut buf = [0u8; 128];
    let mut len: u32 = 128;
    // SAFETY: buf is 128 writable bytes and len says so; a non-socket fd just fails.
    let rc = unsafe {
        if peer {
            sys::getpeername(fd, buf.as_mut_ptr().cast(), &mut len)
        } else {
            sys::getsockname(fd, buf.as_mut_ptr().cast(), &mut len)
        }
    };
    if rc != 0 {
        return None;
    }
    let port = u16::from_be_bytes([buf[2], buf[3]]);
    match u16::from_ne_bytes([buf[0], buf[1]]) {
        2 => Some(SocketAddr::from((
            Ipv4Addr::new(buf[4], buf[5], buf[6], buf[7]),
            port,
        ))),
        10 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&buf[8..24]);
            Some(SocketAddr::from((Ipv6Addr::from(octets), port)))
        }
        _ => None,
    }
}

/// Ends the connection to `peer` now (FIN both ways), so the client sees the body stop
/// without the chunk terminator.
fn cut_connection(local: SocketAddr, peer: Option<SocketAddr>) {
    #[cfg(target_os = "linux")]
    if let Some(peer) = peer {
        shutdown_connection(local, peer);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (local, peer);
}

/// Shut the accepted socket of `local` ⇄ `peer` down (both directions). Each candidate fd is
/// duplicated and checked through the duplicate: the connection's own threads may close an fd
/// meanwhile, and the number may already belong to the client's next connection. One shutdown
/// covers every fd of the socket.
#[cfg(target_os = "linux")]
fn shutdown_connection(local: SocketAddr, peer: SocketAddr) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<std::os::raw::c_int> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        // SAFETY: dup of a possibly stale fd just fails; the duplicate is ours and closed below.
        let own = unsafe { sys::dup(fd) };
        if own < 0 {
            continue;
        }
        let hit = socket_addr(own, false) == Some(local) && socket_addr(own, true) == Some(peer);
        // SAFETY: `own` is the duplicate made above (SHUT_RDWR = 2).
        unsafe {
            if hit {
                sys::shutdown(own, 2);
            }
            sys::close(own);
        }
        if hit {
            return;
        }
    }
}

/// Whether the server side of the connection from `peer` has TCP_NODELAY set (Linux only;
/// `None` when the socket is not found). Used by the self-test.
pub fn accepted_socket_nodelay(fake: &FakeKiro, peer: SocketAddr) -> Option<bool> {
    #[cfg(target_os = "linux")]
    {
        let fd = *accepted_socket_fds(fake.addr(), peer).first()?;
        let mut value: std::os::raw::c_int = 0;
        let mut len: u32 = 4;
        // SAFETY: value is a writable c_int and len says so.
        let rc = unsafe {
            sys::getsockopt(
                fd,
                sys::IPPROTO_TCP,
                sys::TCP_NODELAY,
                (&mut value as *mut std::os::raw::c_int).cast(),
                &mut len,
            )
        };
        (rc == 0).then_some(value != 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fake, peer);
        None
    }
}
