//! End-to-end: the token lifecycle of issue 4 (scope 6–8, "Done when") through the real binary
//! against the fake Kiro: proactive refresh by the timer thread with write-back, single-flight
//! refresh, 403 → refresh → retry, a revoked login reported and recovered without a restart,
//! List-Available-Profiles cached, tokens kept out of logs, and a long session over several short
//! token lifetimes.

mod auth_support;
mod common;
mod fake_kiro;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use auth_support::*;
use common::Gateway;
use fake_kiro::{FakeKiro, Recorded, DEFAULT_PROFILE_ARN};
use serde_json::{json, Value};

/// The expiry written back for a token the fake granted for 3600 s: now + 3600 − 60 s.
fn assert_expiry_about_an_hour_ahead(written: &str, form: Iso) {
    let (ms, got) = parse_iso(written).unwrap_or_else(|| panic!("not ISO: {written}"));
    assert_eq!(got, form, "expiry {written} changed its form");
    let ahead = (ms - now_ms()) / 1000;
    assert!(
        (3520..=3545).contains(&ahead),
        "{written} is {ahead} s ahead"
    );
}

/// A file whose token is still fresh at start-up (TOKEN_REFRESH_THRESHOLD=5, 8 s left), so that
/// only the timer thread can refresh it a few seconds later.
const SOON: i64 = 8_000;

/// The gateway's only login holds a token good for about an hour (refreshed or adopted), by
/// `/health`.
fn holds_a_new_token(gw: &Gateway) -> bool {
    health(gw)["accounts"][0]["expires_in"]
        .as_i64()
        .is_some_and(|s| s > 60)
}

#[test]
fn timer_refreshes_a_kiro_ide_file_in_place_keeping_everything_else() {
    let fake = FakeKiro::start();
    let dir = Dir::new("timer-ide");
    let original = json!({
        "accessToken": "ide-access-0",
        "refreshToken": "ide-refresh-0",
        "expiresAt": iso(now_ms() + SOON, Iso::MillisZ),
        "profileArn": FILE_ARN,
        "authMethod": "social",
        "provider": "Github",
        "region": "us-east-1",
        "extra": {"nested": [1, 2, 3], "keep": true}
    });
    let creds = dir.json("kiro-auth-token.json", &original);
    set_mode(&creds, 0o640);
    let before_text = std::fs::read_to_string(&creds).unwrap();
    let started = Instant::now();
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CREDS_FILE", &creds),
            ("TOKEN_REFRESH_THRESHOLD", "5"),
        ],
    );
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.refresh_count() >= 1));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "refreshed at start-up instead of by the timer"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        read_json(&creds)["accessToken"] == "fake-access-1"
    }));
    assert_eq!(
        fake.requests().len(),
        0,
        "no client request was needed for the refresh"
    );
    assert_eq!(
        fake.auth_requests()[0].body,
        json!({"refreshToken": "ide-refresh-0"})
    );

    let text = std::fs::read_to_string(&creds).unwrap();
    let now: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(now["refreshToken"], "fake-refresh-1");
    assert_expiry_about_an_hour_ahead(now["expiresAt"].as_str().unwrap(), Iso::MillisZ);
    assert_keys_kept(
        &original,
        &now,
        &["accessToken", "refreshToken", "expiresAt"],
    );
    assert_eq!(
        top_level_keys(&text),
        top_level_keys(&before_text),
        "key order kept"
    );
    assert!(text.ends_with("}\n"), "trailing newline kept");
    assert_eq!(mode(&creds), 0o640, "file mode kept");
    assert_eq!(
        dir.listing(),
        ["kiro-auth-token.json"],
        "no temp file left behind"
    );
    // The refreshed token serves requests; no second refresh.
    let r = chat_ok(&gw, &fake);
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(r.body["profileArn"], FILE_ARN);
    assert_eq!(fake.refresh_count(), 1);
}

#[test]
fn timer_refreshes_an_sso_cache_file_in_its_own_iso_form() {
    let fake = FakeKiro::start();
    let dir = Dir::new("timer-sso");
    let original = json!({
        "startUrl": "https://d-9067abcdef.awsapps.com/start",
        "region": "eu-west-1",
        "accessToken": "sso-access-0",
        "expiresAt": iso(now_ms() + SOON, Iso::SecondsZ),
        "clientId": "sso-client-id",
        "clientSecret": "sso-client-secret",
        "registrationExpiresAt": "2099-01-01T00:00:00Z",
        "refreshToken": "sso-refresh-0"
    });
    let creds = dir.json("kiro-auth-token.json", &original);
    set_mode(&creds, 0o644);
    let before_text = std::fs::read_to_string(&creds).unwrap();
    let _gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CREDS_FILE", &creds),
            ("TOKEN_REFRESH_THRESHOLD", "5"),
        ],
    );
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.oidc_count() >= 1));
    assert!(wait_until(Duration::from_secs(5), || {
        read_json(&creds)["accessToken"] == "fake-access-1"
    }));
    assert!(fake.requests().is_empty());
    assert_eq!(fake.oidc_count(), 1);
    assert_eq!(
        fake.auth_requests()[0].body["refreshToken"],
        "sso-refresh-0"
    );

    let text = std::fs::read_to_string(&creds).unwrap();
    let now: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(now["refreshToken"], "fake-refresh-1");
    assert_expiry_about_an_hour_ahead(now["expiresAt"].as_str().unwrap(), Iso::SecondsZ);
    assert_keys_kept(
        &original,
        &now,
        &["accessToken", "refreshToken", "expiresAt"],
    );
    assert!(
        now.get("profileArn").is_none(),
        "an OIDC login's file gets no ARN"
    );
    assert_eq!(top_level_keys(&text), top_level_keys(&before_text));
    assert_eq!(mode(&creds), 0o644);
    assert_eq!(dir.listing(), ["kiro-auth-token.json"]);
}

fn cli_social_db(dir: &Dir, expires_at: &str) -> String {
    dir.db(
        &[
            (
                SOCIAL_KEY,
                json!({
                    "access_token": "cli-access-0",
                    "refresh_token": "cli-refresh-0",
                    "expires_at": expires_at,
                    "region": "us-east-1",
                    "provider": "Google",
                    "profile_arn": FILE_ARN,
                    "kiro_cli_private": {"device": "abc", "flags": [1, 2]}
                })
                .to_string(),
            ),
            // A stale amazon-q login and an unrelated row: neither may change.
            (
                "codewhisperer:odic:token",
                json!({"access_token": "old-q-access", "refresh_token": "old-q-refresh",
                       "expires_at": "2024-01-01T00:00:00Z"})
                .to_string(),
            ),
            (
                "telemetry-client-id",
                "\"5f1c0d7e-aaaa-bbbb-cccc-0123456789ab\"".into(),
            ),
        ],
        &[
            (
                "api.codewhisperer.profile",
                json!({"arn": STATE_ARN, "profileName": "Team"}).to_string(),
            ),
            ("chat.defaultModel", "\"claude-sonnet-4.5\"".into()),
        ],
    )
}

#[test]
fn timer_refreshes_a_kiro_cli_row_keeping_its_fields_and_the_other_rows() {
    let fake = FakeKiro::start();
    let dir = Dir::new("timer-db");
    let db = cli_social_db(&dir, &iso(now_ms() + SOON, Iso::SecondsZ));
    let before = db_dump(&db);
    let original_row = db_row(&db, SOCIAL_KEY);
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CLI_DB_FILE", &db),
            ("TOKEN_REFRESH_THRESHOLD", "5"),
        ],
    );
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.refresh_count() >= 1));
    assert!(wait_until(Duration::from_secs(5), || {
        db_row(&db, SOCIAL_KEY)["access_token"] == "fake-access-1"
    }));
    assert!(fake.requests().is_empty());
    assert_eq!(
        fake.auth_requests()[0].body,
        json!({"refreshToken": "cli-refresh-0"})
    );

    let row = db_row(&db, SOCIAL_KEY);
    assert_eq!(row["refresh_token"], "fake-refresh-1");
    assert_expiry_about_an_hour_ahead(row["expires_at"].as_str().unwrap(), Iso::SecondsZ);
    assert_keys_kept(
        &original_row,
        &row,
        &["access_token", "refresh_token", "expires_at"],
    );
    let others = |dump: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        dump.into_iter()
            .filter(|(_, k, _)| k != SOCIAL_KEY)
            .collect()
    };
    assert_eq!(others(db_dump(&db)), others(before), "other rows untouched");

    let r = chat_ok(&gw, &fake);
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    // The row's own profile_arn wins over the state table's.
    assert_eq!(r.body["profileArn"], FILE_ARN);
    assert_eq!(fake.refresh_count(), 1);
}

#[test]
fn a_newer_token_kiro_cli_stored_meanwhile_is_adopted_instead_of_refreshing() {
    let fake = FakeKiro::start();
    let dir = Dir::new("adopt-db");
    // kiro-cli must write its row before the gateway's timer is due (5 s before this expiry),
    // and a gateway starting on a loaded machine may take seconds.
    let db = cli_social_db(&dir, &iso(now_ms() + 15_000, Iso::SecondsZ));
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CLI_DB_FILE", &db),
            ("TOKEN_REFRESH_THRESHOLD", "5"),
        ],
    );
    // kiro-cli refreshes the login itself before the gateway's timer is due.
    let mut row = db_row(&db, SOCIAL_KEY);
    row["access_token"] = json!("cli-refreshed-access");
    row["refresh_token"] = json!("cli-refreshed-refresh");
    row["expires_at"] = json!(iso(now_ms() + 3_600_000, Iso::SecondsZ));
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE auth_kv SET value = ?1 WHERE key = ?2",
        [row.to_string().as_str(), SOCIAL_KEY],
    )
    .unwrap();
    drop(conn);
    // The timer re-reads the row when it is due and adopts kiro-cli's token.
    assert!(
        wait_until(Duration::from_secs(30), || holds_a_new_token(&gw)),
        "{}",
        gw.logs()
    );
    let r = chat_ok(&gw, &fake);
    assert_eq!(r.bearer().as_deref(), Some("cli-refreshed-access"));
    assert_eq!(
        fake.refresh_count(),
        0,
        "{:#?}\n{}",
        fake.auth_requests(),
        gw.logs()
    );
    assert_eq!(
        db_row(&db, SOCIAL_KEY),
        row,
        "the row is kiro-cli's as written"
    );
}

#[test]
fn sqlite_readonly_refreshes_in_memory_and_never_writes() {
    let fake = FakeKiro::start();
    let dir = Dir::new("readonly-db");
    let db = cli_social_db(&dir, &iso(now_ms() + SOON, Iso::SecondsZ));
    let before = db_dump(&db);
    let before_bytes = std::fs::read(&db).unwrap();
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CLI_DB_FILE", &db),
            ("TOKEN_REFRESH_THRESHOLD", "5"),
            ("SQLITE_READONLY", "true"),
        ],
    );
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.refresh_count() >= 1));
    // A write-back would come before the gateway uses the new token.
    let in_use = || holds_a_new_token(&gw);
    assert!(wait_until(Duration::from_secs(10), in_use));
    let r = chat_ok(&gw, &fake);
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(fake.refresh_count(), 1);
    assert_eq!(db_dump(&db), before);
    assert_eq!(std::fs::read(&db).unwrap(), before_bytes);
    assert_eq!(dir.listing(), ["data.sqlite3"]);
}

#[test]
fn twenty_requests_on_an_expired_token_share_one_refresh() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    fake.set_refresh_delay(Duration::from_millis(300));
    let dir = Dir::new("flight");
    let creds = dir.json(
        "kiro-auth-token.json",
        &json!({
            "accessToken": "expired-access",
            "refreshToken": "flight-refresh-0",
            "expiresAt": iso(now_ms() - 5_000, Iso::MillisZ),
            "profileArn": FILE_ARN
        }),
    );
    warm_up_fake_threads(&fake, 32);
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    let barrier = Barrier::new(20);
    let results: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    gw.post("/v1/chat/completions", &chat_body())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(fake.refresh_count(), 1, "{:#?}", fake.auth_requests());
    let calls = fake.requests();
    assert_eq!(calls.len(), 20, "no request needed a retry");
    assert!(calls
        .iter()
        .all(|c| c.bearer().as_deref() == Some("fake-access-1") && c.status == 200));
}

#[test]
fn forbidden_token_is_refreshed_once_and_the_request_retried() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let gw = Gateway::start(&fake.url(), &[]);
    assert_eq!(
        chat_ok(&gw, &fake).bearer().as_deref(),
        Some("fake-access-1")
    );
    fake.revoke_access_token("fake-access-1");
    let r = chat_ok(&gw, &fake);
    assert_eq!(r.bearer().as_deref(), Some("fake-access-2"));
    assert_eq!(fake.refresh_count(), 2);
    let auth = fake.auth_requests();
    assert_eq!(
        auth[1].body["refreshToken"], "fake-refresh-1",
        "the rotated refresh token"
    );
    let calls: Vec<(Option<String>, u16)> = fake
        .requests()
        .iter()
        .map(|c| (c.bearer(), c.status))
        .collect();
    assert_eq!(
        calls,
        [
            (Some("fake-access-1".into()), 200),
            (Some("fake-access-1".into()), 403),
            (Some("fake-access-2".into()), 200),
        ]
    );
}

#[test]
fn revoked_creds_file_login_is_a_clear_401_and_recovers_without_restart() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    fake.revoke_refresh_token("revoked-refresh");
    let dir = Dir::new("revoked");
    let file = json!({
        "accessToken": "expired-access",
        "refreshToken": "revoked-refresh",
        "expiresAt": iso(now_ms() - 60_000, Iso::MillisZ),
        "profileArn": FILE_ARN,
        "provider": "Github"
    });
    let creds = dir.json("kiro-auth-token.json", &file);
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    for _ in 0..2 {
        let (status, body) = gw.post("/v1/chat/completions", &chat_body());
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["type"], "authentication_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&creds), "names the file: {message}");
        assert!(message.contains("KIRO_CREDS_FILE"), "{message}");
        assert!(!message.contains("revoked-refresh"), "{message}");
    }
    assert!(fake.requests().is_empty(), "no Kiro call without a token");
    let h = health(&gw);
    let account = &h["accounts"][0];
    assert_eq!(h["status"], "healthy");
    assert_eq!(account["state"], "refresh_failed", "{h}");
    assert!(
        account["last_error"].as_str().unwrap().contains(&creds),
        "{h}"
    );

    // The user logs in again: the IDE writes a new refresh token into the file.
    let mut fixed = file.clone();
    fixed["refreshToken"] = json!("good-refresh");
    dir.json("kiro-auth-token.json", &fixed);
    let r = chat_ok(&gw, &fake);
    assert!(r.bearer().unwrap().starts_with("fake-access-"));
    assert!(fake
        .auth_requests()
        .iter()
        .any(|a| a.body["refreshToken"] == "good-refresh" && a.status == 200));
    let h = health(&gw);
    assert_eq!(h["accounts"][0]["state"], "valid", "{h}");
    assert!(h["accounts"][0]["last_error"].is_null(), "{h}");
    assert_eq!(
        read_json(&creds)["accessToken"],
        *r.bearer().as_ref().unwrap()
    );
}

#[test]
fn forbidden_token_whose_refresh_is_refused_is_a_401_naming_the_file() {
    // The access token is fresh by the clock but Kiro refuses it, and the login behind it was
    // revoked: the client must hear about the login, not get Kiro's bare 403.
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("forbidden-revoked");
    let file = json!({
        "accessToken": "seed-access",
        "refreshToken": "seed-refresh",
        "expiresAt": iso(now_ms() - 60_000, Iso::MillisZ),
        "profileArn": FILE_ARN
    });
    let creds = dir.json("kiro-auth-token.json", &file);
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    assert_eq!(
        chat_ok(&gw, &fake).bearer().as_deref(),
        Some("fake-access-1")
    );
    fake.revoke_access_token("fake-access-1");
    fake.revoke_refresh_token("fake-refresh-1");
    let (status, body) = gw.post("/v1/chat/completions", &chat_body());
    assert_eq!(status, 401, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&creds), "{message}");
    assert_eq!(health(&gw)["accounts"][0]["state"], "refresh_failed");

    // A new login written into the file is picked up by the next request.
    let mut fixed = read_json(&creds);
    fixed["refreshToken"] = json!("relogin-refresh");
    dir.json("kiro-auth-token.json", &fixed);
    let r = chat_ok(&gw, &fake);
    assert_eq!(r.bearer().as_deref(), Some("fake-access-2"));
    assert_eq!(health(&gw)["accounts"][0]["state"], "valid");
}

#[test]
fn revoked_env_refresh_token_is_a_401_naming_refresh_token() {
    let fake = FakeKiro::start();
    fake.revoke_refresh_token("test-refresh-token-1");
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, body) = gw.post("/v1/chat/completions", &chat_body());
    assert_eq!(status, 401, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("REFRESH_TOKEN"), "{message}");
    assert!(!message.contains("test-refresh-token-1"), "{message}");
    let h = health(&gw);
    assert_eq!(h["accounts"][0]["state"], "refresh_failed", "{h}");
    assert!(h["accounts"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("REFRESH_TOKEN"));
    // Still serving.
    let r = common::agent().get(&format!("{}/", gw.url)).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn list_available_profiles_is_called_once_across_requests_and_refreshes() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("lap");
    let creds = dir.json(
        "kiro-auth-token.json",
        &json!({
            "accessToken": "idc-access-0",
            "refreshToken": "idc-refresh-0",
            "expiresAt": iso(now_ms() - 60_000, Iso::SecondsZ),
            "clientId": "idc-client",
            "clientSecret": "idc-secret",
            "startUrl": "https://d-9067abcdef.awsapps.com/start",
            "region": "us-east-1"
        }),
    );
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    let mut arns = Vec::new();
    for round in 0..3 {
        for _ in 0..3 {
            arns.push(chat_ok(&gw, &fake).body["profileArn"].clone());
        }
        // Force a refresh: Kiro refuses the current token once.
        fake.revoke_access_token(&fake.last_access_token().unwrap());
        assert_eq!(fake.oidc_count(), round + 1);
    }
    arns.push(chat_ok(&gw, &fake).body["profileArn"].clone());
    assert_eq!(
        fake.oidc_count(),
        4,
        "three forced refreshes after the first"
    );
    assert!(arns.iter().all(|a| a == DEFAULT_PROFILE_ARN), "{arns:?}");
    assert_eq!(fake.profiles_count(), 1, "{:#?}", profile_calls(&fake));
}

/// Every token this run involved must be absent from the gateway's logs and from `/health`.
fn assert_no_secret_in(fake: &FakeKiro, gw: &Gateway, extra: &[&str]) {
    let mut secrets: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    secrets.extend(fake.issued_access_tokens());
    secrets.extend(fake.issued_refresh_tokens());
    assert!(secrets.len() > extra.len() + 2, "{secrets:?}");
    let logs = gw.logs();
    let health = health(gw).to_string();
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "{s} in the logs:\n{logs}");
        assert!(!health.contains(s.as_str()), "{s} in /health: {health}");
    }
}

fn exercise_an_oidc_login(level: &str) {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("nolog");
    let creds = dir.json(
        "kiro-auth-token.json",
        &json!({
            "accessToken": "seed-access-secret",
            "refreshToken": "seed-refresh-secret",
            "expiresAt": iso(now_ms() - 60_000, Iso::SecondsZ),
            "clientId": "seed-client-id",
            "clientSecret": "seed-client-secret",
            "startUrl": "https://d-9067abcdef.awsapps.com/start",
            "region": "us-east-1"
        }),
    );
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CREDS_FILE", &creds),
            ("LOG_LEVEL", level),
        ],
    );
    chat_ok(&gw, &fake);
    // 403 → refresh → retry, then a refused refresh (logged as a warning), then a 401.
    fake.revoke_access_token("fake-access-1");
    chat_ok(&gw, &fake);
    fake.revoke_access_token("fake-access-2");
    fake.revoke_refresh_token("fake-refresh-2");
    let (status, body) = gw.post("/v1/chat/completions", &chat_body());
    assert_eq!(status, 401, "{body}\n{}", gw.logs());
    assert!(
        gw.wait_logs(|l| l.contains("refresh failed"), 5),
        "{}",
        gw.logs()
    );
    assert_no_secret_in(
        &fake,
        &gw,
        &[
            "seed-access-secret",
            "seed-refresh-secret",
            "seed-client-secret",
            common::KEY,
        ],
    );
    assert!(!body.to_string().contains("fake-refresh-2"), "{body}");
}

#[test]
fn tokens_never_reach_the_logs_at_info() {
    exercise_an_oidc_login("INFO");
}

#[test]
fn tokens_never_reach_the_logs_even_at_debug() {
    exercise_an_oidc_login("DEBUG");
}

#[test]
fn api_key_and_env_refresh_token_never_reach_the_debug_logs() {
    let fake = FakeKiro::start();
    let key = "ksk_secretApiKeyForLogs0123456789";
    fake.require_issued_tokens(true);
    fake.accept_token(key);
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_API_KEY", key), ("LOG_LEVEL", "DEBUG")],
    );
    chat_ok(&gw, &fake);
    let logs = gw.logs();
    assert!(!logs.contains(key), "{logs}");
    drop(gw);

    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "DEBUG")]);
    chat_ok(&gw, &fake);
    fake.revoke_access_token(&fake.last_access_token().unwrap());
    chat_ok(&gw, &fake);
    assert_no_secret_in(&fake, &gw, &["test-refresh-token-1", key]);
}

/// Stands in for real expiry: every access token the fake issued stops working `lifetime`
/// after it was first seen, until `stop` is set.
fn expire_tokens(fake: &FakeKiro, lifetime: Duration, stop: &AtomicBool) {
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        for t in fake.issued_access_tokens() {
            let seen = *first_seen.entry(t.clone()).or_insert_with(Instant::now);
            if seen.elapsed() >= lifetime {
                fake.revoke_access_token(&t);
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Chat (streaming and not, alternately) for `session`, while tokens live `lifetime`; every
/// request must succeed and Kiro must never have seen an expired token.
fn chat_through_short_lifetimes(
    gw: &Gateway,
    fake: &FakeKiro,
    lifetime: Duration,
    session: Duration,
) {
    let stop = AtomicBool::new(false);
    let served = std::thread::scope(|s| {
        s.spawn(|| expire_tokens(fake, lifetime, &stop));
        let end = Instant::now() + session;
        let mut served = 0;
        while Instant::now() < end {
            if served % 2 == 0 {
                chat_ok(gw, fake);
            } else {
                let mut body = chat_body();
                body["stream"] = json!(true);
                let events = gw.stream("/v1/chat/completions", &body);
                assert_eq!(events.last().unwrap().data, "[DONE]");
            }
            served += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
        served
    });
    assert!(served >= 20, "{served}");
    let refused: Vec<Recorded> = fake
        .requests()
        .into_iter()
        .filter(|r| r.status != 200)
        .collect();
    assert!(
        refused.is_empty(),
        "Kiro saw an expired token: {refused:#?}"
    );
    let refreshes = fake.refresh_count() + fake.oidc_count() + fake.external_count();
    let lifetimes = session.as_secs_f64() / lifetime.as_secs_f64();
    assert!(
        refreshes as f64 >= lifetimes,
        "{refreshes} refreshes in {lifetimes} lifetimes"
    );
}

/// Let the lifetime grow back to an hour and wait until no refresh happens any more, so the
/// newest tokens are the ones issued last.
fn settle(
    fake: &FakeKiro,
    total: impl Fn(&FakeKiro) -> usize,
    stored: impl Fn() -> (Value, Value),
) {
    fake.set_expires_in(3600);
    let settled = wait_until(Duration::from_secs(15), || {
        let before = total(fake);
        std::thread::sleep(Duration::from_millis(1500));
        let newest = (
            json!(fake.last_access_token().unwrap()),
            json!(fake.issued_refresh_tokens().last().unwrap()),
        );
        before == total(fake) && stored() == newest
    });
    assert!(
        settled,
        "the store never held the newest tokens: {:?}",
        stored()
    );
}

#[test]
fn sso_cache_login_chats_through_three_short_lifetimes_and_keeps_the_newest_tokens() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    fake.set_expires_in(5);
    let dir = Dir::new("long-sso");
    let original = json!({
        "startUrl": "https://d-9067abcdef.awsapps.com/start",
        "region": "us-east-1",
        "accessToken": "long-access-0",
        "expiresAt": iso(now_ms() - 1_000, Iso::SecondsZ),
        "clientId": "long-client",
        "clientSecret": "long-secret",
        "refreshToken": "long-refresh-0",
        "someOtherTool": {"keep": "me"}
    });
    let creds = dir.json("kiro-auth-token.json", &original);
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CREDS_FILE", &creds),
            ("TOKEN_REFRESH_THRESHOLD", "2"),
        ],
    );
    chat_through_short_lifetimes(&gw, &fake, Duration::from_secs(5), Duration::from_secs(15));
    settle(
        &fake,
        |f| f.oidc_count(),
        || {
            let v = read_json(&creds);
            (v["accessToken"].clone(), v["refreshToken"].clone())
        },
    );
    let now = read_json(&creds);
    assert_keys_kept(
        &original,
        &now,
        &["accessToken", "refreshToken", "expiresAt"],
    );
    assert_eq!(
        parse_iso(now["expiresAt"].as_str().unwrap()).unwrap().1,
        Iso::SecondsZ
    );
    assert_eq!(dir.listing(), ["kiro-auth-token.json"]);
}

#[test]
fn kiro_cli_login_chats_through_three_short_lifetimes_and_keeps_the_newest_tokens() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    fake.set_expires_in(5);
    let dir = Dir::new("long-db");
    let registration = json!({
        "client_id": "long-device-client",
        "client_secret": "long-device-secret",
        "region": "us-east-1"
    })
    .to_string();
    let original_row = json!({
        "access_token": "long-access-0",
        "refresh_token": "long-refresh-0",
        "expires_at": iso(now_ms() - 1_000, Iso::SecondsZ),
        "region": "us-east-1",
        "start_url": "https://view.awsapps.com/start",
        "oauth_flow": "DeviceCode",
        "scopes": ["codewhisperer:completions", "codewhisperer:conversations"]
    });
    let db = dir.db(
        &[
            (ODIC_KEY, original_row.to_string()),
            (ODIC_REGISTRATION_KEY, registration.clone()),
        ],
        &[],
    );
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CLI_DB_FILE", &db),
            ("TOKEN_REFRESH_THRESHOLD", "2"),
        ],
    );
    chat_through_short_lifetimes(&gw, &fake, Duration::from_secs(5), Duration::from_secs(15));
    settle(
        &fake,
        |f| f.oidc_count(),
        || {
            let row = db_row(&db, ODIC_KEY);
            (row["access_token"].clone(), row["refresh_token"].clone())
        },
    );
    let row = db_row(&db, ODIC_KEY);
    assert_keys_kept(
        &original_row,
        &row,
        &["access_token", "refresh_token", "expires_at"],
    );
    let dump = db_dump(&db);
    assert!(dump
        .iter()
        .any(|(_, k, v)| k == ODIC_REGISTRATION_KEY && *v == registration));
    assert_eq!(health(&gw)["accounts"][0]["state"], "valid");
}
