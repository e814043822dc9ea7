//! The fake's `GET /Get-Usage-Limits`: the plan's credits used and allowed, per bearer token when a
//! test sets them (else [`DEFAULT_USED`] of [`DEFAULT_LIMIT`]), or a scripted refusal (Builder ID
//! logins have been seen to get a 400 "Invalid profileArn").

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::json;

use super::{send, FakeKiro, Recorded, Reply, Shared};

/// Credits used when a test sets nothing.
pub const DEFAULT_USED: f64 = 12.5;
/// The plan's credits when a test sets nothing.
pub const DEFAULT_LIMIT: f64 = 50.0;
/// `nextDateReset` of every answer (2027-01-01T00:00:00Z, epoch seconds as AWS JSON sends it).
pub const RESET_EPOCH_SECS: i64 = 1_798_761_600;

#[derive(Default)]
struct State {
    /// Bearer token → (used, limit).
    figures: HashMap<String, (f64, f64)>,
    /// Answer every call with this instead.
    refusal: Option<Reply>,
    requests: Vec<Recorded>,
}

#[derive(Default)]
pub(super) struct Usage(Mutex<State>);

impl Usage {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) fn serve(shared: &Shared, request: tiny_http::Request, mut rec: Recorded) {
    let rejected = shared.lock().rejects(rec.bearer().as_deref());
    let reply = {
        let mut st = shared.usage.lock();
        let reply = if rejected {
            super::forbidden()
        } else if let Some(r) = &st.refusal {
            r.clone()
        } else {
            let (used, limit) = rec
                .bearer()
                .and_then(|t| st.figures.get(&t).copied())
                .unwrap_or((DEFAULT_USED, DEFAULT_LIMIT));
            Reply::status(
                200,
                json!({
                    "usageBreakdownList": [{
                        "resourceType": "CREDIT",
                        "currentUsage": used,
                        "usageLimit": limit,
                        "currency": "USD",
                        "unit": "credit"
                    }],
                    "nextDateReset": RESET_EPOCH_SECS,
                    "subscriptionInfo": {"subscriptionTitle": "KIRO PRO", "subscriptionType": "PRO"},
                    "userInfo": {"email": "someone@example.com", "userId": "fake-user"}
                }),
            )
        };
        rec.status = reply.status_code();
        st.requests.push(rec);
        reply
    };
    send(shared, request, &reply);
}

impl FakeKiro {
    /// The usage figures answered to calls carrying this bearer token.
    pub fn set_usage_limits(&self, token: &str, used: f64, limit: f64) {
        self.shared
            .usage
            .lock()
            .figures
            .insert(token.to_string(), (used, limit));
    }

    /// Every usage limits call gets this reply from now on.
    pub fn refuse_usage_limits(&self, reply: Reply) {
        self.shared.usage.lock().refusal = Some(reply);
    }

    /// `GET /Get-Usage-Limits` calls so far.
    pub fn usage_limit_requests(&self) -> Vec<Recorded> {
        self.shared.usage.lock().requests.clone()
    }
}
