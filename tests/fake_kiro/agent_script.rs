//! A scripted coding agent for end-to-end runs of real clients (`scripts/e2e_clients.sh`): the
//! fake Kiro plays a model that drives the client's own tools through a fixed plan — write a
//! file, edit it, run a shell command — and then says what the tools answered.
//!
//! The plan works in the directory named by `E2E_DIR=<path>` in the user's prompt. The step is
//! the number of tool results the conversation holds, so the script needs no state and every
//! client's own history drives it. Which tools it calls depends on what the client offered
//! (matched by name, ignoring a `namespace__` prefix):
//!
//! | client | write | edit | shell |
//! |---|---|---|---|
//! | Claude Code | `Write` | `Edit` | `Bash` |
//! | Continue CLI (`cn`) | `Write` | `Read`, then `MultiEdit` | `Bash` |
//! | opencode | `write` | `edit` | `bash` |
//! | Cline CLI, Chat Completions | `editor` (creates) | `editor` | `run_commands` |
//! | Cline CLI, Responses | `apply_patch` (a function) | `apply_patch` | `run_commands` |
//! | Codex with `apply_patch` | `apply_patch` (Add File) | `apply_patch` (Update File) | `exec_command` |
//! | Codex in code mode (`exec`) | `exec` running `tools.apply_patch` | the same | `exec` running `tools.exec_command` |
//! | Codex with only `exec_command` | `exec_command` (printf) | `exec_command` (sed) | `exec_command` |
//! | no tools, aider's prompt | a whole-file block for `notes.txt` | — | — |
//!
//! A freeform (custom) tool is expected as a Kiro tool with one string parameter; the script
//! fills the first string property of its schema.
//!
//! A request for a structured answer (the gateway's `structured_answer` tool) is answered with an
//! object of the schema whose strings say "E2E title".
//!
//! A prompt with [`QUOTA_MARKER`] gets Kiro's monthly-quota refusal instead, to check that clients
//! stop at once rather than retry. A prompt with [`MCP_MARKER`] calls the tool whose description
//! starts with [`MCP_TOOL_DESCRIPTION`] once (an MCP server's tool, whatever name it reaches Kiro
//! under) and then answers with its result; when that tool is not offered but a `tool_search` or
//! `ToolSearch` tool is (Codex and Claude Code defer MCP tools behind them), it searches first.

use super::{Ev, Recorded, Reply};
use serde_json::{json, Value};

/// The marker that names the working directory in the prompt.
pub const DIR_MARKER: &str = "E2E_DIR=";
/// The file the plan writes and edits.
pub const FILE: &str = "notes.txt";
/// What the write step puts in [`FILE`].
pub const FIRST: &str = "first line";
/// What the edit step makes of it.
pub const EDITED: &str = "first line, edited";
/// The file the shell step creates: `wc -l` of [`FILE`].
pub const SHELL_OUT: &str = "count.txt";
/// How the final answer starts.
pub const DONE: &str = "E2E done.";
/// In the prompt: answer with Kiro's 429 for a spent monthly quota.
pub const QUOTA_MARKER: &str = "E2E_QUOTA";
/// In the prompt: call the MCP tool instead of the write / edit / shell plan.
pub const MCP_MARKER: &str = "E2E_MCP";
/// How the description of the MCP tool called after [`MCP_MARKER`] starts.
pub const MCP_TOOL_DESCRIPTION: &str = "Weather report for a city";

/// The reply for one inference request.
pub fn reply(request: &Recorded) -> Reply {
    let state = &request.body["conversationState"];
    let current = &state["currentMessage"]["userInputMessage"];
    let history: &[Value] = state["history"].as_array().map_or(&[], Vec::as_slice);
    let entries: Vec<&Value> = history.iter().chain([&state["currentMessage"]]).collect();
    let texts: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["userInputMessage"]["content"].as_str())
        .collect();
    let results: Vec<String> = entries
        .iter()
        .filter_map(|e| e["userInputMessage"]["userInputMessageContext"]["toolResults"].as_array())
        .flatten()
        .map(result_text)
        .collect();
    if texts.iter().any(|t| t.contains(QUOTA_MARKER)) {
        return Reply::error(
            429,
            "You have reached the limit for this month.",
            Some("MONTHLY_REQUEST_COUNT"),
        );
    }
    let Some(dir) = texts.iter().find_map(|t| work_dir(t)) else {
        return finish(vec![Ev::text("No E2E_DIR in the prompt.")]);
    };
    let tools: Vec<&Value> = current["userInputMessageContext"]["tools"]
        .as_array()
        .map(|t| t.iter().map(|t| &t["toolSpecification"]).collect())
        .unwrap_or_default();
    // A structured answer (Claude Code names its sessions with a JSON schema): the gateway
    // offers its answer tool, which the model calls with an object of the schema.
    if let Some(answer) = find(&tools, STRUCTURED_ANSWER_TOOL) {
        let args = schema_example(&answer["inputSchema"]["json"]).to_string();
        return finish(Ev::tool_call(
            "tooluse_e2e_answer",
            STRUCTURED_ANSWER_TOOL,
            &args,
            2,
        ));
    }
    if tools.is_empty() {
        let aider = texts
            .iter()
            .any(|t| t.contains("MUST return the entire content"));
        let text = if aider {
            format!("{FILE}\n```\n{FIRST}\n```\n")
        } else {
            "E2E title".to_string()
        };
        return finish(vec![Ev::text(&text)]);
    }
    let step = results.len();
    let called: Vec<&str> = history
        .iter()
        .filter_map(|e| e["assistantResponseMessage"]["toolUses"].as_array())
        .flatten()
        .filter_map(|u| u["name"].as_str())
        .collect();
    let call = if texts.iter().any(|t| t.contains(MCP_MARKER)) {
        mcp_step(&tools, &called)
    } else {
        plan_step(step, &dir, &tools)
    };
    let Some(call) = call else {
        let summary: Vec<String> = results
            .iter()
            .map(|r| r.chars().take(160).collect::<String>().replace('\n', " "))
            .collect();
        return finish(Ev::words(&format!(
            "{DONE} Tool results: {}",
            summary.join(" | ")
        )));
    };
    let id = format!("tooluse_e2e{step}");
    let mut events = vec![Ev::text(&format!("Step {}.", step + 1))];
    events.extend(Ev::tool_call(&id, &call.0, &call.1.to_string(), 4));
    finish(events)
}

/// The tool the gateway offers Kiro for a structured answer (`src/structured.rs`).
const STRUCTURED_ANSWER_TOOL: &str = "structured_answer";

/// An object with every required property of `schema`: strings say "E2E title".
fn schema_example(schema: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        let value = match schema["properties"][name]["type"].as_str() {
            Some("string") => json!("E2E title"),
            Some("integer" | "number") => json!(1),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => schema_example(&schema["properties"][name]),
            _ => Value::Null,
        };
        out.insert(name.to_string(), value);
    }
    Value::Object(out)
}

fn finish(mut events: Vec<Ev>) -> Reply {
    events.push(Ev::Metering(super::DEFAULT_CREDITS));
    events.push(Ev::ContextUsage(super::DEFAULT_CONTEXT_PCT));
    events.push(Ev::Metadata {
        input: super::DEFAULT_INPUT_TOKENS,
        output: 20,
    });
    Reply::events(events)
}

fn result_text(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .map(|p| match &p["text"] {
                    Value::String(s) => s.clone(),
                    _ => p["json"].to_string(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn work_dir(text: &str) -> Option<String> {
    let rest = &text[text.find(DIR_MARKER)? + DIR_MARKER.len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '<' || c == '\\')
        .unwrap_or(rest.len());
    let dir = rest[..end].trim_end_matches(['.', ',', ':', ';']);
    (!dir.is_empty()).then(|| dir.to_string())
}

/// The Kiro name of the offered tool called `name` (exactly, or after a `namespace__` prefix).
fn find<'a>(tools: &'a [&Value], name: &str) -> Option<&'a Value> {
    tools.iter().copied().find(|t| {
        t["name"]
            .as_str()
            .is_some_and(|n| n == name || n.ends_with(&format!("__{name}")))
    })
}

fn name_of(tool: &Value) -> String {
    tool["name"].as_str().unwrap_or_default().to_string()
}

/// Arguments for a freeform tool: its one string parameter set to `text`.
fn freeform(tool: &Value, text: &str) -> Value {
    let schema = &tool["inputSchema"]["json"];
    let param = schema["properties"]
        .as_object()
        .and_then(|p| {
            p.iter()
                .find(|(_, v)| v["type"] == "string")
                .map(|(k, _)| k.clone())
        })
        .unwrap_or_else(|| "input".to_string());
    json!({ param: text })
}

fn add_patch() -> String {
    format!("*** Begin Patch\n*** Add File: {FILE}\n+{FIRST}\n*** End Patch\n")
}

fn update_patch() -> String {
    format!("*** Begin Patch\n*** Update File: {FILE}\n@@\n-{FIRST}\n+{EDITED}\n*** End Patch\n")
}

fn shell_command() -> String {
    format!("wc -l {FILE} > {SHELL_OUT}")
}

/// The call of the MCP tool (after a tool search when it is not offered yet), then `None`.
fn mcp_step(tools: &[&Value], called: &[&str]) -> Option<(String, Value)> {
    let mcp = tools.iter().find(|t| {
        t["description"]
            .as_str()
            .is_some_and(|d| d.starts_with(MCP_TOOL_DESCRIPTION))
    });
    match mcp {
        Some(tool) if !called.contains(&tool["name"].as_str().unwrap_or_default()) => {
            Some((name_of(tool), json!({"city": "Paris"})))
        }
        Some(_) => None,
        None => {
            let search = find(tools, "tool_search").or_else(|| find(tools, "ToolSearch"))?;
            let name = name_of(search);
            (!called.contains(&name.as_str()))
                .then(|| (name, json!({"query": "weather report for a city"})))
        }
    }
}

/// The tool call for `step` (0 write, 1 edit, 2 shell; Continue reads at 1 and goes on one step
/// later), or `None` when the plan is done.
fn plan_step(step: usize, dir: &str, tools: &[&Value]) -> Option<(String, Value)> {
    let path = format!("{dir}/{FILE}");
    // Continue's MultiEdit refuses a file it has not read: its plan reads before the edit.
    // (Claude Code, which has an `Edit` tool, takes the plan below.)
    if let (None, Some(write), Some(read), Some(edit), Some(bash)) = (
        find(tools, "Edit"),
        find(tools, "Write"),
        find(tools, "Read"),
        find(tools, "MultiEdit"),
        find(tools, "Bash"),
    ) {
        return Some(match step {
            0 => (
                name_of(write),
                json!({"filepath": path, "content": format!("{FIRST}\n")}),
            ),
            1 => (name_of(read), json!({ "filepath": path })),
            2 => (
                name_of(edit),
                json!({"file_path": path, "edits": [{"old_string": FIRST, "new_string": EDITED}]}),
            ),
            3 => (
                name_of(bash),
                json!({"command": format!("cd {dir} && {}", shell_command())}),
            ),
            _ => return None,
        });
    }
    if step > 2 {
        return None;
    }
    if let (Some(write), Some(edit), Some(bash)) = (
        find(tools, "Write"),
        find(tools, "Edit"),
        find(tools, "Bash"),
    ) {
        return Some(match step {
            0 => (
                name_of(write),
                json!({"file_path": path, "content": format!("{FIRST}\n")}),
            ),
            1 => (
                name_of(edit),
                json!({"file_path": path, "old_string": FIRST, "new_string": EDITED}),
            ),
            _ => (
                name_of(bash),
                json!({"command": format!("cd {dir} && {}", shell_command()), "description": "Count the lines"}),
            ),
        });
    }
    if let (Some(write), Some(edit), Some(bash)) = (
        find(tools, "write"),
        find(tools, "edit"),
        find(tools, "bash"),
    ) {
        return Some(match step {
            0 => (
                name_of(write),
                json!({"filePath": path, "content": format!("{FIRST}\n")}),
            ),
            1 => (
                name_of(edit),
                json!({"filePath": path, "oldString": FIRST, "newString": EDITED}),
            ),
            _ => (
                name_of(bash),
                json!({"command": format!("cd {dir} && {}", shell_command()), "description": "Count the lines"}),
            ),
        });
    }
    let run_commands = find(tools, "run_commands");
    let run = |run: &Value| {
        (
            name_of(run),
            json!({"commands": [format!("cd {dir} && {}", shell_command())]}),
        )
    };
    if let (Some(patch), Some(shell)) = (find(tools, "apply_patch"), run_commands) {
        // Cline's apply_patch writes the file without its last newline, which `wc -l` would
        // not count: count the lines with awk, which prints the same `1 notes.txt`.
        let count = format!("cd {dir} && awk 'END {{ print NR, FILENAME }}' {FILE} > {SHELL_OUT}");
        return Some(match step {
            0 => (name_of(patch), freeform(patch, &add_patch())),
            1 => (name_of(patch), freeform(patch, &update_patch())),
            _ => (name_of(shell), json!({ "commands": [count] })),
        });
    }
    if let (Some(edit), Some(shell)) = (find(tools, "editor"), run_commands) {
        return Some(match step {
            0 => (
                name_of(edit),
                json!({"path": path, "new_text": format!("{FIRST}\n")}),
            ),
            1 => (
                name_of(edit),
                json!({"path": path, "old_text": FIRST, "new_text": EDITED}),
            ),
            _ => run(shell),
        });
    }
    let shell = find(tools, "exec_command");
    if let (Some(patch), Some(shell)) = (find(tools, "apply_patch"), shell) {
        return Some(match step {
            0 => (name_of(patch), freeform(patch, &add_patch())),
            1 => (name_of(patch), freeform(patch, &update_patch())),
            _ => (
                name_of(shell),
                json!({"cmd": shell_command(), "workdir": dir}),
            ),
        });
    }
    if let Some(exec) = find(tools, "exec") {
        let js = match step {
            0 => format!(
                "const r = await tools.apply_patch({});\ntext(JSON.stringify(r));",
                json!(add_patch())
            ),
            1 => format!(
                "const r = await tools.apply_patch({});\ntext(JSON.stringify(r));",
                json!(update_patch())
            ),
            _ => format!(
                "const r = await tools.exec_command({});\ntext(JSON.stringify(r));",
                json!({"cmd": shell_command(), "workdir": dir})
            ),
        };
        return Some((name_of(exec), freeform(exec, &js)));
    }
    if let Some(shell) = shell {
        let cmd = match step {
            0 => format!("printf '%s\\n' '{FIRST}' > {FILE}"),
            1 => format!("sed -i 's/^{FIRST}$/{EDITED}/' {FILE}"),
            _ => shell_command(),
        };
        return Some((name_of(shell), json!({"cmd": cmd, "workdir": dir})));
    }
    None
}
