//! Logins and their tokens: one [`TokenStore`] per login, guarded by a mutex, with exactly one
//! refresh in flight, a timer thread that refreshes before expiry, and write-back to the source.
//!
//! A login is described by a [`LoginSpec`] (`login`: the single-account variables make one with
//! [`LoginSpec::single`]; an accounts file can make many, `accounts`). The store (`store`)
//! detects the kind of login from its data, renews it the way that kind needs (`renewal` decides
//! when, `refresh` makes the HTTP calls, `timer` runs ahead of expiry), writes the new tokens back
//! where they came from (`sources`), and resolves the profileArn each kind must send (`profile`).
//!
//! Receives [`AuthSettings`](crate::config::AuthSettings), never the whole configuration. Knows
//! nothing of HTTP handlers; the Kiro client asks it for [`Credentials`]. Tokens never appear in
//! logs, error messages, `Debug` output or [`TokenStore::status`].

pub mod accounts;
mod accounts_file;
mod affinity;
mod login;
mod profile;
pub mod refresh;
mod renewal;
pub mod sources;
mod store;
mod timer;
pub mod usage;

use std::fmt;
use std::sync::{Mutex, MutexGuard};

use crate::util;
pub use login::{normalise_machine_id, LoginSource, LoginSpec};
pub use store::{LoginMark, TokenStore};
pub use timer::MAX_RETRY_WAIT;

/// The five kinds of Kiro login (`docs/kiro-wire.md#profile-arn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// Kiro desktop (Google/GitHub) login, refreshed at `prod.{r}.auth.desktop.kiro.dev`.
    Social,
    /// AWS Builder ID via SSO OIDC.
    BuilderId,
    /// IAM Identity Center (enterprise) via SSO OIDC.
    IdentityCenter,
    /// Entra/Okta tokens refreshed at the tenant's endpoint; Kiro calls carry `TokenType: EXTERNAL_IDP`.
    ExternalIdp,
    /// `ksk_…` key: no refresh, `tokentype: API_KEY`, no profileArn.
    ApiKey,
}

impl AuthKind {
    /// Stable lower-case name for logs and `/health`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Social => "social",
            AuthKind::BuilderId => "builder_id",
            AuthKind::IdentityCenter => "identity_center",
            AuthKind::ExternalIdp => "external_idp",
            AuthKind::ApiKey => "api_key",
        }
    }
}

impl fmt::Display for AuthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one Kiro call needs from the login.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub access_token: String,
    pub kind: AuthKind,
    /// The profileArn to send, already resolved per kind (None for API keys and Builder ID).
    pub profile_arn: Option<String>,
    /// The inference region (profile ARN region, else configured/mapped).
    pub api_region: String,
    /// 64-hex machine id, stable for this login.
    pub machine_id: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_token", &"<redacted>")
            .field("kind", &self.kind)
            .field("profile_arn", &self.profile_arn)
            .field("api_region", &self.api_region)
            .field("machine_id", &self.machine_id)
            .finish()
    }
}

fn hash(s: &str) -> String {
    util::sha256_hex(s.as_bytes())
}

fn now_ms() -> i64 {
    util::now_unix_millis() as i64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
pub(crate) mod test_stub {
    //! A tiny recording HTTP server for the auth tests (tiny_http on 127.0.0.1:0).

    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;

    #[derive(Debug, Clone)]
    pub(crate) struct Recorded {
        pub method: String,
        pub path: String,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Recorded {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    pub(crate) struct Stub {
        pub url: String,
        server: Arc<tiny_http::Server>,
        log: Arc<Mutex<Vec<Recorded>>>,
        thread: Option<JoinHandle<()>>,
    }

    impl Stub {
        /// Serve every request with `respond(request) -> (status, JSON body)`, recording it first.
        pub(crate) fn start<F>(respond: F) -> Stub
        where
            F: Fn(&Recorded) -> (u16, String) + Send + 'static,
        {
            let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
            let addr = server.server_addr().to_ip().unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            let (srv, rec_log) = (server.clone(), log.clone());
            let thread = std::thread::spawn(move || {
                for mut req in srv.incoming_requests() {
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    let rec = Recorded {
                        method: req.method().to_string(),
                        path: req.url().to_string(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                            .collect(),
                        body,
                    };
                    rec_log.lock().unwrap().push(rec.clone());
                    let (status, text) = respond(&rec);
                    let resp = tiny_http::Response::from_string(text)
                        .with_status_code(status)
                        .with_header(
                            tiny_http::Header::from_bytes("Content-Type", "application/json")
                                .unwrap(),
                        );
                    let _ = req.respond(resp);
                }
            });
            Stub {
                url: format!("http://{addr}"),
                server,
                log,
                thread: Some(thread),
            }
        }

        pub(crate) fn requests(&self) -> Vec<Recorded> {
            self.log.lock().unwrap().clone()
        }

        pub(crate) fn count(&self, path: &str) -> usize {
            self.requests().iter().filter(|r| r.path == path).count()
        }
    }

    impl Drop for Stub {
        fn drop(&mut self) {
            self.server.unblock();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Barrier;

    use serde_json::Value;

    use super::sources::tests::{db_row, make_db, TempDir};
    use super::test_stub::Stub;
    use super::timer::MAX_TIMER_SLEEP;
    use super::*;
    use crate::config::AuthSettings;
    use crate::error::Error;
    use crate::util::IsoStyle;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    const SOCIAL_ARN: &str = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK";
    const IDC_ARN: &str = "arn:aws:codewhisperer:eu-central-1:123456789012:profile/IDCPROFILE";
    const OTHER_ARN: &str = "arn:aws:codewhisperer:us-east-1:210987654321:profile/EXPLICIT";

    fn single(c: &AuthSettings) -> Result<Arc<TokenStore>, Error> {
        TokenStore::single(&Arc::new(c.clone()))
    }

    fn cfg(stub: &Stub) -> AuthSettings {
        let mut c = AuthSettings::defaults();
        c.desktop_auth_url = Some(format!("{}/refreshToken", stub.url));
        c.sso_oidc_url = Some(format!("{}/token", stub.url));
        c.management_url = Some(stub.url.clone());
        c
    }

    /// ISO `secs` from now in the IDE's style.
    fn iso_in(secs: i64) -> String {
        util::format_iso8601(now_ms() + secs * 1000, IsoStyle::MillisZ)
    }

    fn desktop_ok(stub_answer: &'static str) -> impl Fn(&test_stub::Recorded) -> (u16, String) {
        move |_| (200, stub_answer.to_string())
    }

    fn ide_file(dir: &TempDir, access: &str, refresh: &str, expires: &str) -> PathBuf {
        dir.file(
                "kiro-auth-token.json",
                &format!(
                    r#"{{"accessToken":"{access}","refreshToken":"{refresh}","expiresAt":"{expires}","region":"us-east-1","authMethod":"social","provider":"Github","extra":{{"keep":true}}}}"#
                ),
            )
    }

    fn file_config(stub: &Stub, path: &std::path::Path) -> AuthSettings {
        let mut c = cfg(stub);
        c.creds_file = Some(path.to_path_buf());
        c
    }

    #[test]
    fn no_credentials_names_every_variable_to_set() {
        let e = single(&AuthSettings::defaults()).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        let m = e.to_string();
        for var in [
            "REFRESH_TOKEN",
            "KIRO_CREDS_FILE",
            "KIRO_CLI_DB_FILE",
            "KIRO_API_KEY",
        ] {
            assert!(m.contains(var), "{m}");
        }
    }

    #[test]
    fn missing_or_malformed_sources_are_config_errors_naming_the_file() {
        let dir = TempDir::new("start");
        let mut c = AuthSettings::defaults();
        c.creds_file = Some(dir.0.join("absent.json"));
        let e = single(&c).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(e.to_string().contains("KIRO_CREDS_FILE"), "{e}");
        assert!(e.to_string().contains("absent.json"), "{e}");

        c.creds_file = Some(dir.file("broken.json", "{\"refreshToken\": "));
        let e = single(&c).unwrap_err();
        assert!(e.to_string().contains("broken.json"), "{e}");

        c.creds_file = Some(dir.file("empty.json", "{\"region\":\"us-east-1\"}"));
        let e = single(&c).unwrap_err();
        assert!(e.to_string().contains("empty.json"), "{e}");

        c.creds_file = None;
        c.cli_db_file = Some(dir.0.join("absent.sqlite3"));
        let e = single(&c).unwrap_err();
        assert!(e.to_string().contains("KIRO_CLI_DB_FILE"), "{e}");
        assert!(e.to_string().contains("absent.sqlite3"), "{e}");
    }

    #[test]
    fn api_key_login_never_refreshes_and_sends_no_profile_arn() {
        let stub = Stub::start(|_| (500, "{}".into()));
        let mut c = cfg(&stub);
        c.api_key = Some("ksk_test123".into());
        c.profile_arn = Some(OTHER_ARN.into());
        c.refresh_token = Some("ignored".into());
        let store = single(&c).unwrap();
        let creds = store.credentials().unwrap();
        assert_eq!(creds.kind, AuthKind::ApiKey);
        assert_eq!(creds.access_token, "ksk_test123");
        assert_eq!(creds.profile_arn, None);
        assert_eq!(creds.api_region, "us-east-1");
        assert_eq!(
            creds.machine_id,
            util::sha256_hex(b"KiroAPIKey/ksk_test123")
        );
        assert_eq!(store.force_refresh("ksk_test123").unwrap(), creds);
        assert_eq!(store.status()["state"], "valid");
        assert_eq!(store.status()["source"], "api_key");
        assert!(stub.requests().is_empty());

        let bad = LoginSpec {
            name: "k".into(),
            source: LoginSource::ApiKey("sk-wrong".into()),
            profile_arn: None,
            region: None,
            proxy: None,
            machine_id: None,
        };
        assert!(matches!(
            TokenStore::new(bad, &Arc::new(c.clone())),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn env_refresh_token_refreshes_on_first_use_with_the_desktop_shape() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-1","refreshToken":"rt-2","expiresIn":3600,"profileArn":"arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"}"#,
        ));
        let mut c = cfg(&stub);
        c.refresh_token = Some("rt-1".into());
        let store = single(&c).unwrap();
        assert_eq!(store.kind(), AuthKind::Social);
        assert_eq!(store.status()["state"], "expired");
        let creds = store.credentials().unwrap();
        assert_eq!(creds.access_token, "at-1");
        assert_eq!(creds.profile_arn.as_deref(), Some(SOCIAL_ARN));
        assert_eq!(creds.api_region, "us-east-1");
        let machine = util::sha256_hex(b"KotlinNativeAPI/rt-1");
        assert_eq!(creds.machine_id, machine);
        let reqs = stub.requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].path, "/refreshToken");
        assert_eq!(
            reqs[0].header("user-agent"),
            Some(format!("KiroIDE-1.1.70-{machine}").as_str())
        );
        let body: Value = serde_json::from_str(&reqs[0].body).unwrap();
        assert_eq!(body["refreshToken"], "rt-1");
        // Stored expiry = now + expiresIn − 60 s.
        let expires_in = store.status()["expires_in"].as_i64().unwrap();
        assert!((3530..=3540).contains(&expires_in), "{expires_in}");
        assert_eq!(store.status()["state"], "valid");
        assert_eq!(store.status()["refresh_count"], 1);

        // The rotated refresh token is used next time; the machine id does not move.
        let again = store.force_refresh("at-1").unwrap();
        assert_eq!(again.machine_id, machine);
        let body: Value = serde_json::from_str(&stub.requests()[1].body).unwrap();
        assert_eq!(body["refreshToken"], "rt-2");
    }

    #[test]
    fn valid_token_is_returned_without_refresh() {
        let stub = Stub::start(|_| (500, "{}".into()));
        let dir = TempDir::new("valid");
        let p = ide_file(&dir, "at", "rt", &iso_in(3000));
        let store = single(&file_config(&stub, &p)).unwrap();
        assert_eq!(store.credentials().unwrap().access_token, "at");
        assert!(stub.requests().is_empty());
        assert_eq!(store.status()["state"], "valid");
    }

    #[test]
    fn token_inside_threshold_is_refreshed_and_written_back_keeping_the_file() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-new","refreshToken":"rt-new","expiresIn":3600}"#,
        ));
        let dir = TempDir::new("expiring");
        let p = ide_file(&dir, "at-old", "rt-old", &iso_in(300));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        }
        let store = single(&file_config(&stub, &p)).unwrap();
        assert_eq!(store.status()["state"], "expiring");
        assert_eq!(store.credentials().unwrap().access_token, "at-new");
        let v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["accessToken"], "at-new");
        assert_eq!(v["refreshToken"], "rt-new");
        assert_eq!(v["extra"]["keep"], true);
        assert_eq!(v["provider"], "Github");
        let expires = v["expiresAt"].as_str().unwrap();
        let (ms, style) = util::parse_iso8601(expires).unwrap();
        assert_eq!(style, IsoStyle::MillisZ);
        assert!(ms > now_ms() + 3_500_000);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(dir.entries(), vec!["kiro-auth-token.json".to_string()]);
        // Our own write is not mistaken for another client's change.
        store.reload_source();
        assert_eq!(store.credentials().unwrap().access_token, "at-new");
        assert_eq!(stub.requests().len(), 1);
    }

    #[test]
    fn twenty_concurrent_callers_on_an_expired_token_cause_one_refresh() {
        let stub = Stub::start(|_| {
            std::thread::sleep(Duration::from_millis(300));
            (
                200,
                r#"{"accessToken":"at-new","refreshToken":"rt-new","expiresIn":3600}"#.into(),
            )
        });
        let dir = TempDir::new("herd");
        let p = ide_file(&dir, "at-old", "rt-old", &iso_in(-60));
        let store = single(&file_config(&stub, &p)).unwrap();
        let barrier = Arc::new(Barrier::new(20));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (s, b) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    b.wait();
                    s.credentials().map(|c| c.access_token)
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), "at-new");
        }
        assert_eq!(stub.count("/refreshToken"), 1);
        assert_eq!(store.status()["refresh_count"], 1);
    }

    #[test]
    fn revoked_refresh_token_is_auth_failed_naming_the_source_and_recovers_once_fixed() {
        let stub = Stub::start(|r| {
            if r.body.contains("rt-dead") {
                (
                    400,
                    r#"{"error":"invalid_grant","error_description":"Invalid refresh token rt-dead"}"#
                        .into(),
                )
            } else {
                (
                    200,
                    r#"{"accessToken":"at-fixed","refreshToken":"rt-fixed","expiresIn":3600}"#
                        .into(),
                )
            }
        });
        let dir = TempDir::new("revoked");
        let p = ide_file(&dir, "at-dead", "rt-dead", &iso_in(-10));
        let store = single(&file_config(&stub, &p)).unwrap();
        let e = store.credentials().unwrap_err();
        match &e {
            Error::AuthFailed { source, message } => {
                assert!(source.contains("KIRO_CREDS_FILE"), "{source}");
                assert!(source.contains("kiro-auth-token.json"), "{source}");
                assert!(message.contains("invalid_grant"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(e.status(), 401);
        assert!(!e.to_string().contains("rt-dead"), "{e}");
        let status = store.status();
        assert_eq!(status["state"], "refresh_failed");
        let text = status.to_string();
        assert!(text.contains("invalid_grant"), "{text}");
        assert!(
            !text.contains("rt-dead") && !text.contains("at-dead"),
            "{text}"
        );

        // The same dead token is not hammered on every request.
        assert!(matches!(store.credentials(), Err(Error::AuthFailed { .. })));
        assert_eq!(stub.count("/refreshToken"), 1);

        // The user logs in again; the next request picks the new login up.
        ide_file(&dir, "at-dead", "rt-alive", &iso_in(-10));
        assert_eq!(store.credentials().unwrap().access_token, "at-fixed");
        assert_eq!(store.status()["state"], "valid");
        assert_eq!(store.status()["last_error"], Value::Null);
    }

    #[test]
    fn failed_refresh_with_a_still_valid_token_degrades_gracefully() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let stub = Stub::start(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            (503, r#"{"message":"try later"}"#.into())
        });
        let dir = TempDir::new("degrade");
        let p = ide_file(&dir, "at-still-valid", "rt", &iso_in(200));
        let store = single(&file_config(&stub, &p)).unwrap();
        assert_eq!(store.credentials().unwrap().access_token, "at-still-valid");
        assert_eq!(store.status()["state"], "refresh_failed");
        // Requests do not retry while the timer's backoff runs.
        assert_eq!(store.credentials().unwrap().access_token, "at-still-valid");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // force_refresh does not degrade: Kiro refused this very token.
        assert!(store.force_refresh("at-still-valid").is_err());
    }

    #[test]
    fn unreachable_auth_server_with_expired_token_is_a_network_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = AuthSettings::defaults();
        c.desktop_auth_url = Some(format!("http://127.0.0.1:{port}/refreshToken"));
        c.refresh_token = Some("rt".into());
        let store = single(&c).unwrap();
        assert!(matches!(store.credentials(), Err(Error::Network { .. })));
        assert_eq!(store.status()["state"], "refresh_failed");
    }

    #[test]
    fn no_refresh_token_is_auth_failed_without_any_http() {
        let stub = Stub::start(|_| (200, "{}".into()));
        let dir = TempDir::new("nort");
        let p = dir.file(
            "t.json",
            &format!(r#"{{"accessToken":"at","expiresAt":"{}"}}"#, iso_in(-5)),
        );
        let store = single(&file_config(&stub, &p)).unwrap();
        assert!(matches!(store.credentials(), Err(Error::AuthFailed { .. })));
        assert!(stub.requests().is_empty());
    }

    #[test]
    fn force_refresh_is_skipped_when_the_token_already_changed() {
        let n = Arc::new(AtomicUsize::new(0));
        let counter = n.clone();
        let stub = Stub::start(move |_| {
            let i = counter.fetch_add(1, Ordering::SeqCst) + 1;
            (
                200,
                format!(r#"{{"accessToken":"at-{i}","refreshToken":"rt-{i}","expiresIn":3600}}"#),
            )
        });
        let mut c = cfg(&stub);
        c.refresh_token = Some("rt-0".into());
        let store = single(&c).unwrap();
        assert_eq!(store.credentials().unwrap().access_token, "at-1");
        // Two workers got 403 for at-1: the first refreshes, the second finds at-2 already.
        assert_eq!(store.force_refresh("at-1").unwrap().access_token, "at-2");
        assert_eq!(store.force_refresh("at-1").unwrap().access_token, "at-2");
        assert_eq!(stub.count("/refreshToken"), 2);
        // A 403 for the current token refreshes again.
        assert_eq!(store.force_refresh("at-2").unwrap().access_token, "at-3");
    }

    #[test]
    fn sqlite_reread_adopts_a_newer_token_without_http() {
        let stub = Stub::start(|_| (500, "{}".into()));
        let dir = TempDir::new("reread");
        let old = format!(
            r#"{{"access_token":"at-old","refresh_token":"rt-old","expires_at":"{}","provider":"google"}}"#,
            iso_in(-30)
        );
        let p = make_db(&dir, &[("kirocli:social:token", &old)], &[]);
        let mut c = cfg(&stub);
        c.cli_db_file = Some(p.clone());
        let store = single(&c).unwrap();
        assert_eq!(store.status()["source"], "kiro_cli_db");
        // kiro-cli refreshes the login on its own.
        let conn = rusqlite::Connection::open(&p).unwrap();
        let new = format!(
            r#"{{"access_token":"at-cli","refresh_token":"rt-cli","expires_at":"{}","provider":"google"}}"#,
            iso_in(3000)
        );
        conn.execute(
            "UPDATE auth_kv SET value = ?1 WHERE key = 'kirocli:social:token'",
            [&new],
        )
        .unwrap();
        assert_eq!(store.credentials().unwrap().access_token, "at-cli");
        assert!(stub.requests().is_empty());
    }

    fn social_row(expires: &str) -> String {
        format!(
            r#"{{"access_token":"at-old","refresh_token":"rt-old","expires_at":"{expires}","provider":"google","profile_arn":"{SOCIAL_ARN}","unknown":[1,{{"x":2}}]}}"#
        )
    }

    #[test]
    fn sqlite_refresh_writes_back_only_the_token_fields() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-new","refreshToken":"","expiresIn":3600}"#,
        ));
        let dir = TempDir::new("dbwrite");
        let expires = util::format_iso8601(now_ms() - 1000, IsoStyle::Offset { micros: true });
        let reg = r#"{"client_id":"c","client_secret":"s"}"#;
        let p = make_db(
            &dir,
            &[
                ("kirocli:social:token", &social_row(&expires)),
                ("kirocli:odic:device-registration", reg),
            ],
            &[],
        );
        let mut c = cfg(&stub);
        c.cli_db_file = Some(p.clone());
        let store = single(&c).unwrap();
        assert_eq!(store.kind(), AuthKind::Social);
        let creds = store.credentials().unwrap();
        assert_eq!(creds.access_token, "at-new");
        assert_eq!(creds.profile_arn.as_deref(), Some(SOCIAL_ARN));
        let row: Value =
            serde_json::from_str(&db_row(&p, "kirocli:social:token").unwrap()).unwrap();
        assert_eq!(row["access_token"], "at-new");
        assert_eq!(
            row["refresh_token"], "rt-old",
            "empty refreshToken keeps the old one"
        );
        assert_eq!(row["provider"], "google");
        assert_eq!(row["unknown"][1]["x"], 2);
        let (_, style) = util::parse_iso8601(row["expires_at"].as_str().unwrap()).unwrap();
        assert_eq!(style, IsoStyle::Offset { micros: true });
        assert_eq!(
            db_row(&p, "kirocli:odic:device-registration").as_deref(),
            Some(reg)
        );
    }

    #[test]
    fn sqlite_readonly_never_writes() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-new","refreshToken":"rt-new","expiresIn":3600}"#,
        ));
        let dir = TempDir::new("ro");
        let original = social_row(&iso_in(-5));
        let p = make_db(&dir, &[("kirocli:social:token", &original)], &[]);
        let mut c = cfg(&stub);
        c.cli_db_file = Some(p.clone());
        c.sqlite_readonly = true;
        let store = single(&c).unwrap();
        assert_eq!(store.credentials().unwrap().access_token, "at-new");
        assert_eq!(db_row(&p, "kirocli:social:token").unwrap(), original);
        // The unchanged row is not mistaken for a newer login: no regression to at-old.
        store.reload_source();
        assert_eq!(store.credentials().unwrap().access_token, "at-new");
        assert_eq!(stub.requests().len(), 1);
    }

    #[test]
    fn identity_center_asks_list_available_profiles_once_and_caches_it() {
        let stub = Stub::start(|r| {
            if r.path == "/List-Available-Profiles" {
                (
                    200,
                    format!(r#"{{"profiles":[{{"arn":"{IDC_ARN}","profileName":"team"}}]}}"#),
                )
            } else {
                (500, "{}".into())
            }
        });
        let dir = TempDir::new("lap");
        let p = dir.file(
                "sso.json",
                &format!(
                    r#"{{"startUrl":"https://d-9067.awsapps.com/start","region":"eu-west-1","accessToken":"at","refreshToken":"rt","clientId":"c","clientSecret":"s","expiresAt":"{}"}}"#,
                    iso_in(3000)
                ),
            );
        let store = single(&file_config(&stub, &p)).unwrap();
        assert_eq!(store.kind(), AuthKind::IdentityCenter);
        for _ in 0..3 {
            let creds = store.credentials().unwrap();
            assert_eq!(creds.profile_arn.as_deref(), Some(IDC_ARN));
            assert_eq!(creds.api_region, "eu-central-1");
        }
        assert_eq!(stub.count("/List-Available-Profiles"), 1);
        let req = &stub.requests()[0];
        assert_eq!(req.header("authorization"), Some("Bearer at"));
        assert_eq!(req.header("tokentype"), None);
    }

    #[test]
    fn external_idp_login_refreshes_form_encoded_and_asks_profiles_with_token_type() {
        let stub = Stub::start(|r| match r.path.as_str() {
            "/tenant/oauth2/v2.0/token" => (
                200,
                r#"{"access_token":"at-new","refresh_token":"rt-new","expires_in":"3600"}"#.into(),
            ),
            "/List-Available-Profiles" => {
                (200, format!(r#"{{"profiles":[{{"arn":"{IDC_ARN}"}}]}}"#))
            }
            _ => (404, "{}".into()),
        });
        let dir = TempDir::new("extidp");
        let row = format!(
            r#"{{"access_token":"at-old","refresh_token":"rt/old+1","expires_at":"{}","issuer_url":"https://login.example/t/v2.0","token_endpoint":"{}/tenant/oauth2/v2.0/token","client_id":"pub-client"}}"#,
            iso_in(-5),
            stub.url
        );
        let p = make_db(&dir, &[(sources::EXTERNAL_IDP_KEY, &row)], &[]);
        let mut c = cfg(&stub);
        c.cli_db_file = Some(p.clone());
        let store = single(&c).unwrap();
        assert_eq!(store.kind(), AuthKind::ExternalIdp);
        let creds = store.credentials().unwrap();
        assert_eq!(creds.access_token, "at-new");
        assert_eq!(creds.kind, AuthKind::ExternalIdp);
        assert_eq!(creds.profile_arn.as_deref(), Some(IDC_ARN));
        let reqs = stub.requests();
        assert_eq!(
            reqs[0].body,
            "grant_type=refresh_token&refresh_token=rt%2Fold%2B1&client_id=pub-client"
        );
        assert_eq!(
            reqs[0].header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(reqs[1].path, "/List-Available-Profiles");
        assert_eq!(reqs[1].header("tokentype"), Some("EXTERNAL_IDP"));
        assert_eq!(reqs[1].header("authorization"), Some("Bearer at-new"));
        let written: Value =
            serde_json::from_str(&db_row(&p, sources::EXTERNAL_IDP_KEY).unwrap()).unwrap();
        assert_eq!(written["refresh_token"], "rt-new");
        assert_eq!(written["issuer_url"], "https://login.example/t/v2.0");
    }

    #[test]
    fn oidc_login_refreshes_with_camel_case_json_and_its_region_stays_sso_only() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-new","refreshToken":"rt-new","expiresIn":3600}"#,
        ));
        let dir = TempDir::new("oidc");
        let p = make_db(
            &dir,
            &[
                (
                    "kirocli:odic:token",
                    &format!(
                        r#"{{"access_token":"a","refresh_token":"rt","expires_at":"{}","region":"eu-west-1","start_url":"https://view.awsapps.com/start","scopes":["codewhisperer:completions"]}}"#,
                        iso_in(-5)
                    ),
                ),
                (
                    "kirocli:odic:device-registration",
                    r#"{"client_id":"cid","client_secret":"csec"}"#,
                ),
            ],
            &[],
        );
        let mut c = cfg(&stub);
        c.cli_db_file = Some(p);
        c.sso_oidc_url = None;
        // Without KIRO_SSO_OIDC_URL the OIDC host is built from the SSO region; the stub acts
        // as the proxy (VPN_PROXY_URL) so the host can be seen without leaving the machine.
        c.net.vpn_proxy_url = Some(stub.url.clone());
        let store = single(&c).unwrap();
        assert_eq!(store.kind(), AuthKind::BuilderId);
        assert!(store.credentials().is_err());
        let connect = &stub.requests()[0];
        assert_eq!(connect.method, "CONNECT");
        assert_eq!(connect.path, "oidc.eu-west-1.amazonaws.com:443");

        c.net.vpn_proxy_url = None;
        let mut c2 = c.clone();
        c2.sso_oidc_url = Some(format!("{}/token", stub.url));
        let store = single(&c2).unwrap();
        let creds = store.credentials().unwrap();
        assert_eq!(
            creds.profile_arn, None,
            "Builder ID sends no ARN by default"
        );
        assert_eq!(
            creds.api_region, "us-east-1",
            "the SSO region is not the API region"
        );
        let req = &stub.requests()[1];
        assert_eq!(req.path, "/token");
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"grantType":"refresh_token","clientId":"cid","clientSecret":"csec","refreshToken":"rt"})
        );

        let mut c3 = c2.clone();
        c3.builder_id_profile_arn = Some(SOCIAL_ARN.into());
        let store = single(&c3).unwrap();
        assert_eq!(
            store.credentials().unwrap().profile_arn.as_deref(),
            Some(SOCIAL_ARN)
        );
    }

    #[test]
    fn profile_arn_precedence_explicit_then_own_then_refresh_response() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-new","expiresIn":3600,"profileArn":"arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"}"#,
        ));
        let dir = TempDir::new("arn");
        let own = "arn:aws:codewhisperer:eu-central-1:111122223333:profile/OWN";
        let p = dir.file(
            "kiro-auth-token.json",
            &format!(
                r#"{{"accessToken":"at","refreshToken":"rt","profileArn":"{own}","expiresAt":"{}"}}"#,
                iso_in(-5)
            ),
        );
        let mut c = file_config(&stub, &p);
        c.profile_arn = Some(OTHER_ARN.into());
        let creds = single(&c).unwrap().credentials().unwrap();
        assert_eq!(creds.profile_arn.as_deref(), Some(OTHER_ARN));

        c.profile_arn = None;
        let creds = single(&c).unwrap().credentials().unwrap();
        assert_eq!(creds.profile_arn.as_deref(), Some(own));
        assert_eq!(creds.api_region, "eu-central-1");

        let q = dir.file(
            "noarn.json",
            &format!(r#"{{"refreshToken":"rt","expiresAt":"{}"}}"#, iso_in(-5)),
        );
        let creds = single(&file_config(&stub, &q))
            .unwrap()
            .credentials()
            .unwrap();
        assert_eq!(creds.profile_arn.as_deref(), Some(SOCIAL_ARN));
        // The refresh response's ARN is written into a file that had none.
        let v: Value = serde_json::from_str(&fs::read_to_string(&q).unwrap()).unwrap();
        assert_eq!(v["profileArn"], SOCIAL_ARN);
    }

    #[test]
    fn placeholder_profile_arn_in_the_file_stops_start_up_with_advice() {
        let dir = TempDir::new("placeholder");
        let p = dir.file(
                "t.json",
                r#"{"refreshToken":"rt","profileArn":"arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX"}"#,
            );
        let mut c = AuthSettings::defaults();
        c.creds_file = Some(p.clone());
        let e = single(&c).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(e.to_string().contains("PROFILE_ARN"), "{e}");
        assert!(e.to_string().contains("t.json"), "{e}");
        // An explicit PROFILE_ARN overrides the file's bad one.
        c.profile_arn = Some(OTHER_ARN.into());
        assert!(single(&c).is_ok());
    }

    #[test]
    fn refresh_response_with_placeholder_arn_is_refused() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at","expiresIn":3600,"profileArn":"arn:aws:codewhisperer:us-east-1:..."}"#,
        ));
        let mut c = cfg(&stub);
        c.refresh_token = Some("rt".into());
        let e = single(&c).unwrap().credentials().unwrap_err();
        assert!(e.to_string().contains("PROFILE_ARN"), "{e}");
    }

    #[test]
    fn database_beats_file_beats_env_and_env_fills_missing_fields() {
        let stub = Stub::start(desktop_ok(r#"{"accessToken":"at-new","expiresIn":3600}"#));
        let dir = TempDir::new("prec");
        let db = make_db(
            &dir,
            &[("kirocli:social:token", &social_row(&iso_in(3000)))],
            &[],
        );
        let file = dir.file(
            "t.json",
            r#"{"accessToken":"file","expiresAt":"2000-01-01T00:00:00Z"}"#,
        );
        let mut c = cfg(&stub);
        c.cli_db_file = Some(db);
        c.creds_file = Some(file.clone());
        c.refresh_token = Some("rt-env".into());
        let store = single(&c).unwrap();
        assert_eq!(store.status()["source"], "kiro_cli_db");
        assert_eq!(store.credentials().unwrap().access_token, "at-old");

        // The file lacks refreshToken: REFRESH_TOKEN from the environment is used for it.
        c.cli_db_file = None;
        let store = single(&c).unwrap();
        assert_eq!(store.status()["source"], "creds_file");
        assert_eq!(store.credentials().unwrap().access_token, "at-new");
        let body: Value = serde_json::from_str(&stub.requests()[0].body).unwrap();
        assert_eq!(body["refreshToken"], "rt-env");
    }

    #[test]
    fn machine_id_is_stable_per_login_and_overridable() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-new","refreshToken":"rotated","expiresIn":3600}"#,
        ));
        let dir = TempDir::new("mid");
        let p = ide_file(&dir, "at", "rt", &iso_in(-5));
        let c = file_config(&stub, &p);
        let a = single(&c).unwrap();
        let before = a.machine_id().to_string();
        assert_eq!(before.len(), 64);
        assert!(before.chars().all(|ch| ch.is_ascii_hexdigit()));
        a.credentials().unwrap(); // rotates the refresh token in the file
        let b = single(&c).unwrap();
        assert_eq!(
            b.machine_id(),
            before,
            "same login after a restart and a rotation"
        );
        assert_eq!(a.credentials().unwrap().machine_id, before);

        let dir2 = TempDir::new("mid2");
        let other = ide_file(&dir2, "at", "rt", &iso_in(-5));
        assert_ne!(
            single(&file_config(&stub, &other)).unwrap().machine_id(),
            before
        );

        let spec = LoginSpec {
            name: "acct".into(),
            source: LoginSource::RefreshToken("rt".into()),
            profile_arn: None,
            region: None,
            proxy: None,
            machine_id: Some("0123456789ABCDEF0123456789abcdef".into()),
        };
        let s = TokenStore::new(spec, &Arc::new(c.clone())).unwrap();
        assert_eq!(
            s.machine_id(),
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn account_region_overrides_kiro_region_for_the_mapping() {
        let stub = Stub::start(desktop_ok(r#"{"accessToken":"at","expiresIn":3600}"#));
        let c = cfg(&stub);
        let spec = LoginSpec {
            name: "eu".into(),
            source: LoginSource::RefreshToken("rt".into()),
            profile_arn: None,
            region: Some("eu-west-1".into()),
            proxy: None,
            machine_id: None,
        };
        let store = TokenStore::new(spec, &Arc::new(c.clone())).unwrap();
        assert_eq!(store.credentials().unwrap().api_region, "eu-central-1");
        assert_eq!(store.name(), "eu");
        assert!(store.source_label().contains("account 'eu'"));
    }

    #[test]
    fn timer_refreshes_before_the_threshold_and_backs_off_within_20s() {
        let fail = Arc::new(AtomicBool::new(false));
        let failing = fail.clone();
        let stub = Stub::start(move |_| {
            if failing.load(Ordering::SeqCst) {
                (500, r#"{"message":"down"}"#.into())
            } else {
                (
                    200,
                    r#"{"accessToken":"at-timer","refreshToken":"rt2","expiresIn":3600}"#.into(),
                )
            }
        });
        let dir = TempDir::new("timer");
        let later = ide_file(&dir, "at", "rt", &iso_in(2000));
        let store = single(&file_config(&stub, &later)).unwrap();
        // Not due yet: sleeps, at most a minute at a time.
        let wait = store.timer_tick();
        assert!(wait > Duration::ZERO && wait <= MAX_TIMER_SLEEP, "{wait:?}");
        assert!(stub.requests().is_empty());

        let p = ide_file(&dir, "at-2", "rt", &iso_in(300));
        let store = single(&file_config(&stub, &p)).unwrap();
        fail.store(true, Ordering::SeqCst);
        let mut waits = Vec::new();
        for _ in 0..3 {
            // Pretend the backoff elapsed.
            store.lock_state().last_failure_ms = Some(now_ms() - 60_000);
            waits.push(store.timer_tick());
        }
        assert_eq!(stub.requests().len(), 3);
        assert!(
            waits
                .iter()
                .all(|w| *w > Duration::ZERO && *w <= MAX_RETRY_WAIT),
            "{waits:?}"
        );
        assert!(waits[2] > waits[0], "{waits:?}");
        // The old token keeps working meanwhile.
        assert_eq!(store.credentials().unwrap().access_token, "at-2");

        fail.store(false, Ordering::SeqCst);
        store.lock_state().last_failure_ms = Some(now_ms() - 60_000);
        store.timer_tick();
        assert_eq!(store.credentials().unwrap().access_token, "at-timer");
        assert!(store.timer_tick() > Duration::from_secs(30));
    }

    #[test]
    fn started_timer_refreshes_an_expiring_token_on_its_own() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-bg","refreshToken":"rt2","expiresIn":3600}"#,
        ));
        let dir = TempDir::new("bg");
        let p = ide_file(&dir, "at", "rt", &iso_in(100));
        let store = single(&file_config(&stub, &p)).unwrap();
        store.start_timer();
        store.start_timer(); // idempotent: still one thread
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stub.requests().is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(stub.requests().len(), 1);
        assert_eq!(store.status()["state"], "valid");
        let v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["accessToken"], "at-bg");
    }

    #[test]
    fn status_and_debug_never_show_tokens() {
        let stub = Stub::start(|_| (401, r#"{"message":"bad token SECRETRT"}"#.into()));
        let mut c = cfg(&stub);
        c.refresh_token = Some("SECRETRT".into());
        let store = single(&c).unwrap();
        let _ = store.credentials();
        let text = format!("{} {:?}", store.status(), store);
        assert!(!text.contains("SECRETRT"), "{text}");
        let creds = Credentials {
            access_token: "SECRETAT".into(),
            kind: AuthKind::Social,
            profile_arn: None,
            api_region: "us-east-1".into(),
            machine_id: "m".into(),
        };
        assert!(!format!("{creds:?}").contains("SECRETAT"));
        let spec = LoginSpec::single(&c).unwrap();
        assert!(!format!("{spec:?}").contains("SECRETRT"));
    }

    #[test]
    fn expiry_bookkeeping_fresh_expiring_expired() {
        let stub = Stub::start(|_| (500, "{}".into()));
        let dir = TempDir::new("expiry");
        let check = |expires: Option<String>, fresh: bool, valid: bool| {
            let text = match &expires {
                Some(e) => format!(r#"{{"accessToken":"a","refreshToken":"r","expiresAt":"{e}"}}"#),
                None => r#"{"accessToken":"a","refreshToken":"r"}"#.to_string(),
            };
            let p = dir.file("e.json", &text);
            let store = single(&file_config(&stub, &p)).unwrap();
            let st = store.lock_state();
            let now = now_ms();
            assert_eq!(store.is_fresh(&st, now), fresh, "{expires:?}");
            assert_eq!(store.is_valid(&st, now), valid, "{expires:?}");
        };
        check(None, false, false);
        check(Some(iso_in(3000)), true, true);
        check(Some(iso_in(300)), false, true);
        check(Some(iso_in(-1)), false, false);
    }
}
