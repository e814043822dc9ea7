//! What the gateway counts, for `GET /metrics` (Prometheus text format 0.0.4) and the status page.
//!
//! One registry per process ([`global`]): the places that count — the pipeline when a request
//! ends, the Kiro client on each retry, the token store on each refresh, the server around its
//! workers — sit in layers that do not share a handle, and a registry of atomics written from
//! everywhere and read only by the scrape needs no coordination beyond that. (Tests start the
//! binary per test, so no two tests share it; unit tests build their own [`Metrics`].)
//!
//! Counting takes no lock: fixed series are plain atomics, and a series with variable labels
//! (model, account, client key) is found once per request in a [`series::SeriesMap`] and then
//! counted with atomics. Labels never hold a token, a key or any prompt text: a client key is
//! known by its name, an account by its name, a model by the catalogue's id.

pub mod exposition;
pub mod recent;
mod render;
pub mod series;

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use crate::access_log::RequestRecord;
use recent::{Event, Recent};
use series::{FloatCounter, Histogram, SeriesMap};

/// Label sets kept per family before new ones are folded into `other`.
const MAX_SERIES: usize = 1000;
/// What a folded label value reads.
const OTHER: &str = "other";

/// Why an upstream attempt was retried (on the same account or another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// 429 throttling.
    Throttle,
    /// Kiro has no capacity for the model right now (`INSUFFICIENT_MODEL_CAPACITY`, temporarily
    /// unavailable).
    Capacity,
    /// The account's quota is spent (only retried on another account).
    Quota,
    /// A 5xx answer.
    ServerError,
    /// The connection failed or broke before an answer.
    Transport,
    /// Nothing arrived before the first-token timeout.
    FirstTokenTimeout,
    /// The token was refused and refreshed, or the account was refused (login revoked,
    /// suspended) and the request moved to another.
    Auth,
}

impl RetryReason {
    pub const ALL: [RetryReason; 7] = [
        RetryReason::Throttle,
        RetryReason::Capacity,
        RetryReason::Quota,
        RetryReason::ServerError,
        RetryReason::Transport,
        RetryReason::FirstTokenTimeout,
        RetryReason::Auth,
    ];

    /// The reason an error gives for trying again.
    pub fn of(e: &crate::error::Error) -> RetryReason {
        use crate::error::Error;
        match e {
            Error::Upstream {
                reason: Some(r), ..
            } if r.contains("CAPACITY") || r.contains("TEMPORARILY_UNAVAILABLE") => {
                RetryReason::Capacity
            }
            Error::Upstream {
                reason: Some(r), ..
            } if r.ends_with("_REQUEST_COUNT") => RetryReason::Quota,
            Error::Upstream { status: 429, .. } => RetryReason::Throttle,
            Error::Upstream {
                status: 401 | 403, ..
            }
            | Error::AuthFailed { .. }
            | Error::AccountSuspended { .. } => RetryReason::Auth,
            Error::FirstTokenTimeout { .. } => RetryReason::FirstTokenTimeout,
            Error::Network { .. } | Error::Stream(_) | Error::StreamTimeout { .. } => {
                RetryReason::Transport
            }
            _ => RetryReason::ServerError,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Throttle => "throttle",
            RetryReason::Capacity => "capacity",
            RetryReason::Quota => "quota",
            RetryReason::ServerError => "5xx",
            RetryReason::Transport => "transport",
            RetryReason::FirstTokenTimeout => "first_token_timeout",
            RetryReason::Auth => "auth",
        }
    }
}

/// An account's state, as the `kiro_gateway_account_state` gauge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    Active,
    CoolingDown,
    QuotaSpent,
    Suspended,
    LoginRevoked,
    Disabled,
}

impl AccountState {
    pub const ALL: [AccountState; 6] = [
        AccountState::Active,
        AccountState::CoolingDown,
        AccountState::QuotaSpent,
        AccountState::Suspended,
        AccountState::LoginRevoked,
        AccountState::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::CoolingDown => "cooling_down",
            AccountState::QuotaSpent => "quota_spent",
            AccountState::Suspended => "suspended",
            AccountState::LoginRevoked => "login_revoked",
            AccountState::Disabled => "disabled",
        }
    }

    /// From the account's `/health` entry: its `status` and, while cooling down, its `reason`.
    pub fn from_health(status: &str, reason: Option<&str>) -> AccountState {
        let reason = reason.unwrap_or("").to_ascii_lowercase();
        match status {
            "healthy" | "active" => AccountState::Active,
            "suspended" => AccountState::Suspended,
            "login_revoked" => AccountState::LoginRevoked,
            "disabled" => AccountState::Disabled,
            "quota_spent" | "quota_exhausted" => AccountState::QuotaSpent,
            _ if reason.contains("quota") || reason.contains("request_count") => {
                AccountState::QuotaSpent
            }
            _ if reason.contains("suspend") => AccountState::Suspended,
            _ => AccountState::CoolingDown,
        }
    }
}

/// What the scrape adds from outside the registry: the accounts as they are now.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// The client identity the gateway presents to Kiro (e.g. `KiroIDE 1.1.70`).
    pub client_identity: String,
    pub accounts: Vec<AccountGauge>,
}

/// One account at scrape time.
#[derive(Debug, Clone)]
pub struct AccountGauge {
    pub name: String,
    pub state: AccountState,
    /// Kiro's own usage figures for the plan period, when they could be read.
    pub credits_used: Option<f64>,
    pub credits_limit: Option<f64>,
}

#[derive(Default)]
struct LatencySeries {
    duration: Histogram,
    ttft: Histogram,
}

#[derive(Default)]
struct UsageSeries {
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    credits: FloatCounter,
}

type RequestKey = (&'static str, &'static str, String, u16);
type UsageKey = (String, String, String);

/// The registry.
pub struct Metrics {
    started: Instant,
    started_unix: u64,
    requests: SeriesMap<RequestKey, AtomicU64>,
    latency: SeriesMap<(&'static str, String), LatencySeries>,
    usage: SeriesMap<UsageKey, UsageSeries>,
    refreshes: SeriesMap<(String, &'static str), AtomicU64>,
    failovers: SeriesMap<String, AtomicU64>,
    attempts: AtomicU64,
    retries: [AtomicU64; RetryReason::ALL.len()],
    streams_open: AtomicI64,
    workers: AtomicU64,
    workers_busy: AtomicI64,
    queue_depth: AtomicI64,
    overload_refusals: AtomicU64,
    client_identity: RwLock<String>,
    /// The status page's lists.
    pub recent: Recent,
}

thread_local! {
    /// Retries of the request this worker thread is serving (a request stays on one thread).
    static REQUEST_RETRIES: Cell<u32> = const { Cell::new(0) };
}

/// The process's registry.
pub fn global() -> &'static Metrics {
    static GLOBAL: OnceLock<Metrics> = OnceLock::new();
    GLOBAL.get_or_init(Metrics::new)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            started: Instant::now(),
            started_unix: crate::util::now_unix(),
            requests: SeriesMap::new(MAX_SERIES),
            latency: SeriesMap::new(MAX_SERIES),
            usage: SeriesMap::new(MAX_SERIES),
            refreshes: SeriesMap::new(MAX_SERIES),
            failovers: SeriesMap::new(MAX_SERIES),
            attempts: AtomicU64::new(0),
            retries: Default::default(),
            streams_open: AtomicI64::new(0),
            workers: AtomicU64::new(0),
            workers_busy: AtomicI64::new(0),
            queue_depth: AtomicI64::new(0),
            overload_refusals: AtomicU64::new(0),
            client_identity: RwLock::new(String::new()),
            recent: Recent::default(),
        }
    }

    /// Seconds since the registry was made (the process start, for [`global`]).
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Retries counted on this thread since the last call: the retries of the request this
    /// thread just finished.
    pub fn take_request_retries(&self) -> u32 {
        REQUEST_RETRIES.with(|c| c.replace(0))
    }

    /// An upstream attempt is made.
    pub fn upstream_attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt failed and another follows.
    pub fn retry(&self, reason: RetryReason, account: &str) {
        if let Some(c) = self.retries.get(reason as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        REQUEST_RETRIES.with(|c| c.set(c.get().saturating_add(1)));
        self.recent.event(Event {
            unix_ms: crate::util::now_unix_millis(),
            kind: "retry",
            account: account.to_string(),
            detail: reason.as_str().to_string(),
        });
    }

    /// A request left `account` for the next one.
    pub fn failover(&self, account: &str, why: &str) {
        self.failovers
            .get(&account.to_string(), |_| OTHER.to_string())
            .fetch_add(1, Ordering::Relaxed);
        self.recent.event(Event {
            unix_ms: crate::util::now_unix_millis(),
            kind: "failover",
            account: account.to_string(),
            detail: why.to_string(),
        });
    }

    /// A token refresh of `account` ended.
    pub fn token_refresh(&self, account: &str, ok: bool) {
        let outcome = if ok { "success" } else { "failure" };
        self.refreshes
            .get(&(account.to_string(), outcome), |k| {
                (OTHER.to_string(), k.1)
            })
            .fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.recent.event(Event {
                unix_ms: crate::util::now_unix_millis(),
                kind: "refresh_failed",
                account: account.to_string(),
                detail: "token refresh failed".into(),
            });
        }
    }

    /// A stream to a client opened; it counts as open until the guard is dropped.
    pub fn stream_opened(&self) -> StreamGuard<'_> {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        StreamGuard(self)
    }

    /// The worker pool's size.
    pub fn set_workers(&self, n: usize) {
        self.workers.store(n as u64, Ordering::Relaxed);
    }

    /// A request waits in the queue.
    pub fn queued(&self) {
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
    }

    /// A request did not get into the queue after all.
    pub fn dequeued(&self) {
        self.queue_depth.fetch_sub(1, Ordering::Relaxed);
    }

    /// A worker took a request from the queue and is busy with it.
    pub fn worker_busy(&self) {
        self.queue_depth.fetch_sub(1, Ordering::Relaxed);
        self.workers_busy.fetch_add(1, Ordering::Relaxed);
    }

    /// A worker is done with its request.
    pub fn worker_idle(&self) {
        self.workers_busy.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request was refused with 503 because every worker was busy and the queue full.
    pub fn overload_refused(&self) {
        self.overload_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// The client identity in use (shown in `kiro_gateway_build_info`).
    pub fn set_client_identity(&self, identity: &str) {
        *self
            .client_identity
            .write()
            .unwrap_or_else(|p| p.into_inner()) = identity.to_string();
    }

    pub fn client_identity(&self) -> String {
        self.client_identity
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Count a finished request (after its answer was sent).
    pub fn finish(&self, r: &RequestRecord) {
        let model = if r.model_served.is_empty() {
            "-".to_string()
        } else {
            r.model_served.clone()
        };
        let key = (r.route, r.api, model.clone(), r.status);
        self.requests
            .get(&key, |k| (k.0, k.1, OTHER.to_string(), k.3))
            .fetch_add(1, Ordering::Relaxed);
        if r.api != "-" {
            let lat = self
                .latency
                .get(&(r.api, model.clone()), |k| (k.0, OTHER.to_string()));
            lat.duration.observe(r.duration);
            if let Some(t) = r.ttft {
                lat.ttft.observe(t);
            }
        }
        if r.tokens_in > 0 || r.tokens_out > 0 || r.credits > 0.0 {
            let who = (model, r.account.clone(), r.key.clone());
            let u = self.usage.get(&who, |_| {
                (OTHER.to_string(), OTHER.to_string(), OTHER.to_string())
            });
            u.tokens_in.fetch_add(r.tokens_in, Ordering::Relaxed);
            u.tokens_out.fetch_add(r.tokens_out, Ordering::Relaxed);
            u.credits.add(r.credits);
        }
        // The status page lists API requests only: health checks and scrapes would drown them.
        if r.api == "-" {
            return;
        }
        if r.status >= 400 {
            self.recent.event(Event {
                unix_ms: r.unix_ms,
                kind: "error",
                account: r.account.clone(),
                detail: format!("{} on {} ({})", r.status, r.route, r.model_shown()),
            });
        }
        self.recent.request(r);
    }
}

/// Counts a stream as open while it lives.
pub struct StreamGuard<'a>(&'a Metrics);

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(status: u16, key: &str) -> RequestRecord {
        RequestRecord {
            unix_ms: crate::util::now_unix_millis(),
            method: "POST".into(),
            route: "/v1/chat/completions",
            api: "openai",
            key: key.into(),
            model_requested: "claude-sonnet-4-5".into(),
            model_served: "claude-sonnet-4.5".into(),
            account: "main".into(),
            status,
            duration: Duration::from_millis(800),
            ttft: Some(Duration::from_millis(120)),
            tokens_in: 100,
            tokens_out: 7,
            credits: 0.5,
            ..RequestRecord::default()
        }
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn a_finished_request_moves_its_counters() {
        let m = Metrics::new();
        m.finish(&record(200, "alice"));
        m.finish(&record(200, "alice"));
        m.finish(&record(429, "bob"));
        m.finish(&RequestRecord {
            route: "/health",
            api: "-",
            status: 200,
            ..RequestRecord::default()
        });
        let text = m.render(&Scrape::default());
        assert_eq!(
            value(&text, "kiro_gateway_requests_total{route=\"/v1/chat/completions\",api=\"openai\",model=\"claude-sonnet-4.5\",status=\"200\"}"),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "kiro_gateway_credits_total{model=\"claude-sonnet-4.5\",account=\"main\",key=\"alice\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "kiro_gateway_input_tokens_total{model=\"claude-sonnet-4.5\",account=\"main\",key=\"bob\"}"),
            Some(100.0)
        );
        assert_eq!(
            value(&text, "kiro_gateway_time_to_first_token_seconds_count{api=\"openai\",model=\"claude-sonnet-4.5\"}"),
            Some(3.0)
        );
        assert_eq!(m.recent.requests().len(), 3);
        assert_eq!(m.recent.events(crate::util::now_unix_millis()).len(), 1);
    }

    #[test]
    fn retries_count_per_reason_and_per_request() {
        let m = Metrics::new();
        m.take_request_retries();
        m.upstream_attempt();
        m.retry(RetryReason::Throttle, "a");
        m.upstream_attempt();
        m.retry(RetryReason::FirstTokenTimeout, "a");
        m.upstream_attempt();
        assert_eq!(m.take_request_retries(), 2);
        assert_eq!(m.take_request_retries(), 0);
        let text = m.render(&Scrape::default());
        assert_eq!(
            value(
                &text,
                "kiro_gateway_upstream_retries_total{reason=\"throttle\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "kiro_gateway_upstream_retries_total{reason=\"capacity\"}"
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "kiro_gateway_upstream_attempts_total"),
            Some(3.0)
        );
    }

    #[test]
    fn gauges_follow_streams_workers_and_accounts() {
        let m = Metrics::new();
        m.set_workers(4);
        m.queued();
        m.queued();
        m.worker_busy();
        let guard = m.stream_opened();
        m.token_refresh("main", true);
        m.token_refresh("main", false);
        let scrape = Scrape {
            client_identity: "KiroIDE 1.1.70".into(),
            accounts: vec![AccountGauge {
                name: "main".into(),
                state: AccountState::CoolingDown,
                credits_used: Some(12.5),
                credits_limit: None,
            }],
        };
        let text = m.render(&scrape);
        assert_eq!(value(&text, "kiro_gateway_streams_open"), Some(1.0));
        assert_eq!(value(&text, "kiro_gateway_queue_depth"), Some(1.0));
        assert_eq!(value(&text, "kiro_gateway_workers_busy"), Some(1.0));
        assert_eq!(
            value(
                &text,
                "kiro_gateway_account_state{account=\"main\",state=\"cooling_down\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "kiro_gateway_account_state{account=\"main\",state=\"active\"}"
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "kiro_gateway_account_credits_used{account=\"main\"}"),
            Some(12.5)
        );
        assert_eq!(
            value(
                &text,
                "kiro_gateway_token_refreshes_total{account=\"main\",outcome=\"failure\"}"
            ),
            Some(1.0)
        );
        assert!(text.contains("client_identity=\"KiroIDE 1.1.70\""));
        drop(guard);
        assert_eq!(
            value(&m.render(&scrape), "kiro_gateway_streams_open"),
            Some(0.0)
        );
    }

    #[test]
    fn every_family_is_declared_once_before_its_samples() {
        let m = Metrics::new();
        m.finish(&record(200, "alice"));
        m.failover("a", "throttled");
        let text = m.render(&Scrape::default());
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or("");
                assert!(declared.insert(name.to_string()), "{name} twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or("");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{line} before its TYPE");
            }
        }
    }

    #[test]
    fn retry_reasons_come_from_the_error() {
        use crate::error::Error;
        let up = |status, reason: Option<&str>| Error::Upstream {
            status,
            message: String::new(),
            reason: reason.map(str::to_string),
            retry_after: None,
        };
        assert_eq!(RetryReason::of(&up(429, None)), RetryReason::Throttle);
        assert_eq!(
            RetryReason::of(&up(429, Some("INSUFFICIENT_MODEL_CAPACITY"))),
            RetryReason::Capacity
        );
        assert_eq!(
            RetryReason::of(&up(503, Some("MODEL_TEMPORARILY_UNAVAILABLE"))),
            RetryReason::Capacity
        );
        assert_eq!(
            RetryReason::of(&up(429, Some("MONTHLY_REQUEST_COUNT"))),
            RetryReason::Quota
        );
        assert_eq!(RetryReason::of(&up(502, None)), RetryReason::ServerError);
        let net = Error::Network {
            message: "reset".into(),
            timeout: false,
        };
        assert_eq!(RetryReason::of(&net), RetryReason::Transport);
    }

    #[test]
    fn account_state_is_read_from_the_health_entry() {
        assert_eq!(
            AccountState::from_health("healthy", None),
            AccountState::Active
        );
        assert_eq!(
            AccountState::from_health("cooling_down", Some("quota spent (MONTHLY_REQUEST_COUNT)")),
            AccountState::QuotaSpent
        );
        assert_eq!(
            AccountState::from_health("cooling_down", Some("throttled")),
            AccountState::CoolingDown
        );
        assert_eq!(
            AccountState::from_health("login_revoked", None),
            AccountState::LoginRevoked
        );
    }
}
