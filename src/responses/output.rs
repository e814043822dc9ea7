//! The output items of a Responses reply (reasoning, message, web search call, tool call): what
//! each holds while the writer builds it, and its JSON in the client's shape.

use serde_json::{json, Value};

use crate::websearch::{SearchFailure, SearchHit};

use super::items::SIGNATURE_PREFIX;
use super::tools::{custom_input, ClientTool, CustomInputStream};

/// A message's one content part: `output_text`, or `refusal` for what the model said instead of
/// the structured answer asked for.
pub(super) fn content_part(text: &str, refusal: bool, annotations: &[Value]) -> Value {
    if refusal {
        json!({"type": "refusal", "refusal": text})
    } else {
        json!({"type": "output_text", "text": text, "annotations": annotations, "logprobs": []})
    }
}

/// An output item as the writer builds it.
#[derive(Debug)]
pub(super) enum Item {
    Reasoning {
        id: String,
        text: String,
        /// A summary part was opened (only once there is text).
        part_open: bool,
        signature: Option<String>,
        redacted: Option<String>,
        done: bool,
    },
    Message {
        id: String,
        text: String,
        status: &'static str,
        done: bool,
        /// The text is what the model said instead of the structured answer asked for.
        refusal: bool,
        /// `url_citation`s of web search results in `text`.
        annotations: Vec<Value>,
    },
    Search {
        id: String,
        query: String,
        /// `None` while the search runs.
        outcome: Option<Result<Vec<SearchHit>, SearchFailure>>,
        /// List the pages in `action.sources` (`include: ["web_search_call.action.sources"]`).
        sources: bool,
    },
    Call {
        id: String,
        call_id: String,
        /// The tool's name as Kiro knows it (what history sends back).
        kiro_name: String,
        /// The tool as the client knows it.
        tool: ClientTool,
        /// The JSON arguments as Kiro sent them.
        arguments: String,
        /// A freeform call's text, decoded from the arguments as they arrive.
        input: CustomInputStream,
        /// Closed with complete arguments. A call never closed was cut by Kiro: it is withheld
        /// from the final output, never handed out broken.
        done: bool,
    },
}

impl Item {
    /// The item in the client's shape.
    pub(super) fn json(&self) -> Value {
        match self {
            Item::Reasoning {
                id,
                text,
                part_open,
                signature,
                ..
            } => {
                let summary = if *part_open {
                    json!([{"type": "summary_text", "text": text}])
                } else {
                    json!([])
                };
                let mut v = json!({"type": "reasoning", "id": id, "summary": summary});
                if let Some(s) = signature {
                    v["encrypted_content"] = json!(format!("{SIGNATURE_PREFIX}{s}"));
                }
                v
            }
            Item::Message {
                id,
                text,
                status,
                refusal,
                annotations,
                ..
            } => json!({
                "type": "message", "id": id, "status": status, "role": "assistant",
                "content": [content_part(text, *refusal, annotations)],
            }),
            Item::Search {
                id,
                query,
                outcome,
                sources,
            } => search_call_json(id, query, outcome.as_ref(), *sources),
            Item::Call {
                id,
                call_id,
                tool,
                arguments,
                done,
                ..
            } => tool_call_json(id, call_id, tool, arguments, *done),
        }
    }

    /// Finished: it goes into the `response` object.
    pub(super) fn is_done(&self) -> bool {
        match self {
            Item::Reasoning { done, .. } | Item::Message { done, .. } | Item::Call { done, .. } => {
                *done
            }
            Item::Search { outcome, .. } => outcome.is_some(),
        }
    }
}

/// A `web_search_call` item; `sources` lists the pages found in `action.sources`.
fn search_call_json(
    id: &str,
    query: &str,
    outcome: Option<&Result<Vec<SearchHit>, SearchFailure>>,
    sources: bool,
) -> Value {
    let status = match outcome {
        None => "in_progress",
        Some(Ok(_)) => "completed",
        Some(Err(_)) => "failed",
    };
    let mut action = json!({"type": "search", "query": query});
    if sources {
        let list: Vec<Value> = match outcome {
            Some(Ok(hits)) => hits
                .iter()
                .map(|h| json!({"type": "url", "url": h.url}))
                .collect(),
            _ => Vec::new(),
        };
        action["sources"] = Value::Array(list);
    }
    json!({"type": "web_search_call", "id": id, "status": status, "action": action})
}

/// A call item in the client's shape: `tool_search_call`, `custom_tool_call` or `function_call`.
/// Arguments (or a freeform call's input) show only once the call is complete.
fn tool_call_json(
    id: &str,
    call_id: &str,
    tool: &ClientTool,
    arguments: &str,
    done: bool,
) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    let mut v = if tool.tool_search {
        let arguments = serde_json::from_str::<Value>(arguments)
            .ok()
            .filter(|a| done && a.is_object())
            .unwrap_or_else(|| json!({}));
        json!({"type": "tool_search_call", "id": id, "call_id": call_id,
            "execution": "client", "arguments": arguments, "status": status})
    } else if tool.custom {
        let input = if done {
            custom_input(arguments)
        } else {
            String::new()
        };
        json!({"type": "custom_tool_call", "id": id, "call_id": call_id,
            "name": tool.name, "input": input, "status": status})
    } else {
        json!({"type": "function_call", "id": id, "call_id": call_id,
            "name": tool.name, "arguments": arguments, "status": status})
    };
    if let Some(ns) = &tool.namespace {
        v["namespace"] = json!(ns);
    }
    v
}
