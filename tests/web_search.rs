//! Web search through Kiro's MCP endpoint: the gateway's search call against the fake Kiro's
//! `/mcp` (what is sent, how results and faults come back), and end to end through the client APIs.

mod common;
mod fake_kiro;

use std::time::Duration;

use common::{parse_sse, Gateway, SseEvent, KEY};
use fake_kiro::mcp::{default_url, McpReply};
use fake_kiro::{FakeKiro, Reply, DEFAULT_PROFILE_ARN};
use kiro_gateway::auth::TokenStore;
use std::sync::Arc;

use kiro_gateway::config::{AuthSettings, Config, NetSettings, UpstreamSettings};
use kiro_gateway::kiro::mcp::{self, SearchCall};
use kiro_gateway::websearch::{SearchError, SearchFailure, SearchHit};
use serde_json::{json, Value};

fn config(fake: &FakeKiro) -> Config {
    let mut c = Config::defaults();
    c.api_url = Some(fake.url());
    c.management_url = Some(fake.url());
    c.desktop_auth_url = Some(format!("{}/refreshToken", fake.url()));
    c
}

fn search(c: &Config, query: &str) -> Result<Vec<SearchHit>, SearchError> {
    let store = TokenStore::single(&Arc::new(AuthSettings::from_config(c))).unwrap();
    let agent = kiro_gateway::net::agent(&NetSettings::from_config(c), Some("direct")).unwrap();
    mcp::search(
        &UpstreamSettings::from_config(c),
        &store,
        &agent,
        SearchCall {
            query,
            allowed_domains: &[],
            blocked_domains: &[],
        },
    )
}

fn api_key_config(fake: &FakeKiro) -> Config {
    let mut c = config(fake);
    c.api_key = Some("ksk_websearch".into());
    c
}

fn refresh_token_config(fake: &FakeKiro) -> Config {
    let mut c = config(fake);
    c.refresh_token = Some("seed-refresh".into());
    c.profile_arn = Some(DEFAULT_PROFILE_ARN.into());
    c
}

#[test]
fn search_posts_a_json_rpc_tools_call_with_token_and_profile_arn() {
    let fake = FakeKiro::start();
    let c = refresh_token_config(&fake);
    let hits = search(&c, "rust 1.90").unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].url, default_url("rust 1.90", 0));
    assert_eq!(hits[0].title, "rust 1.90 - Example");
    assert_eq!(
        hits[0].snippet.as_deref(),
        Some("Everything about rust 1.90.")
    );
    assert_eq!(hits[0].page_age.as_deref(), Some("March 3, 2026"));
    assert_eq!(hits[1].page_age, None);

    let calls = fake.mcp_requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/mcp");
    assert_eq!(call.body["jsonrpc"], "2.0");
    assert_eq!(call.body["method"], "tools/call");
    assert_eq!(
        call.body["params"],
        json!({"name": "web_search", "arguments": {"query": "rust 1.90"}})
    );
    assert!(call.body["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(call.bearer(), fake.last_access_token());
    assert_eq!(
        call.header("x-amzn-kiro-profile-arn").as_deref(),
        Some(DEFAULT_PROFILE_ARN)
    );
    assert_eq!(
        call.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(call.header("user-agent").unwrap().contains("KiroIDE-"));
}

#[test]
fn api_keys_search_without_a_profile_arn() {
    let fake = FakeKiro::start();
    let c = api_key_config(&fake);
    search(&c, "q").unwrap();
    let call = &fake.mcp_requests()[0];
    assert_eq!(call.bearer().as_deref(), Some("ksk_websearch"));
    assert_eq!(call.header("x-amzn-kiro-profile-arn"), None);
    assert_eq!(call.header("tokentype").as_deref(), Some("API_KEY"));
}

#[test]
fn scripted_results_and_sse_answers_are_read() {
    let fake = FakeKiro::start();
    let c = api_key_config(&fake);
    fake.push_mcp_reply(McpReply::Results(vec![
        json!({"title": "Only", "url": "https://only.example/x", "snippet": "one"}),
    ]));
    fake.push_mcp_reply(McpReply::ResultsSse(vec![
        json!({"title": "Streamed", "url": "https://sse.example/y"}),
    ]));
    fake.push_mcp_reply(McpReply::Results(vec![]));
    let first = search(&c, "a").unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].url, "https://only.example/x");
    let second = search(&c, "b").unwrap();
    assert_eq!(second[0].title, "Streamed");
    assert!(search(&c, "c").unwrap().is_empty());
    assert_eq!(fake.search_queries(), ["a", "b", "c"]);
}

#[test]
fn faults_become_search_failures() {
    let fake = FakeKiro::start();
    let c = api_key_config(&fake);
    let cases = [
        (
            McpReply::RpcError {
                code: -32603,
                message: "internal".into(),
            },
            SearchFailure::Unavailable,
        ),
        (
            McpReply::ToolError("search backend down".into()),
            SearchFailure::Unavailable,
        ),
        (
            McpReply::PayloadError("no index".into()),
            SearchFailure::Unavailable,
        ),
        (
            McpReply::Http(Reply::error(500, "Internal", None)),
            SearchFailure::Unavailable,
        ),
        (
            McpReply::Http(Reply::error(429, "Too many", Some("THROTTLED"))),
            SearchFailure::TooManyRequests,
        ),
        (
            McpReply::Http(Reply::status_text(200, "text/html", "<html>oops</html>")),
            SearchFailure::Unavailable,
        ),
        (
            McpReply::Http(Reply::disconnect()),
            SearchFailure::Unavailable,
        ),
    ];
    for (reply, want) in cases {
        let shown = format!("{reply:?}");
        fake.push_mcp_reply(reply);
        let err = search(&c, "q").unwrap_err();
        assert_eq!(err.failure, want, "{shown}: {err}");
        assert!(!err.to_string().contains("ksk_websearch"), "{err}");
    }
}

#[test]
fn a_slow_search_times_out() {
    let fake = FakeKiro::start();
    let mut c = api_key_config(&fake);
    c.web_search_timeout = Duration::from_millis(300);
    fake.push_mcp_reply(McpReply::Http(
        Reply::status(200, json!({})).delay_headers(Duration::from_secs(3)),
    ));
    let err = search(&c, "slow").unwrap_err();
    assert_eq!(err.failure, SearchFailure::Timeout, "{err}");
}

#[test]
fn a_403_refreshes_the_token_once_and_retries() {
    let fake = FakeKiro::start();
    let c = refresh_token_config(&fake);
    let store = TokenStore::single(&Arc::new(AuthSettings::from_config(&c))).unwrap();
    let agent = kiro_gateway::net::agent(&NetSettings::from_config(&c), Some("direct")).unwrap();
    let first = store.credentials().unwrap().access_token;
    fake.revoke_access_token(&first);
    let call = SearchCall {
        query: "after refresh",
        allowed_domains: &[],
        blocked_domains: &[],
    };
    let hits = mcp::search(&UpstreamSettings::from_config(&c), &store, &agent, call).unwrap();
    assert_eq!(hits.len(), 3);
    let calls = fake.mcp_requests();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].status, 403);
    assert_ne!(calls[1].bearer().as_deref(), Some(first.as_str()));
}

#[test]
fn tools_list_tells_which_arguments_the_tool_takes() {
    let fake = FakeKiro::start();
    let c = api_key_config(&fake);
    let store = TokenStore::single(&Arc::new(AuthSettings::from_config(&c))).unwrap();
    let agent = kiro_gateway::net::agent(&NetSettings::from_config(&c), Some("direct")).unwrap();
    let args = mcp::tool_arguments(&UpstreamSettings::from_config(&c), &store, &agent)
        .unwrap()
        .unwrap();
    assert_eq!(args, ["query"]);
    fake.set_mcp_tool_schema(json!({"type": "object", "properties":
        {"query": {"type": "string"}, "allowed_domains": {"type": "array"}}}));
    let mut args = mcp::tool_arguments(&UpstreamSettings::from_config(&c), &store, &agent)
        .unwrap()
        .unwrap();
    args.sort();
    assert_eq!(args, ["allowed_domains", "query"]);
    assert_eq!(fake.mcp_requests()[0].body["method"], "tools/list");
}

// ------------------------------------------------------------------------------------------
// End to end through the client APIs
// ------------------------------------------------------------------------------------------

const Q: &str = "rust news";

/// The answer the fake model gives after searching `query`: it links the first page.
fn cited_answer(query: &str) -> String {
    format!(
        "Rust 1.90 is out, see [the example page]({}) for details.",
        default_url(query, 0)
    )
}

fn post(gw: &Gateway, path: &str, body: &Value) -> (u16, Vec<(String, String)>, String) {
    gw.post_raw(
        path,
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        body.to_string().as_bytes(),
    )
}

fn post_json(gw: &Gateway, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, text) = post(gw, path, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn stream(gw: &Gateway, path: &str, body: &Value) -> Vec<SseEvent> {
    let (status, _, text) = post(gw, path, body);
    assert_eq!(status, 200, "{text}");
    parse_sse(&text)
}

fn header(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn anthropic(tool: Value, stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream,
           "tools": [tool],
           "messages": [{"role": "user", "content": "What is new in Rust?"}]})
}

fn search_tool() -> Value {
    json!({"type": "web_search_20250305", "name": "web_search"})
}

/// The `type`s of a message's content blocks.
fn block_types(content: &Value) -> Vec<String> {
    content
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn anthropic_one_search_then_an_answer_with_citations() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = post_json(&gw, "/v1/messages", &anthropic(search_tool(), false));
    assert_eq!(status, 200, "{body}");
    let content = &body["content"];
    assert_eq!(
        block_types(content),
        ["server_tool_use", "web_search_tool_result", "text"]
    );
    let call = &content[0];
    assert!(call["id"].as_str().unwrap().starts_with("srvtoolu_"));
    assert_eq!(call["name"], "web_search");
    assert_eq!(call["input"], json!({"query": Q}));
    let result = &content[1];
    assert_eq!(result["tool_use_id"], call["id"]);
    let pages = result["content"].as_array().unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0]["type"], "web_search_result");
    assert_eq!(pages[0]["url"], default_url(Q, 0));
    assert_eq!(pages[0]["title"], "rust news - Example");
    assert_eq!(pages[0]["page_age"], "March 3, 2026");
    assert!(pages[0]["encrypted_content"]
        .as_str()
        .unwrap()
        .starts_with("kgw1."));
    assert_eq!(pages[1]["page_age"], Value::Null);
    let text = &content[2];
    assert_eq!(text["text"], cited_answer(Q));
    let citations = text["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1);
    assert_eq!(citations[0]["type"], "web_search_result_location");
    assert_eq!(citations[0]["url"], default_url(Q, 0));
    assert_eq!(citations[0]["title"], "rust news - Example");
    assert_eq!(citations[0]["cited_text"], "Everything about rust news.");
    assert!(citations[0]["encrypted_index"].is_string());
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["server_tool_use"]["web_search_requests"], 1);

    // Kiro saw a plain web_search tool, called it, and got the pages as the tool's result.
    assert_eq!(fake.search_queries(), [Q]);
    let sent = fake.requests();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].tool_names().contains(&"web_search".to_string()));
    let results = sent[1].tool_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["toolUseId"], "tooluse_search_0");
    let fed = results[0].to_string();
    assert!(fed.contains(&default_url(Q, 2)), "{fed}");
    assert!(fed.contains("Latest on rust news."), "{fed}");
    assert!(sent[1].raw_body.contains("tooluse_search_0"));
}

#[test]
fn anthropic_stream_shows_the_search_in_anthropics_event_order() {
    let fake = FakeKiro::start();
    fake.plan_searches_with_preamble("Let me look.", &[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = stream(&gw, "/v1/messages", &anthropic(search_tool(), true));
    let shape: Vec<String> = events
        .iter()
        .filter(|e| e.event.as_deref() != Some("ping"))
        .map(|e| {
            let v = e.json();
            match v["type"].as_str().unwrap() {
                "content_block_start" => {
                    format!("start {}", v["content_block"]["type"].as_str().unwrap())
                }
                "content_block_delta" => format!("delta {}", v["delta"]["type"].as_str().unwrap()),
                other => other.to_string(),
            }
        })
        .collect();
    let mut want: Vec<String> = vec!["message_start".into(), "start text".into()];
    let deltas = shape.iter().filter(|s| *s == "delta text_delta").count();
    assert!(deltas >= 4, "{shape:?}");
    let first_stop = shape
        .iter()
        .position(|s| s == "content_block_stop")
        .unwrap();
    assert_eq!(&shape[..2], &want[..]);
    want = shape[first_stop..].to_vec();
    let text_deltas_after = want.iter().filter(|s| *s == "delta text_delta").count();
    want.retain(|s| s != "delta text_delta");
    assert_eq!(
        want,
        [
            "content_block_stop",
            "start server_tool_use",
            "delta input_json_delta",
            "content_block_stop",
            "start web_search_tool_result",
            "content_block_stop",
            "start text",
            "delta citations_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(text_deltas_after >= 5);
    let find = |kind: &str| {
        events
            .iter()
            .map(SseEvent::json)
            .find(|v| v["content_block"]["type"] == kind)
            .unwrap()
    };
    let call = find("server_tool_use");
    assert_eq!(call["content_block"]["input"], json!({}));
    let delta = events
        .iter()
        .map(SseEvent::json)
        .find(|v| v["delta"]["type"] == "input_json_delta")
        .unwrap();
    let partial: Value =
        serde_json::from_str(delta["delta"]["partial_json"].as_str().unwrap()).unwrap();
    assert_eq!(partial, json!({"query": Q}));
    let result = find("web_search_tool_result");
    assert_eq!(
        result["content_block"]["tool_use_id"],
        call["content_block"]["id"]
    );
    assert_eq!(
        result["content_block"]["content"].as_array().unwrap().len(),
        3
    );
    let citation = events
        .iter()
        .map(SseEvent::json)
        .find(|v| v["delta"]["type"] == "citations_delta")
        .unwrap();
    assert_eq!(citation["delta"]["citation"]["url"], default_url(Q, 0));
    let end = events
        .iter()
        .map(SseEvent::json)
        .find(|v| v["type"] == "message_delta")
        .unwrap();
    assert_eq!(end["usage"]["server_tool_use"]["web_search_requests"], 1);
    assert_eq!(end["delta"]["stop_reason"], "end_turn");
    // The preamble went into Kiro's history with the call.
    let second = &fake.requests()[1];
    assert!(
        second.raw_body.contains("Let me look."),
        "{}",
        second.raw_body
    );
}

#[test]
fn anthropic_two_searches_then_an_answer() {
    let fake = FakeKiro::start();
    fake.plan_searches(
        &["first query", "second query"],
        &cited_answer("second query"),
    );
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = post_json(&gw, "/v1/messages", &anthropic(search_tool(), false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        block_types(&body["content"]),
        [
            "server_tool_use",
            "web_search_tool_result",
            "server_tool_use",
            "web_search_tool_result",
            "text"
        ]
    );
    assert_eq!(body["content"][2]["input"]["query"], "second query");
    assert_eq!(body["usage"]["server_tool_use"]["web_search_requests"], 2);
    assert_eq!(fake.search_queries(), ["first query", "second query"]);
    assert_eq!(fake.requests().len(), 3);
    // The answer cites a page of the second search.
    assert_eq!(
        body["content"][4]["citations"][0]["url"],
        default_url("second query", 0)
    );
}

#[test]
fn anthropic_max_uses_reached_is_reported_and_the_answer_goes_on() {
    let fake = FakeKiro::start();
    fake.plan_searches(&["one", "two"], "Answer with what I found.");
    let gw = Gateway::start(&fake.url(), &[]);
    let tool = json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 1});
    let (status, body) = post_json(&gw, "/v1/messages", &anthropic(tool, false));
    assert_eq!(status, 200, "{body}");
    let content = &body["content"];
    assert_eq!(content[1]["content"].as_array().unwrap().len(), 3);
    assert_eq!(
        content[3]["content"],
        json!({"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"})
    );
    assert_eq!(content[4]["text"], "Answer with what I found.");
    assert_eq!(body["usage"]["server_tool_use"]["web_search_requests"], 1);
    assert_eq!(fake.search_queries(), ["one"]);
    let third = &fake.requests()[2];
    let result = &third.tool_results()[0];
    assert_eq!(result["status"], "error", "{result}");
    assert!(
        result.to_string().contains("No more web searches"),
        "{result}"
    );
}

#[test]
fn anthropic_failed_search_is_an_error_block_and_the_answer_goes_on() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], "I could not search, but here is what I know.");
    fake.push_mcp_reply(McpReply::Http(Reply::error(500, "Internal", None)));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = post_json(&gw, "/v1/messages", &anthropic(search_tool(), false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["content"][1]["content"],
        json!({"type": "web_search_tool_result_error", "error_code": "unavailable"})
    );
    assert_eq!(
        body["content"][2]["text"],
        "I could not search, but here is what I know."
    );
    let result = &fake.requests()[1].tool_results()[0];
    assert_eq!(result["status"], "error");
    // The stream says the same.
    fake.push_mcp_reply(McpReply::RpcError {
        code: -32603,
        message: "down".into(),
    });
    let events = stream(&gw, "/v1/messages", &anthropic(search_tool(), true));
    let block = events
        .iter()
        .map(SseEvent::json)
        .find(|v| v["content_block"]["type"] == "web_search_tool_result")
        .unwrap();
    assert_eq!(
        block["content_block"]["content"]["error_code"],
        "unavailable"
    );
    assert_eq!(events.last().unwrap().json()["type"], "message_stop");
}

#[test]
fn anthropic_domain_filters_apply_to_the_results() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], "done");
    let gw = Gateway::start(&fake.url(), &[]);
    let urls = |body: &Value| -> Vec<String> {
        body["content"][1]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["url"].as_str().unwrap().to_string())
            .collect()
    };
    let allow = json!({"type": "web_search_20250305", "name": "web_search",
        "allowed_domains": ["example.org"]});
    let (status, body) = post_json(&gw, "/v1/messages", &anthropic(allow, false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(urls(&body), [default_url(Q, 1)]);
    let block = json!({"type": "web_search_20260209", "name": "web_search",
        "blocked_domains": ["https://example.com/"]});
    let (status, body) = post_json(&gw, "/v1/messages", &anthropic(block, false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(urls(&body), [default_url(Q, 1), default_url(Q, 2)]);
    // What the model read was filtered too.
    let fed = fake.requests()[1].tool_results()[0].to_string();
    assert!(
        !fed.contains(&default_url(Q, 0)) && fed.contains(&default_url(Q, 1)),
        "{fed}"
    );
}

#[test]
fn anthropic_bad_search_tools_are_400s_naming_the_field() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    for (tool, field) in [
        (
            json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 0}),
            "tools[0].max_uses",
        ),
        (
            json!({"type": "web_search_20250305", "name": "web_search", "allowed_domains": "a.com"}),
            "tools[0].allowed_domains",
        ),
        (
            json!({"type": "web_search_20250305", "name": "web_search", "blocked_domains": [1]}),
            "tools[0].blocked_domains",
        ),
        (
            json!({"type": "web_search_20250305", "name": "web_search",
                   "allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}),
            "tools[0].allowed_domains",
        ),
    ] {
        let (status, body) = post_json(&gw, "/v1/messages", &anthropic(tool, false));
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field}: {message}");
    }
    assert!(fake.requests().is_empty());
    assert!(fake.mcp_requests().is_empty());
}

#[test]
fn with_web_search_off_the_tool_is_ignored_and_named_in_a_header() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("WEB_SEARCH", "off")]);
    let (status, headers, text) = post(&gw, "/v1/messages", &anthropic(search_tool(), false));
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        header(&headers, "x-kiro-gateway-ignored-tools").as_deref(),
        Some("web_search_20250305")
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["content"][0]["text"], "Hello from fake Kiro");
    assert!(!fake
        .last_request()
        .unwrap()
        .tool_names()
        .contains(&"web_search".to_string()));
    // Responses too.
    let (status, headers, _) = post(
        &gw,
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "input": "hi", "tools": [{"type": "web_search"}]}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "x-kiro-gateway-ignored-tools").as_deref(),
        Some("web_search")
    );
    assert!(fake.mcp_requests().is_empty());
}

#[test]
fn anthropic_history_replay_keeps_the_query_and_the_pages_text() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, first) = post_json(&gw, "/v1/messages", &anthropic(search_tool(), false));
    assert_eq!(status, 200, "{first}");
    fake.clear_reply_fn();
    fake.clear_requests();
    let follow_up = json!({"model": "claude-sonnet-4-5", "max_tokens": 1024,
        "tools": [search_tool()],
        "messages": [
            {"role": "user", "content": "What is new in Rust?"},
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": "Summarise the second page."}]});
    let (status, body) = post_json(&gw, "/v1/messages", &follow_up);
    assert_eq!(status, 200, "{body}");
    let sent = fake.last_request().unwrap().raw_body;
    assert!(
        sent.contains("Searched the web for \\\"rust news\\\""),
        "{sent}"
    );
    assert!(sent.contains(&default_url(Q, 1)), "{sent}");
    // The excerpt came back through our encrypted_content.
    assert!(sent.contains("Reference for rust news."), "{sent}");
    assert!(sent.contains("Rust 1.90 is out"), "{sent}");
    assert!(fake.mcp_requests().len() == 1, "no new search");
}

fn responses_body(stream: bool, include: bool) -> Value {
    let mut b = json!({"model": "claude-sonnet-4-5", "stream": stream,
        "tools": [{"type": "web_search"}], "input": "What is new in Rust?"});
    if include {
        b["include"] = json!(["web_search_call.action.sources"]);
    }
    b
}

#[test]
fn responses_search_call_item_and_url_citations() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = post_json(&gw, "/v1/responses", &responses_body(false, true));
    assert_eq!(status, 200, "{body}");
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 2, "{body}");
    let call = &output[0];
    assert_eq!(call["type"], "web_search_call");
    assert!(call["id"].as_str().unwrap().starts_with("ws_"));
    assert_eq!(call["status"], "completed");
    assert_eq!(call["action"]["type"], "search");
    assert_eq!(call["action"]["query"], Q);
    let sources: Vec<&str> = call["action"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 3);
    let part = &output[1]["content"][0];
    let text = part["text"].as_str().unwrap();
    assert_eq!(text, cited_answer(Q));
    let a = &part["annotations"][0];
    assert_eq!(a["type"], "url_citation");
    assert_eq!(a["url"], default_url(Q, 0));
    assert_eq!(a["title"], "rust news - Example");
    let chars: Vec<char> = text.chars().collect();
    let span: String = chars
        [a["start_index"].as_u64().unwrap() as usize..a["end_index"].as_u64().unwrap() as usize]
        .iter()
        .collect();
    assert_eq!(span, format!("[the example page]({})", default_url(Q, 0)));
    // Without the include, no sources.
    let (_, body) = post_json(&gw, "/v1/responses", &responses_body(false, false));
    assert!(
        body["output"][0]["action"].get("sources").is_none(),
        "{body}"
    );
}

#[test]
fn responses_stream_reports_the_search_while_it_runs() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = stream(&gw, "/v1/responses", &responses_body(true, false));
    let kinds: Vec<String> = events
        .iter()
        .filter_map(|e| e.event.clone())
        .filter(|k| k != "response.output_text.delta")
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("{k}: {kinds:?}"))
    };
    assert!(pos("response.created") < pos("response.output_item.added"));
    let added = pos("response.output_item.added");
    assert_eq!(kinds[added + 1], "response.web_search_call.in_progress");
    assert_eq!(kinds[added + 2], "response.web_search_call.searching");
    assert_eq!(kinds[added + 3], "response.web_search_call.completed");
    assert_eq!(kinds[added + 4], "response.output_item.done");
    assert!(pos("response.output_text.annotation.added") < pos("response.output_text.done"));
    assert_eq!(kinds.last().unwrap(), "response.completed");
    let first_item = events
        .iter()
        .map(SseEvent::json)
        .find(|v| v["type"] == "response.output_item.added")
        .unwrap();
    assert_eq!(first_item["item"]["type"], "web_search_call");
    assert_eq!(first_item["item"]["status"], "in_progress");
    let annotation = events
        .iter()
        .map(SseEvent::json)
        .find(|v| v["type"] == "response.output_text.annotation.added")
        .unwrap();
    assert_eq!(annotation["annotation"]["url"], default_url(Q, 0));
    assert_eq!(annotation["annotation_index"], 0);
    let done = events.last().unwrap().json();
    assert_eq!(done["response"]["output"][0]["type"], "web_search_call");
    assert_eq!(
        done["response"]["output"][1]["content"][0]["annotations"][0]["type"],
        "url_citation"
    );
}

#[test]
fn responses_failed_search_is_a_failed_call_and_history_keeps_searches() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], "Nothing found.");
    fake.push_mcp_reply(McpReply::ToolError("down".into()));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = post_json(&gw, "/v1/responses", &responses_body(false, false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"][0]["status"], "failed");
    assert_eq!(body["output"][1]["content"][0]["text"], "Nothing found.");
    // A follow-up by previous_response_id carries the search into Kiro's history.
    fake.clear_reply_fn();
    fake.clear_requests();
    let (status, _) = post_json(
        &gw,
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "previous_response_id": body["id"],
                "input": "and now?"}),
    );
    assert_eq!(status, 200);
    let sent = fake.last_request().unwrap().raw_body;
    assert!(
        sent.contains("Searched the web for \\\"rust news\\\": failed (unavailable)"),
        "{sent}"
    );
}

#[test]
fn responses_history_by_previous_response_id_keeps_the_pages_text() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = post_json(&gw, "/v1/responses", &responses_body(false, false));
    assert_eq!(status, 200, "{body}");
    fake.clear_reply_fn();
    fake.clear_requests();
    let (status, _) = post_json(
        &gw,
        "/v1/responses",
        &json!({"model": "claude-sonnet-4-5", "previous_response_id": body["id"],
                "input": "More on the docs page?"}),
    );
    assert_eq!(status, 200);
    let sent = fake.last_request().unwrap().raw_body;
    assert!(sent.contains(&default_url(Q, 1)), "{sent}");
    assert!(sent.contains("Reference for rust news."), "{sent}");
}

#[test]
fn chat_web_search_options_give_url_citation_annotations() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": "claude-sonnet-4-5",
        "web_search_options": {"search_context_size": "low",
            "user_location": {"type": "approximate", "approximate": {"country": "FR"}}},
        "messages": [{"role": "user", "content": "What is new in Rust?"}]});
    let (status, resp) = post_json(&gw, "/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let message = &resp["choices"][0]["message"];
    assert_eq!(message["content"], cited_answer(Q));
    let a = &message["annotations"][0];
    assert_eq!(a["type"], "url_citation");
    assert_eq!(a["url_citation"]["url"], default_url(Q, 0));
    assert_eq!(a["url_citation"]["start_index"], 22);
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    // The model was told where the user is.
    let tools = fake.requests()[0].body.to_string();
    assert!(tools.contains("The user is near FR."), "{tools}");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = stream(&gw, "/v1/chat/completions", &streamed);
    let annotations: Vec<Value> = events
        .iter()
        .map(SseEvent::json)
        .filter_map(|v| v["choices"][0]["delta"].get("annotations").cloned())
        .collect();
    assert_eq!(annotations.len(), 1, "{events:?}");
    assert_eq!(annotations[0][0]["url_citation"]["url"], default_url(Q, 0));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let (status, bad) = post_json(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "web_search_options": "yes",
                "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 400);
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("web_search_options"));
}

#[test]
fn a_forced_search_is_forced_once_and_off_it_is_never_a_400() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], &cited_answer(Q));
    let gw = Gateway::start(&fake.url(), &[]);
    let mut body = anthropic(search_tool(), false);
    body["tool_choice"] = json!({"type": "tool", "name": "web_search"});
    let (status, resp) = post_json(&gw, "/v1/messages", &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["usage"]["server_tool_use"]["web_search_requests"], 1);
    let sent = fake.requests();
    assert!(sent[0].raw_body.contains("calling the tool `web_search`"));
    assert!(!sent[1].raw_body.contains("calling the tool `web_search`"));
    // Responses: forcing the hosted tool forces ours.
    fake.clear_requests();
    let mut r = responses_body(false, false);
    r["tool_choice"] = json!({"type": "web_search_preview"});
    let (status, resp) = post_json(&gw, "/v1/responses", &r);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["output"][0]["type"], "web_search_call");
    assert_eq!(resp["tool_choice"]["type"], "web_search_preview");

    let off = Gateway::start(&fake.url(), &[("WEB_SEARCH", "off")]);
    fake.clear_reply_fn();
    let (status, resp) = post_json(&off, "/v1/messages", &body);
    assert_eq!(status, 200, "{resp}");
}

#[test]
fn a_search_next_to_a_client_tool_call_ends_with_the_client_call() {
    let fake = FakeKiro::start();
    let mut events = fake_kiro::Ev::tool_call("tooluse_s", "web_search", r#"{"query":"q1"}"#, 1);
    events.extend(fake_kiro::Ev::tool_call(
        "tooluse_f",
        "get_weather",
        r#"{"city":"Paris"}"#,
        2,
    ));
    events.push(fake_kiro::Ev::Metering(0.1));
    fake.push_reply(Reply::events(events));
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 1024,
        "tools": [search_tool(), {"name": "get_weather", "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "Weather and news?"}]});
    let (status, resp) = post_json(&gw, "/v1/messages", &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        block_types(&resp["content"]),
        ["server_tool_use", "web_search_tool_result", "tool_use"]
    );
    assert_eq!(resp["content"][2]["name"], "get_weather");
    assert_eq!(resp["stop_reason"], "tool_use");
    assert_eq!(fake.search_queries(), ["q1"]);
    assert_eq!(fake.requests().len(), 1, "the client runs its tool first");
    // Streamed, the client's call keeps index 0 for Chat-style consumers and the blocks follow.
    let mut events = fake_kiro::Ev::tool_call("tooluse_s", "web_search", r#"{"query":"q1"}"#, 1);
    events.extend(fake_kiro::Ev::tool_call(
        "tooluse_f",
        "get_weather",
        r#"{"city":"Paris"}"#,
        2,
    ));
    fake.push_reply(Reply::events(events));
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let evs = stream(&gw, "/v1/messages", &streamed);
    let starts: Vec<String> = evs
        .iter()
        .map(SseEvent::json)
        .filter(|v| v["type"] == "content_block_start")
        .map(|v| v["content_block"]["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        starts,
        ["tool_use", "server_tool_use", "web_search_tool_result"]
    );
}

#[test]
fn responses_replayed_search_items_keep_the_query() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": "claude-sonnet-4-5", "tools": [{"type": "web_search"}],
        "input": [
            {"role": "user", "content": "news?"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed",
             "action": {"type": "search", "query": "rust news"}},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "Rust 1.90 is out.", "annotations": []}]},
            {"role": "user", "content": "more?"}]});
    let (status, resp) = post_json(&gw, "/v1/responses", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().raw_body;
    assert!(
        sent.contains("[Searched the web for \\\"rust news\\\"]"),
        "{sent}"
    );
    assert!(!sent.contains("No results"), "{sent}");
}

#[test]
fn signed_reasoning_before_a_search_goes_back_to_kiro_with_the_call() {
    let fake = FakeKiro::start();
    let mut first = vec![
        fake_kiro::Ev::reasoning("I should look this up."),
        fake_kiro::Ev::reasoning_signature("EqSearchSignature"),
    ];
    first.extend(fake_kiro::Ev::tool_call(
        "tooluse_s1",
        "web_search",
        r#"{"query":"rust news"}"#,
        1,
    ));
    fake.push_replies([Reply::events(first), Reply::text("Done.")]);
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(gw.wait_logs(|l| l.contains("models from Kiro"), 10));
    let body = json!({"model": "claude-opus-4-8", "max_tokens": 2048,
        "thinking": {"type": "adaptive"}, "tools": [search_tool()],
        "messages": [{"role": "user", "content": "What is new in Rust?"}]});
    let (status, resp) = post_json(&gw, "/v1/messages", &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        block_types(&resp["content"]),
        [
            "thinking",
            "server_tool_use",
            "web_search_tool_result",
            "text"
        ]
    );
    let second = &fake.requests()[1];
    assert!(
        second.raw_body.contains("EqSearchSignature"),
        "{}",
        second.raw_body
    );
}

#[test]
fn a_streaming_client_hears_pings_while_a_slow_search_runs() {
    let fake = FakeKiro::start();
    fake.plan_searches(&[Q], "done");
    fake.push_mcp_reply(McpReply::Http(
        Reply::status(
            200,
            json!({"jsonrpc": "2.0", "id": "x", "result": {"content": [{"type": "text",
                "text": json!({"results": []}).to_string()}]}}),
        )
        .delay_headers(Duration::from_millis(5500)),
    ));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = stream(&gw, "/v1/messages", &anthropic(search_tool(), true));
    let names: Vec<String> = events
        .iter()
        .map(|e| {
            let v = e.json();
            match v["type"].as_str().unwrap_or("") {
                "content_block_start" => v["content_block"]["type"].as_str().unwrap().to_string(),
                other => other.to_string(),
            }
        })
        .collect();
    let call = names.iter().position(|n| n == "server_tool_use").unwrap();
    let result = names
        .iter()
        .position(|n| n == "web_search_tool_result")
        .unwrap();
    assert!(names[call..result].iter().any(|n| n == "ping"), "{names:?}");
}
