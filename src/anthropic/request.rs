//! Anthropic Messages request JSON → [`Conversation`].
//!
//! Accepts what Claude Code and the Anthropic SDKs send (system blocks with `cache_control`, many
//! tools, tool results carrying images, thinking blocks with signatures replayed in history) and
//! answers a 400 naming the field when a type is wrong. Unknown top-level fields are ignored, as
//! the real API's newer options are. Nothing here knows Kiro: the payload builder decides what Kiro
//! gets.

use serde_json::{Map, Value};

use crate::conversation::{Conversation, OutputFormat, ReasoningRequest, ToolChoice, ToolSpec};
use crate::error::Error;
use crate::websearch::{self, WebSearchRequest};

use super::content;

/// Which endpoint the body was sent to: `count_tokens` does not require `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v1/messages`.
    Generate,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

pub(super) fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// Parse the body of `POST /v1/messages` (or `/v1/messages/count_tokens`).
pub fn parse_messages_request(
    body: &[u8],
    max_image_bytes: usize,
    purpose: Purpose,
) -> Result<Conversation, Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("The request body is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("The request body must be a JSON object."))?;
    // Checked first: a continued thread carries only its newest messages, which must not be
    // answered as if they were the whole conversation.
    if obj.get("thread").is_some_and(|t| !t.is_null()) {
        return Err(Error::ThreadsUnsupported);
    }
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("'model' is required and must be a string."))?
        .to_string();
    let messages = match obj.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err(bad("'messages' must contain at least one message.")),
        Some(_) => return Err(bad("'messages' must be an array.")),
        None => return Err(bad("'messages' is required.")),
    };
    let max_tokens = match obj.get("max_tokens") {
        Some(Value::Number(n)) => match n.as_u64().filter(|n| *n > 0) {
            Some(n) => Some(n.min(u32::MAX as u64) as u32),
            None => return Err(bad("'max_tokens' must be a positive integer.")),
        },
        None | Some(Value::Null) if purpose == Purpose::CountTokens => None,
        None | Some(Value::Null) => {
            return Err(bad(
                "'max_tokens' is required and must be a positive integer.",
            ))
        }
        Some(_) => return Err(bad("'max_tokens' must be a positive integer.")),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("'stream' must be true or false.")),
    };
    let mut conv = Conversation {
        model,
        system: parse_system(obj.get("system"))?,
        max_output_tokens: max_tokens,
        stream: stream && purpose == Purpose::Generate,
        ..Conversation::default()
    };
    conv.messages = content::parse_messages(messages, max_image_bytes)?;
    let mut loaded = content::referenced_tools(messages);
    // A tool the client forces is loaded whether or not a search found it.
    if let Some(forced) = obj
        .get("tool_choice")
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("tool"))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
    {
        loaded.push(forced);
    }
    (conv.tools, conv.ignored_tools) = parse_tools(obj.get("tools"), &loaded)?;
    conv.web_search = web_search_tool(obj.get("tools"))?;
    conv.tool_choice = parse_tool_choice(obj.get("tool_choice"))?;
    conv.stop_sequences = parse_stop_sequences(obj.get("stop_sequences"))?;
    conv.reasoning = parse_reasoning(obj.get("thinking"), obj.get("output_config"))?;
    if let Some(effort) = content::per_message_effort(messages)? {
        conv.reasoning.effort = Some(effort);
    }
    conv.output_format = parse_output_format(obj)?;
    conv.single_tool_call = obj
        .get("tool_choice")
        .and_then(|c| c.get("disable_parallel_tool_use"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    conv.client_key = session_key(obj, conv.first_user_text());
    Ok(conv)
}

/// The conversation's key from `metadata.user_id`: Claude Code's carries the session
/// (`user_…_account_…_session_<uuid>`), which is the conversation; a plain user id only names
/// the user, so the first message is added.
fn session_key(obj: &Map<String, Value>, first_user_text: &str) -> Option<String> {
    let user_id = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())?;
    Some(match user_id.find("session_") {
        Some(at) => format!("anthropic-session\u{1}{}", &user_id[at..]),
        None => format!("anthropic-user\u{1}{user_id}\u{1}{first_user_text}"),
    })
}

/// `output_config.format` (structured outputs; also the older top-level `output_format`).
fn parse_output_format(obj: &Map<String, Value>) -> Result<Option<OutputFormat>, Error> {
    let (format, at) = match obj.get("output_config").and_then(|c| c.get("format")) {
        Some(f) if !f.is_null() => (f, "output_config.format"),
        _ => match obj.get("output_format") {
            Some(f) if !f.is_null() => (f, "output_format"),
            _ => return Ok(None),
        },
    };
    let kind = format
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{at}.type is required and must be 'json_schema'.")))?;
    OutputFormat::from_request(kind, Some(format), &format!("{at}.type"), at)
}

/// `system`: a string, or a list of text blocks joined with `\n` (`cache_control` ignored).
fn parse_system(v: Option<&Value>) -> Result<String, Error> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                match (content::block_type(b), b.get("text")) {
                    (Some("text"), Some(Value::String(t))) => parts.push(t.as_str()),
                    (Some("text"), _) => {
                        return Err(bad(format!("system[{i}].text must be a string.")))
                    }
                    _ => {
                        return Err(bad(format!(
                        "system[{i}] must be a text block ({{\"type\": \"text\", \"text\": ...}})."
                    )))
                    }
                }
            }
            Ok(parts.join("\n"))
        }
        Some(_) => Err(bad("'system' must be a string or an array of text blocks.")),
    }
}

/// `tools`: custom tools (`type` absent or `custom`). Anthropic-defined and server tools
/// (`web_search_…`, `bash_…`, `text_editor_…`) are skipped: Kiro cannot run them and has no
/// schema for them.
/// The custom tools, and the types of the server tools left out (Anthropic runs those itself;
/// the gateway cannot).
///
/// A tool with `defer_loading: true` stays out of the model's sight until a `tool_reference` in a
/// tool result loads it (`loaded`), as the API does: Claude Code defers its MCP tools, WebSearch and
/// others behind its ToolSearch tool, and offers a placeholder that must never be called.
fn parse_tools(v: Option<&Value>, loaded: &[&str]) -> Result<(Vec<ToolSpec>, Vec<String>), Error> {
    let mut ignored: Vec<String> = Vec::new();
    let list = match v {
        None | Some(Value::Null) => return Ok((Vec::new(), ignored)),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("'tools' must be an array.")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let t = t
            .as_object()
            .ok_or_else(|| bad(format!("tools[{i}] must be an object.")))?;
        match t.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(k)) if k == "custom" => {}
            // Served by the gateway (`web_search_tool`), unless WEB_SEARCH=off.
            Some(Value::String(k)) if websearch::is_anthropic_tool(k) => continue,
            Some(Value::String(k)) => {
                log::debug!("tools[{i}]: leaving out the '{k}' tool (not a custom tool)");
                if !ignored.contains(k) {
                    ignored.push(k.clone());
                }
                continue;
            }
            Some(_) => return Err(bad(format!("tools[{i}].type must be a string."))),
        }
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad(format!("tools[{i}].name is required and must be a string.")))?;
        let deferred = match t.get("defer_loading") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(d)) => *d,
            Some(_) => {
                return Err(bad(format!(
                    "tools[{i}].defer_loading must be true or false."
                )))
            }
        };
        if deferred && !loaded.contains(&name) {
            continue;
        }
        let description = match t.get("description") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(d)) => d.clone(),
            Some(_) => return Err(bad(format!("tools[{i}].description must be a string."))),
        };
        let schema = match t.get("input_schema") {
            None | Some(Value::Null) => Value::Null,
            Some(s @ Value::Object(_)) => s.clone(),
            Some(_) => {
                return Err(bad(format!(
                    "tools[{i}].input_schema must be a JSON Schema object."
                )))
            }
        };
        out.push(ToolSpec {
            name: name.to_string(),
            description,
            schema,
        });
    }
    Ok((out, ignored))
}

/// The web search server tool among `tools`, validated (`docs/web-search.md#anthropic-messages`).
fn web_search_tool(tools: Option<&Value>) -> Result<Option<WebSearchRequest>, Error> {
    let Some(list) = tools.and_then(Value::as_array) else {
        return Ok(None);
    };
    for (i, t) in list.iter().enumerate() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
        if websearch::is_anthropic_tool(kind) {
            return Ok(Some(websearch::parse_anthropic_tool(
                t,
                &format!("tools[{i}]"),
            )?));
        }
    }
    Ok(None)
}

fn parse_tool_choice(v: Option<&Value>) -> Result<ToolChoice, Error> {
    let o = match v {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(bad(
                "'tool_choice' must be an object such as {\"type\": \"auto\"}.",
            ))
        }
    };
    match o.get("type").and_then(Value::as_str) {
        Some("auto") => Ok(ToolChoice::Auto),
        Some("any") => Ok(ToolChoice::Required),
        Some("none") => Ok(ToolChoice::None),
        Some("tool") => o
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(|n| ToolChoice::Named(n.to_string()))
            .ok_or_else(|| bad("tool_choice of type 'tool' needs a 'name'.")),
        Some(other) => Err(bad(format!(
            "tool_choice.type '{other}' is not valid: use auto, any, tool or none."
        ))),
        None => Err(bad("tool_choice.type is required and must be a string.")),
    }
}

fn parse_stop_sequences(v: Option<&Value>) -> Result<Vec<String>, Error> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("'stop_sequences' must be an array of strings."))
            })
            .collect(),
        Some(_) => Err(bad("'stop_sequences' must be an array of strings.")),
    }
}

/// `thinking` and `output_config.effort` → what the client asked for; the shared core maps it
/// onto the model's native fields or the prompt-tag fallback.
fn parse_reasoning(
    thinking: Option<&Value>,
    output_config: Option<&Value>,
) -> Result<ReasoningRequest, Error> {
    let effort = match output_config {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => match o.get("effort") {
            None | Some(Value::Null) => None,
            Some(Value::String(e)) => Some(e.clone()),
            Some(_) => return Err(bad("output_config.effort must be a string.")),
        },
        Some(_) => return Err(bad("'output_config' must be an object.")),
    };
    let mut r = ReasoningRequest {
        effort,
        ..ReasoningRequest::default()
    };
    let t = match thinking {
        None | Some(Value::Null) => {
            // Anthropic's thinking is opt-in: an answer to a request without it has no
            // thinking blocks, and code reading `content[0].text` relies on that.
            r.unasked = r.effort.is_none();
            return Ok(r);
        }
        Some(Value::Object(t)) => t,
        Some(_) => return Err(bad("'thinking' must be an object.")),
    };
    match t.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = t
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .filter(|b| *b > 0)
                .ok_or_else(|| {
                    bad("thinking.budget_tokens is required with type 'enabled' and must be a positive integer.")
                })?;
            r.budget_tokens = Some(budget.min(u32::MAX as u64) as u32);
        }
        Some("adaptive") => {
            if r.effort.is_none() {
                r.effort = Some("high".into());
            }
        }
        Some("disabled") => r.disabled = true,
        Some(other) => {
            return Err(bad(format!(
                "thinking.type '{other}' is not valid: use enabled, adaptive or disabled."
            )))
        }
        None => return Err(bad("thinking.type is required and must be a string.")),
    }
    r.omit_text = match t.get("display") {
        None | Some(Value::Null) => false,
        Some(Value::String(d)) if d == "summarized" => false,
        Some(Value::String(d)) if d == "omitted" => !r.disabled,
        Some(Value::String(other)) => {
            return Err(bad(format!(
                "thinking.display '{other}' is not valid: use summarized or omitted."
            )))
        }
        Some(_) => return Err(bad("thinking.display must be a string.")),
    };
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Image, Message, Reasoning, Role, ToolCall};
    use serde_json::json;

    fn parse(v: Value) -> Result<Conversation, Error> {
        parse_messages_request(v.to_string().as_bytes(), 1 << 20, Purpose::Generate)
    }

    fn with(extra: Value) -> Value {
        let mut base = json!({"model": "claude-sonnet-4.5", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    }

    #[test]
    fn minimal_request_parses() {
        let c = parse(with(json!({"stream": true}))).unwrap();
        assert_eq!(c.model, "claude-sonnet-4.5");
        assert_eq!(c.max_output_tokens, Some(1024));
        assert!(c.stream);
        assert_eq!(c.messages, vec![Message::text(Role::User, "hi")]);
        assert_eq!(c.tool_choice, ToolChoice::Auto);
        assert_eq!(
            c.reasoning,
            ReasoningRequest {
                unasked: true,
                ..ReasoningRequest::default()
            }
        );
    }

    #[test]
    fn max_tokens_is_required_for_messages_but_not_for_count_tokens() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let e = parse(body.clone()).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("max_tokens"), "{e}");
        let c = parse_messages_request(body.to_string().as_bytes(), 1 << 20, Purpose::CountTokens)
            .unwrap();
        assert_eq!(c.max_output_tokens, None);
        let e = parse(with(json!({"max_tokens": "1024"}))).unwrap_err();
        assert!(e.to_string().contains("max_tokens"), "{e}");
        let e = parse(with(json!({"max_tokens": 0}))).unwrap_err();
        assert!(e.to_string().contains("max_tokens"), "{e}");
    }

    #[test]
    fn count_tokens_never_streams() {
        let body = with(json!({"stream": true}));
        let c = parse_messages_request(body.to_string().as_bytes(), 1 << 20, Purpose::CountTokens)
            .unwrap();
        assert!(!c.stream);
    }

    #[test]
    fn bad_inputs_name_the_field() {
        let cases = [
            (json!({"max_tokens": 1, "messages": []}), "model"),
            (json!({"model": "m", "max_tokens": 1}), "messages"),
            (
                json!({"model": "m", "max_tokens": 1, "messages": []}),
                "at least one",
            ),
            (
                with(json!({"messages": [{"role": "tool", "content": "x"}]})),
                "messages[0].role 'tool'",
            ),
            (
                with(json!({"messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "system", "content": [{"type": "image", "source": {}}]}
                ]})),
                "messages[1].content[0]: a system message may hold only text blocks, not 'image'",
            ),
            (
                with(json!({"messages": [{"role": "system", "content": 5}]})),
                "messages[0].content",
            ),
            (
                with(json!({"messages": [{"role": "user", "content": 5}]})),
                "messages[0].content",
            ),
            (
                with(
                    json!({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}),
                ),
                "messages[0].content[0].text",
            ),
            (with(json!({"stream": "yes"})), "stream"),
            (with(json!({"system": 5})), "system"),
            (with(json!({"system": [{"type": "image"}]})), "system[0]"),
            (with(json!({"tools": {}})), "tools"),
            (
                with(json!({"tools": [{"name": "f", "input_schema": "x"}]})),
                "tools[0].input_schema",
            ),
            (
                with(json!({"tools": [{"description": "no name"}]})),
                "tools[0].name",
            ),
            (with(json!({"tool_choice": "auto"})), "tool_choice"),
            (with(json!({"tool_choice": {"type": "tool"}})), "name"),
            (with(json!({"tool_choice": {"type": "maybe"}})), "maybe"),
            (with(json!({"stop_sequences": "END"})), "stop_sequences"),
            (
                with(json!({"thinking": {"type": "enabled"}})),
                "budget_tokens",
            ),
            (
                with(json!({"thinking": {"type": "sometimes"}})),
                "thinking.type",
            ),
            (with(json!({"thinking": true})), "thinking"),
            (
                with(json!({"thinking": {"type": "adaptive", "display": "hidden"}})),
                "thinking.display",
            ),
            (
                with(json!({"thinking": {"type": "adaptive", "display": false}})),
                "thinking.display",
            ),
            (
                with(json!({"output_config": {"effort": 3}})),
                "output_config.effort",
            ),
            (
                with(json!({"messages": [{"role": "user", "content": [
                    {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]})),
                "assistant messages",
            ),
            (
                with(
                    json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}]}),
                ),
                "messages[1].content[0].input",
            ),
            (
                with(json!({"messages": [{"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t", "is_error": "no"}]}]})),
                "is_error",
            ),
            (
                with(json!({"messages": [{"role": "user", "content": [
                    {"type": "tool_result", "content": "x"}]}]})),
                "tool_use_id",
            ),
        ];
        for (body, needle) in cases {
            let e = parse(body.clone()).unwrap_err();
            assert_eq!(e.status(), 400, "{body}");
            assert!(e.to_string().contains(needle), "{needle} not in: {e}");
        }
        assert_eq!(
            parse_messages_request(b"{oops", 10, Purpose::Generate)
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn mid_conversation_system_messages_stay_at_their_place_in_a_user_turn() {
        // Claude Code: the system message follows the last user turn.
        let c = parse(with(json!({"messages": [
            {"role": "user", "content": [{"type": "text", "text": "task"}]},
            {"role": "system", "content": "Agents: a, b"}
        ]})))
        .unwrap();
        assert_eq!(c.messages.len(), 1);
        assert_eq!(
            c.messages[0].text,
            "task\n\n<system-message>\nAgents: a, b\n</system-message>"
        );
        // Before a user turn it goes in front; between user and assistant after the user text;
        // text blocks are joined; an empty one adds nothing.
        let c = parse(with(json!({"messages": [
            {"role": "user", "content": "one"},
            {"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
            {"role": "assistant", "content": "two"},
            {"role": "system", "content": "C"},
            {"role": "system", "content": ""},
            {"role": "user", "content": "three"}
        ]})))
        .unwrap();
        let texts: Vec<&str> = c.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "one\n\n<system-message>\nA\nB\n</system-message>",
                "two",
                "<system-message>\nC\n</system-message>\n\nthree"
            ]
        );
        assert_eq!(c.system, "");
        // With no user turn next to it, it is a user turn of its own.
        let c = parse(with(json!({"messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a"},
            {"role": "system", "content": "S"}
        ]})))
        .unwrap();
        assert_eq!(c.messages.len(), 3);
        assert_eq!(c.messages[2].role, Role::User);
        assert_eq!(c.messages[2].text, "<system-message>\nS\n</system-message>");
    }

    #[test]
    fn claude_code_system_blocks_with_cache_control_join_with_newline() {
        let c = parse(with(json!({"system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."}]})))
        .unwrap();
        assert_eq!(c.system, "You are Claude Code.\nBe brief.");
        let c = parse(with(json!({"system": "plain"}))).unwrap();
        assert_eq!(c.system, "plain");
    }

    #[test]
    fn text_blocks_join_and_images_decode() {
        let c = parse(with(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>r</system-reminder>"},
            {"type": "text", "text": "what is this?", "cache_control": {"type": "ephemeral"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "base64", "data": "data:image/webp;base64,UklGRg=="}}]}]})))
        .unwrap();
        let m = &c.messages[0];
        assert_eq!(
            m.text,
            "<system-reminder>r</system-reminder>\nwhat is this?"
        );
        assert_eq!(
            m.images,
            vec![
                Image {
                    format: "png".into(),
                    data: "iVBORw0KGgo=".into()
                },
                Image {
                    format: "webp".into(),
                    data: "UklGRg==".into()
                }
            ]
        );
    }

    #[test]
    fn url_images_are_refused_and_large_images_are_413() {
        let e = parse(with(json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]})))
        .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("remote images not supported"), "{e}");
        let big = "A".repeat(4000);
        let body = with(json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big}}]}]}));
        let e = parse_messages_request(body.to_string().as_bytes(), 1000, Purpose::Generate)
            .unwrap_err();
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn tool_loop_with_images_in_results_and_errors_kept() {
        let c = parse(with(json!({"messages": [
            {"role": "user", "content": "take a screenshot"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Taking it."},
                {"type": "tool_use", "id": "toolu_01", "name": "screenshot", "input": {"full": true}},
                {"type": "tool_use", "id": "toolu_02", "name": "ls", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": [
                    {"type": "text", "text": "captured"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}]},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": "permission denied", "is_error": true,
                 "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "go on"}]}]})))
        .unwrap();
        let a = &c.messages[1];
        assert_eq!(a.role, Role::Assistant);
        assert_eq!(a.text, "Taking it.");
        assert_eq!(
            a.tool_calls,
            vec![
                ToolCall {
                    id: "toolu_01".into(),
                    name: "screenshot".into(),
                    input: json!({"full": true})
                },
                ToolCall {
                    id: "toolu_02".into(),
                    name: "ls".into(),
                    input: json!({})
                }
            ]
        );
        let u = &c.messages[2];
        assert_eq!(u.text, "go on");
        assert_eq!(u.tool_results.len(), 2);
        assert_eq!(u.tool_results[0].tool_use_id, "toolu_01");
        assert_eq!(u.tool_results[0].text, "captured");
        assert!(!u.tool_results[0].is_error);
        assert_eq!(u.tool_results[0].images[0].format, "jpeg");
        assert_eq!(u.tool_results[1].text, "permission denied");
        assert!(u.tool_results[1].is_error);
        assert!(u.images.is_empty());
    }

    #[test]
    fn thinking_blocks_replay_with_real_signatures_only() {
        let c = parse(with(json!({"messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIBxgCKkB"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va"},
                {"type": "text", "text": "Answer."}]},
            {"role": "user", "content": "more"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "tagged", "signature": "sig_0123456789abcdef0123456789abcdef"},
                {"type": "text", "text": "Again."}]},
            {"role": "user", "content": "end"}]})))
        .unwrap();
        assert_eq!(
            c.messages[1].reasoning,
            Some(Reasoning {
                text: "Let me think.".into(),
                signature: Some("EqQBCkYIBxgCKkB".into()),
                redacted: Some("EmwKAhgBEgy3va".into()),
            })
        );
        assert_eq!(c.messages[1].text, "Answer.");
        // Our own placeholder would be rejected by Kiro as a forged signature.
        assert_eq!(
            c.messages[3].reasoning,
            Some(Reasoning {
                text: "tagged".into(),
                signature: None,
                redacted: None,
            })
        );
        let e = parse(with(json!({"messages": [{"role": "user", "content": [
            {"type": "thinking", "thinking": "x", "signature": "s"}]}]})))
        .unwrap_err();
        assert!(e.to_string().contains("assistant messages"), "{e}");
    }

    #[test]
    fn a_block_shown_without_its_text_gives_kiro_back_what_it_signed() {
        let sig = crate::anthropic::signature::omitted_signature("EqQBreal", "Let me think.");
        let c = parse(with(json!({"messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "", "signature": sig},
                {"type": "text", "text": "Answer."}]},
            {"role": "user", "content": "more"}]})))
        .unwrap();
        assert_eq!(
            c.messages[1].reasoning,
            Some(Reasoning {
                text: "Let me think.".into(),
                signature: Some("EqQBreal".into()),
                redacted: None,
            })
        );
    }

    #[test]
    fn many_tools_keep_custom_ones_and_skip_server_tools() {
        let mut tools: Vec<Value> = (0..40)
            .map(|i| json!({"name": format!("tool_{i}"), "description": format!("does {i}"),
                "input_schema": {"type": "object", "properties": {"p": {"type": "string"}}, "required": ["p"]},
                "cache_control": {"type": "ephemeral"}}))
            .collect();
        tools.push(json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 5}));
        tools.push(json!({"type": "code_execution_20250522", "name": "code_execution"}));
        tools.push(
            json!({"type": "custom", "name": "mcp__x__y", "input_schema": {"type": "object"}}),
        );
        tools.push(json!({"name": "bare"}));
        let c = parse(with(json!({"tools": tools, "tool_choice": {"type": "any", "disable_parallel_tool_use": true}})))
            .unwrap();
        assert_eq!(c.tools.len(), 42);
        assert_eq!(c.tools[0].name, "tool_0");
        assert_eq!(c.tools[0].description, "does 0");
        assert_eq!(c.tools[0].schema["required"], json!(["p"]));
        assert_eq!(c.tools[40].name, "mcp__x__y");
        assert_eq!(c.tools[41].schema, Value::Null);
        assert!(c.tools.iter().all(|t| t.name != "web_search"));
        assert!(c
            .ignored_tools
            .contains(&"code_execution_20250522".to_string()));
        assert_eq!(c.tool_choice, ToolChoice::Required);
    }

    #[test]
    fn deferred_tools_reach_the_model_once_a_tool_reference_loads_them() {
        let tools = json!([
            {"name": "ToolSearch", "input_schema": {"type": "object"}},
            {"name": "WebSearch", "input_schema": {"type": "object"}, "defer_loading": true},
            {"name": "mcp__weather__report", "input_schema": {"type": "object"}, "defer_loading": true},
            {"name": "DeferredToolPlaceholder", "input_schema": {"type": "object"}, "defer_loading": true}
        ]);
        let first = parse(with(json!({"tools": tools}))).unwrap();
        let names: Vec<&str> = first.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ToolSearch"]);
        assert!(first.ignored_tools.is_empty());

        let after_search = parse(with(json!({"tools": tools, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "ToolSearch",
                "input": {"query": "weather"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "tool_reference", "tool_name": "mcp__weather__report"}]},
                {"type": "text", "text": "Tool loaded."}]}
        ]})))
        .unwrap();
        let names: Vec<&str> = after_search.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["ToolSearch", "mcp__weather__report"]);
        assert_eq!(
            after_search.messages[2].tool_results[0].text,
            "Tool loaded: mcp__weather__report"
        );

        let forced = parse(with(json!({"tools": tools,
            "tool_choice": {"type": "tool", "name": "WebSearch"}})))
        .unwrap();
        assert!(forced.tools.iter().any(|t| t.name == "WebSearch"));

        let e = parse(with(
            json!({"tools": [{"name": "f", "defer_loading": "yes"}]}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("tools[0].defer_loading"), "{e}");
        let e = parse(with(json!({"messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                "content": [{"type": "tool_reference"}]}]}
        ]})))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("messages[0].content[0].content[0].tool_name"),
            "{e}"
        );
    }

    #[test]
    fn a_system_message_output_config_sets_the_effort_from_its_place_on() {
        let c = parse(with(json!({"output_config": {"effort": "high"}, "messages": [
            {"role": "user", "content": "plan it"},
            {"role": "system", "content": "Environment: linux", "output_config": {"effort": "medium"}},
            {"role": "assistant", "content": "1. 2. 3."},
            {"role": "system", "output_config": {"effort": "low"}},
            {"role": "user", "content": "summarise"}
        ]})))
        .unwrap();
        assert_eq!(c.reasoning.effort.as_deref(), Some("low"));
        // The effort-only message adds no text.
        assert_eq!(c.messages.len(), 3);
        assert_eq!(c.messages[2].text, "summarise");
        let e = parse(with(json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "x", "output_config": {"effort": 3}}
        ]})))
        .unwrap_err();
        assert!(
            e.to_string().contains("messages[1].output_config.effort"),
            "{e}"
        );
    }

    #[test]
    fn tool_choice_variants() {
        for (v, want) in [
            (json!({"type": "auto"}), ToolChoice::Auto),
            (json!({"type": "any"}), ToolChoice::Required),
            (json!({"type": "none"}), ToolChoice::None),
            (
                json!({"type": "tool", "name": "get_weather"}),
                ToolChoice::Named("get_weather".into()),
            ),
        ] {
            assert_eq!(
                parse(with(json!({"tool_choice": v}))).unwrap().tool_choice,
                want
            );
        }
    }

    #[test]
    fn thinking_modes_map_to_the_reasoning_request() {
        let r = |extra: Value| parse(with(extra)).unwrap().reasoning;
        assert_eq!(
            r(json!({"thinking": {"type": "enabled", "budget_tokens": 8000}})),
            ReasoningRequest {
                effort: None,
                budget_tokens: Some(8000),
                disabled: false,
                unasked: false,
                omit_text: false,
            }
        );
        let display = |d: Value| r(json!({"thinking": {"type": "adaptive", "display": d}}));
        assert!(display(json!("omitted")).omit_text);
        assert!(!display(json!("summarized")).omit_text);
        assert!(!display(Value::Null).omit_text);
        assert!(!r(json!({"thinking": {"type": "adaptive"}})).omit_text);
        assert_eq!(
            r(json!({"thinking": {"type": "adaptive"}}))
                .effort
                .as_deref(),
            Some("high")
        );
        assert_eq!(
            r(json!({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}))
                .effort
                .as_deref(),
            Some("max")
        );
        assert_eq!(
            r(json!({"output_config": {"effort": "low"}}))
                .effort
                .as_deref(),
            Some("low")
        );
        let off = r(json!({"thinking": {"type": "disabled"}}));
        assert!(off.disabled);
        assert_eq!(off.effort, None);
        assert!(r(json!({})).unasked);
        assert!(!r(json!({"output_config": {"effort": "low"}})).unasked);
    }

    #[test]
    fn ignored_fields_and_stop_sequences() {
        let c = parse(with(
            json!({"metadata": {"user_id": "u"}, "temperature": 1, "top_p": 0.9,
            "top_k": 5, "stop_sequences": ["END", "\n\nHuman:"], "context_management": {}}),
        ))
        .unwrap();
        assert_eq!(c.stop_sequences, vec!["END", "\n\nHuman:"]);
    }

    #[test]
    fn unknown_blocks_are_skipped_and_text_documents_kept() {
        let c = parse(with(json!({"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc body"}},
            {"type": "web_search_tool_result", "tool_use_id": "srv", "content": []},
            {"type": "text", "text": "summarise"}]}]})))
        .unwrap();
        assert_eq!(c.messages[0].text, "doc body\nsummarise");
        let e = parse(with(json!({"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]})))
        .unwrap_err();
        assert!(e.to_string().contains("plain-text documents"), "{e}");
    }
}
