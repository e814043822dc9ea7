//! End-to-end: the client identity the gateway presents to Kiro (User-Agent layout per call kind,
//! the runtime headers), version discovery from the update manifest, pinning, and what happens
//! when Kiro refuses the version.

mod common;
mod fake_kiro;

use std::time::{Duration, Instant};

use common::{Gateway, KEY};
use fake_kiro::FakeKiro;
use serde_json::{json, Value};

fn chat() -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]})
}

fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The IDE version `/health` says the gateway sends.
fn health_version(gw: &Gateway) -> String {
    gw.get("/health").1["ide_version"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn each_call_kind_carries_the_ide_identity_of_its_kind() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 200);

    let r = fake.last_request().unwrap();
    let ua = r.header("user-agent").unwrap();
    assert!(
        ua.starts_with("aws-sdk-js/1.0.0 ua/2.1 os/linux#6.8.0 lang/js md/nodejs#24.18.0 api/kiroruntime#1.0.0 m/N KiroIDE-1.1.70-"),
        "{ua}"
    );
    assert!(ua.ends_with("-KAS/0.66.7"), "{ua}");
    let machine = ua.split("KiroIDE-1.1.70-").nth(1).unwrap()[..64].to_string();
    assert_eq!(
        r.header("x-amz-user-agent").unwrap(),
        format!("aws-sdk-js/1.0.0 KiroIDE-1.1.70-{machine}-KAS/0.66.7")
    );
    assert_eq!(
        r.header("x-amzn-kiro-client-attribution").as_deref(),
        Some("kiro-ide")
    );
    assert_eq!(r.header("optout").as_deref(), Some("true"));
    assert_eq!(r.header("x-kiro-attempt").as_deref(), Some("1;max=3"));

    // The model list is a control-plane call: its own API tag, no KAS suffix.
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.models_count() > 0));
    let m = fake
        .management_requests()
        .into_iter()
        .find(|m| {
            m.header("x-amz-target")
                .is_some_and(|t| t.ends_with("ListAvailableModels"))
        })
        .unwrap();
    assert_eq!(
        m.header("user-agent").unwrap(),
        format!("aws-sdk-js/1.0.0 ua/2.1 os/linux#6.8.0 lang/js md/nodejs#24.18.0 api/kirocontrolplanebearer#1.0.0 m/N,E KiroIDE-1.1.70-{machine}")
    );
    assert_eq!(
        m.header("x-amz-user-agent").unwrap(),
        format!("aws-sdk-js/1.0.0 KiroIDE-1.1.70-{machine}")
    );

    // The token refresh sends the bare product tag.
    let refresh = fake
        .auth_requests()
        .into_iter()
        .find(|a| a.path == "/refreshToken")
        .unwrap();
    assert_eq!(
        refresh.header("user-agent").unwrap(),
        format!("KiroIDE-1.1.70-{machine}")
    );
}

#[test]
fn every_identity_part_can_be_set() {
    let fake = FakeKiro::start();
    fake.set_manifest_version(Some("9.9.9"));
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("KIRO_IDE_VERSION", "1.2.4"),
            ("KIRO_KAS_VERSION", "0.70.1"),
            ("KIRO_NODE_VERSION", "24.20.0"),
            ("KIRO_OS_TAG", "win32#10.0.26200"),
        ],
    );
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 200);
    let ua = fake.last_request().unwrap().header("user-agent").unwrap();
    assert!(
        ua.contains("os/win32#10.0.26200 lang/js md/nodejs#24.20.0 "),
        "{ua}"
    );
    assert!(ua.contains(" KiroIDE-1.2.4-"), "{ua}");
    assert!(ua.ends_with("-KAS/0.70.1"), "{ua}");
    // A pinned version is never replaced, so the manifest is not even read.
    assert_eq!(fake.manifest_count(), 0);
    assert_eq!(health_version(&gw), "1.2.4");
}

#[test]
fn discovery_takes_a_newer_version_from_the_manifest_and_remembers_it() {
    let fake = FakeKiro::start();
    fake.set_manifest_version(Some("1.3.0"));
    let dir = common::temp_dir("discovery");
    let state = dir.join("state");
    let state_s = state.to_string_lossy().to_string();
    let gw = Gateway::start(&fake.url(), &[("STATE_DIR", &state_s)]);
    assert!(wait_until(10, || health_version(&gw) == "1.3.0"));
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 200);
    assert_eq!(fake.seen_ide_versions(), vec!["1.3.0".to_string()]);
    let cached = || std::fs::read_to_string(state.join("ide-version")).unwrap_or_default();
    assert!(
        wait_until(10, || cached().trim() == "1.3.0"),
        "{}",
        cached()
    );
    drop(gw);

    // Next start, the manifest is gone: the cached version is kept, and it is said once.
    fake.set_manifest_version(None);
    let before = fake.manifest_count();
    let gw = Gateway::start(&fake.url(), &[("STATE_DIR", &state_s)]);
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.manifest_count() > before));
    assert!(gw.wait_logs(|l| l.contains("IDE version discovery failed"), 10));
    assert_eq!(health_version(&gw), "1.3.0");
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 200);
    assert_eq!(fake.seen_ide_versions().last().unwrap(), "1.3.0");
}

#[test]
fn discovery_never_goes_below_the_compiled_version_or_the_floor() {
    let fake = FakeKiro::start();
    fake.set_manifest_version(Some("0.9.1"));
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.manifest_count() > 0));
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 200);
    assert_eq!(fake.seen_ide_versions(), vec!["1.1.70".to_string()]);
}

#[test]
fn a_refused_version_is_rediscovered_at_once_and_the_request_sent_once_more() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.manifest_count() > 0));
    // Kiro moves its cut-off, and the IDE release that passes it is out.
    fake.set_version_floor(Some("1.3.0"));
    fake.set_manifest_version(Some("1.3.2"));
    let (status, body) = gw.post("/v1/chat/completions", &chat());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fake.seen_ide_versions(),
        vec!["1.1.70".to_string(), "1.3.2".to_string()]
    );
    assert_eq!(gw.get("/health").1["upstream"], "ok");
}

#[test]
fn a_refused_version_with_nothing_newer_is_explained_not_retried() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.manifest_count() > 0));
    fake.set_version_floor(Some("1.3.0"));
    let (status, body) = gw.post("/v1/chat/completions", &chat());
    assert_eq!(status, 502, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("1.1.70"), "{msg}");
    assert!(msg.contains("KIRO_IDE_VERSION"), "{msg}");
    assert!(msg.contains("no longer supported"), "{msg}");
    // Never sent again with the same version.
    assert_eq!(fake.seen_ide_versions(), vec!["1.1.70".to_string()]);
    let health = gw.get("/health").1;
    assert_eq!(health["upstream"], "client version refused", "{health}");
    assert!(gw.wait_logs(
        |l| l.contains("ERROR") && l.contains("set KIRO_IDE_VERSION"),
        5
    ));

    // The Anthropic client gets the same explanation in its own shape.
    let (status, _, text) = gw.post_raw(
        "/v1/messages",
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
        json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
               "messages": [{"role": "user", "content": "Hi"}]})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(status, 502);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("KIRO_IDE_VERSION"));

    // Pinning a version Kiro takes ends it.
    drop(gw);
    let gw = Gateway::start(&fake.url(), &[("KIRO_IDE_VERSION", "1.3.0")]);
    assert_eq!(gw.post("/v1/chat/completions", &chat()).0, 200);
    assert_eq!(gw.get("/health").1["upstream"], "ok");
}

#[test]
fn with_discovery_off_a_refusal_reads_no_manifest() {
    let fake = FakeKiro::start();
    fake.set_version_floor(Some("1.3.0"));
    fake.set_manifest_version(Some("1.3.2"));
    let gw = Gateway::start(&fake.url(), &[("KIRO_IDE_VERSION", "off")]);
    let (status, body) = gw.post("/v1/chat/completions", &chat());
    assert_eq!(status, 502, "{body}");
    assert_eq!(fake.manifest_count(), 0);
    assert_eq!(fake.seen_ide_versions().len(), 1);
}
