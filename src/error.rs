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
    /// The login cannot be refreshed (revoked or expired refresh token); `source` names where it
    /// came from so the user knows what to fix.
    AuthFailed { source: String, message: String },
    /// Every worker is busy and the queue is full.
    Overloaded,
    /// Every account is cooling down or out of quota.
    AccountsUnavailable { message: String, retry_after: u64 },
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
            Error::BadRequest(_) | Error::ContextLengthExceeded(_) => 400,
            Error::PayloadTooLarge(_) => 413,
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
            Error::AuthFailed { .. } => 401,
            Error::Overloaded => 503,
            Error::AccountsUnavailable { .. } => 429,
            Error::Config(_) | Error::Internal(_) => 500,
        }
    }

    /// The class of the error, for the client formats' type names.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::BadRequest(_) | Error::PayloadTooLarge(_) => ErrorClass::InvalidRequest,
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
            Error::Network { timeout: true, .. } | Error::FirstTokenTimeout { .. } => {
                ErrorClass::Timeout
            }
            Error::Network { .. } | Error::Stream(_) | Error::ClientVersionRefused { .. } => {
                ErrorClass::Upstream
            }
            Error::AccountSuspended { .. } => ErrorClass::Permission,
            Error::Overloaded => ErrorClass::Overloaded,
            Error::AccountsUnavailable { .. } => ErrorClass::RateLimit,
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadRequest(m)
            | Error::PayloadTooLarge(m)
            | Error::ContextLengthExceeded(m)
            | Error::NotFound(m)
            | Error::Config(m) => f.write_str(m),
            Error::Unauthorized => f.write_str(
                "Invalid or missing API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
            ),
            Error::PreviousResponseNotFound(id) => write!(
                f,
                "Previous response with id '{id}' not found. This gateway keeps responses in memory for a limited time and number (RESPONSES_STORE_TTL, RESPONSES_STORE_SIZE), and not across restarts; send the whole conversation as input instead."
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
            Error::AuthFailed { source, message } => write!(
                f,
                "The Kiro login from {source} could not be refreshed: {message}. Log in again (Kiro IDE or 'kiro-cli login') or update the credentials."
            ),
            Error::Overloaded => f.write_str("The gateway is busy; try again shortly."),
            Error::AccountsUnavailable { message, .. } => f.write_str(message),
            Error::Internal(m) => write!(f, "Internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// `(status, body)` of OpenAI's error object for `e` (Chat Completions and Responses).
pub fn openai_body(e: &Error) -> (u16, Value) {
    let (kind, code): (&str, Value) = match e {
        Error::ContextLengthExceeded(_) => {
            ("invalid_request_error", json!("context_length_exceeded"))
        }
        Error::ModelNotFound { .. } => ("invalid_request_error", json!("model_not_found")),
        Error::PreviousResponseNotFound(_) => (
            "invalid_request_error",
            json!("previous_response_not_found"),
        ),
        Error::Unauthorized => ("authentication_error", json!("invalid_api_key")),
        Error::PayloadTooLarge(_) => ("invalid_request_error", json!("request_too_large")),
        Error::Upstream {
            reason: Some(r), ..
        } => (openai_type(e.class()), json!(r)),
        Error::FirstTokenTimeout { .. } | Error::Network { timeout: true, .. } => {
            ("timeout_error", json!("timeout"))
        }
        _ => (openai_type(e.class()), json!(e.status().to_string())),
    };
    let param = match e {
        Error::PreviousResponseNotFound(_) => json!("previous_response_id"),
        _ => Value::Null,
    };
    (
        e.status(),
        json!({"error": {"message": e.to_string(), "type": kind, "param": param, "code": code}}),
    )
}

fn openai_type(c: ErrorClass) -> &'static str {
    match c {
        ErrorClass::InvalidRequest | ErrorClass::ContextLength => "invalid_request_error",
        ErrorClass::Authentication => "authentication_error",
        ErrorClass::Permission => "permission_error",
        ErrorClass::NotFound => "not_found_error",
        ErrorClass::RateLimit => "rate_limit_error",
        ErrorClass::Overloaded => "overloaded_error",
        ErrorClass::Timeout => "timeout_error",
        ErrorClass::Upstream => "kiro_api_error",
        ErrorClass::Internal => "server_error",
    }
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
