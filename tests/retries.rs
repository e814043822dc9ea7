//! End-to-end: retries, backoff, Retry-After, endpoint fallback and timeouts against the fake Kiro
//! with injected faults (issue 6, items 1 and 2).

mod common;
mod fake_kiro;

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{Gateway, KEY};
use fake_kiro::{Ev, FakeKiro, Reply, DEFAULT_TEXT};
use serde_json::{json, Value};

fn chat(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
           "messages": [{"role": "user", "content": "Hi"}]})
}

/// POST a non-streaming chat; status, headers and the JSON body.
fn post_chat(gw: &Gateway) -> (u16, Vec<(String, String)>, Value) {
    let (status, headers, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {KEY}"))],
        chat(false).to_string().as_bytes(),
    );
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

fn throttle(reason: &str) -> Reply {
    Reply::error(
        429,
        "Too many requests, please wait before trying again.",
        Some(reason),
    )
}

// ------------------------------------------------------------------------------------------
// Retries
// ------------------------------------------------------------------------------------------

#[test]
fn a_429_then_success_is_retried_once() {
    let fake = FakeKiro::start();
    fake.push_reply(throttle("SERVICE_REQUEST_RATE_EXCEEDED"));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn a_5xx_then_success_is_retried_once() {
    for code in [500, 502, 503] {
        let fake = FakeKiro::start();
        fake.push_reply(Reply::error(code, "Internal failure", None));
        let gw = Gateway::start(&fake.url(), &[]);
        let (status, _, body) = post_chat(&gw);
        assert_eq!(status, 200, "{code}: {body}");
        assert_eq!(fake.requests().len(), 2, "{code}");
    }
}

#[test]
fn persistent_429_returns_kiros_status_and_message_after_max_retries_without_a_last_sleep() {
    let fake = FakeKiro::start();
    fake.set_default_reply(throttle("SERVICE_REQUEST_RATE_EXCEEDED"));
    // Backoff 1 s then 2 s (+ up to 25 % jitter): 3–3.75 s. A sleep after the third attempt would
    // add 4 s more.
    let gw = Gateway::start(
        &fake.url(),
        &[("MAX_RETRIES", "3"), ("BASE_RETRY_DELAY", "1")],
    );
    let started = Instant::now();
    let (status, _, body) = post_chat(&gw);
    let took = started.elapsed();
    assert_eq!(status, 429, "{body}");
    assert_eq!(fake.requests().len(), 3);
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_millis(6500),
        "took {took:?}"
    );
    let m = message(&body);
    assert!(m.contains("Too many requests, please wait"), "{m}");
    assert!(m.contains("SERVICE_REQUEST_RATE_EXCEEDED"), "{m}");
    assert!(!m.contains("Unknown error"), "{m}");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[test]
fn retry_after_is_honoured_and_passed_through_when_retries_run_out() {
    let fake = FakeKiro::start();
    fake.set_default_reply(throttle("USER_REQUEST_RATE_EXCEEDED").header("Retry-After", "1"));
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "2")]);
    let started = Instant::now();
    let (status, headers, body) = post_chat(&gw);
    let took = started.elapsed();
    assert_eq!(status, 429, "{body}");
    assert_eq!(fake.requests().len(), 2);
    // One wait of Retry-After between the two attempts, none after the last.
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1900),
        "took {took:?}"
    );
    assert_eq!(header(&headers, "retry-after"), Some("1"), "{headers:?}");
}

#[test]
fn retry_after_delays_the_next_attempt() {
    let fake = FakeKiro::start();
    fake.push_reply(throttle("SERVICE_REQUEST_RATE_EXCEEDED").header("Retry-After", "2"));
    let gw = Gateway::start(&fake.url(), &[]);
    let started = Instant::now();
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(1950));
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn spent_quotas_are_never_retried_and_say_so() {
    for (reason, word) in [
        ("MONTHLY_REQUEST_COUNT", "Monthly"),
        ("DAILY_REQUEST_COUNT", "Daily"),
    ] {
        let fake = FakeKiro::start();
        fake.set_default_reply(Reply::error(
            429,
            "You have reached the limit.",
            Some(reason),
        ));
        let gw = Gateway::start(&fake.url(), &[("BASE_RETRY_DELAY", "1")]);
        let started = Instant::now();
        let (status, _, body) = post_chat(&gw);
        assert_eq!(status, 429, "{body}");
        assert_eq!(fake.requests().len(), 1, "{reason} was retried");
        assert!(started.elapsed() < Duration::from_millis(900));
        let m = message(&body);
        assert!(m.contains(word) && m.contains("quota"), "{m}");
        assert!(m.contains("You have reached the limit."), "{m}");
        assert_eq!(body["error"]["code"], "insufficient_quota");
    }
}

#[test]
fn a_400_is_not_retried() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::error(
        400,
        "Improperly formed request.",
        Some("REQUEST_BODY_INVALID"),
    ));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 400, "{body}");
    assert_eq!(fake.requests().len(), 1);
    assert!(message(&body).contains("Improperly formed request."));
}

#[test]
fn transient_throttle_reasons_are_retried() {
    for reason in ["USER_REQUEST_RATE_EXCEEDED", "INSUFFICIENT_MODEL_CAPACITY"] {
        let fake = FakeKiro::start();
        fake.push_reply(throttle(reason));
        let gw = Gateway::start(&fake.url(), &[]);
        let (status, _, body) = post_chat(&gw);
        assert_eq!(status, 200, "{reason}: {body}");
        assert_eq!(fake.requests().len(), 2, "{reason}");
    }
}

#[test]
fn a_dropped_connection_is_retried() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::disconnect());
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 200, "{body}");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].status, 0, "the first attempt got the disconnect");
}

#[test]
fn a_403_refreshes_the_token_and_retries_at_once() {
    let fake = FakeKiro::start();
    fake.require_issued_tokens(true);
    let gw = Gateway::start(&fake.url(), &[("BASE_RETRY_DELAY", "5")]);
    assert_eq!(post_chat(&gw).0, 200);
    let first = fake.last_access_token().unwrap();
    fake.clear_requests();
    fake.revoke_access_token(&first);
    let started = Instant::now();
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "no backoff after a 403"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].bearer().as_deref(), Some(first.as_str()));
    assert_ne!(reqs[1].bearer().as_deref(), Some(first.as_str()));
    assert_eq!(fake.refresh_count(), 1, "one refresh after the 403");
}

#[test]
fn a_403_after_a_fresh_token_is_returned_not_retried_forever() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::error(
        403,
        "User is not authorized to make this call.",
        None,
    ));
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "5")]);
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 403, "{body}");
    assert_eq!(fake.requests().len(), 2);
    assert!(message(&body).contains("User is not authorized"));
    assert_eq!(body["error"]["type"], "permission_error");
}

#[test]
fn a_throttle_is_retried_on_the_same_endpoint() {
    let fake = FakeKiro::start();
    fake.push_reply(throttle("SERVICE_REQUEST_RATE_EXCEEDED"));
    let gw = Gateway::start(&fake.url(), &[]);
    assert_eq!(post_chat(&gw).0, 200);
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/", "/"]);
}

#[test]
fn after_a_5xx_or_a_cut_connection_the_next_attempt_uses_the_legacy_shape_at_the_same_base() {
    // A connection cut before any answer is first sent again as is on a fresh connection (it may
    // have been a pooled one Kiro dropped); cut again, it counts as a failed attempt.
    for first in [
        vec![Reply::error(500, "boom", None)],
        vec![Reply::disconnect(), Reply::disconnect()],
    ] {
        let fake = FakeKiro::start();
        fake.push_replies(first.clone());
        let gw = Gateway::start(&fake.url(), &[]);
        assert_eq!(post_chat(&gw).0, 200);
        let mut reqs = fake.requests();
        if first.len() == 2 {
            assert_eq!(reqs[1].path, "/");
            reqs.remove(1);
        }
        assert_eq!(reqs.len(), 2, "{first:?}");
        assert_eq!(reqs[0].path, "/");
        assert_eq!(
            reqs[0].header("x-amz-target").as_deref(),
            Some("KiroRuntimeService.GenerateAssistantResponse")
        );
        assert_eq!(reqs[1].path, "/generateAssistantResponse", "{first:?}");
        assert!(reqs[1].header("x-amz-target").is_none());
        assert!(reqs[1].body.get("agentMode").is_none());
        assert!(fake.unmatched_requests().is_empty());
    }
}

#[test]
fn without_endpoint_fallback_every_attempt_keeps_the_runtime_shape() {
    let fake = FakeKiro::start();
    fake.set_default_reply(throttle("SERVICE_REQUEST_RATE_EXCEEDED"));
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_ENDPOINT_FALLBACK", "false"), ("MAX_RETRIES", "3")],
    );
    assert_eq!(post_chat(&gw).0, 429);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter().all(|r| r.path == "/"),
        "{:?}",
        reqs.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

#[test]
fn max_retries_bounds_the_attempts_across_endpoints() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::error(503, "Service unavailable", None));
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "4")]);
    assert_eq!(post_chat(&gw).0, 503);
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        vec![
            "/",
            "/generateAssistantResponse",
            "/generateAssistantResponse",
            "/generateAssistantResponse"
        ]
    );
}

#[test]
fn a_stream_that_fails_after_the_first_byte_is_not_retried() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![Ev::text("partial answer"), Ev::Cut]));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = gw.stream("/v1/chat/completions", &chat(true));
    assert_eq!(fake.requests().len(), 1);
    let text: String = events
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "partial answer");
    assert!(
        events.last().unwrap().json().get("error").is_some(),
        "{events:?}"
    );
    // The gateway is fine afterwards.
    assert_eq!(post_chat(&gw).0, 200);
}

#[test]
fn json_on_200_throttle_is_retried() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::json_on_200(json!({
        "__type": "com.amazon.aws.codewhisperer#ThrottlingException",
        "message": "Rate exceeded"
    })));
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 200, "{body}");
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn persistent_json_on_200_throttle_becomes_a_429() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::json_on_200(json!({
        "__type": "com.amazon.aws.codewhisperer#ThrottlingException",
        "message": "Rate exceeded"
    })));
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "3")]);
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 429, "{body}");
    assert_eq!(fake.requests().len(), 3);
    assert!(message(&body).contains("Rate exceeded"), "{body}");
}

#[test]
fn a_throttle_exception_as_the_first_frame_is_retried_before_anything_is_sent() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![Ev::exception(
        "ThrottlingException",
        "Rate exceeded",
        Some("USER_REQUEST_RATE_EXCEEDED"),
    )]));
    let gw = Gateway::start(&fake.url(), &[]);
    let events = gw.stream("/v1/chat/completions", &chat(true));
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(events.last().unwrap().data, "[DONE]", "{events:?}");
    assert!(
        events.iter().all(|e| e.json().get("error").is_none()),
        "{events:?}"
    );
}

#[test]
fn a_persistent_throttle_exception_frame_is_an_honest_429() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::events(vec![Ev::exception(
        "ThrottlingException",
        "Rate exceeded",
        Some("USER_REQUEST_RATE_EXCEEDED"),
    )]));
    let gw = Gateway::start(&fake.url(), &[("MAX_RETRIES", "2")]);
    let (status, headers, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {KEY}"))],
        chat(true).to_string().as_bytes(),
    );
    assert_eq!(status, 429, "{text}");
    assert!(header(&headers, "content-type").unwrap().contains("json"));
    assert!(
        text.contains("Rate exceeded") && text.contains("USER_REQUEST_RATE_EXCEEDED"),
        "{text}"
    );
    assert_eq!(fake.requests().len(), 2);
}

// ------------------------------------------------------------------------------------------
// Timeouts
// ------------------------------------------------------------------------------------------

#[test]
fn first_token_timeout_abandons_the_attempt_and_retries() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::text("too late").delay_first_frame(Duration::from_secs(4)));
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("FIRST_TOKEN_TIMEOUT", "1"),
            ("STREAMING_READ_TIMEOUT", "10"),
        ],
    );
    let started = Instant::now();
    let (status, _, body) = post_chat(&gw);
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
    assert_eq!(fake.requests().len(), 2);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(3500),
        "took {took:?}"
    );
}

#[test]
fn when_every_attempt_times_out_the_client_gets_a_504() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::text("too late").delay_first_frame(Duration::from_secs(4)));
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("FIRST_TOKEN_TIMEOUT", "1"),
            ("STREAMING_READ_TIMEOUT", "10"),
            ("MAX_RETRIES", "2"),
        ],
    );
    let started = Instant::now();
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() < Duration::from_millis(3500));
    assert_eq!(fake.requests().len(), 2);
    let m = message(&body);
    assert!(
        m.contains("did not respond within 1s after 2 attempts"),
        "{m}"
    );
    assert_eq!(body["error"]["type"], "timeout_error");
    // Streaming clients get the same 504 (nothing was sent yet).
    let (status, _, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {KEY}"))],
        chat(true).to_string().as_bytes(),
    );
    assert_eq!(status, 504, "{text}");
}

#[test]
fn silence_between_frames_ends_the_stream_with_an_error_event() {
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::text("first"),
        Ev::Sleep(Duration::from_secs(5)),
        Ev::text(" never seen"),
    ]));
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("FIRST_TOKEN_TIMEOUT", "1"),
            ("STREAMING_READ_TIMEOUT", "2"),
        ],
    );
    let started = Instant::now();
    let events = gw.stream("/v1/chat/completions", &chat(true));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    assert!(events.iter().all(|e| e.data != "[DONE]"), "{events:?}");
    assert!(!events
        .iter()
        .any(|e| e.json()["choices"][0]["finish_reason"] == "stop"));
    let last = events.last().unwrap().json();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing for 2 s"),
        "{last}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn a_refused_port_is_a_quick_502_with_a_clear_message() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_API_URL", "http://127.0.0.1:1"), ("MAX_RETRIES", "3")],
    );
    let started = Instant::now();
    let (status, _, body) = post_chat(&gw);
    assert_eq!(status, 502, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let m = message(&body);
    assert!(m.contains("Could not reach the Kiro API"), "{m}");
    assert!(m.to_lowercase().contains("refused"), "{m}");
}

/// A listener whose accept queue is full: further connection attempts hang in SYN-SENT.
fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        extern "C" {
            fn listen(fd: i32, backlog: i32) -> i32;
        }
        // SAFETY: a live listening socket; only the backlog changes.
        unsafe {
            listen(listener.as_raw_fd(), 0);
        }
    }
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    (listener, fillers)
}

#[test]
fn a_connect_timeout_is_a_504_with_a_clear_message() {
    let (listener, _fillers) = black_hole();
    let addr = listener.local_addr().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
        eprintln!("skipped: this kernel accepts connections past the backlog");
        return;
    }
    let fake = FakeKiro::start();
    let url = format!("http://{addr}");
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("KIRO_API_URL", &url),
            ("CONNECT_TIMEOUT", "1"),
            ("MAX_RETRIES", "2"),
        ],
    );
    let started = Instant::now();
    let (status, _, body) = post_chat(&gw);
    let took = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "took {took:?}"
    );
    assert!(
        message(&body).contains("Could not reach the Kiro API"),
        "{body}"
    );
    assert_eq!(body["error"]["type"], "timeout_error");
    drop(listener);
}

#[test]
fn an_abandoned_attempt_releases_its_connection_and_keeps_no_thread() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("FIRST_TOKEN_TIMEOUT", "1"),
            ("STREAMING_READ_TIMEOUT", "3"),
        ],
    );
    assert_eq!(post_chat(&gw).0, 200);
    std::thread::sleep(Duration::from_millis(300));
    let threads = gw.threads();
    let before = gw.connections_to(fake.port());
    // Kiro accepts the request and then says nothing for a minute.
    fake.push_reply(Reply::text("much too late").delay_first_frame(Duration::from_secs(60)));
    assert_eq!(post_chat(&gw).0, 200);
    // The silent attempt was read on the worker: giving it up closed its connection, and no
    // thread is left waiting on it.
    assert_eq!(fake.requests().len(), 3);
    assert!(
        gw.threads() <= threads,
        "threads {} (before {threads})",
        gw.threads()
    );
    let released = (0..30).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        gw.connections_to(fake.port()) <= before
    });
    assert!(
        released,
        "connections {} (before {before})",
        gw.connections_to(fake.port())
    );
}

#[test]
fn user_rate_exceeded_waits_out_a_penalty_window_before_retrying() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("BASE_RETRY_DELAY", "0.2")]);
    fake.push_reply(Reply::error(
        429,
        "Too many requests",
        Some("USER_REQUEST_RATE_EXCEEDED"),
    ));
    let started = std::time::Instant::now();
    let (status, _) = gw.post(
        "/v1/chat/completions",
        &serde_json::json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 200);
    let penalty = started.elapsed();
    assert!(
        penalty >= std::time::Duration::from_millis(1000),
        "{penalty:?}"
    );
    // Capacity throttles use the plain backoff.
    fake.push_reply(Reply::error(
        429,
        "busy",
        Some("INSUFFICIENT_MODEL_CAPACITY"),
    ));
    let started = std::time::Instant::now();
    let (status, _) = gw.post(
        "/v1/chat/completions",
        &serde_json::json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "y"}]}),
    );
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

/// A client that gives up while Kiro has not answered (an SDK's own timeout, which it then
/// retries) gets no further Kiro attempts made for it: each would cost a Kiro request for an
/// answer nobody reads, on top of the client's retries.
#[test]
fn no_further_attempt_is_made_for_a_client_that_has_gone() {
    use std::io::Write;
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::text("late").delay_first_frame(Duration::from_secs(30)));
    let gw = Gateway::start(
        &fake.url(),
        &[("FIRST_TOKEN_TIMEOUT", "1"), ("MAX_RETRIES", "3")],
    );
    let body = chat(false).to_string();
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut client = TcpStream::connect(&addr).unwrap();
    write!(
        client,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.requests().len() == 1));
    drop(client);
    assert!(
        gw.wait_logs(|l| l.contains("POST /v1/chat/completions 504"), 20),
        "{}",
        gw.logs()
    );
    assert!(gw.logs().contains("the client has gone"), "{}", gw.logs());
    assert_eq!(
        fake.requests().len(),
        1,
        "attempts made after the client left"
    );
    // The next client is served as usual.
    fake.set_default_reply(Reply::text("hello"));
    assert_eq!(post_chat(&gw).0, 200);
}
