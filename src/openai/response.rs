//! Neutral output events → OpenAI Chat Completions: streamed `chat.completion.chunk`s written as
//! each event arrives, the non-streaming `chat.completion`, and OpenAI-shaped errors.

use std::io;

use serde_json::{json, Value};

use crate::conversation::{FinishReason, Outcome, OutputEvent, Usage};
use crate::error::{Error, ErrorClass};
use crate::relay::Sink;
use crate::sse::SseWriter;
use crate::util::{now_unix, random_hex};

/// `chatcmpl-` + 32 hex.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", random_hex(32))
}

/// The OpenAI `finish_reason` for an outcome.
pub fn finish_reason(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::Stop | FinishReason::StopSequence(_) => "stop",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Length => "length",
    }
}

/// OpenAI `usage` object.
pub fn usage_json(u: &Usage) -> Value {
    let mut v = json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    });
    if u.cache_read_tokens > 0 {
        v["prompt_tokens_details"] = json!({"cached_tokens": u.cache_read_tokens});
    }
    if let Some(c) = u.credits.filter(|c| *c > 0.0) {
        v["credits_used"] = json!(c);
    }
    v
}

/// `(status, body)` of an OpenAI error object for `e`.
pub fn error_body(e: &Error) -> (u16, Value) {
    let (kind, code): (&str, Value) = match e {
        Error::ContextLengthExceeded(_) => {
            ("invalid_request_error", json!("context_length_exceeded"))
        }
        Error::ModelNotFound { .. } => ("invalid_request_error", json!("model_not_found")),
        Error::Unauthorized => ("authentication_error", json!("invalid_api_key")),
        Error::PayloadTooLarge(_) => ("invalid_request_error", json!("request_too_large")),
        Error::Upstream {
            reason: Some(r), ..
        } => (class_type(e.class()), json!(r)),
        Error::FirstTokenTimeout { .. } | Error::Network { timeout: true, .. } => {
            ("timeout_error", json!("timeout"))
        }
        _ => (class_type(e.class()), json!(e.status().to_string())),
    };
    (
        e.status(),
        json!({"error": {"message": e.to_string(), "type": kind, "param": null, "code": code}}),
    )
}

fn class_type(c: ErrorClass) -> &'static str {
    match c {
        ErrorClass::InvalidRequest | ErrorClass::ContextLength => "invalid_request_error",
        ErrorClass::Authentication => "authentication_error",
        ErrorClass::Permission => "permission_error",
        ErrorClass::NotFound => "not_found_error",
        ErrorClass::RateLimit => "rate_limit_error",
        ErrorClass::Overloaded => "overloaded_error",
        ErrorClass::Timeout => "timeout_error",
        ErrorClass::Upstream => "kiro_api_error",
        ErrorClass::Internal => "server_error",
    }
}

/// Writes `chat.completion.chunk` events as they arrive.
pub struct ChunkWriter<'a> {
    sse: &'a mut SseWriter,
    id: String,
    created: u64,
    model: String,
    role_sent: bool,
    /// Copy of the text written, for the debug log.
    pub trace: Option<String>,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(sse: &'a mut SseWriter, model: &str, trace: bool) -> ChunkWriter<'a> {
        ChunkWriter {
            sse,
            id: completion_id(),
            created: now_unix(),
            model: model.to_string(),
            role_sent: false,
            trace: trace.then(String::new),
        }
    }

    fn chunk(&mut self, mut delta: Value, finish: Option<&str>) -> io::Result<()> {
        if !self.role_sent {
            delta["role"] = json!("assistant");
            self.role_sent = true;
        }
        let c = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        self.write(&c)
    }

    fn write(&mut self, v: &Value) -> io::Result<()> {
        let s = v.to_string();
        if let Some(t) = self.trace.as_mut() {
            t.push_str("data: ");
            t.push_str(&s);
            t.push_str("\n\n");
        }
        self.sse.event(None, &s)
    }

    /// The last chunk (finish reason), the usage chunk when asked, then `[DONE]`.
    ///
    /// A tool call Kiro cut off has had its fragments streamed already; they cannot be taken
    /// back, so no further fragment of it is sent and the reply ends with `length` (issue 10).
    pub fn finish(&mut self, outcome: &Outcome, include_usage: bool) -> io::Result<()> {
        self.chunk(json!({}), Some(finish_reason(&outcome.finish)))?;
        if include_usage {
            let c = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage_json(&outcome.usage),
            });
            self.write(&c)?;
        }
        self.sse.event(None, "[DONE]")
    }

    /// The reply broke after it started: an error event, and no `[DONE]` (the answer is not
    /// complete, and must not look complete).
    pub fn fail(&mut self, e: &Error) -> io::Result<()> {
        let (_, body) = error_body(e);
        self.write(&body)
    }
}

impl Sink for ChunkWriter<'_> {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match event {
            OutputEvent::Text(t) => self.chunk(json!({"content": t}), None),
            OutputEvent::Reasoning(t) => self.chunk(json!({"reasoning_content": t}), None),
            OutputEvent::ToolCallStart { index, id, name } => self.chunk(
                json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                None,
            ),
            OutputEvent::ToolCallArguments { index, fragment } => self.chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                None,
            ),
            OutputEvent::ToolCallEnd { .. } => Ok(()),
            // Chat Completions has no field for it: our own `reasoning_signature`, which the
            // client sends back on the assistant message so the reasoning can be replayed.
            OutputEvent::ReasoningSignature(s) => {
                self.chunk(json!({"reasoning_signature": s}), None)
            }
            OutputEvent::RedactedReasoning(_) => Ok(()),
        }
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.sse.comment("keep-alive")
    }
}

/// A tool call being collected for a non-streaming reply.
#[derive(Debug, Clone, Default)]
pub struct CollectedCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub complete: bool,
}

/// Collects events for a non-streaming reply (shared by the formats that answer in one JSON).
#[derive(Debug, Default)]
pub struct Collector {
    pub text: String,
    pub reasoning: String,
    pub signature: Option<String>,
    pub redacted: Option<String>,
    pub calls: Vec<CollectedCall>,
}

impl Collector {
    /// Completed calls only: a truncated call is withheld, never sent broken.
    pub fn complete_calls(&self) -> impl Iterator<Item = &CollectedCall> {
        self.calls.iter().filter(|c| c.complete)
    }
}

impl Sink for Collector {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match event {
            OutputEvent::Text(t) => self.text.push_str(&t),
            OutputEvent::Reasoning(t) => self.reasoning.push_str(&t),
            OutputEvent::ReasoningSignature(s) => self.signature = Some(s),
            OutputEvent::RedactedReasoning(r) => self.redacted = Some(r),
            OutputEvent::ToolCallStart { index, id, name } => {
                if self.calls.len() <= index {
                    self.calls.resize(index + 1, CollectedCall::default());
                }
                if let Some(c) = self.calls.get_mut(index) {
                    c.id = id;
                    c.name = name;
                }
            }
            OutputEvent::ToolCallArguments { index, fragment } => {
                if let Some(c) = self.calls.get_mut(index) {
                    c.arguments.push_str(&fragment);
                }
            }
            OutputEvent::ToolCallEnd { index, arguments } => {
                if let Some(c) = self.calls.get_mut(index) {
                    c.arguments = arguments;
                    c.complete = true;
                }
            }
        }
        Ok(())
    }
}

/// The non-streaming `chat.completion` object.
pub fn completion_json(model: &str, c: &Collector, outcome: &Outcome) -> Value {
    let mut message = json!({"role": "assistant", "content": c.text});
    if !c.reasoning.is_empty() {
        message["reasoning_content"] = json!(c.reasoning);
    }
    if let Some(s) = c.signature.as_deref().filter(|s| !s.is_empty()) {
        message["reasoning_signature"] = json!(s);
    }
    let calls: Vec<Value> = c
        .complete_calls()
        .map(|t| json!({"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}))
        .collect();
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": completion_id(), "object": "chat.completion", "created": now_unix(), "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": finish_reason(&outcome.finish)}],
        "usage": usage_json(&outcome.usage),
    })
}

/// The `/v1/models` list.
pub fn models_json(ids: &[String]) -> Value {
    let created = now_unix();
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": created, "owned_by": "anthropic", "description": "Claude model via Kiro API"}))
        .collect();
    json!({"object": "list", "data": data})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_overflow_has_the_code_clients_compact_on() {
        let (status, body) = error_body(&Error::ContextLengthExceeded("too long".into()));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "context_length_exceeded");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn collector_withholds_truncated_calls() {
        let mut c = Collector::default();
        c.emit(OutputEvent::ToolCallStart {
            index: 0,
            id: "a".into(),
            name: "f".into(),
        })
        .unwrap();
        c.emit(OutputEvent::ToolCallArguments {
            index: 0,
            fragment: "{\"x\":".into(),
        })
        .unwrap();
        assert_eq!(c.complete_calls().count(), 0);
        c.emit(OutputEvent::ToolCallEnd {
            index: 0,
            arguments: "{\"x\":1}".into(),
        })
        .unwrap();
        assert_eq!(c.complete_calls().count(), 1);
    }
}
