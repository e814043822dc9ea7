//! Several Kiro logins behind one gateway (`KIRO_ACCOUNTS_FILE`, read by `accounts_file`):
//! selection (priority or round robin, sticky per conversation), cooldowns that grow per failure,
//! failover, and the per-account state shown by `/health`.
//!
//! Each account has its own [`TokenStore`] (its own refresh, timer and write-back: a token is never
//! written into another account's source) and its own outbound agent (per-account proxy). With no
//! accounts file there is one account built from the single-account variables, and nothing changes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::alerts::{self, AlertKind};
pub use crate::auth::accounts_file::{load_accounts_file, AccountEntry};
use crate::auth::affinity::{Affinity, AFFINITY_CAP};
use crate::auth::usage::{UsageCell, UsageLimits};
use crate::auth::{LoginMark, LoginSpec, TokenStore};
use crate::config::{AccountStrategy, AuthSettings};
use crate::error::Error;
use crate::util::{format_iso8601, now_unix, IsoStyle};

/// First cooldown of a throttled account without Retry-After (Kiro's penalty window,
/// `docs/kiro-wire.md#errors`).
const THROTTLE_COOLDOWN: u64 = 8;
/// First cooldown of an account whose login was refused.
const AUTH_COOLDOWN: u64 = 60;
/// Longest cooldown that grows per failure.
const MAX_GROWING_COOLDOWN: u64 = 30 * 60;
/// A suspended account's login file is read again at most this often (seconds).
const SUSPENSION_CHECK_EVERY: u64 = 1;

/// Why an account is out.
#[derive(Debug, Clone, PartialEq)]
struct Health {
    cooldown_until: u64,
    failures: u32,
    reason: Option<String>,
    served: u64,
    last_error: Option<String>,
    suspended: Option<Suspension>,
}

/// Kiro suspended the account. No timer ends it: only a new login in its file (or a restart).
#[derive(Debug, Clone, PartialEq)]
struct Suspension {
    message: String,
    since: u64,
    login: LoginMark,
    /// When the login file was last looked at (it is read at most every few seconds).
    checked: u64,
}

/// One account: its login, its agent, its health.
pub struct Account {
    pub name: String,
    pub store: Arc<TokenStore>,
    pub agent: ureq::Agent,
    pub priority: i64,
    pub enabled: bool,
    /// Kiro's usage figures, kept current by a background reader (`kiro::usage_limits`).
    pub usage: Arc<UsageCell>,
    source_kind: &'static str,
    health: Mutex<Health>,
}

impl Account {
    /// Kiro's latest usage figures for this account, when they could be read.
    pub fn usage_limits(&self) -> Option<UsageLimits> {
        self.usage.get()
    }

    /// Kiro says this account's credits for the period are spent.
    fn credits_spent(&self) -> bool {
        self.usage.get().is_some_and(|u| u.spent())
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        match self.health.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Load the account's login and build its agent (its own proxy, if it names one).
    fn open(e: AccountEntry, settings: &Arc<AuthSettings>, single: bool) -> Result<Account, Error> {
        let name = e.spec.name.clone();
        let source_kind = e.spec.source.kind_name();
        let agent = crate::net::agent(&settings.net, e.spec.proxy.as_deref())
            .map_err(|err| Error::Config(format!("account '{name}': {err}")))?;
        // The single-account variables get errors naming the variable; accounts get their name.
        let store = if single {
            TokenStore::single(settings)?
        } else {
            TokenStore::new(e.spec, settings)?
        };
        Ok(Account {
            name,
            store,
            agent,
            priority: e.priority,
            enabled: e.enabled,
            usage: Arc::new(UsageCell::default()),
            source_kind,
            health: Mutex::new(Health {
                cooldown_until: 0,
                failures: 0,
                reason: None,
                served: 0,
                last_error: None,
                suspended: None,
            }),
        })
    }

    fn available(&self, now: u64) -> bool {
        if !self.enabled {
            return false;
        }
        let mut h = self.health();
        h.cooldown_until <= now && !self.still_suspended(&mut h, now)
    }

    /// Whether the account is suspended; a changed login ends the suspension.
    fn still_suspended(&self, h: &mut Health, now: u64) -> bool {
        let Some(s) = h.suspended.as_mut() else {
            return false;
        };
        if now.saturating_sub(s.checked) < SUSPENSION_CHECK_EVERY {
            return true;
        }
        s.checked = now;
        if !self.store.login_changed_since(&s.login) {
            return true;
        }
        log::warn!(
            "account '{}': its login changed since Kiro suspended it; back in rotation",
            self.name
        );
        self.store.reload_source();
        h.suspended = None;
        h.reason = None;
        h.failures = 0;
        false
    }
}

/// What a failure means for the account that had it.
#[derive(Debug, Clone, PartialEq)]
pub enum FailureKind {
    /// Throttled: cool down (Retry-After, else growing) and try the next account.
    Throttled { retry_after: Option<u64> },
    /// The plan's quota is spent: cool down until it resets.
    QuotaExhausted { daily: bool },
    /// The login was refused: cool down and try the next account.
    LoginRefused,
    /// Kiro suspended the account: out until its login changes or the gateway restarts.
    Suspended,
    /// Not about this account (bad request, network, context overflow): no failover.
    NotAccount,
}

/// Classify an error for failover.
pub fn classify(e: &Error) -> FailureKind {
    match e {
        Error::Upstream {
            status: 429,
            reason,
            retry_after,
            ..
        } => match reason.as_deref() {
            Some("MONTHLY_REQUEST_COUNT") => FailureKind::QuotaExhausted { daily: false },
            Some("DAILY_REQUEST_COUNT") => FailureKind::QuotaExhausted { daily: true },
            _ => FailureKind::Throttled {
                retry_after: *retry_after,
            },
        },
        // Overloaded for this account's route; another account may get through.
        Error::Upstream {
            reason: Some(r), ..
        } if r == "MODEL_TEMPORARILY_UNAVAILABLE" => FailureKind::Throttled { retry_after: None },
        Error::AccountSuspended { .. } => FailureKind::Suspended,
        Error::Upstream {
            status: 401 | 403, ..
        }
        | Error::AuthFailed { .. } => FailureKind::LoginRefused,
        _ => FailureKind::NotAccount,
    }
}

/// The set of accounts and how to choose among them.
pub struct Pool {
    pub accounts: Vec<Account>,
    strategy: AccountStrategy,
    rr: AtomicUsize,
    /// Which account served each conversation (bounded).
    affinity: Mutex<Affinity>,
    quota_cooldown: Option<u64>,
    state_file: Option<PathBuf>,
}

impl Pool {
    /// The accounts of `KIRO_ACCOUNTS_FILE`, or one account from the single-account variables.
    pub fn new(settings: &Arc<AuthSettings>) -> Result<Pool, Error> {
        let single = settings.accounts_file.is_none();
        let entries = match &settings.accounts_file {
            Some(path) => load_accounts_file(path)?,
            None => vec![AccountEntry {
                spec: LoginSpec::single(settings)?,
                priority: 0,
                enabled: true,
            }],
        };
        let mut accounts = Vec::with_capacity(entries.len());
        for e in entries {
            accounts.push(Account::open(e, settings, single)?);
        }
        if !accounts.iter().any(|a| a.enabled) {
            return Err(Error::Config(
                "KIRO_ACCOUNTS_FILE has no enabled account".into(),
            ));
        }
        let state_file = match (&settings.accounts_file, settings.accounts_state) {
            (Some(p), true) => Some(PathBuf::from(format!("{}.state.json", p.display()))),
            _ => None,
        };
        let pool = Pool {
            accounts,
            strategy: settings.account_strategy,
            rr: AtomicUsize::new(0),
            affinity: Mutex::new(Affinity::new(AFFINITY_CAP)),
            quota_cooldown: settings.account_quota_cooldown.map(|d| d.as_secs()),
            state_file,
        };
        pool.load_state();
        Ok(pool)
    }

    /// Whether there is more than one account to fail over to.
    pub fn is_multi(&self) -> bool {
        self.accounts.iter().filter(|a| a.enabled).count() > 1
    }

    /// The accounts to try, best first: the conversation's previous account while it is healthy,
    /// then those with credits left before those Kiro says have spent theirs, each by priority (or
    /// in turn). Every account out → `AccountsUnavailable`.
    pub fn candidates(&self, conversation: Option<&str>) -> Result<Vec<usize>, Error> {
        self.ranked(conversation, true)
    }

    /// The order [`Self::candidates`] would give a new conversation now, without taking a turn:
    /// background calls (the model list) must not shift which account the next request gets.
    pub fn peek_candidates(&self) -> Result<Vec<usize>, Error> {
        self.ranked(None, false)
    }

    fn ranked(&self, conversation: Option<&str>, take_turn: bool) -> Result<Vec<usize>, Error> {
        let now = now_unix();
        let mut healthy: Vec<usize> = (0..self.accounts.len())
            .filter(|&i| self.accounts.get(i).is_some_and(|a| a.available(now)))
            .collect();
        if healthy.is_empty() {
            return Err(self.all_out(now));
        }
        match self.strategy {
            AccountStrategy::Priority => {
                healthy.sort_by_key(|&i| self.accounts.get(i).map(|a| a.priority).unwrap_or(0))
            }
            // Only requests take turns: a background look (the model list, "is anyone left?")
            // must not move the rotation on.
            AccountStrategy::RoundRobin if conversation.is_some() => {
                let n = healthy.len();
                let turn = if take_turn {
                    self.rr.fetch_add(1, Ordering::Relaxed)
                } else {
                    self.rr.load(Ordering::Relaxed)
                };
                let start = turn % n;
                healthy.rotate_left(start);
            }
            AccountStrategy::RoundRobin => {}
        }
        // Accounts Kiro says have credits left come first (a stable sort keeps the order above).
        healthy.sort_by_key(|&i| self.accounts.get(i).is_some_and(|a| a.credits_spent()));
        if let Some(key) = conversation {
            let prev = self.affinity_lock().get(key);
            if let Some(p) = prev {
                if let Some(pos) = healthy.iter().position(|&i| i == p) {
                    let i = healthy.remove(pos);
                    healthy.insert(0, i);
                }
            }
        }
        Ok(healthy)
    }

    fn affinity_lock(&self) -> std::sync::MutexGuard<'_, Affinity> {
        match self.affinity.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn all_out(&self, now: u64) -> Error {
        let mut why = Vec::new();
        let mut earliest = u64::MAX;
        let mut quota = true;
        let mut suspended = Vec::new();
        let enabled = self.accounts.iter().filter(|a| a.enabled);
        for a in enabled.clone() {
            let h = a.health();
            if let Some(s) = &h.suspended {
                suspended.push((a.name.clone(), s.message.clone()));
                why.push(format!(
                    "{}: suspended by Kiro until its login changes",
                    a.name
                ));
                quota = false;
                continue;
            }
            earliest = earliest.min(h.cooldown_until);
            quota &= h
                .reason
                .as_deref()
                .is_some_and(|r| r.ends_with("quota exhausted"));
            why.push(format!(
                "{}: {} until {}",
                a.name,
                h.reason.as_deref().unwrap_or("unavailable"),
                format_iso8601(h.cooldown_until as i64 * 1000, IsoStyle::SecondsZ)
            ));
        }
        if suspended.len() == enabled.count() {
            return all_suspended(suspended);
        }
        let retry_after = earliest.saturating_sub(now).max(1);
        Error::AccountsUnavailable {
            message: format!("All Kiro accounts are unavailable: {}.", why.join("; ")),
            retry_after,
            quota,
        }
    }

    /// The account served a request.
    pub fn report_success(&self, index: usize, conversation: Option<&str>) {
        if let Some(a) = self.accounts.get(index) {
            let mut h = a.health();
            h.served += 1;
            h.failures = 0;
            h.reason = None;
        }
        match conversation {
            Some(key) if self.is_multi() => self.affinity_lock().record(key, index),
            _ => {}
        }
    }

    /// The account failed with `e`. Returns true when the request should move to the next
    /// account (the account is now cooling down).
    pub fn report_failure(&self, index: usize, e: &Error) -> bool {
        let Some(a) = self.accounts.get(index) else {
            return false;
        };
        let kind = classify(e);
        alert(&kind, e, &a.name);
        // With one account there is nowhere to move to: only a suspension is kept (the next
        // requests get the 403 without asking Kiro again).
        if kind != FailureKind::Suspended && !self.is_multi() {
            return false;
        }
        let now = now_unix();
        let mut h = a.health();
        h.last_error = Some(e.to_string());
        if kind == FailureKind::Suspended {
            let message = match e {
                Error::AccountSuspended { message } => message.clone(),
                other => other.to_string(),
            };
            log::error!(
                "account '{}': Kiro suspended it ({message}); it is out of rotation until its login changes or the gateway restarts",
                a.name
            );
            h.suspended = Some(Suspension {
                message,
                since: now,
                login: a.store.login_mark(),
                checked: now,
            });
            h.reason = Some("suspended".into());
            return true;
        }
        let (until, reason) = match kind {
            FailureKind::NotAccount => return false,
            FailureKind::Suspended => return true,
            FailureKind::Throttled { retry_after } => {
                h.failures += 1;
                let grown = growing(THROTTLE_COOLDOWN, h.failures);
                (
                    now + retry_after.map(|r| r.max(1)).unwrap_or(grown),
                    "throttled".to_string(),
                )
            }
            FailureKind::QuotaExhausted { daily } => {
                h.failures += 1;
                let until = match self.quota_cooldown {
                    Some(s) => now + s.max(1),
                    None if daily => next_utc_midnight(now),
                    None => next_month_start(now),
                };
                let what = if daily { "daily" } else { "monthly" };
                (until, format!("{what} quota exhausted"))
            }
            FailureKind::LoginRefused => {
                h.failures += 1;
                (
                    now + growing(AUTH_COOLDOWN, h.failures),
                    "login refused or revoked".to_string(),
                )
            }
        };
        h.cooldown_until = until;
        h.reason = Some(reason);
        log::warn!(
            "account '{}' cooling down until {}: {}",
            a.name,
            format_iso8601(until as i64 * 1000, IsoStyle::SecondsZ),
            h.reason.as_deref().unwrap_or("")
        );
        drop(h);
        self.save_state();
        true
    }

    /// `/health` view of every account (never a secret): the login's own state (`name`, `kind`,
    /// `source`, `state`, expiry, refreshes, last refresh error) plus the pool's view: `status`
    /// (`healthy`, `cooling_down`, `login_revoked`, `suspended`, `disabled`), cooldown end and reason,
    /// requests served and the last request error.
    pub fn status(&self) -> Vec<Value> {
        let now = now_unix();
        self.accounts
            .iter()
            .map(|a| {
                let h = {
                    let mut h = a.health();
                    a.still_suspended(&mut h, now);
                    h.clone()
                };
                let mut v = a.store.status();
                if !v.is_object() {
                    v = json!({});
                }
                let status = status_word(a.enabled, &h, now, v["state"] == "refresh_failed");
                v["name"] = json!(a.name);
                v["source"] = json!(a.source_kind);
                v["priority"] = json!(a.priority);
                v["status"] = json!(status);
                v["requests_served"] = json!(h.served);
                v["last_request_error"] = json!(h.last_error);
                if h.cooldown_until > now {
                    v["cooling_down_until"] = json!(format_iso8601(
                        h.cooldown_until as i64 * 1000,
                        IsoStyle::SecondsZ
                    ));
                    v["reason"] = json!(h.reason);
                }
                if let Some(u) = a.usage_limits() {
                    v["usage_limits"] = u.to_json();
                }
                if let Some(s) = &h.suspended {
                    v["reason"] = json!(s.message);
                    v["suspended_since"] =
                        json!(format_iso8601(s.since as i64 * 1000, IsoStyle::SecondsZ));
                }
                v
            })
            .collect()
    }

    fn load_state(&self) {
        let Some(path) = &self.state_file else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) else {
            log::warn!(
                "ignoring the unreadable accounts state file {}",
                path.display()
            );
            return;
        };
        for a in &self.accounts {
            if let Some(s) = map.get(&a.name) {
                let mut h = a.health();
                h.cooldown_until = s.get("cooldown_until").and_then(Value::as_u64).unwrap_or(0);
                h.failures = s.get("failures").and_then(Value::as_u64).unwrap_or(0) as u32;
                h.reason = s.get("reason").and_then(Value::as_str).map(str::to_string);
            }
        }
    }

    fn save_state(&self) {
        let Some(path) = &self.state_file else {
            return;
        };
        let mut map = serde_json::Map::new();
        for a in &self.accounts {
            let h = a.health();
            map.insert(
                a.name.clone(),
                json!({"cooldown_until": h.cooldown_until, "failures": h.failures, "reason": h.reason}),
            );
        }
        let text = serde_json::to_vec_pretty(&Value::Object(map)).unwrap_or_default();
        if let Err(e) = crate::util::write_file_atomic(path, &text) {
            log::warn!(
                "could not save the accounts state to {}: {e}",
                path.display()
            );
        }
    }
}

/// Tell a person (`ALERT_WEBHOOK`) about the failures they have to act on.
fn alert(kind: &FailureKind, e: &Error, account: &str) {
    let event = match (kind, e) {
        (FailureKind::Suspended, _) => AlertKind::AccountSuspended,
        (FailureKind::QuotaExhausted { .. }, _) => AlertKind::QuotaExhausted,
        (FailureKind::LoginRefused, Error::AuthFailed { .. }) => AlertKind::LoginRevoked,
        (_, Error::ClientVersionRefused { .. }) => AlertKind::ClientVersionRefused,
        _ => return,
    };
    let message = match e {
        Error::AccountSuspended { message } | Error::AuthFailed { message, .. } => message.clone(),
        Error::Upstream { message, .. } | Error::ClientVersionRefused { message, .. } => {
            message.clone()
        }
        other => other.to_string(),
    };
    alerts::notify(event, account, &message);
}

/// An account's `status` in `/health`.
fn status_word(enabled: bool, h: &Health, now: u64, login_failed: bool) -> &'static str {
    if !enabled {
        "disabled"
    } else if h.suspended.is_some() {
        "suspended"
    } else if h.cooldown_until > now {
        match h.reason.as_deref() {
            Some(r) if r.starts_with("login") => "login_revoked",
            _ => "cooling_down",
        }
    } else if login_failed {
        "login_revoked"
    } else {
        "healthy"
    }
}

/// Every account is suspended: the client hears that (a 403), not "try again later".
fn all_suspended(accounts: Vec<(String, String)>) -> Error {
    let message = match accounts.as_slice() {
        [(_, only)] => only.clone(),
        many => format!(
            "every Kiro account is suspended ({}).",
            many.iter()
                .map(|(name, m)| format!("{name}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    Error::AccountSuspended { message }
}

fn growing(base: u64, failures: u32) -> u64 {
    base.saturating_mul(1u64 << failures.saturating_sub(1).min(20))
        .min(MAX_GROWING_COOLDOWN)
}

fn next_utc_midnight(now: u64) -> u64 {
    (now / 86_400 + 1) * 86_400
}

fn next_month_start(now: u64) -> u64 {
    let date = format_iso8601(now as i64 * 1000, IsoStyle::SecondsZ);
    let year: i64 = date.get(0..4).and_then(|s| s.parse().ok()).unwrap_or(1970);
    let month: i64 = date.get(5..7).and_then(|s| s.parse().ok()).unwrap_or(1);
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    crate::util::parse_iso8601(&format!("{y:04}-{m:02}-01T00:00:00Z"))
        .map(|(ms, _)| (ms / 1000) as u64)
        .unwrap_or(now + 30 * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_for_failover() {
        let up = |status, reason: Option<&str>| Error::Upstream {
            status,
            message: "m".into(),
            reason: reason.map(String::from),
            retry_after: None,
        };
        assert_eq!(
            classify(&up(429, Some("MONTHLY_REQUEST_COUNT"))),
            FailureKind::QuotaExhausted { daily: false }
        );
        assert_eq!(
            classify(&up(429, Some("USER_REQUEST_RATE_EXCEEDED"))),
            FailureKind::Throttled { retry_after: None }
        );
        assert_eq!(classify(&up(403, None)), FailureKind::LoginRefused);
        assert_eq!(
            classify(&Error::AccountSuspended {
                message: "m".into()
            }),
            FailureKind::Suspended
        );
        assert_eq!(classify(&up(400, None)), FailureKind::NotAccount);
        assert_eq!(
            classify(&Error::ContextLengthExceeded("x".into())),
            FailureKind::NotAccount
        );
    }

    #[test]
    fn cooldowns_grow_and_quota_waits_for_the_reset() {
        assert_eq!(growing(8, 1), 8);
        assert_eq!(growing(8, 3), 32);
        assert_eq!(growing(8, 40), MAX_GROWING_COOLDOWN);
        // 2026-11-26T06:00:00Z → 2026-12-01T00:00:00Z
        let now = 1_795_672_800;
        assert_eq!(
            format_iso8601(next_month_start(now) as i64 * 1000, IsoStyle::SecondsZ),
            "2026-12-01T00:00:00Z"
        );
        assert_eq!(next_utc_midnight(now) % 86_400, 0);
    }
}
