//! Decoded frames → typed Kiro events (base spec §3.2, 2026 addendum §8.1).
//!
//! Dispatch is on the `:event-type` / `:message-type` headers, never on JSON key order. Payloads
//! may be bare (`{"content":…}`) or wrapped under the event name (`{"assistantResponseEvent":{…}}`).
//! No I/O here, and no knowledge of any client format.

use serde_json::Value;

use crate::kiro::eventstream::Frame;

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

/// Why a frame could not be turned into an event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventError(pub String);

/// Turn one frame into an event.
pub fn decode_event(frame: &Frame) -> Result<KiroEvent, EventError> {
    let _ = frame;
    Err(EventError("not implemented".into()))
}
