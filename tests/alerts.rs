//! End-to-end: `ALERT_WEBHOOK` receives a small JSON POST when an account is suspended, a login is
//! revoked, a quota is spent or the client version is refused — at most one per event and account
//! per hour, never a token — while the gateway goes on serving.

mod auth_support;
mod common;
mod fake_kiro;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use auth_support::wait_until;
use common::Gateway;
use fake_kiro::{FakeKiro, Reply};
use serde_json::{json, Value};

/// A webhook that records what it is sent.
struct Hook {
    url: String,
    server: Arc<tiny_http::Server>,
    got: Arc<Mutex<Vec<Value>>>,
    thread: Option<JoinHandle<()>>,
}

impl Hook {
    fn start() -> Hook {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let addr = server.server_addr().to_ip().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (srv, log) = (server.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            for mut req in srv.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let v: Value = serde_json::from_str(&body).unwrap_or(json!({"raw": body}));
                log.lock().unwrap().push(v);
                let _ = req.respond(tiny_http::Response::empty(204));
            }
        });
        Hook {
            url: format!("http://{addr}/hook"),
            server,
            got,
            thread: Some(thread),
        }
    }

    fn events(&self) -> Vec<(String, String)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["event"].as_str().unwrap_or("").to_string(),
                    v["account"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn wait_for(&self, n: usize) {
        assert!(
            wait_until(Duration::from_secs(10), || self.events().len() >= n),
            "{:?}",
            self.events()
        );
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn chat() -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]})
}

fn pair(event: &str, account: &str) -> (String, String) {
    (event.to_string(), account.to_string())
}

#[test]
fn a_spent_quota_and_a_suspension_are_each_reported_once_without_secrets() {
    let fake = FakeKiro::start();
    let hook = Hook::start();
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("ALERT_WEBHOOK", &hook.url),
            ("REFRESH_TOKEN", ""),
            ("KIRO_API_KEY", "ksk_secret_key"),
        ],
    );
    // The quota is spent twice in a row: one alert.
    for _ in 0..2 {
        fake.push_reply(Reply::error(
            429,
            "Monthly request limit reached",
            Some("MONTHLY_REQUEST_COUNT"),
        ));
        assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 429);
    }
    // Then Kiro suspends the account; alerts go out in order, so once this one is here the
    // second quota alert would have been too.
    fake.push_reply(Reply::error(
        403,
        "Your account is temporarily suspended.",
        Some("TEMPORARILY_SUSPENDED"),
    ));
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 403);
    hook.wait_for(2);
    assert_eq!(
        hook.events(),
        vec![
            pair("quota_exhausted", "default"),
            pair("account_suspended", "default")
        ]
    );
    let got = hook.got.lock().unwrap().clone();
    assert!(got[0]["message"]
        .as_str()
        .unwrap()
        .contains("Monthly request limit"));
    assert!(got[1]["message"].as_str().unwrap().contains("suspended"));
    assert!(got[1]["time"].as_str().unwrap().ends_with('Z'));
    let text = serde_json::to_string(&got).unwrap();
    assert!(!text.contains("ksk_"), "{text}");
}

#[test]
fn a_revoked_login_and_a_refused_client_version_are_reported() {
    let fake = FakeKiro::start();
    let hook = Hook::start();
    fake.revoke_refresh_token("test-refresh-token-1");
    let gw = Gateway::start(&fake.url(), &[("ALERT_WEBHOOK", &hook.url)]);
    let (status, _) = gw.post("/v1/chat/completions", &chat());
    assert!(status >= 400, "{status}");
    hook.wait_for(1);
    assert_eq!(hook.events(), vec![pair("login_revoked", "default")]);
    let text = serde_json::to_string(&*hook.got.lock().unwrap()).unwrap();
    assert!(!text.contains("test-refresh-token"), "{text}");
    drop(gw);

    let fake = FakeKiro::start();
    let hook = Hook::start();
    fake.set_version_floor(Some("9.0.0"));
    let gw = Gateway::start(
        &fake.url(),
        &[("ALERT_WEBHOOK", &hook.url), ("KIRO_IDE_VERSION", "off")],
    );
    let (status, body) = gw.post("/v1/chat/completions", &chat());
    assert!(status >= 400, "{status} {body}");
    hook.wait_for(1);
    assert_eq!(
        hook.events(),
        vec![pair("client_version_refused", "default")]
    );
}

#[test]
fn a_webhook_that_fails_is_logged_once_and_requests_go_on() {
    let fake = FakeKiro::start();
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("ALERT_WEBHOOK", &url),
            ("REFRESH_TOKEN", ""),
            ("KIRO_API_KEY", "ksk_key"),
        ],
    );
    fake.push_reply(Reply::error(
        429,
        "Daily limit",
        Some("DAILY_REQUEST_COUNT"),
    ));
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 429);
    fake.push_reply(Reply::error(
        403,
        "Your account is temporarily suspended.",
        Some("TEMPORARILY_SUSPENDED"),
    ));
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 403);
    assert!(wait_until(Duration::from_secs(15), || gw
        .logs()
        .contains("ALERT_WEBHOOK: could not deliver")));
    assert_eq!(
        gw.logs()
            .matches("ALERT_WEBHOOK: could not deliver")
            .count(),
        1
    );
}
