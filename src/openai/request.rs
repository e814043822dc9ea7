//! OpenAI Chat Completions request JSON → [`Conversation`].
//!
//! Lenient where clients differ (string or part-list content, flat Cursor-style tools), strict
//! where a guess would be wrong (types, roles, tool arguments that are not JSON): those get a 400
//! naming the field.

use serde_json::{Map, Value};

use crate::conversation::{
    Conversation, Image, Message, OutputFormat, Reasoning, ReasoningRequest, Role, ToolCall,
    ToolChoice, ToolResult, ToolSpec,
};
use crate::error::Error;

/// A parsed Chat Completions request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub conversation: Conversation,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// Parse the body of `POST /v1/chat/completions`.
pub fn parse_chat_request(body: &[u8], max_image_bytes: usize) -> Result<ChatRequest, Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("The request body is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("The request body must be a JSON object."))?;
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
    let mut conv = Conversation {
        model,
        stream: parse_bool(obj, "stream")?.unwrap_or(false),
        ..Conversation::default()
    };
    (conv.system, conv.messages) = parse_messages(messages, max_image_bytes)?;
    if conv.messages.is_empty() {
        return Err(bad(
            "'messages' has no user or assistant message (only system messages).",
        ));
    }
    parse_options(obj, &mut conv)?;
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(ChatRequest {
        conversation: conv,
        include_usage,
    })
}

/// `messages` → the system prompt (system and developer messages joined) and the turns.
fn parse_messages(
    messages: &[Value],
    max_image_bytes: usize,
) -> Result<(String, Vec<Message>), Error> {
    let mut system_parts: Vec<String> = Vec::new();
    let mut turns = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let m = m
            .as_object()
            .ok_or_else(|| bad(format!("messages[{i}] must be an object.")))?;
        let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
            bad(format!(
                "messages[{i}].role is required and must be a string."
            ))
        })?;
        match role {
            "system" | "developer" => {
                let (text, _) = content_parts(m.get("content"), i, max_image_bytes)?;
                system_parts.push(text);
            }
            "user" => {
                let (text, images) = content_parts(m.get("content"), i, max_image_bytes)?;
                let mut msg = Message::text(Role::User, text);
                msg.images = images;
                msg.tool_results = anthropic_style_results(m.get("content"), i, max_image_bytes)?;
                turns.push(msg);
            }
            "assistant" => turns.push(parse_assistant(m, i)?),
            "tool" | "function" => turns.push(tool_message(m, i, max_image_bytes)?),
            other => {
                return Err(bad(format!(
                    "messages[{i}].role '{other}' is not supported: use system, developer, user, assistant or tool."
                )))
            }
        }
    }
    let system = system_parts
        .iter()
        .map(|s| format!("{s}\n"))
        .collect::<String>()
        .trim()
        .to_string();
    Ok((system, turns))
}

/// A `tool` (or legacy `function`) message: the result of one call, as a user turn.
fn tool_message(
    m: &Map<String, Value>,
    i: usize,
    max_image_bytes: usize,
) -> Result<Message, Error> {
    let (text, images) = content_parts(m.get("content"), i, max_image_bytes)?;
    let id = m
        .get("tool_call_id")
        .or_else(|| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut msg = Message::text(Role::User, "");
    msg.tool_results.push(ToolResult {
        tool_use_id: id,
        text,
        is_error: false,
        images,
    });
    Ok(msg)
}

/// Everything of a Chat request besides its messages: tools, reasoning, limits, stop sequences,
/// the answer format, and the fields Kiro has no room for (`n` above 1 is refused: Kiro produces
/// one choice; `logprobs` is accepted and answered with `logprobs: null`).
fn parse_options(obj: &Map<String, Value>, conv: &mut Conversation) -> Result<(), Error> {
    // `user` names the end user, not the conversation: with the first message it does.
    conv.client_key = obj
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(|u| format!("openai-user\u{1}{u}\u{1}{}", conv.first_user_text()));
    conv.tools = parse_tools(obj.get("tools"))?;
    conv.tool_choice = parse_tool_choice(obj.get("tool_choice"))?;
    conv.reasoning = ReasoningRequest {
        effort: obj
            .get("reasoning_effort")
            .or_else(|| obj.get("reasoning").and_then(|r| r.get("effort")))
            .and_then(Value::as_str)
            .map(str::to_string),
        budget_tokens: None,
        disabled: false,
        unasked: false,
        omit_text: false,
    };
    if conv.reasoning.effort.as_deref() == Some("none") {
        conv.reasoning.disabled = true;
    }
    conv.max_output_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_u64))
        .map(|n| n.min(u32::MAX as u64) as u32);
    conv.stop_sequences = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("'stop' must be a string or an array of strings."))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("'stop' must be a string or an array of strings.")),
    };
    match obj.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(n) if n.as_u64().is_some_and(|n| n > 1) => {
            return Err(bad(format!(
                "n must be 1: this gateway produces one choice per request (got {n}); send several requests instead."
            )))
        }
        Some(_) => return Err(bad("n must be a positive whole number.")),
    }
    conv.single_tool_call = parse_bool(obj, "parallel_tool_calls")? == Some(false);
    conv.output_format = match obj.get("response_format") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) => {
            let kind = f.get("type").and_then(Value::as_str).ok_or_else(|| {
                bad("response_format.type is required: text, json_object or json_schema.")
            })?;
            let spec = f.get("json_schema");
            OutputFormat::from_request(
                kind,
                spec,
                "response_format.type",
                "response_format.json_schema",
            )?
        }
        Some(_) => return Err(bad("response_format must be an object.")),
    };
    conv.web_search = match obj.get("web_search_options") {
        None | Some(Value::Null) => None,
        Some(o) => Some(crate::websearch::parse_chat_options(o)?),
    };
    Ok(())
}

fn parse_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!("'{key}' must be true or false."))),
    }
}

fn parse_assistant(m: &Map<String, Value>, i: usize) -> Result<Message, Error> {
    let (text, _) = content_parts(m.get("content"), i, usize::MAX)?;
    let mut msg = Message::text(Role::Assistant, text);
    if let Some(calls) = m.get("tool_calls").filter(|v| !v.is_null()) {
        let calls = calls
            .as_array()
            .ok_or_else(|| bad(format!("messages[{i}].tool_calls must be an array.")))?;
        for (j, c) in calls.iter().enumerate() {
            let f = c.get("function").unwrap_or(c);
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                bad(format!(
                    "messages[{i}].tool_calls[{j}].function.name is required."
                ))
            })?;
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let input = match f.get("arguments") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
                Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                    Ok(v) => v,
                    // A call Kiro cut off: its fragments were streamed before the cut
                    // (finish_reason "length"), and clients send them back as they got them
                    // (LangChain re-sends invalid tool calls). It never ran, so it becomes a line
                    // of text; a 400 would fail every later turn.
                    Err(_) if is_cut_off(s) => {
                        let call = if id.is_empty() {
                            format!("'{name}'")
                        } else {
                            format!("'{name}' ({id})")
                        };
                        if !msg.text.is_empty() {
                            msg.text.push_str("\n\n");
                        }
                        msg.text.push_str(&format!(
                            "[The tool call {call} was cut off before its arguments were complete, so it was not run.]"
                        ));
                        continue;
                    }
                    Err(e) => {
                        return Err(bad(format!(
                            "messages[{i}].tool_calls[{j}] ('{name}') has arguments that are not valid JSON: {e}"
                        )))
                    }
                },
                Some(o @ Value::Object(_)) => o.clone(),
                Some(_) => {
                    return Err(bad(format!(
                        "messages[{i}].tool_calls[{j}].function.arguments must be a JSON string."
                    )))
                }
            };
            msg.tool_calls.push(ToolCall {
                id,
                name: name.to_string(),
                input,
            });
        }
    }
    msg.reasoning = replayed_reasoning(m);
    Ok(msg)
}

/// The reasoning of an assistant message sent back. `reasoning_signature` is the gateway's own
/// field (Chat Completions has none): native reasoning is only replayed to Kiro with the
/// signature it came with.
fn replayed_reasoning(m: &Map<String, Value>) -> Option<Reasoning> {
    let non_empty = |key: &str| {
        m.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let text = non_empty("reasoning_content");
    let signature = non_empty("reasoning_signature");
    (text.is_some() || signature.is_some()).then(|| Reasoning {
        text: text.unwrap_or_default(),
        signature,
        redacted: None,
    })
}

/// Arguments of a streamed call that Kiro cut off, as the client got them: JSON that just stops.
fn is_cut_off(args: &str) -> bool {
    serde_json::from_str::<Value>(args).is_err_and(|e| e.is_eof())
}

/// Text and images of a `content` field (string, list of parts, or null).
pub fn content_parts(
    content: Option<&Value>,
    i: usize,
    max_image_bytes: usize,
) -> Result<(String, Vec<Image>), Error> {
    match content {
        None | Some(Value::Null) => Ok((String::new(), Vec::new())),
        Some(Value::String(s)) => Ok((s.clone(), Vec::new())),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") | Some("input_text") | Some("output_text") => {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            text.push_str(t);
                        }
                    }
                    Some("image_url") | Some("input_image") => {
                        let url = p
                            .get("image_url")
                            .map(|u| u.get("url").unwrap_or(u))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                bad(format!("messages[{i}]: image part without a URL."))
                            })?;
                        images.push(Image::from_data_url(url, max_image_bytes)?);
                    }
                    Some("tool_result") => {}
                    _ => {
                        if let Some(t) =
                            p.as_str().or_else(|| p.get("text").and_then(Value::as_str))
                        {
                            text.push_str(t);
                        }
                    }
                }
            }
            Ok((text, images))
        }
        Some(_) => Err(bad(format!(
            "messages[{i}].content must be a string, an array of parts, or null."
        ))),
    }
}

/// Anthropic-style `tool_result` blocks some clients put into OpenAI user messages.
fn anthropic_style_results(
    content: Option<&Value>,
    i: usize,
    max_image_bytes: usize,
) -> Result<Vec<ToolResult>, Error> {
    let Some(Value::Array(parts)) = content else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for p in parts {
        if p.get("type").and_then(Value::as_str) != Some("tool_result") {
            continue;
        }
        let Some(id) = p.get("tool_use_id").and_then(Value::as_str) else {
            continue;
        };
        let (text, images) = content_parts(p.get("content"), i, max_image_bytes)?;
        out.push(ToolResult {
            tool_use_id: id.to_string(),
            text,
            is_error: p.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            images,
        });
    }
    Ok(out)
}

fn parse_tools(tools: Option<&Value>) -> Result<Vec<ToolSpec>, Error> {
    let list = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("'tools' must be an array.")),
    };
    let mut out = Vec::new();
    for (i, t) in list.iter().enumerate() {
        if let Some(kind) = t.get("type").and_then(Value::as_str) {
            if kind != "function" {
                continue;
            }
        }
        let (name, description, schema) =
            if let Some(f) = t.get("function").filter(|f| f.is_object()) {
                (
                    f.get("name"),
                    f.get("description"),
                    f.get("parameters").cloned(),
                )
            } else if t.get("name").is_some() {
                (
                    t.get("name"),
                    t.get("description"),
                    t.get("input_schema")
                        .or_else(|| t.get("parameters"))
                        .cloned(),
                )
            } else {
                continue;
            };
        let name = name
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("tools[{i}] needs a function name.")))?;
        out.push(ToolSpec {
            name: name.to_string(),
            description: description
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            schema: schema.unwrap_or(Value::Null),
        });
    }
    Ok(out)
}

fn parse_tool_choice(v: Option<&Value>) -> Result<ToolChoice, Error> {
    Ok(match v {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" | "any" => ToolChoice::Required,
            other => return Err(bad(format!("tool_choice '{other}' is not valid."))),
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str);
            match name {
                Some(n) => ToolChoice::Named(n.to_string()),
                None => return Err(bad("tool_choice must name a function.")),
            }
        }
        Some(_) => return Err(bad("tool_choice must be a string or an object.")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<ChatRequest, Error> {
        parse_chat_request(v.to_string().as_bytes(), 1 << 20)
    }

    #[test]
    fn system_messages_join_and_roles_map() {
        let r = parse(serde_json::json!({"model":"m","messages":[
            {"role":"system","content":"A"},{"role":"developer","content":[{"type":"text","text":"B"}]},
            {"role":"user","content":"hi"}]}))
        .unwrap();
        assert_eq!(r.conversation.system, "A\nB");
        assert_eq!(r.conversation.messages.len(), 1);
    }

    #[test]
    fn bad_inputs_name_the_field() {
        for (body, needle) in [
            (serde_json::json!({"messages":[]}), "model"),
            (serde_json::json!({"model":"m"}), "messages"),
            (
                serde_json::json!({"model":"m","messages":[]}),
                "at least one",
            ),
            (serde_json::json!({"model":"m","messages":"x"}), "array"),
            (
                serde_json::json!({"model":"m","messages":[{"role":"wizard","content":"x"}]}),
                "wizard",
            ),
            (
                serde_json::json!({"model":"m","messages":[{"role":"user","content":5}]}),
                "content",
            ),
            (
                serde_json::json!({"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}),
                "stream",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
        let e = parse_chat_request(b"{not json", 10).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn tool_call_arguments_must_be_json() {
        let e = parse(serde_json::json!({"model":"m","messages":[
            {"role":"user","content":"x"},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{bad"}}]}]}))
        .unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
    }

    #[test]
    fn cut_off_tool_call_arguments_become_text_not_a_400() {
        let r = parse(serde_json::json!({"model":"m","messages":[
            {"role":"user","content":"x"},
            {"role":"assistant","content":"Writing.","tool_calls":[
                {"id":"c1","type":"function","function":{"name":"write","arguments":"{\"path\":\"a\",\"text\":\"lo"}},
                {"id":"c2","type":"function","function":{"name":"read","arguments":"{\"path\":\"b\"}"}}]}]}))
        .unwrap();
        let m = &r.conversation.messages[1];
        assert_eq!(m.tool_calls.len(), 1);
        assert_eq!(m.tool_calls[0].id, "c2");
        assert_eq!(
            m.text,
            "Writing.\n\n[The tool call 'write' (c1) was cut off before its arguments were complete, so it was not run.]"
        );
        // As streamed: JSON that just stops.
        for args in [
            "{\"a\":\"b",
            "{\"a\":[1,2",
            "{\"a\":\"b\\",
            "{\"a\":1,",
            "{",
        ] {
            assert!(is_cut_off(args), "{args}");
        }
        for args in ["{bad", "{\"a\":1}}", "{\"a\":\"b\"}]", "[1]]"] {
            assert!(!is_cut_off(args), "{args}");
        }
    }

    #[test]
    fn images_from_data_urls_and_remote_urls_refused() {
        let r = parse(serde_json::json!({"model":"m","messages":[{"role":"user","content":[
            {"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}))
        .unwrap();
        assert_eq!(r.conversation.messages[0].images[0].format, "png");
        let e = parse(
            serde_json::json!({"model":"m","messages":[{"role":"user","content":[
            {"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("Remote image URLs"));
        let big = "A".repeat(4000);
        let e = parse_chat_request(
            serde_json::json!({"model":"m","messages":[{"role":"user","content":[
                {"type":"image_url","image_url":{"url":format!("data:image/png;base64,{big}")}}]}]})
            .to_string()
            .as_bytes(),
            1000,
        )
        .unwrap_err();
        assert_eq!(e.status(), 413);
    }

    #[test]
    fn tools_standard_and_flat_and_choice() {
        let r = parse(
            serde_json::json!({"model":"m","messages":[{"role":"user","content":"x"}],
            "tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}},
                     {"name":"b","description":"flat","input_schema":{"type":"object"}},
                     {"type":"web_search"}],
            "tool_choice":{"type":"function","function":{"name":"a"}}}),
        )
        .unwrap();
        let names: Vec<_> = r
            .conversation
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(r.conversation.tool_choice, ToolChoice::Named("a".into()));
    }
}
