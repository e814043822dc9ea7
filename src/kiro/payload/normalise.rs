//! The conversation put into the shape Kiro validates (`docs/kiro-wire.md#history`): tools
//! checked and specified, the system prompt assembled, tool content paired or turned into text,
//! adjacent roles merged, strict alternation, the current message split off. Everything here is
//! independent of which turns are kept and of the attempt.

use serde_json::{Map, Value};

use super::tool_names::ToolNames;
use super::{PayloadOptions, CONTINUE_TEXT, EMPTY_RESULT, EMPTY_TEXT};
use crate::conversation::{
    Conversation, Message, Reasoning, Role, ToolCall, ToolChoice, ToolResult, ToolSpec,
};
use crate::error::Error;
use crate::kiro::schema::clean_schema;
use crate::kiro::wire::{InputSchema, Tool, ToolSpecification};
use crate::thinking::{injection_prefix, system_addition, truncation_system_addition};

/// The conversation after every step that does not depend on which turns are kept or on the
/// attempt; [`Prepared::request`](super::render) renders it for a given number of dropped history
/// entries and an attempt's shape.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Prepared {
    pub model_id: String,
    pub conversation_id: String,
    pub reasoning_fields: Option<Value>,
    /// The assembled system prompt (may be empty).
    pub system: String,
    /// `toolSpecification` entries for the current message.
    pub tools: Vec<Tool>,
    /// Alternating user/assistant messages, starting with a user message, ending with an
    /// assistant message (so always of even length).
    pub history: Vec<Message>,
    /// The current user message; its text is final except for the system prompt and the tags.
    pub current: Message,
    /// The conversation ended with an assistant message (prefill), now the last history entry.
    pub prefill: bool,
    /// The thinking-tag prefix, when it is injected.
    pub inject: Option<String>,
    /// Aliases of the client's tool names Kiro would refuse; everything above uses them.
    pub tool_names: ToolNames,
}

pub(super) fn prepare(conv: &Conversation, opts: &PayloadOptions) -> Result<Prepared, Error> {
    let last_role = match conv.messages.last() {
        Some(m) => m.role,
        None => return Err(Error::BadRequest("No messages to send".to_string())),
    };

    // tool_choice "none": the model may not call tools, so Kiro gets none of the client's tools;
    // tools the history calls are still specified, as stubs (see `stub_tools`).
    let tools: &[ToolSpec] = match conv.tool_choice {
        ToolChoice::None => &[],
        _ => &conv.tools,
    };
    let calls = conv.messages.iter().flat_map(|m| &m.tool_calls);
    let names = ToolNames::for_names(
        conv.tools
            .iter()
            .map(|t| t.name.as_str())
            .chain(calls.map(|c| c.name.as_str())),
    );
    let choice_instruction = tool_choice_instruction(&conv.tool_choice, tools, &names)?;
    let (mut tool_specs, tool_docs) =
        tool_specifications(tools, opts.tool_description_max_length, &names);

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

    let messages = alternating_messages(&conv.messages, &names);
    let (mut history, mut current, prefill) = split_current(messages)?;
    let stubs = stub_tools(&history, &tool_specs);
    tool_specs.extend(stubs);
    for m in &mut history {
        for call in &mut m.tool_calls {
            call.input = tool_input_object(call)?;
        }
    }
    if current.text.trim().is_empty() {
        // Kiro rejects an empty `content` (`docs/kiro-wire.md#history`).
        current.text = CONTINUE_TEXT.to_string();
    }
    if let Some(instruction) = choice_instruction {
        current.text.push_str(&instruction);
    }

    Ok(Prepared {
        model_id: opts.model_id.clone(),
        conversation_id: opts.conversation_id.clone(),
        reasoning_fields: opts.reasoning_fields.clone(),
        system,
        tools: tool_specs,
        history,
        current,
        prefill,
        inject,
        tool_names: names,
    })
}

/// The messages normalised, merged and paired into a strict user/assistant alternation that
/// starts with a user message.
fn alternating_messages(messages: &[Message], names: &ToolNames) -> Vec<Message> {
    let mut messages: Vec<Message> = messages.iter().map(normalise_message).collect();
    for call in messages.iter_mut().flat_map(|m| &mut m.tool_calls) {
        let kiro = names.to_kiro(&call.name);
        if kiro != call.name {
            call.name = kiro.to_string();
        }
    }
    let mut messages = merge_adjacent(messages);
    pair_tool_results(&mut messages);
    if messages.first().is_some_and(|m| m.role == Role::Assistant) {
        // A history that starts with an assistant message is rejected
        // (`docs/kiro-wire.md#history`).
        messages.insert(0, Message::text(Role::User, EMPTY_TEXT));
    }
    ensure_alternation(messages)
}

/// History, the current user message, and whether the conversation ended with a prefill.
fn split_current(mut messages: Vec<Message>) -> Result<(Vec<Message>, Message, bool), Error> {
    match messages.pop() {
        Some(mut last) if last.role == Role::Assistant => {
            // Prefill / trailing assistant turn: Kiro's current message must be a user message, so
            // the assistant text goes to history and the model is asked to go on. Its tool calls
            // are dropped: without results after them Kiro would reject the pair.
            last.tool_calls.clear();
            messages.push(last);
            Ok((messages, Message::text(Role::User, CONTINUE_TEXT), true))
        }
        Some(last) => Ok((messages, last, false)),
        None => Err(Error::BadRequest("No messages to send".to_string())),
    }
}

/// Minimal specifications for the tools the history calls but the request does not offer.
///
/// Kiro refuses a body whose history holds tool uses or results while the current message
/// offers no such tool (`docs/kiro-wire.md#stub-tools`): clients drop their tools on follow-up
/// turns, with `tool_choice: none` and in compaction requests. A stub carries the name only, and
/// says it is not available, so the model is offered nothing new.
fn stub_tools(history: &[Message], offered: &[Tool]) -> Vec<Tool> {
    let mut names: Vec<&str> = Vec::new();
    for call in history.iter().flat_map(|m| &m.tool_calls) {
        let name = call.name.as_str();
        if !name.is_empty()
            && !names.contains(&name)
            && !offered.iter().any(|t| t.tool_specification.name == name)
        {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| Tool {
            tool_specification: ToolSpecification {
                name: name.to_string(),
                description: STUB_DESCRIPTION.to_string(),
                input_schema: InputSchema {
                    json: serde_json::json!({"type": "object", "properties": {}}),
                },
            },
        })
        .collect()
}

/// What a stub tool says about itself.
pub(super) const STUB_DESCRIPTION: &str =
    "A tool used earlier in this conversation. It is not available now: do not call it.";

/// Kiro has no `tool_choice`: a forced tool is asked for in the prompt instead.
///
/// All tools are still sent for a named choice: history may hold calls of the other tools, and
/// Kiro checks history tool names against the defined tools.
fn tool_choice_instruction(
    choice: &ToolChoice,
    tools: &[ToolSpec],
    names: &ToolNames,
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
                "\n\n[Tool choice] You must respond by calling the tool `{}` now; do not \
                 answer with text only.",
                names.to_kiro(name)
            )))
        }
    }
}

/// The `toolSpecification` entries, and the system-prompt section holding descriptions too long
/// for them.
fn tool_specifications(
    tools: &[ToolSpec],
    max_description: usize,
    names: &ToolNames,
) -> (Vec<Tool>, String) {
    let mut specs = Vec::with_capacity(tools.len());
    let mut sections = Vec::new();
    for tool in tools {
        let name = names.to_kiro(&tool.name);
        let description =
            if max_description > 0 && tool.description.chars().count() > max_description {
                // A very long description gets 400 "Improperly formed request"
                // (`docs/kiro-wire.md#tool-specs`): the text moves to the system prompt and the
                // tool points at it.
                sections.push(format!("## Tool: {name}\n\n{}", tool.description));
                format!("[Full documentation in system prompt under '## Tool: {name}']")
            } else if tool.description.trim().is_empty() {
                // Kiro requires a non-empty description (400, `docs/kiro-wire.md#tool-specs`).
                format!("Tool: {name}")
            } else {
                tool.description.clone()
            };
        specs.push(Tool {
            tool_specification: ToolSpecification {
                name: name.to_string(),
                description,
                input_schema: InputSchema {
                    json: clean_schema(&tool.schema),
                },
            },
        });
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
    // result or the context (`docs/kiro-wire.md#images`).
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
            // A call without an id can never be answered (results pair by id): text.
            let (calls, idless): (Vec<ToolCall>, Vec<ToolCall>) = std::mem::take(&mut m.tool_calls)
                .into_iter()
                .partition(|c| !c.id.is_empty());
            m.tool_calls = calls;
            append_parts(&mut m.text, idless.iter().map(tool_call_text));
            // Kiro's assistant messages carry no images.
            m.images.clear();
        }
    }
    m
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

pub(super) fn result_text(result: &ToolResult) -> &str {
    if result.text.is_empty() {
        EMPTY_RESULT
    } else {
        &result.text
    }
}

/// Joins adjacent messages of the same role: Kiro answers 400 "Improperly formed request" to two
/// user (or two assistant) messages in a row (`docs/kiro-wire.md#history`). Texts are joined with
/// `\n` (an empty text adds nothing), images, tool calls and tool results are concatenated. Of the reasoning blocks
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
pub(super) fn ensure_alternation(messages: Vec<Message>) -> Vec<Message> {
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
pub(super) fn replayable(r: &Reasoning) -> bool {
    r.signature.as_deref().is_some_and(|s| !s.is_empty())
        || r.redacted.as_deref().is_some_and(|s| !s.is_empty())
}
