//! End-to-end: `DEBUG_MODE` captures (the six files, per request, secrets redacted) and the access
//! log (one line per request, `LOG_LEVEL` honoured) (issue 6, item 6).

mod common;
mod fake_kiro;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Gateway, KEY};
use fake_kiro::{Ev, FakeKiro, Reply};
use serde_json::{json, Value};

fn chat(stream: bool, text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "stream": stream,
           "messages": [{"role": "user", "content": text}]})
}

fn debug_gateway(fake: &FakeKiro, mode: &str) -> (Gateway, PathBuf) {
    let dir = common::temp_dir("debug").join("logs");
    let gw = Gateway::start(
        &fake.url(),
        &[("DEBUG_MODE", mode), ("DEBUG_DIR", dir.to_str().unwrap())],
    );
    (gw, dir)
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The capture is written when the request ends, just after the client got its last byte: wait
/// until `want` are there and `holds` is true, and a moment longer for the write to finish.
fn settle(dir: &Path, want: &[&str], holds: impl Fn() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < end {
        let names = files(dir);
        if want.iter().all(|w| names.contains(*w)) && holds() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// The contents of `names`, once two reads 300 ms apart agree (the last of several concurrent
/// requests may still be rewriting the directory).
fn stable_snapshot(dir: &Path, names: &[&str]) -> Vec<String> {
    let take = || -> Option<Vec<String>> {
        names
            .iter()
            .map(|n| {
                std::fs::read(dir.join(n))
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
            .collect()
    };
    let mut last = take();
    for _ in 0..30 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = take();
        if let (Some(a), Some(b)) = (&now, &last) {
            if a == b {
                return a.clone();
            }
        }
        last = now;
    }
    panic!("the debug directory never settled: {:?}", files(dir));
}

fn read(dir: &Path, name: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap()).into_owned()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const FIVE: [&str; 5] = [
    "request_body.json",
    "kiro_request_body.json",
    "response_stream_raw.txt",
    "response_stream_modified.txt",
    "app_logs.txt",
];

/// The fake answers with the user's own text, so markers and secrets flow back through the
/// response files too.
fn echo(fake: &FakeKiro) {
    fake.set_reply_fn(|r| Some(Reply::text(&r.user_content().unwrap_or_default())));
}

#[test]
fn all_mode_writes_the_request_files_for_a_good_request_and_all_six_for_a_failed_one() {
    let fake = FakeKiro::start();
    let (gw, dir) = debug_gateway(&fake, "all");
    let body = chat(true, "first question");
    let events = gw.stream("/v1/chat/completions", &body);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    settle(&dir, &FIVE, || true);
    assert_eq!(
        files(&dir),
        set(&FIVE),
        "a good request has no error_info.json"
    );
    let request: Value = serde_json::from_str(&read(&dir, "request_body.json")).unwrap();
    assert_eq!(request, body);
    assert!(
        read(&dir, "request_body.json").contains("\n  "),
        "pretty-printed"
    );
    let kiro: Value = serde_json::from_str(&read(&dir, "kiro_request_body.json")).unwrap();
    let sent = kiro["conversationState"]["currentMessage"]["userInputMessage"]["content"]
        .as_str()
        .unwrap();
    assert!(sent.ends_with("first question"), "{sent}");
    let raw = read(&dir, "response_stream_raw.txt");
    assert!(
        raw.contains(":event-type") && raw.contains("assistantResponseEvent"),
        "{raw}"
    );
    assert!(raw.contains("\"content\":\"Hello\""), "{raw}");
    let modified = read(&dir, "response_stream_modified.txt");
    assert!(modified.starts_with("data: {"), "{modified}");
    assert!(modified.contains("chat.completion.chunk") && modified.contains(" fake"));
    assert!(!modified.contains("assistantResponseEvent"));
    let logs = read(&dir, "app_logs.txt");
    assert!(!logs.trim().is_empty());

    // A reply that breaks mid-stream: the six files, and only this request's.
    fake.push_reply(Reply::events(vec![
        Ev::text("partial"),
        Ev::Sleep(std::time::Duration::from_millis(100)),
        Ev::exception("InternalServerException", "boom in the middle", None),
    ]));
    let events = gw.stream("/v1/chat/completions", &chat(true, "second question"));
    assert!(events.last().unwrap().json().get("error").is_some());
    settle(&dir, &["error_info.json"], || true);
    let mut six = set(&FIVE);
    six.insert("error_info.json".into());
    assert_eq!(files(&dir), six);
    let info: Value = serde_json::from_str(&read(&dir, "error_info.json")).unwrap();
    assert_eq!(info["status_code"], 502);
    assert!(info["error_message"]
        .as_str()
        .unwrap()
        .contains("boom in the middle"));
    assert!(read(&dir, "request_body.json").contains("second question"));
    assert!(!read(&dir, "kiro_request_body.json").contains("first question"));
    assert!(read(&dir, "response_stream_modified.txt").contains("partial"));
    assert!(read(&dir, "app_logs.txt").contains("boom in the middle"));
}

#[test]
fn errors_mode_writes_only_when_a_request_fails() {
    let fake = FakeKiro::start();
    let (gw, dir) = debug_gateway(&fake, "errors");
    assert_eq!(gw.post("/v1/chat/completions", &chat(false, "fine")).0, 200);
    let events = gw.stream("/v1/chat/completions", &chat(true, "fine too"));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));

    fake.push_reply(Reply::error(
        400,
        "Improperly formed request.",
        Some("REQUEST_BODY_INVALID"),
    ));
    assert_eq!(
        gw.post("/v1/chat/completions", &chat(false, "this one fails"))
            .0,
        400
    );
    settle(&dir, &["error_info.json"], || true);
    let names = files(&dir);
    for want in [
        "request_body.json",
        "kiro_request_body.json",
        "error_info.json",
        "app_logs.txt",
    ] {
        assert!(names.contains(want), "{want} missing: {names:?}");
    }
    let info: Value = serde_json::from_str(&read(&dir, "error_info.json")).unwrap();
    assert_eq!(info["status_code"], 400);
    assert!(info["error_message"]
        .as_str()
        .unwrap()
        .contains("Improperly formed request."));
    assert!(read(&dir, "request_body.json").contains("this one fails"));

    // A request the gateway itself refuses (unknown model) is a failure too.
    let (status, _) = gw.post(
        "/v1/chat/completions",
        &json!({"model": "mistral-tiny", "messages": [{"role": "user", "content": "which model"}]}),
    );
    assert_eq!(status, 404);
    settle(&dir, &["error_info.json"], || {
        std::fs::read_to_string(dir.join("request_body.json"))
            .is_ok_and(|t| t.contains("which model"))
    });
    let info: Value = serde_json::from_str(&read(&dir, "error_info.json")).unwrap();
    assert_eq!(info["status_code"], 404);
    assert!(read(&dir, "request_body.json").contains("which model"));
}

#[test]
fn off_mode_writes_nothing() {
    let fake = FakeKiro::start();
    let (gw, dir) = debug_gateway(&fake, "off");
    fake.push_reply(Reply::error(400, "Improperly formed request.", None));
    assert_eq!(gw.post("/v1/chat/completions", &chat(false, "x")).0, 400);
    assert_eq!(gw.post("/v1/chat/completions", &chat(false, "x")).0, 200);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!dir.exists(), "{:?}", files(&dir));
}

#[test]
fn the_proxy_key_and_the_tokens_never_reach_the_debug_files() {
    let fake = FakeKiro::start();
    echo(&fake);
    let (gw, dir) = debug_gateway(&fake, "all");
    // The first request makes the gateway log in: now the tokens are known.
    assert_eq!(
        gw.post("/v1/chat/completions", &chat(false, "warm up")).0,
        200
    );
    let mut secrets = vec![KEY.to_string(), "test-refresh-token-1".to_string()];
    secrets.extend(fake.issued_access_tokens());
    secrets.extend(fake.issued_refresh_tokens());
    assert!(secrets.len() >= 4, "{secrets:?}");
    let text = format!("please remember these: {}", secrets.join(" and "));
    // Streaming (all five response files) and a failing request (error_info, logs).
    let events = gw.stream("/v1/chat/completions", &chat(true, &text));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    settle(&dir, &FIVE, || {
        std::fs::read_to_string(dir.join("request_body.json")).is_ok_and(|t| t.contains("remember"))
    });
    let mut checked = 0;
    let mut check = |dir: &Path| {
        for name in files(dir) {
            let content = read(dir, &name);
            for s in &secrets {
                assert!(!content.contains(s.as_str()), "{s} in {name}:\n{content}");
            }
            checked += 1;
        }
    };
    check(&dir);
    assert!(read(&dir, "request_body.json").contains("[REDACTED]"));
    assert!(read(&dir, "response_stream_raw.txt").contains("[REDACTED]"));
    assert!(read(&dir, "response_stream_modified.txt").contains("[REDACTED]"));
    fake.clear_reply_fn();
    fake.push_reply(Reply::error(
        400,
        &format!("bad request near '{}'", secrets[2]),
        None,
    ));
    assert_eq!(gw.post("/v1/chat/completions", &chat(false, &text)).0, 400);
    settle(&dir, &["error_info.json"], || true);
    check(&dir);
    assert!(read(&dir, "error_info.json").contains("[REDACTED]"));
    assert!(checked >= 9, "{checked} files checked");
}

/// The single marker (`M<digits>`) found in `text`.
fn markers(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() > 1 && w.starts_with('M') && w[1..].chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

#[test]
fn concurrent_requests_keep_their_captures_apart() {
    let fake = FakeKiro::start();
    echo(&fake);
    let (gw, dir) = debug_gateway(&fake, "all");
    for round in 0..3 {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let url = gw.url.clone();
                std::thread::spawn(move || {
                    let body = chat(true, &format!("marker M{round}{i}{i}"));
                    let resp = common::agent()
                        .post(&format!("{url}/v1/chat/completions"))
                        .header("authorization", &format!("Bearer {KEY}"))
                        .send(body.to_string().as_bytes())
                        .unwrap_or_else(|e| panic!("M{round}{i}{i}: {e}"));
                    assert_eq!(resp.status().as_u16(), 200);
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut resp.into_body().into_reader(), &mut s)
                        .unwrap();
                })
            })
            .collect();
        for h in handles {
            if h.join().is_err() {
                panic!("LOGS {}", gw.logs());
            }
        }
        settle(&dir, &FIVE, || true);
        let names = [
            "request_body.json",
            "kiro_request_body.json",
            "response_stream_raw.txt",
            "response_stream_modified.txt",
        ];
        let seen: Vec<BTreeSet<String>> = stable_snapshot(&dir, &names)
            .iter()
            .map(|t| markers(t))
            .collect();
        assert_eq!(seen[0].len(), 1, "round {round}: {seen:?}");
        assert!(
            seen.iter().all(|m| *m == seen[0]),
            "round {round}: mixed captures {seen:?}"
        );
    }
}

#[test]
fn concurrent_failures_in_errors_mode_keep_their_captures_apart() {
    let fake = FakeKiro::start();
    // Requests whose text says "REJECTME" get a 400 naming their marker.
    fake.set_reply_fn(|r| {
        let content = r.user_content().unwrap_or_default();
        Some(if content.contains("REJECTME") {
            Reply::error(400, &format!("refused {content}"), None)
        } else {
            Reply::text(&content)
        })
    });
    let (gw, dir) = debug_gateway(&fake, "errors");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = gw.url.clone();
            std::thread::spawn(move || {
                let word = if i % 2 == 0 { "REJECTME" } else { "ACCEPTME" };
                let body = chat(false, &format!("{word} M{i}{i}"));
                common::agent()
                    .post(&format!("{url}/v1/chat/completions"))
                    .header("authorization", &format!("Bearer {KEY}"))
                    .send(body.to_string().as_bytes())
                    .unwrap_or_else(|e| panic!("M{i}{i}: {e}"))
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| panic!("LOGS {}", gw.logs())))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        4,
        "{statuses:?}"
    );
    settle(&dir, &["error_info.json"], || true);
    let snap = stable_snapshot(
        &dir,
        &[
            "request_body.json",
            "kiro_request_body.json",
            "error_info.json",
        ],
    );
    let mine = markers(&snap[0]);
    assert_eq!(mine.len(), 1, "{}", snap[0]);
    assert!(
        snap[0].contains("REJECTME"),
        "only failures are written: {}",
        snap[0]
    );
    assert_eq!(markers(&snap[1]), mine);
    assert_eq!(markers(&snap[2]), mine);
}

// ------------------------------------------------------------------------------------------
// Access log
// ------------------------------------------------------------------------------------------

/// Access-log lines (`METHOD PATH STATUS key=K api=A model=M account=A Nms ttft=T tokens=I/O
/// credits=C retries=R conv=ID NB id=REQ`) for `path`, as fields: method, path, status, model,
/// ms, bytes.
fn access_lines(logs: &str, path: &str) -> Vec<Vec<String>> {
    logs.lines()
        .filter_map(|l| l.split("[kiro_gateway::access] ").nth(1))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|f| f.len() == 15 && f[1] == path)
        .map(|f| {
            [0, 1, 2, 5, 7, 13]
                .iter()
                .map(|i| f[*i].clone())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every answer, error or not, streamed or not, carries its request id in both SDKs' headers,
/// and the access log line ends with the same id.
#[test]
fn every_answer_carries_the_request_id_of_its_log_line() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    let auth = format!("Bearer {KEY}");
    let ok = chat(false, "a").to_string();
    let streamed = chat(true, "b").to_string();
    let with_key = [("authorization", auth.as_str())];
    let cases = [
        (&with_key[..], &ok, 200),
        (&with_key[..], &streamed, 200),
        (&[][..], &ok, 401),
    ];
    let mut seen = Vec::new();
    for (headers, body, status) in cases {
        let (got, head, _) = gw.post_raw("/v1/chat/completions", headers, body.as_bytes());
        assert_eq!(got, status);
        let header = |name: &str| {
            head.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let id = header("x-request-id").expect("x-request-id");
        assert!(id.starts_with("req_") && id.len() == 28, "{id}");
        assert_eq!(header("request-id").as_deref(), Some(id.as_str()));
        assert!(!seen.contains(&id), "ids are unique: {seen:?}");
        assert!(
            gw.wait_logs(
                |l| l
                    .lines()
                    .any(|l| l.contains("[kiro_gateway::access]")
                        && l.ends_with(&format!(" id={id}"))),
                5
            ),
            "{id} in the access log:\n{}",
            gw.logs()
        );
        seen.push(id);
    }
}

#[test]
fn every_request_gets_one_access_log_line() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_LEVEL", "INFO")]);
    // The line is written once the response is out: wait for each before the next request.
    let logged = |n: usize| {
        assert!(gw.wait_logs(|l| access_lines(l, "/v1/chat/completions").len() == n, 5));
    };
    assert_eq!(gw.post("/v1/chat/completions", &chat(false, "a")).0, 200);
    logged(1);
    let events = gw.stream("/v1/chat/completions", &chat(true, "b"));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    logged(2);
    let (status, _) = gw.post(
        "/v1/chat/completions",
        &json!({"model": "mistral-tiny", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(status, 404);
    logged(3);
    let (status, _, _) = gw.post_raw("/v1/chat/completions", &[], b"{}");
    assert_eq!(status, 401);
    logged(4);
    assert_eq!(gw.get("/health").0, 200);
    assert!(gw.wait_logs(|l| access_lines(l, "/health").len() == 1, 5));
    let lines = access_lines(&gw.logs(), "/v1/chat/completions");
    assert_eq!(lines.len(), 4, "{lines:?}");
    let statuses: Vec<&str> = lines.iter().map(|f| f[2].as_str()).collect();
    assert_eq!(statuses, ["200", "200", "404", "401"]);
    let models: Vec<&str> = lines.iter().map(|f| f[3].as_str()).collect();
    assert_eq!(
        models,
        [
            "model=claude-sonnet-4-5→claude-sonnet-4.5",
            "model=claude-sonnet-4-5→claude-sonnet-4.5",
            "model=mistral-tiny",
            "model=-"
        ]
    );
    for f in &lines {
        assert_eq!(f[0], "POST");
        let ms = f[4].strip_suffix("ms").unwrap();
        assert!(ms.parse::<u64>().is_ok(), "{f:?}");
        let bytes: usize = f[5].strip_suffix('B').unwrap().parse().unwrap();
        assert!(bytes > 0, "{f:?}");
    }
    // The streamed reply counts its body bytes.
    let streamed: usize = lines[1][5].strip_suffix('B').unwrap().parse().unwrap();
    assert!(streamed > 200, "{:?}", lines[1]);
}

#[test]
fn log_level_error_silences_the_access_log() {
    let fake = FakeKiro::start();
    let gw = Gateway::start_quiet(&fake.url(), &[("LOG_LEVEL", "ERROR")]);
    assert_eq!(gw.post("/v1/chat/completions", &chat(false, "a")).0, 200);
    assert_eq!(gw.get("/health").0, 200);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let logs = gw.logs();
    assert!(!logs.contains("/v1/chat/completions"), "{logs}");
    assert!(!logs.contains("INFO"), "{logs}");
}
