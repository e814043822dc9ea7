//! The one error type of the gateway: what went wrong, and for whom.
//!
//! Every failure on the request path ends up as an [`Error`]; each client format turns it into its
//! own JSON shape in exactly one function: [`openai_body`] here (Chat Completions and Responses
//! share OpenAI's error object), `anthropic::response::error_body` for Anthropic. Messages never
//! contain secrets.

use std::fmt;

use serde_json::{json, Value};

/// What went wrong.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The client sent something we cannot accept: malformed JSON, a missing field, a tool call
    /// whose arguments are not JSON, an image URL we will not fetch.
    BadRequest(String),
    /// The request body is larger than `MAX_REQUEST_BODY_BYTES`, or an image is too large.
    PayloadTooLarge(String),
    /// The conversation does not fit Kiro's limits (our own body budget, or Kiro said so).
    /// Clients compact their history when they see this.
    ContextLengthExceeded(String),
    /// The client's key is missing or wrong.
    Unauthorized,
    /// The path does not exist.
    NotFound(String),
    /// An Anthropic request asks the server to hold the conversation between turns (`thread`).
    /// The gateway keeps no such state; the anthropic SDKs read the error's details code and send
    /// the whole conversation instead.
    ThreadsUnsupported,
    /// The path exists but does not take this method; `allow` lists the methods it takes.
    MethodNotAllowed {
        method: String,
        path: String,
        allow: &'static str,
    },
    /// A follow-up names an earlier response the gateway does not keep (never stored, evicted,
    /// expired, or kept by a process that has since restarted).
    PreviousResponseNotFound(String),
    /// The model is not one Kiro offers; `available` lists the valid names.
    ModelNotFound {
        model: String,
        available: Vec<String>,
    },
    /// Kiro answered with an error status after all retries.
    Upstream {
        status: u16,
        message: String,
        reason: Option<String>,
        retry_after: Option<u64>,
    },
    /// Kiro refuses the client version the gateway presented (`setting` names the variable that
    /// sets it); retrying as is cannot help.
    ClientVersionRefused {
        setting: &'static str,
        version: String,
        message: String,
    },
    /// Kiro suspended or locked the account; it stays out until the login changes.
    AccountSuspended { message: String },
    /// Kiro could not be reached (DNS, refused, reset, TLS, timeout) after all retries.
    Network { message: String, timeout: bool },
    /// Kiro accepted the request but sent nothing within `FIRST_TOKEN_TIMEOUT`, every attempt.
    FirstTokenTimeout { seconds: f64, attempts: u32 },
    /// The reply broke after it started: an exception frame, a bad CRC, a cut connection.
    Stream(String),
    /// Kiro went silent in the middle of its reply for `STREAMING_READ_TIMEOUT` (`seconds`): the
    /// reply was given up. A timeout, where a broken stream is a failure.
    StreamTimeout { seconds: u64 },
    /// The login cannot be refreshed (revoked or expired refresh token); `source` names where it
    /// came from so the user knows what to fix.
    AuthFailed { source: String, message: String },
    /// Every worker is busy and the queue is full.
    Overloaded,
    /// Every account is cooling down or out of quota.
    /// `quota`: every one of them has spent its quota (no retry helps until a reset).
    AccountsUnavailable {
        message: String,
        retry_after: u64,
        quota: bool,
    },
    /// The client key's credit budget (`daily_credits`, `monthly_credits`) is spent; the
    /// message names the budget. Retrying before it renews cannot help.
    BudgetSpent(String),
    /// The client key may not use this model (its `models` list).
    ModelNotAllowed { key: String, model: String },
    /// Invalid configuration, found at start-up.
    Config(String),
    /// A bug or an unexpected state; the message says where.
    Internal(String),
}

/// The broad class of an error, which each client format maps to its own type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    InvalidRequest,
    ContextLength,
    Authentication,
    Permission,
    NotFound,
    RateLimit,
    Overloaded,
    Timeout,
    Upstream,
    Internal,
}

impl Error {
    /// The HTTP status the client receives.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) | Error::ContextLengthExceeded(_) | Error::ThreadsUnsupported => {
                400
            }
            Error::PayloadTooLarge(_) => 413,
            Error::MethodNotAllowed { .. } => 405,
            Error::Unauthorized => 401,
            Error::NotFound(_)
            | Error::ModelNotFound { .. }
            | Error::PreviousResponseNotFound(_) => 404,
            Error::Upstream { status, .. } => match *status {
                s @ 400..=599 => s,
                _ => 502,
            },
            Error::ClientVersionRefused { .. } => 502,
            Error::AccountSuspended { .. } => 403,
            Error::Network { timeout: true, .. } => 504,
            Error::Network { .. } => 502,
            Error::FirstTokenTimeout { .. } => 504,
            Error::Stream(_) => 502,
            Error::StreamTimeout { .. } => 504,
            Error::AuthFailed { .. } => 401,
            Error::Overloaded => 503,
            Error::AccountsUnavailable { .. } | Error::BudgetSpent(_) => 429,
            Error::ModelNotAllowed { .. } => 403,
            Error::Config(_) | Error::Internal(_) => 500,
        }
    }

    /// The class of the error, for the client formats' type names.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::BadRequest(_)
            | Error::PayloadTooLarge(_)
            | Error::MethodNotAllowed { .. }
            | Error::ThreadsUnsupported => ErrorClass::InvalidRequest,
            Error::ContextLengthExceeded(_) => ErrorClass::ContextLength,
            Error::Unauthorized | Error::AuthFailed { .. } => ErrorClass::Authentication,
            Error::NotFound(_)
            | Error::ModelNotFound { .. }
            | Error::PreviousResponseNotFound(_) => ErrorClass::NotFound,
            Error::Upstream { status, .. } => match *status {
                400 | 413 | 422 => ErrorClass::InvalidRequest,
                401 => ErrorClass::Authentication,
                403 => ErrorClass::Permission,
                404 => ErrorClass::NotFound,
                429 => ErrorClass::RateLimit,
                503 | 529 => ErrorClass::Overloaded,
                504 => ErrorClass::Timeout,
                _ => ErrorClass::Upstream,
            },
            Error::Network { timeout: true, .. }
            | Error::FirstTokenTimeout { .. }
            | Error::StreamTimeout { .. } => ErrorClass::Timeout,
            Error::Network { .. } | Error::Stream(_) | Error::ClientVersionRefused { .. } => {
                ErrorClass::Upstream
            }
            Error::AccountSuspended { .. } | Error::ModelNotAllowed { .. } => {
                ErrorClass::Permission
            }
            Error::Overloaded => ErrorClass::Overloaded,
            Error::AccountsUnavailable { .. } | Error::BudgetSpent(_) => ErrorClass::RateLimit,
            Error::Config(_) | Error::Internal(_) => ErrorClass::Internal,
        }
    }

    /// Seconds the client should wait before trying again, when we know.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Upstream { retry_after, .. } => *retry_after,
            Error::Overloaded => Some(1),
            Error::AccountsUnavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether a quota is spent: the Kiro plan's (of the one account, or of every account), or
    /// the client key's own budget. No retry helps until it resets.
    pub fn is_quota(&self) -> bool {
        match self {
            Error::Upstream {
                reason: Some(r), ..
            } => QUOTA_REASONS.contains(&r.as_str()),
            Error::AccountsUnavailable { quota, .. } => *quota,
            Error::BudgetSpent(_) => true,
            _ => false,
        }
    }

    /// Whether sending the same request again may succeed: a busy gateway, a throttle, a network
    /// or Kiro failure. A bad request, a wrong key, a spent quota, an overflow or a refused login
    /// stay what they are; clients are told not to retry those (`x-should-retry: false`).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Upstream { status, .. } => {
                !self.is_quota() && matches!(status, 408 | 409 | 429 | 500..=599)
            }
            Error::Network { .. }
            | Error::FirstTokenTimeout { .. }
            | Error::Stream(_)
            | Error::StreamTimeout { .. }
            | Error::Overloaded
            | Error::AccountsUnavailable { quota: false, .. } => true,
            _ => false,
        }
    }

    /// The response headers that tell a client what to do next: `x-should-retry`, with
    /// `Retry-After` on a transient error (Kiro's figure when it gave one), and `Allow` on a
    /// wrong method.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = Vec::with_capacity(2);
        if self.is_transient() {
            h.push(("x-should-retry", "true".to_string()));
            let wait = self.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
            h.push(("Retry-After", wait.to_string()));
        } else {
            h.push(("x-should-retry", "false".to_string()));
        }
        if let Error::MethodNotAllowed { allow, .. } = self {
            h.push(("Allow", allow.to_string()));
        }
        h
    }

    /// The request field a bad-request message is about. Those messages name the field first
    /// (`'model' is required…`, `messages[2].role 'x' is not valid…`,
    /// `response_format.json_schema.schema must be…`); a message that starts otherwise (`The
    /// request body is not valid JSON…`) is about no one field.
    pub fn param(&self) -> Option<&str> {
        let Error::BadRequest(m) = self else {
            return match self {
                Error::PreviousResponseNotFound(_) => Some("previous_response_id"),
                Error::ThreadsUnsupported => Some("thread"),
                Error::ModelNotFound { .. } => Some("model"),
                _ => None,
            };
        };
        if let Some(rest) = m.strip_prefix('\'') {
            return rest.split_once('\'').map(|(name, _)| name);
        }
        let end = m
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')))
            .unwrap_or(m.len());
        let name = m[..end].trim_end_matches('.');
        let starts_lower = name.starts_with(|c: char| c.is_ascii_lowercase());
        let field_like = name.contains(['_', '.', '[']) || m[end..].starts_with([' ', ':']);
        (starts_lower && field_like && !name.is_empty()).then_some(name)
    }
}

/// Kiro's reasons for a spent quota (`docs/kiro-wire.md#errors`).
const QUOTA_REASONS: &[&str] = &["MONTHLY_REQUEST_COUNT", "DAILY_REQUEST_COUNT"];

/// Seconds a client is asked to wait after a transient error when nobody said how long.
const DEFAULT_RETRY_AFTER: u64 = 2;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadRequest(m)
            | Error::PayloadTooLarge(m)
            | Error::ContextLengthExceeded(m)
            | Error::NotFound(m)
            | Error::BudgetSpent(m)
            | Error::Config(m) => f.write_str(m),
            Error::ModelNotAllowed { key, model } => write!(
                f,
                "The key '{key}' may not use the model '{model}' (see its `models` in PROXY_API_KEYS_FILE)."
            ),
            Error::ThreadsUnsupported => f.write_str(
                "thread: this gateway does not hold conversations between requests (message threads); send the whole conversation in 'messages' without 'thread'.",
            ),
            Error::Unauthorized => f.write_str(
                "Invalid or missing API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
            ),
            Error::PreviousResponseNotFound(id) => write!(
                f,
                "Previous response with id '{id}' not found. This gateway keeps responses in memory for a limited time, number and size (RESPONSES_STORE_TTL, RESPONSES_STORE_SIZE, RESPONSES_STORE_MB), and not across restarts; send the whole conversation as input instead."
            ),
            Error::ModelNotFound { model, available } => write!(
                f,
                "The model '{model}' does not exist or is not available. Available models: {}",
                available.join(", ")
            ),
            Error::Upstream {
                status, message, ..
            } => write!(f, "Kiro API error ({status}): {message}"),
            Error::ClientVersionRefused {
                setting,
                version,
                message,
            } => write!(
                f,
                "Kiro refused the client version this gateway presents ({version}): {message} Set {setting} to the version of the current Kiro release (or leave KIRO_IDE_VERSION unset for discovery) and restart the gateway."
            ),
            Error::AccountSuspended { message } => write!(
                f,
                "The Kiro account is suspended: {message} It is out of rotation until its login changes or the gateway restarts."
            ),
            Error::Network { message, .. } => write!(f, "Could not reach the Kiro API: {message}"),
            Error::FirstTokenTimeout { seconds, attempts } => write!(
                f,
                "Model did not respond within {seconds}s after {attempts} attempts. Please try again."
            ),
            Error::Stream(m) => write!(f, "The Kiro response stream broke: {m}"),
            Error::StreamTimeout { seconds } => write!(
                f,
                "Kiro sent nothing for {seconds} s in the middle of its answer (STREAMING_READ_TIMEOUT); the answer was given up. Please try again."
            ),
            Error::AuthFailed { source, message } => write!(
                f,
                "The Kiro login from {source} could not be refreshed: {message}. Log in again (Kiro IDE or 'kiro-cli login') or update the credentials."
            ),
            Error::Overloaded => f.write_str("The gateway is busy; try again shortly."),
            Error::MethodNotAllowed {
                method,
                path,
                allow,
            } => write!(f, "{path} does not take {method}; use {allow}."),
            Error::AccountsUnavailable { message, .. } => f.write_str(message),
            Error::Internal(m) => write!(f, "Internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// `(status, body)` of OpenAI's error object for `e` (Chat Completions and Responses): `type`
/// and `code` are OpenAI's strings, which clients act on (Codex shows "Quota exceeded" on
/// `insufficient_quota` and compacts on `context_length_exceeded`), and `param` names the request
/// field at fault when there is one.
pub fn openai_body(e: &Error) -> (u16, Value) {
    let (kind, code) = openai_type_and_code(e);
    (
        e.status(),
        json!({"error": {"message": e.to_string(), "type": kind, "param": e.param(), "code": code}}),
    )
}

/// OpenAI's error `type` and `code` for `e`.
pub fn openai_type_and_code(e: &Error) -> (&'static str, &'static str) {
    if e.is_quota() {
        return ("insufficient_quota", "insufficient_quota");
    }
    let code = match e {
        Error::BadRequest(m) if m.contains(" is required") => "missing_required_parameter",
        Error::BadRequest(_) => "invalid_value",
        Error::PayloadTooLarge(_) => "request_too_large",
        Error::ContextLengthExceeded(_) => "context_length_exceeded",
        Error::MethodNotAllowed { .. } => "method_not_allowed",
        Error::ModelNotFound { .. } => "model_not_found",
        Error::PreviousResponseNotFound(_) => "previous_response_not_found",
        Error::NotFound(_) => "unknown_url",
        Error::Unauthorized => "invalid_api_key",
        Error::AuthFailed { .. } => "upstream_login_failed",
        Error::AccountSuspended { .. } => "account_suspended",
        Error::ClientVersionRefused { .. } => "upstream_client_version_refused",
        Error::FirstTokenTimeout { .. }
        | Error::StreamTimeout { .. }
        | Error::Network { timeout: true, .. } => "timeout",
        _ => match e.class() {
            ErrorClass::InvalidRequest | ErrorClass::ContextLength => "invalid_value",
            ErrorClass::Authentication => "invalid_api_key",
            ErrorClass::Permission => "permission_denied",
            ErrorClass::NotFound => "not_found",
            ErrorClass::RateLimit => "rate_limit_exceeded",
            ErrorClass::Overloaded => "server_overloaded",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Upstream => "upstream_error",
            ErrorClass::Internal => "server_error",
        },
    };
    let kind = match e {
        Error::ModelNotFound { .. } | Error::PreviousResponseNotFound(_) => "invalid_request_error",
        Error::FirstTokenTimeout { .. } | Error::Network { timeout: true, .. } => "timeout_error",
        _ => match e.class() {
            ErrorClass::InvalidRequest | ErrorClass::ContextLength => "invalid_request_error",
            ErrorClass::Authentication => "authentication_error",
            ErrorClass::Permission => "permission_error",
            ErrorClass::NotFound => "not_found_error",
            ErrorClass::RateLimit => "rate_limit_error",
            ErrorClass::Overloaded => "overloaded_error",
            ErrorClass::Timeout => "timeout_error",
            ErrorClass::Upstream => "kiro_api_error",
            ErrorClass::Internal => "server_error",
        },
    };
    (kind, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<Error>() <= 96);
    }

    #[test]
    fn context_overflow_has_the_code_clients_compact_on() {
        let (status, body) = openai_body(&Error::ContextLengthExceeded("too long".into()));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "context_length_exceeded");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn param_is_the_field_a_bad_request_message_starts_with() {
        let param = |m: &str| Error::BadRequest(m.into()).param().map(str::to_string);
        assert_eq!(param("'model' is required."), Some("model".into()));
        assert_eq!(
            param("messages[2].role 'x' is not valid."),
            Some("messages[2].role".into())
        );
        assert_eq!(
            param("messages[1]: image part without a URL."),
            Some("messages[1]".into())
        );
        assert_eq!(
            param("tool_choice must name a function."),
            Some("tool_choice".into())
        );
        assert_eq!(param("n must be 1."), Some("n".into()));
        assert_eq!(param("The request body is not valid JSON: x"), None);
        assert_eq!(param("An image has no data."), None);
        assert_eq!(param("Image data is not valid base64."), None);
    }

    #[test]
    fn quota_is_final_and_throttles_are_transient() {
        let up = |status, reason: Option<&str>| Error::Upstream {
            status,
            message: "m".into(),
            reason: reason.map(str::to_string),
            retry_after: None,
        };
        let quota = up(429, Some("MONTHLY_REQUEST_COUNT"));
        assert!(quota.is_quota() && !quota.is_transient());
        assert_eq!(
            openai_type_and_code(&quota),
            ("insufficient_quota", "insufficient_quota")
        );
        assert!(up(429, Some("USER_REQUEST_RATE_EXCEEDED")).is_transient());
        assert!(up(503, None).is_transient());
        assert!(!up(400, None).is_transient());
        assert!(!Error::ContextLengthExceeded("x".into()).is_transient());
        assert_eq!(
            up(500, None).headers(),
            vec![
                ("x-should-retry", "true".into()),
                ("Retry-After", "2".into())
            ]
        );
        assert_eq!(
            Error::Unauthorized.headers(),
            vec![("x-should-retry", "false".into())]
        );
    }

    #[test]
    fn upstream_status_passes_through() {
        let e = Error::Upstream {
            status: 429,
            message: "slow down".into(),
            reason: None,
            retry_after: Some(8),
        };
        assert_eq!(e.status(), 429);
        assert_eq!(e.class(), ErrorClass::RateLimit);
        assert_eq!(e.retry_after(), Some(8));
    }
}
