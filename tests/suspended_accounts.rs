//! End-to-end: an account Kiro suspends leaves the rotation and stays out (no timer brings it
//! back) until its login changes or the gateway restarts; requests fail over to the other
//! accounts, and with none left the client gets a 403 in its own shape saying so.

mod auth_support;
mod common;
mod fake_kiro;

use std::time::Duration;

use auth_support::{health, iso, now_ms, wait_until, Dir, Iso};
use common::Gateway;
use fake_kiro::{FakeKiro, Reply};
use serde_json::{json, Value};

fn chat(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": text}]})
}

fn messages(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64,
           "messages": [{"role": "user", "content": text}]})
}

fn suspended() -> Reply {
    Reply::error(
        403,
        "Your account is temporarily suspended.",
        Some("TEMPORARILY_SUSPENDED"),
    )
}

fn bearers(fake: &FakeKiro) -> Vec<String> {
    fake.requests().iter().filter_map(|r| r.bearer()).collect()
}

fn account(health: &Value, name: &str) -> Value {
    health["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

fn two_accounts(fake: &FakeKiro) -> Gateway {
    let dir = common::temp_dir("suspended");
    let path = dir.join("accounts.json");
    let accounts = json!([
        {"name": "first", "api_key": "ksk_first", "priority": 0},
        {"name": "second", "api_key": "ksk_second", "priority": 1}
    ]);
    std::fs::write(&path, accounts.to_string()).unwrap();
    let path = path.to_string_lossy().to_string();
    Gateway::start(
        &fake.url(),
        &[("KIRO_ACCOUNTS_FILE", &path), ("REFRESH_TOKEN", "")],
    )
}

#[test]
fn a_suspended_account_leaves_the_rotation_and_the_last_one_out_is_a_403() {
    let fake = FakeKiro::start();
    let gw = two_accounts(&fake);

    // The first account is suspended: the request moves on to the second.
    fake.push_reply(suspended());
    let (status, body) = gw.post("/v1/chat/completions", &chat("a"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(bearers(&fake), vec!["ksk_first", "ksk_second"]);
    let h = health(&gw);
    let first = account(&h, "first");
    assert_eq!(first["status"], "suspended", "{h}");
    assert!(first["reason"].as_str().unwrap().contains("suspended"));
    assert!(first["suspended_since"].is_string(), "{first}");
    assert_eq!(account(&h, "second")["status"], "healthy");

    // It is not tried again.
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("b")).0, 200);
    assert_eq!(bearers(&fake), vec!["ksk_second"]);

    // The last account is suspended too: the client hears it, the request goes nowhere else.
    fake.clear_requests();
    fake.push_reply(Reply::error(
        403,
        "We have locked your account for unusual activity.",
        None,
    ));
    let (status, body) = gw.post("/v1/chat/completions", &chat("c"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{body}"
    );
    assert_eq!(bearers(&fake), vec!["ksk_second"]);

    // From now on nothing reaches Kiro; each format answers in its own shape.
    fake.clear_requests();
    let (status, body) = gw.post("/v1/messages", &messages("d"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("first") && message.contains("second"),
        "{message}"
    );
    let (status, _) = gw.post("/v1/chat/completions", &chat("e"));
    assert_eq!(status, 403);
    assert!(fake.requests().is_empty(), "{:?}", bearers(&fake));
    let h = health(&gw);
    assert_eq!(account(&h, "second")["status"], "suspended", "{h}");
    assert!(!h.to_string().contains("ksk_"));
}

#[test]
fn a_suspended_login_comes_back_when_its_file_holds_a_new_login() {
    let fake = FakeKiro::start();
    let dir = Dir::new("suspended-file");
    let login = |access: &str, refresh: &str| {
        json!({
            "accessToken": access,
            "refreshToken": refresh,
            "expiresAt": iso(now_ms() + 3_600_000, Iso::MillisZ),
            "authMethod": "social",
            "provider": "Github",
            "region": "us-east-1"
        })
    };
    let creds = dir.json("kiro-auth-token.json", &login("old-access", "old-refresh"));
    let gw = Gateway::start(
        &fake.url(),
        &[("REFRESH_TOKEN", ""), ("KIRO_CREDS_FILE", &creds)],
    );

    fake.push_reply(suspended());
    let (status, body) = gw.post("/v1/chat/completions", &chat("a"));
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("suspended"));
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.refresh_count(), 0, "a suspension is never refreshed");

    // Still out: the gateway does not ask Kiro again on its own.
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("b")).0, 403);
    assert!(fake.requests().is_empty());
    assert_eq!(account(&health(&gw), "default")["status"], "suspended");

    // The user logs in again (the IDE rewrites the file): the account is back, with the new login.
    dir.json("kiro-auth-token.json", &login("new-access", "new-refresh"));
    assert!(wait_until(Duration::from_secs(10), || {
        account(&health(&gw), "default")["status"] == "healthy"
    }));
    let (status, body) = gw.post("/v1/chat/completions", &chat("c"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(bearers(&fake), vec!["new-access"]);
}
