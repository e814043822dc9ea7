//! Renewing a login's token: one HTTP refresh at a time (the gate), callers that waited share the
//! outcome, a refused token is not hammered, what another client (kiro-cli, the IDE) stored in the
//! source is adopted, and every new token is written back where it came from.

use super::profile::Lap;
use super::refresh::{self, Refreshed};
use super::sources::{self, TokenUpdate};
use super::store::{Seen, State, TokenStore};
use super::timer::{jitter_ms, MAX_RETRY_WAIT};
use super::{hash, lock, now_ms, AuthKind, LoginSource};
use crate::error::Error;

/// Safety margin taken off every granted lifetime: stored expiry = now + expiresIn − 60 s.
const SAFETY_MARGIN_MS: i64 = 60_000;

/// A failed attempt that finished this recently is reported to the next caller as is, instead of
/// hitting an unreachable auth server once per queued request.
const FAILURE_REUSE_MS: i64 = 2_000;

fn is_refusal(e: &Error) -> bool {
    matches!(
        e,
        Error::Upstream {
            status: 400 | 401,
            ..
        } | Error::AuthFailed { .. }
    )
}

impl TokenStore {
    pub(super) fn refresh_for_request(&self, seen_attempts: u64) -> Result<(), Error> {
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

    /// Refresh over HTTP; the caller holds the gate. After a refusal, a file source is re-read
    /// once: another client may have rotated the refresh token meanwhile.
    pub(super) fn refresh_now(&self) -> Result<(), Error> {
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
        let auth_region = login.region.clone().unwrap_or_else(|| self.region.clone());
        let refreshed = match self.kind {
            AuthKind::ApiKey => return Ok(()),
            AuthKind::Social => refresh::refresh_desktop(
                &self.agent,
                &refresh::desktop_url(&self.settings, &auth_region),
                refresh_token,
                &format!("KiroIDE-{}-{}", self.settings.ide_version, self.machine_id),
            ),
            AuthKind::BuilderId | AuthKind::IdentityCenter => {
                let (Some(id), Some(secret)) = (&login.client_id, &login.client_secret) else {
                    return Err(unusable("the OIDC login has no client id and secret"));
                };
                refresh::refresh_oidc(
                    &self.agent,
                    &refresh::oidc_url(&self.settings, &auth_region),
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

    /// Take a refresh's result: written back to the source first, then published to callers, so
    /// nobody uses a token that a gateway stopped a moment later would not have kept. The cache
    /// stays locked from before the write until the publish: the timer refreshes a little before
    /// the token leaves the threshold, and a request in that gap would otherwise be handed the
    /// replaced token although the source already holds the new one. Callers wait for one local
    /// write (a busy kiro-cli database at most its busy timeout) once per token lifetime.
    fn apply(&self, r: Refreshed) {
        let granted = (r.expires_in.min(i64::MAX as u64 / 1000) as i64) * 1000;
        let lifetime = if granted > 2 * SAFETY_MARGIN_MS {
            granted - SAFETY_MARGIN_MS
        } else {
            granted / 2
        };
        let expires_at = now_ms() + lifetime;
        let update = TokenUpdate {
            access_token: &r.access_token,
            refresh_token: r.refresh_token.as_deref(),
            expires_at_ms: expires_at,
            profile_arn: match self.kind {
                AuthKind::Social => r.profile_arn.as_deref(),
                _ => None,
            },
        };
        let mut st = self.lock_state();
        let db_key = st.login.db_key.clone();
        let written = match self.persist(&update, db_key.as_deref()) {
            Ok(written) => written,
            Err(e) => {
                log::warn!(
                    "auth[{}]: could not write the refreshed token back: {e}",
                    self.name
                );
                false
            }
        };
        #[cfg(test)]
        tests::AFTER_PERSIST.with_borrow_mut(|hook| {
            if let Some(hook) = hook {
                hook(self);
            }
        });
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
        st.jitter_ms = jitter_ms(self.settings.token_refresh_threshold);
        if matches!(st.lap, Lap::Failed) {
            st.lap = Lap::NotTried;
        }
        if written {
            st.seen = Seen::of(&st.login);
        }
        drop(st);
        log::info!(
            "auth[{}]: token refreshed, valid for {} s",
            self.name,
            lifetime / 1000
        );
    }

    /// Write refreshed tokens back where the login came from. Whether they were written.
    fn persist(&self, update: &TokenUpdate, db_key: Option<&str>) -> Result<bool, Error> {
        match &self.source {
            LoginSource::CredsFile(p) => sources::write_json(p, update).map(|()| true),
            LoginSource::CliDb(_) if self.settings.sqlite_readonly => Ok(false),
            LoginSource::CliDb(p) => match db_key {
                Some(key) => sources::write_sqlite(p, key, update).inspect(|written| {
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
        }
    }

    /// Re-read a file source and adopt what another client (kiro-cli, the IDE) changed since we
    /// last read it: a rotated refresh token, a newer access token, profile and client facts.
    pub(super) fn reload_source(&self) {
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
            st.adopted += 1;
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
            st.adopted += 1;
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
pub(super) mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::{Arc, TryLockError};

    use super::super::sources::tests::TempDir;
    use super::super::test_stub::Stub;
    use super::*;
    use crate::config::AuthSettings;
    use crate::util::{self, IsoStyle};

    type Hook = Box<dyn FnMut(&TokenStore)>;

    thread_local! {
        /// Runs on the refreshing thread right after the new tokens reached the source.
        pub(in super::super) static AFTER_PERSIST: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    #[test]
    fn once_the_file_holds_the_new_token_no_caller_is_handed_the_old_one() {
        let stub = Stub::start(|_| {
            (
                200,
                r#"{"accessToken":"at-new","refreshToken":"rt-new","expiresIn":3600}"#.into(),
            )
        });
        let dir = TempDir::new("publish");
        // Fresh by the threshold, as when the timer refreshes a jitter early.
        let expires = util::format_iso8601(now_ms() + 3_600_000, IsoStyle::MillisZ);
        let path = dir.file(
            "kiro-auth-token.json",
            &format!(
                r#"{{"accessToken":"at-old","refreshToken":"rt-old","expiresAt":"{expires}","region":"us-east-1","authMethod":"social","provider":"Github"}}"#
            ),
        );
        let mut c = AuthSettings::defaults();
        c.desktop_auth_url = Some(format!("{}/refreshToken", stub.url));
        c.creds_file = Some(path.clone());
        let store = TokenStore::single(&Arc::new(c)).unwrap();

        // What a request arriving right after the write would be handed: `None` while it has to
        // wait for the publish.
        let handed: Rc<RefCell<Vec<Option<String>>>> = Rc::default();
        let seen = handed.clone();
        let file = path.clone();
        AFTER_PERSIST.set(Some(Box::new(move |store: &TokenStore| {
            let on_disk = sources::load_json(&file).unwrap().access_token;
            assert_eq!(on_disk.as_deref(), Some("at-new"));
            seen.borrow_mut().push(match store.state.try_lock() {
                Ok(st) => st.login.access_token.clone(),
                Err(TryLockError::WouldBlock) => None,
                Err(TryLockError::Poisoned(p)) => p.into_inner().login.access_token.clone(),
            });
        })));
        let refreshed = {
            let _gate = lock(&store.gate);
            store.refresh_now()
        };
        AFTER_PERSIST.set(None);
        refreshed.unwrap();

        assert_eq!(*handed.borrow(), [None]);
        assert_eq!(store.credentials().unwrap().access_token, "at-new");
        assert_eq!(stub.count("/refreshToken"), 1);
    }
}
