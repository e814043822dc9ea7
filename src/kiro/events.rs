//! Decoded frames → typed Kiro events (`docs/kiro-wire.md#events`).
//!
//! Dispatch is on the `:event-type` / `:message-type` headers, never on JSON key order. Payloads
//! may be bare (`{"content":…}`) or wrapped under the event name (`{"assistantResponseEvent":{…}}`).
//! No I/O here, and no knowledge of any client format.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::kiro::eventstream::Frame;
use crate::kiro::wire::{
    ContextUsagePayload, ErrorPayload, MetadataPayload, MeteringPayload, ReasoningPayload,
    TextPayload, TokenUsagePayload, ToolUsePayload,
};

/// A `toolUseEvent`'s `input`: a fragment of JSON text, or a whole object.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolInput {
    Fragment(String),
    Object(Value),
}

/// Real token counts from `metadataEvent` / `messageMetadataEvent`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenUsage {
    pub uncached_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_write_input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// One event of Kiro's reply.
#[derive(Debug, Clone, PartialEq)]
pub enum KiroEvent {
    /// `assistantResponseEvent.content` (also `codeEvent`): a text delta.
    Text(String),
    /// `toolUseEvent`: start, argument fragment and/or end of one tool call.
    ToolUse {
        id: String,
        name: String,
        input: Option<ToolInput>,
        stop: bool,
    },
    /// `reasoningContentEvent`: native reasoning text delta, signature, or redacted blob.
    Reasoning {
        text: Option<String>,
        signature: Option<String>,
        redacted: Option<String>,
    },
    /// `meteringEvent.usage`: credits spent.
    Metering(f64),
    /// `contextUsageEvent.contextUsagePercentage` (0–100).
    ContextUsage(f64),
    /// `metadataEvent` / `messageMetadataEvent`: token usage and/or a stop reason.
    Metadata {
        usage: Option<TokenUsage>,
        stop_reason: Option<String>,
    },
    /// `:message-type` `exception` or `error`, or an `invalidStateEvent`: the reply failed.
    Exception {
        /// `:exception-type`, `:error-code`, or the event name.
        kind: String,
        message: String,
        reason: Option<String>,
    },
    /// Anything else (`followupPromptEvent`, unknown future events): ignored by the relay.
    Ignored(String),
}

/// Why a frame could not be turned into an event: its payload is not UTF-8, not JSON, not a JSON
/// object, or the field that carries the event's value has the wrong type. A well-formed event
/// that merely lacks its field (an `assistantResponseEvent` with only `modelId`) is not an error:
/// it becomes [`KiroEvent::Ignored`], and so does any event type we do not read (its payload is
/// not looked at).
#[derive(Debug, Clone, PartialEq)]
pub struct EventError {
    pub message: String,
    /// Whether the frame may have carried part of the answer (text, a tool call, reasoning, or
    /// an event without a type): skipping it would hand the client a silently different answer,
    /// so the reply must fail instead. False only for the figures Kiro reports about a reply
    /// (credits, context usage, token usage), whose loss costs an estimate and nothing else.
    pub loses_answer: bool,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "undecodable Kiro event: {}", self.message)
    }
}

impl std::error::Error for EventError {}

/// Turn one frame into an event.
///
/// `:message-type` picks the family (missing means `event`); for events, `:event-type` picks the
/// shape. The payload is decoded as a whole, so a multibyte character is never cut. Payloads of
/// ignored event types are not parsed at all; those of exceptions and errors are read leniently
/// (they end the reply whatever they hold).
pub fn decode_event(frame: &Frame) -> Result<KiroEvent, EventError> {
    match frame.header_str(":message-type").unwrap_or("event") {
        "event" => {
            let Some(name) = frame.header_str(":event-type") else {
                return Err(EventError {
                    message: "event frame without an :event-type header".to_string(),
                    loses_answer: true,
                });
            };
            decode_named_event(name, &frame.payload).map_err(|message| EventError {
                message,
                loses_answer: !is_figure(name),
            })
        }
        "exception" => Ok(clipped(exception_event(
            frame,
            &String::from_utf8_lossy(&frame.payload),
        ))),
        "error" => Ok(clipped(error_event(
            frame,
            &String::from_utf8_lossy(&frame.payload),
        ))),
        other => Ok(KiroEvent::Ignored(other.to_string())),
    }
}

/// Most characters of Kiro's words kept in an error (its real messages are a sentence or two):
/// they go to the client and into the log, and a frame may hold 16 MiB of them.
const MAX_MESSAGE_CHARS: usize = 1000;

/// `text` cut to [`MAX_MESSAGE_CHARS`] by leaving out its middle, saying how much: the start
/// says what failed, the end often why.
pub(crate) fn clip_message(text: String) -> String {
    let chars = text.chars().count();
    if chars <= MAX_MESSAGE_CHARS {
        return text;
    }
    let head = MAX_MESSAGE_CHARS * 3 / 5;
    let tail = MAX_MESSAGE_CHARS - head;
    let head_end = text.char_indices().nth(head).map_or(text.len(), |(i, _)| i);
    let tail_start = text
        .char_indices()
        .nth(chars - tail)
        .map_or(text.len(), |(i, _)| i);
    format!(
        "{} … ({} bytes left out) … {}",
        text.get(..head_end).unwrap_or_default(),
        tail_start - head_end,
        text.get(tail_start..).unwrap_or_default()
    )
}

/// An exception's kind, message and reason, each cut to a readable length.
fn clipped(event: KiroEvent) -> KiroEvent {
    match event {
        KiroEvent::Exception {
            kind,
            message,
            reason,
        } => KiroEvent::Exception {
            kind: clip_message(kind),
            message: clip_message(message),
            reason: reason.map(clip_message),
        },
        other => other,
    }
}

/// Events that report figures about the reply rather than carry any of it.
fn is_figure(name: &str) -> bool {
    matches!(
        name,
        "meteringEvent" | "contextUsageEvent" | "metadataEvent" | "messageMetadataEvent"
    )
}

fn decode_named_event(name: &str, payload_bytes: &[u8]) -> Result<KiroEvent, String> {
    let text = || {
        std::str::from_utf8(payload_bytes).map_err(|e| format!("{name} payload is not UTF-8: {e}"))
    };
    match name {
        "assistantResponseEvent" | "codeEvent" => text_event(name, payload(name, text()?)?),
        "toolUseEvent" => tool_use_event(payload(name, text()?)?),
        "reasoningContentEvent" => reasoning_event(payload(name, text()?)?),
        "meteringEvent" => {
            let p: MeteringPayload = payload(name, text()?)?;
            number_event(name, "usage", p.usage, MAX_CREDITS, KiroEvent::Metering)
        }
        "contextUsageEvent" => {
            let p: ContextUsagePayload = payload(name, text()?)?;
            number_event(
                name,
                "contextUsagePercentage",
                p.context_usage_percentage,
                MAX_CONTEXT_PCT,
                KiroEvent::ContextUsage,
            )
        }
        "metadataEvent" | "messageMetadataEvent" => Ok(metadata_event(payload(name, text()?)?)),
        "invalidStateEvent" => {
            let text = String::from_utf8_lossy(payload_bytes);
            let p: ErrorPayload = payload(name, &text).unwrap_or_default();
            Ok(clipped(KiroEvent::Exception {
                kind: name.to_string(),
                message: message_of(&p).unwrap_or_else(|| fallback_message(&text, name)),
                reason: as_string(p.reason),
            }))
        }
        // followupPromptEvent and whatever Kiro adds next.
        _ => Ok(KiroEvent::Ignored(name.to_string())),
    }
}

/// The event's payload, unwrapped if it came as `{"<event name>": {…}}`. An empty payload counts
/// as `{}`.
///
/// Bare payloads, the usual case, are read straight into `T`. Only a payload that mentions the
/// event's name goes through a JSON tree, to look for the wrapper.
fn payload<T: DeserializeOwned + Default>(name: &str, text: &str) -> Result<T, String> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    if !text.contains(&format!("\"{name}\"")) {
        return serde_json::from_str(text).map_err(|e| payload_error(name, &e));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| payload_error(name, &e))?;
    let Value::Object(mut body) = value else {
        return Err(format!("{name} payload is not a JSON object"));
    };
    let inner = match body.remove(name) {
        Some(Value::Object(inner)) => Value::Object(inner),
        Some(other) => {
            body.insert(name.to_string(), other);
            Value::Object(body)
        }
        None => Value::Object(body),
    };
    T::deserialize(inner).map_err(|e| payload_error(name, &e))
}

fn payload_error(name: &str, e: &serde_json::Error) -> String {
    // Every field is read as any JSON value, so a data error can only be a payload that is
    // not an object.
    if e.is_data() {
        format!("{name} payload is not a JSON object")
    } else {
        format!("{name} payload is not JSON: {e}")
    }
}

fn text_event(name: &str, p: TextPayload) -> Result<KiroEvent, String> {
    // A content event that carries a follow-up prompt is a suggestion for the user's next
    // message, not part of the answer.
    if truthy(p.followup_prompt.as_ref()) {
        return Ok(KiroEvent::Ignored(name.to_string()));
    }
    match p.content {
        None | Some(Value::Null) => Ok(KiroEvent::Ignored(name.to_string())),
        Some(Value::String(content)) => Ok(KiroEvent::Text(content)),
        Some(_) => Err(format!("{name}.content is not a string")),
    }
}

fn tool_use_event(p: ToolUsePayload) -> Result<KiroEvent, String> {
    let input = match p.input {
        None | Some(Value::Null) => None,
        Some(Value::String(fragment)) => Some(ToolInput::Fragment(fragment)),
        Some(object @ Value::Object(_)) => Some(ToolInput::Object(object)),
        Some(_) => {
            return Err("toolUseEvent.input is neither a JSON fragment nor an object".to_string())
        }
    };
    Ok(KiroEvent::ToolUse {
        // Missing ids stay empty: the relay keys calls by id and decides what to do.
        id: text_field("toolUseEvent", "toolUseId", p.tool_use_id)?.unwrap_or_default(),
        name: text_field("toolUseEvent", "name", p.name)?.unwrap_or_default(),
        input,
        stop: truthy(p.stop.as_ref()),
    })
}

fn reasoning_event(p: ReasoningPayload) -> Result<KiroEvent, String> {
    const NAME: &str = "reasoningContentEvent";
    Ok(KiroEvent::Reasoning {
        text: text_field(NAME, "text", p.text)?,
        signature: text_field(NAME, "signature", p.signature)?,
        redacted: text_field(NAME, "redactedContent", p.redacted_content)?,
    })
}

/// A field that carries part of the answer: a string, or absent (missing or null). Any other
/// type is an error, not an absence, so that the part is not silently lost.
fn text_field(name: &str, key: &str, value: Option<Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name}.{key} is not a string")),
    }
}

/// Most credits one reply is believed to cost; more is a broken figure, not a price.
const MAX_CREDITS: f64 = 1e6;
/// Highest context usage believed (a percentage; a little over 100 is an overflow, not a bug).
const MAX_CONTEXT_PCT: f64 = 1000.0;
/// Most tokens one count of `tokenUsage` is believed to hold. Counts are capped here so that sums
/// of them (input + cache, input + output) can never overflow.
const MAX_TOKEN_COUNT: u64 = u32::MAX as u64;

/// An event whose value is one number, `key` in the payload, between 0 and `max`.
fn number_event(
    name: &str,
    key: &str,
    value: Option<Value>,
    max: f64,
    make: fn(f64) -> KiroEvent,
) -> Result<KiroEvent, String> {
    match value {
        None | Some(Value::Null) => Ok(KiroEvent::Ignored(name.to_string())),
        Some(value) => match number(&value) {
            Some(n) if (0.0..=max).contains(&n) => Ok(make(n)),
            Some(n) => Err(format!("{name}.{key} {n} is out of range")),
            None => Err(format!("{name}.{key} is not a number")),
        },
    }
}

fn metadata_event(p: MetadataPayload) -> KiroEvent {
    let usage = match p.token_usage {
        Some(value @ Value::Object(_)) => {
            TokenUsagePayload::deserialize(value)
                .ok()
                .map(|u| TokenUsage {
                    uncached_input_tokens: count(u.uncached_input_tokens.as_ref()),
                    cache_read_input_tokens: count(u.cache_read_input_tokens.as_ref()),
                    cache_write_input_tokens: count(u.cache_write_input_tokens.as_ref()),
                    output_tokens: count(u.output_tokens.as_ref()),
                    total_tokens: count(u.total_tokens.as_ref()),
                })
        }
        _ => None,
    };
    KiroEvent::Metadata {
        usage,
        stop_reason: as_string(p.stop_reason),
    }
}

/// `:message-type: exception`: `{message, reason}` with the class in `:exception-type`.
fn exception_event(frame: &Frame, text: &str) -> KiroEvent {
    let body = error_payload(text);
    let kind = frame
        .header_str(":exception-type")
        .map(str::to_string)
        .or_else(|| body.as_ref().and_then(aws_type))
        .unwrap_or_else(|| "exception".to_string());
    let message = body
        .as_ref()
        .and_then(message_of)
        .unwrap_or_else(|| fallback_message(text, &kind));
    KiroEvent::Exception {
        message,
        reason: body.and_then(|b| as_string(b.reason)),
        kind,
    }
}

/// `:message-type: error`: code and message in headers, the payload as a fallback.
fn error_event(frame: &Frame, text: &str) -> KiroEvent {
    let body = error_payload(text);
    let kind = frame
        .header_str(":error-code")
        .unwrap_or("error")
        .to_string();
    let message = frame
        .header_str(":error-message")
        .map(str::to_string)
        .or_else(|| body.as_ref().and_then(message_of))
        .unwrap_or_else(|| fallback_message(text, &kind));
    KiroEvent::Exception {
        message,
        reason: body.and_then(|b| as_string(b.reason)),
        kind,
    }
}

/// The payload as an error object, if it is one (exception payloads may be plain text).
fn error_payload(text: &str) -> Option<ErrorPayload> {
    serde_json::from_str(text).ok()
}

/// AWS JSON errors name their class in `__type`, e.g. `com.amazon.aws.codewhisperer#ThrottlingException`.
fn aws_type(body: &ErrorPayload) -> Option<String> {
    let full = body.aws_type.as_ref()?.as_str()?;
    let short = full.rsplit('#').next().unwrap_or(full);
    (!short.is_empty()).then(|| short.to_string())
}

fn message_of(body: &ErrorPayload) -> Option<String> {
    let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
    text(&body.message).or_else(|| text(&body.message_capitalised))
}

/// The raw payload text, or the kind when the payload is empty, so a message is never blank.
fn fallback_message(text: &str, kind: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        kind.to_string()
    } else {
        text.to_string()
    }
}

/// A string field; any other JSON type counts as absent.
fn as_string(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// A JSON number, or a string holding one (finite values only).
fn number(value: &Value) -> Option<f64> {
    let n = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// A token count; missing, negative or non-numeric counts are 0.
fn count(value: Option<&Value>) -> u64 {
    let n = match value {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f > 0.0).map(|f| f as u64))
            .unwrap_or(0),
        Some(other) => number(other).filter(|f| *f > 0.0).map_or(0, |f| f as u64),
        None => 0,
    };
    n.min(MAX_TOKEN_COUNT)
}

/// JavaScript/Python truthiness, as Kiro's own clients read flags like `stop`.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kiro::eventstream::{encode_frame, Decoder, HeaderValue};
    use serde_json::json;

    fn frame(headers: &[(&str, &str)], payload: &str) -> Frame {
        Frame {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), HeaderValue::String(v.to_string())))
                .collect(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn event(name: &str, payload: &str) -> Frame {
        frame(
            &[
                (":message-type", "event"),
                (":event-type", name),
                (":content-type", "application/json"),
            ],
            payload,
        )
    }

    fn decode(name: &str, payload: &str) -> KiroEvent {
        decode_event(&event(name, payload)).unwrap()
    }

    /// The same event bare and wrapped under its name must decode alike.
    fn decode_both_shapes(name: &str, body: &str) -> KiroEvent {
        let bare = decode(name, body);
        let wrapped = decode(name, &format!(r#"{{"{name}":{body}}}"#));
        assert_eq!(bare, wrapped, "{name}: bare vs wrapped");
        bare
    }

    #[test]
    fn assistant_response_content_is_text() {
        assert_eq!(
            decode_both_shapes(
                "assistantResponseEvent",
                r#"{"content":"Hello\nworld","modelId":"claude"}"#
            ),
            KiroEvent::Text("Hello\nworld".into())
        );
        assert_eq!(
            decode(
                "assistantResponseEvent",
                r#"{"modelId":"claude","content":"x"}"#
            ),
            KiroEvent::Text("x".into())
        );
    }

    #[test]
    fn code_event_content_is_text() {
        assert_eq!(
            decode_both_shapes("codeEvent", r#"{"content":"fn main() {}"}"#),
            KiroEvent::Text("fn main() {}".into())
        );
    }

    #[test]
    fn content_with_truthy_followup_prompt_is_skipped() {
        assert_eq!(
            decode_both_shapes(
                "assistantResponseEvent",
                r#"{"content":"Try this?","followupPrompt":{"content":"x"}}"#
            ),
            KiroEvent::Ignored("assistantResponseEvent".into())
        );
        // A falsy followupPrompt does not hide the text.
        assert_eq!(
            decode(
                "assistantResponseEvent",
                r#"{"followupPrompt":null,"content":"kept"}"#
            ),
            KiroEvent::Text("kept".into())
        );
    }

    #[test]
    fn content_event_without_content_is_ignored_and_wrong_type_is_an_error() {
        assert_eq!(
            decode("assistantResponseEvent", r#"{"modelId":"m"}"#),
            KiroEvent::Ignored("assistantResponseEvent".into())
        );
        assert!(decode_event(&event("assistantResponseEvent", r#"{"content":5}"#)).is_err());
    }

    #[test]
    fn tool_use_start_fragment_and_stop_map_to_tool_use() {
        assert_eq!(
            decode_both_shapes("toolUseEvent", r#"{"name":"read","toolUseId":"t1"}"#),
            KiroEvent::ToolUse {
                id: "t1".into(),
                name: "read".into(),
                input: None,
                stop: false
            }
        );
        assert_eq!(
            decode_both_shapes(
                "toolUseEvent",
                r#"{"input":"{\"path\":","name":"read","toolUseId":"t1"}"#
            ),
            KiroEvent::ToolUse {
                id: "t1".into(),
                name: "read".into(),
                input: Some(ToolInput::Fragment(r#"{"path":"#.into())),
                stop: false
            }
        );
        assert_eq!(
            decode_both_shapes(
                "toolUseEvent",
                r#"{"name":"read","stop":true,"toolUseId":"t1"}"#
            ),
            KiroEvent::ToolUse {
                id: "t1".into(),
                name: "read".into(),
                input: None,
                stop: true
            }
        );
    }

    #[test]
    fn tool_use_object_input_and_missing_ids() {
        assert_eq!(
            decode("toolUseEvent", r#"{"input":{"cmd":"ls"},"stop":true}"#),
            KiroEvent::ToolUse {
                id: String::new(),
                name: String::new(),
                input: Some(ToolInput::Object(json!({"cmd":"ls"}))),
                stop: true
            }
        );
    }

    #[test]
    fn reasoning_event_maps_text_signature_and_redacted() {
        assert_eq!(
            decode_both_shapes("reasoningContentEvent", r#"{"text":"Let me think"}"#),
            KiroEvent::Reasoning {
                text: Some("Let me think".into()),
                signature: None,
                redacted: None
            }
        );
        assert_eq!(
            decode(
                "reasoningContentEvent",
                r#"{"signature":".KTR~~abc","redactedContent":"b64=="}"#
            ),
            KiroEvent::Reasoning {
                text: None,
                signature: Some(".KTR~~abc".into()),
                redacted: Some("b64==".into())
            }
        );
    }

    #[test]
    fn metering_usage_is_read_in_any_key_order() {
        for body in [
            r#"{"usage":0.5}"#,
            r#"{"unit":"credit","unitPlural":"credits","usage":0.5}"#,
            r#"{"unitPlural":"credits","usage":0.5,"unit":"credit"}"#,
        ] {
            assert_eq!(
                decode_both_shapes("meteringEvent", body),
                KiroEvent::Metering(0.5),
                "{body}"
            );
        }
        assert_eq!(
            decode("meteringEvent", r#"{"usage":2}"#),
            KiroEvent::Metering(2.0)
        );
        assert!(decode_event(&event("meteringEvent", r#"{"usage":"lots"}"#)).is_err());
    }

    #[test]
    fn context_usage_percentage_is_read() {
        assert_eq!(
            decode_both_shapes("contextUsageEvent", r#"{"contextUsagePercentage":25.5}"#),
            KiroEvent::ContextUsage(25.5)
        );
    }

    #[test]
    fn metadata_token_usage_and_stop_reason() {
        let body = r#"{"stopReason":"end_turn","tokenUsage":{"totalTokens":150,
            "outputTokens":50,"cacheWriteInputTokens":10,"cacheReadInputTokens":20,
            "uncachedInputTokens":70}}"#;
        let expected = KiroEvent::Metadata {
            usage: Some(TokenUsage {
                uncached_input_tokens: 70,
                cache_read_input_tokens: 20,
                cache_write_input_tokens: 10,
                output_tokens: 50,
                total_tokens: 150,
            }),
            stop_reason: Some("end_turn".into()),
        };
        assert_eq!(decode_both_shapes("metadataEvent", body), expected);
        assert_eq!(decode_both_shapes("messageMetadataEvent", body), expected);
    }

    #[test]
    fn metadata_parts_are_each_optional() {
        assert_eq!(
            decode("metadataEvent", r#"{"stopReason":"max_tokens"}"#),
            KiroEvent::Metadata {
                usage: None,
                stop_reason: Some("max_tokens".into())
            }
        );
        assert_eq!(
            decode("metadataEvent", r#"{"tokenUsage":{"outputTokens":3}}"#),
            KiroEvent::Metadata {
                usage: Some(TokenUsage {
                    output_tokens: 3,
                    ..TokenUsage::default()
                }),
                stop_reason: None
            }
        );
        assert_eq!(
            decode(
                "messageMetadataEvent",
                r#"{"conversationId":"c","utteranceId":"u"}"#
            ),
            KiroEvent::Metadata {
                usage: None,
                stop_reason: None
            }
        );
    }

    #[test]
    fn invalid_state_event_is_an_exception() {
        assert_eq!(
            decode_both_shapes(
                "invalidStateEvent",
                r#"{"reason":"STALE_CONVERSATION","message":"Conversation is stale"}"#
            ),
            KiroEvent::Exception {
                kind: "invalidStateEvent".into(),
                message: "Conversation is stale".into(),
                reason: Some("STALE_CONVERSATION".into())
            }
        );
    }

    #[test]
    fn followup_and_unknown_events_are_ignored() {
        assert_eq!(
            decode(
                "followupPromptEvent",
                r#"{"followupPrompt":{"content":"x"}}"#
            ),
            KiroEvent::Ignored("followupPromptEvent".into())
        );
        // Unknown events are not parsed: even a non-JSON payload is fine.
        assert_eq!(
            decode("futureEvent", "not json"),
            KiroEvent::Ignored("futureEvent".into())
        );
    }

    #[test]
    fn missing_message_type_means_event() {
        let f = frame(
            &[(":event-type", "assistantResponseEvent")],
            r#"{"content":"hi"}"#,
        );
        assert_eq!(decode_event(&f), Ok(KiroEvent::Text("hi".into())));
    }

    #[test]
    fn dispatch_uses_headers_in_any_order_not_payload_keys() {
        let f = frame(
            &[
                (":content-type", "application/json"),
                (":event-type", "meteringEvent"),
                (":message-type", "event"),
            ],
            r#"{"content":"not text","usage":1.5}"#,
        );
        assert_eq!(decode_event(&f), Ok(KiroEvent::Metering(1.5)));
    }

    #[test]
    fn exception_frame_surfaces_type_message_and_reason() {
        let f = frame(
            &[
                (":exception-type", "ThrottlingException"),
                (":message-type", "exception"),
            ],
            r#"{"reason":"USER_REQUEST_RATE_EXCEEDED","message":"Rate exceeded"}"#,
        );
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Exception {
                kind: "ThrottlingException".into(),
                message: "Rate exceeded".into(),
                reason: Some("USER_REQUEST_RATE_EXCEEDED".into())
            })
        );
    }

    #[test]
    fn exception_frame_fallbacks() {
        let f = frame(
            &[(":message-type", "exception")],
            r#"{"Message":"Capital M"}"#,
        );
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Exception {
                kind: "exception".into(),
                message: "Capital M".into(),
                reason: None
            })
        );
        let f = frame(
            &[
                (":message-type", "exception"),
                (":exception-type", "InternalServerException"),
            ],
            "plain text failure",
        );
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Exception {
                kind: "InternalServerException".into(),
                message: "plain text failure".into(),
                reason: None
            })
        );
        let f = frame(
            &[(":message-type", "exception")],
            r#"{"__type":"com.amazon.aws.codewhisperer#ValidationException","reason":null}"#,
        );
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Exception {
                kind: "ValidationException".into(),
                message:
                    r#"{"__type":"com.amazon.aws.codewhisperer#ValidationException","reason":null}"#
                        .into(),
                reason: None
            })
        );
    }

    #[test]
    fn error_frame_uses_error_headers() {
        let f = frame(
            &[
                (":error-message", "Internal failure"),
                (":message-type", "error"),
                (":error-code", "InternalFailure"),
            ],
            "",
        );
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Exception {
                kind: "InternalFailure".into(),
                message: "Internal failure".into(),
                reason: None
            })
        );
        let f = frame(
            &[(":message-type", "error"), (":error-code", "Boom")],
            "payload says why",
        );
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Exception {
                kind: "Boom".into(),
                message: "payload says why".into(),
                reason: None
            })
        );
        let f = frame(&[(":message-type", "error")], "");
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Exception {
                kind: "error".into(),
                message: "error".into(),
                reason: None
            })
        );
    }

    #[test]
    fn invalid_utf8_payload_is_an_error() {
        let mut f = event("assistantResponseEvent", "");
        f.payload = b"{\"content\":\"\xff\xfe\"}".to_vec();
        assert!(decode_event(&f).is_err());
    }

    #[test]
    fn bad_json_and_non_object_payloads_are_errors() {
        assert!(decode_event(&event("assistantResponseEvent", r#"{"content":"#)).is_err());
        assert!(decode_event(&event("meteringEvent", "[1,2]")).is_err());
        assert!(decode_event(&frame(&[(":message-type", "event")], "{}")).is_err());
    }

    #[test]
    fn only_figures_may_be_lost_to_an_undecodable_payload() {
        let loses = |name: &str, payload: &str| decode_event(&event(name, payload)).unwrap_err();
        for (name, payload) in [
            ("assistantResponseEvent", "not json"),
            ("assistantResponseEvent", r#"{"content":42}"#),
            ("codeEvent", "[1]"),
            ("toolUseEvent", r#""a string""#),
            ("reasoningContentEvent", "12345"),
        ] {
            assert!(loses(name, payload).loses_answer, "{name} {payload}");
        }
        for (name, payload) in [
            ("meteringEvent", r#"{"usage":"lots"}"#),
            ("contextUsageEvent", r#"{"contextUsagePercentage":{}}"#),
            ("metadataEvent", "[]"),
            ("messageMetadataEvent", "not json"),
        ] {
            assert!(!loses(name, payload).loses_answer, "{name} {payload}");
        }
        let untyped = decode_event(&frame(&[(":message-type", "event")], "{}")).unwrap_err();
        assert!(untyped.loses_answer);
    }

    #[test]
    fn answer_fields_of_the_wrong_type_are_errors_not_absences() {
        for (name, payload) in [
            ("toolUseEvent", r#"{"name":5,"toolUseId":"t1"}"#),
            ("toolUseEvent", r#"{"name":"ls","toolUseId":["t1"]}"#),
            (
                "toolUseEvent",
                r#"{"name":"ls","toolUseId":"t1","input":5}"#,
            ),
            (
                "toolUseEvent",
                r#"{"name":"ls","toolUseId":"t1","input":["a"]}"#,
            ),
            ("reasoningContentEvent", r#"{"text":5}"#),
            ("reasoningContentEvent", r#"{"signature":{"s":1}}"#),
            ("reasoningContentEvent", r#"{"redactedContent":true}"#),
        ] {
            let err = decode_event(&event(name, payload)).unwrap_err();
            assert!(err.loses_answer, "{name} {payload}");
        }
        // Null is as good as missing.
        assert_eq!(
            decode(
                "toolUseEvent",
                r#"{"name":"ls","toolUseId":null,"input":null}"#
            ),
            KiroEvent::ToolUse {
                id: String::new(),
                name: "ls".into(),
                input: None,
                stop: false
            }
        );
    }

    #[test]
    fn figures_no_reply_can_have_are_refused_or_capped() {
        for (name, payload) in [
            ("meteringEvent", r#"{"usage":1e308}"#),
            ("meteringEvent", r#"{"usage":-5}"#),
            ("contextUsageEvent", r#"{"contextUsagePercentage":1e300}"#),
            ("contextUsageEvent", r#"{"contextUsagePercentage":-1}"#),
        ] {
            let err = decode_event(&event(name, payload)).unwrap_err();
            assert!(!err.loses_answer, "{name} {payload}");
        }
        let KiroEvent::Metadata {
            usage: Some(usage), ..
        } = decode(
            "metadataEvent",
            r#"{"tokenUsage":{"uncachedInputTokens":1e30,"cacheReadInputTokens":18446744073709551615,"outputTokens":7}}"#,
        )
        else {
            panic!("no usage");
        };
        assert_eq!(usage.uncached_input_tokens, u64::from(u32::MAX));
        assert_eq!(usage.cache_read_input_tokens, u64::from(u32::MAX));
        assert_eq!(usage.output_tokens, 7);
    }

    #[test]
    fn kiros_words_in_an_error_are_cut_to_a_readable_length() {
        let long = "é".repeat(5000);
        let f = frame(
            &[(":message-type", "exception"), (":exception-type", "Boom")],
            &json!({"message": long, "reason": long}).to_string(),
        );
        let KiroEvent::Exception {
            kind,
            message,
            reason,
        } = decode_event(&f).unwrap()
        else {
            panic!("not an exception");
        };
        assert_eq!(kind, "Boom");
        assert_eq!(
            message,
            format!(
                "{} … (8000 bytes left out) … {}",
                "é".repeat(600),
                "é".repeat(400)
            )
        );
        assert_eq!(reason.as_deref(), Some(message.as_str()));
        assert_eq!(clip_message("short".into()), "short");
        let exact = "x".repeat(1000);
        assert_eq!(clip_message(exact.clone()), exact);
    }

    #[test]
    fn payloads_that_are_not_read_need_not_be_utf8_or_json() {
        let mut f = event("followupPromptEvent", "");
        f.payload = b"\xff\xfe".to_vec();
        assert_eq!(
            decode_event(&f),
            Ok(KiroEvent::Ignored("followupPromptEvent".into()))
        );
        let mut f = frame(
            &[
                (":message-type", "exception"),
                (":exception-type", "InternalServerException"),
            ],
            "",
        );
        f.payload = b"broke \xff".to_vec();
        let KiroEvent::Exception { kind, message, .. } = decode_event(&f).unwrap() else {
            panic!("not an exception");
        };
        assert_eq!(kind, "InternalServerException");
        assert!(message.starts_with("broke"), "{message}");
        let state = decode_event(&event("invalidStateEvent", "plain words")).unwrap();
        assert!(matches!(state, KiroEvent::Exception { .. }), "{state:?}");
    }

    #[test]
    fn multibyte_text_split_across_feeds_arrives_intact() {
        let text = "Привет, 世界";
        let payload = json!({ "content": text }).to_string();
        let mut bytes = Vec::new();
        for _ in 0..3 {
            bytes.extend(encode_frame(
                &[
                    (
                        ":event-type",
                        HeaderValue::String("assistantResponseEvent".into()),
                    ),
                    (":message-type", HeaderValue::String("event".into())),
                ],
                payload.as_bytes(),
            ));
        }
        for chunk_size in [1, 2, 3, 5, 7, 13] {
            let mut decoder = Decoder::new();
            let mut texts = Vec::new();
            for chunk in bytes.chunks(chunk_size) {
                decoder.feed(chunk);
                while let Some(frame) = decoder.next_frame().unwrap() {
                    texts.push(decode_event(&frame).unwrap());
                }
            }
            assert_eq!(
                texts,
                vec![KiroEvent::Text(text.into()); 3],
                "chunk size {chunk_size}"
            );
        }
    }
}
