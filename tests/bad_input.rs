//! End-to-end: bad input from clients — oversized, malformed, wrongly typed, non-UTF-8 bodies,
//! clients that stall while sending and clients that leave mid-stream. Every case gets a clear
//! error in the client's format (or a closed connection), the worker survives and the next
//! request is served (issue 6, item 4).

mod common;
mod fake_kiro;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Gateway, KEY};
use fake_kiro::{Ev, FakeKiro, Reply, DEFAULT_TEXT};
use serde_json::{json, Value};

fn chat(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
           "messages": [{"role": "user", "content": "Hi"}]})
}

fn addr(gw: &Gateway) -> String {
    gw.url.trim_start_matches("http://").to_string()
}

/// A normal request still gets a normal answer.
fn assert_served(gw: &Gateway) {
    let (status, body) = gw.post("/v1/chat/completions", &chat(false));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], DEFAULT_TEXT);
}

/// Send raw bytes, then read until the server closes or `wait` passes. Returns the status of the
/// first response (None when the server closed without one), everything read, and how long the
/// server took to answer or close.
fn raw_exchange(addr: &str, bytes: &[u8], wait: Duration) -> (Option<u16>, String, Duration) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let started = Instant::now();
    s.write_all(bytes).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "no answer and no close within {wait:?} ({e}); read so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    (status, text, started.elapsed())
}

fn head(path: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {KEY}\r\nContent-Type: application/json\r\n{extra}\r\n"
    )
}

fn json_body_of(text: &str) -> Value {
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

// ------------------------------------------------------------------------------------------
// Oversized bodies
// ------------------------------------------------------------------------------------------

fn big_chat(bytes: usize) -> Vec<u8> {
    json!({"model": "claude-sonnet-4-5",
           "messages": [{"role": "user", "content": "x".repeat(bytes)}]})
    .to_string()
    .into_bytes()
}

#[test]
fn a_body_over_the_limit_is_a_413_in_the_clients_format() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("MAX_REQUEST_BODY_BYTES", "2000")]);
    let auth = format!("Bearer {KEY}");
    let (status, _, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &auth)],
        &big_chat(5000),
    );
    assert_eq!(status, 413, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "request_too_large");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("2000 bytes"));
    let (status, _, text) =
        gw.post_raw("/v1/messages", &[("authorization", &auth)], &big_chat(5000));
    assert_eq!(status, 413, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error", "{v}");
    // Just under the limit is fine.
    let (status, _, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &auth)],
        &big_chat(1800),
    );
    assert_eq!(status, 200, "{text}");
    assert!(
        fake.requests().len() == 1,
        "oversized bodies never reach Kiro"
    );
    assert_served(&gw);
}

#[test]
fn a_chunked_body_over_the_limit_is_a_413() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("MAX_REQUEST_BODY_BYTES", "2000")]);
    let body = big_chat(5000);
    let mut req = head(
        "/v1/chat/completions",
        "Transfer-Encoding: chunked\r\nConnection: close\r\n",
    )
    .into_bytes();
    for piece in body.chunks(700) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (status, text, _) = raw_exchange(&addr(&gw), &req, Duration::from_secs(10));
    assert_eq!(status, Some(413), "{text}");
    assert_eq!(
        json_body_of(&text)["error"]["code"],
        "request_too_large",
        "{text}"
    );
    // A chunked body under the limit works.
    let small = chat(false).to_string();
    let mut req = head(
        "/v1/chat/completions",
        "Transfer-Encoding: chunked\r\nConnection: close\r\n",
    )
    .into_bytes();
    req.extend_from_slice(format!("{:x}\r\n{small}\r\n0\r\n\r\n", small.len()).as_bytes());
    let (status, text, _) = raw_exchange(&addr(&gw), &req, Duration::from_secs(10));
    assert_eq!(status, Some(200), "{text}");
    assert_served(&gw);
}

// ------------------------------------------------------------------------------------------
// Malformed bodies
// ------------------------------------------------------------------------------------------

/// Bodies every endpoint must refuse with a 400, and a word the message must contain.
fn bad_bodies(model_field: &str) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let m = model_field;
    let obj = |v: Value| v.to_string().into_bytes();
    let user = json!([{"role": "user", "content": "Hi"}]);
    vec![
        ("not JSON", b"hello there".to_vec(), "JSON"),
        ("truncated JSON", br#"{"model": "claude-sonnet-4-5", "messages": ["#.to_vec(), "JSON"),
        ("empty body", Vec::new(), "JSON"),
        ("a JSON array", b"[1, 2]".to_vec(), "object"),
        ("model is a number", obj(json!({m: 5, "messages": user})), "model"),
        ("messages is a string", obj(json!({m: "claude-sonnet-4-5", "messages": "Hi"})), "messages"),
        ("messages missing", obj(json!({m: "claude-sonnet-4-5"})), "messages"),
        ("messages empty", obj(json!({m: "claude-sonnet-4-5", "messages": []})), "messages"),
        (
            "unknown role",
            obj(json!({m: "claude-sonnet-4-5", "messages": [{"role": "wizard", "content": "Hi"}]})),
            "wizard",
        ),
        (
            "role missing",
            obj(json!({m: "claude-sonnet-4-5", "messages": [{"content": "Hi"}]})),
            "role",
        ),
        (
            "content is a number",
            obj(json!({m: "claude-sonnet-4-5", "messages": [{"role": "user", "content": 42}]})),
            "content",
        ),
        (
            "stream is a string",
            obj(json!({m: "claude-sonnet-4-5", "messages": user, "stream": "yes"})),
            "stream",
        ),
        (
            "non-UTF-8 bytes",
            b"{\"model\": \"claude-sonnet-4-5\", \"messages\": [{\"role\": \"user\", \"content\": \"caf\xe9 \xff\xfe\"}]}".to_vec(),
            "JSON",
        ),
        (
            "lone surrogate escape",
            br#"{"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "\ud800"}]}"#.to_vec(),
            "JSON",
        ),
    ]
}

#[test]
fn malformed_chat_requests_are_openai_shaped_400s() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let auth = format!("Bearer {KEY}");
    for (name, body, says) in bad_bodies("model") {
        let (status, _, text) =
            gw.post_raw("/v1/chat/completions", &[("authorization", &auth)], &body);
        assert_eq!(status, 400, "{name}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{name}: {text}"));
        assert_eq!(v["error"]["type"], "invalid_request_error", "{name}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{name}: {message}");
    }
    assert!(fake.requests().is_empty(), "nothing malformed reached Kiro");
    assert_served(&gw);
}

#[test]
fn malformed_messages_requests_are_anthropic_shaped_400s() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    for (name, body, _) in bad_bodies("model") {
        let (status, _, text) = gw.post_raw("/v1/messages", &[("x-api-key", KEY)], &body);
        assert_eq!(status, 400, "{name}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{name}: {text}"));
        assert_eq!(v["type"], "error", "{name}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{name}: {v}");
    }
    assert!(fake.requests().is_empty());
    assert_served(&gw);
}

#[test]
fn an_unknown_model_is_a_404_listing_the_valid_ones_in_both_formats() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let body = json!({"model": "mistral-tiny", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "x"}]});
    let (status, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("mistral-tiny") && m.contains("claude-sonnet-4.5"),
        "{m}"
    );
    let (status, v) = gw.post("/v1/messages", &body);
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["type"], "not_found_error", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("claude-sonnet-4.5"));
    assert!(fake.requests().is_empty());
    assert_served(&gw);
}

#[test]
fn garbage_instead_of_http_is_refused_and_the_server_carries_on() {
    let fake = FakeKiro::start();
    // A TLS hello has no line end: tiny_http waits for one until the read timeout.
    let gw = Gateway::start(&fake.url(), &[("CLIENT_READ_TIMEOUT", "2")]);
    for junk in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"GARBAGE\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST /v1/chat/completions HTTP/9.9\r\n\r\n",
    ] {
        let (status, text, took) = raw_exchange(&addr(&gw), junk, Duration::from_secs(10));
        assert!(took < Duration::from_secs(5), "{junk:?}");
        assert!(status.is_none_or(|s| s >= 400), "{junk:?}: {text}");
    }
    assert_served(&gw);
}

#[test]
fn a_request_naming_http_2_or_3_does_not_stop_the_server() {
    // tiny_http 0.12 never answers such a line and keeps its connection (README "Known
    // limits"); what must hold is that everybody else is still served.
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let lines: [&[u8]; 3] = [
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
        b"POST /v1/chat/completions HTTP/3.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    ];
    let mut held = Vec::new();
    for line in lines {
        let mut s = TcpStream::connect(addr(&gw)).unwrap();
        s.write_all(line).unwrap();
        held.push(s);
    }
    assert_served(&gw);
    assert_eq!(fake.requests().len(), 1, "Kiro saw only the served request");
    drop(held);
    assert_served(&gw);
}

#[test]
fn a_gateway_whose_log_reader_is_gone_still_serves_and_stops_on_sigterm() {
    // Its stderr is a pipe whose reader has left (a log shipper that died): writing a log line
    // fails. That failure used to panic in every logging thread, the signal thread included, so
    // SIGTERM no longer stopped the gateway.
    let fake = FakeKiro::start();
    let port = common::free_port();
    let mut env = common::base_env(&fake.url());
    env.retain(|(k, _)| k != "SERVER_PORT");
    env.push(("SERVER_PORT".into(), port.to_string()));
    let dir = common::temp_dir("stderr-gone");
    let mut child = common::command(&dir, &env, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let addr = format!("127.0.0.1:{port}");
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        TcpStream::connect(&addr).is_ok()
    });
    assert!(up, "the gateway did not start");
    let url = format!("http://{addr}");
    for _ in 0..3 {
        let resp = common::agent()
            .post(&format!("{url}/v1/chat/completions"))
            .header("authorization", &format!("Bearer {KEY}"))
            .send(chat(false).to_string().as_bytes())
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    // SAFETY: kill with a valid pid of our own child and a standard signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = (0..200).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        child.try_wait().unwrap()
    });
    if status.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM did not stop it"
    );
}

// ------------------------------------------------------------------------------------------
// Slow and stalled clients
// ------------------------------------------------------------------------------------------

#[test]
fn the_listener_outlives_idle_periods_longer_than_the_client_read_timeout() {
    // The socket read timeout is set on the listener so that accepted sockets inherit it; on Linux
    // accept() obeys it too, and tiny_http stops listening at the first accept error.
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("CLIENT_READ_TIMEOUT", "1")]);
    assert_served(&gw);
    std::thread::sleep(Duration::from_millis(3500));
    assert_served(&gw);
    std::thread::sleep(Duration::from_millis(2500));
    assert_served(&gw);
}

/// One worker, one-second client read timeout.
fn single_worker(fake: &FakeKiro) -> Gateway {
    Gateway::start(
        &fake.url(),
        &[("WORKERS", "1"), ("CLIENT_READ_TIMEOUT", "1")],
    )
}

/// Starts a normal request on another thread; returns its status and how long it took.
fn normal_request_in_background(gw: &Gateway) -> std::thread::JoinHandle<(u16, Duration)> {
    let url = format!("{}/v1/chat/completions", gw.url);
    std::thread::spawn(move || {
        let started = Instant::now();
        let resp = common::agent()
            .post(&url)
            .header("authorization", &format!("Bearer {KEY}"))
            .send(chat(false).to_string().as_bytes())
            .unwrap();
        (resp.status().as_u16(), started.elapsed())
    })
}

#[test]
fn a_client_that_stalls_inside_a_small_body_is_closed_and_the_worker_stays_free() {
    let fake = FakeKiro::start();
    let gw = single_worker(&fake);
    // Content-Length 1000, ten bytes, then nothing.
    let mut req = head("/v1/chat/completions", "Content-Length: 1000\r\n").into_bytes();
    req.extend_from_slice(b"{\"model\": ");
    let (status, text, took) = raw_exchange(&addr(&gw), &req, Duration::from_secs(15));
    assert!(took < Duration::from_secs(5), "held for {took:?}");
    assert!(status.is_none_or(|s| (400..500).contains(&s)), "{text}");
    assert_served(&gw);
}

#[test]
fn a_client_that_stalls_inside_a_large_body_gets_an_error_and_frees_the_worker() {
    let fake = FakeKiro::start();
    let gw = single_worker(&fake);
    // A large declared body goes to a worker, which reads it itself.
    let mut req = head("/v1/chat/completions", "Content-Length: 100000\r\n").into_bytes();
    req.extend_from_slice(b"{\"model\": ");
    let staller = {
        let addr = addr(&gw);
        std::thread::spawn(move || raw_exchange(&addr, &req, Duration::from_secs(20)))
    };
    std::thread::sleep(Duration::from_millis(300));
    let normal = normal_request_in_background(&gw);
    let (status, text, took) = staller.join().unwrap();
    assert!(took < Duration::from_secs(5), "held for {took:?}");
    assert!(status.is_none_or(|s| (400..500).contains(&s)), "{text}");
    if status.is_some() {
        let v = json_body_of(&text);
        assert!(
            v["error"]["message"].as_str().unwrap().contains("too slow"),
            "{text}"
        );
    }
    let (status, took) = normal.join().unwrap();
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(6),
        "the queued request waited {took:?}"
    );
    assert_served(&gw);
}

#[test]
fn a_client_that_trickles_its_body_cannot_hold_the_worker() {
    let fake = FakeKiro::start();
    let gw = single_worker(&fake);
    let addr = addr(&gw);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).unwrap();
            let _ =
                s.write_all(head("/v1/chat/completions", "Content-Length: 100000\r\n").as_bytes());
            // One byte every 0.5 s: never slow enough for the per-read timeout.
            for _ in 0..60 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) || s.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = normal_request_in_background(&gw).join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(10),
        "the worker was held {took:?}"
    );
    trickler.join().unwrap();
    assert_served(&gw);
}

#[test]
fn a_client_that_stalls_inside_its_headers_is_closed() {
    let fake = FakeKiro::start();
    let gw = single_worker(&fake);
    let (status, text, took) = raw_exchange(
        &addr(&gw),
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n",
        Duration::from_secs(15),
    );
    assert!(took < Duration::from_secs(5), "held for {took:?}");
    assert!(status.is_none_or(|s| s >= 400), "{text}");
    // A connection that sends nothing at all is closed too.
    let (_, _, took) = raw_exchange(&addr(&gw), b"", Duration::from_secs(15));
    assert!(took < Duration::from_secs(5), "held for {took:?}");
    assert_served(&gw);
}

// ------------------------------------------------------------------------------------------
// Clients that leave mid-stream
// ------------------------------------------------------------------------------------------

/// 200 text frames, 50 ms apart (10 s in all).
fn slow_long_reply() -> Reply {
    let mut evs: Vec<Ev> = (0..200).map(|i| Ev::text(&format!("w{i} "))).collect();
    evs.push(Ev::Metering(0.1));
    Reply::events(evs).delay_between(Duration::from_millis(50))
}

#[test]
fn a_client_that_leaves_mid_stream_frees_the_worker_and_the_upstream() {
    let fake = FakeKiro::start();
    let gw = single_worker(&fake);
    assert_served(&gw);
    std::thread::sleep(Duration::from_millis(300));
    let threads = gw.threads();
    let conns = gw.connections_to(fake.port());
    fake.push_reply(slow_long_reply());
    {
        let mut body = head(
            "/v1/chat/completions",
            &format!("Content-Length: {}\r\n", chat(true).to_string().len()),
        )
        .into_bytes();
        body.extend_from_slice(chat(true).to_string().as_bytes());
        let mut s = TcpStream::connect(addr(&gw)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&body).unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains("w0") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "stream ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        // The worker reads Kiro's reply itself: no thread per stream besides the connection's.
        assert!(
            gw.threads() <= threads + 1,
            "{} > {threads} + 1",
            gw.threads()
        );
        // The client goes away here.
    }
    let left = Instant::now();
    // WORKERS=1: this is only served once the worker noticed.
    assert_served(&gw);
    assert!(
        left.elapsed() < Duration::from_secs(3),
        "worker held {:?}",
        left.elapsed()
    );
    // The upstream reply is closed (not read to its end, 10 s later) and its reader is gone.
    let released = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        gw.connections_to(fake.port()) <= conns && gw.threads() <= threads
    });
    assert!(
        released,
        "connections {} (before {conns}), threads {} (before {threads})",
        gw.connections_to(fake.port()),
        gw.threads()
    );
    assert!(left.elapsed() < Duration::from_secs(6));
    assert!(gw.logs().contains("client disconnected mid-stream"));
}

#[test]
fn a_client_that_leaves_while_kiro_is_silent_frees_the_worker_within_the_read_timeout() {
    let fake = FakeKiro::start();
    // While Kiro is silent the worker writes a keep-alive every min(15 s, STREAMING_READ_TIMEOUT)
    // and gives up after STREAMING_READ_TIMEOUT: 3 s here.
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("WORKERS", "1"),
            ("FIRST_TOKEN_TIMEOUT", "1"),
            ("STREAMING_READ_TIMEOUT", "3"),
        ],
    );
    fake.push_reply(Reply::events(vec![
        Ev::text("w0"),
        Ev::Sleep(Duration::from_secs(30)),
        Ev::text("w1"),
    ]));
    {
        let text = chat(true).to_string();
        let mut body = head(
            "/v1/chat/completions",
            &format!("Content-Length: {}\r\n", text.len()),
        )
        .into_bytes();
        body.extend_from_slice(text.as_bytes());
        let mut s = TcpStream::connect(addr(&gw)).unwrap();
        s.write_all(&body).unwrap();
        let mut buf = [0u8; 4096];
        let mut seen = String::new();
        while !seen.contains("w0") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    let left = Instant::now();
    assert_served(&gw);
    assert!(
        left.elapsed() < Duration::from_secs(6),
        "worker held {:?}",
        left.elapsed()
    );
}
