//! End-to-end: Kiro's usage limits per account, read in the background at start-up (never on a
//! request's path), shown in `/health`, and used to prefer accounts with credits left; a login
//! Kiro will not answer for keeps working as before.

mod auth_support;
mod common;
mod fake_kiro;

use std::time::Duration;

use auth_support::{health, wait_until};
use common::Gateway;
use fake_kiro::{FakeKiro, Reply, DEFAULT_PROFILE_ARN};
use serde_json::{json, Value};

fn chat(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": text}]})
}

fn account(h: &Value, name: &str) -> Value {
    h["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn bearers(fake: &FakeKiro) -> Vec<String> {
    fake.requests().iter().filter_map(|r| r.bearer()).collect()
}

#[test]
fn usage_limits_show_in_health_and_accounts_with_credits_left_are_preferred() {
    let fake = FakeKiro::start();
    fake.set_usage_limits("ksk_first", 50.0, 50.0);
    fake.set_usage_limits("ksk_second", 10.0, 50.0);
    let dir = common::temp_dir("usage");
    let path = dir.join("accounts.json");
    let accounts = json!([
        {"name": "first", "api_key": "ksk_first", "priority": 0},
        {"name": "second", "api_key": "ksk_second", "priority": 1}
    ]);
    std::fs::write(&path, accounts.to_string()).unwrap();
    let path = path.to_string_lossy().to_string();
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_ACCOUNTS_FILE", &path), ("REFRESH_TOKEN", "")],
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let h = health(&gw);
            ["first", "second"]
                .iter()
                .all(|n| account(&h, n)["usage_limits"].is_object())
        }),
        "{}",
        health(&gw)
    );
    let h = health(&gw);
    let first = account(&h, "first")["usage_limits"].clone();
    assert_eq!(first["credits_used"], 50.0, "{first}");
    assert_eq!(first["credits_limit"], 50.0);
    assert_eq!(first["credits_left"], 0.0);
    assert_eq!(first["resets_at"], "2027-01-01T00:00:00Z");
    assert_eq!(first["subscription"], "KIRO PRO");
    assert_eq!(account(&h, "second")["usage_limits"]["credits_left"], 40.0);
    assert!(!h.to_string().contains("ksk_") && !h.to_string().contains("example.com"));

    // What Kiro was asked: the credit figures, once per account, each with its own login.
    let calls = fake.usage_limit_requests();
    let mut tokens: Vec<String> = calls.iter().filter_map(|r| r.bearer()).collect();
    tokens.sort();
    assert_eq!(tokens, vec!["ksk_first", "ksk_second"]);
    for c in &calls {
        assert_eq!(c.query_param("resourceType").as_deref(), Some("CREDIT"));
        assert_eq!(c.query_param("origin").as_deref(), Some("KIRO_CLI"));
        assert_eq!(c.header("tokentype").as_deref(), Some("API_KEY"));
    }

    // The preferred account has spent its credits: the other one serves.
    assert_eq!(gw.post("/v1/chat/completions", &chat("a")).0, 200);
    assert_eq!(bearers(&fake), vec!["ksk_second"]);
    // Requests never wait for the figures: no further call was made for them.
    assert_eq!(fake.usage_limit_requests().len(), 2);
}

#[test]
fn a_login_kiro_refuses_usage_limits_for_keeps_working_without_figures() {
    let fake = FakeKiro::start();
    fake.refuse_usage_limits(Reply::error(400, "Invalid profileArn", None));
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(wait_until(Duration::from_secs(10), || !fake
        .usage_limit_requests()
        .is_empty()));
    let call = &fake.usage_limit_requests()[0];
    assert_eq!(call.query_param("origin").as_deref(), Some("AI_EDITOR"));
    assert_eq!(
        call.query_param("profileArn").as_deref(),
        Some(DEFAULT_PROFILE_ARN)
    );
    let (status, body) = gw.post("/v1/chat/completions", &chat("a"));
    assert_eq!(status, 200, "{body}");
    let h = health(&gw);
    let default = account(&h, "default");
    assert_eq!(default["status"], "healthy", "{h}");
    assert!(default.get("usage_limits").is_none(), "{default}");
}
