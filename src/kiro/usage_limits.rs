//! Kiro's usage figures per account (`GetUsageLimits`, `docs/kiro-wire.md#usage-limits`): read at
//! start-up and every 15 minutes on a background thread, never on a request's path. The figures are
//! optional information: a login Kiro does not answer for (Builder ID has been seen to get a 400)
//! keeps whatever it had, and nothing else changes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::auth::accounts::Account;
use crate::auth::usage::{UsageCell, UsageLimits};
use crate::auth::TokenStore;
use crate::config::{ClientProfile, UpstreamSettings};
use crate::error::Error;
use crate::kiro::{answer, identity};
use crate::util::{format_iso8601, now_unix_millis, parse_iso8601, percent_encode, IsoStyle};

/// How often the figures are read again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(15 * 60);
/// One call may take this long at most.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
const MAX_BODY: u64 = 256 * 1024;

/// One account the reader looks after.
struct Target {
    name: String,
    store: Arc<TokenStore>,
    agent: ureq::Agent,
    cell: Arc<UsageCell>,
    /// Whether the last read failed (a failure is logged once until a read works again).
    failing: bool,
}

/// Start the reader thread for the enabled accounts.
pub fn spawn(accounts: &[Account], settings: UpstreamSettings) {
    let mut targets: Vec<Target> = accounts
        .iter()
        .filter(|a| a.enabled)
        .map(|a| Target {
            name: a.name.clone(),
            store: a.store.clone(),
            agent: a.agent.clone(),
            cell: a.usage.clone(),
            failing: false,
        })
        .collect();
    if targets.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("usage-limits".into())
        .spawn(move || loop {
            for t in targets.iter_mut() {
                refresh(&settings, t);
            }
            std::thread::sleep(REFRESH_EVERY);
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the usage limits reader: {e}");
    }
}

fn refresh(settings: &UpstreamSettings, t: &mut Target) {
    match read(settings, &t.store, &t.agent) {
        Ok(limits) => {
            log::debug!(
                "account '{}': Kiro usage {} of {:?} credits",
                t.name,
                limits.credits_used,
                limits.credits_limit
            );
            t.cell.set(limits);
            t.failing = false;
        }
        Err(e) if !t.failing => {
            t.failing = true;
            log::info!(
                "account '{}': Kiro's usage limits could not be read ({e}); they are optional",
                t.name
            );
        }
        Err(e) => log::debug!("account '{}': usage limits again: {e}", t.name),
    }
}

/// One `GetUsageLimits` call for this login.
pub fn read(
    settings: &UpstreamSettings,
    store: &TokenStore,
    agent: &ureq::Agent,
) -> Result<UsageLimits, Error> {
    let creds = store.credentials()?;
    let profile = identity::effective_profile(settings, &creds);
    let (ua, amz_ua) = identity::control_plane_agents(settings, profile, &creds.machine_id);
    let origin = if profile == ClientProfile::Cli {
        "KIRO_CLI"
    } else {
        "AI_EDITOR"
    };
    let mut url = format!(
        "{}/Get-Usage-Limits?origin={origin}&resourceType=CREDIT&isEmailRequired=false",
        settings.management_base(&creds.api_region)
    );
    if let Some(arn) = &creds.profile_arn {
        url.push_str(&format!("&profileArn={}", percent_encode(arn)));
    }
    let mut req = agent
        .get(&url)
        .config()
        .timeout_global(Some(CALL_TIMEOUT))
        .build()
        .header("authorization", &format!("Bearer {}", creds.access_token))
        .header("accept", "application/json")
        .header("user-agent", &ua)
        .header("x-amz-user-agent", &amz_ua);
    if let Some((k, v)) = identity::token_type_header(creds.kind) {
        req = req.header(k, v);
    }
    let text = answer::ok_body(req.call(), MAX_BODY)?;
    // Past ok_body the answer was a 200.
    let status = 200;
    let v: Value = serde_json::from_str(&text).map_err(|e| Error::Upstream {
        status,
        message: format!("usage limits answer is not JSON: {e}"),
        reason: None,
        retry_after: None,
    })?;
    parse(&v, now_unix_millis() as i64).ok_or_else(|| Error::Upstream {
        status,
        message: "usage limits answer has no credit figures".into(),
        reason: None,
        retry_after: None,
    })
}

/// The credit figures of an answer: the `CREDIT` entry of `usageBreakdownList` (else the first).
pub fn parse(v: &Value, now_ms: i64) -> Option<UsageLimits> {
    let list = v.get("usageBreakdownList")?.as_array()?;
    let entry = list
        .iter()
        .find(|e| e.get("resourceType").and_then(Value::as_str) == Some("CREDIT"))
        .or_else(|| list.first())?;
    let number = |key: &str| {
        entry.get(key).and_then(|n| {
            n.as_f64()
                .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
        })
    };
    Some(UsageLimits {
        credits_used: number("currentUsageWithPrecision").or_else(|| number("currentUsage"))?,
        credits_limit: number("usageLimitWithPrecision").or_else(|| number("usageLimit")),
        resets_at: v.get("nextDateReset").and_then(reset_time),
        subscription: v
            .pointer("/subscriptionInfo/subscriptionTitle")
            .or_else(|| v.pointer("/subscriptionInfo/subscriptionName"))
            .and_then(Value::as_str)
            .map(str::to_string),
        checked_at_ms: now_ms,
    })
}

/// `nextDateReset`: AWS JSON sends a timestamp as epoch seconds; an ISO string is kept as is.
fn reset_time(v: &Value) -> Option<String> {
    if let Some(secs) = v.as_f64().filter(|s| s.is_finite() && *s > 0.0) {
        return Some(format_iso8601((secs * 1000.0) as i64, IsoStyle::SecondsZ));
    }
    let s = v.as_str()?;
    parse_iso8601(s).map(|(ms, _)| format_iso8601(ms, IsoStyle::SecondsZ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_credit_entry_is_read_with_its_reset_and_plan() {
        let v = json!({
            "usageBreakdownList": [
                {"resourceType": "AGENTIC_REQUEST", "currentUsage": 3, "usageLimit": 10},
                {"resourceType": "CREDIT", "currentUsage": 12.5, "usageLimit": 50, "unit": "credit"}
            ],
            "nextDateReset": 1798761600,
            "subscriptionInfo": {"subscriptionTitle": "KIRO PRO", "subscriptionType": "PRO"},
            "userInfo": {"email": "someone@example.com"}
        });
        let u = parse(&v, 7).unwrap();
        assert_eq!(u.credits_used, 12.5);
        assert_eq!(u.credits_limit, Some(50.0));
        assert_eq!(u.resets_at.as_deref(), Some("2027-01-01T00:00:00Z"));
        assert_eq!(u.subscription.as_deref(), Some("KIRO PRO"));
        assert_eq!(u.checked_at_ms, 7);
        // Nothing of the user's identity is kept.
        assert!(!format!("{u:?}").contains("example.com"));
    }

    #[test]
    fn an_answer_without_figures_is_none() {
        assert!(parse(&json!({}), 0).is_none());
        assert!(parse(&json!({"usageBreakdownList": []}), 0).is_none());
        let only_limit =
            json!({"usageBreakdownList": [{"resourceType": "CREDIT", "usageLimit": 5}]});
        assert!(parse(&only_limit, 0).is_none());
        let iso = json!({"usageBreakdownList": [{"currentUsage": "1.5"}], "nextDateReset": "2027-02-01T00:00:00.000Z"});
        let u = parse(&iso, 0).unwrap();
        assert_eq!(u.credits_used, 1.5);
        assert_eq!(u.credits_limit, None);
        assert_eq!(u.resets_at.as_deref(), Some("2027-02-01T00:00:00Z"));
    }
}
