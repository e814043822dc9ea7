//! Kiro's own usage figures of an account (credits used and allowed in the plan period), as last
//! read from Kiro. Optional information: an account without figures is treated like one with
//! credits left, and failing to read them changes nothing else.

use std::sync::Mutex;

use serde_json::{json, Value};

use crate::util::{format_iso8601, IsoStyle};

/// What `GetUsageLimits` said for an account.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageLimits {
    /// Credits used in the current period.
    pub credits_used: f64,
    /// Credits the plan allows in the period, when Kiro says.
    pub credits_limit: Option<f64>,
    /// When the period ends (ISO 8601), when Kiro says.
    pub resets_at: Option<String>,
    /// The plan's name (e.g. "KIRO PRO"), when Kiro says.
    pub subscription: Option<String>,
    /// When the figures were read (Unix ms).
    pub checked_at_ms: i64,
}

impl UsageLimits {
    /// Credits left in the period, when the limit is known.
    pub fn credits_left(&self) -> Option<f64> {
        self.credits_limit.map(|l| (l - self.credits_used).max(0.0))
    }

    /// Whether Kiro says the period's credits are spent.
    pub fn spent(&self) -> bool {
        self.credits_left().is_some_and(|left| left <= 0.0)
    }

    /// The `/health` form.
    pub fn to_json(&self) -> Value {
        json!({
            "credits_used": self.credits_used,
            "credits_limit": self.credits_limit,
            "credits_left": self.credits_left(),
            "resets_at": self.resets_at,
            "subscription": self.subscription,
            "checked_at": format_iso8601(self.checked_at_ms, IsoStyle::SecondsZ),
        })
    }
}

/// An account's latest figures, written by the background reader and read by selection,
/// `/health`, the status page and `/metrics`.
#[derive(Debug, Default)]
pub struct UsageCell(Mutex<Option<UsageLimits>>);

impl UsageCell {
    pub fn get(&self) -> Option<UsageLimits> {
        match self.0.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set(&self, limits: UsageLimits) {
        match self.0.lock() {
            Ok(mut g) => *g = Some(limits),
            Err(p) => *p.into_inner() = Some(limits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_left_and_spent_follow_the_limit() {
        let mut u = UsageLimits {
            credits_used: 12.5,
            credits_limit: Some(50.0),
            resets_at: None,
            subscription: None,
            checked_at_ms: 0,
        };
        assert_eq!(u.credits_left(), Some(37.5));
        assert!(!u.spent());
        u.credits_used = 51.0;
        assert_eq!(u.credits_left(), Some(0.0));
        assert!(u.spent());
        u.credits_limit = None;
        assert_eq!(u.credits_left(), None);
        assert!(!u.spent(), "no limit known: treated as credits left");
        assert_eq!(u.to_json()["credits_used"], 51.0);
    }
}
