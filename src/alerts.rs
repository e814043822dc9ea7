//! `ALERT_WEBHOOK`: a small JSON POST when something needs a person — an account suspended, a
//! login revoked, a quota spent, the client version refused — so a gateway in a cupboard can ask
//! for help. At most one per kind of event and account per hour; sent by a thread of its own with a
//! short timeout, never on a request's path; a webhook that fails is logged once until it works.
//!
//! The body holds the event, the account's name, Kiro's message and the time; never a token.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::json;

use crate::util::{format_iso8601, now_unix_millis, IsoStyle};

/// The same event for the same account is sent at most this often.
pub const MIN_INTERVAL_MS: i64 = 3_600_000;
/// One POST may take this long at most.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Alerts waiting to be sent; more are dropped (the webhook is down or slow).
const QUEUE: usize = 32;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    AccountSuspended,
    LoginRevoked,
    QuotaExhausted,
    ClientVersionRefused,
}

impl AlertKind {
    /// The `event` field.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::AccountSuspended => "account_suspended",
            AlertKind::LoginRevoked => "login_revoked",
            AlertKind::QuotaExhausted => "quota_exhausted",
            AlertKind::ClientVersionRefused => "client_version_refused",
        }
    }
}

/// One alert on its way.
#[derive(Debug, Clone, PartialEq)]
struct Alert {
    kind: AlertKind,
    account: String,
    message: String,
    at_ms: i64,
}

impl Alert {
    fn body(&self) -> String {
        json!({
            "event": self.kind.as_str(),
            "account": self.account,
            "message": self.message,
            "time": format_iso8601(self.at_ms, IsoStyle::SecondsZ),
            "gateway": format!("kiro-gateway {}", crate::VERSION),
        })
        .to_string()
    }
}

/// Which (event, account) pairs were sent when.
#[derive(Debug, Default)]
struct Limiter(HashMap<(AlertKind, String), i64>);

impl Limiter {
    /// Whether an alert may go now (and note it).
    fn allow(&mut self, kind: AlertKind, account: &str, now_ms: i64) -> bool {
        let key = (kind, account.to_string());
        match self.0.get(&key) {
            Some(last) if now_ms - last < MIN_INTERVAL_MS => false,
            _ => {
                self.0.insert(key, now_ms);
                true
            }
        }
    }
}

struct Alerts {
    tx: SyncSender<Alert>,
    limiter: Mutex<Limiter>,
}

static ALERTS: OnceLock<Alerts> = OnceLock::new();

/// Start sending alerts to `url` (`ALERT_WEBHOOK`); without one, [`notify`] does nothing.
pub fn init(url: Option<String>) {
    let Some(url) = url else {
        return;
    };
    let (tx, rx) = sync_channel(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || deliver(&url, &rx));
    if let Err(e) = spawned {
        log::warn!("ALERT_WEBHOOK: cannot start the sender ({e}); no alerts will be sent");
        return;
    }
    let _ = ALERTS.set(Alerts {
        tx,
        limiter: Mutex::new(Limiter::default()),
    });
}

/// Report an event for `account` (unless the same was reported within the hour).
pub fn notify(kind: AlertKind, account: &str, message: &str) {
    let Some(alerts) = ALERTS.get() else {
        return;
    };
    let now = now_unix_millis() as i64;
    let allowed = match alerts.limiter.lock() {
        Ok(mut l) => l.allow(kind, account, now),
        Err(p) => p.into_inner().allow(kind, account, now),
    };
    if !allowed {
        return;
    }
    let alert = Alert {
        kind,
        account: account.to_string(),
        message: message.to_string(),
        at_ms: now,
    };
    if alerts.tx.try_send(alert).is_err() {
        log::debug!("ALERT_WEBHOOK: queue full, an alert was dropped");
    }
}

fn deliver(url: &str, rx: &Receiver<Alert>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(POST_TIMEOUT))
        .build()
        .into();
    let mut failing = false;
    while let Ok(alert) = rx.recv() {
        let sent = agent
            .post(url)
            .header("content-type", "application/json")
            .send(alert.body().as_bytes());
        let outcome = match sent {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                if failing {
                    log::info!("ALERT_WEBHOOK: delivering alerts again");
                }
                failing = false;
            }
            Err(e) if !failing => {
                failing = true;
                log::warn!(
                    "ALERT_WEBHOOK: could not deliver the {} alert ({e}); later failures are not logged until one works",
                    alert.kind.as_str()
                );
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_alert_per_event_and_account_per_hour() {
        let mut l = Limiter::default();
        assert!(l.allow(AlertKind::QuotaExhausted, "a", 0));
        assert!(!l.allow(AlertKind::QuotaExhausted, "a", 1_000));
        assert!(l.allow(AlertKind::QuotaExhausted, "b", 1_000));
        assert!(l.allow(AlertKind::LoginRevoked, "a", 1_000));
        assert!(!l.allow(AlertKind::QuotaExhausted, "a", MIN_INTERVAL_MS - 1));
        assert!(l.allow(AlertKind::QuotaExhausted, "a", MIN_INTERVAL_MS));
    }

    #[test]
    fn the_body_names_the_event_account_message_and_time() {
        let a = Alert {
            kind: AlertKind::AccountSuspended,
            account: "work".into(),
            message: "Your account is temporarily suspended.".into(),
            at_ms: 1_798_761_600_000,
        };
        let v: serde_json::Value = serde_json::from_str(&a.body()).unwrap();
        assert_eq!(v["event"], "account_suspended");
        assert_eq!(v["account"], "work");
        assert_eq!(v["message"], "Your account is temporarily suspended.");
        assert_eq!(v["time"], "2027-01-01T00:00:00Z");
    }
}
