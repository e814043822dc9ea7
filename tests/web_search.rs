//! Web search through Kiro's MCP endpoint: the gateway's search call against the fake Kiro's
//! `/mcp` (what is sent, how results and faults come back), and end to end through the client APIs.

mod fake_kiro;

use std::time::Duration;

use fake_kiro::mcp::{default_url, McpReply};
use fake_kiro::{FakeKiro, Reply, DEFAULT_PROFILE_ARN};
use kiro_gateway::auth::TokenStore;
use kiro_gateway::config::Config;
use kiro_gateway::kiro::mcp::{self, SearchCall};
use kiro_gateway::websearch::{SearchError, SearchFailure, SearchHit};
use serde_json::json;

fn config(fake: &FakeKiro) -> Config {
    let mut c = Config::defaults();
    c.api_url = Some(fake.url());
    c.management_url = Some(fake.url());
    c.desktop_auth_url = Some(format!("{}/refreshToken", fake.url()));
    c
}

fn search(c: &Config, query: &str) -> Result<Vec<SearchHit>, SearchError> {
    let store = TokenStore::from_config(c).unwrap();
    let agent = kiro_gateway::net::agent(c, Some("direct")).unwrap();
    mcp::search(
        c,
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
    let store = TokenStore::from_config(&c).unwrap();
    let agent = kiro_gateway::net::agent(&c, Some("direct")).unwrap();
    let first = store.credentials().unwrap().access_token;
    fake.revoke_access_token(&first);
    let call = SearchCall {
        query: "after refresh",
        allowed_domains: &[],
        blocked_domains: &[],
    };
    let hits = mcp::search(&c, &store, &agent, call).unwrap();
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
    let store = TokenStore::from_config(&c).unwrap();
    let agent = kiro_gateway::net::agent(&c, Some("direct")).unwrap();
    let args = mcp::tool_arguments(&c, &store, &agent).unwrap().unwrap();
    assert_eq!(args, ["query"]);
    fake.set_mcp_tool_schema(json!({"type": "object", "properties":
        {"query": {"type": "string"}, "allowed_domains": {"type": "array"}}}));
    let mut args = mcp::tool_arguments(&c, &store, &agent).unwrap().unwrap();
    args.sort();
    assert_eq!(args, ["allowed_domains", "query"]);
    assert_eq!(fake.mcp_requests()[0].body["method"], "tools/list");
}
