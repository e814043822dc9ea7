//! What Kiro's refusals mean: the error body read into a message and a reason, and each refusal
//! classified into what the retry loop does with it (wait and retry, refresh the token, look for a
//! newer client version, drop the history's reasoning, or give up). Pure functions; no I/O.

use std::time::Duration;

use serde_json::Value;

use crate::config::UpstreamSettings;
use crate::error::Error;
use crate::kiro::events::clip_message;

/// Reasons that mean the plan's quota is spent: retrying cannot help (`docs/kiro-wire.md#errors`).
const QUOTA_REASONS: &[&str] = &["MONTHLY_REQUEST_COUNT", "DAILY_REQUEST_COUNT"];
/// A Retry-After longer than this is not waited out; the client gets the 429 and the header.
const MAX_RETRY_AFTER_WAIT: u64 = 60;

/// What one failed attempt tells the retry loop.
#[derive(Debug)]
pub(crate) enum Failure {
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

/// Whether the connection closed under the request before any answer: what a pooled connection
/// that the server dropped while idle does.
pub(crate) fn dropped_before_answer(e: &ureq::Error) -> bool {
    matches!(e, ureq::Error::Io(io) if matches!(
        io.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
    ))
}

/// The HTTP status an exception frame stands for.
pub(crate) fn exception_status(kind: &str) -> u16 {
    match kind {
        k if k.contains("Throttling") => 429,
        k if k.contains("AccessDenied") => 403,
        k if k.contains("Validation") || k == "invalidStateEvent" => 400,
        k if k.contains("ResourceNotFound") => 404,
        k if k.contains("ServiceUnavailable") => 503,
        _ => 500,
    }
}

pub(crate) fn first_token_timeout(cfg: &UpstreamSettings) -> Failure {
    Failure::Retry {
        error: Error::FirstTokenTimeout {
            seconds: cfg.first_token_timeout.as_secs_f64(),
            attempts: cfg.max_retries.max(1),
        },
        delay: Some(Duration::ZERO),
        fallback: false,
    }
}

/// `message` and `reason` out of a Kiro error body (JSON or text).
pub(crate) fn error_message(text: &str) -> (String, Option<String>) {
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
            (clip_message(message), reason.map(clip_message))
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
pub(crate) fn moves_to_another_account(e: &Error) -> bool {
    match e {
        Error::Upstream { status: 429, .. } => true,
        Error::Upstream {
            reason: Some(r), ..
        } => r == MODEL_UNAVAILABLE,
        _ => false,
    }
}

pub(crate) fn classify_status(
    status: u16,
    text: &str,
    retry_after: Option<u64>,
    token: &str,
) -> Failure {
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

pub(crate) fn network_failure(e: &ureq::Error) -> Failure {
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
    fn a_huge_refusal_message_is_cut_to_a_readable_length() {
        let body = serde_json::json!({"message": "m".repeat(200_000), "reason": "R".repeat(5000)});
        let (message, reason) = error_message(&body.to_string());
        assert!(message.len() < 1100, "{}", message.len());
        assert!(message.contains("… (199000 bytes left out) …"), "{message}");
        assert!(reason.is_some_and(|r| r.len() < 1100));
    }

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
}
