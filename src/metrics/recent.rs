//! What the status page lists: the last requests, the retries and errors of the last hour, and
//! each account's requests and credits today. Kept in memory (one short lock per finished
//! request, after its answer was sent); gone at restart.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::access_log::RequestRecord;

/// Requests listed on the status page.
pub const RECENT_REQUESTS: usize = 50;
/// Events kept at most, whatever their age (a storm of retries cannot grow memory).
const MAX_EVENTS: usize = 500;
/// Events older than this are not shown.
pub const EVENT_WINDOW_MS: u64 = 3600 * 1000;

/// A retry, a failover or an error, for the status page. `detail` is a reason or an error
/// message shown to clients anyway: never a secret, never content.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub unix_ms: u64,
    pub kind: &'static str,
    pub account: String,
    pub detail: String,
}

/// An account's traffic on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AccountDay {
    pub day: u64,
    pub requests: u64,
    pub credits: f64,
}

#[derive(Default)]
struct Inner {
    requests: VecDeque<RequestRecord>,
    events: VecDeque<Event>,
    accounts: HashMap<String, AccountDay>,
}

/// The rings behind the status page.
#[derive(Default)]
pub struct Recent {
    inner: Mutex<Inner>,
}

impl Recent {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep a finished request (and count it for its account's day).
    pub fn request(&self, r: &RequestRecord) {
        let mut inner = self.lock();
        if inner.requests.len() >= RECENT_REQUESTS {
            inner.requests.pop_front();
        }
        inner.requests.push_back(r.clone());
        if !r.account.is_empty() {
            let day = r.unix_ms / 86_400_000;
            let entry = inner.accounts.entry(r.account.clone()).or_default();
            if entry.day != day {
                *entry = AccountDay {
                    day,
                    ..AccountDay::default()
                };
            }
            entry.requests += 1;
            entry.credits += r.credits;
        }
    }

    /// Keep an event.
    pub fn event(&self, e: Event) {
        let mut inner = self.lock();
        if inner.events.len() >= MAX_EVENTS {
            inner.events.pop_front();
        }
        inner.events.push_back(e);
    }

    /// The last requests, newest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.iter().rev().cloned().collect()
    }

    /// Events of the hour before `now_ms`, newest first.
    pub fn events(&self, now_ms: u64) -> Vec<Event> {
        let since = now_ms.saturating_sub(EVENT_WINDOW_MS);
        self.lock()
            .events
            .iter()
            .rev()
            .filter(|e| e.unix_ms >= since)
            .cloned()
            .collect()
    }

    /// An account's requests and credits on the UTC day of `now_ms`.
    pub fn account_today(&self, account: &str, now_ms: u64) -> AccountDay {
        let day = now_ms / 86_400_000;
        self.lock()
            .accounts
            .get(account)
            .copied()
            .filter(|a| a.day == day)
            .unwrap_or(AccountDay {
                day,
                ..AccountDay::default()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: u64, account: &str, credits: f64) -> RequestRecord {
        RequestRecord {
            unix_ms: n,
            account: account.into(),
            credits,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn keeps_the_last_fifty_requests_newest_first() {
        let r = Recent::default();
        for n in 0..60 {
            r.request(&req(n, "", 0.0));
        }
        let list = r.requests();
        assert_eq!(list.len(), RECENT_REQUESTS);
        assert_eq!(list.first().map(|r| r.unix_ms), Some(59));
        assert_eq!(list.last().map(|r| r.unix_ms), Some(10));
    }

    #[test]
    fn account_days_restart_at_utc_midnight() {
        let r = Recent::default();
        let day = 86_400_000;
        r.request(&req(day * 3 + 5, "a", 1.5));
        r.request(&req(day * 3 + 6, "a", 0.5));
        assert_eq!(r.account_today("a", day * 3 + 7).requests, 2);
        assert_eq!(r.account_today("a", day * 3 + 7).credits, 2.0);
        assert_eq!(r.account_today("a", day * 4).requests, 0);
        r.request(&req(day * 4 + 1, "a", 1.0));
        assert_eq!(r.account_today("a", day * 4 + 2).requests, 1);
        assert_eq!(r.account_today("b", day * 4).requests, 0);
    }

    #[test]
    fn events_older_than_an_hour_are_not_shown() {
        let r = Recent::default();
        let ev = |t| Event {
            unix_ms: t,
            kind: "retry",
            account: "a".into(),
            detail: "throttle".into(),
        };
        r.event(ev(1_000));
        r.event(ev(EVENT_WINDOW_MS + 2_000));
        let shown = r.events(EVENT_WINDOW_MS + 1_500);
        assert_eq!(shown, vec![ev(EVENT_WINDOW_MS + 2_000)]);
    }
}
