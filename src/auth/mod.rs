//! Logins and their tokens: one [`TokenStore`] per login, guarded by a mutex, with exactly one
//! refresh in flight, a timer thread that refreshes before expiry, and write-back to the source.
//!
//! A login is described by a [`LoginSpec`] (the single-account variables make one with
//! [`LoginSpec::from_config`]; an accounts file can make many). The store detects the kind of
//! login from its data, refreshes it the way that kind needs (`refresh`), writes the new tokens
//! back where they came from (`sources`), and resolves the profileArn each kind must send.
//!
//! Knows nothing of HTTP handlers; the Kiro client asks it for [`Credentials`]. Tokens never
//! appear in logs, error messages, `Debug` output or [`TokenStore::status`].

pub mod accounts;
pub mod refresh;
pub mod sources;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::{check_profile_arn, Config};
use crate::error::Error;
use crate::util;
use refresh::Refreshed;
use sources::{LoginData, TokenUpdate};

/// Safety margin taken off every granted lifetime: stored expiry = now + expiresIn − 60 s.
const SAFETY_MARGIN_MS: i64 = 60_000;

/// The longest a failed refresh waits before it is tried again (timer backoff cap), and how
/// long a refused refresh token is not retried on the request path.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(20);

/// A failed attempt that finished this recently is reported to the next caller as is, instead of
/// hitting an unreachable auth server once per queued request.
const FAILURE_REUSE_MS: i64 = 2_000;

/// The timer never sleeps longer than this, so a suspended machine notices expiry soon after it
/// wakes (thread::sleep does not count suspended time everywhere).
const MAX_TIMER_SLEEP: Duration = Duration::from_secs(60);

/// Upper bound of the per-token jitter that spreads proactive refreshes of many logins.
const MAX_JITTER_MS: i64 = 30_000;

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

/// Where a login's tokens come from.
#[derive(Clone, PartialEq)]
pub enum LoginSource {
    /// A bare refresh token (social login); refreshed tokens live in memory only.
    RefreshToken(String),
    /// A Kiro IDE or AWS SSO cache JSON file; refreshed tokens are written back to it.
    CredsFile(PathBuf),
    /// A kiro-cli SQLite database; refreshed tokens are written back unless `SQLITE_READONLY`.
    CliDb(PathBuf),
    /// A Kiro API key (`ksk_…`).
    ApiKey(String),
}

impl LoginSource {
    /// Stable name of the source kind for `/health`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            LoginSource::RefreshToken(_) => "env",
            LoginSource::CredsFile(_) => "creds_file",
            LoginSource::CliDb(_) => "kiro_cli_db",
            LoginSource::ApiKey(_) => "api_key",
        }
    }
}

impl fmt::Debug for LoginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginSource::RefreshToken(_) => f.write_str("RefreshToken(<redacted>)"),
            LoginSource::CredsFile(p) => f.debug_tuple("CredsFile").field(p).finish(),
            LoginSource::CliDb(p) => f.debug_tuple("CliDb").field(p).finish(),
            LoginSource::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// One login: where its tokens are and the per-login settings that override the global ones.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginSpec {
    /// Name for logs and `/health` ("default" for the single-account variables).
    pub name: String,
    pub source: LoginSource,
    /// Explicit profile ARN: wins over every discovered one (never sent for API keys).
    pub profile_arn: Option<String>,
    /// The login's region; overrides `KIRO_REGION` (auth endpoints, inference-region mapping).
    pub region: Option<String>,
    /// Proxy for this login's calls; overrides `VPN_PROXY_URL` (`"direct"` disables it).
    pub proxy: Option<String>,
    /// Machine id override (64 hex; 32 hex or a UUID is doubled; anything else is hashed).
    pub machine_id: Option<String>,
}

impl LoginSpec {
    /// The login the single-account variables describe: `KIRO_API_KEY`, else `KIRO_CLI_DB_FILE`,
    /// else `KIRO_CREDS_FILE`, else `REFRESH_TOKEN`.
    pub fn from_config(config: &Config) -> Result<LoginSpec, Error> {
        let source = if let Some(key) = &config.api_key {
            LoginSource::ApiKey(key.clone())
        } else if let Some(p) = &config.cli_db_file {
            LoginSource::CliDb(p.clone())
        } else if let Some(p) = &config.creds_file {
            LoginSource::CredsFile(p.clone())
        } else if let Some(t) = &config.refresh_token {
            LoginSource::RefreshToken(t.clone())
        } else {
            return Err(Error::Config(
                "no Kiro credentials: set REFRESH_TOKEN, KIRO_CREDS_FILE, KIRO_CLI_DB_FILE or KIRO_API_KEY"
                    .into(),
            ));
        };
        Ok(LoginSpec {
            name: "default".into(),
            source,
            profile_arn: config.profile_arn.clone(),
            region: None,
            proxy: None,
            machine_id: None,
        })
    }
}

/// What List-Available-Profiles said for this login (called at most once per token lineage).
#[derive(Debug, Clone)]
enum Lap {
    NotTried,
    Found(String),
    NotFound,
    /// It answered with an ARN `check_profile_arn` refuses.
    Invalid(Error),
    /// The call failed; tried again after the next successful refresh.
    Failed,
}

/// SHA-256 of the token fields as last read from the source, to tell "another client changed the
/// file" from "the file still holds what we replaced".
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    access: Option<String>,
    refresh: Option<String>,
}

impl Seen {
    fn of(d: &LoginData) -> Seen {
        Seen {
            access: d.access_token.as_deref().map(hash),
            refresh: d.refresh_token.as_deref().map(hash),
        }
    }
}

fn hash(s: &str) -> String {
    util::sha256_hex(s.as_bytes())
}

struct State {
    login: LoginData,
    seen: Seen,
    /// Lifetime of the current token when we refreshed it ourselves (ms).
    lifetime_ms: Option<i64>,
    /// Social: the ARN of the last desktop refresh response.
    refreshed_arn: Option<String>,
    lap: Lap,
    refresh_count: u64,
    /// Finished refresh attempts; lets callers that waited for one share its outcome.
    attempts: u64,
    last_error: Option<Error>,
    last_failure_ms: Option<i64>,
    /// Hash of the refresh token the last failed attempt used.
    failed_refresh: Option<String>,
    timer_failures: u32,
    jitter_ms: i64,
}

/// The token cache of one login.
pub struct TokenStore {
    name: String,
    kind: AuthKind,
    source: LoginSource,
    /// Where the login came from, for error messages ("KIRO_CREDS_FILE /path").
    label: String,
    machine_id: String,
    explicit_arn: Option<String>,
    /// The global configuration with this login's region applied.
    config: Config,
    agent: ureq::Agent,
    state: Mutex<State>,
    /// Held for the whole of a refresh (and the profile lookup): one HTTP refresh at a time.
    gate: Mutex<()>,
    timer_started: AtomicBool,
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("source", &self.label)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    util::now_unix_millis() as i64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn jitter_ms(config: &Config) -> i64 {
    let cap = (config.token_refresh_threshold.as_millis() as i64 / 10).min(MAX_JITTER_MS);
    if cap <= 0 {
        0
    } else {
        (util::random_u64() % cap as u64) as i64
    }
}

/// 1 s, 2 s, 4 s … capped at [`MAX_RETRY_WAIT`].
fn backoff(failures: u32) -> Duration {
    let secs = 1u64 << failures.saturating_sub(1).min(5);
    Duration::from_secs(secs).min(MAX_RETRY_WAIT)
}

fn is_refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::Upstream {
            status: 400 | 401,
            ..
        } | Error::AuthFailed { .. }
    )
}

/// A 64-hex machine id from an override: 64 hex as is, 32 hex (or a UUID) doubled, else hashed.
pub fn normalise_machine_id(given: &str) -> String {
    let hexish: String = given
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    let all_hex = !hexish.is_empty() && hexish.chars().all(|c| c.is_ascii_hexdigit());
    match hexish.len() {
        64 if all_hex => hexish,
        32 if all_hex => format!("{hexish}{hexish}"),
        _ => hash(given),
    }
}

/// The machine id of a login: its override, else SHA-256 of a stable identity of the login (the
/// API key, the configured refresh token, or the file's canonical path plus its client id), so it
/// survives restarts and token rotation and differs between logins.
fn machine_id_for(spec: &LoginSpec, data: &LoginData) -> String {
    if let Some(m) = spec.machine_id.as_deref().filter(|m| !m.trim().is_empty()) {
        return normalise_machine_id(m);
    }
    match &spec.source {
        LoginSource::ApiKey(k) => hash(&format!("KiroAPIKey/{k}")),
        LoginSource::RefreshToken(t) => hash(&format!("KotlinNativeAPI/{t}")),
        LoginSource::CredsFile(p) | LoginSource::CliDb(p) => {
            let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let mut identity = format!("kiro-gateway-login:{}", canonical.display());
            if let Some(id) = &data.client_id {
                identity.push(':');
                identity.push_str(id);
            }
            hash(&identity)
        }
    }
}

fn describe_source(spec: &LoginSpec, single: bool) -> String {
    let name = &spec.name;
    match (&spec.source, single) {
        (LoginSource::ApiKey(_), true) => "KIRO_API_KEY".into(),
        (LoginSource::RefreshToken(_), true) => "REFRESH_TOKEN".into(),
        (LoginSource::CredsFile(p), true) => format!("KIRO_CREDS_FILE {}", p.display()),
        (LoginSource::CliDb(p), true) => format!("KIRO_CLI_DB_FILE {}", p.display()),
        (LoginSource::ApiKey(_), false) => format!("account '{name}' (API key)"),
        (LoginSource::RefreshToken(_), false) => format!("account '{name}' (refresh token)"),
        (LoginSource::CredsFile(p), false) => {
            format!("account '{name}' (credentials file {})", p.display())
        }
        (LoginSource::CliDb(p), false) => {
            format!("account '{name}' (kiro-cli database {})", p.display())
        }
    }
}

impl TokenStore {
    /// Load the login configured by the single-account variables (see [`LoginSpec::from_config`]).
    /// Fields a creds file or database lacks keep the environment's values (`REFRESH_TOKEN`,
    /// `PROFILE_ARN`).
    pub fn from_config(config: &Config) -> Result<Arc<TokenStore>, Error> {
        let spec = LoginSpec::from_config(config)?;
        Self::build(spec, config, true)
    }

    /// Load one login. A missing or malformed creds file / database, a login without any token,
    /// or a refused profile ARN is an [`Error::Config`] naming the source.
    pub fn new(spec: LoginSpec, config: &Config) -> Result<Arc<TokenStore>, Error> {
        Self::build(spec, config, false)
    }

    fn build(spec: LoginSpec, config: &Config, single: bool) -> Result<Arc<TokenStore>, Error> {
        let label = describe_source(&spec, single);
        let in_context = |e: Error| match e {
            Error::Config(m) if single => {
                let var = match spec.source {
                    LoginSource::CliDb(_) => "KIRO_CLI_DB_FILE",
                    _ => "KIRO_CREDS_FILE",
                };
                Error::Config(format!("{var} {m}"))
            }
            Error::Config(m) => Error::Config(format!("account '{}': {m}", spec.name)),
            other => other,
        };
        let mut data = match &spec.source {
            LoginSource::ApiKey(key) => {
                if !key.starts_with("ksk_") {
                    return Err(Error::Config(format!(
                        "{label} is not valid: Kiro API keys start with 'ksk_'"
                    )));
                }
                LoginData {
                    access_token: Some(key.clone()),
                    ..LoginData::default()
                }
            }
            LoginSource::RefreshToken(t) => LoginData {
                refresh_token: Some(t.trim().to_string()).filter(|t| !t.is_empty()),
                ..LoginData::default()
            },
            LoginSource::CredsFile(p) => sources::load_json(p).map_err(in_context)?,
            LoginSource::CliDb(p) => sources::load_sqlite(p).map_err(in_context)?,
        };
        if single && data.refresh_token.is_none() {
            data.refresh_token = config.refresh_token.clone();
        }
        if !data.has_token() {
            return Err(Error::Config(format!(
                "{label} holds no refresh token or access token; log in again (Kiro IDE or 'kiro-cli login')"
            )));
        }
        let kind = match spec.source {
            LoginSource::ApiKey(_) => AuthKind::ApiKey,
            _ => sources::detect_kind(
                &data,
                spec.profile_arn.is_some() || data.profile_arn.is_some(),
            ),
        };
        let explicit_arn = match (&spec.profile_arn, kind) {
            (_, AuthKind::ApiKey) | (None, _) => None,
            (Some(arn), _) => {
                let what = if single {
                    "PROFILE_ARN".to_string()
                } else {
                    format!("profile_arn of account '{}'", spec.name)
                };
                check_profile_arn(arn, &what)?;
                Some(arn.clone())
            }
        };
        if kind == AuthKind::BuilderId && explicit_arn.is_none() {
            if let Some(arn) = &config.builder_id_profile_arn {
                check_profile_arn(arn, "KIRO_BUILDER_ID_PROFILE_ARN")?;
            }
        }
        let machine_id = machine_id_for(&spec, &data);
        let mut login_config = config.clone();
        if let Some(region) = spec.region.as_ref().filter(|r| !r.trim().is_empty()) {
            login_config.kiro_region = region.trim().to_string();
        }
        let agent = crate::net::agent(config, spec.proxy.as_deref())?;
        let state = State {
            seen: Seen::of(&data),
            login: data,
            lifetime_ms: None,
            refreshed_arn: None,
            lap: Lap::NotTried,
            refresh_count: 0,
            attempts: 0,
            last_error: None,
            last_failure_ms: None,
            failed_refresh: None,
            timer_failures: 0,
            jitter_ms: jitter_ms(config),
        };
        let store = TokenStore {
            name: spec.name.clone(),
            kind,
            source: spec.source,
            label,
            machine_id,
            explicit_arn,
            config: login_config,
            agent,
            state: Mutex::new(state),
            gate: Mutex::new(()),
            timer_started: AtomicBool::new(false),
        };
        {
            // A placeholder ARN in the file stops start-up, not the first request.
            let st = store.lock_state();
            store.resolve_arn(&st)?;
        }
        log::info!(
            "auth[{}]: {} login from {}",
            store.name,
            store.kind,
            store.label
        );
        Ok(Arc::new(store))
    }

    /// The account's name (for logs and `/health`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kind of login, as detected from its data.
    pub fn kind(&self) -> AuthKind {
        self.kind
    }

    /// Where the login came from, e.g. `KIRO_CREDS_FILE /home/me/.aws/sso/cache/kiro-auth-token.json`.
    pub fn source_label(&self) -> &str {
        &self.label
    }

    /// The 64-hex machine id of this login.
    pub fn machine_id(&self) -> &str {
        &self.machine_id
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Refresh threshold for the current token: `TOKEN_REFRESH_THRESHOLD`, but never more than
    /// half of a lifetime we were granted, so a short-lived token is not refreshed on every call.
    fn threshold_ms(&self, st: &State) -> i64 {
        let t = self.config.token_refresh_threshold.as_millis() as i64;
        match st.lifetime_ms {
            Some(l) if l > 0 => t.min(l / 2),
            _ => t,
        }
    }

    /// An access token that does not expire within the threshold.
    fn is_fresh(&self, st: &State, now: i64) -> bool {
        self.kind == AuthKind::ApiKey
            || (st.login.access_token.is_some()
                && st
                    .login
                    .expires_at_ms
                    .is_some_and(|e| e > now + self.threshold_ms(st)))
    }

    /// An access token that has not expired yet (no expiry known counts as expired).
    fn is_valid(&self, st: &State, now: i64) -> bool {
        self.kind == AuthKind::ApiKey
            || (st.login.access_token.is_some() && st.login.expires_at_ms.is_some_and(|e| now < e))
    }

    /// Valid credentials, refreshing first if the token expires within the threshold.
    ///
    /// If that refresh fails while the current token is still valid, the current token is
    /// returned (with a warning in the log). A refused refresh token (HTTP 400/401) is an
    /// [`Error::AuthFailed`] naming the source; an unreachable auth server an [`Error::Network`].
    pub fn credentials(&self) -> Result<Credentials, Error> {
        if self.kind != AuthKind::ApiKey {
            let seen = {
                let st = self.lock_state();
                (!self.is_fresh(&st, now_ms())).then_some(st.attempts)
            };
            if let Some(seen) = seen {
                self.refresh_for_request(seen)?;
            }
            self.ensure_profile_arn();
        }
        let st = self.lock_state();
        self.build_credentials(&st)
    }

    /// Kiro said 403 for `failed_token`: refresh unless another thread already did.
    pub fn force_refresh(&self, failed_token: &str) -> Result<Credentials, Error> {
        if self.kind != AuthKind::ApiKey {
            let _gate = lock(&self.gate);
            let unchanged = |st: &State| {
                st.login
                    .access_token
                    .as_deref()
                    .is_none_or(|t| t == failed_token)
            };
            if unchanged(&self.lock_state()) {
                // kiro-cli or the IDE may hold a newer token already.
                self.reload_source();
                if unchanged(&self.lock_state()) {
                    self.refresh_now()?;
                }
            }
        }
        self.credentials()
    }

    /// Start the proactive refresh timer thread (once per store; API keys need none). The thread
    /// holds only a weak reference and ends when the store is dropped.
    pub fn start_timer(self: &Arc<Self>) {
        if self.kind == AuthKind::ApiKey || self.timer_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name(format!("auth-timer-{}", self.name))
            .spawn(move || {
                while let Some(store) = weak.upgrade() {
                    let wait = store.timer_tick();
                    drop(store);
                    std::thread::sleep(wait);
                }
            });
        if let Err(e) = spawned {
            log::error!("auth[{}]: cannot start the refresh timer: {e}", self.name);
            self.timer_started.store(false, Ordering::SeqCst);
        }
    }

    /// One step of the timer: refresh when the token is due (threshold plus a little jitter
    /// before expiry) or a retry is due, and return how long to sleep. A failure keeps the old
    /// token and retries with backoff, never more than [`MAX_RETRY_WAIT`] apart.
    pub fn timer_tick(&self) -> Duration {
        if self.kind == AuthKind::ApiKey {
            return MAX_TIMER_SLEEP;
        }
        let wait_ms = {
            let st = self.lock_state();
            self.timer_due_at(&st).saturating_sub(now_ms())
        };
        if wait_ms > 0 {
            return Duration::from_millis(wait_ms as u64).min(MAX_TIMER_SLEEP);
        }
        let result = self.refresh_proactively();
        let mut st = self.lock_state();
        match result {
            Ok(()) => {
                st.timer_failures = 0;
                Duration::from_secs(1)
            }
            Err(e) => {
                st.timer_failures = st.timer_failures.saturating_add(1);
                let wait = backoff(st.timer_failures);
                log::warn!(
                    "auth[{}]: proactive token refresh failed: {e}; retrying in {} s",
                    self.name,
                    wait.as_secs()
                );
                wait
            }
        }
    }

    /// The login's secrets as they are now (access and refresh token, client secret, API key),
    /// for redaction from debug logs. Never log or send these.
    pub fn secrets(&self) -> Vec<String> {
        let st = self.lock_state();
        let login = &st.login;
        let mut out: Vec<String> = [
            &login.access_token,
            &login.refresh_token,
            &login.client_secret,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        if let LoginSource::RefreshToken(t) | LoginSource::ApiKey(t) = &self.source {
            out.push(t.clone());
        }
        out
    }

    /// State for `/health`, without secrets: name, kind, source, state ("valid", "expiring",
    /// "expired", "refresh_failed"), expires_in (seconds), refresh_count, last_error.
    pub fn status(&self) -> serde_json::Value {
        let st = self.lock_state();
        let now = now_ms();
        let state = if st.last_error.is_some() {
            "refresh_failed"
        } else if !self.is_valid(&st, now) {
            "expired"
        } else if !self.is_fresh(&st, now) {
            "expiring"
        } else {
            "valid"
        };
        let expires_in = match self.kind {
            AuthKind::ApiKey => None,
            _ => st.login.expires_at_ms.map(|e| (e - now).div_euclid(1000)),
        };
        serde_json::json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "source": self.source.kind_name(),
            "state": state,
            "expires_in": expires_in,
            "refresh_count": st.refresh_count,
            "last_error": st.last_error.as_ref().map(|e| e.to_string()),
        })
    }

    fn build_credentials(&self, st: &State) -> Result<Credentials, Error> {
        let access_token = st
            .login
            .access_token
            .clone()
            .ok_or_else(|| Error::AuthFailed {
                source: self.label.clone(),
                message: "no access token is available".into(),
            })?;
        let profile_arn = self.resolve_arn(st)?;
        Ok(Credentials {
            access_token,
            kind: self.kind,
            api_region: self.config.api_region(profile_arn.as_deref()),
            profile_arn,
            machine_id: self.machine_id.clone(),
        })
    }

    /// The profileArn this login sends (`docs/kiro-wire.md#profile-arn`): explicit → the login's own →
    /// the desktop refresh response (social) → List-Available-Profiles (IdC, external IdP).
    /// API keys never send one; Builder ID only `KIRO_BUILDER_ID_PROFILE_ARN`.
    fn resolve_arn(&self, st: &State) -> Result<Option<String>, Error> {
        if self.kind == AuthKind::ApiKey {
            return Ok(None);
        }
        if let Some(arn) = &self.explicit_arn {
            return Ok(Some(arn.clone()));
        }
        let own = |arn: &String| {
            check_profile_arn(
                arn,
                &format!(
                    "the profile ARN in {} (set PROFILE_ARN to override it)",
                    self.label
                ),
            )
            .map(|()| Some(arn.clone()))
        };
        match self.kind {
            AuthKind::ApiKey => Ok(None),
            AuthKind::BuilderId => Ok(self.config.builder_id_profile_arn.clone()),
            AuthKind::Social => {
                if let Some(arn) = &st.login.profile_arn {
                    return own(arn);
                }
                match &st.refreshed_arn {
                    Some(arn) => check_profile_arn(
                        arn,
                        "the profileArn of the Kiro refresh response (set PROFILE_ARN to override it)",
                    )
                    .map(|()| Some(arn.clone())),
                    None => Ok(None),
                }
            }
            AuthKind::IdentityCenter | AuthKind::ExternalIdp => {
                if let Some(arn) = &st.login.profile_arn {
                    return own(arn);
                }
                match &st.lap {
                    Lap::Found(arn) => Ok(Some(arn.clone())),
                    Lap::Invalid(e) => Err(e.clone()),
                    Lap::NotTried | Lap::NotFound | Lap::Failed => Ok(None),
                }
            }
        }
    }

    /// IdC and external IdP logins without an ARN of their own ask List-Available-Profiles once.
    fn ensure_profile_arn(&self) {
        if !matches!(self.kind, AuthKind::IdentityCenter | AuthKind::ExternalIdp)
            || self.explicit_arn.is_some()
        {
            return;
        }
        let needed = |st: &State| st.login.profile_arn.is_none() && matches!(st.lap, Lap::NotTried);
        if !needed(&self.lock_state()) {
            return;
        }
        let _gate = lock(&self.gate);
        let token = {
            let st = self.lock_state();
            if !needed(&st) {
                return;
            }
            match &st.login.access_token {
                Some(t) => t.clone(),
                None => return,
            }
        };
        let base = self.config.management_base(&self.config.api_region(None));
        let result = refresh::list_available_profiles(
            &self.agent,
            &base,
            &token,
            self.kind == AuthKind::ExternalIdp,
        );
        let lap = match result {
            Ok(Some(arn)) => match check_profile_arn(
                &arn,
                "the profile ARN from List-Available-Profiles (set PROFILE_ARN to override it)",
            ) {
                Ok(()) => {
                    log::info!(
                        "auth[{}]: profile ARN {arn} from List-Available-Profiles",
                        self.name
                    );
                    Lap::Found(arn)
                }
                Err(e) => Lap::Invalid(e),
            },
            Ok(None) => {
                log::warn!(
                    "auth[{}]: List-Available-Profiles returned no profile; set PROFILE_ARN if Kiro asks for one",
                    self.name
                );
                Lap::NotFound
            }
            Err(e) => {
                log::warn!("auth[{}]: List-Available-Profiles failed: {e}", self.name);
                Lap::Failed
            }
        };
        self.lock_state().lap = lap;
    }

    fn refresh_for_request(&self, seen_attempts: u64) -> Result<(), Error> {
        let _gate = lock(&self.gate);
        {
            let st = self.lock_state();
            let now = now_ms();
            if self.is_fresh(&st, now) {
                return Ok(());
            }
            let valid = self.is_valid(&st, now);
            // An attempt finished while this caller waited for the gate: share its outcome.
            if st.attempts != seen_attempts {
                match &st.last_error {
                    _ if valid => return Ok(()),
                    Some(e) => return Err(e.clone()),
                    None => {}
                }
            }
            // The timer retries failures; a request does not wait for another attempt while the
            // token still works.
            if valid
                && st
                    .last_failure_ms
                    .is_some_and(|t| now - t < MAX_RETRY_WAIT.as_millis() as i64)
            {
                return Ok(());
            }
        }
        self.reload_source();
        {
            let st = self.lock_state();
            let now = now_ms();
            if self.is_fresh(&st, now) {
                return Ok(());
            }
            if let Some(e) = self.recent_failure(&st, now) {
                if !self.is_valid(&st, now) {
                    return Err(e);
                }
            }
        }
        match self.refresh_now() {
            Ok(()) => Ok(()),
            Err(e) => {
                let st = self.lock_state();
                if self.is_valid(&st, now_ms()) {
                    log::warn!(
                        "auth[{}]: token refresh failed ({e}); using the current token until it expires",
                        self.name
                    );
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The last error, if the same refresh token failed so recently that trying again now is
    /// pointless: 2 s for any failure, [`MAX_RETRY_WAIT`] for a refused token.
    fn recent_failure(&self, st: &State, now: i64) -> Option<Error> {
        let e = st.last_error.as_ref()?;
        let at = st.last_failure_ms?;
        let same_token = st.failed_refresh == st.login.refresh_token.as_deref().map(hash);
        let window = if is_refusal(e) {
            MAX_RETRY_WAIT.as_millis() as i64
        } else {
            FAILURE_REUSE_MS
        };
        (same_token && now - at < window).then(|| e.clone())
    }

    fn token_due_at(&self, st: &State) -> i64 {
        match (&st.login.access_token, st.login.expires_at_ms) {
            (Some(_), Some(exp)) => exp - self.threshold_ms(st) - st.jitter_ms,
            _ => i64::MIN,
        }
    }

    fn timer_due_at(&self, st: &State) -> i64 {
        let retry_due = match (st.timer_failures, st.last_failure_ms) {
            (n, Some(at)) if n > 0 => at + backoff(n).as_millis() as i64,
            _ => i64::MIN,
        };
        self.token_due_at(st).max(retry_due)
    }

    fn refresh_proactively(&self) -> Result<(), Error> {
        let _gate = lock(&self.gate);
        if self.token_due_at(&self.lock_state()) > now_ms() {
            return Ok(()); // a request refreshed it meanwhile
        }
        self.reload_source();
        if self.token_due_at(&self.lock_state()) > now_ms() {
            return Ok(());
        }
        self.refresh_now()
    }

    /// Refresh over HTTP; the caller holds the gate. After a refusal, a file source is re-read
    /// once: another client may have rotated the refresh token meanwhile.
    fn refresh_now(&self) -> Result<(), Error> {
        let (used, used_access) = {
            let st = self.lock_state();
            (
                st.login.refresh_token.as_deref().map(hash),
                st.login.access_token.clone(),
            )
        };
        let mut result = self.attempt_refresh();
        if matches!(&result, Err(e) if is_refusal(e))
            && matches!(
                self.source,
                LoginSource::CredsFile(_) | LoginSource::CliDb(_)
            )
        {
            self.reload_source();
            let (fresh, now_token) = {
                let st = self.lock_state();
                (
                    // Only a token another client stored counts: the one we had may be fresh by
                    // the clock yet refused by Kiro (the 403 that made us refresh).
                    self.is_fresh(&st, now_ms()) && st.login.access_token != used_access,
                    st.login.refresh_token.as_deref().map(hash),
                )
            };
            if fresh {
                result = Ok(());
            } else if now_token != used {
                result = self.attempt_refresh();
            }
        }
        let result = result.map_err(|e| match e {
            Error::Upstream {
                status: 400 | 401,
                message,
                ..
            } => Error::AuthFailed {
                source: self.label.clone(),
                message,
            },
            other => other,
        });
        crate::metrics::global().token_refresh(&self.name, result.is_ok());
        let mut st = self.lock_state();
        st.attempts += 1;
        match &result {
            Ok(()) => {
                st.last_error = None;
                st.last_failure_ms = None;
                st.failed_refresh = None;
            }
            Err(e) => {
                log::warn!("auth[{}]: token refresh failed: {e}", self.name);
                st.last_error = Some(e.clone());
                st.last_failure_ms = Some(now_ms());
                st.failed_refresh = st.login.refresh_token.as_deref().map(hash);
            }
        }
        result
    }

    /// One HTTP refresh the way this kind of login needs it; applies and persists the result.
    fn attempt_refresh(&self) -> Result<(), Error> {
        let login = self.lock_state().login.clone();
        let unusable = |message: &str| Error::AuthFailed {
            source: self.label.clone(),
            message: message.into(),
        };
        let Some(refresh_token) = login.refresh_token.as_deref() else {
            return Err(unusable(
                "there is no refresh token to renew the login with",
            ));
        };
        // The login's own region (SSO region of OIDC logins) for the auth endpoints; never the
        // inference region.
        let auth_region = login
            .region
            .clone()
            .unwrap_or_else(|| self.config.kiro_region.clone());
        let refreshed = match self.kind {
            AuthKind::ApiKey => return Ok(()),
            AuthKind::Social => refresh::refresh_desktop(
                &self.agent,
                &refresh::desktop_url(&self.config, &auth_region),
                refresh_token,
                &format!("KiroIDE-{}-{}", self.config.ide_version, self.machine_id),
            ),
            AuthKind::BuilderId | AuthKind::IdentityCenter => {
                let (Some(id), Some(secret)) = (&login.client_id, &login.client_secret) else {
                    return Err(unusable("the OIDC login has no client id and secret"));
                };
                refresh::refresh_oidc(
                    &self.agent,
                    &refresh::oidc_url(&self.config, &auth_region),
                    id,
                    secret,
                    refresh_token,
                )
            }
            AuthKind::ExternalIdp => {
                let (Some(endpoint), Some(client_id)) = (&login.token_endpoint, &login.client_id)
                else {
                    return Err(unusable(
                        "the external identity provider login has no token endpoint or client id",
                    ));
                };
                refresh::refresh_external_idp(&self.agent, endpoint, client_id, refresh_token)
            }
        }?;
        self.apply(refreshed);
        Ok(())
    }

    fn apply(&self, r: Refreshed) {
        let granted = (r.expires_in.min(i64::MAX as u64 / 1000) as i64) * 1000;
        let lifetime = if granted > 2 * SAFETY_MARGIN_MS {
            granted - SAFETY_MARGIN_MS
        } else {
            granted / 2
        };
        let expires_at = now_ms() + lifetime;
        let db_key = {
            let mut st = self.lock_state();
            st.login.access_token = Some(r.access_token.clone());
            if let Some(rt) = &r.refresh_token {
                st.login.refresh_token = Some(rt.clone());
            }
            st.login.expires_at_ms = Some(expires_at);
            st.lifetime_ms = Some(lifetime);
            if self.kind == AuthKind::Social && r.profile_arn.is_some() {
                st.refreshed_arn = r.profile_arn.clone();
            }
            st.refresh_count += 1;
            st.jitter_ms = jitter_ms(&self.config);
            if matches!(st.lap, Lap::Failed) {
                st.lap = Lap::NotTried;
            }
            st.login.db_key.clone()
        };
        log::info!(
            "auth[{}]: token refreshed, valid for {} s",
            self.name,
            lifetime / 1000
        );
        let update = TokenUpdate {
            access_token: &r.access_token,
            refresh_token: r.refresh_token.as_deref(),
            expires_at_ms: expires_at,
            profile_arn: match self.kind {
                AuthKind::Social => r.profile_arn.as_deref(),
                _ => None,
            },
        };
        let written = match &self.source {
            LoginSource::CredsFile(p) => sources::write_json(p, &update).map(|()| true),
            LoginSource::CliDb(_) if self.config.sqlite_readonly => Ok(false),
            LoginSource::CliDb(p) => match &db_key {
                Some(key) => sources::write_sqlite(p, key, &update).inspect(|written| {
                    if !written {
                        log::warn!(
                            "auth[{}]: row {key} is gone from {}; refreshed token kept in memory only",
                            self.name,
                            p.display()
                        );
                    }
                }),
                None => Ok(false),
            },
            LoginSource::RefreshToken(_) | LoginSource::ApiKey(_) => Ok(false),
        };
        match written {
            Ok(true) => {
                let mut st = self.lock_state();
                st.seen = Seen::of(&st.login);
            }
            Ok(false) => {}
            Err(e) => log::warn!(
                "auth[{}]: could not write the refreshed token back: {e}",
                self.name
            ),
        }
    }

    /// Re-read a file source and adopt what another client (kiro-cli, the IDE) changed since we
    /// last read it: a rotated refresh token, a newer access token, profile and client facts.
    fn reload_source(&self) {
        let fresh = match &self.source {
            LoginSource::CredsFile(p) => sources::load_json(p),
            LoginSource::CliDb(p) => sources::load_sqlite(p),
            LoginSource::RefreshToken(_) | LoginSource::ApiKey(_) => return,
        };
        let fresh = match fresh {
            Ok(d) => d,
            Err(e) => {
                log::warn!("auth[{}]: could not re-read the login: {e}", self.name);
                return;
            }
        };
        let mut st = self.lock_state();
        if fresh.db_key != st.login.db_key {
            log::warn!(
                "auth[{}]: {} now holds a different kind of login ({}); restart the gateway to use it",
                self.name,
                self.label,
                fresh.db_key.as_deref().unwrap_or("?")
            );
            return;
        }
        let seen = Seen::of(&fresh);
        if fresh.refresh_token.is_some() && seen.refresh != st.seen.refresh {
            log::info!(
                "auth[{}]: adopting the refresh token another client stored in {}",
                self.name,
                self.label
            );
            st.login.refresh_token = fresh.refresh_token.clone();
        }
        let newer = fresh.expires_at_ms.unwrap_or(i64::MIN)
            > st.login.expires_at_ms.unwrap_or(i64::MIN)
            || st.login.access_token.is_none();
        if fresh.access_token.is_some() && seen.access != st.seen.access && newer {
            log::info!(
                "auth[{}]: adopting the newer access token another client stored in {}",
                self.name,
                self.label
            );
            st.login.access_token = fresh.access_token.clone();
            st.login.expires_at_ms = fresh.expires_at_ms;
            st.lifetime_ms = None;
        }
        let login = &mut st.login;
        for (slot, value) in [
            (&mut login.profile_arn, fresh.profile_arn),
            (&mut login.client_id, fresh.client_id),
            (&mut login.client_secret, fresh.client_secret),
            (&mut login.token_endpoint, fresh.token_endpoint),
            (&mut login.region, fresh.region),
        ] {
            if value.is_some() {
                *slot = value;
            }
        }
        st.seen = seen;
    }
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
    use super::*;
    use crate::util::IsoStyle;

    const SOCIAL_ARN: &str = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK";
    const IDC_ARN: &str = "arn:aws:codewhisperer:eu-central-1:123456789012:profile/IDCPROFILE";
    const OTHER_ARN: &str = "arn:aws:codewhisperer:us-east-1:210987654321:profile/EXPLICIT";

    fn cfg(stub: &Stub) -> Config {
        let mut c = Config::defaults();
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

    fn file_config(stub: &Stub, path: &std::path::Path) -> Config {
        let mut c = cfg(stub);
        c.creds_file = Some(path.to_path_buf());
        c
    }

    #[test]
    fn no_credentials_names_every_variable_to_set() {
        let e = TokenStore::from_config(&Config::defaults()).unwrap_err();
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
        let mut c = Config::defaults();
        c.creds_file = Some(dir.0.join("absent.json"));
        let e = TokenStore::from_config(&c).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(e.to_string().contains("KIRO_CREDS_FILE"), "{e}");
        assert!(e.to_string().contains("absent.json"), "{e}");

        c.creds_file = Some(dir.file("broken.json", "{\"refreshToken\": "));
        let e = TokenStore::from_config(&c).unwrap_err();
        assert!(e.to_string().contains("broken.json"), "{e}");

        c.creds_file = Some(dir.file("empty.json", "{\"region\":\"us-east-1\"}"));
        let e = TokenStore::from_config(&c).unwrap_err();
        assert!(e.to_string().contains("empty.json"), "{e}");

        c.creds_file = None;
        c.cli_db_file = Some(dir.0.join("absent.sqlite3"));
        let e = TokenStore::from_config(&c).unwrap_err();
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
        let store = TokenStore::from_config(&c).unwrap();
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
        assert!(matches!(TokenStore::new(bad, &c), Err(Error::Config(_))));
    }

    #[test]
    fn env_refresh_token_refreshes_on_first_use_with_the_desktop_shape() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at-1","refreshToken":"rt-2","expiresIn":3600,"profileArn":"arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"}"#,
        ));
        let mut c = cfg(&stub);
        c.refresh_token = Some("rt-1".into());
        let store = TokenStore::from_config(&c).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let mut c = Config::defaults();
        c.desktop_auth_url = Some(format!("http://127.0.0.1:{port}/refreshToken"));
        c.refresh_token = Some("rt".into());
        let store = TokenStore::from_config(&c).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&c).unwrap();
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
        let store = TokenStore::from_config(&c).unwrap();
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
        let store = TokenStore::from_config(&c).unwrap();
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
        let store = TokenStore::from_config(&c).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&c).unwrap();
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
        c.vpn_proxy_url = Some(stub.url.clone());
        let store = TokenStore::from_config(&c).unwrap();
        assert_eq!(store.kind(), AuthKind::BuilderId);
        assert!(store.credentials().is_err());
        let connect = &stub.requests()[0];
        assert_eq!(connect.method, "CONNECT");
        assert_eq!(connect.path, "oidc.eu-west-1.amazonaws.com:443");

        c.vpn_proxy_url = None;
        let mut c2 = c.clone();
        c2.sso_oidc_url = Some(format!("{}/token", stub.url));
        let store = TokenStore::from_config(&c2).unwrap();
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
        let store = TokenStore::from_config(&c3).unwrap();
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
        let creds = TokenStore::from_config(&c).unwrap().credentials().unwrap();
        assert_eq!(creds.profile_arn.as_deref(), Some(OTHER_ARN));

        c.profile_arn = None;
        let creds = TokenStore::from_config(&c).unwrap().credentials().unwrap();
        assert_eq!(creds.profile_arn.as_deref(), Some(own));
        assert_eq!(creds.api_region, "eu-central-1");

        let q = dir.file(
            "noarn.json",
            &format!(r#"{{"refreshToken":"rt","expiresAt":"{}"}}"#, iso_in(-5)),
        );
        let creds = TokenStore::from_config(&file_config(&stub, &q))
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
        let mut c = Config::defaults();
        c.creds_file = Some(p.clone());
        let e = TokenStore::from_config(&c).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(e.to_string().contains("PROFILE_ARN"), "{e}");
        assert!(e.to_string().contains("t.json"), "{e}");
        // An explicit PROFILE_ARN overrides the file's bad one.
        c.profile_arn = Some(OTHER_ARN.into());
        assert!(TokenStore::from_config(&c).is_ok());
    }

    #[test]
    fn refresh_response_with_placeholder_arn_is_refused() {
        let stub = Stub::start(desktop_ok(
            r#"{"accessToken":"at","expiresIn":3600,"profileArn":"arn:aws:codewhisperer:us-east-1:..."}"#,
        ));
        let mut c = cfg(&stub);
        c.refresh_token = Some("rt".into());
        let e = TokenStore::from_config(&c)
            .unwrap()
            .credentials()
            .unwrap_err();
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
        let store = TokenStore::from_config(&c).unwrap();
        assert_eq!(store.status()["source"], "kiro_cli_db");
        assert_eq!(store.credentials().unwrap().access_token, "at-old");

        // The file lacks refreshToken: REFRESH_TOKEN from the environment is used for it.
        c.cli_db_file = None;
        let store = TokenStore::from_config(&c).unwrap();
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
        let a = TokenStore::from_config(&c).unwrap();
        let before = a.machine_id().to_string();
        assert_eq!(before.len(), 64);
        assert!(before.chars().all(|ch| ch.is_ascii_hexdigit()));
        a.credentials().unwrap(); // rotates the refresh token in the file
        let b = TokenStore::from_config(&c).unwrap();
        assert_eq!(
            b.machine_id(),
            before,
            "same login after a restart and a rotation"
        );
        assert_eq!(a.credentials().unwrap().machine_id, before);

        let dir2 = TempDir::new("mid2");
        let other = ide_file(&dir2, "at", "rt", &iso_in(-5));
        assert_ne!(
            TokenStore::from_config(&file_config(&stub, &other))
                .unwrap()
                .machine_id(),
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
        let s = TokenStore::new(spec, &c).unwrap();
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
        let store = TokenStore::new(spec, &c).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &later)).unwrap();
        // Not due yet: sleeps, at most a minute at a time.
        let wait = store.timer_tick();
        assert!(wait > Duration::ZERO && wait <= MAX_TIMER_SLEEP, "{wait:?}");
        assert!(stub.requests().is_empty());

        let p = ide_file(&dir, "at-2", "rt", &iso_in(300));
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
        let store = TokenStore::from_config(&c).unwrap();
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
        let spec = LoginSpec::from_config(&c).unwrap();
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
            let store = TokenStore::from_config(&file_config(&stub, &p)).unwrap();
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
