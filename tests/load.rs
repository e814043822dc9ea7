//! End-to-end: the worker pool and the bounded queue under 200 concurrent clients, and the
//! listener under file-descriptor exhaustion: 503 with Retry-After past capacity, no crash, and
//! threads, sockets and memory back near their baseline afterwards (issue 6, item 5).

mod common;
mod fake_kiro;

use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Gateway, KEY};
use fake_kiro::{FakeKiro, Reply};
use serde_json::{json, Value};

fn chat() -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]})
}

/// One client with its own connection: status, Retry-After, body.
fn one_request(url: &str) -> (u16, Option<String>, Value) {
    let agent = common::agent();
    let resp = agent
        .post(&format!("{url}/v1/chat/completions"))
        .header("authorization", &format!("Bearer {KEY}"))
        .header("connection", "close")
        .send(chat().to_string().as_bytes())
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut text = String::new();
    resp.into_body()
        .into_reader()
        .read_to_string(&mut text)
        .unwrap();
    (
        status,
        retry,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Wait up to `secs` for `cond`; returns whether it held.
fn eventually(secs: u64, cond: impl Fn() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cond()
}

#[test]
fn two_hundred_concurrent_clients_get_200_or_503_and_resources_return_to_baseline() {
    let fake = FakeKiro::start();
    fake.set_default_reply(
        Reply::text("slow but sure").delay_first_frame(Duration::from_millis(400)),
    );
    let gw = Gateway::start(
        &fake.url(),
        &[("WORKERS", "4"), ("QUEUE_SIZE", "8"), ("LOG_LEVEL", "INFO")],
    );
    // Warm up (token, model list, pooled upstream connection), then take the baseline.
    assert_eq!(one_request(&gw.url).0, 200);
    std::thread::sleep(Duration::from_secs(1));
    let (threads0, fds0, rss0) = (gw.threads(), gw.open_fds(), gw.rss_kib());

    let clients = 200;
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let barrier = barrier.clone();
            let url = gw.url.clone();
            std::thread::spawn(move || {
                barrier.wait();
                one_request(&url)
            })
        })
        .collect();
    // While the queue is full, liveness still answers.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let resp = common::agent()
            .get(&format!("{}/health", gw.url))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "/health during the overload");
    }
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let busy: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(
        ok + busy.len(),
        clients,
        "only 200 and 503: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(
        ok >= 12,
        "at least the workers and the queue were served: {ok}"
    );
    assert!(
        !busy.is_empty(),
        "past WORKERS + QUEUE_SIZE some were turned away"
    );
    for (_, retry, body) in &busy {
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("busy"),
            "{body}"
        );
    }
    for (_, _, body) in results.iter().filter(|r| r.0 == 200) {
        assert_eq!(body["choices"][0]["message"]["content"], "slow but sure");
    }
    // Every request got one access-log line.
    assert!(eventually(5, || gw
        .logs()
        .matches("POST /v1/chat/completions ")
        .count()
        == clients + 1));

    // The process is fine and gives back what the burst took.
    assert_eq!(one_request(&gw.url).0, 200);
    let settled = eventually(20, || {
        gw.threads() <= threads0 + 2 && gw.open_fds() <= fds0 + 4
    });
    assert!(
        settled,
        "threads {} (baseline {threads0}), fds {} (baseline {fds0})",
        gw.threads(),
        gw.open_fds()
    );
    let rss = gw.rss_kib();
    assert!(
        rss < rss0 + 32 * 1024,
        "RSS {rss} KiB after, {rss0} KiB before"
    );
    assert!(!gw.logs().contains("panicked"));
}

#[test]
fn a_full_queue_on_the_messages_api_is_a_529_overloaded_error() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::text("slow").delay_first_frame(Duration::from_millis(1500)));
    let gw = Gateway::start(&fake.url(), &[("WORKERS", "1"), ("QUEUE_SIZE", "1")]);
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "Hi"}]});
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let url = gw.url.clone();
            let body = body.clone();
            std::thread::spawn(move || {
                let resp = common::agent()
                    .post(&format!("{url}/v1/messages"))
                    .header("x-api-key", KEY)
                    .send(body.to_string().as_bytes())
                    .unwrap();
                let status = resp.status().as_u16();
                let mut text = String::new();
                resp.into_body()
                    .into_reader()
                    .read_to_string(&mut text)
                    .unwrap();
                (status, text)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Anthropic's status for overloaded_error (the SDKs raise OverloadedError for it).
    let busy: Vec<_> = results.iter().filter(|r| r.0 == 529).collect();
    assert!(!busy.is_empty(), "{results:?}");
    for (_, text) in busy {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], "overloaded_error", "{v}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn running_out_of_file_descriptors_does_not_stop_the_listener() {
    use std::os::unix::process::CommandExt;

    let fake = FakeKiro::start();
    let mut env = common::base_env(&fake.url());
    env.push(("WORKERS".into(), "2".into()));
    // The listener is probed three times per CLIENT_READ_TIMEOUT.
    env.push(("CLIENT_READ_TIMEOUT".into(), "3".into()));
    let gw = Gateway::start_env_with(env, common::temp_dir("fdlimit"), |cmd| {
        // SAFETY: setrlimit is async-signal-safe; the struct outlives the call.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 48,
                    rlim_max: 48,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                Ok(())
            });
        }
    });
    assert_eq!(one_request(&gw.url).0, 200);
    // Idle connections until accept() fails (EMFILE), or tiny_http's accept thread panics because
    // it cannot duplicate an accepted socket.
    let addr = gw.url.trim_start_matches("http://").to_string();
    let hogs: Vec<TcpStream> = (0..40)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert!(
        eventually(10, || gw.open_fds() >= 47),
        "descriptors never ran out: {}",
        gw.open_fds()
    );
    std::thread::sleep(Duration::from_secs(1));
    drop(hogs);
    // Once descriptors are free again, the gateway accepts and serves.
    let served = eventually(30, || {
        std::panic::catch_unwind(|| one_request(&gw.url).0 == 200).unwrap_or(false)
    });
    assert!(served, "{}", gw.logs());
    assert!(gw.logs().contains("restarting it"), "{}", gw.logs());
}

#[test]
fn a_request_that_waits_past_queue_timeout_gets_503_with_retry_after_in_its_clients_shape() {
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::text("slow").delay_first_frame(Duration::from_secs(4)));
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("WORKERS", "1"),
            ("QUEUE_SIZE", "8"),
            ("QUEUE_TIMEOUT", "1"),
        ],
    );
    // The only worker is busy for four seconds.
    let url = gw.url.clone();
    let holder = std::thread::spawn(move || one_request(&url));
    assert!(fake.wait_for(Duration::from_secs(10), |f| !f.requests().is_empty()));

    let (status, retry, body) = one_request(&gw.url);
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");

    let resp = common::agent()
        .post(&format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .send(
            json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
                   "messages": [{"role": "user", "content": "Hi"}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(resp.status().as_u16(), 529);
    assert!(resp.headers().get("retry-after").is_some());
    let mut text = String::new();
    resp.into_body()
        .into_reader()
        .read_to_string(&mut text)
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "overloaded_error", "{v}");

    // The held request itself was served, and only it reached Kiro.
    assert_eq!(holder.join().unwrap().0, 200);
    assert_eq!(fake.requests().len(), 1);
    let (status, health) = gw.get("/health");
    assert_eq!(status, 200);
    assert_eq!(health["workers"], 1);
    assert_eq!(health["queue_size"], 8);
    assert_eq!(health["queue_timeout_secs"], 1);
}

#[test]
fn a_queued_request_whose_client_has_gone_is_not_served() {
    use std::io::Write;
    let fake = FakeKiro::start();
    fake.set_default_reply(Reply::text("slow").delay_first_frame(Duration::from_secs(2)));
    let gw = Gateway::start(&fake.url(), &[("WORKERS", "1"), ("QUEUE_SIZE", "8")]);
    let url = gw.url.clone();
    let holder = std::thread::spawn(move || one_request(&url));
    assert!(fake.wait_for(Duration::from_secs(10), |f| !f.requests().is_empty()));

    // A client sends its request while the worker is busy, then gives up.
    let body = json!({"model": "claude-sonnet-4-5",
                      "messages": [{"role": "user", "content": "I left"}]})
    .to_string();
    let mut quitter = TcpStream::connect(gw.url.trim_start_matches("http://")).unwrap();
    write!(
        quitter,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(quitter);

    assert_eq!(holder.join().unwrap().0, 200);
    assert!(
        gw.wait_logs(|l| l.contains("dropped: the client left"), 10),
        "{}",
        gw.logs()
    );
    // The next request is served as usual, and Kiro never saw the abandoned one.
    assert_eq!(one_request(&gw.url).0, 200);
    let asked: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.user_content())
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked.iter().all(|c| !c.contains("I left")), "{asked:?}");
}

/// A tool schema nested as deep as JSON may nest (serde_json's limit of 128 levels in all).
fn deepest_tool_schema(levels: usize) -> Value {
    let mut schema = json!({"type": "string"});
    for _ in 0..levels {
        schema = json!({"type": "object", "properties": {"a": schema}, "required": ["a"]});
    }
    schema
}

#[test]
fn the_deepest_json_a_client_may_send_is_served_on_a_workers_small_stack() {
    let fake = FakeKiro::start();
    // Debug capture on: it writes the request and the Kiro body out again.
    let gw = Gateway::start(&fake.url(), &[("WORKERS", "2"), ("DEBUG_MODE", "all")]);
    let auth = format!("Bearer {KEY}");
    // Four levels of request around the schema, two per schema level: 4 + 2 × 61 + 1 = 127.
    let body = json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "deep", "description": "d",
                   "parameters": deepest_tool_schema(61)}}]});
    let (status, v) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{v}");
    assert!(fake.last_request().unwrap().raw_body.contains("deep"));
    // The same schema as an Anthropic tool (three levels around it: 3 + 2 × 61 + 1 = 126).
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"name": "deeper", "input_schema": deepest_tool_schema(61)}]});
    let (status, v) = gw.post("/v1/messages", &body);
    assert_eq!(status, 200, "{v}");
    assert!(fake.last_request().unwrap().raw_body.contains("deeper"));
    // And as a Responses tool (3 + 2 × 61 + 1 = 126), the route whose parsing starts deepest,
    // with each level's nesting after its first key, which costs serde_json more stack than
    // nesting in the first (json! would sort "properties" first).
    let mut schema = r#"{"type":"string"}"#.to_string();
    for _ in 0..61 {
        schema = format!(r#"{{"type":"object","properties":{{"a":{schema}}},"required":["a"]}}"#);
    }
    let body = format!(
        r#"{{"model":"claude-sonnet-4-5","input":"Hi","tools":[{{"type":"function","name":"deepest","parameters":{schema}}}]}}"#
    );
    let (status, _, text) = gw.post_raw(
        "/v1/responses",
        &[("authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    assert!(fake.last_request().unwrap().raw_body.contains("deepest"));
    // One level more than JSON allows is refused with a readable 400, not a crash.
    let too_deep = format!(
        r#"{{"model":"claude-sonnet-4-5","messages":[{{"role":"user","content":{}"x"{}}}]}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let (status, _, text) = gw.post_raw(
        "/v1/chat/completions",
        &[("authorization", &auth)],
        too_deep.as_bytes(),
    );
    assert_eq!(status, 400, "{text}");
    assert_eq!(one_request(&gw.url).0, 200);
    assert!(!gw.logs().contains("overflow"));
}
