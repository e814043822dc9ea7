//! Neutral output → the Anthropic Messages API: the non-streaming `message` object, the blocks and
//! figures it shares with the stream ([`super::stream`]), the model objects, and Anthropic-shaped
//! errors. Nothing here knows Kiro.

use serde_json::{json, Value};

use crate::conversation::{FinishReason, Outcome, Usage};
use crate::error::{Error, ErrorClass};
use crate::relay::collector::{Collector, Part};
use crate::util::random_hex;
use crate::websearch::{codec, Citation, SearchFailure, SearchHit, TOOL_NAME};

use super::signature::{omitted_signature, placeholder_signature};

/// `msg_` + 24 hex.
pub fn message_id() -> String {
    format!("msg_{}", random_hex(24))
}

/// Anthropic `stop_reason` and `stop_sequence` for an outcome.
pub fn stop_reason(f: &FinishReason) -> (&'static str, Option<&str>) {
    match f {
        FinishReason::Stop => ("end_turn", None),
        FinishReason::ToolCalls => ("tool_use", None),
        FinishReason::Length => ("max_tokens", None),
        // The answer is not the structured output asked for: what the model said is the text.
        FinishReason::FormatNotMet => ("refusal", None),
        FinishReason::StopSequence(s) => ("stop_sequence", Some(s.as_str())),
    }
}

/// Anthropic `usage` object.
pub fn usage_json(u: &Usage) -> Value {
    let mut v = json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
    });
    add_server_tool_use(&mut v, u);
    v
}

/// `server_tool_use.web_search_requests` when searches were made.
pub(super) fn add_server_tool_use(v: &mut Value, u: &Usage) {
    if u.web_search_requests > 0 {
        v["server_tool_use"] =
            json!({"web_search_requests": u.web_search_requests, "web_fetch_requests": 0});
    }
}

/// The `id` of the `server_tool_use` block of search `id` (`docs/web-search.md#anthropic-messages`).
fn server_tool_id(id: &str) -> String {
    format!("srvtoolu_{id}")
}

/// The `server_tool_use` block of a search.
pub fn server_tool_use_json(id: &str, query: &str) -> Value {
    json!({"type": "server_tool_use", "id": server_tool_id(id), "name": TOOL_NAME,
        "input": {"query": query}})
}

/// The `web_search_tool_result` block: the pages, or the error object with Anthropic's code.
pub fn search_result_json(id: &str, outcome: &Result<Vec<SearchHit>, SearchFailure>) -> Value {
    let content = match outcome {
        Ok(hits) => Value::Array(
            hits.iter()
                .map(|h| {
                    json!({"type": "web_search_result", "title": h.title, "url": h.url,
                        "encrypted_content": codec::encode_content(h), "page_age": h.page_age})
                })
                .collect(),
        ),
        Err(f) => json!({"type": "web_search_tool_result_error", "error_code": f.code()}),
    };
    json!({"type": "web_search_tool_result", "tool_use_id": server_tool_id(id),
        "content": content})
}

/// A `web_search_result_location` citation.
pub fn citation_json(c: &Citation) -> Value {
    json!({"type": "web_search_result_location", "url": c.url, "title": c.title,
        "encrypted_index": codec::encode_index(&c.url), "cited_text": c.cited_text})
}

/// Anthropic's error `type` for `e`.
pub fn error_type(e: &Error) -> &'static str {
    if matches!(e, Error::PayloadTooLarge(_)) {
        return "request_too_large";
    }
    match e.class() {
        ErrorClass::InvalidRequest | ErrorClass::ContextLength => "invalid_request_error",
        ErrorClass::Authentication => "authentication_error",
        ErrorClass::Permission => "permission_error",
        ErrorClass::NotFound => "not_found_error",
        ErrorClass::RateLimit => "rate_limit_error",
        ErrorClass::Overloaded => "overloaded_error",
        ErrorClass::Timeout => "timeout_error",
        ErrorClass::Upstream | ErrorClass::Internal => "api_error",
    }
}

/// The status of an Anthropic error: the gateway's own, except that an overload is 529, the
/// status Anthropic gives `overloaded_error` and its SDKs raise `OverloadedError` for (503 is no
/// Anthropic status: it became a `ServiceUnavailableError`).
fn error_status(e: &Error) -> u16 {
    match e.class() {
        ErrorClass::Overloaded => 529,
        _ => e.status(),
    }
}

/// The message of `e` as Anthropic clients should read it. An overflow must begin with
/// "prompt is too long": that is what Claude Code matches to compact its history.
pub fn error_message(e: &Error) -> String {
    let m = e.to_string();
    match e {
        Error::ContextLengthExceeded(_)
            if !m.to_ascii_lowercase().starts_with("prompt is too long") =>
        {
            format!("prompt is too long: {m}")
        }
        _ => m,
    }
}

/// One model of Anthropic's Models API, with what Kiro said of it. Kiro's list has no dates:
/// the release time is the epoch, as the API does for an unknown date; every model listed is
/// callable, so `active`.
pub fn model_json(
    id: &str,
    display_name: Option<&str>,
    max_input_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
) -> Value {
    let mut model = json!({"type": "model", "id": id, "display_name": display_name.unwrap_or(id),
        "created_at": "1970-01-01T00:00:00Z", "lifecycle": "active"});
    if let Some(n) = max_input_tokens {
        model["max_input_tokens"] = n.into();
    }
    if let Some(n) = max_output_tokens {
        model["max_tokens"] = n.into();
    }
    model
}

/// `(status, body)` of an Anthropic error for `e`.
pub fn error_body(e: &Error) -> (u16, Value) {
    let mut error = json!({"type": error_type(e), "message": error_message(e)});
    if matches!(e, Error::ThreadsUnsupported) {
        // The code the SDKs' thread helpers (tool runners) act on: they resend the turn with the
        // whole conversation and no `thread`.
        error["details"] = json!({"error_code": "thread_unsupported_request"});
    }
    (error_status(e), json!({"type": "error", "error": error}))
}

/// The non-streaming `message` object: thinking first (signed: Kiro's signature, or a
/// placeholder), redacted thinking, the text if any, then the complete tool calls (a truncated
/// call is withheld, never sent broken). `omit_thinking` (`thinking.display: "omitted"`): the
/// thinking text is empty and Kiro's signature is wrapped with it.
pub fn message_json(model: &str, c: &Collector, outcome: &Outcome, omit_thinking: bool) -> Value {
    let mut content: Vec<Value> = Vec::new();
    if !c.reasoning.is_empty() || c.signature.is_some() {
        let block = match &c.signature {
            Some(s) if omit_thinking => (String::new(), omitted_signature(s, &c.reasoning)),
            // Unsigned reasoning never goes back to Kiro: there is nothing to carry.
            None if omit_thinking => (String::new(), placeholder_signature()),
            Some(s) => (c.reasoning.clone(), s.clone()),
            None => (c.reasoning.clone(), placeholder_signature()),
        };
        content.push(json!({"type": "thinking", "thinking": block.0, "signature": block.1}));
    }
    if let Some(data) = &c.redacted {
        content.push(json!({"type": "redacted_thinking", "data": data}));
    }
    if c.parts.is_empty() {
        let text = format!("{}{}", c.text, c.refusal);
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
    } else {
        for part in &c.parts {
            content.push(match part {
                Part::Text {
                    start,
                    end,
                    citations,
                } => {
                    let mut block =
                        json!({"type": "text", "text": c.text.get(*start..*end).unwrap_or("")});
                    if !citations.is_empty() {
                        block["citations"] = citations.iter().map(citation_json).collect();
                    }
                    block
                }
                Part::SearchCall { id, query } => server_tool_use_json(id, query),
                Part::SearchResult { id, outcome, .. } => search_result_json(id, outcome),
            });
        }
    }
    for call in c.complete_calls() {
        let input = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({}),
        };
        content.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    let (reason, sequence) = stop_reason(&outcome.finish);
    json!({
        "id": message_id(), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": reason, "stop_sequence": sequence,
        "usage": usage_json(&outcome.usage),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::anthropic::signature::{is_placeholder_signature, read_omitted_signature};
    use crate::conversation::OutputEvent;
    use crate::relay::Sink;

    pub(in crate::anthropic) fn outcome(finish: FinishReason) -> Outcome {
        Outcome {
            finish,
            usage: Usage {
                input_tokens: 120,
                output_tokens: 7,
                cache_read_tokens: 100,
                cache_write_tokens: 3,
                credits: None,
                web_search_requests: 0,
            },
            truncated_tool_calls: 0,
        }
    }

    pub(in crate::anthropic) fn call_start(index: usize, id: &str) -> OutputEvent {
        OutputEvent::ToolCallStart {
            index,
            id: id.into(),
            name: "write_file".into(),
        }
    }

    pub(in crate::anthropic) fn args(index: usize, f: &str) -> OutputEvent {
        OutputEvent::ToolCallArguments {
            index,
            fragment: f.into(),
        }
    }

    pub(in crate::anthropic) fn end(index: usize, a: &str) -> OutputEvent {
        OutputEvent::ToolCallEnd {
            index,
            arguments: a.into(),
        }
    }

    pub(in crate::anthropic) fn is_message_id(s: &str) -> bool {
        s.strip_prefix("msg_")
            .is_some_and(|h| h.len() == 24 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    #[test]
    fn non_streaming_omitted_thinking_has_empty_text_and_the_wrapped_signature() {
        let mut c = Collector::default();
        c.emit(OutputEvent::Reasoning("r1 ".into())).unwrap();
        c.emit(OutputEvent::Reasoning("r2".into())).unwrap();
        c.emit(OutputEvent::ReasoningSignature("EqQreal".into()))
            .unwrap();
        let m = message_json("m", &c, &outcome(FinishReason::Stop), true);
        let block = &m["content"][0];
        assert_eq!(block["type"], "thinking");
        assert_eq!(block["thinking"], "");
        assert_eq!(
            read_omitted_signature(block["signature"].as_str().unwrap()),
            Some(("EqQreal".into(), "r1 r2".into()))
        );
        let mut c = Collector::default();
        c.emit(OutputEvent::Reasoning("tagged".into())).unwrap();
        let m = message_json("m", &c, &outcome(FinishReason::Stop), true);
        assert_eq!(m["content"][0]["thinking"], "");
        assert!(is_placeholder_signature(
            m["content"][0]["signature"].as_str().unwrap()
        ));
    }

    #[test]
    fn non_streaming_message_orders_blocks_and_withholds_cut_calls() {
        let mut c = Collector::default();
        for ev in [
            OutputEvent::Reasoning("think".into()),
            OutputEvent::RedactedReasoning("blob".into()),
            OutputEvent::Text("Here.".into()),
            call_start(0, "tooluse_ok"),
            args(0, "{\"path\":\"a\"}"),
            end(0, "{\"path\":\"a\"}"),
            call_start(1, "tooluse_cut"),
            args(1, "{\"path\":"),
        ] {
            c.emit(ev).unwrap();
        }
        let m = message_json("claude-x", &c, &outcome(FinishReason::Length), false);
        assert!(is_message_id(m["id"].as_str().unwrap()));
        assert_eq!(m["type"], "message");
        assert_eq!(m["role"], "assistant");
        assert_eq!(m["model"], "claude-x");
        let content = m["content"].as_array().unwrap();
        assert_eq!(content.len(), 4);
        assert_eq!(content[0]["type"], "thinking");
        assert_eq!(content[0]["thinking"], "think");
        assert!(is_placeholder_signature(
            content[0]["signature"].as_str().unwrap()
        ));
        assert_eq!(
            content[1],
            json!({"type": "redacted_thinking", "data": "blob"})
        );
        assert_eq!(content[2], json!({"type": "text", "text": "Here."}));
        assert_eq!(
            content[3],
            json!({"type": "tool_use", "id": "tooluse_ok", "name": "write_file", "input": {"path": "a"}})
        );
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["stop_sequence"], Value::Null);
        assert_eq!(
            m["usage"],
            json!({"input_tokens": 120, "output_tokens": 7, "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 3})
        );
    }

    #[test]
    fn non_streaming_keeps_the_real_signature_and_empty_text_is_no_block() {
        let mut c = Collector::default();
        c.emit(OutputEvent::Reasoning("r".into())).unwrap();
        c.emit(OutputEvent::ReasoningSignature("EqQreal".into()))
            .unwrap();
        let m = message_json("m", &c, &outcome(FinishReason::Stop), false);
        assert_eq!(
            m["content"],
            json!([{"type": "thinking", "thinking": "r", "signature": "EqQreal"}])
        );
        assert_eq!(m["stop_reason"], "end_turn");
        let m = message_json(
            "m",
            &Collector::default(),
            &outcome(FinishReason::Stop),
            false,
        );
        assert_eq!(m["content"], json!([]));
    }

    #[test]
    fn errors_have_anthropic_types_and_overflow_says_prompt_is_too_long() {
        let (s, b) = error_body(&Error::ContextLengthExceeded(
            "Input is too long for the model's context window.".into(),
        ));
        assert_eq!(s, 400);
        assert_eq!(b["type"], "error");
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("prompt is too long: Input is too long"));
        let (_, b) = error_body(&Error::ContextLengthExceeded(
            "Prompt is too long (x)".into(),
        ));
        assert_eq!(b["error"]["message"], "Prompt is too long (x)");
        let upstream = |status| Error::Upstream {
            status,
            message: "m".into(),
            reason: None,
            retry_after: None,
        };
        for (e, status, kind) in [
            (Error::Unauthorized, 401, "authentication_error"),
            (Error::BadRequest("b".into()), 400, "invalid_request_error"),
            (Error::PayloadTooLarge("p".into()), 413, "request_too_large"),
            (Error::NotFound("n".into()), 404, "not_found_error"),
            (upstream(403), 403, "permission_error"),
            (upstream(429), 429, "rate_limit_error"),
            (upstream(500), 500, "api_error"),
            (Error::Overloaded, 529, "overloaded_error"),
            (upstream(503), 529, "overloaded_error"),
            (upstream(504), 504, "timeout_error"),
            (
                Error::FirstTokenTimeout {
                    seconds: 15.0,
                    attempts: 3,
                },
                504,
                "timeout_error",
            ),
            (Error::Internal("x".into()), 500, "api_error"),
        ] {
            let (s, b) = error_body(&e);
            assert_eq!(
                (s, b["error"]["type"].as_str().unwrap()),
                (status, kind),
                "{e}"
            );
        }
    }
}
