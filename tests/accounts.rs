//! End-to-end: several Kiro accounts behind one gateway (issue 9).

mod common;
mod fake_kiro;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Gateway;
use fake_kiro::{FakeKiro, Reply};
use serde_json::{json, Value};

fn chat(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": text}]})
}

/// Start a gateway whose accounts file holds `accounts`.
fn start(fake: &FakeKiro, accounts: Value, extra: &[(&str, &str)]) -> Gateway {
    let dir = common::temp_dir("accounts");
    let path = dir.join("accounts.json");
    std::fs::write(&path, accounts.to_string()).unwrap();
    let path = path.to_string_lossy().to_string();
    let mut env: Vec<(&str, &str)> = vec![("KIRO_ACCOUNTS_FILE", &path), ("REFRESH_TOKEN", "")];
    env.extend_from_slice(extra);
    Gateway::start(&fake.url(), &env)
}

fn bearers(fake: &FakeKiro) -> Vec<String> {
    fake.requests().iter().filter_map(|r| r.bearer()).collect()
}

fn two_keys() -> Value {
    json!([
        {"name": "first", "api_key": "ksk_first", "priority": 0},
        {"name": "second", "api_key": "ksk_second", "priority": 1}
    ])
}

fn account<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap()
}

fn health(gw: &Gateway) -> Value {
    let resp = common::agent()
        .get(&format!("{}/health", gw.url))
        .call()
        .unwrap();
    let mut text = String::new();
    resp.into_body()
        .into_reader()
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn throttled_account_fails_over_to_the_next_and_cools_down() {
    let fake = FakeKiro::start();
    let gw = start(&fake, two_keys(), &[]);
    // Cooldowns are kept in whole seconds, so "4" lasts 3 to 4 s: room for the checks below on a
    // loaded machine.
    fake.push_reply(
        Reply::error(429, "Too many requests", Some("USER_REQUEST_RATE_EXCEEDED"))
            .header("Retry-After", "4"),
    );
    let (status, body) = gw.post("/v1/chat/completions", &chat("a"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(bearers(&fake), vec!["ksk_first", "ksk_second"]);
    let h = health(&gw);
    assert_eq!(account(&h, "first")["status"], "cooling_down");
    assert!(account(&h, "first")["cooling_down_until"].is_string());
    assert_eq!(account(&h, "second")["status"], "healthy");
    assert_eq!(account(&h, "second")["requests_served"], 1);
    // While it cools down, the first account is not tried at all.
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("b")).0, 200);
    assert_eq!(bearers(&fake), vec!["ksk_second"]);
    // After Retry-After the preferred account is used again.
    let deadline = Instant::now() + Duration::from_secs(15);
    while account(&health(&gw), "first")["status"] != "healthy" {
        assert!(Instant::now() < deadline, "the cooldown never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("c")).0, 200);
    assert_eq!(bearers(&fake), vec!["ksk_first"]);
    assert_eq!(account(&health(&gw), "first")["status"], "healthy");
    // Secrets never reach /health.
    assert!(!health(&gw).to_string().contains("ksk_"));
}

#[test]
fn spent_quota_cools_the_account_until_the_reset() {
    let fake = FakeKiro::start();
    let gw = start(&fake, two_keys(), &[]);
    fake.push_reply(Reply::error(
        429,
        "Monthly limit",
        Some("MONTHLY_REQUEST_COUNT"),
    ));
    assert_eq!(gw.post("/v1/chat/completions", &chat("a")).0, 200);
    let h = health(&gw);
    let first = account(&h, "first");
    assert_eq!(first["status"], "cooling_down");
    assert!(first["reason"].as_str().unwrap().contains("monthly quota"));
    // Until the first of next month.
    assert!(
        first["cooling_down_until"]
            .as_str()
            .unwrap()
            .contains("-01T00:00:00Z"),
        "{first}"
    );
}

#[test]
fn every_account_out_gives_429_with_retry_after_and_reasons() {
    let fake = FakeKiro::start();
    let gw = start(&fake, two_keys(), &[("ACCOUNT_QUOTA_COOLDOWN", "120")]);
    fake.push_reply(Reply::error(
        429,
        "Monthly limit",
        Some("MONTHLY_REQUEST_COUNT"),
    ));
    fake.push_reply(
        Reply::error(429, "slow down", Some("USER_REQUEST_RATE_EXCEEDED"))
            .header("Retry-After", "30"),
    );
    let (status, headers, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {}", common::KEY))],
        chat("a").to_string().as_bytes(),
    );
    assert_eq!(status, 429, "{text}");
    let retry: u64 = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.parse().unwrap())
        .expect("Retry-After");
    assert!(
        (25..=30).contains(&retry),
        "earliest recovery is the second account's: {retry}"
    );
    assert!(
        text.contains("first: monthly quota exhausted") && text.contains("second: throttled"),
        "{text}"
    );
    // Nothing is sent to Kiro while every account is out.
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("b")).0, 429);
    assert!(fake.requests().is_empty());
}

#[test]
fn a_bad_request_does_not_fail_over() {
    let fake = FakeKiro::start();
    let gw = start(&fake, two_keys(), &[]);
    fake.push_reply(Reply::error(
        400,
        "Improperly formed request.",
        Some("REQUEST_BODY_INVALID"),
    ));
    assert_eq!(gw.post("/v1/chat/completions", &chat("a")).0, 400);
    assert_eq!(bearers(&fake), vec!["ksk_first"]);
    assert_eq!(account(&health(&gw), "first")["status"], "healthy");
}

#[test]
fn round_robin_spreads_and_conversations_stick_to_their_account() {
    let fake = FakeKiro::start();
    let gw = start(&fake, two_keys(), &[("ACCOUNT_STRATEGY", "round_robin")]);
    assert_eq!(gw.post("/v1/chat/completions", &chat("conv one")).0, 200);
    assert_eq!(gw.post("/v1/chat/completions", &chat("conv two")).0, 200);
    let b = bearers(&fake);
    assert_ne!(b[0], b[1], "round robin alternates: {b:?}");
    // Follow-ups of conversation one go to the account that served it.
    for _ in 0..3 {
        fake.clear_requests();
        let follow = json!({"model": "claude-sonnet-4-5", "messages": [
            {"role": "user", "content": "conv one"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "more"}]});
        assert_eq!(gw.post("/v1/chat/completions", &follow).0, 200);
        assert_eq!(bearers(&fake), vec![b[0].clone()]);
    }
}

#[test]
fn disabled_accounts_are_never_used_and_invalid_entries_stop_start_up() {
    let fake = FakeKiro::start();
    let gw = start(
        &fake,
        json!([{"name": "off", "api_key": "ksk_off", "enabled": false},
               {"name": "on", "api_key": "ksk_on", "priority": 5}]),
        &[],
    );
    assert_eq!(gw.post("/v1/chat/completions", &chat("a")).0, 200);
    assert_eq!(bearers(&fake), vec!["ksk_on"]);
    assert_eq!(account(&health(&gw), "off")["status"], "disabled");

    let dir = common::temp_dir("badaccounts");
    let path = dir.join("accounts.json");
    std::fs::write(
        &path,
        json!([{"name": "x", "api_key": "ksk_1"}, {"name": "broken"}]).to_string(),
    )
    .unwrap();
    let mut env = common::base_env(&fake.url());
    env.push((
        "KIRO_ACCOUNTS_FILE".into(),
        path.to_string_lossy().to_string(),
    ));
    let (code, out) = common::run_to_exit(&env, &[]);
    assert_eq!(code, 2);
    assert!(
        out.contains("broken") && out.contains("exactly one"),
        "{out}"
    );
}

#[test]
fn each_account_refreshes_once_and_writes_only_its_own_file() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("acctfiles");
    let mk = |name: &str, rt: &str| {
        let p = dir.join(format!("{name}.json"));
        std::fs::write(
            &p,
            json!({"accessToken": "old", "refreshToken": rt, "expiresAt": "2020-01-01T00:00:00.000Z",
                   "region": "us-east-1", "mine": name})
            .to_string(),
        )
        .unwrap();
        p
    };
    let a = mk("a", "rt-a");
    let b = mk("b", "rt-b");
    fake.set_refresh_delay(Duration::from_millis(200));
    let gw = start(
        &fake,
        json!([{"name": "a", "creds_file": a.to_string_lossy()},
               {"name": "b", "creds_file": b.to_string_lossy(), "priority": 1},
               {"name": "c", "refresh_token": "rt-c", "priority": 2}]),
        &[],
    );
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = gw.url.clone();
            std::thread::spawn(move || {
                let resp = common::agent()
                    .post(&format!("{url}/v1/chat/completions"))
                    .header("authorization", &format!("Bearer {}", common::KEY))
                    .send(chat(&format!("q{i}")).to_string().as_bytes())
                    .unwrap();
                resp.status().as_u16()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.refresh_count() >= 3));
    std::thread::sleep(Duration::from_millis(300));
    let sent: Vec<String> = fake
        .auth_requests()
        .iter()
        .filter_map(|r| r.body["refreshToken"].as_str().map(String::from))
        .collect();
    for rt in ["rt-a", "rt-b", "rt-c"] {
        assert_eq!(
            sent.iter().filter(|s| *s == rt).count(),
            1,
            "{rt} refreshed once: {sent:?}"
        );
    }
    let fa: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let fb: Value = serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    assert_eq!(fa["mine"], "a");
    assert_eq!(fb["mine"], "b");
    assert_ne!(fa["accessToken"], "old");
    assert_ne!(fb["accessToken"], "old");
    assert_ne!(fa["accessToken"], fb["accessToken"]);
    assert_ne!(fa["refreshToken"], fb["refreshToken"]);
    // Each account has its own stable machine id in the User-Agent.
    let ua_a = fake.requests()[0].header("user-agent").unwrap();
    fake.clear_requests();
    fake.push_reply(
        Reply::error(429, "slow", Some("USER_REQUEST_RATE_EXCEEDED")).header("Retry-After", "30"),
    );
    assert_eq!(gw.post("/v1/chat/completions", &chat("other")).0, 200);
    let uas: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.header("user-agent"))
        .collect();
    assert_eq!(uas.len(), 2);
    assert_eq!(uas[0], ua_a);
    let id = |ua: &str| ua.split("KiroIDE-1.1.70-").nth(1).unwrap()[..64].to_string();
    assert_ne!(
        id(&uas[0]),
        id(&uas[1]),
        "accounts a and b have different machine ids"
    );
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("again")).0, 200);
    // Account b now serves, with its own token (a is cooling down).
    let fb: Value = serde_json::from_str(&std::fs::read_to_string(&b).unwrap()).unwrap();
    let used = bearers(&fake);
    assert_eq!(used, vec![fb["accessToken"].as_str().unwrap().to_string()]);
}

/// A tiny HTTP proxy that records what it was asked to reach and forwards it.
fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = seen2.clone();
            std::thread::spawn(move || proxy_one(conn, &seen));
        }
    });
    (url, seen)
}

fn proxy_one(mut client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let first = text.lines().next().unwrap_or("").to_string();
    seen.lock().unwrap().push(first.clone());
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("").to_string();
    if method == "CONNECT" {
        let Ok(upstream) = TcpStream::connect(&target) else {
            return;
        };
        client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .unwrap();
        pipe(client, upstream);
    } else {
        // Absolute-form request: forward it as is to the host it names.
        let hostport = target
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        let Ok(mut upstream) = TcpStream::connect(&hostport) else {
            return;
        };
        upstream.write_all(&head).unwrap();
        pipe(client, upstream);
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut a, mut b) = (a, b);
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut b, &mut a);
    let _ = a.shutdown(std::net::Shutdown::Write);
    let _ = t.join();
}

#[test]
fn each_account_uses_its_own_proxy() {
    let fake = FakeKiro::start();
    let (proxy_url, seen) = recording_proxy();
    let gw = start(
        &fake,
        json!([{"name": "proxied", "api_key": "ksk_p", "proxy": proxy_url},
               {"name": "direct", "api_key": "ksk_d", "proxy": "direct", "priority": 1}]),
        &[],
    );
    assert_eq!(gw.post("/v1/chat/completions", &chat("a")).0, 200);
    let port = fake.port().to_string();
    assert!(
        seen.lock().unwrap().iter().any(|l| l.contains(&port)),
        "the proxied account went through the proxy: {:?}",
        seen.lock().unwrap()
    );
    // The direct account never touches the proxy.
    fake.push_reply(
        Reply::error(429, "slow", Some("USER_REQUEST_RATE_EXCEEDED")).header("Retry-After", "30"),
    );
    seen.lock().unwrap().clear();
    // The proxied account gets the 429 (through the proxy) and fails over to the direct one.
    assert_eq!(gw.post("/v1/chat/completions", &chat("b")).0, 200);
    let n_before = seen.lock().unwrap().len();
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("c")).0, 200);
    assert_eq!(bearers(&fake), vec!["ksk_d"]);
    assert_eq!(
        seen.lock().unwrap().len(),
        n_before,
        "no proxy use by the direct account"
    );
}

#[test]
fn cooldowns_survive_a_restart_with_the_state_file() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("state");
    let path = dir.join("accounts.json");
    std::fs::write(&path, two_keys().to_string()).unwrap();
    let p = path.to_string_lossy().to_string();
    let env = [
        ("KIRO_ACCOUNTS_FILE", p.as_str()),
        ("REFRESH_TOKEN", ""),
        ("ACCOUNTS_STATE", "true"),
    ];
    {
        let gw = Gateway::start(&fake.url(), &env);
        fake.push_reply(Reply::error(
            429,
            "Monthly limit",
            Some("MONTHLY_REQUEST_COUNT"),
        ));
        assert_eq!(gw.post("/v1/chat/completions", &chat("a")).0, 200);
    }
    assert!(dir.join("accounts.json.state.json").exists());
    let gw = Gateway::start(&fake.url(), &env);
    fake.clear_requests();
    assert_eq!(gw.post("/v1/chat/completions", &chat("b")).0, 200);
    assert_eq!(
        bearers(&fake),
        vec!["ksk_second"],
        "the spent account stays cooled after a restart"
    );
}

#[test]
fn every_account_out_of_quota_is_insufficient_quota_and_not_to_be_retried() {
    let fake = FakeKiro::start();
    let gw = start(&fake, two_keys(), &[]);
    fake.set_default_reply(Reply::error(
        429,
        "Monthly limit",
        Some("MONTHLY_REQUEST_COUNT"),
    ));
    // The first request spends both accounts; the next finds every account out.
    assert_eq!(gw.post("/v1/chat/completions", &chat("a")).0, 429);
    let (status, headers, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {}", common::KEY))],
        chat("b").to_string().as_bytes(),
    );
    assert_eq!(status, 429, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "insufficient_quota", "{v}");
    assert_eq!(v["error"]["type"], "insufficient_quota", "{v}");
    let should_retry = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-should-retry"))
        .map(|(_, v)| v.as_str());
    assert_eq!(should_retry, Some("false"));
}

#[test]
fn a_conversation_stays_on_the_account_that_served_it_while_that_account_is_usable() {
    let fake = FakeKiro::start();
    let gw = start(&fake, two_keys(), &[("ACCOUNT_STRATEGY", "round_robin")]);
    let turn = |first: &str, more: &[&str]| {
        let mut messages = vec![json!({"role": "user", "content": first})];
        for m in more {
            messages.push(json!({"role": "assistant", "content": "ok"}));
            messages.push(json!({"role": "user", "content": m}));
        }
        json!({"model": "claude-sonnet-4-5", "messages": messages})
    };
    let served_by = |body: &Value| {
        fake.clear_requests();
        let (status, answer) = gw.post("/v1/chat/completions", body);
        assert_eq!(status, 200, "{answer}");
        bearers(&fake).last().cloned().unwrap_or_default()
    };
    // Two new conversations take turns (round robin)...
    let a = served_by(&turn("conversation A", &[]));
    let b = served_by(&turn("conversation B", &[]));
    assert_ne!(a, b);
    // ...and each follow-up goes back to the account that served its conversation.
    for n in 1..4 {
        let more: Vec<String> = (0..n).map(|i| format!("more {i}")).collect();
        let more: Vec<&str> = more.iter().map(String::as_str).collect();
        // (Twice in a row for A: taking turns alone would hand the second one to B's account.)
        assert_eq!(served_by(&turn("conversation A", &more)), a);
        assert_eq!(served_by(&turn("conversation A", &more)), a);
        assert_eq!(served_by(&turn("conversation B", &more)), b);
    }
    // While A's account cools down, A moves to the other one, and stays there.
    fake.push_reply(
        Reply::error(429, "Too many requests", Some("USER_REQUEST_RATE_EXCEEDED"))
            .header("Retry-After", "60"),
    );
    fake.clear_requests();
    let (status, _) = gw.post("/v1/chat/completions", &turn("conversation A", &["again"]));
    assert_eq!(status, 200);
    assert_eq!(bearers(&fake), vec![a.clone(), b.clone()]);
    assert_eq!(
        served_by(&turn("conversation A", &["again", "and again"])),
        b
    );
}
