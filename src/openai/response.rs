//! Neutral output events → OpenAI Chat Completions: streamed `chat.completion.chunk`s written as
//! each event arrives, the non-streaming `chat.completion`, and OpenAI-shaped errors.

use std::io;

use serde_json::{json, Value};

use crate::conversation::{FinishReason, Outcome, OutputEvent, Usage};
use crate::error::{openai_body, Error};
use crate::pipeline::{Stream, StreamInfo};
use crate::relay::collector::Collector;
use crate::relay::Sink;
use crate::sse::SseWriter;
use crate::util::{now_unix, random_hex};
use crate::websearch::Citation;

/// `chatcmpl-` + 32 hex.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", random_hex(32))
}

/// The OpenAI `finish_reason` for an outcome.
pub fn finish_reason(f: &FinishReason) -> &'static str {
    match f {
        // A refusal is said in the message's `refusal`, as OpenAI does.
        FinishReason::Stop | FinishReason::StopSequence(_) | FinishReason::FormatNotMet => "stop",
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

/// Writes `chat.completion.chunk` events as they arrive.
pub struct ChunkWriter<'a> {
    sse: &'a mut SseWriter,
    id: String,
    created: u64,
    model: String,
    role_sent: bool,
    /// The serialized start of every content chunk (built once).
    prefix: String,
    /// `stream_options.include_usage`: a last chunk with the usage.
    include_usage: bool,
    /// Copy of the text written, for the debug log.
    trace: Option<String>,
    /// Characters of content so far, and where the text since the last other event started:
    /// citation offsets count from the start of the content.
    text_chars: usize,
    run_start: usize,
}

/// A Chat Completions `url_citation` annotation; `offset` is where the citing text run starts in
/// the message content.
pub fn annotation_json(c: &Citation, offset: usize) -> Value {
    json!({"type": "url_citation", "url_citation": {"start_index": c.start + offset,
        "end_index": c.end + offset, "url": c.url, "title": c.title}})
}

impl<'a> ChunkWriter<'a> {
    /// A writer for `model` (echoed as the client sent it).
    pub fn new(
        sse: &'a mut SseWriter,
        model: &str,
        include_usage: bool,
        info: StreamInfo,
    ) -> ChunkWriter<'a> {
        ChunkWriter {
            sse,
            id: completion_id(),
            created: now_unix(),
            model: model.to_string(),
            role_sent: false,
            prefix: String::new(),
            include_usage,
            trace: info.trace.then(String::new),
            text_chars: 0,
            run_start: 0,
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

    /// A content delta, serialized without building a JSON tree (the hot path of long replies).
    fn text_chunk(&mut self, text: &str) -> io::Result<()> {
        if self.prefix.is_empty() {
            self.prefix = format!(
                r#"{{"id":{},"object":"chat.completion.chunk","created":{},"model":{},"choices":[{{"index":0,"delta":{{"content":"#,
                Value::String(self.id.clone()),
                self.created,
                Value::String(self.model.clone()),
            );
        }
        let escaped = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
        let mut s = String::with_capacity(self.prefix.len() + escaped.len() + 48);
        s.push_str(&self.prefix);
        s.push_str(&escaped);
        s.push_str(r#"},"logprobs":null,"finish_reason":null}]}"#);
        if let Some(t) = self.trace.as_mut() {
            t.push_str("data: ");
            t.push_str(&s);
            t.push_str("\n\n");
        }
        self.sse.event(None, &s)
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
}

impl Sink for ChunkWriter<'_> {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match &event {
            OutputEvent::Text(t) => self.text_chars += t.chars().count(),
            OutputEvent::Citations(_) => {}
            _ => self.run_start = self.text_chars,
        }
        match event {
            OutputEvent::Text(t) if self.role_sent => self.text_chunk(&t),
            OutputEvent::Text(t) => self.chunk(json!({"content": t}), None),
            // Chat Completions shows no search, only its citations; a comment keeps the line
            // alive while the search runs.
            OutputEvent::WebSearchCall { .. } => self.sse.comment("web search"),
            OutputEvent::WebSearchResult { .. } => Ok(()),
            OutputEvent::Citations(list) => {
                let offset = self.run_start;
                let annotations: Vec<Value> =
                    list.iter().map(|c| annotation_json(c, offset)).collect();
                self.chunk(json!({ "annotations": annotations }), None)
            }
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
            OutputEvent::Refusal(t) => self.chunk(json!({"refusal": t}), None),
        }
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.sse.comment("keep-alive")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sse.flush()
    }
}

impl Stream for ChunkWriter<'_> {
    /// The last chunk (finish reason), the usage chunk when asked, then `[DONE]`.
    ///
    /// A tool call Kiro cut off has had its fragments streamed already; they cannot be taken
    /// back, so no further fragment of it is sent and the reply ends with `length`.
    fn finish(&mut self, outcome: &Outcome) -> io::Result<()> {
        self.chunk(json!({}), Some(finish_reason(&outcome.finish)))?;
        if self.include_usage {
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
    fn fail(&mut self, e: &Error) -> io::Result<()> {
        let (_, body) = openai_body(e);
        self.write(&body)
    }

    fn take_trace(&mut self) -> Option<String> {
        self.trace.take()
    }
}

/// The non-streaming `chat.completion` object.
pub fn completion_json(model: &str, c: &Collector, outcome: &Outcome) -> Value {
    let mut message = json!({"role": "assistant", "content": c.text, "refusal": null});
    if !c.refusal.is_empty() {
        message["refusal"] = json!(c.refusal);
        if c.text.is_empty() {
            message["content"] = Value::Null;
        }
    }
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
    if !c.citations.is_empty() {
        message["annotations"] = c.citations.iter().map(|a| annotation_json(a, 0)).collect();
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
    let data: Vec<Value> = ids.iter().map(|id| model_json(id)).collect();
    json!({"object": "list", "data": data})
}

/// One model object, as listed and as `GET /v1/models/{id}` answers.
pub fn model_json(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": now_unix(), "owned_by": "anthropic", "description": "Claude model via Kiro API"})
}
