//! The `input` items of a Responses request → the neutral [`Message`]s.
//!
//! Assistant-side items of one turn (reasoning, text, tool calls) become one assistant message,
//! and consecutive tool outputs one user message, because that is the shape Kiro's history takes.
//! Items that only record what OpenAI's servers did (web searches, compaction) are kept where they
//! carry meaning, as text. Nothing here knows Kiro, the store or HTTP.

use serde_json::{Map, Value};

use crate::conversation::{Image, Message, Reasoning, Role, ToolCall, ToolResult};
use crate::error::Error;
use crate::websearch::{self, SearchFailure, SearchHit};

use super::tools::{kiro_name, CUSTOM_INPUT, TOOL_SEARCH};

/// The prefix of the `encrypted_content` the gateway hands out for a reasoning item: the Kiro
/// signature follows it. A reasoning item replayed without it was minted elsewhere (by OpenAI, for
/// a conversation that moved here) and its content must not reach Kiro as a signature.
pub const SIGNATURE_PREFIX: &str = "kgw1:";

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// The assistant turn being assembled from consecutive assistant-side items.
fn assistant_turn(out: &mut Vec<Message>) -> &mut Message {
    if out.last().is_none_or(|m| m.role != Role::Assistant) {
        out.push(Message::text(Role::Assistant, ""));
    }
    let last = out.len() - 1;
    &mut out[last] // ok: an assistant message was just ensured
}

/// The user turn being assembled from consecutive user-side items.
fn user_turn(out: &mut Vec<Message>) -> &mut Message {
    if out.last().is_none_or(|m| m.role != Role::User) {
        out.push(Message::text(Role::User, ""));
    }
    let last = out.len() - 1;
    &mut out[last] // ok: a user message was just ensured
}

fn append_text(to: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !to.is_empty() {
        to.push('\n');
    }
    to.push_str(text);
}

/// The messages of `input` items; system and developer messages go to `system` instead.
pub fn parse_items(
    items: &[Value],
    max_image_bytes: usize,
    system: &mut Vec<String>,
) -> Result<Vec<Message>, Error> {
    let mut out: Vec<Message> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let obj = item
            .as_object()
            .ok_or_else(|| bad(format!("input[{i}] must be an object.")))?;
        match item_kind(obj, i)? {
            "message" => parse_message(obj, i, max_image_bytes, system, &mut out)?,
            "function_call" => {
                let call = parse_function_call(obj, i)?;
                assistant_turn(&mut out).tool_calls.push(call);
            }
            "custom_tool_call" => {
                let call = parse_custom_call(obj, i)?;
                assistant_turn(&mut out).tool_calls.push(call);
            }
            "function_call_output" | "custom_tool_call_output" => {
                let result = parse_tool_output(obj, i, max_image_bytes)?;
                user_turn(&mut out).tool_results.push(result);
            }
            "local_shell_call" => {
                append_text(&mut assistant_turn(&mut out).text, &local_shell_call_text(obj))
            }
            "local_shell_call_output" => {
                append_text(&mut user_turn(&mut out).text, &local_shell_output_text(obj))
            }
            "compaction" | "compaction_summary" => {
                if let Some(text) = compaction_text(obj) {
                    append_text(&mut user_turn(&mut out).text, &text);
                }
            }
            "additional_tools" => {} // read with the tools
            "web_search_call" => {
                let text = web_search_text(obj);
                append_text(&mut assistant_turn(&mut out).text, text.trim_end());
            }
            "tool_search_call" => {
                let call = parse_tool_search_call(obj, i)?;
                assistant_turn(&mut out).tool_calls.push(call);
            }
            "tool_search_output" => {
                let result = ToolResult {
                    tool_use_id: required_str(obj, "call_id", i)?.to_string(),
                    text: loaded_tools_text(obj.get("tools")),
                    is_error: false,
                    images: Vec::new(),
                };
                user_turn(&mut out).tool_results.push(result);
            }
            kind if REPLAYED_SERVER_ITEMS.contains(&kind) => {
                log::debug!("input[{i}]: leaving out a replayed '{kind}' item");
            }
            "reasoning" => push_reasoning(&mut out, parse_reasoning(obj)),
            "item_reference" => {
                return Err(bad(format!(
                    "input[{i}]: item references are not supported; send the item itself, or continue with previous_response_id."
                )))
            }
            other => {
                return Err(bad(format!(
                    "input[{i}].type '{other}' is not an input item of the Responses API: use message, function_call, function_call_output, custom_tool_call, custom_tool_call_output or reasoning."
                )))
            }
        }
    }
    Ok(out)
}

/// An item's `type`; `{role, content}` without a type is the short form of a message item.
fn item_kind(obj: &Map<String, Value>, i: usize) -> Result<&str, Error> {
    match obj.get("type") {
        None | Some(Value::Null) if obj.contains_key("role") => Ok("message"),
        Some(Value::String(s)) => Ok(s.as_str()),
        _ => Err(bad(format!("input[{i}].type is required."))),
    }
}

/// A `function_call_output` or `custom_tool_call_output` item: text, or content parts.
fn parse_tool_output(
    obj: &Map<String, Value>,
    i: usize,
    max_image_bytes: usize,
) -> Result<ToolResult, Error> {
    let call_id = required_str(obj, "call_id", i)?;
    let (text, images) = match obj.get("output") {
        Some(Value::String(s)) => (s.clone(), Vec::new()),
        Some(Value::Array(parts)) => content_parts(parts, i, max_image_bytes)?,
        _ => {
            return Err(bad(format!(
                "input[{i}].output must be a string or an array of content parts."
            )))
        }
    };
    Ok(ToolResult {
        tool_use_id: call_id.to_string(),
        text,
        is_error: false,
        images,
    })
}

/// A `local_shell_call` item as assistant text: Kiro only takes calls of tools the request
/// defines, and Codex defines no tool for these.
fn local_shell_call_text(obj: &Map<String, Value>) -> String {
    let id = obj
        .get("call_id")
        .or_else(|| obj.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let action = obj.get("action").cloned().unwrap_or(Value::Null);
    format!("[Tool: local_shell ({id})]\n{action}")
}

/// A `local_shell_call_output` item as user text (see [`local_shell_call_text`]).
fn local_shell_output_text(obj: &Map<String, Value>) -> String {
    let id = obj.get("call_id").and_then(Value::as_str).unwrap_or("");
    let output = match obj.get("output") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    format!("[Tool Result ({id})]\n{output}")
}

/// A compaction item as user text: the encrypted part is OpenAI's; a readable summary, when there
/// is one, is the earlier conversation in short.
fn compaction_text(obj: &Map<String, Value>) -> Option<String> {
    let summary = summary_text(obj);
    (!summary.is_empty()).then(|| format!("[Summary of the earlier conversation]\n{summary}"))
}

/// A search made earlier, as assistant text: its query and the pages it listed.
fn web_search_text(obj: &Map<String, Value>) -> String {
    let action = obj.get("action");
    let query = action
        .and_then(|a| a.get("query"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let sources = action.and_then(|a| a.get("sources"));
    let hits: Vec<SearchHit> = sources
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|s| s.get("url").and_then(Value::as_str))
                .map(|u| SearchHit {
                    title: u.to_string(),
                    url: u.to_string(),
                    ..SearchHit::default()
                })
                .collect()
        })
        .unwrap_or_default();
    match obj.get("status").and_then(Value::as_str) {
        Some("failed") => websearch::history_text(query, &Err(SearchFailure::Unavailable)),
        _ if sources.is_some() => websearch::history_text(query, &Ok(hits)),
        // Sent without its sources: what was found is not known here.
        _ => format!("[Searched the web for \"{query}\"]"),
    }
}

/// A `tool_search_call` item: a call of the tool Kiro knows as the tool search.
fn parse_tool_search_call(obj: &Map<String, Value>, i: usize) -> Result<ToolCall, Error> {
    let call_id = required_str(obj, "call_id", i)?;
    let input = match obj.get("arguments") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let input = if input.is_object() {
        input
    } else {
        Value::Object(Map::new())
    };
    Ok(ToolCall {
        id: call_id.to_string(),
        name: TOOL_SEARCH.to_string(),
        input,
    })
}

/// Put a reasoning item on the assistant turn. A second reasoning block in one turn starts a new
/// assistant message, so that each signature stays with the text it signs.
fn push_reasoning(out: &mut Vec<Message>, r: Reasoning) {
    let turn = assistant_turn(out);
    if turn.reasoning.is_some() || !turn.text.is_empty() || !turn.tool_calls.is_empty() {
        out.push(Message::text(Role::Assistant, ""));
    }
    if let Some(last) = out.last_mut() {
        last.reasoning = Some(r);
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, key: &str, i: usize) -> Result<&'a str, Error> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            bad(format!(
                "input[{i}].{key} is required and must be a string."
            ))
        })
}

fn parse_message(
    obj: &Map<String, Value>,
    i: usize,
    max_image_bytes: usize,
    system: &mut Vec<String>,
    out: &mut Vec<Message>,
) -> Result<(), Error> {
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("input[{i}].role is required and must be a string.")))?;
    let (text, images) = match obj.get("content") {
        Some(Value::String(s)) => (s.clone(), Vec::new()),
        Some(Value::Array(parts)) => content_parts(parts, i, max_image_bytes)?,
        None | Some(Value::Null) => (String::new(), Vec::new()),
        Some(_) => {
            return Err(bad(format!(
                "input[{i}].content must be a string or an array of content parts."
            )))
        }
    };
    match role {
        "system" | "developer" => {
            if !images.is_empty() {
                return Err(bad(format!(
                    "input[{i}]: a {role} message cannot contain images."
                )));
            }
            system.push(text);
        }
        "user" => {
            let turn = user_turn(out);
            append_text(&mut turn.text, &text);
            turn.images.extend(images);
        }
        "assistant" => {
            let turn = assistant_turn(out);
            append_text(&mut turn.text, &text);
        }
        other => {
            return Err(bad(format!(
            "input[{i}].role '{other}' is not supported: use user, assistant, system or developer."
        )))
        }
    }
    Ok(())
}

/// Text and images of a list of content parts.
fn content_parts(
    parts: &[Value],
    i: usize,
    max_image_bytes: usize,
) -> Result<(String, Vec<Image>), Error> {
    let mut text = String::new();
    let mut images = Vec::new();
    for (j, p) in parts.iter().enumerate() {
        let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "input_text" | "output_text" | "text" => {
                let t = p.get("text").and_then(Value::as_str).ok_or_else(|| {
                    bad(format!("input[{i}].content[{j}] ({kind}) has no text."))
                })?;
                if !text.is_empty() && !t.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            "refusal" => {
                if let Some(t) = p.get("refusal").and_then(Value::as_str) {
                    text.push_str(t);
                }
            }
            "input_image" => {
                if p.get("file_id").is_some_and(|f| !f.is_null()) {
                    return Err(bad(format!(
                        "input[{i}].content[{j}]: images by file_id are not supported (there is no Files API here); send the image inline as a data: URL."
                    )));
                }
                let url = p
                    .get("image_url")
                    .map(|u| u.get("url").unwrap_or(u))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(format!(
                            "input[{i}].content[{j}]: input_image needs an image_url (a data: URL)."
                        ))
                    })?;
                images.push(Image::from_data_url(url, max_image_bytes)?);
            }
            "input_file" => {
                return Err(bad(format!(
                    "input[{i}].content[{j}]: input_file is not supported; send the file's text as input_text."
                )))
            }
            other => {
                return Err(bad(format!(
                    "input[{i}].content[{j}].type '{other}' is not supported: use input_text or input_image."
                )))
            }
        }
    }
    Ok((text, images))
}

/// Items that record what OpenAI's servers (or client features the gateway has no tool for) did;
/// clients replay them with the rest of the conversation. Kiro has nothing to carry them in.
const REPLAYED_SERVER_ITEMS: [&str; 15] = [
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "ghost_snapshot",
];

/// The readable text of a compaction item's `summary` or `content` parts, if it has any.
fn summary_text(obj: &Map<String, Value>) -> String {
    ["summary", "content"]
        .iter()
        .filter_map(|k| obj.get(*k))
        .flat_map(|v| match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the model reads as the result of a tool search: the tools it loaded, by their Kiro names
/// (the tools themselves are offered to Kiro from this request on).
fn loaded_tools_text(tools: Option<&Value>) -> String {
    let mut names = Vec::new();
    for t in tools.and_then(Value::as_array).into_iter().flatten() {
        let ns = t.get("name").and_then(Value::as_str);
        match t.get("tools").and_then(Value::as_array) {
            Some(inner) if t.get("type").and_then(Value::as_str) == Some("namespace") => {
                for f in inner {
                    if let Some(name) = f.get("name").and_then(Value::as_str) {
                        names.push(kiro_name(ns, name));
                    }
                }
            }
            _ => names.extend(ns.map(str::to_string)),
        }
    }
    if names.is_empty() {
        "No tools matched.".to_string()
    } else {
        format!("These tools can be called now: {}", names.join(", "))
    }
}

/// The `namespace` of a call item, when it has one.
pub(super) fn namespace_of(obj: &Map<String, Value>) -> Option<&str> {
    obj.get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// A `custom_tool_call` item: the call of a freeform tool, whose text becomes the one string
/// parameter of the tool Kiro knows.
fn parse_custom_call(obj: &Map<String, Value>, i: usize) -> Result<ToolCall, Error> {
    let call_id = required_str(obj, "call_id", i)?;
    let name = required_str(obj, "name", i)?;
    let input = match obj.get("input") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => return Err(bad(format!("input[{i}].input must be a string."))),
    };
    let mut args = Map::new();
    args.insert(CUSTOM_INPUT.to_string(), Value::String(input));
    Ok(ToolCall {
        id: call_id.to_string(),
        name: kiro_name(namespace_of(obj), name),
        input: Value::Object(args),
    })
}

fn parse_function_call(obj: &Map<String, Value>, i: usize) -> Result<ToolCall, Error> {
    let call_id = required_str(obj, "call_id", i)?;
    let name = required_str(obj, "name", i)?;
    let input = match obj.get("arguments") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Err(bad(format!(
                    "input[{i}] ('{name}'): arguments must be a JSON object."
                )))
            }
            Err(e) => {
                return Err(bad(format!(
                    "input[{i}] ('{name}') has arguments that are not valid JSON: {e}"
                )))
            }
        },
        Some(o @ Value::Object(_)) => o.clone(),
        Some(_) => return Err(bad(format!("input[{i}].arguments must be a JSON string."))),
    };
    Ok(ToolCall {
        id: call_id.to_string(),
        name: kiro_name(namespace_of(obj), name),
        input,
    })
}

/// A `reasoning` item: its summary (or full reasoning text) and the signature Kiro needs to
/// accept it again, which we hand out as `encrypted_content`.
fn parse_reasoning(obj: &Map<String, Value>) -> Reasoning {
    let texts = |key: &str| -> String {
        obj.get(key)
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .unwrap_or_default()
    };
    let mut text = texts("summary");
    if text.is_empty() {
        text = texts("content");
    }
    Reasoning {
        text,
        // Only a signature this gateway handed out goes back to Kiro; one minted elsewhere would
        // get Kiro's 400 for an invalid signature.
        signature: obj
            .get("encrypted_content")
            .and_then(Value::as_str)
            .and_then(|s| s.strip_prefix(SIGNATURE_PREFIX))
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        redacted: None,
    }
}

/// Join consecutive messages of the same role (history and new input can meet that way, and
/// Kiro wants turns to alternate). An assistant message with its own reasoning is kept apart.
pub fn merge_same_role(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some(prev) if prev.role == m.role && m.reasoning.is_none() => {
                append_text(&mut prev.text, &m.text);
                prev.images.extend(m.images);
                prev.tool_calls.extend(m.tool_calls);
                prev.tool_results.extend(m.tool_results);
            }
            _ => out.push(m),
        }
    }
    out
}
