//! The neutral [`Conversation`] → Kiro's `generateAssistantResponse` request body.
//!
//! Every Kiro quirk lives here, each with a comment naming the 400 it avoids. The order of the
//! steps follows `docs/kiro-wire.md#history`, with these deliberate
//! differences: tool results keep their error status, tool content is checked against tool ids
//! after adjacent messages are merged (so split tool messages still pair up), empty texts are not
//! joined with a stray `\n`, and the finished body is measured against a byte budget (and, when
//! asked, trimmed by whole turns) before Kiro can answer "Input is too long".
//!
//! This module is pure: no I/O, no clock, no randomness (the caller passes the conversation id),
//! no client-format types, and no `profileArn` (the client adds it, because it depends on the
//! account). Nothing here decides *whether* native reasoning or prompt tags are used; the caller
//! says so through [`PayloadOptions`].

use serde_json::{json, Map, Value};

use crate::conversation::{
    Conversation, Image, Message, Reasoning, Role, ToolCall, ToolChoice, ToolResult, ToolSpec,
};
use crate::error::Error;
use crate::thinking::{injection_prefix, system_addition, truncation_system_addition};
use crate::tokens::CharCounts;

/// Kiro rejects longer tool names with a 400 (`docs/kiro-wire.md#tool-names`); exactly 64 is accepted. Only the length
/// is checked, not the character set.
pub const MAX_TOOL_NAME_CHARS: usize = 64;

/// Kiro refuses an image whose base64 text is longer than 5 MiB (about 3.75 MiB decoded; "image
/// exceeds 5 MB maximum"), and an image kept in history then fails every later turn, so such an
/// image is refused here with a 413 that says why. `MAX_IMAGE_BYTES` (decoded size) may be higher.
pub const MAX_IMAGE_BASE64_BYTES: usize = 5 * 1024 * 1024;

/// Text of a synthetic message (a user message put first; an assistant message put between two
/// users) and of an empty history message, since Kiro does not take an empty `content`
/// (`docs/kiro-wire.md#history`).
const EMPTY_TEXT: &str = "(empty)";
/// Text of a tool result without content (`docs/kiro-wire.md#tool-uses-and-results`).
const EMPTY_RESULT: &str = "(empty result)";
/// Current-message text when there is nothing to say (trailing assistant, empty user message).
const CONTINUE_TEXT: &str = "Continue";

/// How to build the body; everything the caller has already decided.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadOptions {
    /// Kiro model id, already resolved (`claude-sonnet-4.5`, `auto`…).
    pub model_id: String,
    /// `AI_EDITOR` (IDE identities) or `KIRO_CLI` (CLI and API-key identities).
    pub origin: String,
    /// The IDE 1.0.x body shape: top-level `"agentMode":"vibe"` and
    /// `conversationState.rootConversationId` (`docs/kiro-wire.md#top-level-fields`).
    pub runtime_shape: bool,
    /// `conversationState.conversationId` (and `rootConversationId` in the runtime shape).
    pub conversation_id: String,
    /// `Some(n)`: prompt-tag reasoning (`docs/kiro-wire.md#prompt-tag-reasoning`): inject the thinking tags with budget `n` into
    /// the current user message and explain them in the system prompt.
    pub fake_reasoning_max_tokens: Option<u32>,
    /// Native reasoning: sent verbatim as the top-level `additionalModelRequestFields`.
    pub reasoning_fields: Option<Value>,
    /// Descriptions longer than this (in characters) move into the system prompt; 0 disables.
    pub tool_description_max_length: usize,
    /// Add the "Output Truncation Handling" explanation to the system prompt.
    pub truncation_notice: bool,
    /// `KIRO_MAX_BODY_BYTES`: the largest serialized body we send, image data not counted
    /// (0 = unlimited).
    pub max_body_bytes: usize,
    /// `HISTORY_TRIM=oldest`: drop the oldest whole turns until the body fits.
    pub trim_oldest: bool,
}

/// A finished request body and what was done to it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltPayload {
    /// The request body, without `profileArn` (the client adds it).
    pub body: Value,
    /// Length in bytes of `serde_json::to_vec(&body)`.
    pub body_len: usize,
    /// Whole turns (a user message and the assistant reply after it) dropped by trimming.
    pub trimmed_turns: usize,
    /// The thinking tags were put in front of the current message.
    pub fake_reasoning_injected: bool,
    /// [`crate::tokens::estimate_tokens`] over all the text of the final body: message contents, tool
    /// specifications (as JSON), tool uses and tool results, replayed reasoning. Images and ids are
    /// not counted.
    pub estimated_input_tokens: u64,
}

/// Turns `conv` into Kiro's request body.
///
/// Errors: [`Error::BadRequest`] when there is no message, a tool name is over
/// [`MAX_TOOL_NAME_CHARS`], `tool_choice` names a tool that was not sent (or asks for a tool when
/// there is none), or a tool call's input is not a JSON object; [`Error::ContextLengthExceeded`]
/// when the body is over `max_body_bytes` and trimming is off or cannot make it fit.
///
/// Kiro's limit on the number of tools is not published; any count is accepted and sent.
pub fn build(conv: &Conversation, opts: &PayloadOptions) -> Result<BuiltPayload, Error> {
    check_image_sizes(conv)?;
    let prepared = prepare(conv, opts)?;
    let full = prepared.render(0, opts);
    let full_len = serialized_len(&full)?;
    let measured = budget_len(&full, full_len);
    let (body, body_len, dropped) = if opts.max_body_bytes == 0 || measured <= opts.max_body_bytes {
        (full, full_len, 0)
    } else {
        fit_by_trimming(&prepared, opts, measured)?
    };
    let estimated_input_tokens = estimate_body_tokens(&body);
    Ok(BuiltPayload {
        body,
        body_len,
        trimmed_turns: dropped / 2,
        fake_reasoning_injected: prepared.inject.is_some(),
        estimated_input_tokens,
    })
}

/// Cleans a client's JSON Schema for `toolSpecification.inputSchema.json`.
///
/// Drops every `"required": []` (an empty list only) and every `additionalProperties` key at any
/// depth, through nested objects and arrays (`anyOf`, `items` lists…): both make Kiro answer
/// 400 "Improperly formed request" (`docs/kiro-wire.md#schema-cleaning`). Keys that are property
/// *names* (inside `properties`, `patternProperties`, `$defs`, `definitions`, `dependentSchemas`) are
/// never dropped, only their schemas cleaned. Everything else (`$schema`, `format`, …) passes
/// through. A missing, `null` or otherwise non-object top-level schema becomes `{}`.
pub fn clean_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(_) => clean_schema_value(schema),
        _ => Value::Object(Map::new()),
    }
}

fn clean_schema_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                if key == "additionalProperties" {
                    continue;
                }
                if key == "required" && v.as_array().is_some_and(|a| a.is_empty()) {
                    continue;
                }
                let cleaned = if is_name_map_key(key) {
                    clean_name_map(v)
                } else {
                    clean_schema_value(v)
                };
                out.insert(key.clone(), cleaned);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(clean_schema_value).collect()),
        other => other.clone(),
    }
}

/// Keywords whose object maps names to schemas: the names are data, not keywords.
fn is_name_map_key(key: &str) -> bool {
    matches!(
        key,
        "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas"
    )
}

fn clean_name_map(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, schema)| (name.clone(), clean_schema_value(schema)))
                .collect(),
        ),
        other => clean_schema_value(other),
    }
}

/// The conversation after every step of the pipeline that does not depend on which turns are
/// kept; [`Prepared::render`] turns it into JSON for a given number of dropped history entries.
#[derive(Debug)]
struct Prepared {
    /// The assembled system prompt (may be empty).
    system: String,
    /// `toolSpecification` entries for the current message.
    tools: Vec<Value>,
    /// Alternating user/assistant messages, starting with a user message, ending with an
    /// assistant message (so always of even length).
    history: Vec<Message>,
    /// The current user message; its text is final except for the system prompt and the tags.
    current: Message,
    /// The conversation ended with an assistant message (prefill), now the last history entry.
    prefill: bool,
    /// The thinking-tag prefix, when it is injected.
    inject: Option<String>,
}

fn prepare(conv: &Conversation, opts: &PayloadOptions) -> Result<Prepared, Error> {
    let last_role = match conv.messages.last() {
        Some(m) => m.role,
        None => return Err(Error::BadRequest("No messages to send".to_string())),
    };

    // tool_choice "none": the model may not call tools, so Kiro gets none. History tool content
    // then has to become text, exactly as when no tools are defined (see below).
    let tools: &[ToolSpec] = match conv.tool_choice {
        ToolChoice::None => &[],
        _ => &conv.tools,
    };
    check_tool_names(tools)?;
    let choice_instruction = tool_choice_instruction(&conv.tool_choice, tools)?;
    let (tool_specs, tool_docs) = tool_specifications(tools, opts.tool_description_max_length);

    // Tags go only in front of a real user message; a trailing assistant message becomes
    // `Continue`, which is never tagged (`docs/kiro-wire.md#prompt-tag-reasoning`).
    let inject = match (opts.fake_reasoning_max_tokens, last_role) {
        (Some(n), Role::User) => Some(injection_prefix(n)),
        _ => None,
    };
    let mut additions: Vec<&str> = vec![&tool_docs];
    if inject.is_some() {
        additions.push(system_addition());
    }
    if opts.truncation_notice {
        additions.push(truncation_system_addition());
    }
    let system = assemble_system(&conv.system, &additions);

    let mut messages: Vec<Message> = conv.messages.iter().map(normalise_message).collect();
    if tools.is_empty() {
        // Kiro answers 400 "Improperly formed request" to `toolUses`/`toolResults` when the
        // request defines no tools (OpenCode compaction; `docs/kiro-wire.md#stub-tools`): keep them as text.
        for m in &mut messages {
            tool_content_to_text(m);
        }
    }
    let mut messages = merge_adjacent(messages);
    pair_tool_results(&mut messages);
    if messages.first().is_some_and(|m| m.role == Role::Assistant) {
        // A history that starts with an assistant message is rejected (`docs/kiro-wire.md#history`).
        messages.insert(0, Message::text(Role::User, EMPTY_TEXT));
    }
    let mut messages = ensure_alternation(messages);

    let (mut history, current, prefill) = match messages.pop() {
        Some(last) if last.role == Role::Assistant => {
            // Prefill / trailing assistant turn: Kiro's current message must be a user message, so
            // the assistant text goes to history and the model is asked to go on. Its tool calls
            // are dropped: without results after them Kiro would reject the pair.
            let mut last = last;
            last.tool_calls.clear();
            messages.push(last);
            (messages, Message::text(Role::User, CONTINUE_TEXT), true)
        }
        Some(last) => (messages, last, false),
        None => return Err(Error::BadRequest("No messages to send".to_string())),
    };

    for m in &mut history {
        for call in &mut m.tool_calls {
            call.input = tool_input_object(call)?;
        }
    }
    let mut current = current;
    if current.text.trim().is_empty() {
        // Kiro rejects an empty `content` (`docs/kiro-wire.md#history`).
        current.text = CONTINUE_TEXT.to_string();
    }
    if let Some(instruction) = choice_instruction {
        current.text.push_str(&instruction);
    }

    Ok(Prepared {
        system,
        tools: tool_specs,
        history,
        current,
        prefill,
        inject,
    })
}

/// Kiro answers 400 to a tool name over 64 characters (`docs/kiro-wire.md#tool-names`); say which names, so the user
/// can shorten them, instead of forwarding a request that cannot succeed.
fn check_tool_names(tools: &[ToolSpec]) -> Result<(), Error> {
    let offending: Vec<String> = tools
        .iter()
        .filter_map(|t| {
            let len = t.name.chars().count();
            (len > MAX_TOOL_NAME_CHARS).then(|| format!("'{}' ({len} characters)", t.name))
        })
        .collect();
    if offending.is_empty() {
        return Ok(());
    }
    Err(Error::BadRequest(format!(
        "Kiro accepts tool names of at most {MAX_TOOL_NAME_CHARS} characters; these are longer: {}. \
         Shorten these tool names (for example, drop a long server prefix).",
        offending.join(", ")
    )))
}

/// Kiro has no `tool_choice`: a forced tool is asked for in the prompt instead.
///
/// All tools are still sent for a named choice: history may hold calls of the other tools, and
/// Kiro checks history tool names against the defined tools.
fn tool_choice_instruction(
    choice: &ToolChoice,
    tools: &[ToolSpec],
) -> Result<Option<String>, Error> {
    match choice {
        ToolChoice::Auto | ToolChoice::None => Ok(None),
        ToolChoice::Required => {
            if tools.is_empty() {
                return Err(Error::BadRequest(
                    "tool_choice requires a tool call, but the request defines no tools"
                        .to_string(),
                ));
            }
            Ok(Some(
                "\n\n[Tool choice] You must respond by calling one of the available tools now; \
                 do not answer with text only."
                    .to_string(),
            ))
        }
        ToolChoice::Named(name) => {
            if !tools.iter().any(|t| &t.name == name) {
                return Err(Error::BadRequest(format!(
                    "tool_choice names the tool '{name}', which is not among the request's tools"
                )));
            }
            Ok(Some(format!(
                "\n\n[Tool choice] You must respond by calling the tool `{name}` now; do not \
                 answer with text only."
            )))
        }
    }
}

/// The `toolSpecification` entries, and the system-prompt section holding descriptions too long
/// for them.
fn tool_specifications(tools: &[ToolSpec], max_description: usize) -> (Vec<Value>, String) {
    let mut specs = Vec::with_capacity(tools.len());
    let mut sections = Vec::new();
    for tool in tools {
        let description =
            if max_description > 0 && tool.description.chars().count() > max_description {
                // A very long description gets 400 "Improperly formed request"
                // (`docs/kiro-wire.md#tool-specs`): the text moves to the system prompt and the
                // tool points at it.
                sections.push(format!("## Tool: {}\n\n{}", tool.name, tool.description));
                format!(
                    "[Full documentation in system prompt under '## Tool: {}']",
                    tool.name
                )
            } else if tool.description.trim().is_empty() {
                // Kiro requires a non-empty description (400, `docs/kiro-wire.md#tool-specs`).
                format!("Tool: {}", tool.name)
            } else {
                tool.description.clone()
            };
        specs.push(json!({
            "toolSpecification": {
                "name": tool.name,
                "description": description,
                "inputSchema": {"json": clean_schema(&tool.schema)},
            }
        }));
    }
    let docs = if sections.is_empty() {
        String::new()
    } else {
        format!(
            "\n\n---\n# Tool Documentation\nThe following tools have detailed documentation that \
             couldn't fit in the tool definition.\n\n{}",
            sections.join("\n\n---\n\n")
        )
    };
    (specs, docs)
}

/// The client's system prompt followed by each non-empty addition. Kiro has no system field, so
/// this text later goes in front of the first user message.
fn assemble_system(client: &str, additions: &[&str]) -> String {
    let mut system = client.to_string();
    for addition in additions.iter().filter(|a| !a.trim().is_empty()) {
        if system.trim().is_empty() {
            // Each addition starts with a `---` separator, useless at the very start.
            system = addition.trim().to_string();
        } else {
            system.push_str(addition);
        }
    }
    system
}

/// Lifts tool-result images into the message, and turns tool content that cannot stand in this
/// role into text (a `userInputMessage` has no `toolUses`, an `assistantResponseMessage` no
/// `toolResults`, and Kiro rejects unknown members).
fn normalise_message(message: &Message) -> Message {
    let mut m = message.clone();
    // MCP screenshots and the like: images go in `userInputMessage.images`, never in the tool
    // result or the context (issues #32, #57).
    for result in &mut m.tool_results {
        m.images.append(&mut result.images);
    }
    match m.role {
        Role::User => {
            let calls = std::mem::take(&mut m.tool_calls);
            append_parts(&mut m.text, calls.iter().map(tool_call_text));
        }
        Role::Assistant => {
            let results = std::mem::take(&mut m.tool_results);
            append_parts(&mut m.text, results.iter().map(tool_result_text));
            // Kiro's assistant messages carry no images.
            m.images.clear();
        }
    }
    m
}

/// Turns the message's tool calls and tool results into text after its own text.
fn tool_content_to_text(m: &mut Message) {
    let calls = std::mem::take(&mut m.tool_calls);
    let results = std::mem::take(&mut m.tool_results);
    append_parts(
        &mut m.text,
        calls
            .iter()
            .map(tool_call_text)
            .chain(results.iter().map(tool_result_text)),
    );
}

fn append_parts(text: &mut String, parts: impl Iterator<Item = String>) {
    for part in parts {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&part);
    }
}

/// `[Tool: name (id)]` and the arguments, the text form of a tool call.
fn tool_call_text(call: &ToolCall) -> String {
    let header = if call.id.is_empty() {
        format!("[Tool: {}]", call.name)
    } else {
        format!("[Tool: {} ({})]", call.name, call.id)
    };
    let arguments = match &call.input {
        Value::String(s) => s.clone(),
        Value::Null => "{}".to_string(),
        other => other.to_string(),
    };
    format!("{header}\n{arguments}")
}

/// `[Tool Result (id)]` (or `[Tool Error (id)]`) and the content, the text form of a tool result.
fn tool_result_text(result: &ToolResult) -> String {
    let kind = if result.is_error {
        "Tool Error"
    } else {
        "Tool Result"
    };
    let header = if result.tool_use_id.is_empty() {
        format!("[{kind}]")
    } else {
        format!("[{kind} ({})]", result.tool_use_id)
    };
    format!("{header}\n{}", result_text(result))
}

fn result_text(result: &ToolResult) -> &str {
    if result.text.is_empty() {
        EMPTY_RESULT
    } else {
        &result.text
    }
}

/// Joins adjacent messages of the same role: Kiro answers 400 "Improperly formed request" to two
/// user (or two assistant) messages in a row (`docs/kiro-wire.md#history`). Texts are joined with `\n` (an empty text
/// adds nothing), images, tool calls and tool results are concatenated. Of the reasoning blocks
/// the first one that can be replayed is kept (Kiro takes one per message).
fn merge_adjacent(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some(prev) if prev.role == m.role => {
                if !m.text.is_empty() {
                    if !prev.text.is_empty() {
                        prev.text.push('\n');
                    }
                    prev.text.push_str(&m.text);
                }
                prev.images.extend(m.images);
                prev.tool_calls.extend(m.tool_calls);
                prev.tool_results.extend(m.tool_results);
                let keep_prev = prev.reasoning.as_ref().is_some_and(replayable);
                let take_new = m.reasoning.as_ref().is_some_and(replayable);
                if !keep_prev && (take_new || prev.reasoning.is_none()) {
                    prev.reasoning = m.reasoning;
                }
            }
            _ => out.push(m),
        }
    }
    out
}

/// Tool results must answer a `toolUses` entry of the assistant message just before them: Kiro
/// validates `toolUseId`s and answers 400 otherwise. Unpaired results (first message, after an
/// assistant without tool calls, an id the assistant never used) become text; a synthetic
/// assistant call cannot be fabricated because Kiro also validates tool names.
fn pair_tool_results(messages: &mut [Message]) {
    for i in 0..messages.len() {
        let known: Vec<String> = match i.checked_sub(1).and_then(|p| messages.get(p)) {
            Some(prev) if prev.role == Role::Assistant => {
                prev.tool_calls.iter().map(|c| c.id.clone()).collect()
            }
            _ => Vec::new(),
        };
        let Some(m) = messages.get_mut(i) else {
            continue;
        };
        if m.tool_results.is_empty() {
            continue;
        }
        let (paired, orphaned): (Vec<ToolResult>, Vec<ToolResult>) =
            std::mem::take(&mut m.tool_results)
                .into_iter()
                .partition(|r| !r.tool_use_id.is_empty() && known.contains(&r.tool_use_id));
        m.tool_results = paired;
        append_parts(&mut m.text, orphaned.iter().map(tool_result_text));
    }
}

/// Puts an `(empty)` assistant message between two user messages in a row. After
/// [`merge_adjacent`] there are none; this keeps the guarantee local and explicit.
fn ensure_alternation(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    for m in messages {
        if m.role == Role::User && out.last().is_some_and(|p| p.role == Role::User) {
            out.push(Message::text(Role::Assistant, EMPTY_TEXT));
        }
        out.push(m);
    }
    out
}

/// `toolUses[].input` must be a JSON object: a string (an OpenAI `arguments` text left unparsed)
/// gets 400 "Improperly formed request".
fn tool_input_object(call: &ToolCall) -> Result<Value, Error> {
    match &call.input {
        Value::Object(_) => Ok(call.input.clone()),
        Value::Null => Ok(Value::Object(Map::new())),
        Value::String(s) if s.trim().is_empty() => Ok(Value::Object(Map::new())),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(bad_tool_input(call)),
        },
        _ => Err(bad_tool_input(call)),
    }
}

fn bad_tool_input(call: &ToolCall) -> Error {
    Error::BadRequest(format!(
        "The arguments of tool call '{}' ({}) are not a JSON object",
        call.id, call.name
    ))
}

/// Reasoning that Kiro can take back: it carries a signature or a redacted blob. Prompt-tag
/// reasoning has neither and is not replayed natively.
fn replayable(r: &Reasoning) -> bool {
    r.signature.as_deref().is_some_and(|s| !s.is_empty())
        || r.redacted.as_deref().is_some_and(|s| !s.is_empty())
}

/// `assistantResponseMessage.reasoningContent` (`docs/kiro-wire.md#reasoning`). Only the nested form works:
/// the flat form gets 400 `REQUEST_BODY_INVALID`, and so does a `signature` blob sent as
/// `redactedContent`, so a blob goes back in the field it came in.
fn reasoning_content(r: &Reasoning) -> Option<Value> {
    if let Some(signature) = r.signature.as_deref().filter(|s| !s.is_empty()) {
        return Some(json!({"reasoningText": {"text": r.text, "signature": signature}}));
    }
    r.redacted
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|blob| json!({"redactedContent": blob}))
}

fn images_json(images: &[Image]) -> Vec<Value> {
    images
        .iter()
        // An image without bytes is rejected; the client formats skip them too.
        .filter(|img| !img.data.is_empty())
        .map(|img| json!({"format": img.format, "source": {"bytes": img.data}}))
        .collect()
}

fn tool_results_json(results: &[ToolResult]) -> Vec<Value> {
    results
        .iter()
        .map(|r| {
            json!({
                "toolUseId": r.tool_use_id,
                "content": [{"text": result_text(r)}],
                "status": if r.is_error { "error" } else { "success" },
            })
        })
        .collect()
}

fn non_empty_or(text: &str, fallback: &str) -> String {
    if text.trim().is_empty() {
        fallback.to_string()
    } else {
        text.to_string()
    }
}

impl Prepared {
    /// The body with the first `drop` history entries left out. The system prompt goes in front
    /// of the first remaining history message, or of the current message when none remains.
    fn render(&self, drop: usize, opts: &PayloadOptions) -> Value {
        let history = self.history.get(drop..).unwrap_or(&[]);
        let system = (!self.system.trim().is_empty()).then_some(self.system.as_str());
        let system_on_current = !history.first().is_some_and(|m| m.role == Role::User);

        let entries: Vec<Value> = history
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let sys = if i == 0 && !system_on_current {
                    system
                } else {
                    None
                };
                render_history_entry(m, sys, opts)
            })
            .collect();

        let mut content = String::new();
        if let Some(prefix) = &self.inject {
            // The tags go in front of everything, the system prompt included (`docs/kiro-wire.md#prompt-tag-reasoning`).
            content.push_str(prefix);
        }
        if let (true, Some(sys)) = (system_on_current, system) {
            content.push_str(sys);
            content.push_str("\n\n");
        }
        content.push_str(&self.current.text);
        let current = user_input_message(&self.current, content, &self.tools, opts);

        let mut state = Map::new();
        state.insert("chatTriggerType".into(), json!("MANUAL"));
        state.insert("conversationId".into(), json!(opts.conversation_id));
        if opts.runtime_shape {
            state.insert("rootConversationId".into(), json!(opts.conversation_id));
        }
        state.insert("currentMessage".into(), current);
        if !entries.is_empty() {
            state.insert("history".into(), Value::Array(entries));
        }
        // No `agentTaskType` / `agentContinuationId`: one report says they are now rejected
        // (`docs/kiro-wire.md#top-level-fields`), and nothing needs them. No sampling parameters either: Kiro
        // has none in `conversationState`.
        let mut body = Map::new();
        body.insert("conversationState".into(), Value::Object(state));
        if opts.runtime_shape {
            body.insert("agentMode".into(), json!("vibe"));
        }
        if let Some(fields) = &opts.reasoning_fields {
            // The caller only sets this for models whose schema has it: Claude ≤ 4.5 answers 400
            // to any `additionalModelRequestFields` (`docs/kiro-wire.md#reasoning`).
            body.insert("additionalModelRequestFields".into(), fields.clone());
        }
        Value::Object(body)
    }

    /// Ascending numbers of history entries that may be dropped: whole turns only, never the
    /// protected tail (the prefill turn), and never a cut that leaves `toolResults` first, whose
    /// `toolUses` would be gone (Kiro answers 400 to unpaired results).
    fn trim_points(&self) -> Vec<usize> {
        let protected = if self.prefill { 2 } else { 0 };
        let limit = self.history.len().saturating_sub(protected);
        (2..=limit)
            .step_by(2)
            .filter(|&k| {
                let first = self.history.get(k).unwrap_or(&self.current);
                first.role == Role::User && first.tool_results.is_empty()
            })
            .collect()
    }
}

fn render_history_entry(m: &Message, system: Option<&str>, opts: &PayloadOptions) -> Value {
    match m.role {
        Role::User => {
            let text = non_empty_or(&m.text, EMPTY_TEXT);
            let content = match system {
                Some(sys) => format!("{sys}\n\n{text}"),
                None => text,
            };
            // Tools are defined in the current message only, never in history.
            user_input_message(m, content, &[], opts)
        }
        Role::Assistant => {
            let mut msg = Map::new();
            msg.insert("content".into(), json!(non_empty_or(&m.text, EMPTY_TEXT)));
            if !m.tool_calls.is_empty() {
                let uses: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"toolUseId": c.id, "name": c.name, "input": c.input}))
                    .collect();
                msg.insert("toolUses".into(), Value::Array(uses));
            }
            if let Some(reasoning) = m.reasoning.as_ref().and_then(reasoning_content) {
                msg.insert("reasoningContent".into(), reasoning);
            }
            json!({"assistantResponseMessage": msg})
        }
    }
}

/// A `userInputMessage`. `modelId` and `origin` go in every one, history included; `images` and
/// `userInputMessageContext` are left out when empty.
fn user_input_message(
    m: &Message,
    content: String,
    tools: &[Value],
    opts: &PayloadOptions,
) -> Value {
    let mut msg = Map::new();
    msg.insert("content".into(), json!(content));
    msg.insert("modelId".into(), json!(opts.model_id));
    msg.insert("origin".into(), json!(opts.origin));
    let images = images_json(&m.images);
    if !images.is_empty() {
        msg.insert("images".into(), Value::Array(images));
    }
    let mut context = Map::new();
    if !tools.is_empty() {
        context.insert("tools".into(), Value::Array(tools.to_vec()));
    }
    if !m.tool_results.is_empty() {
        context.insert(
            "toolResults".into(),
            Value::Array(tool_results_json(&m.tool_results)),
        );
    }
    if !context.is_empty() {
        msg.insert("userInputMessageContext".into(), Value::Object(context));
    }
    json!({"userInputMessage": msg})
}

/// Images over [`MAX_IMAGE_BASE64_BYTES`], wherever they are (history included).
fn check_image_sizes(conv: &Conversation) -> Result<(), Error> {
    let images = conv.messages.iter().flat_map(|m| {
        m.images
            .iter()
            .chain(m.tool_results.iter().flat_map(|r| r.images.iter()))
    });
    for image in images {
        if image.data.len() > MAX_IMAGE_BASE64_BYTES {
            return Err(Error::PayloadTooLarge(format!(
                "An image is {} bytes as base64; Kiro accepts at most {MAX_IMAGE_BASE64_BYTES} \
                 bytes of base64 per image (about 3.75 MiB decoded). Send a smaller or more \
                 compressed image.",
                image.data.len()
            )));
        }
    }
    Ok(())
}

/// The length that counts against `max_body_bytes`: the serialized length without image data.
/// The Kiro IDE sends images of up to [`MAX_IMAGE_BASE64_BYTES`] each, so Kiro's "Input is too
/// long" threshold cannot be counting them, and a screenshot must not trigger the overflow error
/// (clients compact on it, in vain).
fn budget_len(value: &Value, serialized: usize) -> usize {
    serialized.saturating_sub(image_data_len(value))
}

fn image_data_len(value: &Value) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, v)| match (key.as_str(), v) {
                ("images", Value::Array(images)) => images
                    .iter()
                    .filter_map(|img| img.get("source")?.get("bytes")?.as_str())
                    .map(str::len)
                    .sum(),
                _ => image_data_len(v),
            })
            .sum(),
        Value::Array(items) => items.iter().map(image_data_len).sum(),
        _ => 0,
    }
}

fn serialized_len(body: &Value) -> Result<usize, Error> {
    serde_json::to_vec(body)
        .map(|bytes| bytes.len())
        .map_err(|e| Error::Internal(format!("serializing the Kiro request body: {e}")))
}

/// Drops the oldest whole turns until the body fits `max_body_bytes`, so Kiro does not answer
/// 400 `CONTENT_LENGTH_EXCEEDS_THRESHOLD` / "Input is too long". Returns the body, its serialized
/// length and the number of history entries dropped. `full_len` and every size compared with the
/// budget are [`budget_len`]s (image data not counted).
///
/// Every cut is checked against the real serialized length. To keep a long history from costing
/// one render per turn, a cut is only rendered once the entries it drops (measured one by one)
/// predict a fit within [`PREDICTION_SLACK`]; the deepest cut is always rendered.
fn fit_by_trimming(
    p: &Prepared,
    opts: &PayloadOptions,
    full_len: usize,
) -> Result<(Value, usize, usize), Error> {
    let max = opts.max_body_bytes;
    if !opts.trim_oldest {
        return Err(too_long(full_len, max, ""));
    }
    let mut dropped_bytes = Vec::with_capacity(p.history.len() + 1);
    dropped_bytes.push(0usize);
    let mut sum = 0usize;
    for m in &p.history {
        // +1 for the comma between array elements.
        let entry = render_history_entry(m, None, opts);
        sum += budget_len(&entry, serialized_len(&entry)?) + 1;
        dropped_bytes.push(sum);
    }
    let points = p.trim_points();
    let Some(&deepest) = points.last() else {
        return Err(too_long(
            full_len,
            max,
            " No older turn could be dropped to make it fit.",
        ));
    };
    let mut deepest_len = full_len;
    for &k in &points {
        let predicted = full_len.saturating_sub(dropped_bytes.get(k).copied().unwrap_or(sum));
        if predicted > max.saturating_add(PREDICTION_SLACK) && k != deepest {
            continue;
        }
        let body = p.render(k, opts);
        let len = serialized_len(&body)?;
        let measured = budget_len(&body, len);
        if measured <= max {
            return Ok((body, len, k));
        }
        deepest_len = measured;
    }
    Err(too_long(
        full_len,
        max,
        &format!(
            " Dropping the {} oldest turn(s) still leaves {deepest_len} bytes.",
            deepest / 2
        ),
    ))
}

/// How far a predicted size may be over the budget and still be measured: the prediction ignores
/// the few bytes that move with the system prompt and the `"history"` key.
const PREDICTION_SLACK: usize = 256;

/// The overflow error. It starts with "prompt is too long" because that is what Claude Code,
/// OpenCode and Cline look for before compacting.
fn too_long(len: usize, max: usize, trim_note: &str) -> Error {
    Error::ContextLengthExceeded(format!(
        "prompt is too long: the conversation is {len} bytes as a Kiro request (images not \
         counted) and the limit is {max} bytes (KIRO_MAX_BODY_BYTES).{trim_note} Compact the conversation or start a new one."
    ))
}

/// [`crate::tokens::estimate_tokens`] over the text the model reads in a finished body.
fn estimate_body_tokens(body: &Value) -> u64 {
    let mut counts = CharCounts::default();
    if let Some(state) = body.get("conversationState") {
        count_text(state, &mut counts);
    }
    counts.tokens()
}

fn count_text(value: &Value, counts: &mut CharCounts) {
    match value {
        Value::String(s) => counts.add(s),
        Value::Array(items) => items.iter().for_each(|v| count_text(v, counts)),
        Value::Object(map) => {
            for (key, v) in map {
                match key.as_str() {
                    // The model reads these as JSON.
                    "toolSpecification" | "input" => counts.add(&v.to_string()),
                    // Ids, routing and opaque blobs: not text the model reads.
                    "modelId" | "origin" | "toolUseId" | "status" | "conversationId"
                    | "rootConversationId" | "chatTriggerType" | "images" | "signature"
                    | "redactedContent" => {}
                    _ => count_text(v, counts),
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::estimate_tokens;

    fn opts() -> PayloadOptions {
        PayloadOptions {
            model_id: "claude-sonnet-4.5".into(),
            origin: "AI_EDITOR".into(),
            runtime_shape: false,
            conversation_id: "conv-1".into(),
            fake_reasoning_max_tokens: None,
            reasoning_fields: None,
            tool_description_max_length: 10_000,
            truncation_notice: false,
            max_body_bytes: 0,
            trim_oldest: false,
        }
    }

    fn user(text: &str) -> Message {
        Message::text(Role::User, text)
    }

    fn assistant(text: &str) -> Message {
        Message::text(Role::Assistant, text)
    }

    fn conv(messages: Vec<Message>) -> Conversation {
        Conversation {
            model: "claude-sonnet-4-5".into(),
            messages,
            ..Default::default()
        }
    }

    fn with_tools(mut c: Conversation, names: &[&str]) -> Conversation {
        c.tools = names
            .iter()
            .map(|n| ToolSpec {
                name: n.to_string(),
                description: format!("does {n}"),
                schema: json!({"type": "object", "properties": {}}),
            })
            .collect();
        c
    }

    fn call(id: &str, name: &str, input: Value) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            input,
        }
    }

    fn result(id: &str, text: &str) -> ToolResult {
        ToolResult {
            tool_use_id: id.into(),
            text: text.into(),
            is_error: false,
            images: Vec::new(),
        }
    }

    fn assistant_calling(calls: Vec<ToolCall>) -> Message {
        Message {
            tool_calls: calls,
            ..assistant("")
        }
    }

    fn user_with_results(results: Vec<ToolResult>) -> Message {
        Message {
            tool_results: results,
            ..user("")
        }
    }

    fn png(data: &str) -> Image {
        Image {
            format: "png".into(),
            data: data.into(),
        }
    }

    fn build_ok(c: &Conversation, o: &PayloadOptions) -> BuiltPayload {
        build(c, o).unwrap()
    }

    fn body(c: &Conversation) -> Value {
        build_ok(c, &opts()).body
    }

    fn current(body: &Value) -> &Value {
        &body["conversationState"]["currentMessage"]["userInputMessage"]
    }

    fn content(body: &Value) -> &str {
        current(body)["content"].as_str().unwrap()
    }

    fn history(body: &Value) -> &Vec<Value> {
        body["conversationState"]["history"].as_array().unwrap()
    }

    fn has_history(body: &Value) -> bool {
        body["conversationState"].get("history").is_some()
    }

    fn bad_request(r: Result<BuiltPayload, Error>) -> String {
        match r {
            Err(Error::BadRequest(m)) => m,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    // --- basic shape ---------------------------------------------------------------------

    #[test]
    fn simple_request_has_manual_trigger_conversation_id_and_current_message() {
        let b = body(&conv(vec![user("hello")]));
        let state = &b["conversationState"];
        assert_eq!(state["chatTriggerType"], "MANUAL");
        assert_eq!(state["conversationId"], "conv-1");
        assert_eq!(content(&b), "hello");
        assert_eq!(current(&b)["modelId"], "claude-sonnet-4.5");
        assert_eq!(current(&b)["origin"], "AI_EDITOR");
        assert!(!has_history(&b), "empty history is omitted");
        assert!(current(&b).get("images").is_none());
        assert!(current(&b).get("userInputMessageContext").is_none());
    }

    #[test]
    fn body_has_no_profile_arn_task_type_or_sampling_fields() {
        let mut c = conv(vec![user("hi")]);
        c.max_output_tokens = Some(100);
        c.stop_sequences = vec!["STOP".into()];
        let b = body(&c);
        let top: Vec<&String> = b.as_object().unwrap().keys().collect();
        assert_eq!(top, vec!["conversationState"]);
        let state = b["conversationState"].as_object().unwrap();
        for key in [
            "agentTaskType",
            "agentContinuationId",
            "rootConversationId",
            "inferenceConfig",
        ] {
            assert!(!state.contains_key(key), "{key} must not be sent");
        }
        let text = serde_json::to_string(&b).unwrap();
        for word in [
            "profileArn",
            "temperature",
            "maxTokens",
            "STOP",
            "agentMode",
        ] {
            assert!(!text.contains(word), "{word} leaked into the body");
        }
    }

    #[test]
    fn origin_is_taken_from_options() {
        let o = PayloadOptions {
            origin: "KIRO_CLI".into(),
            ..opts()
        };
        let b = build_ok(&conv(vec![user("a"), assistant("b"), user("c")]), &o).body;
        assert_eq!(current(&b)["origin"], "KIRO_CLI");
        assert_eq!(history(&b)[0]["userInputMessage"]["origin"], "KIRO_CLI");
    }

    #[test]
    fn runtime_shape_adds_agent_mode_and_root_conversation_id() {
        let o = PayloadOptions {
            runtime_shape: true,
            ..opts()
        };
        let b = build_ok(&conv(vec![user("hi")]), &o).body;
        assert_eq!(b["agentMode"], "vibe");
        assert_eq!(b["conversationState"]["rootConversationId"], "conv-1");
        let plain = body(&conv(vec![user("hi")]));
        assert!(plain.get("agentMode").is_none());
        assert!(plain["conversationState"]
            .get("rootConversationId")
            .is_none());
    }

    #[test]
    fn reasoning_fields_go_top_level_only_when_given() {
        let fields = json!({"output_config": {"effort": "high"}, "thinking": {"type": "adaptive"}});
        let o = PayloadOptions {
            reasoning_fields: Some(fields.clone()),
            ..opts()
        };
        let b = build_ok(&conv(vec![user("hi")]), &o).body;
        assert_eq!(b["additionalModelRequestFields"], fields);
        assert!(body(&conv(vec![user("hi")]))
            .get("additionalModelRequestFields")
            .is_none());
    }

    #[test]
    fn body_len_is_the_serialized_length() {
        let built = build_ok(
            &conv(vec![user("héllo"), assistant("ok"), user("x")]),
            &opts(),
        );
        assert_eq!(
            built.body_len,
            serde_json::to_vec(&built.body).unwrap().len()
        );
    }

    // --- messages, history and system prompt --------------------------------------------

    #[test]
    fn no_messages_is_bad_request() {
        let mut c = conv(vec![]);
        c.system = "only a system prompt".into();
        assert_eq!(bad_request(build(&c, &opts())), "No messages to send");
    }

    #[test]
    fn multi_turn_puts_all_but_last_message_in_history() {
        let b = body(&conv(vec![user("q1"), assistant("a1"), user("q2")]));
        let h = history(&b);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0]["userInputMessage"]["content"], "q1");
        assert_eq!(h[0]["userInputMessage"]["modelId"], "claude-sonnet-4.5");
        assert_eq!(h[0]["userInputMessage"]["origin"], "AI_EDITOR");
        assert_eq!(h[1], json!({"assistantResponseMessage": {"content": "a1"}}));
        assert_eq!(content(&b), "q2");
    }

    #[test]
    fn system_prompt_goes_before_current_message_without_history() {
        let mut c = conv(vec![user("hello")]);
        c.system = "SYS".into();
        assert_eq!(content(&body(&c)), "SYS\n\nhello");
    }

    #[test]
    fn system_prompt_goes_before_first_history_user_message() {
        let mut c = conv(vec![user("q1"), assistant("a1"), user("q2")]);
        c.system = "SYS".into();
        let b = body(&c);
        assert_eq!(history(&b)[0]["userInputMessage"]["content"], "SYS\n\nq1");
        assert_eq!(content(&b), "q2");
    }

    #[test]
    fn whitespace_only_system_prompt_is_not_placed() {
        let mut c = conv(vec![user("hello")]);
        c.system = "  \n".into();
        assert_eq!(content(&body(&c)), "hello");
    }

    #[test]
    fn trailing_assistant_goes_to_history_and_current_is_continue_without_tags() {
        let mut last = assistant("partial answer");
        last.tool_calls = vec![call("t1", "bash", json!({}))];
        let c = with_tools(conv(vec![user("q"), last]), &["bash"]);
        let o = PayloadOptions {
            fake_reasoning_max_tokens: Some(4000),
            ..opts()
        };
        let built = build_ok(&c, &o);
        let b = &built.body;
        assert_eq!(content(b), "Continue");
        assert!(!built.fake_reasoning_injected);
        let h = history(b);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[1],
            json!({"assistantResponseMessage": {"content": "partial answer"}}),
            "tool calls of the trailing assistant are dropped"
        );
        assert!(!h[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap()
            .contains("Extended Thinking Mode"));
        // Tools are still defined on the current message.
        assert_eq!(
            current(b)["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"],
            "bash"
        );
    }

    #[test]
    fn only_assistant_message_gets_empty_user_and_continue() {
        let b = body(&conv(vec![assistant("prefill")]));
        let h = history(&b);
        assert_eq!(h[0]["userInputMessage"]["content"], "(empty)");
        assert_eq!(h[1]["assistantResponseMessage"]["content"], "prefill");
        assert_eq!(content(&b), "Continue");
    }

    #[test]
    fn empty_current_content_becomes_continue() {
        assert_eq!(content(&body(&conv(vec![user("")]))), "Continue");
        assert_eq!(content(&body(&conv(vec![user("  \n ")]))), "Continue");
    }

    #[test]
    fn model_id_and_origin_are_in_current_and_every_history_user_message() {
        let b = body(&conv(vec![
            user("1"),
            assistant("2"),
            user("3"),
            assistant("4"),
            user("5"),
        ]));
        for entry in history(&b) {
            if let Some(u) = entry.get("userInputMessage") {
                assert_eq!(u["modelId"], "claude-sonnet-4.5");
                assert_eq!(u["origin"], "AI_EDITOR");
            } else {
                assert!(entry["assistantResponseMessage"].get("modelId").is_none());
            }
        }
        assert_eq!(current(&b)["modelId"], "claude-sonnet-4.5");
    }

    #[test]
    fn adjacent_user_texts_are_merged_with_newline() {
        let b = body(&conv(vec![user("one"), user("two"), user("three")]));
        assert!(!has_history(&b));
        assert_eq!(content(&b), "one\ntwo\nthree");
    }

    #[test]
    fn empty_text_adds_no_newline_when_merged() {
        let mut c = with_tools(
            conv(vec![
                user("q"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
                user("next"),
            ]),
            &["bash"],
        );
        c.system = String::new();
        assert_eq!(content(&body(&c)), "next");
    }

    #[test]
    fn adjacent_assistant_messages_concatenate_tool_calls() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "a", json!({"n": 1}))]),
                assistant_calling(vec![call("t2", "b", json!({"n": 2}))]),
                assistant_calling(vec![call("t3", "a", json!({"n": 3}))]),
                user_with_results(vec![
                    result("t1", "r1"),
                    result("t2", "r2"),
                    result("t3", "r3"),
                ]),
            ]),
            &["a", "b"],
        );
        let b = body(&c);
        let h = history(&b);
        assert_eq!(h.len(), 2);
        let uses = h[1]["assistantResponseMessage"]["toolUses"]
            .as_array()
            .unwrap();
        let ids: Vec<&str> = uses
            .iter()
            .map(|u| u["toolUseId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["t1", "t2", "t3"]);
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn codex_two_assistant_calls_and_two_tool_messages_become_one_pair() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("c1", "bash", json!({"cmd": "ls"}))]),
                assistant_calling(vec![call("c2", "bash", json!({"cmd": "pwd"}))]),
                user_with_results(vec![result("c1", "a.txt")]),
                user_with_results(vec![result("c2", "/home")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        let h = history(&b);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[1]["assistantResponseMessage"]["toolUses"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let results = current(&b)["userInputMessageContext"]["toolResults"]
            .as_array()
            .unwrap();
        assert_eq!(results[0]["toolUseId"], "c1");
        assert_eq!(results[1]["toolUseId"], "c2");
        assert_eq!(content(&b), "Continue");
    }

    #[test]
    fn first_assistant_message_gets_empty_user_prepended_keeping_tool_calls() {
        let c = with_tools(
            conv(vec![
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                Message {
                    images: vec![png("IMG")],
                    ..user_with_results(vec![result("t1", "out")])
                },
            ]),
            &["bash"],
        );
        let b = body(&c);
        let h = history(&b);
        assert_eq!(h[0]["userInputMessage"]["content"], "(empty)");
        assert_eq!(
            h[1]["assistantResponseMessage"]["toolUses"][0]["toolUseId"],
            "t1"
        );
        assert_eq!(current(&b)["images"][0]["source"]["bytes"], "IMG");
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"][0]["toolUseId"],
            "t1"
        );
    }

    #[test]
    fn alternation_inserts_empty_assistant_between_consecutive_users() {
        let out = ensure_alternation(vec![user("a"), user("b"), user("c"), user("d")]);
        let roles: Vec<Role> = out.iter().map(|m| m.role).collect();
        use Role::{Assistant as A, User as U};
        assert_eq!(roles, [U, A, U, A, U, A, U]);
        assert!(out
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .all(|m| m.text == "(empty)"));
    }

    #[test]
    fn history_empty_texts_become_empty_marker() {
        let b = body(&conv(vec![user(""), assistant(" "), user("now")]));
        let h = history(&b);
        assert_eq!(h[0]["userInputMessage"]["content"], "(empty)");
        assert_eq!(h[1]["assistantResponseMessage"]["content"], "(empty)");
    }

    #[test]
    fn history_user_images_go_in_user_input_message_images() {
        let first = Message {
            images: vec![png("AAAA"), png("")],
            ..user("look")
        };
        let b = body(&conv(vec![first, assistant("seen"), user("next")]));
        assert_eq!(
            history(&b)[0]["userInputMessage"]["images"],
            json!([{"format": "png", "source": {"bytes": "AAAA"}}]),
            "empty image data is skipped"
        );
    }

    #[test]
    fn current_message_images_are_sent_and_assistant_images_are_not() {
        let a = Message {
            images: vec![png("NOPE")],
            ..assistant("a")
        };
        let cur = Message {
            images: vec![
                png("P"),
                Image {
                    format: "webp".into(),
                    data: "W".into(),
                },
            ],
            ..user("what is this")
        };
        let b = body(&conv(vec![user("q"), a, cur]));
        assert_eq!(
            current(&b)["images"],
            json!([{"format": "png", "source": {"bytes": "P"}}, {"format": "webp", "source": {"bytes": "W"}}])
        );
        assert!(!serde_json::to_string(&b).unwrap().contains("NOPE"));
    }

    // --- tools ---------------------------------------------------------------------------

    #[test]
    fn tools_go_only_to_the_current_message_context() {
        let c = with_tools(conv(vec![user("a"), assistant("b"), user("c")]), &["bash"]);
        let b = body(&c);
        let spec = &current(&b)["userInputMessageContext"]["tools"][0]["toolSpecification"];
        assert_eq!(spec["name"], "bash");
        assert_eq!(spec["description"], "does bash");
        assert_eq!(
            spec["inputSchema"]["json"],
            json!({"type": "object", "properties": {}})
        );
        assert!(history(&b)[0]["userInputMessage"]
            .get("userInputMessageContext")
            .is_none());
    }

    #[test]
    fn empty_or_whitespace_description_becomes_tool_name() {
        let mut c = with_tools(conv(vec![user("x")]), &["a", "b", "c"]);
        c.tools[0].description = String::new();
        c.tools[1].description = "  \n".into();
        let b = body(&c);
        let tools = &current(&b)["userInputMessageContext"]["tools"];
        assert_eq!(tools[0]["toolSpecification"]["description"], "Tool: a");
        assert_eq!(tools[1]["toolSpecification"]["description"], "Tool: b");
        assert_eq!(tools[2]["toolSpecification"]["description"], "does c");
    }

    #[test]
    fn tool_schema_is_cleaned_and_null_schema_becomes_empty_object() {
        let mut c = with_tools(conv(vec![user("x")]), &["a", "b"]);
        c.tools[0].schema = json!({"type": "object", "required": [], "additionalProperties": false,
                                   "properties": {"p": {"type": "string"}}});
        c.tools[1].schema = Value::Null;
        let b = body(&c);
        let tools = &current(&b)["userInputMessageContext"]["tools"];
        assert_eq!(
            tools[0]["toolSpecification"]["inputSchema"]["json"],
            json!({"type": "object", "properties": {"p": {"type": "string"}}})
        );
        assert_eq!(
            tools[1]["toolSpecification"]["inputSchema"]["json"],
            json!({})
        );
    }

    #[test]
    fn clean_schema_drops_empty_required_and_additional_properties_at_any_depth() {
        let schema = json!({
            "type": "object",
            "required": ["a"],
            "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {
                "a": {"type": "object", "required": [], "additionalProperties": {"type": "string"},
                      "properties": {"deep": {"type": "object", "additionalProperties": true}}},
                "b": {"anyOf": [{"type": "object", "required": [], "additionalProperties": false},
                                {"type": "null"}]},
                "c": {"type": "array", "items": [{"type": "object", "additionalProperties": false}]},
                "additionalProperties": {"type": "string"},
                "required": {"type": "boolean"}
            },
            "$defs": {"additionalProperties": {"type": "object", "additionalProperties": false}}
        });
        let expected = json!({
            "type": "object",
            "required": ["a"],
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {
                "a": {"type": "object", "properties": {"deep": {"type": "object"}}},
                "b": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                "c": {"type": "array", "items": [{"type": "object"}]},
                "additionalProperties": {"type": "string"},
                "required": {"type": "boolean"}
            },
            "$defs": {"additionalProperties": {"type": "object"}}
        });
        assert_eq!(clean_schema(&schema), expected);
    }

    #[test]
    fn clean_schema_turns_non_object_into_empty_object() {
        assert_eq!(clean_schema(&Value::Null), json!({}));
        assert_eq!(clean_schema(&json!(true)), json!({}));
        assert_eq!(clean_schema(&json!({})), json!({}));
    }

    #[test]
    fn long_description_moves_to_system_prompt_and_schema_is_kept() {
        let mut c = with_tools(conv(vec![user("x")]), &["big", "small"]);
        c.tools[0].description = "d".repeat(30);
        c.tools[0].schema = json!({"type": "object", "properties": {"q": {"type": "string"}}});
        c.system = "SYS".into();
        let o = PayloadOptions {
            tool_description_max_length: 20,
            ..opts()
        };
        let b = build_ok(&c, &o).body;
        let tools = &current(&b)["userInputMessageContext"]["tools"];
        assert_eq!(
            tools[0]["toolSpecification"]["description"],
            "[Full documentation in system prompt under '## Tool: big']"
        );
        assert_eq!(
            tools[0]["toolSpecification"]["inputSchema"]["json"]["properties"]["q"]["type"],
            "string"
        );
        assert_eq!(tools[1]["toolSpecification"]["description"], "does small");
        let expected_system = format!(
            "SYS\n\n---\n# Tool Documentation\nThe following tools have detailed documentation \
             that couldn't fit in the tool definition.\n\n## Tool: big\n\n{}",
            "d".repeat(30)
        );
        assert_eq!(content(&b), format!("{expected_system}\n\nx"));
    }

    #[test]
    fn several_long_descriptions_are_separated_and_stripped_without_client_system() {
        let mut c = with_tools(conv(vec![user("x")]), &["a", "b"]);
        c.tools[0].description = "A".repeat(5);
        c.tools[1].description = "B".repeat(5);
        let o = PayloadOptions {
            tool_description_max_length: 4,
            ..opts()
        };
        let b = build_ok(&c, &o).body;
        assert!(content(&b).starts_with("---\n# Tool Documentation\n"));
        assert!(content(&b).contains("## Tool: a\n\nAAAAA\n\n---\n\n## Tool: b\n\nBBBBB\n\nx"));
    }

    #[test]
    fn description_limit_zero_keeps_long_descriptions() {
        let mut c = with_tools(conv(vec![user("x")]), &["a"]);
        c.tools[0].description = "z".repeat(50_000);
        let o = PayloadOptions {
            tool_description_max_length: 0,
            ..opts()
        };
        let b = build_ok(&c, &o).body;
        assert_eq!(
            current(&b)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"]
                .as_str()
                .unwrap()
                .len(),
            50_000
        );
        assert_eq!(content(&b), "x");
    }

    #[test]
    fn tool_name_of_64_characters_is_accepted() {
        let name = "n".repeat(64);
        let c = with_tools(conv(vec![user("x")]), &[name.as_str()]);
        assert!(build(&c, &opts()).is_ok());
    }

    #[test]
    fn tool_names_over_64_characters_are_all_listed_with_lengths() {
        let long1 = "a".repeat(65);
        let long2 = "b".repeat(70);
        let c = with_tools(
            conv(vec![user("x")]),
            &[long1.as_str(), "ok", long2.as_str()],
        );
        let msg = bad_request(build(&c, &opts()));
        assert!(msg.contains(&format!("'{long1}' (65 characters)")), "{msg}");
        assert!(msg.contains(&format!("'{long2}' (70 characters)")), "{msg}");
        assert!(!msg.contains("'ok'"));
        assert!(msg.contains("Shorten"));
    }

    #[test]
    fn many_tools_are_all_sent() {
        let names: Vec<String> = (0..300).map(|i| format!("tool_{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let b = body(&with_tools(conv(vec![user("x")]), &refs));
        assert_eq!(
            current(&b)["userInputMessageContext"]["tools"]
                .as_array()
                .unwrap()
                .len(),
            300
        );
    }

    #[test]
    fn tool_round_trip_renders_tool_uses_and_success_results() {
        let c = with_tools(
            conv(vec![
                user("list"),
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("t1", "a.txt"), result("t1b", "")]),
            ]),
            &["bash"],
        );
        // t1b is unknown to the assistant: it becomes text, the valid one stays.
        let b = body(&c);
        assert_eq!(
            history(&b)[1],
            json!({"assistantResponseMessage": {"content": "(empty)",
                "toolUses": [{"toolUseId": "t1", "name": "bash", "input": {"cmd": "ls"}}]}})
        );
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"],
            json!([{"toolUseId": "t1", "content": [{"text": "a.txt"}], "status": "success"}])
        );
        assert_eq!(content(&b), "[Tool Result (t1b)]\n(empty result)");
    }

    #[test]
    fn empty_tool_result_becomes_empty_result_marker() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"][0]["content"],
            json!([{"text": "(empty result)"}])
        );
    }

    #[test]
    fn error_tool_result_has_status_error() {
        let mut failed = result("t1", "command not found");
        failed.is_error = true;
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![failed]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"][0]["status"],
            "error"
        );
    }

    #[test]
    fn tool_result_images_are_lifted_into_the_message() {
        let mut shot = result("t1", "screenshot taken");
        shot.images = vec![png("SHOT")];
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "browser", json!({}))]),
                user_with_results(vec![shot]),
            ]),
            &["browser"],
        );
        let b = body(&c);
        assert_eq!(current(&b)["images"][0]["source"]["bytes"], "SHOT");
        let text = serde_json::to_string(&current(&b)["userInputMessageContext"]).unwrap();
        assert!(
            !text.contains("SHOT"),
            "images never stay in the tool result"
        );
    }

    #[test]
    fn tool_call_input_string_is_parsed_and_null_becomes_empty_object() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![
                    call("t1", "bash", json!("{\"cmd\":\"ls\"}")),
                    call("t2", "bash", Value::Null),
                ]),
                user_with_results(vec![result("t1", "x"), result("t2", "y")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        let uses = &history(&b)[1]["assistantResponseMessage"]["toolUses"];
        assert_eq!(uses[0]["input"], json!({"cmd": "ls"}));
        assert_eq!(uses[1]["input"], json!({}));
    }

    #[test]
    fn tool_call_input_that_is_not_an_object_is_bad_request() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t9", "bash", json!([1, 2]))]),
                user_with_results(vec![result("t9", "x")]),
            ]),
            &["bash"],
        );
        let msg = bad_request(build(&c, &opts()));
        assert!(msg.contains("t9"), "{msg}");
    }

    #[test]
    fn without_tools_tool_calls_and_results_become_text_everywhere() {
        let mut with_image = user_with_results(vec![result("t1", "a.txt"), result("", "")]);
        with_image.images = vec![png("I")];
        let c = conv(vec![
            user("go"),
            Message {
                tool_calls: vec![
                    call("t1", "bash", json!({"cmd": "ls"})),
                    call("", "noid", json!({})),
                ],
                ..assistant("let me look")
            },
            with_image,
        ]);
        let b = body(&c);
        let text = serde_json::to_string(&b).unwrap();
        assert!(!text.contains("toolUses"));
        assert!(!text.contains("toolResults"));
        assert_eq!(
            history(&b)[1]["assistantResponseMessage"]["content"],
            "let me look\n\n[Tool: bash (t1)]\n{\"cmd\":\"ls\"}\n\n[Tool: noid]\n{}"
        );
        assert_eq!(
            content(&b),
            "[Tool Result (t1)]\na.txt\n\n[Tool Result]\n(empty result)"
        );
        assert_eq!(current(&b)["images"][0]["source"]["bytes"], "I");
    }

    #[test]
    fn without_tools_error_results_are_marked_in_text() {
        let mut failed = result("t1", "boom");
        failed.is_error = true;
        let c = conv(vec![
            user("go"),
            assistant_calling(vec![call("t1", "bash", json!({}))]),
            user_with_results(vec![failed]),
        ]);
        assert_eq!(content(&body(&c)), "[Tool Error (t1)]\nboom");
    }

    #[test]
    fn tools_defined_keep_tool_structure() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
            ]),
            &["bash"],
        );
        let text = serde_json::to_string(&body(&c)).unwrap();
        assert!(text.contains("toolUses"));
        assert!(text.contains("toolResults"));
        assert!(!text.contains("[Tool"));
    }

    #[test]
    fn orphaned_tool_results_become_text_and_keep_images() {
        // First message, after an assistant without tool calls.
        let mut first = user_with_results(vec![result("x1", "early")]);
        first.text = "hi".into();
        first.images = vec![png("IMG")];
        let c = with_tools(
            conv(vec![
                first,
                assistant("plain answer"),
                user_with_results(vec![result("x2", "late")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        let h0 = &history(&b)[0]["userInputMessage"];
        assert_eq!(h0["content"], "hi\n\n[Tool Result (x1)]\nearly");
        assert_eq!(h0["images"][0]["source"]["bytes"], "IMG");
        assert!(h0.get("userInputMessageContext").is_none());
        assert_eq!(content(&b), "[Tool Result (x2)]\nlate");
        assert!(current(&b)["userInputMessageContext"]
            .get("toolResults")
            .is_none());
    }

    // --- tool_choice ---------------------------------------------------------------------

    #[test]
    fn tool_choice_none_sends_no_tools_and_textualises_tool_content() {
        let mut c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
            ]),
            &["bash"],
        );
        c.tool_choice = ToolChoice::None;
        let b = body(&c);
        let text = serde_json::to_string(&b).unwrap();
        assert!(!text.contains("toolSpecification"));
        assert!(!text.contains("toolUses"));
        assert!(!text.contains("toolResults"));
        assert_eq!(content(&b), "[Tool Result (t1)]\nok");
    }

    #[test]
    fn tool_choice_named_appends_instruction_naming_the_tool() {
        let mut c = with_tools(conv(vec![user("weather?")]), &["get_weather", "other"]);
        c.tool_choice = ToolChoice::Named("get_weather".into());
        let b = body(&c);
        assert!(content(&b).starts_with("weather?\n\n"));
        assert!(content(&b).contains("`get_weather`"));
        assert_eq!(
            current(&b)["userInputMessageContext"]["tools"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn tool_choice_named_unknown_tool_is_bad_request() {
        let mut c = with_tools(conv(vec![user("x")]), &["a"]);
        c.tool_choice = ToolChoice::Named("b".into());
        assert!(bad_request(build(&c, &opts())).contains("'b'"));
    }

    #[test]
    fn tool_choice_required_appends_instruction() {
        let mut c = with_tools(conv(vec![user("do it")]), &["a"]);
        c.tool_choice = ToolChoice::Required;
        let b = body(&c);
        assert!(content(&b).starts_with("do it\n\n[Tool choice]"));
        assert!(content(&b).contains("one of the available tools"));
        let mut auto = with_tools(conv(vec![user("do it")]), &["a"]);
        auto.tool_choice = ToolChoice::Auto;
        assert_eq!(content(&body(&auto)), "do it");
    }

    #[test]
    fn tool_choice_required_without_tools_is_bad_request() {
        let mut c = conv(vec![user("x")]);
        c.tool_choice = ToolChoice::Required;
        bad_request(build(&c, &opts()));
    }

    // --- thinking and system additions -------------------------------------------------

    fn fake(n: u32) -> PayloadOptions {
        PayloadOptions {
            fake_reasoning_max_tokens: Some(n),
            ..opts()
        }
    }

    #[test]
    fn thinking_tags_are_injected_into_the_current_user_message() {
        let built = build_ok(
            &conv(vec![user("q1"), assistant("a1"), user("q2")]),
            &fake(4000),
        );
        assert!(built.fake_reasoning_injected);
        assert_eq!(
            content(&built.body),
            format!("{}q2", injection_prefix(4000))
        );
        let h0 = history(&built.body)[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap();
        assert!(
            !h0.contains(&injection_prefix(4000)),
            "history is never tagged"
        );
        assert!(h0.starts_with(system_addition().trim()));
        assert!(h0.ends_with("\n\nq1"));
    }

    #[test]
    fn thinking_tags_are_injected_with_tool_results_present() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
            ]),
            &["bash"],
        );
        let built = build_ok(&c, &fake(100));
        assert!(built.fake_reasoning_injected);
        assert!(content(&built.body).starts_with(&injection_prefix(100)));
        assert!(current(&built.body)["userInputMessageContext"]
            .get("toolResults")
            .is_some());
    }

    #[test]
    fn thinking_tags_go_before_a_system_prompt_placed_in_the_current_message() {
        let mut c = conv(vec![user("hello")]);
        c.system = "SYS".into();
        let b = build_ok(&c, &fake(4000)).body;
        assert_eq!(
            content(&b),
            format!(
                "{}SYS{}\n\nhello",
                injection_prefix(4000),
                system_addition()
            )
        );
    }

    #[test]
    fn no_thinking_addition_without_injection() {
        let b = body(&conv(vec![user("hello")]));
        assert_eq!(content(&b), "hello");
        let built = build_ok(&conv(vec![user("hello")]), &opts());
        assert!(!built.fake_reasoning_injected);
    }

    #[test]
    fn truncation_notice_adds_output_truncation_handling_section() {
        let mut c = conv(vec![user("hello")]);
        c.system = "SYS".into();
        let o = PayloadOptions {
            truncation_notice: true,
            ..opts()
        };
        let b = build_ok(&c, &o).body;
        assert!(content(&b).starts_with("SYS\n\n---\n# Output Truncation Handling"));
        assert!(content(&b).ends_with("\n\nhello"));
        let bare = build_ok(&conv(vec![user("hello")]), &o).body;
        assert!(
            content(&bare).starts_with("---\n# Output Truncation Handling"),
            "without a client system prompt the addition is stripped"
        );
    }

    #[test]
    fn system_additions_come_in_order_tools_thinking_truncation() {
        let mut c = with_tools(conv(vec![user("x")]), &["a"]);
        c.tools[0].description = "long".repeat(10);
        c.system = "SYS".into();
        let o = PayloadOptions {
            tool_description_max_length: 5,
            truncation_notice: true,
            ..fake(10)
        };
        let text = content(&build_ok(&c, &o).body).to_string();
        let docs = text.find("# Tool Documentation").unwrap();
        let thinking = text.find("# Extended Thinking Mode").unwrap();
        let trunc = text.find("# Output Truncation Handling").unwrap();
        assert!(text.find("SYS").unwrap() < docs && docs < thinking && thinking < trunc);
    }

    // --- reasoning replay ----------------------------------------------------------------

    fn with_reasoning(text: &str, r: Reasoning) -> Message {
        Message {
            reasoning: Some(r),
            ..assistant(text)
        }
    }

    #[test]
    fn signed_reasoning_is_replayed_nested() {
        let a = with_reasoning(
            "answer",
            Reasoning {
                text: "I thought".into(),
                signature: Some("SIG".into()),
                redacted: None,
            },
        );
        let b = body(&conv(vec![user("q"), a, user("more")]));
        assert_eq!(
            history(&b)[1]["assistantResponseMessage"]["reasoningContent"],
            json!({"reasoningText": {"text": "I thought", "signature": "SIG"}})
        );
    }

    #[test]
    fn redacted_reasoning_is_replayed_as_redacted_content() {
        let a = with_reasoning(
            "answer",
            Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("BLOB".into()),
            },
        );
        let b = body(&conv(vec![user("q"), a, user("more")]));
        assert_eq!(
            history(&b)[1]["assistantResponseMessage"]["reasoningContent"],
            json!({"redactedContent": "BLOB"})
        );
    }

    #[test]
    fn unsigned_reasoning_is_not_replayed() {
        let a = with_reasoning(
            "answer",
            Reasoning {
                text: "tag reasoning".into(),
                signature: None,
                redacted: None,
            },
        );
        let b = body(&conv(vec![user("q"), a, user("more")]));
        assert!(history(&b)[1]["assistantResponseMessage"]
            .get("reasoningContent")
            .is_none());
        assert!(!serde_json::to_string(&b).unwrap().contains("tag reasoning"));
    }

    #[test]
    fn merged_assistants_keep_the_first_replayable_reasoning() {
        let unsigned = with_reasoning(
            "one",
            Reasoning {
                text: "plain".into(),
                ..Default::default()
            },
        );
        let signed = with_reasoning(
            "two",
            Reasoning {
                text: "signed".into(),
                signature: Some("S".into()),
                redacted: None,
            },
        );
        let b = body(&conv(vec![user("q"), unsigned, signed, user("next")]));
        let a = &history(&b)[1]["assistantResponseMessage"];
        assert_eq!(a["content"], "one\ntwo");
        assert_eq!(a["reasoningContent"]["reasoningText"]["signature"], "S");
    }

    // --- body budget ---------------------------------------------------------------------

    fn long_conversation(turns: usize, size: usize) -> Conversation {
        let mut messages = Vec::new();
        for i in 0..turns {
            messages.push(user(&format!("q{i} {}", "x".repeat(size))));
            messages.push(assistant(&format!("a{i}")));
        }
        messages.push(user("final question"));
        let mut c = conv(messages);
        c.system = "SYS".into();
        c
    }

    fn full_len(c: &Conversation) -> usize {
        build_ok(c, &opts()).body_len
    }

    #[test]
    fn body_over_limit_without_trimming_is_context_length_exceeded() {
        let c = long_conversation(3, 1000);
        let len = full_len(&c);
        let o = PayloadOptions {
            max_body_bytes: len - 1,
            ..opts()
        };
        match build(&c, &o) {
            Err(Error::ContextLengthExceeded(m)) => {
                assert!(m.starts_with("prompt is too long"), "{m}");
                assert!(m.contains(&format!("{len} bytes")), "{m}");
                assert!(m.contains(&format!("{} bytes", len - 1)), "{m}");
                assert!(m.contains("Compact"), "{m}");
            }
            other => panic!("expected ContextLengthExceeded, got {other:?}"),
        }
        let exact = PayloadOptions {
            max_body_bytes: len,
            ..opts()
        };
        assert_eq!(
            build_ok(&c, &exact).body_len,
            len,
            "a body at the limit fits"
        );
    }

    #[test]
    fn image_data_does_not_count_against_the_body_budget() {
        let mut c = long_conversation(1, 100);
        let text_only = full_len(&c);
        // Room for the `images` wrapper JSON, not for the data.
        let o = PayloadOptions {
            max_body_bytes: text_only + 100,
            ..opts()
        };
        if let Some(first) = c.messages.first_mut() {
            first.images.push(Image {
                format: "png".into(),
                data: "A".repeat(50_000),
            });
        }
        let built = build_ok(&c, &o);
        assert!(built.body_len > text_only + 50_000, "{}", built.body_len);
        // The same bytes as text do count.
        let mut as_text = long_conversation(1, 100);
        as_text.messages[0].text.push_str(&"A".repeat(50_000));
        assert!(matches!(
            build(&as_text, &o),
            Err(Error::ContextLengthExceeded(_))
        ));
    }

    #[test]
    fn an_image_over_the_kiro_base64_cap_is_refused_wherever_it_is() {
        let big = Image {
            format: "png".into(),
            data: "A".repeat(MAX_IMAGE_BASE64_BYTES + 1),
        };
        let mut in_history = long_conversation(1, 10);
        in_history.messages[0].images.push(big.clone());
        let mut in_result = long_conversation(1, 10);
        in_result.messages[2].tool_results.push(ToolResult {
            tool_use_id: "t".into(),
            text: "shot".into(),
            is_error: false,
            images: vec![big],
        });
        for c in [in_history, in_result] {
            match build(&c, &opts()) {
                Err(Error::PayloadTooLarge(m)) => assert!(m.contains("5242880"), "{m}"),
                other => panic!("expected PayloadTooLarge, got {other:?}"),
            }
        }
        let mut at_cap = long_conversation(1, 10);
        at_cap.messages[0].images.push(Image {
            format: "png".into(),
            data: "A".repeat(MAX_IMAGE_BASE64_BYTES),
        });
        assert!(build(&at_cap, &opts()).is_ok());
    }

    #[test]
    fn trimming_drops_oldest_turns_and_keeps_system_prompt_and_current_message() {
        let c = long_conversation(4, 1000);
        let len = full_len(&c);
        let o = PayloadOptions {
            max_body_bytes: len - 1500,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 2);
        assert!(built.body_len <= o.max_body_bytes);
        assert_eq!(
            built.body_len,
            serde_json::to_vec(&built.body).unwrap().len()
        );
        let h = history(&built.body);
        assert_eq!(h.len(), 4);
        let first = h[0]["userInputMessage"]["content"].as_str().unwrap();
        assert!(
            first.starts_with("SYS\n\nq2 "),
            "system re-placed: {}",
            &first[..12]
        );
        assert_eq!(content(&built.body), "final question");
    }

    #[test]
    fn trimmed_body_equals_the_body_without_those_turns_and_cuts_no_deeper() {
        let c = long_conversation(5, 700);
        let mut shorter = c.clone();
        shorter.messages.drain(..2);
        let expected = build_ok(&shorter, &opts());
        let o = PayloadOptions {
            max_body_bytes: expected.body_len,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 1);
        assert_eq!(built.body, expected.body);
        assert_eq!(built.body_len, expected.body_len);
    }

    #[test]
    fn trimming_everything_moves_system_prompt_to_current_message() {
        let c = long_conversation(2, 1000);
        // The budget leaves room for the system additions and the last turn only.
        let last_only = build_ok(&long_conversation(0, 1000), &fake(50)).body_len;
        let o = PayloadOptions {
            max_body_bytes: last_only + 100,
            trim_oldest: true,
            ..fake(50)
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 2);
        assert!(!has_history(&built.body));
        let text = content(&built.body);
        assert!(text.starts_with(&injection_prefix(50)));
        assert!(text.contains("SYS"));
        assert!(text.ends_with("\n\nfinal question"));
    }

    #[test]
    fn trimming_never_separates_tool_uses_from_tool_results() {
        let big = "y".repeat(2000);
        let c = with_tools(
            conv(vec![
                user(&format!("old {big}")),
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("t1", &big)]),
                assistant("done"),
                user("recent"),
                assistant("ok"),
                user("now"),
            ]),
            &["bash"],
        );
        let len = full_len(&c);
        // Dropping the first turn alone would fit by size, but would leave t1's result first.
        let o = PayloadOptions {
            max_body_bytes: len - 2100,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 2);
        let h = history(&built.body);
        assert_eq!(h.len(), 2);
        assert!(h[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap()
            .ends_with("recent"));
        let text = serde_json::to_string(&built.body).unwrap();
        assert!(!text.contains("toolResults"));
        assert!(!text.contains("toolUses"));
    }

    #[test]
    fn trimming_keeps_a_tool_pair_ending_in_the_current_message() {
        let big = "z".repeat(3000);
        let c = with_tools(
            conv(vec![
                user(&big),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "r")]),
            ]),
            &["bash"],
        );
        let o = PayloadOptions {
            max_body_bytes: 500,
            trim_oldest: true,
            ..opts()
        };
        match build(&c, &o) {
            Err(Error::ContextLengthExceeded(m)) => {
                assert!(m.contains("No older turn could be dropped"), "{m}")
            }
            other => panic!("expected ContextLengthExceeded, got {other:?}"),
        }
    }

    #[test]
    fn trimming_that_cannot_fit_is_context_length_exceeded() {
        let mut c = long_conversation(2, 100);
        if let Some(last) = c.messages.last_mut() {
            last.text = "w".repeat(5000);
        }
        let o = PayloadOptions {
            max_body_bytes: 1000,
            trim_oldest: true,
            ..opts()
        };
        match build(&c, &o) {
            Err(Error::ContextLengthExceeded(m)) => {
                assert!(
                    m.contains("Dropping the 2 oldest turn(s) still leaves"),
                    "{m}"
                )
            }
            other => panic!("expected ContextLengthExceeded, got {other:?}"),
        }
    }

    #[test]
    fn trimming_keeps_the_prefill_turn() {
        let mut c = long_conversation(3, 1000);
        c.messages.push(assistant("prefix of the answer"));
        let o = PayloadOptions {
            max_body_bytes: 1500,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 3);
        let h = history(&built.body);
        assert_eq!(h.len(), 2);
        assert!(h[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap()
            .ends_with("final question"));
        assert_eq!(
            h[1]["assistantResponseMessage"]["content"],
            "prefix of the answer"
        );
        assert_eq!(content(&built.body), "Continue");
    }

    #[test]
    fn unlimited_budget_never_trims() {
        let c = long_conversation(50, 1000);
        let o = PayloadOptions {
            max_body_bytes: 0,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 0);
        assert_eq!(history(&built.body).len(), 100);
    }

    // --- token estimate ------------------------------------------------------------------

    #[test]
    fn estimate_tokens_counts_four_ascii_characters_per_token_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("a"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens(&"x".repeat(400)), 100);
    }

    #[test]
    fn estimate_tokens_counts_each_non_ascii_character_as_one_token() {
        assert_eq!(estimate_tokens("日本語"), 3);
        assert_eq!(estimate_tokens("abcd日本"), 3);
    }

    #[test]
    fn estimated_input_tokens_cover_contents_tools_and_results_but_not_images_or_ids() {
        let plain = build_ok(&conv(vec![user(&"x".repeat(400))]), &opts());
        assert_eq!(plain.estimated_input_tokens, 100);

        let with_image = Message {
            images: vec![png(&"A".repeat(100_000))],
            ..user(&"x".repeat(400))
        };
        let imaged = build_ok(&conv(vec![with_image]), &opts());
        assert_eq!(
            imaged.estimated_input_tokens, 100,
            "image bytes are not text"
        );

        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("t1", &"r".repeat(4000))]),
            ]),
            &["bash"],
        );
        let built = build_ok(&c, &opts());
        let spec = current(&built.body)["userInputMessageContext"]["tools"][0]["toolSpecification"]
            .to_string();
        let expected_ascii = "go".len()
            + "(empty)".len()
            + "bash".len()
            + json!({"cmd": "ls"}).to_string().len()
            + 4000
            + "Continue".len()
            + spec.len();
        assert_eq!(
            built.estimated_input_tokens,
            expected_ascii.div_ceil(4) as u64
        );
    }

    // --- a worked example: system, image, tool call and result -----------------------------------------------

    #[test]
    fn spec_example_2_5_is_reproduced() {
        let c = Conversation {
            model: "claude-sonnet-4-5".into(),
            system: "SYS".into(),
            messages: vec![
                Message {
                    images: vec![png("AAAA")],
                    ..user("look")
                },
                assistant_calling(vec![call("tooluse_1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("tooluse_1", "a.txt")]),
                user("next"),
            ],
            tools: vec![ToolSpec {
                name: "bash".into(),
                description: String::new(),
                schema: json!({"type": "object", "properties": {"cmd": {"type": "string"}},
                               "required": [], "additionalProperties": false}),
            }],
            ..Default::default()
        };
        let o = PayloadOptions {
            truncation_notice: true,
            ..fake(4000)
        };
        let built = build_ok(&c, &o);
        let b = &built.body;
        // Unlike the Python, the empty tool-result text adds no leading "\n" before "next".
        assert_eq!(
            current(b),
            &json!({
                "content": format!("{}next", injection_prefix(4000)),
                "modelId": "claude-sonnet-4.5",
                "origin": "AI_EDITOR",
                "userInputMessageContext": {
                    "tools": [{"toolSpecification": {"name": "bash", "description": "Tool: bash",
                        "inputSchema": {"json": {"type": "object",
                            "properties": {"cmd": {"type": "string"}}}}}}],
                    "toolResults": [{"content": [{"text": "a.txt"}], "status": "success",
                                     "toolUseId": "tooluse_1"}]
                }
            })
        );
        assert!(content(b).starts_with(
            "<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>4000</max_thinking_length>\n"
        ));
        let h = history(b);
        assert_eq!(h.len(), 2);
        let u = &h[0]["userInputMessage"];
        let first = u["content"].as_str().unwrap();
        assert_eq!(
            first,
            format!(
                "SYS{}{}\n\nlook",
                system_addition(),
                truncation_system_addition()
            )
        );
        assert!(first.starts_with("SYS\n\n---\n# Extended Thinking Mode"));
        assert_eq!(u["modelId"], "claude-sonnet-4.5");
        assert_eq!(u["origin"], "AI_EDITOR");
        assert_eq!(
            u["images"],
            json!([{"format": "png", "source": {"bytes": "AAAA"}}])
        );
        assert_eq!(
            h[1],
            json!({"assistantResponseMessage": {"content": "(empty)",
                "toolUses": [{"name": "bash", "input": {"cmd": "ls"}, "toolUseId": "tooluse_1"}]}})
        );
        assert!(built.fake_reasoning_injected);
        assert_eq!(built.trimmed_turns, 0);
        assert!(b.get("profileArn").is_none());
    }
}
