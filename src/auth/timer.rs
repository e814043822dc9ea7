//! The proactive refresh timer: one thread per login that refreshes shortly before expiry and
//! retries failures with a capped backoff, so requests rarely wait for a refresh.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::store::{State, TokenStore};
use super::{lock, now_ms, AuthKind};
use crate::error::Error;
use crate::util;

/// The longest a failed refresh waits before it is tried again (timer backoff cap), and how
/// long a refused refresh token is not retried on the request path.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(20);

/// The timer never sleeps longer than this, so a suspended machine notices expiry soon after it
/// wakes (thread::sleep does not count suspended time everywhere).
pub(super) const MAX_TIMER_SLEEP: Duration = Duration::from_secs(60);

/// Upper bound of the per-token jitter that spreads proactive refreshes of many logins.
const MAX_JITTER_MS: i64 = 30_000;

/// A random delay below a tenth of the refresh threshold (at most 30 s).
pub(super) fn jitter_ms(threshold: Duration) -> i64 {
    let cap = (threshold.as_millis() as i64 / 10).min(MAX_JITTER_MS);
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

impl TokenStore {
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

    pub(super) fn token_due_at(&self, st: &State) -> i64 {
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
}
