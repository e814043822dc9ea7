//! Kiro's web search: JSON-RPC 2.0 `tools/call` of the `web_search` tool on `POST {runtime
//! host}/mcp`, with the account's bearer token and profile ARN (`docs/web-search.md#kiros-search`).
//!
//! One blocking call per search, bounded by `WEB_SEARCH_TIMEOUT`; the answer becomes a neutral list
//! of [`SearchHit`]s and every failure a [`SearchError`], never a gateway error: a failed search is
//! something the model and the client are told about, and the answer goes on.

use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{Credentials, TokenStore};
use crate::config::UpstreamSettings;
use crate::kiro::identity;
use crate::util::{civil_date, parse_iso8601, uuid_v4};
use crate::websearch::{SearchError, SearchFailure, SearchHit, TOOL_NAME};

/// Bytes of an MCP answer we read: far above a page of results, far below a memory problem.
const MAX_ANSWER_BYTES: u64 = 8 * 1024 * 1024;

/// JSON-RPC error code for invalid method parameters.
const INVALID_PARAMS: i64 = -32602;

#[derive(Serialize)]
struct RpcRequest<P: Serialize> {
    jsonrpc: &'static str,
    id: String,
    method: &'static str,
    params: P,
}

#[derive(Serialize)]
struct CallParams<'a> {
    name: &'static str,
    arguments: SearchArguments<'a>,
}

/// The arguments of Kiro's `web_search` tool. Domain lists are sent only when the tool's schema
/// (from `tools/list`) names them.
#[derive(Serialize)]
struct SearchArguments<'a> {
    query: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    allowed_domains: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    blocked_domains: &'a [String],
}

#[derive(Serialize)]
struct NoParams {}

#[derive(Deserialize)]
struct RpcResponse<R> {
    #[serde(default = "Option::default")]
    result: Option<R>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct CallResult {
    #[serde(default)]
    content: Vec<ContentItem>,
    #[serde(default, rename = "isError")]
    is_error: bool,
}

#[derive(Deserialize)]
struct ContentItem {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// The JSON inside the text content of a `web_search` result.
#[derive(Deserialize)]
struct ResultsPayload {
    #[serde(default)]
    results: Vec<RawHit>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct RawHit {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    snippet: Option<String>,
    /// Milliseconds since the epoch (seen), or an ISO-8601 date.
    #[serde(default, rename = "publishedDate")]
    published_date: Option<Value>,
}

#[derive(Deserialize)]
struct ListResult {
    #[serde(default)]
    tools: Vec<ToolInfo>,
}

#[derive(Deserialize)]
struct ToolInfo {
    name: String,
    #[serde(default, rename = "inputSchema")]
    input_schema: Value,
}

/// One search to make.
#[derive(Debug, Clone, Copy)]
pub struct SearchCall<'a> {
    pub query: &'a str,
    /// Passed to Kiro only when its tool takes them (the gateway filters the results anyway).
    pub allowed_domains: &'a [String],
    pub blocked_domains: &'a [String],
}

/// Run one search with this account. A 403 refreshes the token and tries once more.
pub fn search(
    config: &UpstreamSettings,
    store: &TokenStore,
    agent: &ureq::Agent,
    call: SearchCall<'_>,
) -> Result<Vec<SearchHit>, SearchError> {
    let params = CallParams {
        name: TOOL_NAME,
        arguments: SearchArguments {
            query: call.query,
            allowed_domains: call.allowed_domains,
            blocked_domains: call.blocked_domains,
        },
    };
    let answer: CallResult = rpc(config, store, agent, "tools/call", &params)?;
    parse_call_result(answer)
}

/// The argument names Kiro's `web_search` tool declares (`tools/list`), to know whether domain
/// filters can be passed on. `None` when the tool is not listed.
pub fn tool_arguments(
    config: &UpstreamSettings,
    store: &TokenStore,
    agent: &ureq::Agent,
) -> Result<Option<Vec<String>>, SearchError> {
    let list: ListResult = rpc(config, store, agent, "tools/list", &NoParams {})?;
    Ok(list
        .tools
        .into_iter()
        .find(|t| t.name == TOOL_NAME)
        .map(|t| {
            t.input_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        }))
}

fn rpc<P: Serialize, R: for<'de> Deserialize<'de>>(
    config: &UpstreamSettings,
    store: &TokenStore,
    agent: &ureq::Agent,
    method: &'static str,
    params: &P,
) -> Result<R, SearchError> {
    let request = RpcRequest {
        jsonrpc: "2.0",
        id: uuid_v4(),
        method,
        params,
    };
    let body = serde_json::to_vec(&request).map_err(|e| unavailable(format!("encoding: {e}")))?;
    let mut creds = store
        .credentials()
        .map_err(|e| unavailable(format!("no credentials: {e}")))?;
    let mut refreshed = false;
    loop {
        match post(config, agent, &creds, &body) {
            Ok(text) => return parse_envelope(&text),
            Err(Posted::Forbidden) if !refreshed => {
                refreshed = true;
                log::info!("Kiro's search answered 403; refreshing the token and retrying");
                creds = store
                    .force_refresh(&creds.access_token)
                    .map_err(|e| unavailable(format!("token refresh failed: {e}")))?;
            }
            Err(Posted::Forbidden) => return Err(unavailable("HTTP 403".into())),
            Err(Posted::Failed(e)) => return Err(e),
        }
    }
}

enum Posted {
    Forbidden,
    Failed(SearchError),
}

/// One POST to `/mcp`; the body text of a 200.
fn post(
    config: &UpstreamSettings,
    agent: &ureq::Agent,
    creds: &Credentials,
    body: &[u8],
) -> Result<String, Posted> {
    let profile = identity::effective_profile(config, creds);
    let base = identity::api_base(config, profile, &creds.api_region);
    let url = format!("{}/mcp", base.trim_end_matches('/'));
    let (ua, amz_ua) = identity::user_agents(config, profile, &creds.machine_id);
    let mut req = agent
        .post(&url)
        .config()
        .timeout_global(Some(config.web_search_timeout))
        .build()
        .header("authorization", &format!("Bearer {}", creds.access_token))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("user-agent", &ua)
        .header("x-amz-user-agent", &amz_ua)
        .header("amz-sdk-invocation-id", &uuid_v4())
        .header("amz-sdk-request", "attempt=1; max=1");
    if let Some(arn) = &creds.profile_arn {
        req = req.header("x-amzn-kiro-profile-arn", arn);
    }
    if let Some((k, v)) = identity::token_type_header(creds.kind) {
        req = req.header(k, v);
    }
    let resp = req.send(body).map_err(|e| {
        Posted::Failed(match e {
            ureq::Error::Timeout(_) => SearchError {
                failure: SearchFailure::Timeout,
                detail: format!(
                    "no answer within {} s",
                    config.web_search_timeout.as_secs_f64()
                ),
            },
            other => unavailable(format!("network: {other}")),
        })
    })?;
    let status = resp.status().as_u16();
    let mut text = String::new();
    let read = resp
        .into_body()
        .into_reader()
        .take(MAX_ANSWER_BYTES)
        .read_to_string(&mut text);
    match status {
        200 => {}
        403 => return Err(Posted::Forbidden),
        429 => {
            return Err(Posted::Failed(SearchError {
                failure: SearchFailure::TooManyRequests,
                detail: "HTTP 429".into(),
            }))
        }
        s => return Err(Posted::Failed(unavailable(format!("HTTP {s}")))),
    }
    if let Err(e) = read {
        let failure = if e.kind() == std::io::ErrorKind::TimedOut {
            SearchFailure::Timeout
        } else {
            SearchFailure::Unavailable
        };
        return Err(Posted::Failed(SearchError {
            failure,
            detail: format!("reading the answer: {e}"),
        }));
    }
    Ok(text)
}

fn unavailable(detail: String) -> SearchError {
    SearchError {
        failure: SearchFailure::Unavailable,
        detail,
    }
}

/// The JSON-RPC answer: plain JSON, or (MCP's streamable HTTP transport) an SSE body whose last
/// `data:` line holds it.
fn parse_envelope<R: for<'de> Deserialize<'de>>(text: &str) -> Result<R, SearchError> {
    let trimmed = text.trim_start();
    let json = if trimmed.starts_with('{') {
        trimmed
    } else {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .rfind(|l| l.starts_with('{'))
            .ok_or_else(|| unavailable("the answer is not JSON".into()))?
    };
    let envelope: RpcResponse<R> =
        serde_json::from_str(json).map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
    if let Some(err) = envelope.error {
        let code = err.code.unwrap_or(0);
        let failure = if code == INVALID_PARAMS {
            SearchFailure::InvalidInput
        } else {
            SearchFailure::Unavailable
        };
        return Err(SearchError {
            failure,
            detail: format!(
                "JSON-RPC error {code}: {}",
                err.message
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect::<String>()
            ),
        });
    }
    envelope
        .result
        .ok_or_else(|| unavailable("JSON-RPC answer without a result".into()))
}

fn parse_call_result(result: CallResult) -> Result<Vec<SearchHit>, SearchError> {
    let text = result
        .content
        .iter()
        .filter(|c| c.kind == "text")
        .find_map(|c| c.text.as_deref());
    if result.is_error {
        let detail = text.unwrap_or("").chars().take(200).collect::<String>();
        return Err(unavailable(format!("the tool failed: {detail}")));
    }
    let text = text.ok_or_else(|| unavailable("no text content in the result".into()))?;
    let payload: ResultsPayload = serde_json::from_str(text)
        .map_err(|e| unavailable(format!("results are not readable: {e}")))?;
    if let Some(e) = payload.error.filter(|e| !e.trim().is_empty()) {
        return Err(unavailable(format!(
            "search error: {}",
            e.chars().take(200).collect::<String>()
        )));
    }
    Ok(payload
        .results
        .into_iter()
        .filter_map(|r| {
            let url = r.url.filter(|u| !u.trim().is_empty())?;
            Some(SearchHit {
                title: r
                    .title
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| url.clone()),
                snippet: r.snippet.filter(|s| !s.trim().is_empty()),
                page_age: r.published_date.as_ref().and_then(page_age),
                url,
            })
        })
        .collect())
}

/// A publication date as Anthropic writes `page_age`: "March 3, 2026".
fn page_age(v: &Value) -> Option<String> {
    let millis = match v {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => match parse_iso8601(s) {
            Some((ms, _)) => ms,
            None if s.len() >= 10 => parse_iso8601(&format!("{}T00:00:00Z", s.get(..10)?))?.0,
            None => return Some(s.clone()).filter(|s| !s.trim().is_empty()),
        },
        _ => return None,
    };
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (y, m, d) = civil_date(millis.div_euclid(86_400_000));
    let month = MONTHS.get(usize::try_from(m - 1).ok()?)?;
    Some(format!("{month} {d}, {y}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call_result(v: Value) -> Result<Vec<SearchHit>, SearchError> {
        let text = json!({"jsonrpc": "2.0", "id": "1", "result": v}).to_string();
        parse_envelope::<CallResult>(&text).and_then(parse_call_result)
    }

    fn text_content(payload: Value) -> Value {
        json!({"content": [{"type": "text", "text": payload.to_string()}], "isError": false})
    }

    #[test]
    fn request_body_is_a_json_rpc_tools_call() {
        let params = CallParams {
            name: TOOL_NAME,
            arguments: SearchArguments {
                query: "rust release",
                allowed_domains: &[],
                blocked_domains: &["b.com".to_string()],
            },
        };
        let req = RpcRequest {
            jsonrpc: "2.0",
            id: "x".into(),
            method: "tools/call",
            params,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"jsonrpc": "2.0", "id": "x", "method": "tools/call",
                   "params": {"name": "web_search",
                              "arguments": {"query": "rust release", "blocked_domains": ["b.com"]}}})
        );
    }

    #[test]
    fn results_become_hits_with_page_age() {
        let hits = call_result(text_content(json!({
            "results": [
                {"title": "Rust 1.90", "url": "https://blog.rust-lang.org/x", "snippet": "Released",
                 "publishedDate": 1_772_496_000_000_i64, "id": "a", "domain": "blog.rust-lang.org"},
                {"title": "", "url": "https://b.org", "snippet": "", "publishedDate": "2025-12-31"},
                {"title": "no url"}
            ],
            "totalResults": 3, "query": "rust"
        })))
        .unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].title, "Rust 1.90");
        assert_eq!(hits[0].snippet.as_deref(), Some("Released"));
        assert_eq!(hits[0].page_age.as_deref(), Some("March 3, 2026"));
        assert_eq!(hits[1].title, "https://b.org");
        assert_eq!(hits[1].snippet, None);
        assert_eq!(hits[1].page_age.as_deref(), Some("December 31, 2025"));
    }

    #[test]
    fn empty_results_are_a_success() {
        assert_eq!(
            call_result(text_content(json!({"results": []}))).unwrap(),
            vec![]
        );
    }

    #[test]
    fn failures_are_classified() {
        let failure = |text: &str| {
            parse_envelope::<CallResult>(text)
                .and_then(parse_call_result)
                .unwrap_err()
                .failure
        };
        assert_eq!(
            failure(r#"{"jsonrpc":"2.0","id":"1","error":{"code":-32603,"message":"boom"}}"#),
            SearchFailure::Unavailable
        );
        assert_eq!(
            failure(r#"{"jsonrpc":"2.0","id":"1","error":{"code":-32602,"message":"bad query"}}"#),
            SearchFailure::InvalidInput
        );
        assert_eq!(
            failure(
                r#"{"jsonrpc":"2.0","id":"1","result":{"content":[{"type":"text","text":"quota"}],"isError":true}}"#
            ),
            SearchFailure::Unavailable
        );
        assert_eq!(failure("<html>502</html>"), SearchFailure::Unavailable);
        assert_eq!(
            failure(
                r#"{"jsonrpc":"2.0","id":"1","result":{"content":[{"type":"text","text":"not json"}]}}"#
            ),
            SearchFailure::Unavailable
        );
        let err = call_result(text_content(
            json!({"results": [], "error": "backend down"}),
        ));
        assert_eq!(err.unwrap_err().failure, SearchFailure::Unavailable);
    }

    #[test]
    fn an_sse_answer_is_read() {
        let payload = json!({"results": [{"title": "T", "url": "https://t.io"}]}).to_string();
        let envelope = json!({"jsonrpc": "2.0", "id": "1",
            "result": {"content": [{"type": "text", "text": payload}]}});
        let sse = format!("event: message\ndata: {envelope}\n\n");
        let hits = parse_envelope::<CallResult>(&sse)
            .and_then(parse_call_result)
            .unwrap();
        assert_eq!(hits[0].url, "https://t.io");
    }

    #[test]
    fn tools_list_names_the_arguments() {
        let text = r#"{"jsonrpc":"2.0","id":"1","result":{"tools":[{"name":"web_search","inputSchema":{"type":"object","properties":{"query":{"type":"string"}}}}]}}"#;
        let list: ListResult = parse_envelope(text).unwrap();
        assert_eq!(list.tools[0].name, "web_search");
        assert!(list.tools[0].input_schema["properties"]["query"].is_object());
    }
}
