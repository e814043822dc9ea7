//! End-to-end: what an error tells the client to do next, in each API's own shape: OpenAI's
//! string `code` and the `param` at fault, `insufficient_quota` for a spent quota,
//! `x-should-retry` (with `Retry-After` when a retry can help), `HEAD /`, and 405 with `Allow`
//! for a known route asked with the wrong method.

mod common;
mod fake_kiro;

use common::{agent, Gateway, KEY};
use fake_kiro::{FakeKiro, Reply};
use serde_json::{json, Value};

fn chat() -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]})
}

fn anthropic_message() -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
           "messages": [{"role": "user", "content": "Hi"}]})
}

fn responses() -> Value {
    json!({"model": "claude-sonnet-4-5", "input": "Hi"})
}

/// POST with the key: status, headers (lower-case names) and the parsed body.
fn post(gw: &Gateway, path: &str, body: &Value) -> (u16, Vec<(String, String)>, Value) {
    let auth = format!("Bearer {KEY}");
    let (status, headers, text) = gw.post_raw(
        path,
        &[("authorization", &auth)],
        body.to_string().as_bytes(),
    );
    let headers = headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "not_json": text }));
    (status, headers, v)
}

/// Send `method path` with the key and no body: status, headers (lower-case) and body text.
fn call(gw: &Gateway, method: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", gw.url))
        .header("authorization", format!("Bearer {KEY}"))
        .body(())
        .unwrap();
    let resp = agent().run(req).unwrap();
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    (status, headers, text)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn head_slash_answers_200_like_get() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, _, body) = call(&gw, "HEAD", "/");
    assert_eq!(status, 200);
    assert!(body.is_empty(), "{body}");
    assert_eq!(call(&gw, "HEAD", "/health").0, 200);
    // Claude Code 2.1.332 probes this path before its first request.
    let (status, _, body) = call(&gw, "HEAD", "/api/hello");
    assert_eq!(status, 200);
    assert!(body.is_empty(), "{body}");
    assert_eq!(call(&gw, "POST", "/api/hello").0, 405);
}

#[test]
fn a_wrong_method_is_405_with_allow_in_the_routes_shape() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    for path in ["/v1/chat/completions", "/v1/responses"] {
        let (status, headers, text) = call(&gw, "GET", path);
        assert_eq!(status, 405, "{path}: {text}");
        assert_eq!(header(&headers, "allow"), Some("POST"), "{path}");
        assert_eq!(header(&headers, "x-should-retry"), Some("false"), "{path}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let (status, headers, text) = call(&gw, "PUT", path);
        assert_eq!(status, 405, "{path}: {text}");
        assert_eq!(header(&headers, "allow"), Some("POST"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
    let (status, headers, _) = call(&gw, "DELETE", "/v1/models");
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET"));
    let (status, headers, _) = call(&gw, "POST", "/");
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
    // An unknown path is still a 404.
    assert_eq!(call(&gw, "GET", "/v1/nothing").0, 404);
    assert!(fake.requests().iter().all(|r| !r.path.contains("generate")));
}

#[test]
fn openai_errors_name_the_field_at_fault_with_openais_code() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "Hi"}]}),
            "model",
            "missing_required_parameter",
        ),
        (
            json!({"model": "claude-sonnet-4-5", "messages": "Hi"}),
            "messages",
            "invalid_value",
        ),
        (
            json!({"model": "claude-sonnet-4-5",
                   "messages": [{"role": "user", "content": "Hi"}, {"role": "wizard", "content": "x"}]}),
            "messages[1].role",
            "invalid_value",
        ),
    ];
    for (body, param, code) in cases {
        let (status, headers, v) = post(&gw, "/v1/chat/completions", &body);
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["param"], param, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(header(&headers, "x-should-retry"), Some("false"));
        assert_eq!(header(&headers, "retry-after"), None);
    }
    let (status, _, v) = post(
        &gw,
        "/v1/chat/completions",
        &json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
    );
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "model_not_found");
    assert_eq!(v["error"]["param"], "model");
    // Malformed JSON is about no one field.
    let auth = format!("Bearer {KEY}");
    let (status, _, text) = gw.post_raw("/v1/chat/completions", &[("authorization", &auth)], b"{");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 400);
    assert!(v["error"]["param"].is_null(), "{v}");
    assert_eq!(v["error"]["code"], "invalid_value");
    assert!(fake.requests().iter().all(|r| !r.path.contains("generate")));
}

#[test]
fn a_spent_quota_is_insufficient_quota_and_not_to_be_retried() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::error(
        429,
        "You have reached the limit.",
        Some("MONTHLY_REQUEST_COUNT"),
    ));
    let gw = Gateway::start(&fake.url(), &[]);
    for (path, body) in [
        ("/v1/chat/completions", chat()),
        ("/v1/responses", responses()),
    ] {
        let (status, headers, v) = post(&gw, path, &body);
        assert_eq!(status, 429, "{v}");
        assert_eq!(v["error"]["type"], "insufficient_quota", "{v}");
        assert_eq!(v["error"]["code"], "insufficient_quota", "{v}");
        assert_eq!(header(&headers, "x-should-retry"), Some("false"), "{path}");
    }
    let (status, headers, v) = post(&gw, "/v1/messages", &anthropic_message());
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    assert_eq!(header(&headers, "x-should-retry"), Some("false"));
}

#[test]
fn transient_errors_say_retry_and_when_in_every_api() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::error(500, "Internal failure", None));
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "1")]);
    for (path, body) in [
        ("/v1/chat/completions", chat()),
        ("/v1/responses", responses()),
        ("/v1/messages", anthropic_message()),
    ] {
        let (status, headers, v) = post(&gw, path, &body);
        assert!(status >= 500, "{path}: {status} {v}");
        assert_eq!(header(&headers, "x-should-retry"), Some("true"), "{path}");
        let wait: u64 = header(&headers, "retry-after").unwrap().parse().unwrap();
        assert!(wait >= 1, "{path}");
    }
    fake.set_default_reply(
        Reply::error(429, "Too many requests", Some("USER_REQUEST_RATE_EXCEEDED"))
            .header("Retry-After", "7"),
    );
    let (status, headers, v) = post(&gw, "/v1/chat/completions", &chat());
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
    assert_eq!(header(&headers, "x-should-retry"), Some("true"));
    assert_eq!(header(&headers, "retry-after"), Some("7"));
}

#[test]
fn errors_no_retry_can_fix_say_so_in_every_api() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    // A wrong key.
    for path in ["/v1/chat/completions", "/v1/messages", "/v1/responses"] {
        let (status, headers, _) = gw.post_raw(path, &[("authorization", "Bearer wrong")], b"{}");
        assert_eq!(status, 401, "{path}");
        let headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        assert_eq!(header(&headers, "x-should-retry"), Some("false"), "{path}");
    }
    // A context Kiro says is too long.
    fake.set_default_reply(Reply::error(
        400,
        "Input is too long.",
        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
    ));
    for (path, body) in [
        ("/v1/chat/completions", chat()),
        ("/v1/responses", responses()),
        ("/v1/messages", anthropic_message()),
    ] {
        let (status, headers, v) = post(&gw, path, &body);
        assert_eq!(status, 400, "{path}: {v}");
        assert_eq!(header(&headers, "x-should-retry"), Some("false"), "{path}");
    }
}
