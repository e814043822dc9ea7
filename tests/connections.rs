//! End-to-end: the gateway's connections to Kiro — idle connections Kiro closed, a request that
//! dies with its reused connection, one pool per account, and which failures may switch hosts.

mod common;
mod fake_kiro;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::Gateway;
use fake_kiro::{Ev, FakeKiro, Reply, DEFAULT_TEXT};
use serde_json::{json, Value};

fn chat(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": text}]})
}

fn paths(fake: &FakeKiro) -> Vec<String> {
    fake.requests().into_iter().map(|r| r.path).collect()
}

#[test]
fn a_connection_kiro_closed_while_idle_is_not_a_failure() {
    let fake = FakeKiro::start();
    fake.close_idle_after(Some(Duration::from_millis(200)));
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "1")]);
    assert_eq!(gw.post("/v1/chat/completions", &chat("one")).0, 200);
    // Until the fake has closed it, the connection is not stale yet and reusing it is right.
    let peer = fake.requests()[0].peer.expect("peer address");
    let deadline = Instant::now() + Duration::from_secs(15);
    while established(peer.port(), fake.port()) {
        assert!(
            Instant::now() < deadline,
            "the fake never closed the idle connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = gw.post("/v1/chat/completions", &chat("two"));
    assert_eq!(status, 200, "{body}");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_ne!(
        reqs[0].peer, reqs[1].peer,
        "the closed connection was not reused"
    );
}

/// Whether the TCP connection 127.0.0.1:`local` → 127.0.0.1:`remote` is still established (both
/// ends are on this host, so /proc/net/tcp lists it).
fn established(local: u16, remote: u16) -> bool {
    let (local, remote) = (format!(":{local:04X}"), format!(":{remote:04X}"));
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                f.len() > 3 && f[1].ends_with(&local) && f[2].ends_with(&remote) && f[3] == "01"
            })
    })
}

#[test]
fn a_request_that_dies_with_its_reused_connection_is_sent_again_on_a_fresh_one() {
    let fake = FakeKiro::start();
    // One attempt only: the second sending must not count as a Kiro retry.
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "1")]);
    assert_eq!(gw.post("/v1/chat/completions", &chat("one")).0, 200);
    fake.push_reply(Reply::disconnect());
    let (status, body) = gw.post("/v1/chat/completions", &chat("two"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].user_content(), reqs[2].user_content());
    assert_eq!(reqs[2].path, "/", "no endpoint switch");
    let earlier: HashSet<_> = reqs[..2].iter().map(|r| r.peer).collect();
    assert!(
        !earlier.contains(&reqs[2].peer),
        "sent again on a fresh connection"
    );
}

#[test]
fn accounts_never_share_a_connection() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("accounts");
    let path = dir.join("accounts.json");
    std::fs::write(
        &path,
        json!([
            {"name": "first", "api_key": "ksk_first"},
            {"name": "second", "api_key": "ksk_second"}
        ])
        .to_string(),
    )
    .unwrap();
    let path = path.to_string_lossy().to_string();
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("KIRO_ACCOUNTS_FILE", &path),
            ("REFRESH_TOKEN", ""),
            ("ACCOUNT_STRATEGY", "round_robin"),
        ],
    );
    for i in 0..6 {
        assert_eq!(
            gw.post("/v1/chat/completions", &chat(&format!("q{i}"))).0,
            200
        );
    }
    let peers = |key: &str| -> HashSet<_> {
        fake.requests()
            .into_iter()
            .filter(|r| r.bearer().as_deref() == Some(key))
            .map(|r| r.peer)
            .collect()
    };
    let (first, second) = (peers("ksk_first"), peers("ksk_second"));
    assert!(!first.is_empty() && !second.is_empty());
    assert!(first.is_disjoint(&second), "{first:?} {second:?}");
}

#[test]
fn a_refused_token_is_never_replayed_against_another_host() {
    for code in [401, 403] {
        let fake = FakeKiro::start();
        fake.set_default_reply(Reply::error(
            code,
            "The bearer token included in the request is invalid.",
            None,
        ));
        let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "3")]);
        let (status, body) = gw.post("/v1/chat/completions", &chat("x"));
        assert_eq!(status, code, "{body}");
        assert!(
            paths(&fake).iter().all(|p| p == "/"),
            "{code}: {:?}",
            paths(&fake)
        );
    }
}

#[test]
fn a_stream_broken_after_bytes_arrived_does_not_switch_hosts() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![Ev::corrupt_crc(Ev::text("garbled"))]));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post("/v1/chat/completions", &chat("x"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(paths(&fake), vec!["/", "/"]);
}
