//! The calls to Kiro: `GenerateAssistantResponse` with retries, backoff, endpoint fallback and the
//! first-token timeout, and the model list.
//!
//! Retries happen only here, and only before anything was sent to the client: [`KiroClient::generate`]
//! returns once Kiro's first frame has arrived, and after that a failure is the caller's to report.
//! The reply is read on the worker itself ([`Upstream`]): every request is sent with a per-read
//! timeout of one tick (the first-token timeout cut into steps of at most 15 s), so a silent Kiro
//! never blocks a worker longer than a tick and an abandoned attempt holds no thread or socket.

use std::io::Read;
use std::time::Duration;

use crate::auth::{AuthKind, Credentials, TokenStore};
use crate::config::{ClientProfile, UpstreamSettings};
use crate::error::Error;
use crate::kiro::discovery::{self, VersionMode};
use crate::kiro::identity::{self, CallShape};
use crate::kiro::models::ModelInfo;
use crate::kiro::payload::BuiltPayload;
use crate::kiro::wire::AttemptShape;
use crate::metrics::RetryReason;
use crate::util::random_u64;

pub use crate::kiro::refusal::{enhance_message, is_context_overflow, is_suspension};
pub use crate::kiro::upstream::{Next, Upstream};

use crate::kiro::refusal::{
    classify_status, dropped_before_answer, exception_status, first_token_timeout,
    moves_to_another_account, network_failure, Failure,
};

/// Bytes of Kiro error bodies we read.
const MAX_ERROR_BODY: u64 = 256 * 1024;
/// `USER_REQUEST_RATE_EXCEEDED` without Retry-After waits at least this many base delays.
const PENALTY_WINDOW_FACTOR: u32 = 5;

/// What the retry loop does after a failed attempt.
enum Step {
    /// Wait this long, then the next attempt.
    Wait(Duration),
    /// The same attempt again at once (not counted as a retry).
    Again,
}

/// The retry loop's state across attempts.
struct Run {
    max: u32,
    fallen_back: bool,
    refreshed: bool,
    rediscovered: bool,
    strip_signatures: bool,
    last_error: Error,
}

/// What the failed attempt sent.
struct Sent<'a> {
    attempt: u32,
    profile: ClientProfile,
    creds: &'a Credentials,
    version: &'a str,
}

/// Parameters of one generate call that do not depend on the attempt.
pub struct GenerateParams<'a> {
    /// The request from `kiro::payload`, rendered for each attempt.
    pub payload: &'a BuiltPayload,
    /// Keep the raw stream for the debug log.
    pub capture_raw: bool,
    /// Return a 429 at once instead of retrying (another account can take the request).
    pub fail_fast_on_throttle: bool,
    /// Whether the reply is no longer wanted (its client has gone): then no further attempt is
    /// made, and the last failure is returned.
    pub abandoned: &'a dyn Fn() -> bool,
}

/// The Kiro API client. Cheap to share between workers (`&KiroClient`).
pub struct KiroClient {
    config: UpstreamSettings,
}

impl KiroClient {
    pub fn new(config: UpstreamSettings) -> KiroClient {
        KiroClient { config }
    }

    /// The settings the client was built with (for the other Kiro calls: search, models).
    pub fn settings(&self) -> &UpstreamSettings {
        &self.config
    }

    /// Open a reply: retries, refresh on 403, fallback, first-token timeout. Returns when Kiro's
    /// first frame has arrived (or the reply ended empty), so the caller can start writing.
    pub fn generate(
        &self,
        store: &TokenStore,
        agent: &ureq::Agent,
        params: &GenerateParams,
    ) -> Result<Upstream, Error> {
        let cfg = &self.config;
        let mut run = Run {
            max: cfg.max_retries.max(1),
            fallen_back: false,
            refreshed: false,
            rediscovered: false,
            strip_signatures: false,
            last_error: Error::Internal("no attempt was made".into()),
        };
        let mut attempt = 0;
        while attempt < run.max {
            // Every further attempt costs Kiro requests (and the client's retries add their own).
            if attempt > 0 && (params.abandoned)() {
                log::info!("the client has gone: no further attempt after {attempt}");
                break;
            }
            attempt += 1;
            let creds = store.credentials()?;
            let mut profile = identity::effective_profile(cfg, &creds);
            if run.fallen_back {
                profile = ClientProfile::IdeLegacy;
            }
            let shape = identity::call_shape(cfg, profile, &creds, attempt, run.max);
            let sent_version = cfg.ide_version.get();
            let body = attempt_body(params.payload, &shape, &creds, !run.strip_signatures);
            crate::metrics::global().upstream_attempt();
            let failure = match self.attempt(agent, &shape, &creds, &body, params, store.name()) {
                Ok(up) => {
                    cfg.ide_version.mark_accepted();
                    return Ok(up);
                }
                Err(f) => f,
            };
            let sent = Sent {
                attempt,
                profile,
                creds: &creds,
                version: &sent_version,
            };
            match self.after_failure(&mut run, failure, &sent, store, params)? {
                Step::Wait(delay) if attempt < run.max && !delay.is_zero() => {
                    std::thread::sleep(delay)
                }
                Step::Wait(_) => {}
                // Not a Kiro retry: the same attempt again, changed.
                Step::Again => attempt -= 1,
            }
        }
        Err(run.last_error)
    }

    /// What a failed attempt leads to: a wait before the next one, the same attempt again (after
    /// a change), or the error for the client.
    fn after_failure(
        &self,
        run: &mut Run,
        failure: Failure,
        sent: &Sent,
        store: &TokenStore,
        params: &GenerateParams,
    ) -> Result<Step, Error> {
        let cfg = &self.config;
        match failure {
            Failure::Final(e) => Err(e),
            Failure::VersionRefused { message } => self.version_refused(run, sent, message),
            Failure::SignatureInvalid(error) => {
                if run.strip_signatures {
                    return Err(error);
                }
                log::warn!(
                    "Kiro refused the reasoning signatures of the history; retrying without them"
                );
                run.strip_signatures = true;
                Ok(Step::Again)
            }
            Failure::Forbidden { error, token } => {
                if run.refreshed {
                    // A second 403 after a fresh token is not a token problem.
                    return Err(error);
                }
                run.refreshed = true;
                crate::metrics::global().retry(RetryReason::Auth, store.name());
                run.last_error = error;
                log::info!("Kiro answered 403; refreshing the token and retrying");
                store.force_refresh(&token)?;
                Ok(Step::Wait(Duration::ZERO))
            }
            Failure::Retry {
                error,
                delay,
                fallback,
            } => {
                if params.fail_fast_on_throttle && moves_to_another_account(&error) {
                    return Err(error);
                }
                log::warn!("attempt {}/{} failed: {error}", sent.attempt, run.max);
                if sent.attempt < run.max {
                    crate::metrics::global().retry(RetryReason::of(&error), store.name());
                }
                run.last_error = error;
                if fallback
                    && cfg.endpoint_fallback
                    && !run.fallen_back
                    && sent.profile != ClientProfile::IdeLegacy
                    && sent.creds.kind != AuthKind::ApiKey
                {
                    run.fallen_back = true;
                    log::info!("falling back to the legacy Kiro endpoint");
                }
                let penalty = matches!(&run.last_error, Error::Upstream { reason: Some(r), .. }
                    if r == "USER_REQUEST_RATE_EXCEEDED");
                Ok(Step::Wait(delay.unwrap_or_else(|| {
                    let b = backoff(cfg.base_retry_delay, sent.attempt);
                    // A penalty window (`docs/kiro-wire.md#errors`): a retry within a second is
                    // refused again about half the time, after 5–8 s rarely.
                    if penalty {
                        b.max(cfg.base_retry_delay * PENALTY_WINDOW_FACTOR)
                    } else {
                        b
                    }
                })))
            }
        }
    }

    /// Kiro refused the client version: with discovery on, look for a newer version at once and
    /// send the request once more if there is one; otherwise say what to do.
    fn version_refused(&self, run: &mut Run, sent: &Sent, message: String) -> Result<Step, Error> {
        let cfg = &self.config;
        let cli = sent.profile == ClientProfile::Cli;
        if !cli && !run.rediscovered && cfg.ide_version.mode() == VersionMode::Auto {
            run.rediscovered = true;
            // Another request may have found a newer version meanwhile.
            if cfg.ide_version.get() != sent.version {
                return Ok(Step::Again);
            }
            match discovery::discover(cfg) {
                Ok(true) => {
                    log::warn!(
                        "Kiro refused IDE version {}; retrying with {}",
                        sent.version,
                        cfg.ide_version
                    );
                    return Ok(Step::Again);
                }
                Ok(false) => {}
                Err(e) => log::warn!("IDE version discovery failed ({e})"),
            }
        }
        let (setting, version) = if cli {
            ("KIRO_CLI_VERSION", cfg.cli_version.clone())
        } else {
            ("KIRO_IDE_VERSION", sent.version.to_string())
        };
        cfg.ide_version.mark_refused(&version);
        log::error!(
            "Kiro refuses the client version {version} (\"{message}\"): set {setting} to the version of the current Kiro release and restart the gateway"
        );
        Err(Error::ClientVersionRefused {
            setting,
            version,
            message,
        })
    }

    /// One request to Kiro. Returns when the first frame is here (or the reply ended empty).
    fn attempt(
        &self,
        agent: &ureq::Agent,
        shape: &CallShape,
        creds: &Credentials,
        body: &[u8],
        params: &GenerateParams,
        account: &str,
    ) -> Result<Upstream, Failure> {
        let cfg = &self.config;
        let sent = match self.send(agent, shape, creds, body) {
            // Kiro closes connections that sat idle; a pooled one can die just as it is reused.
            // Nothing was answered, so the request goes once more on a fresh connection (a new
            // pool of this account's agent), which is not a Kiro retry.
            Err(e) if dropped_before_answer(&e) => {
                log::debug!("the connection to Kiro closed before an answer ({e}); sending again on a fresh one");
                self.send(&agent.config().new_agent(), shape, creds, body)
            }
            other => other,
        };
        let resp = match sent {
            Ok(r) => r,
            // The response head did not come within one tick: Kiro is as silent as a reply
            // without its first frame.
            Err(ureq::Error::Timeout(ureq::Timeout::PerRead)) => {
                return Err(first_token_timeout(cfg))
            }
            Err(e) => return Err(network_failure(&e)),
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        if status == 200 && !content_type.contains("json") {
            let reader = Box::new(resp.into_body().into_reader());
            let up = Upstream::new(reader, params.capture_raw, account.to_string());
            return self.first_frame(up, &creds.access_token);
        }
        let mut text = String::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(MAX_ERROR_BODY)
            .read_to_string(&mut text);
        // A 200 with a JSON body is a throttle in disguise (`docs/kiro-wire.md#errors`).
        let status = if status == 200 { 429 } else { status };
        Err(classify_status(
            status,
            &text,
            retry_after,
            &creds.access_token,
        ))
    }

    /// Send the request; returns at the response head.
    fn send(
        &self,
        agent: &ureq::Agent,
        shape: &CallShape,
        creds: &Credentials,
        body: &[u8],
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut req = agent
            .post(&shape.url)
            .config()
            .timeout_per_read(Some(read_tick(&self.config)))
            .build()
            .header("authorization", &format!("Bearer {}", creds.access_token))
            .header("accept", "*/*");
        for (k, v) in &shape.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        req.send(body)
    }

    /// Wait for the reply's first frame (the first-token timeout).
    fn first_frame(&self, mut up: Upstream, token: &str) -> Result<Upstream, Failure> {
        match up.fill(self.config.first_token_timeout) {
            // An exception as the very first frame is Kiro refusing the request before any
            // content: nothing has reached the client, so it is classified (and retried) like the
            // same error sent as an HTTP status.
            Ok(true) => match up.leading_exception() {
                Some((kind, message, reason)) => {
                    let body = serde_json::json!({"message": format!("{kind}: {message}"), "reason": reason});
                    Err(classify_status(
                        exception_status(&kind),
                        &body.to_string(),
                        None,
                        token,
                    ))
                }
                None => Ok(up),
            },
            Ok(false) => Err(first_token_timeout(&self.config)),
            // Bytes arrived, so the host answered: a broken stream is no reason to switch.
            Err(e) => Err(Failure::Retry {
                error: e,
                delay: None,
                fallback: false,
            }),
        }
    }

    /// Every model Kiro lists for this login (see [`crate::kiro::model_list`]).
    pub fn list_models(
        &self,
        store: &TokenStore,
        agent: &ureq::Agent,
    ) -> Result<Vec<ModelInfo>, Error> {
        crate::kiro::model_list::list_models(&self.config, store, agent)
    }
}

/// The longest a single read of Kiro's reply blocks: the first-token timeout, cut into equal
/// steps of at most 15 s (the keep-alive period), so that waits measured in reads end on time.
fn read_tick(cfg: &UpstreamSettings) -> Duration {
    let first = cfg
        .first_token_timeout
        .min(cfg.net.streaming_read_timeout)
        .max(Duration::from_millis(10));
    let steps = first.as_secs_f64() / 15.0;
    first.div_f64(steps.ceil().max(1.0))
}

/// Exponential backoff with up to 25 % jitter, capped at 30 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let jitter = (random_u64() % 1000) as f64 / 4000.0;
    Duration::from_secs_f64((exp * (1.0 + jitter)).min(30.0))
}

/// The body of one attempt: the prepared request rendered with this attempt's origin, runtime
/// members and profile ARN (API keys never send one; `docs/kiro-wire.md#profile-arn`).
///
/// `replay_reasoning: false` leaves the history's reasoning (and its signatures) out, for the one
/// retry after Kiro refused a signature (`docs/kiro-wire.md#errors`).
fn attempt_body(
    payload: &BuiltPayload,
    shape: &CallShape,
    creds: &Credentials,
    replay_reasoning: bool,
) -> Vec<u8> {
    let profile_arn = creds
        .profile_arn
        .as_deref()
        .filter(|_| creds.kind != AuthKind::ApiKey);
    payload.to_bytes(&AttemptShape {
        origin: shape.origin,
        runtime_body: shape.runtime_body,
        profile_arn,
        replay_reasoning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ticks_divide_the_first_token_timeout_into_steps_of_at_most_15_s() {
        let tick = |first: u64, read: u64| {
            let mut c = UpstreamSettings::defaults();
            c.first_token_timeout = Duration::from_secs(first);
            c.net.streaming_read_timeout = Duration::from_secs(read);
            read_tick(&c)
        };
        assert_eq!(tick(15, 300), Duration::from_secs(15));
        assert_eq!(tick(1, 300), Duration::from_secs(1));
        assert_eq!(tick(20, 300), Duration::from_secs(10));
        assert_eq!(tick(60, 300), Duration::from_secs(15));
        assert_eq!(tick(15, 3), Duration::from_secs(3));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_secs(1);
        assert!(backoff(b, 1) >= Duration::from_secs(1));
        assert!(backoff(b, 3) >= Duration::from_secs(4));
        assert!(backoff(b, 30) <= Duration::from_secs(30));
    }
}
