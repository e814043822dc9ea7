//! What one finished request reports — to the access log, the metrics, the status page and the
//! usage store — and the access log line itself: plain `key=value` text, or one JSON object per
//! line with `LOG_FORMAT=json` for log shippers.
//!
//! A record never holds content: no prompt, no answer, no key, no token.

use std::time::Duration;

use serde::Serialize;

use crate::util::IsoStyle;

/// How access log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// `text` or `json` (any case); anything else is refused by the caller with the variable name.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" | "plain" | "" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// One finished request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RequestRecord {
    /// When the request arrived (Unix milliseconds).
    #[serde(rename = "time_ms")]
    pub unix_ms: u64,
    pub method: String,
    /// The path as the client sent it (logs only; labels use `route`).
    pub path: String,
    /// The route, from a fixed set (`/v1/chat/completions`, …, `other`): never the raw path.
    pub route: &'static str,
    /// The client API: `openai`, `anthropic`, `responses`, or `-` for everything else.
    pub api: &'static str,
    /// The client key's name (`default` for `PROXY_API_KEY`), `-` when none was given.
    pub key: String,
    /// The model as the client named it.
    pub model_requested: String,
    /// The Kiro model that answered (empty when none did).
    pub model_served: String,
    /// The Kiro account that answered (empty when none did).
    pub account: String,
    pub status: u16,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// Time to the first byte of the answer's content (streams only).
    #[serde(rename = "ttft_ms", serialize_with = "opt_millis")]
    pub ttft: Option<Duration>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub credits: f64,
    /// Upstream attempts beyond the first, on any account.
    pub retries: u32,
    pub conversation_id: String,
    /// Response bytes sent.
    pub bytes: usize,
    /// The id sent to the client in `x-request-id` / `request-id`.
    pub request_id: String,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

/// The route and client API of a path, from a fixed set (a label must not be whatever a client
/// puts in its URL).
pub fn route_of(path: &str) -> (&'static str, &'static str) {
    match path.trim_end_matches('/') {
        "/v1/chat/completions" => ("/v1/chat/completions", "openai"),
        "/v1/messages" => ("/v1/messages", "anthropic"),
        "/v1/messages/count_tokens" => ("/v1/messages/count_tokens", "anthropic"),
        "/v1/responses" => ("/v1/responses", "responses"),
        "/v1/models" => ("/v1/models", "-"),
        p if p.starts_with("/v1/models/") => ("/v1/models/{id}", "-"),
        "" => ("/", "-"),
        "/health" => ("/health", "-"),
        "/metrics" => ("/metrics", "-"),
        _ => ("other", "-"),
    }
}

impl RequestRecord {
    /// The model in one word for the text log: `requested→served` when they differ.
    fn model_word(&self) -> String {
        self.model_shown().replace(" → ", "→")
    }

    /// The model shown to people: `requested → served` when they differ.
    pub fn model_shown(&self) -> String {
        match (self.model_requested.as_str(), self.model_served.as_str()) {
            ("", "") => "-".into(),
            (r, "") => r.into(),
            ("", s) => s.into(),
            (r, s) if r == s => r.into(),
            (r, s) => format!("{r} → {s}"),
        }
    }

    /// The access log line (without timestamp and level: the logger adds those).
    pub fn log_line(&self, format: LogFormat) -> String {
        match format {
            LogFormat::Json => {
                let mut v = serde_json::to_value(self).unwrap_or_default();
                v["time"] =
                    crate::util::format_iso8601(self.unix_ms as i64, IsoStyle::MillisZ).into();
                v.to_string()
            }
            LogFormat::Text => self.text_line(),
        }
    }

    fn text_line(&self) -> String {
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                quote(s)
            }
        };
        let ttft = self
            .ttft
            .map(|t| format!("{}ms", t.as_millis()))
            .unwrap_or_else(|| "-".into());
        format!(
            "{} {} {} key={} api={} model={} account={} {}ms ttft={} tokens={}/{} credits={} retries={} conv={} {}B id={}",
            self.method,
            quote(&self.path),
            self.status,
            dash(&self.key),
            self.api,
            quote(&self.model_word()),
            dash(&self.account),
            self.duration.as_millis(),
            ttft,
            self.tokens_in,
            self.tokens_out,
            trim_float(self.credits),
            self.retries,
            dash(&self.conversation_id),
            self.bytes,
            dash(&self.request_id),
        )
    }
}

/// A value as one word: quoted (JSON-style) when it holds a space, a quote or a control
/// character, so that a client's model name cannot forge fields or lines.
fn quote(s: &str) -> String {
    if s.chars()
        .any(|c| c == ' ' || c == '"' || c == '\\' || c.is_control())
    {
        serde_json::to_string(s).unwrap_or_default()
    } else {
        s.to_string()
    }
}

/// `0.25`, `3`, not `3.0000000001`.
pub fn trim_float(v: f64) -> String {
    let s = format!("{:.4}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RequestRecord {
        RequestRecord {
            unix_ms: 1_700_000_000_000,
            method: "POST".into(),
            path: "/v1/messages".into(),
            route: "/v1/messages",
            api: "anthropic",
            key: "alice".into(),
            model_requested: "claude-sonnet-4-5".into(),
            model_served: "claude-sonnet-4.5".into(),
            account: "work".into(),
            status: 200,
            duration: Duration::from_millis(1234),
            ttft: Some(Duration::from_millis(321)),
            tokens_in: 10,
            tokens_out: 20,
            credits: 0.25,
            retries: 1,
            conversation_id: "c0ffee".into(),
            bytes: 999,
            request_id: "req_42".into(),
        }
    }

    #[test]
    fn text_line_names_every_field() {
        assert_eq!(
            record().log_line(LogFormat::Text),
            "POST /v1/messages 200 key=alice api=anthropic model=claude-sonnet-4-5→claude-sonnet-4.5 \
             account=work 1234ms ttft=321ms tokens=10/20 credits=0.25 retries=1 conv=c0ffee 999B \
             id=req_42"
        );
    }

    #[test]
    fn json_line_is_one_object_with_the_same_fields() {
        let line = record().log_line(LogFormat::Json);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["key"], "alice");
        assert_eq!(v["model_requested"], "claude-sonnet-4-5");
        assert_eq!(v["model_served"], "claude-sonnet-4.5");
        assert_eq!(v["account"], "work");
        assert_eq!(v["duration_ms"], 1234);
        assert_eq!(v["ttft_ms"], 321);
        assert_eq!(v["tokens_in"], 10);
        assert_eq!(v["tokens_out"], 20);
        assert_eq!(v["credits"], 0.25);
        assert_eq!(v["retries"], 1);
        assert_eq!(v["conversation_id"], "c0ffee");
        assert_eq!(v["request_id"], "req_42");
    }

    #[test]
    fn a_model_name_cannot_forge_a_field_or_a_line() {
        let mut r = record();
        r.model_requested = "x key=admin\nPOST /evil".into();
        r.model_served.clear();
        let line = r.log_line(LogFormat::Text);
        assert!(!line.contains('\n'));
        assert!(
            line.contains("model=\"x key=admin\\nPOST /evil\""),
            "{line}"
        );
    }

    #[test]
    fn log_format_parses_text_and_json_only() {
        assert_eq!(LogFormat::parse("JSON"), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("text"), Some(LogFormat::Text));
        assert_eq!(LogFormat::parse("xml"), None);
        assert_eq!(trim_float(3.0), "3");
        assert_eq!(trim_float(0.0), "0");
        assert_eq!(trim_float(0.12345), "0.1235");
    }
}
