//! The fake's web search: `POST /mcp` speaking JSON-RPC 2.0 (`tools/list`, `tools/call` of
//! `web_search`) with scripted results and faults, and replies that make the fake model call the
//! `web_search` tool and answer once it has the results.
//!
//! By default a search for "q" finds three pages on three domains (example.com, docs.example.org,
//! news.example.net), so domain filters have something to filter.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use super::{send, Ev, FakeKiro, Recorded, Reply, Shared, DEFAULT_CONTEXT_PCT, DEFAULT_CREDITS};

/// Prefix of the tool-use ids of searches scripted by [`FakeKiro::plan_searches`].
pub const SEARCH_ID_PREFIX: &str = "tooluse_search_";

/// One scripted answer of `/mcp` to a `tools/call`.
#[derive(Debug, Clone)]
pub enum McpReply {
    /// These result objects (`title`, `url`, `snippet`, `publishedDate`, …) as the tool's text.
    Results(Vec<Value>),
    /// The same, sent as MCP's streamable-HTTP SSE body (`event: message` / `data: …`).
    ResultsSse(Vec<Value>),
    /// A JSON-RPC error object.
    RpcError { code: i64, message: String },
    /// A tool result with `isError: true` and this text.
    ToolError(String),
    /// `{"results":[],"error":…}` inside a successful tool result.
    PayloadError(String),
    /// Any plain reply (a 500, a 429, a disconnect, a delayed head).
    Http(Reply),
}

pub(super) struct McpState {
    replies: VecDeque<McpReply>,
    requests: Vec<Recorded>,
    tool_schema: Value,
}

impl McpState {
    pub(super) fn new() -> McpState {
        McpState {
            replies: VecDeque::new(),
            requests: Vec::new(),
            tool_schema: json!({
                "type": "object",
                "properties": {"query": {"type": "string", "description": "The search query"}},
                "required": ["query"]
            }),
        }
    }
}

pub(super) struct Mcp(Mutex<McpState>);

impl Mcp {
    pub(super) fn new() -> Mcp {
        Mcp(Mutex::new(McpState::new()))
    }

    fn lock(&self) -> MutexGuard<'_, McpState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pages a search for `query` finds by default.
pub fn default_results(query: &str) -> Vec<Value> {
    let slug: String = query
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    vec![
        json!({"title": format!("{query} - Example"), "url": format!("https://example.com/{slug}"),
               "snippet": format!("Everything about {query}."), "publishedDate": 1_772_496_000_000_i64,
               "id": "r1", "domain": "example.com"}),
        json!({"title": format!("{query} docs"), "url": format!("https://docs.example.org/{slug}"),
               "snippet": format!("Reference for {query}."), "id": "r2", "domain": "docs.example.org"}),
        json!({"title": format!("{query} news"), "url": format!("https://news.example.net/{slug}"),
               "snippet": format!("Latest on {query}."), "publishedDate": 1_764_547_200_000_i64,
               "id": "r3", "domain": "news.example.net"}),
    ]
}

/// The URL of the default result `n` (0, 1, 2) for `query`.
pub fn default_url(query: &str, n: usize) -> String {
    default_results(query)
        .get(n)
        .and_then(|r| r["url"].as_str())
        .unwrap_or_default()
        .to_string()
}

impl Reply {
    /// The fake model calls the `web_search` tool with this query (one input frame), then the
    /// usual metering and context usage.
    pub fn web_search_call(id: &str, query: &str) -> Reply {
        let args = json!({ "query": query }).to_string();
        Reply::tool_call(id, "web_search", &args, 1)
    }
}

impl Recorded {
    /// The tool results of the current message of an inference body.
    pub fn tool_results(&self) -> Vec<Value> {
        self.body
            .pointer("/conversationState/currentMessage/userInputMessage/userInputMessageContext/toolResults")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The names of the tools offered in the current message of an inference body.
    pub fn tool_names(&self) -> Vec<String> {
        self.body
            .pointer(
                "/conversationState/currentMessage/userInputMessage/userInputMessageContext/tools",
            )
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t.pointer("/toolSpecification/name")?.as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `query` of a `/mcp` `tools/call`.
    pub fn search_query(&self) -> Option<String> {
        self.body
            .pointer("/params/arguments/query")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// How many scripted searches ([`SEARCH_ID_PREFIX`]) the inference body already holds results
/// for, in its history and its current message.
fn searches_done(body: &Value) -> usize {
    let mut ids = std::collections::HashSet::new();
    collect_result_ids(body, &mut ids);
    ids.len()
}

fn collect_result_ids(v: &Value, ids: &mut std::collections::HashSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(results)) = map.get("toolResults") {
                for r in results {
                    if let Some(id) = r.get("toolUseId").and_then(Value::as_str) {
                        if id.starts_with(SEARCH_ID_PREFIX) {
                            ids.insert(id.to_string());
                        }
                    }
                }
            }
            for child in map.values() {
                collect_result_ids(child, ids);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_result_ids(i, ids)),
        _ => {}
    }
}

impl FakeKiro {
    /// Queues an answer for the next `/mcp` `tools/call`.
    pub fn push_mcp_reply(&self, reply: McpReply) {
        self.shared.mcp.lock().replies.push_back(reply);
    }

    /// Every `/mcp` call, in arrival order.
    pub fn mcp_requests(&self) -> Vec<Recorded> {
        self.shared.mcp.lock().requests.clone()
    }

    /// The queries of the `tools/call` requests, in order.
    pub fn search_queries(&self) -> Vec<String> {
        self.mcp_requests()
            .iter()
            .filter_map(Recorded::search_query)
            .collect()
    }

    /// The input schema `tools/list` gives for `web_search`.
    pub fn set_mcp_tool_schema(&self, schema: Value) {
        self.shared.mcp.lock().tool_schema = schema;
    }

    /// Scripts the model: while fewer than `queries.len()` searches have results in the
    /// conversation, it calls `web_search` with the next query (ids `tooluse_search_<n>`); then it
    /// answers `answer` (word by word, with the usual usage tail). Works for any number of
    /// concurrent conversations, as it reads the state from each request.
    pub fn plan_searches(&self, queries: &[&str], answer: &str) {
        let queries: Vec<String> = queries.iter().map(|q| q.to_string()).collect();
        let answer = answer.to_string();
        self.set_reply_fn(move |rec| {
            let done = searches_done(&rec.body);
            Some(match queries.get(done) {
                Some(q) => Reply::web_search_call(&format!("{SEARCH_ID_PREFIX}{done}"), q),
                None => Reply::text(&answer),
            })
        });
    }

    /// Like [`FakeKiro::plan_searches`], but the model says `preamble` before its first call.
    pub fn plan_searches_with_preamble(&self, preamble: &str, queries: &[&str], answer: &str) {
        let queries: Vec<String> = queries.iter().map(|q| q.to_string()).collect();
        let answer = answer.to_string();
        let preamble = preamble.to_string();
        self.set_reply_fn(move |rec| {
            let done = searches_done(&rec.body);
            Some(match queries.get(done) {
                Some(q) => {
                    let id = format!("{SEARCH_ID_PREFIX}{done}");
                    let mut events = if done == 0 {
                        Ev::words(&preamble)
                    } else {
                        Vec::new()
                    };
                    events.extend(Ev::tool_call(
                        &id,
                        "web_search",
                        &json!({"query": q}).to_string(),
                        2,
                    ));
                    events.push(Ev::Metering(DEFAULT_CREDITS));
                    events.push(Ev::ContextUsage(DEFAULT_CONTEXT_PCT));
                    Reply::events(events)
                }
                None => Reply::text(&answer),
            })
        });
    }
}

/// Answers one `/mcp` request.
pub(super) fn serve(shared: &Shared, request: tiny_http::Request, mut rec: Recorded) {
    let rejected = shared.lock().rejects(rec.bearer().as_deref());
    let reply = if rejected {
        super::forbidden()
    } else {
        let mut st = shared.mcp.lock();
        answer(&mut st, &rec)
    };
    rec.status = reply.status_code();
    if shared.lock().recording {
        shared.mcp.lock().requests.push(rec);
    }
    send(shared, request, &reply);
}

fn answer(st: &mut McpState, rec: &Recorded) -> Reply {
    let id = rec.body.get("id").cloned().unwrap_or(Value::Null);
    let ok =
        |result: Value| Reply::status(200, json!({"jsonrpc": "2.0", "id": id, "result": result}));
    let rpc_error = |code: i64, message: &str| {
        Reply::status(
            200,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        )
    };
    match rec.body.get("method").and_then(Value::as_str) {
        Some("initialize") => ok(json!({
            "protocolVersion": "2025-03-26",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake-kiro-mcp", "version": "1"}
        })),
        Some("tools/list") => ok(json!({"tools": [{
            "name": "web_search",
            "description": "Search the web.",
            "inputSchema": st.tool_schema.clone()
        }]})),
        Some("tools/call") => {
            if rec.body.pointer("/params/name").and_then(Value::as_str) != Some("web_search") {
                return rpc_error(-32602, "Unknown tool");
            }
            let Some(query) = rec.search_query() else {
                return rpc_error(-32602, "query is required");
            };
            let text = |results: Vec<Value>| {
                json!({"results": results, "totalResults": 3, "query": query}).to_string()
            };
            match st.replies.pop_front() {
                None => ok(
                    json!({"content": [{"type": "text", "text": text(default_results(&query))}],
                                  "isError": false}),
                ),
                Some(McpReply::Results(r)) => {
                    ok(json!({"content": [{"type": "text", "text": text(r)}], "isError": false}))
                }
                Some(McpReply::ResultsSse(r)) => {
                    let envelope = json!({"jsonrpc": "2.0", "id": id, "result":
                        {"content": [{"type": "text", "text": text(r)}], "isError": false}});
                    Reply::status_text(
                        200,
                        "text/event-stream",
                        &format!("event: message\ndata: {envelope}\n\n"),
                    )
                }
                Some(McpReply::RpcError { code, message }) => rpc_error(code, &message),
                Some(McpReply::ToolError(t)) => {
                    ok(json!({"content": [{"type": "text", "text": t}], "isError": true}))
                }
                Some(McpReply::PayloadError(e)) => ok(json!({"content": [{"type": "text",
                    "text": json!({"results": [], "error": e}).to_string()}], "isError": false})),
                Some(McpReply::Http(reply)) => reply,
            }
        }
        _ => rpc_error(-32601, "Method not found"),
    }
}

/// What the user asked to search for: Claude Code's WebSearch prompt ("Perform a web search for
/// the query: …") without its prefix, else the last line of the first user message (the gateway
/// puts the system prompt and its own notes in front of it), at most 80 characters.
fn wanted_query(rec: &Recorded) -> String {
    const PREFIX: &str = "Perform a web search for the query:";
    let first_user = rec
        .body
        .pointer("/conversationState/history/0/userInputMessage/content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| rec.user_content())
        .unwrap_or_default();
    let line = match first_user.find(PREFIX) {
        Some(i) => first_user[i + PREFIX.len()..].lines().next().unwrap_or(""),
        None => first_user
            .lines()
            .map(str::trim)
            .rfind(|l| !(l.is_empty() || l.starts_with('<') && l.ends_with('>')))
            .unwrap_or(""),
    };
    let q: String = line.trim().chars().take(80).collect();
    if q.is_empty() {
        "kiro gateway".into()
    } else {
        q
    }
}

/// The first `URL: …` line of the search results the conversation holds.
fn first_result_url(rec: &Recorded) -> Option<String> {
    let raw = &rec.raw_body;
    let at = raw.find("URL: ")? + "URL: ".len();
    let rest = &raw[at..];
    let end = rest.find(['\\', '"', ' ']).unwrap_or(rest.len());
    Some(rest[..end].to_string()).filter(|u| !u.is_empty())
}

/// A scripted model for clients with a web search tool (`fake_kiro --script search`, used by
/// `scripts/e2e_web_search.py`): when `web_search` is offered and nothing was searched yet, it
/// searches for what the user asked; with results, it answers citing the first page as a
/// markdown link. `None` when no `web_search` tool is offered.
pub fn search_script(rec: &Recorded) -> Option<Reply> {
    if !rec.tool_names().iter().any(|n| n == "web_search") {
        return None;
    }
    if searches_done(&rec.body) == 0 {
        return Some(Reply::web_search_call(
            &format!("{SEARCH_ID_PREFIX}0"),
            &wanted_query(rec),
        ));
    }
    Some(match first_result_url(rec) {
        Some(url) => Reply::text(&format!("Here is what I found: [the first page]({url}).")),
        None => Reply::text("The search found nothing I can cite."),
    })
}

/// In an agent client's prompt (`scripts/e2e_clients.sh`): look something up on the web.
pub const SEARCH_MARKER: &str = "E2E_SEARCH";
/// What the agent searches for after [`SEARCH_MARKER`].
pub const E2E_QUERY: &str = "rust 1.90 release notes";
/// How the agent's answer after a search starts.
pub const SEARCH_DONE: &str = "E2E search done:";

/// The web search steps of the agent script, before its write / edit / shell plan:
/// - a request whose user text is Claude Code's WebSearch prompt ("Perform a web search for the
///   query: …") and that offers `web_search` is answered by [`search_script`];
/// - after [`SEARCH_MARKER`], a client whose hosted `web_search` the gateway offers (Codex) has it
///   called with [`E2E_QUERY`]; a client with its own `WebSearch` tool (Claude Code) has that
///   called (loaded through its `ToolSearch` first when it is deferred); once the results are
///   in, the answer names the first page's URL.
///
/// `None`: not a search request; the agent script answers.
pub fn agent_search(rec: &Recorded) -> Option<Reply> {
    let raw = &rec.raw_body;
    let tools = rec.tool_names();
    let offers = |name: &str| tools.iter().any(|t| t == name);
    if raw.contains("Perform a web search for the query:") && offers("web_search") {
        return search_script(rec);
    }
    if !raw.contains(SEARCH_MARKER) {
        return None;
    }
    let answer = |rec: &Recorded| {
        let url = rec
            .raw_body
            .find("https://example.com/")
            .map(|at| {
                let rest = &rec.raw_body[at..];
                let end = rest.find(['\\', '"', ' ', ')', ']']).unwrap_or(rest.len());
                rest[..end].to_string()
            })
            .unwrap_or_else(|| "no page found".into());
        Reply::text(&format!("{SEARCH_DONE} {url}"))
    };
    if offers("web_search") {
        return Some(if searches_done(&rec.body) == 0 {
            Reply::web_search_call(&format!("{SEARCH_ID_PREFIX}0"), E2E_QUERY)
        } else {
            answer(rec)
        });
    }
    if offers("WebSearch") {
        const ID: &str = "tooluse_websearch_e2e";
        let asked = raw.matches(ID).count();
        return Some(if asked == 0 {
            let args = json!({ "query": E2E_QUERY }).to_string();
            let mut events = Ev::tool_call(ID, "WebSearch", &args, 2);
            events.push(Ev::Metering(DEFAULT_CREDITS));
            events.push(Ev::ContextUsage(DEFAULT_CONTEXT_PCT));
            Reply::events(events)
        } else {
            answer(rec)
        });
    }
    // Claude Code defers WebSearch behind its ToolSearch tool: load it first.
    if offers("ToolSearch") {
        const ID: &str = "tooluse_toolsearch_e2e";
        if !raw.contains(ID) {
            let args = json!({ "query": "select:WebSearch" }).to_string();
            let mut events = Ev::tool_call(ID, "ToolSearch", &args, 2);
            events.push(Ev::Metering(DEFAULT_CREDITS));
            events.push(Ev::ContextUsage(DEFAULT_CONTEXT_PCT));
            return Some(Reply::events(events));
        }
    }
    None
}
