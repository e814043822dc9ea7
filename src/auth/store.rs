//! The token cache of one login: what it holds, the credentials a Kiro call gets from it, and
//! its `/health` view. Refreshing is in `renewal`, the timer in `timer`, the profile ARN in
//! `profile`; all of them share this state under one mutex, and one gate for network calls.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use super::login::{self, LoginSource, LoginSpec};
use super::profile::Lap;
use super::sources::LoginData;
use super::timer::jitter_ms;
use super::{hash, lock, now_ms, AuthKind, Credentials};
use crate::config::AuthSettings;
use crate::error::Error;

/// SHA-256 of the token fields as last read from the source, to tell "another client changed the
/// file" from "the file still holds what we replaced".
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Seen {
    pub access: Option<String>,
    pub refresh: Option<String>,
}

impl Seen {
    pub(super) fn of(d: &LoginData) -> Seen {
        Seen {
            access: d.access_token.as_deref().map(hash),
            refresh: d.refresh_token.as_deref().map(hash),
        }
    }
}

pub(super) struct State {
    pub login: LoginData,
    pub seen: Seen,
    /// Lifetime of the current token when we refreshed it ourselves (ms).
    pub lifetime_ms: Option<i64>,
    /// Social: the ARN of the last desktop refresh response.
    pub refreshed_arn: Option<String>,
    pub lap: Lap,
    pub refresh_count: u64,
    /// Finished refresh attempts; lets callers that waited for one share its outcome.
    pub attempts: u64,
    pub last_error: Option<Error>,
    pub last_failure_ms: Option<i64>,
    /// Hash of the refresh token the last failed attempt used.
    pub failed_refresh: Option<String>,
    pub timer_failures: u32,
    pub jitter_ms: i64,
    /// Times tokens another client stored in the source were adopted.
    pub adopted: u64,
}

/// Where a login stood at one moment, to tell later whether someone logged in again
/// ([`TokenStore::login_changed_since`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LoginMark {
    adopted: u64,
}

/// The token cache of one login.
pub struct TokenStore {
    pub(super) name: String,
    pub(super) kind: AuthKind,
    pub(super) source: LoginSource,
    /// Where the login came from, for error messages ("KIRO_CREDS_FILE /path").
    pub(super) label: String,
    pub(super) machine_id: String,
    pub(super) explicit_arn: Option<String>,
    /// Shared by every login; what differs per login is below.
    pub(super) settings: Arc<AuthSettings>,
    /// The login's region (its `region`, else `KIRO_REGION`): auth endpoints, inference mapping.
    pub(super) region: String,
    pub(super) agent: ureq::Agent,
    pub(super) state: Mutex<State>,
    /// Held for the whole of a refresh (and the profile lookup): one HTTP refresh at a time.
    pub(super) gate: Mutex<()>,
    pub(super) timer_started: AtomicBool,
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

impl TokenStore {
    /// Load the login configured by the single-account variables (see [`LoginSpec::single`]).
    /// Fields a creds file or database lacks keep the environment's values (`REFRESH_TOKEN`,
    /// `PROFILE_ARN`).
    pub fn single(settings: &Arc<AuthSettings>) -> Result<Arc<TokenStore>, Error> {
        let spec = LoginSpec::single(settings)?;
        Self::open(spec, settings, true)
    }

    /// Load one login. A missing or malformed creds file / database, a login without any token,
    /// or a refused profile ARN is an [`Error::Config`] naming the source.
    pub fn new(spec: LoginSpec, settings: &Arc<AuthSettings>) -> Result<Arc<TokenStore>, Error> {
        Self::open(spec, settings, false)
    }

    fn open(
        spec: LoginSpec,
        settings: &Arc<AuthSettings>,
        single: bool,
    ) -> Result<Arc<TokenStore>, Error> {
        let loaded = login::load(&spec, settings, single)?;
        let region = match spec.region.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => settings.kiro_region.clone(),
        };
        let agent = crate::net::agent(&settings.net, spec.proxy.as_deref())?;
        let state = State {
            seen: Seen::of(&loaded.data),
            login: loaded.data,
            lifetime_ms: None,
            refreshed_arn: None,
            lap: Lap::NotTried,
            refresh_count: 0,
            attempts: 0,
            last_error: None,
            last_failure_ms: None,
            failed_refresh: None,
            timer_failures: 0,
            jitter_ms: jitter_ms(settings.token_refresh_threshold),
            adopted: 0,
        };
        let store = TokenStore {
            name: spec.name,
            kind: loaded.kind,
            source: spec.source,
            label: loaded.label,
            machine_id: loaded.machine_id,
            explicit_arn: loaded.explicit_arn,
            settings: settings.clone(),
            region,
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

    pub(super) fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Refresh threshold for the current token: `TOKEN_REFRESH_THRESHOLD`, but never more than
    /// half of a lifetime we were granted, so a short-lived token is not refreshed on every call.
    pub(super) fn threshold_ms(&self, st: &State) -> i64 {
        let t = self.settings.token_refresh_threshold.as_millis() as i64;
        match st.lifetime_ms {
            Some(l) if l > 0 => t.min(l / 2),
            _ => t,
        }
    }

    /// An access token that does not expire within the threshold.
    pub(super) fn is_fresh(&self, st: &State, now: i64) -> bool {
        self.kind == AuthKind::ApiKey
            || (st.login.access_token.is_some()
                && st
                    .login
                    .expires_at_ms
                    .is_some_and(|e| e > now + self.threshold_ms(st)))
    }

    /// An access token that has not expired yet (no expiry known counts as expired).
    pub(super) fn is_valid(&self, st: &State, now: i64) -> bool {
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

    /// Where the login stands now.
    pub fn login_mark(&self) -> LoginMark {
        LoginMark {
            adopted: self.lock_state().adopted,
        }
    }

    /// Whether another client (the Kiro IDE, kiro-cli, the user) changed the login since `mark`:
    /// the file or database now holds tokens this gateway neither read nor wrote, or it adopted
    /// such tokens meanwhile. Our own refreshes do not count. A login from the environment (a
    /// refresh token or an API key) only changes with a restart.
    pub fn login_changed_since(&self, mark: &LoginMark) -> bool {
        // A refresh in progress writes the file before it updates what we compare with; ask
        // again later rather than mistake our own write for a new login.
        let Ok(_gate) = self.gate.try_lock() else {
            return false;
        };
        let fresh = match &self.source {
            LoginSource::CredsFile(p) => super::sources::load_json(p),
            LoginSource::CliDb(p) => super::sources::load_sqlite(p),
            LoginSource::RefreshToken(_) | LoginSource::ApiKey(_) => return false,
        };
        let Ok(fresh) = fresh else {
            return false;
        };
        let st = self.lock_state();
        st.adopted != mark.adopted || Seen::of(&fresh) != st.seen
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
            api_region: self
                .settings
                .api_region(&self.region, profile_arn.as_deref()),
            profile_arn,
            machine_id: self.machine_id.clone(),
        })
    }
}
