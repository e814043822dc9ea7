//! Responses tools → the tool specs Kiro gets, and the map that turns Kiro's calls back into the
//! Responses items the client expects.
//!
//! Kiro knows only flat function tools with a JSON object as input. The Responses API has more:
//! - `namespace` groups (Codex: `multi_agent_v1`, `functions`, …) are flattened to
//!   `{namespace}__{name}`; their calls go back as items with the bare `name` and a `namespace`
//!   field, which is how the client finds the tool again.
//! - `custom` (freeform) tools take raw text, described by a grammar (Codex's `apply_patch`). Kiro
//!   gets a tool with one string parameter, [`CUSTOM_INPUT`], and the grammar in its description;
//!   calls go back as `custom_tool_call` items carrying that text.
//! - `tool_search` run by the client (`execution: "client"`, Codex's search over its deferred MCP
//!   tools) is a Kiro tool like a function; its calls go back as `tool_search_call` items, and the
//!   tools a `tool_search_output` item loads are offered to Kiro from then on.
//! - Web search is served through Kiro (`crate::websearch`). Other hosted tools run by OpenAI's
//!   servers (file search, code interpreter, …) cannot run here: they are left out of what Kiro
//!   sees and reported to the client (`x-kiro-gateway-ignored-tools`), so a client that always
//!   sends them still works.
//!
//! A tool of a type no API defines, a namespace without tools, or a tool without a name is a 400
//! naming the field: that is a mistake in the request, not a capability the gateway lacks.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::conversation::ToolSpec;
use crate::error::Error;
use crate::websearch::{self, WebSearchRequest};

/// The one parameter of the Kiro tool that stands for a freeform tool.
pub const CUSTOM_INPUT: &str = "input";

/// The Kiro name of the client's `tool_search` tool.
pub const TOOL_SEARCH: &str = "tool_search";

/// Tool types of the Responses API that OpenAI's servers (or a client-side feature the gateway
/// does not offer) run, never a function the model calls through the client.
const HOSTED_TOOL_TYPES: [&str; 14] = [
    // `tool_search` counts as hosted only when the server is to run it (see `Tools::add`).
    "web_search",
    "web_search_preview",
    "web_search_2025_08_26",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "computer_use_preview",
    "computer_use",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "tool_search",
];

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// The name Kiro sees for `name` in `namespace`.
pub fn kiro_name(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}__{name}"),
        _ => name.to_string(),
    }
}

/// How a Kiro tool call goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTool {
    /// The tool's name as the client declared it (without its namespace).
    pub name: String,
    pub namespace: Option<String>,
    /// A freeform tool: its calls are `custom_tool_call` items.
    pub custom: bool,
    /// The client's tool search: its calls are `tool_search_call` items.
    pub tool_search: bool,
}

/// Kiro tool name → the client's tool, for the tools that are not a plain top-level function.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolMap(HashMap<String, ClientTool>);

impl ToolMap {
    /// The client's view of the tool Kiro called `kiro_name`.
    pub fn client(&self, kiro_name: &str) -> ClientTool {
        self.0
            .get(kiro_name)
            .cloned()
            .unwrap_or_else(|| ClientTool {
                name: kiro_name.to_string(),
                namespace: None,
                custom: false,
                tool_search: false,
            })
    }
}

/// Everything the request's tools turn into.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tools {
    /// What Kiro is offered.
    pub specs: Vec<ToolSpec>,
    /// The tools as the response object echoes them.
    pub echo: Vec<Value>,
    pub map: ToolMap,
    /// Types of hosted tools left out, each once, in order.
    pub ignored: Vec<String>,
    /// The web search tool, which the gateway serves through Kiro (`crate::websearch`).
    pub web_search: Option<WebSearchRequest>,
}

impl Tools {
    /// Add the tools of `list` (found at `at`, e.g. `tools` or `input[0].tools`).
    pub fn add(&mut self, list: &[Value], at: &str) -> Result<(), Error> {
        for (i, tool) in list.iter().enumerate() {
            let here = format!("{at}[{i}]");
            if !tool.is_object() {
                return Err(bad(format!("{here} must be an object.")));
            }
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "function" | "custom" => {
                    self.add_one(tool, &here, None)?;
                    self.echo.push(echo_of(tool));
                }
                "namespace" => {
                    self.add_namespace(tool, &here)?;
                    self.echo.push(tool.clone());
                }
                k if websearch::is_responses_tool(k) => {
                    if self.web_search.is_none() {
                        self.web_search = Some(websearch::parse_responses_tool(tool, &here)?);
                    }
                    self.echo.push(tool.clone());
                }
                "tool_search" if tool.get("execution").and_then(Value::as_str) == Some("client") => {
                    self.add_tool_search(tool, &here)?;
                    self.echo.push(tool.clone());
                }
                k if HOSTED_TOOL_TYPES.contains(&k) => {
                    if !self.ignored.iter().any(|t| t == k) {
                        self.ignored.push(k.to_string());
                    }
                    self.echo.push(tool.clone());
                }
                "" => return Err(bad(format!("{here}.type is required."))),
                other => {
                    return Err(bad(format!(
                        "{here}.type '{other}' is not a tool type of the Responses API: use function, custom or namespace (hosted tools such as file_search are accepted and left out)."
                    )))
                }
            }
        }
        Ok(())
    }

    fn add_namespace(&mut self, tool: &Value, here: &str) -> Result<(), Error> {
        let ns = required_name(tool, here)?;
        let inner = match tool.get("tools") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) | None | Some(Value::Null) => {
                return Err(bad(format!(
                    "{here}.tools: the namespace '{ns}' needs at least one tool."
                )))
            }
            Some(_) => return Err(bad(format!("{here}.tools must be an array of tools."))),
        };
        for (j, t) in inner.iter().enumerate() {
            let at = format!("{here}.tools[{j}]");
            match t.get("type").and_then(Value::as_str) {
                Some("function") | Some("custom") => self.add_one(t, &at, Some(ns))?,
                Some(other) => {
                    return Err(bad(format!(
                        "{at}.type '{other}' cannot be in a namespace: use function or custom."
                    )))
                }
                None => return Err(bad(format!("{at}.type is required."))),
            }
        }
        Ok(())
    }

    fn add_tool_search(&mut self, tool: &Value, here: &str) -> Result<(), Error> {
        let description = match tool.get("description") {
            None | Some(Value::Null) => {
                "Search the deferred tools; the matching ones become callable."
            }
            Some(Value::String(d)) => d.as_str(),
            Some(_) => return Err(bad(format!("{here}.description must be a string."))),
        };
        let schema = match tool.get("parameters") {
            None | Some(Value::Null) => json!({"type": "object",
                "properties": {"query": {"type": "string"}}, "required": ["query"]}),
            Some(p @ Value::Object(_)) => p.clone(),
            Some(_) => {
                return Err(bad(format!(
                    "{here}.parameters must be a JSON Schema object."
                )))
            }
        };
        if self.specs.iter().any(|s| s.name == TOOL_SEARCH) {
            return Ok(());
        }
        self.map.0.insert(
            TOOL_SEARCH.to_string(),
            ClientTool {
                name: TOOL_SEARCH.to_string(),
                namespace: None,
                custom: false,
                tool_search: true,
            },
        );
        self.specs.push(ToolSpec {
            name: TOOL_SEARCH.to_string(),
            description: description.to_string(),
            schema,
        });
        Ok(())
    }

    fn add_one(&mut self, tool: &Value, here: &str, namespace: Option<&str>) -> Result<(), Error> {
        let name = required_name(tool, here)?;
        let custom = tool.get("type").and_then(Value::as_str) == Some("custom");
        let description = match tool.get("description") {
            None | Some(Value::Null) => "",
            Some(Value::String(d)) => d.as_str(),
            Some(_) => return Err(bad(format!("{here}.description must be a string."))),
        };
        let (description, schema) = if custom {
            (
                custom_description(description, tool.get("format"), here)?,
                custom_schema(),
            )
        } else {
            let parameters = match tool.get("parameters") {
                None | Some(Value::Null) => Value::Null,
                Some(p @ Value::Object(_)) => p.clone(),
                Some(_) => {
                    return Err(bad(format!(
                        "{here}.parameters must be a JSON Schema object."
                    )))
                }
            };
            (description.to_string(), parameters)
        };
        let flat = kiro_name(namespace, name);
        if self.specs.iter().any(|s| s.name == flat) {
            // Offered twice (e.g. at the top and again by a tool search): Kiro wants it once.
            return Ok(());
        }
        if custom || namespace.is_some() {
            self.map.0.insert(
                flat.clone(),
                ClientTool {
                    name: name.to_string(),
                    namespace: namespace.map(str::to_string),
                    custom,
                    tool_search: false,
                },
            );
        }
        self.specs.push(ToolSpec {
            name: flat,
            description,
            schema,
        });
        Ok(())
    }
}

fn required_name<'a>(tool: &'a Value, here: &str) -> Result<&'a str, Error> {
    tool.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad(format!("{here}.name is required and must be a string.")))
}

/// A function tool as the response object echoes it.
fn echo_of(tool: &Value) -> Value {
    if tool.get("type").and_then(Value::as_str) != Some("function") {
        return tool.clone();
    }
    json!({
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description").and_then(Value::as_str).unwrap_or(""),
        "parameters": tool.get("parameters").cloned().unwrap_or(Value::Null),
        "strict": tool.get("strict").and_then(Value::as_bool),
    })
}

/// The single string parameter of a freeform tool.
fn custom_schema() -> Value {
    json!({
        "type": "object",
        "properties": {CUSTOM_INPUT: {
            "type": "string",
            "description": "The tool's whole input as raw text (not JSON)."
        }},
        "required": [CUSTOM_INPUT]
    })
}

/// The description Kiro sees for a freeform tool: the client's, then how to pass the text and the
/// grammar it must follow.
fn custom_description(
    description: &str,
    format: Option<&Value>,
    here: &str,
) -> Result<String, Error> {
    let mut out = description.to_string();
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "This is a freeform tool: put its whole input, as raw text, in the `{CUSTOM_INPUT}` parameter."
    ));
    match format {
        None | Some(Value::Null) => {}
        Some(f) => match f.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("grammar") => {
                let definition = f
                    .get("definition")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("{here}.format.definition must be a string.")))?;
                let syntax = f.get("syntax").and_then(Value::as_str).unwrap_or("lark");
                out.push_str(&format!(
                    "\nThe input must match this {syntax} grammar:\n{definition}"
                ));
            }
            _ => {
                return Err(bad(format!(
                    "{here}.format.type must be 'text' or 'grammar'."
                )))
            }
        },
    }
    Ok(out)
}

/// The text of a freeform call from the JSON arguments Kiro sent: the [`CUSTOM_INPUT`] string; a
/// model that chose another key gets its only string value; anything else goes through as the JSON
/// text itself, so nothing the model wrote is lost.
pub fn custom_input(arguments: &str) -> String {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(arguments) else {
        return arguments.to_string();
    };
    if let Some(Value::String(s)) = map.get(CUSTOM_INPUT) {
        return s.clone();
    }
    let strings: Vec<&String> = map
        .values()
        .filter_map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        })
        .collect();
    match strings.as_slice() {
        [only] if map.len() == 1 => (*only).clone(),
        _ => arguments.to_string(),
    }
}

/// Decodes the [`CUSTOM_INPUT`] string out of a freeform call's JSON arguments as their fragments
/// arrive, so its text can be streamed (`response.custom_tool_call_input.delta`) before the call is
/// complete. It only follows arguments that start with that key; anything else is left for
/// [`custom_input`] at the end.
#[derive(Debug, Default)]
pub struct CustomInputStream {
    raw: String,
    /// Byte offset in `raw` up to which the string value was decoded.
    pos: usize,
    state: DecodeState,
    /// The text decoded so far.
    pub decoded: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    #[default]
    Prefix,
    Value,
    Done,
    GaveUp,
}

impl CustomInputStream {
    /// Take the next fragment; returns the newly decoded text (may be empty).
    pub fn push(&mut self, fragment: &str) -> String {
        self.raw.push_str(fragment);
        if self.state == DecodeState::Prefix {
            self.read_prefix();
        }
        if self.state != DecodeState::Value {
            return String::new();
        }
        let start = self.decoded.len();
        self.read_value();
        self.decoded[start..].to_string()
    }

    /// Whether the text streamed so far is exactly the start of `whole` (so the rest can follow as
    /// one last delta).
    pub fn is_prefix_of(&self, whole: &str) -> bool {
        whole.starts_with(&self.decoded)
    }

    fn read_prefix(&mut self) {
        let trimmed = self.raw.trim_start();
        let key = format!("\"{CUSTOM_INPUT}\"");
        let Some(rest) = trimmed.strip_prefix('{') else {
            if !trimmed.is_empty() {
                self.state = DecodeState::GaveUp;
            }
            return;
        };
        let rest = rest.trim_start();
        if rest.len() < key.len() {
            if !key.starts_with(rest) {
                self.state = DecodeState::GaveUp;
            }
            return;
        }
        let Some(rest) = rest.strip_prefix(key.as_str()) else {
            self.state = DecodeState::GaveUp;
            return;
        };
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            if !rest.is_empty() {
                self.state = DecodeState::GaveUp;
            }
            return;
        };
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix('"') else {
            if !rest.is_empty() {
                self.state = DecodeState::GaveUp;
            }
            return;
        };
        self.pos = self.raw.len() - rest.len();
        self.state = DecodeState::Value;
    }

    fn read_value(&mut self) {
        let bytes = self.raw.as_bytes();
        while self.pos < bytes.len() {
            let rest = &self.raw[self.pos..];
            let Some(c) = rest.chars().next() else { return };
            match c {
                '"' => {
                    self.state = DecodeState::Done;
                    return;
                }
                '\\' => {
                    let Some((decoded, used)) = decode_escape(rest) else {
                        return; // incomplete escape: wait for more
                    };
                    match decoded {
                        Some(ch) => self.decoded.push(ch),
                        None => {
                            self.state = DecodeState::GaveUp;
                            return;
                        }
                    }
                    self.pos += used;
                }
                c => {
                    self.decoded.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }
}

/// One JSON escape at the start of `s` (which starts with `\`): the character (None when invalid)
/// and the bytes used; `None` when `s` ends before the escape does.
fn decode_escape(s: &str) -> Option<(Option<char>, usize)> {
    let kind = s.as_bytes().get(1)?;
    let simple = match kind {
        b'"' => Some('"'),
        b'\\' => Some('\\'),
        b'/' => Some('/'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'u' => None,
        _ => return Some((None, 2)),
    };
    if let Some(c) = simple {
        return Some((Some(c), 2));
    }
    let hex = |from: usize| -> Option<Option<u32>> {
        let digits = s.get(from..from + 4)?;
        Some(u32::from_str_radix(digits, 16).ok())
    };
    let Some(first) = hex(2)? else {
        return Some((None, 6));
    };
    if (0xD800..0xDC00).contains(&first) {
        // A high surrogate needs its low half: `\uD83D\uDE00`.
        if s.len() < 12 {
            return None;
        }
        if s.get(6..8) != Some("\\u") {
            return Some((None, 6));
        }
        let Some(second) = hex(8)? else {
            return Some((None, 12));
        };
        let code = 0x10000 + ((first - 0xD800) << 10) + (second.wrapping_sub(0xDC00) & 0x3FF);
        return Some((char::from_u32(code), 12));
    }
    Some((char::from_u32(first), 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(list: Value) -> Result<Tools, Error> {
        let mut t = Tools::default();
        t.add(list.as_array().unwrap(), "tools")?;
        Ok(t)
    }

    fn message(r: Result<Tools, Error>) -> String {
        match r {
            Err(Error::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn namespaces_flatten_and_map_back() {
        let t = tools(json!([
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Agents", "tools": [
                {"type": "function", "name": "spawn_agent", "description": "Spawn", "parameters": {"type": "object"}}
            ]}
        ]))
        .unwrap();
        let names: Vec<&str> = t.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["exec_command", "multi_agent_v1__spawn_agent"]);
        assert_eq!(
            t.map.client("multi_agent_v1__spawn_agent"),
            ClientTool {
                name: "spawn_agent".into(),
                namespace: Some("multi_agent_v1".into()),
                custom: false,
                tool_search: false,
            }
        );
        assert_eq!(t.map.client("exec_command").namespace, None);
        assert_eq!(t.echo.len(), 2);
    }

    #[test]
    fn custom_tools_get_one_string_parameter_and_the_grammar() {
        let t = tools(
            json!([{"type": "custom", "name": "apply_patch", "description": "Edit files.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch"}}]),
        )
        .unwrap();
        let spec = &t.specs[0];
        assert_eq!(spec.name, "apply_patch");
        assert_eq!(spec.schema["required"], json!(["input"]));
        assert_eq!(spec.schema["properties"]["input"]["type"], "string");
        assert!(spec
            .description
            .starts_with("Edit files.\n\nThis is a freeform tool"));
        assert!(spec
            .description
            .ends_with("lark grammar:\nstart: begin_patch"));
        assert!(t.map.client("apply_patch").custom);
    }

    #[test]
    fn hosted_tools_are_left_out_and_listed_once() {
        let t = tools(json!([
            {"type": "web_search", "external_web_access": false},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "web_search"},
            {"type": "tool_search"}
        ]))
        .unwrap();
        assert!(t.specs.is_empty());
        // web_search is served (`crate::websearch`), not ignored.
        assert_eq!(t.ignored, ["file_search", "tool_search"]);
        assert!(t.web_search.is_some());
        assert_eq!(t.echo.len(), 4);
    }

    #[test]
    fn client_tool_search_is_a_kiro_tool_and_tools_come_once() {
        let t = tools(json!([
            {"type": "tool_search", "execution": "client", "description": "Find tools",
             "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}},
            {"type": "function", "name": "f"},
            {"type": "function", "name": "f"}
        ]))
        .unwrap();
        let names: Vec<&str> = t.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["tool_search", "f"]);
        assert_eq!(t.specs[0].description, "Find tools");
        assert!(t.map.client("tool_search").tool_search);
        assert!(t.ignored.is_empty());
    }

    #[test]
    fn bad_tools_are_400_naming_the_field() {
        let cases = [
            (json!([{"type": "telepathy"}]), "tools[0].type 'telepathy'"),
            (json!([{"name": "f"}]), "tools[0].type is required"),
            (
                json!([{"type": "namespace", "name": "ns", "tools": []}]),
                "tools[0].tools: the namespace 'ns' needs at least one tool",
            ),
            (
                json!([{"type": "namespace", "name": "ns"}]),
                "tools[0].tools",
            ),
            (
                json!([{"type": "namespace", "tools": [{"type": "function", "name": "f"}]}]),
                "tools[0].name",
            ),
            (json!([{"type": "custom"}]), "tools[0].name is required"),
            (
                json!([{"type": "namespace", "name": "ns", "tools": [{"type": "custom", "name": ""}]}]),
                "tools[0].tools[0].name",
            ),
            (
                json!([{"type": "namespace", "name": "ns", "tools": [{"type": "web_search"}]}]),
                "tools[0].tools[0].type 'web_search' cannot be in a namespace",
            ),
            (
                json!([{"type": "custom", "name": "c", "format": {"type": "grammar"}}]),
                "tools[0].format.definition",
            ),
            (
                json!([{"type": "function", "name": "f", "parameters": "x"}]),
                "tools[0].parameters",
            ),
        ];
        for (list, needle) in cases {
            let m = message(tools(list));
            assert!(m.contains(needle), "{needle} not in {m}");
        }
    }

    #[test]
    fn custom_input_takes_the_input_string_or_keeps_what_the_model_wrote() {
        assert_eq!(
            custom_input(r#"{"input":"*** Begin Patch\n"}"#),
            "*** Begin Patch\n"
        );
        assert_eq!(custom_input(r#"{"patch":"p"}"#), "p");
        assert_eq!(custom_input(r#"{"a":"1","b":"2"}"#), r#"{"a":"1","b":"2"}"#);
        assert_eq!(custom_input("not json"), "not json");
    }

    #[test]
    fn streamed_input_decodes_across_any_split() {
        let text = "line \"one\"\n\ttab \\ slash é 😀 end";
        let args = json!({ "input": text }).to_string();
        let ascii = serde_json::to_string(&json!({ "input": text }))
            .unwrap()
            .replace('é', "\\u00e9")
            .replace('😀', "\\ud83d\\ude00");
        for raw in [args, ascii] {
            for size in 1..raw.len() {
                let mut s = CustomInputStream::default();
                let mut out = String::new();
                let mut chunk = String::new();
                for c in raw.chars() {
                    chunk.push(c);
                    if chunk.len() >= size {
                        out.push_str(&s.push(&chunk));
                        chunk.clear();
                    }
                }
                out.push_str(&s.push(&chunk));
                assert_eq!(out, text, "size {size}: {raw}");
                assert!(s.is_prefix_of(text));
            }
        }
    }

    #[test]
    fn streamed_input_gives_up_on_other_shapes() {
        let mut s = CustomInputStream::default();
        assert_eq!(s.push(r#"{"patch": "abc"}"#), "");
        let mut s = CustomInputStream::default();
        assert_eq!(s.push(r#"{"in"#), "");
        assert_eq!(s.push(r#"put": "ab"#), "ab");
    }
}
