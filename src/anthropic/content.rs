//! The messages of an Anthropic request → conversation turns: content blocks (text, images,
//! documents, tool uses and results, thinking, replayed web searches) and the mid-conversation
//! `system` messages folded in at their place.

use serde_json::{Map, Value};

use crate::conversation::{Image, Message, Reasoning, Role, ToolCall, ToolResult};
use crate::error::Error;
use crate::websearch::{self, codec, SearchFailure, SearchHit};

use super::request::bad;
use super::signature::{is_placeholder_signature, read_omitted_signature};

/// The messages, with mid-conversation `system` messages (Claude Code sends them after a user turn)
/// folded into the user turn next to them: Kiro has no system role, and the model must see them at
/// their place in the conversation, not moved to the top.
///
/// A system message goes in front of the user turn that follows it; when an assistant turn or the
/// end of the conversation follows, it goes after the user turn before it; with no user turn on
/// either side it becomes a user turn of its own.
pub(super) fn parse_messages(
    messages: &[Value],
    max_image_bytes: usize,
) -> Result<Vec<Message>, Error> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m.get("role").and_then(Value::as_str) == Some("system") {
            let text = parse_system_message(m, i)?;
            if !text.trim().is_empty() {
                pending.push(marked_system_text(&text));
            }
            continue;
        }
        let mut msg = parse_message(m, i, max_image_bytes)?;
        if !pending.is_empty() {
            if msg.role == Role::User {
                pending.push(std::mem::take(&mut msg.text));
                msg.text = join_non_empty(&pending);
                pending.clear();
            } else {
                place_after_user(&mut out, std::mem::take(&mut pending));
            }
        }
        out.push(msg);
    }
    if !pending.is_empty() {
        place_after_user(&mut out, pending);
    }
    Ok(out)
}

/// Append system texts to the last message when it is a user turn, else add a user turn.
fn place_after_user(out: &mut Vec<Message>, texts: Vec<String>) {
    match out.last_mut() {
        Some(last) if last.role == Role::User => {
            let mut parts = vec![std::mem::take(&mut last.text)];
            parts.extend(texts);
            last.text = join_non_empty(&parts);
        }
        _ => out.push(Message::text(Role::User, join_non_empty(&texts))),
    }
}

fn join_non_empty(parts: &[String]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// How a mid-conversation system message reads inside a user turn.
fn marked_system_text(text: &str) -> String {
    format!("<system-message>\n{text}\n</system-message>")
}

/// The text of a `{"role": "system"}` message: a string or text blocks; any other block is refused
/// by name (an image or a tool result cannot be an instruction). A message that only changes the
/// effort (`output_config`, see [`per_message_effort`]) may have no content at all.
fn parse_system_message(m: &Value, i: usize) -> Result<String, Error> {
    match m.get("content") {
        None | Some(Value::Null) if m.get("output_config").is_some_and(Value::is_object) => {
            Ok(String::new())
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                match (block_type(b), b.get("text")) {
                    (Some("text"), Some(Value::String(t))) => parts.push(t.as_str()),
                    (Some("text"), _) => {
                        return Err(bad(format!(
                            "messages[{i}].content[{j}].text must be a string."
                        )))
                    }
                    (kind, _) => {
                        return Err(bad(format!(
                            "messages[{i}].content[{j}]: a system message may hold only text blocks, not '{}'.",
                            kind.unwrap_or("(no type)")
                        )))
                    }
                }
            }
            Ok(parts.join("\n"))
        }
        None | Some(Value::Null) => Err(bad(format!("messages[{i}].content is required."))),
        Some(_) => Err(bad(format!(
            "messages[{i}].content must be a string or an array of text blocks."
        ))),
    }
}

/// The effort of the last `output_config` on a `system` message, which sets the effort from its
/// place on (Claude Code sends one with its environment message): the answer comes after all of
/// them, so the last one is what it is made with.
pub(super) fn per_message_effort(messages: &[Value]) -> Result<Option<String>, Error> {
    let mut effort = None;
    for (i, m) in messages.iter().enumerate() {
        if m.get("role").and_then(Value::as_str) != Some("system") {
            continue;
        }
        match m.get("output_config") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => match o.get("effort") {
                None | Some(Value::Null) => {}
                Some(Value::String(e)) => effort = Some(e.clone()),
                Some(_) => {
                    return Err(bad(format!(
                        "messages[{i}].output_config.effort must be a string."
                    )))
                }
            },
            Some(_) => {
                return Err(bad(format!(
                    "messages[{i}].output_config must be an object."
                )))
            }
        }
    }
    Ok(effort)
}

/// The tools that `tool_reference` blocks in tool results have loaded: with deferred loading
/// (`defer_loading: true` on a tool) a tool reaches the model only once a tool search names it.
pub(super) fn referenced_tools(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|b| block_type(b) == Some("tool_result"))
        .filter_map(|b| b.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|p| block_type(p) == Some("tool_reference"))
        .filter_map(|p| p.get("tool_name").and_then(Value::as_str))
        .collect()
}

pub(super) fn block_type(b: &Value) -> Option<&str> {
    b.get("type").and_then(Value::as_str)
}

fn parse_message(m: &Value, i: usize, max_image_bytes: usize) -> Result<Message, Error> {
    let m = m
        .as_object()
        .ok_or_else(|| bad(format!("messages[{i}] must be an object.")))?;
    let role = match m.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(bad(format!(
                "messages[{i}].role '{other}' is not valid: use 'user', 'assistant' or 'system'."
            )))
        }
        None => {
            return Err(bad(format!(
                "messages[{i}].role is required and must be 'user', 'assistant' or 'system'."
            )))
        }
    };
    let mut msg = Message::text(role, "");
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            msg.text = s.clone();
            return Ok(msg);
        }
        Some(Value::Array(blocks)) => blocks,
        None | Some(Value::Null) => return Err(bad(format!("messages[{i}].content is required."))),
        Some(_) => {
            return Err(bad(format!(
                "messages[{i}].content must be a string or an array of content blocks."
            )))
        }
    };
    let mut acc = Blocks::default();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        parse_block(&mut msg, &mut acc, b, &at, max_image_bytes)?;
    }
    msg.text = acc.texts.join("\n");
    msg.reasoning = acc.reasoning;
    Ok(msg)
}

/// The pages of a replayed `web_search_tool_result` (their excerpts when the gateway minted
/// What the blocks of one message add up to besides the message itself.
#[derive(Default)]
struct Blocks<'v> {
    texts: Vec<std::borrow::Cow<'v, str>>,
    reasoning: Option<Reasoning>,
    /// Searches of earlier turns: the query of each `server_tool_use`, by id.
    queries: Vec<(&'v str, &'v str)>,
}

/// One content block of a message at `at`.
fn parse_block<'v>(
    msg: &mut Message,
    acc: &mut Blocks<'v>,
    b: &'v Value,
    at: &str,
    max_image_bytes: usize,
) -> Result<(), Error> {
    let role = msg.role;
    let kind = block_type(b)
        .ok_or_else(|| bad(format!("{at} must be an object with a string 'type'.")))?;
    match kind {
        "text" => acc.texts.push(
            b.get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{at}.text must be a string.")))?
                .into(),
        ),
        "image" => {
            let image = parse_image(b, at, max_image_bytes)?;
            // Kiro's assistant messages carry no images; the real API refuses them too.
            if role == Role::User {
                msg.images.push(image);
            }
        }
        "document" => acc.texts.push(document_text(b, at)?.into()),
        "server_tool_use" if role == Role::Assistant => {
            let id = b.get("id").and_then(Value::as_str).unwrap_or("");
            let query = b
                .pointer("/input/query")
                .and_then(Value::as_str)
                .unwrap_or("");
            acc.queries.push((id, query));
        }
        // The query and what was found become text of the turn, so that follow-ups can
        // refer to them (Kiro has no block for a search).
        "web_search_tool_result" if role == Role::Assistant => {
            let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
            let query = acc
                .queries
                .iter()
                .find(|(q_id, _)| *q_id == id)
                .map_or("", |(_, q)| *q);
            let text = websearch::history_text(query, &replayed_results(b.get("content")));
            acc.texts.push(text.trim_end().to_string().into());
        }
        "tool_use" => {
            if role != Role::Assistant {
                return Err(bad(format!(
                    "{at}: tool_use blocks belong in assistant messages."
                )));
            }
            msg.tool_calls.push(parse_tool_use(b, at)?);
        }
        "tool_result" => {
            if role != Role::User {
                return Err(bad(format!(
                    "{at}: tool_result blocks belong in user messages."
                )));
            }
            msg.tool_results
                .push(parse_tool_result(b, at, max_image_bytes)?);
        }
        "thinking" | "redacted_thinking" => {
            if role != Role::Assistant {
                return Err(bad(format!(
                    "{at}: {kind} blocks belong in assistant messages."
                )));
            }
            merge_reasoning(&mut acc.reasoning, b, kind, at)?;
        }
        other => {
            // Server-tool blocks (web search results and the like) and future block types:
            // Kiro has nothing to carry them in.
            log::debug!("{at}: ignoring a '{other}' block");
        }
    }
    Ok(())
}

/// the `encrypted_content`), or its error.
fn replayed_results(content: Option<&Value>) -> Result<Vec<SearchHit>, SearchFailure> {
    match content {
        Some(Value::Array(list)) => Ok(list
            .iter()
            .filter_map(|r| {
                let url = r.get("url").and_then(Value::as_str)?;
                let title = r.get("title").and_then(Value::as_str).unwrap_or(url);
                Some(SearchHit {
                    title: title.to_string(),
                    url: url.to_string(),
                    snippet: r
                        .get("encrypted_content")
                        .and_then(Value::as_str)
                        .and_then(codec::decode_content)
                        .flatten(),
                    page_age: r
                        .get("page_age")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                })
            })
            .collect()),
        Some(other) => Err(SearchFailure::from_code(
            other
                .get("error_code")
                .and_then(Value::as_str)
                .unwrap_or(""),
        )),
        None => Ok(Vec::new()),
    }
}

/// An `image` block with a base64 source. URL and file sources are refused: the gateway does not
/// fetch anything on a client's behalf, and Kiro takes only inline bytes.
fn parse_image(b: &Value, at: &str, max_image_bytes: usize) -> Result<Image, Error> {
    let source = b
        .get("source")
        .filter(|s| s.is_object())
        .ok_or_else(|| bad(format!("{at}.source must be an object.")))?;
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = match source.get("media_type") {
                None | Some(Value::Null) => "image/jpeg",
                Some(Value::String(s)) => s.as_str(),
                Some(_) => return Err(bad(format!("{at}.source.media_type must be a string."))),
            };
            let data = source
                .get("data")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{at}.source.data must be a base64 string.")))?;
            // Some clients leave a `data:...;base64,` prefix in; its media type wins.
            match data.strip_prefix("data:").and_then(|r| r.split_once(',')) {
                Some((meta, rest)) => {
                    Image::from_base64(meta.trim_end_matches(";base64"), rest, max_image_bytes)
                }
                None => Image::from_base64(media, data, max_image_bytes),
            }
        }
        Some("url") => Err(bad(format!(
            "{at}: remote images not supported; send the image inline as a base64 source."
        ))),
        Some(other) => Err(bad(format!(
            "{at}.source.type '{other}' is not supported; send the image inline as a base64 source."
        ))),
        None => Err(bad(format!("{at}.source.type must be a string."))),
    }
}

/// A `document` block: plain-text sources become text; PDFs and files cannot be sent to Kiro.
fn document_text<'v>(b: &'v Value, at: &str) -> Result<&'v str, Error> {
    let source = b.get("source");
    match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("text") => source
            .and_then(|s| s.get("data"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{at}.source.data must be a string."))),
        _ => Err(bad(format!(
            "{at}: only plain-text documents are supported (source type 'text')."
        ))),
    }
}

fn parse_tool_use(b: &Value, at: &str) -> Result<ToolCall, Error> {
    let id = b
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{at}.id is required and must be a string.")))?;
    let name = b
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{at}.name is required and must be a string.")))?;
    let input = match b.get("input") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(o @ Value::Object(_)) => o.clone(),
        Some(_) => return Err(bad(format!("{at}.input must be an object."))),
    };
    Ok(ToolCall {
        id: id.to_string(),
        name: name.to_string(),
        input,
    })
}

fn parse_tool_result(b: &Value, at: &str, max_image_bytes: usize) -> Result<ToolResult, Error> {
    let id = b
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(format!(
                "{at}.tool_use_id is required and must be a string."
            ))
        })?;
    let is_error = match b.get("is_error") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(e)) => *e,
        Some(_) => return Err(bad(format!("{at}.is_error must be true or false."))),
    };
    let mut result = ToolResult {
        tool_use_id: id.to_string(),
        text: String::new(),
        is_error,
        images: Vec::new(),
    };
    match b.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => result.text = s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts: Vec<std::borrow::Cow<str>> = Vec::new();
            for (k, p) in parts.iter().enumerate() {
                let pat = format!("{at}.content[{k}]");
                match block_type(p) {
                    Some("text") => texts.push(
                        p.get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("{pat}.text must be a string.")))?
                            .into(),
                    ),
                    Some("image") => result.images.push(parse_image(p, &pat, max_image_bytes)?),
                    Some("document") => texts.push(document_text(p, &pat)?.into()),
                    // The API puts the named tool's definition here; toward Kiro the tool joins
                    // the tool list (see `referenced_tools`) and the result says so.
                    Some("tool_reference") => {
                        let name = p.get("tool_name").and_then(Value::as_str).ok_or_else(|| {
                            bad(format!("{pat}.tool_name is required and must be a string."))
                        })?;
                        texts.push(format!("Tool loaded: {name}").into());
                    }
                    Some(other) => log::debug!("{pat}: ignoring a '{other}' block"),
                    None => {
                        return Err(bad(format!(
                            "{pat} must be an object with a string 'type'."
                        )))
                    }
                }
            }
            result.text = texts.join("\n");
        }
        Some(_) => {
            return Err(bad(format!(
                "{at}.content must be a string or an array of text and image blocks."
            )))
        }
    }
    Ok(result)
}

/// Fold a `thinking` / `redacted_thinking` block into the message's reasoning. Our own
/// placeholder signatures (prompt-tag reasoning) are dropped: Kiro would reject them as forged
/// (`THINKING_SIGNATURE_INVALID`), and that reasoning is not replayed natively anyway. A block
/// shown without its text (`display: "omitted"`) gives back Kiro's signature and the text it
/// signed from the signature we wrote.
fn merge_reasoning(
    slot: &mut Option<Reasoning>,
    b: &Value,
    kind: &str,
    at: &str,
) -> Result<(), Error> {
    let r = slot.get_or_insert_with(Reasoning::default);
    if kind == "redacted_thinking" {
        let data = b
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{at}.data must be a string.")))?;
        if r.redacted.is_none() {
            r.redacted = Some(data.to_string());
        }
        return Ok(());
    }
    let text = match b.get("thinking") {
        None | Some(Value::Null) => "",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(bad(format!("{at}.thinking must be a string."))),
    };
    let signature = match b.get("signature") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(bad(format!("{at}.signature must be a string."))),
    };
    if let Some((kiro_signature, signed_text)) = signature.and_then(read_omitted_signature) {
        // What Kiro signed, whatever the block's own (empty) text says.
        r.text.push_str(&signed_text);
        r.signature = Some(kiro_signature);
        return Ok(());
    }
    r.text.push_str(text);
    match signature {
        Some(s) if !s.is_empty() && !is_placeholder_signature(s) => {
            r.signature = Some(s.to_string())
        }
        _ => {}
    }
    Ok(())
}
