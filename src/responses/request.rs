//! OpenAI Responses request JSON (`POST /v1/responses`) → the neutral [`Conversation`].
//!
//! `input` is a string or a list of items, read by [`super::items`]; `instructions` become the
//! system prompt. Tools are read by [`super::tools`], including those of an `additional_tools`
//! input item. What would change the answer if dropped (file ids, item references) is refused with
//! a 400 naming it.
//!
//! Nothing here knows Kiro, the store or HTTP.

use serde_json::{json, Map, Value};

use crate::conversation::{
    Conversation, Message, OutputFormat, ReasoningRequest, Role, ToolChoice, ToolSpec,
};
use crate::error::Error;
use crate::websearch::{self, WebSearchRequest};

use super::items::{merge_same_role, namespace_of, parse_items};
use super::tools::{kiro_name, ToolMap, Tools};

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// A parsed Responses request, before any stored history is added.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    /// The model name as sent (echoed back unchanged).
    pub model: String,
    /// `instructions`: this request's system prompt (not carried over to follow-ups).
    pub instructions: Option<String>,
    /// Text of `system` / `developer` input messages, in order.
    pub input_system: Vec<String>,
    /// The input items as conversation messages.
    pub input: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    /// How Kiro's calls go back: namespaces and freeform tools.
    pub tool_map: ToolMap,
    /// Hosted tool types left out of what Kiro sees.
    pub ignored_tools: Vec<String>,
    pub tool_choice: ToolChoice,
    pub reasoning: ReasoningRequest,
    pub max_output_tokens: Option<u32>,
    pub stream: bool,
    /// `store` (default true): keep the response for `previous_response_id`.
    pub store: bool,
    pub previous_response_id: Option<String>,
    /// `text.format`: the shape of the answer (structured outputs).
    pub output_format: Option<OutputFormat>,
    /// Request fields the response object echoes back, in OpenAI's shape.
    pub echo: Echo,
    /// A `web_search` / `web_search_preview` tool.
    pub web_search: Option<WebSearchRequest>,
    /// `prompt_cache_key`: Codex sends its conversation id here.
    pub prompt_cache_key: Option<String>,
}

/// Request fields echoed in the `response` object.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Echo {
    /// The tools as sent (function tools normalised to `{type, name, description, parameters,
    /// strict}`).
    pub tools: Vec<Value>,
    /// `"auto"`, `"none"`, `"required"` or `{type: function, name}`.
    pub tool_choice: Value,
    /// `reasoning.effort` as sent.
    pub reasoning_effort: Option<String>,
    /// `reasoning.summary` as sent.
    pub reasoning_summary: Option<String>,
    pub metadata: Value,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub parallel_tool_calls: bool,
    /// `truncation` as sent (`disabled` when absent).
    pub truncation: Value,
    /// `text` as sent, with `format` defaulting to `{"type": "text"}`.
    pub text: Value,
    /// `include` names `web_search_call.action.sources`.
    pub search_sources: bool,
}

impl ResponsesRequest {
    /// The conversation to send: `history` (system texts and messages of the stored responses
    /// this one continues) followed by this request's input, with `instructions` first in the
    /// system prompt.
    pub fn conversation(
        &self,
        history_system: &[String],
        history: Vec<Message>,
    ) -> Result<Conversation, Error> {
        let system: Vec<&str> = self
            .instructions
            .iter()
            .map(String::as_str)
            .chain(history_system.iter().map(String::as_str))
            .chain(self.input_system.iter().map(String::as_str))
            .filter(|s| !s.trim().is_empty())
            .collect();
        let mut messages = history;
        messages.extend(self.input.iter().cloned());
        let messages = merge_same_role(messages);
        if messages.is_empty() {
            return Err(bad(
                "'input' has no user, assistant or tool item (only instructions or system messages).",
            ));
        }
        Ok(Conversation {
            model: self.model.clone(),
            system: system.join("\n\n"),
            messages,
            tools: self.tools.clone(),
            ignored_tools: self.ignored_tools.clone(),
            tool_choice: self.tool_choice.clone(),
            reasoning: self.reasoning.clone(),
            max_output_tokens: self.max_output_tokens,
            stop_sequences: Vec::new(),
            stream: self.stream,
            output_format: self.output_format.clone(),
            single_tool_call: !self.echo.parallel_tool_calls,
            web_search: self.web_search.clone(),
            client_key: self.prompt_cache_key.clone(),
        })
    }
}

/// Parse the body of `POST /v1/responses`.
pub fn parse_responses_request(
    body: &[u8],
    max_image_bytes: usize,
) -> Result<ResponsesRequest, Error> {
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
    let instructions = match obj.get("instructions") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("'instructions' must be a string.")),
    };
    let (input, input_system) = parse_input(obj, max_image_bytes)?;
    let mut tools = parse_tools(obj)?;
    let search_sources = obj
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|i| i == "web_search_call.action.sources"));
    let web_search = tools.web_search.take().map(|w| WebSearchRequest {
        include_sources: search_sources,
        ..w
    });
    let (tool_choice, echo_choice) = parse_tool_choice(obj.get("tool_choice"))?;
    let (reasoning, summary) = parse_reasoning_request(obj)?;
    let max_output_tokens = parse_max_output_tokens(obj)?;
    let previous_response_id = parse_previous_response_id(obj)?;
    let truncation = parse_truncation(obj)?;
    let (output_format, text) = parse_text(obj.get("text"))?;
    let echo = Echo {
        text,
        tools: tools.echo,
        tool_choice: echo_choice,
        reasoning_effort: reasoning.effort.clone(),
        reasoning_summary: summary,
        metadata: obj
            .get("metadata")
            .filter(|m| m.is_object())
            .cloned()
            .unwrap_or_else(|| json!({})),
        temperature: obj.get("temperature").and_then(Value::as_f64),
        top_p: obj.get("top_p").and_then(Value::as_f64),
        parallel_tool_calls: obj
            .get("parallel_tool_calls")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        truncation,
        search_sources,
    };
    Ok(ResponsesRequest {
        model,
        instructions,
        input_system,
        input,
        tools: tools.specs,
        tool_map: tools.map,
        ignored_tools: tools.ignored,
        tool_choice,
        reasoning,
        max_output_tokens,
        stream: parse_bool(obj, "stream")?.unwrap_or(false),
        store: parse_bool(obj, "store")?.unwrap_or(true),
        previous_response_id,
        output_format,
        echo,
        web_search,
        prompt_cache_key: obj
            .get("prompt_cache_key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(|k| format!("responses-cache\u{1}{k}")),
    })
}

/// `input`: its messages, and the text of its system and developer messages.
fn parse_input(
    obj: &Map<String, Value>,
    max_image_bytes: usize,
) -> Result<(Vec<Message>, Vec<String>), Error> {
    let mut system = Vec::new();
    let input = match obj.get("input") {
        None | Some(Value::Null) => return Err(bad("'input' is required.")),
        Some(Value::String(s)) => vec![Message::text(Role::User, s.clone())],
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(bad("'input' must contain at least one item."))
        }
        Some(Value::Array(items)) => parse_items(items, max_image_bytes, &mut system)?,
        Some(_) => return Err(bad("'input' must be a string or an array of items.")),
    };
    Ok((input, system))
}

/// The tools of `tools` and of the input items that carry tools.
fn parse_tools(obj: &Map<String, Value>) -> Result<Tools, Error> {
    let mut tools = Tools::default();
    match obj.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => tools.add(list, "tools")?,
        Some(_) => return Err(bad("'tools' must be an array.")),
    }
    // Codex (with its newer models) sends its tools in an input item instead, and the tools its
    // tool search loaded come in that search's output: the model may call them from then on.
    if let Some(Value::Array(items)) = obj.get("input") {
        for (i, item) in items.iter().enumerate() {
            let kind = item.get("type").and_then(Value::as_str);
            if matches!(kind, Some("additional_tools") | Some("tool_search_output")) {
                match item.get("tools") {
                    Some(Value::Array(list)) => tools.add(list, &format!("input[{i}].tools"))?,
                    _ => return Err(bad(format!("input[{i}].tools must be an array of tools."))),
                }
            }
        }
    }
    Ok(tools)
}

/// `reasoning`: what Kiro is asked for (`effort: none` turns reasoning off) and `summary` as sent.
fn parse_reasoning_request(
    obj: &Map<String, Value>,
) -> Result<(ReasoningRequest, Option<String>), Error> {
    let reasoning_obj = match obj.get("reasoning") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o),
        Some(_) => return Err(bad("'reasoning' must be an object.")),
    };
    let effort = match reasoning_obj.and_then(|r| r.get("effort")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("'reasoning.effort' must be a string.")),
    };
    let summary = reasoning_obj
        .and_then(|r| r.get("summary"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let reasoning = ReasoningRequest {
        disabled: effort.as_deref() == Some("none"),
        effort,
        budget_tokens: None,
        unasked: false,
        omit_text: false,
    };
    Ok((reasoning, summary))
}

/// `max_output_tokens`: a positive whole number, capped at `u32::MAX`.
fn parse_max_output_tokens(obj: &Map<String, Value>) -> Result<Option<u32>, Error> {
    Ok(match obj.get("max_output_tokens") {
        None | Some(Value::Null) => None,
        Some(n) => Some(
            n.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("'max_output_tokens' must be a positive whole number."))?
                .min(u32::MAX as u64) as u32,
        ),
    })
}

/// `previous_response_id`: a non-empty string, when present.
fn parse_previous_response_id(obj: &Map<String, Value>) -> Result<Option<String>, Error> {
    match obj.get("previous_response_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(bad("'previous_response_id' must be a non-empty string.")),
    }
}

/// `truncation` to echo: as sent, `disabled` when absent.
fn parse_truncation(obj: &Map<String, Value>) -> Result<Value, Error> {
    match obj.get("truncation") {
        None | Some(Value::Null) => Ok(json!("disabled")),
        Some(t @ Value::String(_)) => Ok(t.clone()),
        Some(_) => Err(bad("'truncation' must be 'auto' or 'disabled'.")),
    }
}

/// `text`: the answer's format (`text.format`) and the object to echo.
fn parse_text(text: Option<&Value>) -> Result<(Option<OutputFormat>, Value), Error> {
    let mut echo = match text {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(bad("'text' must be an object.")),
    };
    let format = match echo.get("format") {
        None | Some(Value::Null) => None,
        Some(f @ Value::Object(o)) => {
            let kind = o.get("type").and_then(Value::as_str).ok_or_else(|| {
                bad("text.format.type is required: text, json_object or json_schema.")
            })?;
            OutputFormat::from_request(kind, Some(f), "text.format.type", "text.format")?
        }
        Some(_) => return Err(bad("text.format must be an object.")),
    };
    if echo.get("format").is_none_or(Value::is_null) {
        echo["format"] = json!({"type": "text"});
    }
    Ok((format, echo))
}

fn parse_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!("'{key}' must be true or false."))),
    }
}

fn parse_tool_choice(v: Option<&Value>) -> Result<(ToolChoice, Value), Error> {
    Ok(match v {
        None | Some(Value::Null) => (ToolChoice::Auto, json!("auto")),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => (ToolChoice::Auto, json!("auto")),
            "none" => (ToolChoice::None, json!("none")),
            "required" => (ToolChoice::Required, json!("required")),
            other => {
                return Err(bad(format!(
                    "tool_choice '{other}' is not valid: use auto, none, required or {{\"type\": \"function\", \"name\": ...}}."
                )))
            }
        },
        Some(Value::Object(o)) => {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
            // Forcing the hosted search forces the tool the gateway offers in its place.
            if websearch::is_responses_tool(kind) {
                return Ok((
                    ToolChoice::Named(websearch::TOOL_NAME.into()),
                    Value::Object(o.clone()),
                ));
            }
            if kind != "function" && kind != "custom" {
                return Err(bad(format!(
                    "tool_choice of type '{kind}' is not supported: only function and custom tools can be chosen."
                )));
            }
            let name = o
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("tool_choice must name a tool."))?;
            (
                ToolChoice::Named(kiro_name(namespace_of(o), name)),
                Value::Object(o.clone()),
            )
        }
        Some(_) => return Err(bad("tool_choice must be a string or an object.")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::ToolCall;

    fn parse(v: Value) -> Result<ResponsesRequest, Error> {
        parse_responses_request(v.to_string().as_bytes(), 1 << 20)
    }

    fn conv(v: Value) -> Conversation {
        parse(v).unwrap().conversation(&[], Vec::new()).unwrap()
    }

    #[test]
    fn string_input_is_one_user_message_and_instructions_are_the_system() {
        let c = conv(json!({"model": "m", "input": "hello", "instructions": "be brief"}));
        assert_eq!(c.system, "be brief");
        assert_eq!(c.messages, vec![Message::text(Role::User, "hello")]);
        assert!(!c.stream);
    }

    #[test]
    fn message_items_map_roles_and_parts() {
        let c = conv(json!({"model": "m", "instructions": "I", "input": [
            {"type": "message", "role": "developer", "content": "D"},
            {"role": "system", "content": [{"type": "input_text", "text": "S"}]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"}]},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "a png", "annotations": []}]},
            {"role": "user", "content": "thanks"}]}));
        assert_eq!(c.system, "I\n\nD\n\nS");
        assert_eq!(c.messages.len(), 3);
        assert_eq!(c.messages[0].role, Role::User);
        assert_eq!(c.messages[0].text, "look");
        assert_eq!(c.messages[0].images[0].format, "png");
        assert_eq!(c.messages[1].role, Role::Assistant);
        assert_eq!(c.messages[1].text, "a png");
        assert_eq!(c.messages[2].text, "thanks");
    }

    #[test]
    fn function_calls_merge_into_one_assistant_turn_and_outputs_into_one_user_turn() {
        let c = conv(json!({"model": "m", "input": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "two calls"}],
             "encrypted_content": "kgw1:sig-1"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_b", "name": "weather", "arguments": "{\"city\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
            {"type": "function_call_output", "call_id": "call_b", "output": [{"type": "input_text", "text": "rain"}]}]}));
        assert_eq!(c.messages.len(), 3);
        let a = &c.messages[1];
        assert_eq!(a.role, Role::Assistant);
        assert_eq!(a.text, "Checking.");
        let r = a.reasoning.as_ref().unwrap();
        assert_eq!(r.text, "two calls");
        assert_eq!(r.signature.as_deref(), Some("sig-1"));
        let ids: Vec<_> = a.tool_calls.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["call_a", "call_b"]);
        assert_eq!(a.tool_calls[1].input, json!({"city": "Rome"}));
        let u = &c.messages[2];
        assert_eq!(u.role, Role::User);
        let results: Vec<_> = u
            .tool_results
            .iter()
            .map(|r| (r.tool_use_id.as_str(), r.text.as_str()))
            .collect();
        assert_eq!(results, [("call_a", "sunny"), ("call_b", "rain")]);
    }

    #[test]
    fn second_reasoning_in_a_turn_starts_a_new_assistant_message() {
        let c = conv(json!({"model": "m", "input": [
            {"role": "user", "content": "x"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "r1"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "r2"}]},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": ""}]}));
        assert_eq!(c.messages.len(), 3);
        assert_eq!(c.messages[1].reasoning.as_ref().unwrap().text, "r1");
        assert_eq!(c.messages[2].reasoning.as_ref().unwrap().text, "r2");
        assert_eq!(c.messages[2].tool_calls[0].input, json!({}));
    }

    #[test]
    fn tools_choice_reasoning_and_limits_map() {
        let r = parse(json!({"model": "m", "input": "x",
            "tools": [{"type": "function", "name": "shell", "description": "run",
                       "parameters": {"type": "object"}, "strict": false}],
            "tool_choice": {"type": "function", "name": "shell"},
            "reasoning": {"effort": "high", "summary": "auto"},
            "max_output_tokens": 500, "stream": true, "store": false,
            "metadata": {"k": "v"}, "temperature": 0.2, "parallel_tool_calls": false,
            "truncation": "auto", "include": ["reasoning.encrypted_content"], "text": {"format": {"type": "text"}},
            "previous_response_id": "resp_1"}))
        .unwrap();
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.tools[0].name, "shell");
        assert_eq!(r.tools[0].schema, json!({"type": "object"}));
        assert_eq!(r.tool_choice, ToolChoice::Named("shell".into()));
        assert_eq!(
            r.echo.tool_choice,
            json!({"type": "function", "name": "shell"})
        );
        assert_eq!(r.reasoning.effort.as_deref(), Some("high"));
        assert!(!r.reasoning.disabled);
        assert_eq!(r.max_output_tokens, Some(500));
        assert!(r.stream);
        assert!(!r.store);
        assert_eq!(r.previous_response_id.as_deref(), Some("resp_1"));
        assert_eq!(r.echo.metadata, json!({"k": "v"}));
        assert!(!r.echo.parallel_tool_calls);
        let r = parse(
            json!({"model": "m", "input": "x", "reasoning": {"effort": "none"},
            "tool_choice": "required"}),
        )
        .unwrap();
        assert!(r.reasoning.disabled);
        assert!(r.store);
        assert_eq!(r.tool_choice, ToolChoice::Required);
    }

    #[test]
    fn web_search_tools_and_replayed_calls_are_read() {
        let r = parse(
            json!({"model": "m", "include": ["web_search_call.action.sources"],
            "tools": [{"type": "web_search_preview"}, {"type": "function", "name": "f"}],
            "input": [
                {"role": "user", "content": "news?"},
                {"type": "web_search_call", "id": "ws_1", "status": "completed",
                 "action": {"type": "search", "query": "rust news",
                            "sources": [{"type": "url", "url": "https://a.com/x"}]}},
                {"type": "web_search_call", "id": "ws_2", "status": "failed",
                 "action": {"type": "search", "query": "again"}},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "Here.", "annotations": []}]}]}),
        )
        .unwrap();
        let ws = r.web_search.unwrap();
        assert!(ws.include_sources);
        assert_eq!(r.tools.len(), 1);
        assert_eq!(r.echo.tools.len(), 2);
        let text = &r.input[1].text;
        assert!(text.contains("\"rust news\""), "{text}");
        assert!(text.contains("https://a.com/x"), "{text}");
        assert!(text.contains("failed (unavailable)"), "{text}");
        assert!(text.ends_with("Here."), "{text}");
    }

    #[test]
    fn hosted_tools_are_left_out_and_named() {
        for kind in ["file_search", "computer_use_preview", "local_shell"] {
            let r = parse(json!({"model": "m", "input": "x", "tools": [
                {"type": "function", "name": "ok"}, {"type": kind}]}))
            .unwrap();
            assert_eq!(r.tools.len(), 1);
            assert_eq!(r.ignored_tools, [kind]);
            assert_eq!(r.echo.tools[1]["type"], kind);
            let c = r.conversation(&[], Vec::new()).unwrap();
            assert_eq!(c.ignored_tools, [kind]);
        }
    }

    #[test]
    fn codex_tools_in_an_additional_tools_item_are_read_with_namespaces_and_custom_tools() {
        let r = parse(json!({"model": "m", "truncation": "auto", "input": [
            {"type": "additional_tools", "role": "developer", "id": "at_1", "tools": [
                {"type": "namespace", "name": "functions", "description": "", "tools": [
                    {"type": "custom", "name": "exec", "description": "Run JS",
                     "format": {"type": "grammar", "syntax": "lark", "definition": "start: SOURCE"}},
                    {"type": "function", "name": "wait", "parameters": {"type": "object"}}]}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}],
            "tool_choice": {"type": "custom", "name": "exec", "namespace": "functions"}}))
        .unwrap();
        let names: Vec<&str> = r.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["functions__exec", "functions__wait"]);
        assert!(r.tool_map.client("functions__exec").custom);
        assert_eq!(r.input, vec![Message::text(Role::User, "go")]);
        assert_eq!(r.echo.truncation, json!("auto"));
        assert_eq!(r.tool_choice, ToolChoice::Named("functions__exec".into()));
    }

    #[test]
    fn a_client_tool_search_and_the_tools_it_loaded_reach_kiro() {
        let r = parse(json!({"model": "m", "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
            {"type": "tool_search", "execution": "client", "description": "Find tools",
             "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}],
            "input": [
            {"role": "user", "content": "weather?"},
            {"type": "tool_search_call", "id": "tsc_1", "call_id": "call_1", "status": "completed",
             "execution": "client", "arguments": {"query": "weather report"}},
            {"type": "tool_search_output", "id": "tso_1", "call_id": "call_1", "status": "completed",
             "execution": "client", "tools": [{"type": "namespace", "name": "mcp__weather",
                "description": "Tools in the mcp__weather namespace.", "tools": [
                {"type": "function", "name": "report", "description": "Weather report for a city.",
                 "defer_loading": true, "parameters": {"type": "object"}}]}]}]}))
        .unwrap();
        let names: Vec<&str> = r.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["exec_command", "tool_search", "mcp__weather__report"]
        );
        assert_eq!(
            r.tool_map
                .client("mcp__weather__report")
                .namespace
                .as_deref(),
            Some("mcp__weather")
        );
        let c = r.conversation(&[], Vec::new()).unwrap();
        let call = &c.messages[1].tool_calls[0];
        assert_eq!(
            (call.id.as_str(), call.name.as_str()),
            ("call_1", "tool_search")
        );
        assert_eq!(call.input, json!({"query": "weather report"}));
        let result = &c.messages[2].tool_results[0];
        assert_eq!(result.tool_use_id, "call_1");
        assert_eq!(
            result.text,
            "These tools can be called now: mcp__weather__report"
        );
    }

    #[test]
    fn codex_replayed_items_become_history_or_are_left_out() {
        let c = conv(json!({"model": "m", "input": [
            {"type": "compaction", "encrypted_content": "gAAAA-opaque"},
            {"type": "compaction_summary", "encrypted_content": "x", "summary": [{"type": "summary_text", "text": "We fixed the build."}]},
            {"role": "user", "content": "patch it"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "openai thought"}], "encrypted_content": "gAAAAABforeign"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
            {"type": "custom_tool_call", "call_id": "call_p", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch\n"},
            {"type": "function_call", "call_id": "call_s", "name": "spawn_agent", "namespace": "multi_agent_v1", "arguments": "{}"},
            {"type": "custom_tool_call_output", "call_id": "call_p", "output": [{"type": "input_text", "text": "Done!"}]},
            {"type": "function_call_output", "call_id": "call_s", "output": "spawned"},
            {"type": "local_shell_call", "call_id": "call_l", "status": "completed", "action": {"type": "exec", "command": ["ls"]}},
            {"type": "local_shell_call_output", "call_id": "call_l", "output": "a.txt"},
            {"type": "file_search_call", "id": "fs_1", "status": "completed", "queries": ["x"]}
        ]}));
        let roles: Vec<Role> = c.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::User,
                Role::Assistant,
                Role::User,
                Role::Assistant,
                Role::User
            ]
        );
        assert_eq!(
            c.messages[0].text,
            "[Summary of the earlier conversation]\nWe fixed the build.\npatch it"
        );
        let a = &c.messages[1];
        // A reasoning item minted elsewhere keeps its text but never reaches Kiro as a signature.
        let r = a.reasoning.as_ref().unwrap();
        assert_eq!(
            (r.text.as_str(), r.signature.as_ref()),
            ("openai thought", None)
        );
        let calls: Vec<(&str, &str)> = a
            .tool_calls
            .iter()
            .map(|t| (t.id.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(
            calls,
            [
                ("call_p", "apply_patch"),
                ("call_s", "multi_agent_v1__spawn_agent")
            ]
        );
        assert_eq!(
            a.tool_calls[0].input,
            json!({"input": "*** Begin Patch\n*** End Patch\n"})
        );
        let results: Vec<(&str, &str)> = c.messages[2]
            .tool_results
            .iter()
            .map(|t| (t.tool_use_id.as_str(), t.text.as_str()))
            .collect();
        assert_eq!(results, [("call_p", "Done!"), ("call_s", "spawned")]);
        assert!(c.messages[3]
            .text
            .starts_with("[Tool: local_shell (call_l)]"));
        assert_eq!(c.messages[4].text, "[Tool Result (call_l)]\na.txt");
    }

    #[test]
    fn bad_inputs_name_the_field() {
        for (body, needle) in [
            (json!({"input": "x"}), "model"),
            (json!({"model": "m"}), "input"),
            (json!({"model": "m", "input": 5}), "input"),
            (json!({"model": "m", "input": []}), "at least one"),
            (json!({"model": "m", "input": [5]}), "input[0]"),
            (
                json!({"model": "m", "input": [{"role": "wizard", "content": "x"}]}),
                "wizard",
            ),
            (
                json!({"model": "m", "input": [{"type": "telepathy_call"}]}),
                "input[0].type 'telepathy_call'",
            ),
            (
                json!({"model": "m", "input": [{"type": "custom_tool_call", "call_id": "c", "input": "x"}]}),
                "input[0].name",
            ),
            (
                json!({"model": "m", "input": [{"type": "additional_tools", "tools": {}}]}),
                "input[0].tools",
            ),
            (
                json!({"model": "m", "input": [{"type": "additional_tools", "tools": [{"type": "namespace", "name": "n", "tools": []}]}]}),
                "input[0].tools[0].tools",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "spell"}]}),
                "tools[0].type 'spell'",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [{"type": "custom", "description": "no name"}]}),
                "tools[0].name",
            ),
            (
                json!({"model": "m", "input": "x", "truncation": 1}),
                "truncation",
            ),
            (
                json!({"model": "m", "input": "x", "tools": [
                    {"type": "web_search", "filters": {"allowed_domains": "a.com"}}]}),
                "tools[0].filters.allowed_domains",
            ),
            (
                json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
                "item references",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
                "call_id",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{bad"}]}),
                "not valid JSON",
            ),
            (
                json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}),
                "output",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
                "file_id",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]}),
                "input_file",
            ),
            (
                json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
                "input_audio",
            ),
            (
                json!({"model": "m", "input": "x", "stream": "yes"}),
                "stream",
            ),
            (json!({"model": "m", "input": "x", "store": 1}), "store"),
            (
                json!({"model": "m", "input": "x", "tool_choice": "sometimes"}),
                "sometimes",
            ),
            (
                json!({"model": "m", "input": "x", "tool_choice": {"type": "file_search"}}),
                "file_search",
            ),
            (
                json!({"model": "m", "input": "x", "max_output_tokens": -1}),
                "max_output_tokens",
            ),
            (
                json!({"model": "m", "input": "x", "previous_response_id": 3}),
                "previous_response_id",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
        let e = parse_responses_request(b"{not json", 10).unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn remote_image_urls_are_refused() {
        let e = parse(json!({"model": "m", "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": "https://example.com/a.png"}]}]}))
        .unwrap_err();
        assert!(e.to_string().contains("Remote image URLs"), "{e}");
    }

    #[test]
    fn only_system_input_is_refused_when_building_the_conversation() {
        let r =
            parse(json!({"model": "m", "input": [{"role": "developer", "content": "x"}]})).unwrap();
        let e = r.conversation(&[], Vec::new()).unwrap_err();
        assert!(e.to_string().contains("input"), "{e}");
    }

    #[test]
    fn history_comes_first_and_meeting_roles_merge() {
        let r = parse(json!({"model": "m", "instructions": "new rules", "input": [
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
            {"role": "user", "content": "and then?"}]}))
        .unwrap();
        let mut assistant = Message::text(Role::Assistant, "calling");
        assistant.tool_calls.push(ToolCall {
            id: "c1".into(),
            name: "f".into(),
            input: json!({}),
        });
        let history = vec![Message::text(Role::User, "start"), assistant];
        let c = r.conversation(&["old dev".to_string()], history).unwrap();
        assert_eq!(c.system, "new rules\n\nold dev");
        assert_eq!(c.messages.len(), 3);
        assert_eq!(c.messages[2].tool_results[0].tool_use_id, "c1");
        assert_eq!(c.messages[2].text, "and then?");
    }
}
