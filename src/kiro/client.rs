//! The calls to Kiro: `GenerateAssistantResponse` with retries, backoff, endpoint fallback and the
//! first-token timeout, and the paginated `List-Available-Models`.
//!
//! Retries happen only here, and only before anything was sent to the client: [`KiroClient::generate`]
//! returns once Kiro's first frame has arrived, and after that a failure is the caller's to report.
//! The response body is read on a small reader thread and handed over through a bounded channel,
//! so the worker can wait with the first-token timeout, which is shorter than the per-read timeout
//! the agent applies to every read (`docs/kiro-wire.md#connections`), and is never blocked by a
//! silent upstream.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::auth::{AuthKind, Credentials, TokenStore};
use crate::config::{ClientProfile, Config};
use crate::error::Error;
use crate::kiro::discovery::{self, VersionMode};
use crate::kiro::events::{decode_event, KiroEvent};
use crate::kiro::eventstream::{Decoder, Frame};
use crate::kiro::identity::{self, CallShape};
use crate::kiro::models::{parse_models_page, ModelInfo};
use crate::metrics::RetryReason;
use crate::util::{percent_encode, random_u64};

/// Reasons that mean the plan's quota is spent: retrying cannot help (`docs/kiro-wire.md#errors`).
const QUOTA_REASONS: &[&str] = &["MONTHLY_REQUEST_COUNT", "DAILY_REQUEST_COUNT"];
/// `USER_REQUEST_RATE_EXCEEDED` without Retry-After waits at least this many base delays.
const PENALTY_WINDOW_FACTOR: u32 = 5;
/// A Retry-After longer than this is not waited out; the client gets the 429 and the header.
const MAX_RETRY_AFTER_WAIT: u64 = 60;
/// Raw stream bytes kept for the debug files, at most.
const MAX_RAW_CAPTURE: usize = 32 * 1024 * 1024;
/// Bytes of Kiro error bodies we read.
const MAX_ERROR_BODY: u64 = 256 * 1024;

/// What one failed attempt tells the retry loop.
#[derive(Debug)]
enum Failure {
    /// Try again after this delay (None: the computed backoff). `fallback`: the legacy host may help.
    Retry {
        error: Error,
        delay: Option<Duration>,
        fallback: bool,
    },
    /// 403: refresh the token, then try again at once.
    Forbidden { error: Error, token: String },
    /// 400 "This version of Kiro is no longer supported": never sent again as is.
    VersionRefused { message: String },
    /// Kiro refused a reasoning signature of the history: once more without them.
    SignatureInvalid(Error),
    /// No retry can help.
    Final(Error),
}

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

/// A chunk from the reader thread.
enum Chunk {
    Data(Vec<u8>),
    End,
    Failed(String),
}

/// What the next read of the reply gave.
#[derive(Debug)]
pub enum Next {
    Event(KiroEvent),
    /// Nothing arrived within the wait; the stream is still open.
    Idle,
    /// The reply ended cleanly.
    End,
}

/// An open reply from Kiro, decoded frame by frame as bytes arrive.
pub struct Upstream {
    rx: Receiver<Chunk>,
    decoder: Decoder,
    frames: VecDeque<Frame>,
    ended: bool,
    /// A read error already taken off the channel by `has_pending`, reported by the next read.
    failed: Option<String>,
    raw: Option<Vec<u8>>,
    /// Which account served the reply (for logs and stickiness).
    pub account: String,
}

impl Upstream {
    fn new(rx: Receiver<Chunk>, capture_raw: bool, account: String) -> Upstream {
        Upstream {
            rx,
            decoder: Decoder::new(),
            frames: VecDeque::new(),
            ended: false,
            failed: None,
            raw: capture_raw.then(Vec::new),
            account,
        }
    }

    /// Bytes from the reader thread: into the decoder, and into the debug capture when kept.
    fn take_in(&mut self, bytes: &[u8]) {
        if let Some(raw) = self.raw.as_mut() {
            if raw.len() < MAX_RAW_CAPTURE {
                raw.extend_from_slice(bytes);
            }
        }
        self.decoder.feed(bytes);
    }

    /// Read until a whole frame is buffered or the stream ended; `Ok(false)` on timeout.
    fn fill(&mut self, wait: Duration) -> Result<bool, Error> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(frame) = self
                .decoder
                .next_frame()
                .map_err(|e| Error::Stream(format!("invalid event-stream frame: {e}")))?
            {
                self.frames.push_back(frame);
            }
            if !self.frames.is_empty() {
                return Ok(true);
            }
            if self.ended {
                if self.decoder.has_partial() {
                    return Err(Error::Stream(
                        "the connection closed in the middle of a frame".into(),
                    ));
                }
                return Ok(true);
            }
            if let Some(e) = self.failed.take() {
                return Err(Error::Stream(format!("the connection to Kiro broke: {e}")));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Chunk::Data(bytes)) => self.take_in(&bytes),
                Ok(Chunk::End) | Err(RecvTimeoutError::Disconnected) => self.ended = true,
                Ok(Chunk::Failed(e)) => {
                    return Err(Error::Stream(format!("the connection to Kiro broke: {e}")))
                }
                Err(RecvTimeoutError::Timeout) => return Ok(false),
            }
        }
    }

    /// The next event, waiting at most `wait` for it.
    pub fn next(&mut self, wait: Duration) -> Result<Next, Error> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                match decode_event(&frame) {
                    Ok(ev) => return Ok(Next::Event(ev)),
                    Err(e) => {
                        log::warn!("skipping an undecodable Kiro event: {}", e.0);
                        continue;
                    }
                }
            }
            if !self.fill(wait)? {
                return Ok(Next::Idle);
            }
            if self.frames.is_empty() && self.ended {
                return Ok(Next::End);
            }
        }
    }

    /// When the first buffered frame is an exception: the HTTP status it stands for and a
    /// Kiro-style error body (`{"message","reason"}`) for [`classify_status`].
    fn leading_exception(&self) -> Option<(u16, String)> {
        let frame = self.frames.front()?;
        let Ok(KiroEvent::Exception {
            kind,
            message,
            reason,
        }) = decode_event(frame)
        else {
            return None;
        };
        let status = match kind.as_str() {
            k if k.contains("Throttling") => 429,
            k if k.contains("AccessDenied") => 403,
            k if k.contains("Validation") || k == "invalidStateEvent" => 400,
            k if k.contains("ResourceNotFound") => 404,
            k if k.contains("ServiceUnavailable") => 503,
            _ => 500,
        };
        let body = serde_json::json!({"message": format!("{kind}: {message}"), "reason": reason});
        Some((status, body.to_string()))
    }

    /// Whether another frame is already here (decoded, or its bytes waiting in the channel):
    /// the writer then gathers it into the same write instead of flushing now.
    pub fn has_pending(&mut self) -> bool {
        if !self.frames.is_empty() {
            return true;
        }
        while let Ok(chunk) = self.rx.try_recv() {
            match chunk {
                Chunk::Data(bytes) => {
                    self.take_in(&bytes);
                    while let Ok(Some(frame)) = self.decoder.next_frame() {
                        self.frames.push_back(frame);
                    }
                    if !self.frames.is_empty() {
                        return true;
                    }
                }
                Chunk::End => {
                    self.ended = true;
                    return false;
                }
                Chunk::Failed(e) => {
                    self.failed = Some(e);
                    return false;
                }
            }
        }
        false
    }

    /// The raw bytes received so far, when capture was enabled (debug logs).
    pub fn take_raw(&mut self) -> Option<Vec<u8>> {
        self.raw.take()
    }
}

/// Parameters of one generate call that do not depend on the attempt.
pub struct GenerateParams<'a> {
    /// The Kiro body from `kiro::payload`, without profileArn.
    pub body: &'a Value,
    /// Keep the raw stream for the debug log.
    pub capture_raw: bool,
    /// Return a 429 at once instead of retrying (another account can take the request).
    pub fail_fast_on_throttle: bool,
}

/// The Kiro API client. Cheap to share between workers (`&KiroClient`).
pub struct KiroClient {
    config: std::sync::Arc<Config>,
}

impl KiroClient {
    pub fn new(config: std::sync::Arc<Config>) -> KiroClient {
        KiroClient { config }
    }

    /// Open a reply: retries, refresh on 403, fallback, first-token timeout. Returns when Kiro's
    /// first frame has arrived (or the reply ended empty), so the caller can start writing.
    pub fn generate(
        &self,
        store: &TokenStore,
        agent: &ureq::Agent,
        params: &GenerateParams,
    ) -> Result<Upstream, Error> {
        let cfg = &*self.config;
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
            attempt += 1;
            let creds = store.credentials()?;
            let mut profile = identity::effective_profile(cfg, &creds);
            if run.fallen_back {
                profile = ClientProfile::IdeLegacy;
            }
            let shape = identity::call_shape(cfg, profile, &creds, attempt, run.max);
            let sent_version = cfg.ide_version.get();
            let body = if run.strip_signatures {
                adapt_body(&without_history_reasoning(params.body), &shape, &creds)
            } else {
                adapt_body(params.body, &shape, &creds)
            };
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
        let cfg = &*self.config;
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
        let cfg = &*self.config;
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

    fn attempt(
        &self,
        agent: &ureq::Agent,
        shape: &CallShape,
        creds: &Credentials,
        body: &[u8],
        params: &GenerateParams,
        account: &str,
    ) -> Result<Upstream, Failure> {
        let cfg = &*self.config;
        let mut req = agent
            .post(&shape.url)
            .header("authorization", &format!("Bearer {}", creds.access_token))
            .header("accept", "*/*");
        for (k, v) in &shape.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = match req.send(body) {
            Ok(r) => r,
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
            let (tx, rx) = sync_channel::<Chunk>(32);
            let mut reader = resp.into_body().into_reader();
            let spawned = std::thread::Builder::new()
                .name("kiro-reader".into())
                .spawn(move || {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        match reader.read(&mut buf) {
                            Ok(0) => {
                                let _ = tx.send(Chunk::End);
                                return;
                            }
                            Ok(n) => {
                                if tx.send(Chunk::Data(buf[..n].to_vec())).is_err() {
                                    return;
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let _ = tx.send(Chunk::Failed(e.to_string()));
                                return;
                            }
                        }
                    }
                });
            if let Err(e) = spawned {
                return Err(Failure::Final(Error::Internal(format!(
                    "could not start a reader thread: {e}"
                ))));
            }
            let mut up = Upstream::new(rx, params.capture_raw, account.to_string());
            return match up.fill(cfg.first_token_timeout) {
                // An exception as the very first frame is Kiro refusing the request before any
                // content: nothing has reached the client, so it is classified (and retried)
                // like the same error sent as an HTTP status.
                Ok(true) => match up.leading_exception() {
                    Some((status, text)) => {
                        Err(classify_status(status, &text, None, &creds.access_token))
                    }
                    None => Ok(up),
                },
                Ok(false) => Err(Failure::Retry {
                    error: Error::FirstTokenTimeout {
                        seconds: cfg.first_token_timeout.as_secs_f64(),
                        attempts: cfg.max_retries.max(1),
                    },
                    delay: Some(Duration::ZERO),
                    fallback: false,
                }),
                // Bytes arrived, so the host answered: a broken stream is no reason to switch.
                Err(e) => Err(Failure::Retry {
                    error: e,
                    delay: None,
                    fallback: false,
                }),
            };
        }
        let mut text = String::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(MAX_ERROR_BODY)
            .read_to_string(&mut text);
        // A 200 with a JSON body is a throttle in disguise (`docs/kiro-wire.md#event-stream`).
        let status = if status == 200 { 429 } else { status };
        Err(classify_status(
            status,
            &text,
            retry_after,
            &creds.access_token,
        ))
    }

    /// Fetch every page of `List-Available-Models`.
    pub fn list_models(
        &self,
        store: &TokenStore,
        agent: &ureq::Agent,
    ) -> Result<Vec<ModelInfo>, Error> {
        let cfg = &*self.config;
        let creds = store.credentials()?;
        let profile = identity::effective_profile(cfg, &creds);
        let base = cfg.management_base(&creds.api_region);
        let (ua, amz_ua) = identity::control_plane_agents(cfg, profile, &creds.machine_id);
        let origin = if profile == ClientProfile::Cli {
            "KIRO_CLI"
        } else {
            "AI_EDITOR"
        };
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..50 {
            let mut url = format!("{base}/List-Available-Models?origin={origin}&maxResults=50");
            if let Some(arn) = &creds.profile_arn {
                url.push_str(&format!("&profileArn={}", percent_encode(arn)));
            }
            if let Some(t) = &next {
                url.push_str(&format!("&nextToken={}", percent_encode(t)));
            }
            let mut req = agent
                .get(&url)
                .header("authorization", &format!("Bearer {}", creds.access_token))
                .header("accept", "application/json")
                .header("user-agent", &ua)
                .header("x-amz-user-agent", &amz_ua);
            if let Some((k, v)) = identity::token_type_header(creds.kind) {
                req = req.header(k, v);
            }
            let resp = req.call().map_err(|e| Error::Network {
                message: e.to_string(),
                timeout: matches!(e, ureq::Error::Timeout(_)),
            })?;
            let status = resp.status().as_u16();
            let mut text = String::new();
            let _ = resp
                .into_body()
                .into_reader()
                .take(16 * 1024 * 1024)
                .read_to_string(&mut text);
            if status != 200 {
                return Err(Error::Upstream {
                    status,
                    message: error_message(&text).0,
                    reason: None,
                    retry_after: None,
                });
            }
            let json: Value = serde_json::from_str(&text)
                .map_err(|e| Error::Internal(format!("List-Available-Models: {e}")))?;
            let (models, token) = parse_models_page(&json)?;
            all.extend(models);
            match token {
                Some(t) if !t.is_empty() => next = Some(t),
                _ => return Ok(all),
            }
        }
        Ok(all)
    }
}

/// Exponential backoff with up to 25 % jitter, capped at 30 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(16) as i32);
    let jitter = (random_u64() % 1000) as f64 / 4000.0;
    Duration::from_secs_f64((exp * (1.0 + jitter)).min(30.0))
}

/// Put the per-attempt parts into the body: origin, runtime fields, profileArn.
fn adapt_body(body: &Value, shape: &CallShape, creds: &Credentials) -> Vec<u8> {
    let mut body = body.clone();
    if let Some(state) = body.get_mut("conversationState") {
        let set_origin = |m: &mut Value| {
            if let Some(u) = m.get_mut("userInputMessage").and_then(Value::as_object_mut) {
                u.insert("origin".into(), Value::String(shape.origin.into()));
            }
        };
        if let Some(cur) = state.get_mut("currentMessage") {
            set_origin(cur);
        }
        if let Some(history) = state.get_mut("history").and_then(Value::as_array_mut) {
            history.iter_mut().for_each(set_origin);
        }
        if let Some(obj) = state.as_object_mut() {
            if shape.runtime_body {
                if let Some(id) = obj.get("conversationId").cloned() {
                    obj.insert("rootConversationId".into(), id);
                }
            } else {
                obj.remove("rootConversationId");
            }
        }
    }
    if let Some(obj) = body.as_object_mut() {
        if shape.runtime_body {
            obj.insert("agentMode".into(), Value::String("vibe".into()));
        } else {
            obj.remove("agentMode");
        }
        match &creds.profile_arn {
            Some(arn) if creds.kind != AuthKind::ApiKey => {
                obj.insert("profileArn".into(), Value::String(arn.clone()));
            }
            _ => {
                obj.remove("profileArn");
            }
        }
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `message` and `reason` out of a Kiro error body (JSON or text).
fn error_message(text: &str) -> (String, Option<String>) {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => {
            let message = o
                .get("message")
                .or_else(|| o.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    o.get("__type")
                        .and_then(Value::as_str)
                        .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
                })
                // Never "Unknown error": without a message, the body itself is the evidence.
                .unwrap_or_else(|| format!("no error message; the body was {}", excerpt(text)));
            let reason = o
                .get("reason")
                .and_then(Value::as_str)
                .filter(|r| !r.is_empty() && *r != "UNKNOWN")
                .map(str::to_string);
            (message, reason)
        }
        _ => (excerpt(text), None),
    }
}

/// The first 500 characters of a body, or `(empty body)`.
fn excerpt(text: &str) -> String {
    let t: String = text.trim().chars().take(500).collect();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t
    }
}

/// A helpful sentence for Kiro's error reasons (`docs/kiro-wire.md#errors`).
pub fn enhance_message(message: &str, reason: Option<&str>) -> String {
    match reason {
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD") => format!(
            "Model context limit reached: the conversation is too long for the model. Compact the conversation or start a new one. (Kiro: {message})"
        ),
        Some("MONTHLY_REQUEST_COUNT") => format!(
            "Monthly request limit exceeded: this Kiro account has used its monthly quota. (Kiro: {message}, reason: MONTHLY_REQUEST_COUNT)"
        ),
        Some("DAILY_REQUEST_COUNT") => format!(
            "Daily request limit exceeded: this Kiro account has used its daily quota. (Kiro: {message}, reason: DAILY_REQUEST_COUNT)"
        ),
        Some("INVALID_MODEL_ID") => format!(
            "Kiro does not offer this model to this account. (Kiro: {message}, reason: INVALID_MODEL_ID)"
        ),
        Some(r) => format!("{message} (reason: {r})"),
        None => message.to_string(),
    }
}

/// Whether Kiro's message says the input is too long.
pub fn is_context_overflow(message: &str, reason: Option<&str>) -> bool {
    reason == Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD")
        || message.to_ascii_lowercase().contains("input is too long")
}

/// Reason of the refusal of a model that is overloaded for a while: another try (or another
/// account) usually works.
const MODEL_UNAVAILABLE: &str = "MODEL_TEMPORARILY_UNAVAILABLE";

/// Whether Kiro's words say the account is suspended or locked (`docs/kiro-wire.md#errors`).
pub fn is_suspension(message: &str, reason: Option<&str>) -> bool {
    let lower = message.to_ascii_lowercase();
    reason == Some("TEMPORARILY_SUSPENDED")
        || lower.contains("temporarily suspended")
        || lower.contains("temporarily is suspended")
        || lower.contains("locked your account")
}

/// Whether Kiro's words say the client version is refused.
fn is_version_refusal(status: u16, message: &str) -> bool {
    status == 400 && message.to_ascii_lowercase().contains("no longer supported")
}

/// Whether Kiro refused a reasoning signature of the history.
fn is_signature_refusal(status: u16, message: &str, reason: Option<&str>) -> bool {
    reason == Some("THINKING_SIGNATURE_INVALID")
        || (status == 400 && message.to_ascii_lowercase().contains("signature"))
}

/// Errors another account may not have: with several accounts they are not waited out here.
fn moves_to_another_account(e: &Error) -> bool {
    match e {
        Error::Upstream { status: 429, .. } => true,
        Error::Upstream {
            reason: Some(r), ..
        } => r == MODEL_UNAVAILABLE,
        _ => false,
    }
}

fn classify_status(status: u16, text: &str, retry_after: Option<u64>, token: &str) -> Failure {
    let (message, reason) = error_message(text);
    if is_context_overflow(&message, reason.as_deref()) {
        return Failure::Final(Error::ContextLengthExceeded(enhance_message(
            &message,
            Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
        )));
    }
    if is_suspension(&message, reason.as_deref()) {
        // Never refreshed, retried or sent to another host: it would look like credential probing.
        return Failure::Final(Error::AccountSuspended {
            message: enhance_message(&message, reason.as_deref()),
        });
    }
    if is_version_refusal(status, &message) {
        return Failure::VersionRefused { message };
    }
    let error = Error::Upstream {
        status,
        message: enhance_message(&message, reason.as_deref()),
        reason: reason.clone(),
        retry_after,
    };
    if is_signature_refusal(status, &message, reason.as_deref()) {
        return Failure::SignatureInvalid(error);
    }
    if reason.as_deref() == Some(MODEL_UNAVAILABLE) {
        return Failure::Retry {
            error,
            delay: None,
            fallback: false,
        };
    }
    match status {
        403 => Failure::Forbidden {
            error,
            token: token.to_string(),
        },
        429 if reason
            .as_deref()
            .is_some_and(|r| QUOTA_REASONS.contains(&r)) =>
        {
            Failure::Final(error)
        }
        429 | 500..=599 => match retry_after {
            Some(s) if s > MAX_RETRY_AFTER_WAIT => Failure::Final(error),
            Some(s) => Failure::Retry {
                error,
                delay: Some(Duration::from_secs(s)),
                fallback: status >= 500,
            },
            None => Failure::Retry {
                error,
                delay: None,
                fallback: status >= 500,
            },
        },
        _ => Failure::Final(error),
    }
}

/// The body without the reasoning of earlier assistant turns (signatures and all).
fn without_history_reasoning(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(history) = body
        .pointer_mut("/conversationState/history")
        .and_then(Value::as_array_mut)
    {
        for turn in history {
            if let Some(m) = turn
                .get_mut("assistantResponseMessage")
                .and_then(Value::as_object_mut)
            {
                m.remove("reasoningContent");
            }
        }
    }
    body
}

fn network_failure(e: &ureq::Error) -> Failure {
    let message = e.to_string();
    let timeout = matches!(e, ureq::Error::Timeout(_));
    let lower = message.to_ascii_lowercase();
    let error = Error::Network {
        message: message.clone(),
        timeout,
    };
    // TLS and certificate problems do not heal by retrying.
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("invalid dns name")
    {
        return Failure::Final(error);
    }
    Failure::Retry {
        error,
        delay: None,
        fallback: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_reasons_are_never_retried() {
        let f = classify_status(
            429,
            r#"{"message":"quota","reason":"MONTHLY_REQUEST_COUNT"}"#,
            None,
            "t",
        );
        assert!(matches!(
            f,
            Failure::Final(Error::Upstream { status: 429, .. })
        ));
    }

    #[test]
    fn throttles_and_5xx_are_retried_with_retry_after() {
        let f = classify_status(
            429,
            r#"{"message":"slow","reason":"USER_REQUEST_RATE_EXCEEDED"}"#,
            Some(2),
            "t",
        );
        assert!(matches!(
            f,
            Failure::Retry { delay: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            classify_status(503, "oops", None, "t"),
            Failure::Retry { delay: None, .. }
        ));
        assert!(matches!(
            classify_status(429, "{}", Some(3600), "t"),
            Failure::Final(_)
        ));
    }

    #[test]
    fn context_overflow_becomes_its_own_error() {
        let f = classify_status(
            400,
            r#"{"message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}"#,
            None,
            "t",
        );
        assert!(matches!(f, Failure::Final(Error::ContextLengthExceeded(_))));
    }

    #[test]
    fn bad_requests_are_final_and_keep_kiros_words() {
        match classify_status(
            400,
            r#"{"message":"Improperly formed request.","reason":"REQUEST_BODY_INVALID"}"#,
            None,
            "t",
        ) {
            Failure::Final(Error::Upstream {
                status, message, ..
            }) => {
                assert_eq!(status, 400);
                assert!(message.contains("Improperly formed request."));
                assert!(message.contains("REQUEST_BODY_INVALID"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn throttle_type_on_200_reads_as_message() {
        let (m, _) = error_message(r#"{"__type":"com.amazon#ThrottlingException"}"#);
        assert_eq!(m, "ThrottlingException");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Duration::from_secs(1);
        assert!(backoff(b, 1) >= Duration::from_secs(1));
        assert!(backoff(b, 3) >= Duration::from_secs(4));
        assert!(backoff(b, 30) <= Duration::from_secs(30));
    }
}
