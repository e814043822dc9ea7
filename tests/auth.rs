//! End-to-end: every kind of Kiro login from a cold start, and start-up refusals of broken
//! credential sources (issue 4 scope 1–5 and 8, issue 3 item 6), through the real binary against
//! the fake Kiro. The token lifecycle (timer, single flight, 403, revocation, logs) is in
//! `tests/auth_lifecycle.rs`; the helpers both use are in `tests/auth_support/mod.rs`.

mod auth_support;
mod common;
mod fake_kiro;

use std::time::Duration;

use auth_support::*;
use common::Gateway;
use fake_kiro::{FakeKiro, DEFAULT_PROFILE_ARN};
use serde_json::{json, Value};

#[test]
fn social_login_from_refresh_token_sends_the_arn_of_the_refresh_response() {
    let fake = FakeKiro::start();
    fake.set_profile_arn(REFRESH_ARN);
    fake.require_issued_tokens(true);
    let gw = Gateway::start(&fake.url(), &[]);
    let r = chat_ok(&gw, &fake);

    assert_eq!(fake.refresh_count(), 1, "{:#?}", fake.auth_requests());
    let refresh = &fake.auth_requests()[0];
    assert_eq!(refresh.path, "/refreshToken");
    assert_eq!(
        refresh.body,
        json!({"refreshToken": "test-refresh-token-1"})
    );
    let ua = refresh.header("user-agent").unwrap();
    assert!(ua.starts_with("KiroIDE-"), "{ua}");

    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(r.body["profileArn"], REFRESH_ARN);
    assert_eq!(
        r.header("x-amz-target").as_deref(),
        Some("KiroRuntimeService.GenerateAssistantResponse")
    );
    assert_eq!(r.header("tokentype"), None);
    assert_eq!(fake.profiles_count(), 0, "a social login lists no profiles");
    assert_eq!(fake.oidc_count() + fake.external_count(), 0);
}

#[test]
fn kiro_ide_file_login_sends_the_files_arn_and_an_explicit_profile_arn_wins() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("ide");
    let creds = dir.json(
        "kiro-auth-token.json",
        &json!({
            "accessToken": "ide-access-stale",
            "refreshToken": "ide-refresh-1",
            "expiresAt": iso(now_ms() - 60_000, Iso::MillisZ),
            "profileArn": FILE_ARN,
            "authMethod": "social",
            "provider": "Github",
            "region": "us-east-1"
        }),
    );
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    let r = chat_ok(&gw, &fake);
    assert_eq!(fake.refresh_count(), 1);
    assert_eq!(
        fake.auth_requests()[0].body,
        json!({"refreshToken": "ide-refresh-1"})
    );
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    // The file's own ARN, not the one the refresh response carries (the fake's default).
    assert_eq!(r.body["profileArn"], FILE_ARN);
    assert_eq!(r.header("tokentype"), None);
    drop(gw);

    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CREDS_FILE", &creds),
            ("PROFILE_ARN", EXPLICIT_ARN),
        ],
    );
    let r = chat_ok(&gw, &fake);
    assert_eq!(r.body["profileArn"], EXPLICIT_ARN);
    // The written-back token from the first run is still valid: no second refresh.
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(fake.refresh_count(), 1);
}

fn sso_cache_file(dir: &Dir, start_url: &str) -> String {
    dir.json(
        "kiro-auth-token.json",
        &json!({
            "accessToken": "sso-access-stale",
            "refreshToken": "sso-refresh-1",
            "expiresAt": iso(now_ms() - 60_000, Iso::SecondsZ),
            "clientId": "sso-client-id",
            "clientSecret": "sso-client-secret",
            "region": "eu-west-1",
            "startUrl": start_url,
            "authMethod": "IdC"
        }),
    )
}

/// The one OIDC CreateToken call: camelCase JSON with exactly these four fields (no scopes).
fn assert_oidc_refresh(fake: &FakeKiro, client_id: &str, secret: &str, refresh: &str) {
    assert_eq!(fake.oidc_count(), 1, "{:#?}", fake.auth_requests());
    assert_eq!(fake.refresh_count() + fake.external_count(), 0);
    let call = &fake.auth_requests()[0];
    assert_eq!(call.path, "/token");
    assert_eq!(
        call.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        call.body,
        json!({
            "grantType": "refresh_token",
            "clientId": client_id,
            "clientSecret": secret,
            "refreshToken": refresh
        })
    );
}

#[test]
fn sso_cache_identity_center_login_refreshes_with_oidc_and_lists_its_profile() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("idc");
    let creds = sso_cache_file(&dir, "https://d-9067abcdef.awsapps.com/start");
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    let r = chat_ok(&gw, &fake);
    assert_oidc_refresh(&fake, "sso-client-id", "sso-client-secret", "sso-refresh-1");

    assert_eq!(fake.profiles_count(), 1);
    let profiles = profile_calls(&fake);
    assert_eq!(profiles[0].bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(profiles[0].header("tokentype"), None);
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(r.body["profileArn"], DEFAULT_PROFILE_ARN);
    assert_eq!(r.header("tokentype"), None, "TokenType breaks IdC");
    assert_eq!(
        r.header("x-amz-target").as_deref(),
        Some("KiroRuntimeService.GenerateAssistantResponse")
    );
    drop(gw);

    // An explicit PROFILE_ARN is the user's override: sent as is, and nothing is listed.
    let fake = FakeKiro::start();
    let dir = Dir::new("idc-explicit");
    let creds = sso_cache_file(&dir, "https://d-9067abcdef.awsapps.com/start");
    let gw = Gateway::start(
        &fake.url(),
        &[
            no_env_token(),
            ("KIRO_CREDS_FILE", &creds),
            ("PROFILE_ARN", EXPLICIT_ARN),
        ],
    );
    let r = chat_ok(&gw, &fake);
    assert_eq!(r.body["profileArn"], EXPLICIT_ARN);
    assert_eq!(fake.profiles_count(), 0);
}

#[test]
fn sso_cache_builder_id_login_sends_no_arn_in_the_cli_shape() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("builder");
    let creds = sso_cache_file(&dir, "https://view.awsapps.com/start");
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    let r = chat_ok(&gw, &fake);
    assert_oidc_refresh(&fake, "sso-client-id", "sso-client-secret", "sso-refresh-1");
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert!(r.body.get("profileArn").is_none(), "{}", r.body);
    assert_eq!(fake.profiles_count(), 0, "Builder ID cannot list profiles");
    assert_eq!(
        r.header("x-amz-target").as_deref(),
        Some("AmazonCodeWhispererStreamingService.GenerateAssistantResponse")
    );
    let ua = r.header("user-agent").unwrap();
    assert!(ua.starts_with("aws-sdk-rust/"), "{ua}");
    assert_eq!(origin(&r), "KIRO_CLI");
    assert_eq!(r.header("tokentype"), None);
    let health = health(&gw);
    assert_eq!(health["accounts"][0]["kind"], "builder_id");
}

#[test]
fn client_id_hash_loads_the_registration_file_beside_the_creds_file() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("hash");
    let hash = "2c1d6d4e5f5d3f0c9b8a7e6d5c4b3a2918273645";
    dir.json(
        &format!("{hash}.json"),
        &json!({
            "clientId": "registered-client-id",
            "clientSecret": "registered-client-secret",
            "expiresAt": "2099-01-01T00:00:00Z"
        }),
    );
    let creds = dir.json(
        "kiro-auth-token.json",
        &json!({
            "accessToken": "ent-access-stale",
            "refreshToken": "ent-refresh-1",
            "expiresAt": iso(now_ms() - 60_000, Iso::MillisZ),
            "clientIdHash": hash,
            "authMethod": "IdC",
            "provider": "Enterprise",
            "region": "us-east-1"
        }),
    );
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    let r = chat_ok(&gw, &fake);
    assert_oidc_refresh(
        &fake,
        "registered-client-id",
        "registered-client-secret",
        "ent-refresh-1",
    );
    assert_eq!(fake.profiles_count(), 1);
    assert_eq!(r.body["profileArn"], DEFAULT_PROFILE_ARN);
    assert_eq!(health(&gw)["accounts"][0]["kind"], "identity_center");
}

#[test]
fn kiro_cli_social_login_uses_the_profile_of_the_state_table() {
    let fake = FakeKiro::start();
    fake.set_profile_arn(REFRESH_ARN);
    fake.require_issued_tokens(true);
    let dir = Dir::new("cli-social");
    let db = dir.db(
        &[(
            SOCIAL_KEY,
            json!({
                "access_token": "cli-access-stale",
                "refresh_token": "cli-refresh-1",
                "expires_at": iso(now_ms() - 60_000, Iso::SecondsZ),
                "provider": "Google",
                "region": "us-east-1"
            })
            .to_string(),
        )],
        &[(
            "api.codewhisperer.profile",
            json!({"arn": STATE_ARN, "profileName": "Team"}).to_string(),
        )],
    );
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CLI_DB_FILE", &db)]);
    let r = chat_ok(&gw, &fake);
    assert_eq!(fake.refresh_count(), 1);
    assert_eq!(
        fake.auth_requests()[0].body,
        json!({"refreshToken": "cli-refresh-1"})
    );
    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(r.body["profileArn"], STATE_ARN);
    assert_eq!(fake.profiles_count(), 0);
    let h = health(&gw);
    assert_eq!(h["accounts"][0]["kind"], "social");
    assert_eq!(h["accounts"][0]["source"], "kiro_cli_db");
}

#[test]
fn kiro_cli_oidc_login_takes_client_id_and_secret_from_the_device_registration() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("cli-odic");
    let db = dir.db(
        &[
            (
                "kirocli:odic:token",
                json!({
                    "access_token": "odic-access-stale",
                    "refresh_token": "odic-refresh-1",
                    "expires_at": iso(now_ms() - 60_000, Iso::SecondsZ),
                    "region": "us-east-1",
                    "start_url": "https://d-9067abcdef.awsapps.com/start",
                    "oauth_flow": "DeviceCode",
                    "scopes": ["codewhisperer:completions", "codewhisperer:conversations"]
                })
                .to_string(),
            ),
            (
                "kirocli:odic:device-registration",
                json!({
                    "client_id": "device-client-id",
                    "client_secret": "device-client-secret",
                    "client_secret_expires_at": "2099-01-01T00:00:00Z",
                    "region": "us-east-1",
                    "oauth_flow": "DeviceCode",
                    "scopes": ["codewhisperer:completions"]
                })
                .to_string(),
            ),
        ],
        &[],
    );
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CLI_DB_FILE", &db)]);
    let r = chat_ok(&gw, &fake);
    assert_oidc_refresh(
        &fake,
        "device-client-id",
        "device-client-secret",
        "odic-refresh-1",
    );
    assert_eq!(fake.profiles_count(), 1);
    assert_eq!(r.body["profileArn"], DEFAULT_PROFILE_ARN);
    assert_eq!(r.header("tokentype"), None);
    assert_eq!(health(&gw)["accounts"][0]["kind"], "identity_center");
}

#[test]
fn kiro_cli_external_idp_login_refreshes_at_the_tenant_and_says_external_idp_everywhere() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let dir = Dir::new("cli-ext");
    let db = dir.db(
        &[(
            EXTERNAL_KEY,
            json!({
                "access_token": "ext-access-stale",
                "refresh_token": "ext-refresh-1",
                "expires_at": iso(now_ms() - 60_000, Iso::SecondsZ),
                "issuer_url": "https://login.microsoftonline.com/tenant/v2.0",
                "token_endpoint": format!("{}/oauth2/token", fake.url()),
                "client_id": "ext-public-client",
                "scopes": ["api://kiro/.default", "offline_access"]
            })
            .to_string(),
        )],
        &[],
    );
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CLI_DB_FILE", &db)]);
    let r = chat_ok(&gw, &fake);
    chat_ok(&gw, &fake);

    assert_eq!(fake.external_count(), 1, "{:#?}", fake.auth_requests());
    assert_eq!(fake.refresh_count() + fake.oidc_count(), 0);
    let call = &fake.auth_requests()[0];
    assert_eq!(call.path, "/oauth2/token");
    assert_eq!(
        call.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let mut fields: Vec<&str> = call
        .raw_body
        .split('&')
        .map(|kv| kv.split('=').next().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["client_id", "grant_type", "refresh_token"],
        "a public client: no secret"
    );
    assert_eq!(
        call.form_param("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(
        call.form_param("refresh_token").as_deref(),
        Some("ext-refresh-1")
    );
    assert_eq!(
        call.form_param("client_id").as_deref(),
        Some("ext-public-client")
    );

    assert_eq!(r.bearer().as_deref(), Some("fake-access-1"));
    assert_eq!(r.body["profileArn"], DEFAULT_PROFILE_ARN);
    assert_eq!(fake.profiles_count(), 1);
    // Every Kiro call (inference, profiles, models) says what kind of token it carries.
    assert!(fake.wait_for(Duration::from_secs(5), |f| f.models_count() > 0));
    let mut kiro_calls = fake.requests();
    kiro_calls.extend(fake.management_requests());
    assert!(kiro_calls.len() >= 4, "{kiro_calls:#?}");
    for call in &kiro_calls {
        assert_eq!(
            call.header("tokentype").as_deref(),
            Some("EXTERNAL_IDP"),
            "{} {}",
            call.method,
            call.path
        );
        assert_eq!(call.status, 200, "{} {}", call.method, call.path);
    }
    assert_eq!(health(&gw)["accounts"][0]["kind"], "external_idp");
}

#[test]
fn api_key_login_never_refreshes_and_sends_no_profile_arn() {
    let fake = FakeKiro::start();
    let key = "ksk_e2eApiKey0123456789abcdef";
    fake.require_issued_tokens(true);
    fake.accept_token(key);
    // REFRESH_TOKEN and PROFILE_ARN are set too: the key wins, and an API key never sends an ARN.
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_API_KEY", key), ("PROFILE_ARN", EXPLICIT_ARN)],
    );
    let r = chat_ok(&gw, &fake);
    chat_ok(&gw, &fake);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        fake.auth_requests().is_empty(),
        "{:#?}",
        fake.auth_requests()
    );
    assert_eq!(fake.profiles_count(), 0);
    assert_eq!(r.bearer().as_deref(), Some(key));
    assert_eq!(r.header("tokentype").as_deref(), Some("API_KEY"));
    assert!(r.body.get("profileArn").is_none(), "{}", r.body);
    assert_eq!(
        r.header("x-amz-target").as_deref(),
        Some("AmazonCodeWhispererStreamingService.GenerateAssistantResponse")
    );
    assert_eq!(origin(&r), "KIRO_CLI");
    let h = health(&gw);
    assert_eq!(h["accounts"][0]["kind"], "api_key");
    assert_eq!(h["accounts"][0]["state"], "valid");
}

#[test]
fn broken_or_missing_credential_sources_stop_start_up_naming_the_file() {
    let dir = Dir::new("broken");
    let missing_json = dir.path("absent-kiro-auth-token.json");
    let malformed = dir.text("malformed-token.json", "{\"refreshToken\": \"abc\", ");
    let no_token = dir.text("tokenless.json", "{\"region\": \"us-east-1\"}");
    let missing_db = dir.path("absent-data.sqlite3");
    let not_a_db = dir.text("not-a-database.sqlite3", "hello, I am not SQLite\n");
    let cases = [
        ("KIRO_CREDS_FILE", missing_json.as_str()),
        ("KIRO_CREDS_FILE", malformed.as_str()),
        ("KIRO_CREDS_FILE", no_token.as_str()),
        ("KIRO_CLI_DB_FILE", missing_db.as_str()),
        ("KIRO_CLI_DB_FILE", not_a_db.as_str()),
    ];
    for (var, path) in cases {
        let mut env: Vec<(String, String)> = common::base_env("http://127.0.0.1:9")
            .into_iter()
            .filter(|(k, _)| k != "REFRESH_TOKEN")
            .collect();
        env.push((var.into(), path.into()));
        let (code, out) = common::run_to_exit(&env, &[]);
        assert_eq!(code, 2, "{var}={path}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "one line: {out}");
        assert!(out.contains(path), "{var}={path}: {out}");
        assert!(out.contains(var), "{var}={path}: {out}");
    }
}

#[test]
fn health_shows_the_login_state_without_any_token() {
    // The lifecycle tests check /health and the logs in depth, across refreshes and failures.
    let fake = FakeKiro::start();
    let dir = Dir::new("health");
    let creds = sso_cache_file(&dir, "https://d-9067abcdef.awsapps.com/start");
    let gw = Gateway::start(&fake.url(), &[no_env_token(), ("KIRO_CREDS_FILE", &creds)]);
    chat_ok(&gw, &fake);
    let text = health(&gw).to_string();
    let mut secrets: Vec<String> = vec![
        "sso-access-stale".into(),
        "sso-refresh-1".into(),
        "sso-client-secret".into(),
    ];
    secrets.extend(fake.issued_access_tokens());
    secrets.extend(fake.issued_refresh_tokens());
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "{s} in /health: {text}");
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["accounts"][0]["state"], "valid");
    assert_eq!(v["accounts"][0]["source"], "creds_file");
}
