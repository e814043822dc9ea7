//! End-to-end: `/metrics` (read with a strict parser of the Prometheus text format 0.0.4), the
//! status page and its protection, client keys (attribution, models, budgets, reload, bad files),
//! usage that survives a restart, and the access log line.

mod common;
mod fake_kiro;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Gateway, KEY};
use fake_kiro::{FakeKiro, Reply, DEFAULT_CREDITS, DEFAULT_INPUT_TOKENS};
use serde_json::{json, Value};

// ------------------------------------------------------------------------------------------
// A strict reader of the text exposition format
// ------------------------------------------------------------------------------------------

/// One scrape: every sample by its series (`name{a="x",b="y"}`, labels sorted), and the type of
/// every family.
#[derive(Debug, Default)]
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: HashMap<String, String>,
}

impl Scrape {
    /// The value of `name` with exactly these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.get(&series_key(name, labels)).copied()
    }

    /// The sum of every series of `name` whose labels include these.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| {
                k.split('{').next() == Some(name)
                    && labels
                        .iter()
                        .all(|(l, v)| k.contains(&format!("{l}=\"{}\"", escape(v))))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(&str, &str)> = labels.to_vec();
    sorted.sort();
    let inner: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parse an exposition, panicking at the first thing the format does not allow.
fn parse_exposition(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    let mut seen_families: Vec<String> = Vec::new();
    assert!(
        text.ends_with('\n'),
        "the exposition must end with a line feed"
    );
    for (n, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(valid_name(name), "bad metric name, {at}");
            match kind {
                "HELP" => {}
                "TYPE" => {
                    let t = parts.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad type, {at}"
                    );
                    assert!(
                        !seen_families.contains(&name.to_string()),
                        "TYPE after samples or twice, {at}"
                    );
                    assert!(scrape.types.insert(name.into(), t.into()).is_none());
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.starts_with('#'), "comment without a space, {at}");
        let (name, labels, value) = parse_sample(line, &at);
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| scrape.types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(&name)
            .to_string();
        let t = scrape
            .types
            .get(&family)
            .unwrap_or_else(|| panic!("sample before its TYPE, {at}"));
        if t == "counter" {
            assert!(name.ends_with("_total"), "counter not named _total, {at}");
            assert!(value >= 0.0, "negative counter, {at}");
        }
        if !seen_families.contains(&family) {
            seen_families.push(family);
        }
        let refs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let key = series_key(&name, &refs);
        assert!(
            scrape.samples.insert(key, value).is_none(),
            "series twice, {at}"
        );
    }
    check_histograms(&scrape);
    scrape
}

fn parse_sample(line: &str, at: &str) -> (String, Vec<(String, String)>, f64) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value, {at}"));
    let name = &line[..name_end];
    assert!(valid_name(name), "bad metric name, {at}");
    let mut rest = &line[name_end..];
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let chars: Vec<char> = r.chars().collect();
        let mut i = 0;
        loop {
            if chars.get(i) == Some(&'}') {
                i += 1;
                break;
            }
            let start = i;
            while chars.get(i).is_some_and(|c| *c != '=') {
                i += 1;
            }
            let lname: String = chars[start..i.min(chars.len())].iter().collect();
            assert!(
                valid_name(&lname) && !lname.contains(':'),
                "bad label name {lname:?}, {at}"
            );
            assert_eq!(chars.get(i + 1), Some(&'"'), "label value not quoted, {at}");
            i += 2;
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?}, {at}"),
                        }
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\n') | None => panic!("unterminated label value, {at}"),
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
            assert!(
                !labels.iter().any(|(k, _)| *k == lname),
                "label twice, {at}"
            );
            labels.push((lname, value));
            match chars.get(i) {
                Some(',') => i += 1,
                Some('}') => {
                    i += 1;
                    break;
                }
                other => panic!("expected , or }} got {other:?}, {at}"),
            }
        }
        let consumed: usize = chars[..i].iter().map(|c| c.len_utf8()).sum();
        rest = &r[consumed..];
    }
    let rest = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value, {at}"));
    let mut fields = rest.split(' ');
    let v = fields.next().unwrap_or("");
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value {v:?}, {at}")),
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .unwrap_or_else(|_| panic!("bad timestamp, {at}"));
    }
    assert!(fields.next().is_none(), "trailing fields, {at}");
    (name.to_string(), labels, value)
}

/// Buckets grow with `le`, `+Inf` is there and equals `_count`.
fn check_histograms(s: &Scrape) {
    for (family, t) in &s.types {
        if t != "histogram" {
            continue;
        }
        let mut by_series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (k, v) in &s.samples {
            let Some(labels) = k.strip_prefix(&format!("{family}_bucket{{")) else {
                continue;
            };
            let le = labels
                .split("le=\"")
                .nth(1)
                .and_then(|x| x.split('"').next())
                .unwrap_or_else(|| panic!("bucket without le: {k}"));
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let rest = labels.replace(&format!("le=\"{}\"", fmt_le(le)), "");
            by_series.entry(rest).or_default().push((le, *v));
        }
        for (series, mut buckets) in by_series {
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            assert_eq!(
                buckets.last().map(|b| b.0),
                Some(f64::INFINITY),
                "{family}{{{series} has no +Inf bucket"
            );
            for w in buckets.windows(2) {
                assert!(w[0].1 <= w[1].1, "{family}{{{series} buckets shrink");
            }
        }
    }
}

fn fmt_le(le: f64) -> String {
    if le.is_infinite() {
        "+Inf".into()
    } else if le.fract() == 0.0 {
        format!("{}", le as i64)
    } else {
        format!("{le}")
    }
}

#[test]
fn the_strict_parser_refuses_what_the_format_does_not_allow() {
    let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"\\n\"} 1\n";
    assert_eq!(
        parse_exposition(ok).get("a_total", &[("k", "v\"\n")]),
        Some(1.0)
    );
    for bad in [
        "a_total 1\n",                                           // no TYPE
        "# TYPE a_total counter\na_total{k=v} 1\n",              // unquoted
        "# TYPE a_total counter\na_total{k=\"\\x\"} 1\n",        // bad escape
        "# TYPE a_total counter\na_total 1\na_total 2\n",        // twice
        "# TYPE a counter\na 1\n",                               // counter without _total
        "# TYPE a_total counter\na_total 1",                     // no final line feed
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 2\n", // no +Inf
    ] {
        let r = std::panic::catch_unwind(|| parse_exposition(bad));
        assert!(r.is_err(), "accepted {bad:?}");
    }
}

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream,
           "messages": [{"role": "user", "content": "Hi"}]})
}

fn messages(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100,
           "messages": [{"role": "user", "content": "Hi"}]})
}

/// GET with these headers: status, headers, body text.
fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, String) {
    let mut req = common::agent().get(&format!("{}{path}", gw.url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let hs = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let mut text = String::new();
    resp.into_body()
        .into_reader()
        .read_to_string(&mut text)
        .unwrap();
    (status, hs, text)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn scrape_with(gw: &Gateway, key: &str) -> Scrape {
    let (status, headers, text) = get(
        gw,
        "/metrics",
        &[("authorization", &format!("Bearer {key}"))],
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse_exposition(&text)
}

fn scrape(gw: &Gateway) -> Scrape {
    scrape_with(gw, KEY)
}

/// A scrape once `n` API requests were counted (a request is counted just after its answer was
/// sent, so a client can be quicker than the count).
fn scrape_after(gw: &Gateway, n: usize) -> Scrape {
    let counted = |s: &Scrape| {
        s.samples
            .iter()
            .filter(|(k, _)| {
                k.starts_with("kiro_gateway_requests_total{") && !k.contains("api=\"-\"")
            })
            .map(|(_, v)| *v)
            .sum::<f64>()
    };
    let mut last = scrape(gw);
    eventually(&format!("{n} requests counted"), || {
        last = scrape(gw);
        counted(&last) >= n as f64
    });
    last
}

fn post_as(
    gw: &Gateway,
    key: &str,
    path: &str,
    body: &Value,
) -> (u16, Vec<(String, String)>, Value) {
    let (s, h, text) = gw.post_raw(
        path,
        &[("authorization", &format!("Bearer {key}"))],
        body.to_string().as_bytes(),
    );
    (s, h, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn keys_file(dir: &Path, entries: Value) -> String {
    let p = dir.join("keys.json");
    std::fs::write(&p, serde_json::to_string_pretty(&entries).unwrap()).unwrap();
    p.to_string_lossy().to_string()
}

fn people() -> Value {
    json!([
        {"name": "alice", "key": "alice-key-0001", "models": ["claude-sonnet-4.5"]},
        {"name": "bob", "key": "bob-key-00000001", "daily_credits": 0.5}
    ])
}

/// Poll until `f` holds (an event, not a timing: the deadline only stops a broken test).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never happened: {what}");
}

// ------------------------------------------------------------------------------------------
// /metrics
// ------------------------------------------------------------------------------------------

#[test]
fn metrics_need_the_key() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let (status, headers, _) = get(&gw, "/metrics", &[]);
    assert_eq!(status, 401);
    assert!(header(&headers, "www-authenticate").is_some());
    let (status, _, _) = get(&gw, "/metrics", &[("authorization", "Bearer wrong-key")]);
    assert_eq!(status, 401);
    let s = scrape(&gw);
    assert_eq!(
        s.get(
            "kiro_gateway_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("client_identity", &client_identity(&s))
            ]
        ),
        Some(1.0)
    );
}

fn client_identity(s: &Scrape) -> String {
    s.samples
        .keys()
        .find_map(|k| {
            k.strip_prefix("kiro_gateway_build_info{client_identity=\"")
                .and_then(|r| r.split('"').next())
        })
        .unwrap_or("")
        .to_string()
}

#[test]
fn metrics_key_replaces_the_proxy_key_for_scrapes() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("METRICS_KEY", "scrape-key-0001")]);
    assert_eq!(
        get(
            &gw,
            "/metrics",
            &[("authorization", &format!("Bearer {KEY}"))]
        )
        .0,
        401
    );
    scrape_with(&gw, "scrape-key-0001");
}

#[test]
fn counters_move_with_requests_retries_and_refreshes() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let before = scrape(&gw);
    assert_eq!(before.sum("kiro_gateway_requests_total", &[]), 0.0);

    fake.push_reply(Reply::error(
        429,
        "Too many requests",
        Some("SERVICE_REQUEST_RATE_EXCEEDED"),
    ));
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false))
            .0,
        200
    );
    gw.stream(
        "/v1/messages",
        &json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": true,
        "messages": [{"role": "user", "content": "Hi"}]}),
    );

    let s = scrape_after(&gw, 2);
    let ok = |route: &str, api: &str| {
        s.get(
            "kiro_gateway_requests_total",
            &[
                ("route", route),
                ("api", api),
                ("model", "claude-sonnet-4.5"),
                ("status", "200"),
            ],
        )
    };
    assert_eq!(ok("/v1/chat/completions", "openai"), Some(1.0));
    let requests: Vec<&String> = s
        .samples
        .keys()
        .filter(|k| k.starts_with("kiro_gateway_requests_total"))
        .collect();
    assert_eq!(ok("/v1/messages", "anthropic"), Some(1.0), "{requests:?}");
    assert_eq!(
        s.get(
            "kiro_gateway_upstream_retries_total",
            &[("reason", "throttle")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get("kiro_gateway_upstream_attempts_total", &[]),
        Some(3.0)
    );
    assert_eq!(
        s.sum("kiro_gateway_credits_total", &[("key", "default")]),
        2.0 * DEFAULT_CREDITS
    );
    assert_eq!(
        s.sum(
            "kiro_gateway_input_tokens_total",
            &[("model", "claude-sonnet-4.5")]
        ),
        2.0 * DEFAULT_INPUT_TOKENS as f64
    );
    assert!(s.sum("kiro_gateway_output_tokens_total", &[]) > 0.0);
    // The stream's first token was timed; the non-streaming answer's duration too.
    assert_eq!(
        s.get(
            "kiro_gateway_time_to_first_token_seconds_count",
            &[("api", "anthropic"), ("model", "claude-sonnet-4.5")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get(
            "kiro_gateway_request_duration_seconds_count",
            &[("api", "openai"), ("model", "claude-sonnet-4.5")]
        ),
        Some(1.0)
    );
    // The first request had to get a token first.
    assert_eq!(
        s.sum(
            "kiro_gateway_token_refreshes_total",
            &[("outcome", "success")]
        ),
        1.0
    );
    assert_eq!(s.get("kiro_gateway_streams_open", &[]), Some(0.0));
    assert!(s.get("kiro_gateway_workers", &[]).unwrap_or(0.0) > 0.0);
    assert_eq!(
        s.sum("kiro_gateway_account_state", &[("state", "active")]),
        1.0
    );
    // Nothing secret in any label.
    for k in s.samples.keys() {
        assert!(!k.contains(KEY) && !k.contains("test-refresh-token"), "{k}");
    }
}

#[test]
fn failover_is_counted_per_account() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-accounts");
    let accounts = dir.join("accounts.json");
    std::fs::write(
        &accounts,
        json!([
            {"name": "first", "api_key": "ksk_first", "priority": 0},
            {"name": "second", "api_key": "ksk_second", "priority": 1}
        ])
        .to_string(),
    )
    .unwrap();
    let accounts = accounts.to_string_lossy().to_string();
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_ACCOUNTS_FILE", &accounts), ("REFRESH_TOKEN", "")],
    );
    fake.push_reply(
        Reply::error(429, "Too many requests", Some("USER_REQUEST_RATE_EXCEEDED"))
            .header("Retry-After", "30"),
    );
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false))
            .0,
        200
    );
    let s = scrape_after(&gw, 1);
    assert_eq!(
        s.get(
            "kiro_gateway_account_failovers_total",
            &[("account", "first")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get(
            "kiro_gateway_account_state",
            &[("account", "first"), ("state", "cooling_down")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get(
            "kiro_gateway_account_state",
            &[("account", "second"), ("state", "active")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.sum("kiro_gateway_credits_total", &[("account", "second")]),
        DEFAULT_CREDITS
    );
}

#[test]
fn account_states_follow_suspension_and_spent_quota() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-states");
    let accounts = dir.join("accounts.json");
    std::fs::write(
        &accounts,
        json!([
            {"name": "first", "api_key": "ksk_first", "priority": 0},
            {"name": "second", "api_key": "ksk_second", "priority": 1},
            {"name": "third", "api_key": "ksk_third", "priority": 2}
        ])
        .to_string(),
    )
    .unwrap();
    let accounts = accounts.to_string_lossy().to_string();
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_ACCOUNTS_FILE", &accounts), ("REFRESH_TOKEN", "")],
    );
    fake.push_reply(Reply::error(
        403,
        "Your account is temporarily suspended.",
        Some("TEMPORARILY_SUSPENDED"),
    ));
    fake.push_reply(Reply::error(
        429,
        "Monthly limit reached",
        Some("MONTHLY_REQUEST_COUNT"),
    ));
    let (status, body) = gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false));
    assert_eq!(status, 200, "{body}");
    let s = scrape_after(&gw, 1);
    let state = |account: &str, state: &str| {
        s.get(
            "kiro_gateway_account_state",
            &[("account", account), ("state", state)],
        )
    };
    assert_eq!(state("first", "suspended"), Some(1.0));
    assert_eq!(state("second", "quota_spent"), Some(1.0));
    assert_eq!(state("third", "active"), Some(1.0));
    assert_eq!(state("third", "suspended"), Some(0.0));
    assert_eq!(
        s.get(
            "kiro_gateway_upstream_retries_total",
            &[("reason", "quota")]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get("kiro_gateway_upstream_retries_total", &[("reason", "auth")]),
        Some(1.0)
    );
    assert_eq!(s.sum("kiro_gateway_account_failovers_total", &[]), 2.0);
}

#[test]
fn kiros_usage_limits_reach_the_metrics_and_the_status_page() {
    let fake = FakeKiro::start();
    fake.set_usage_limits("ksk_only", 12.5, 50.0);
    let dir = common::temp_dir("mon-limits");
    let accounts = dir.join("accounts.json");
    std::fs::write(
        &accounts,
        json!([{"name": "only", "api_key": "ksk_only"}]).to_string(),
    )
    .unwrap();
    let accounts = accounts.to_string_lossy().to_string();
    let gw = Gateway::start(
        &fake.url(),
        &[("KIRO_ACCOUNTS_FILE", &accounts), ("REFRESH_TOKEN", "")],
    );
    let mut s = scrape(&gw);
    eventually("the usage limits are read", || {
        s = scrape(&gw);
        s.get("kiro_gateway_account_credits_used", &[("account", "only")])
            .is_some()
    });
    assert_eq!(
        s.get("kiro_gateway_account_credits_used", &[("account", "only")]),
        Some(12.5)
    );
    assert_eq!(
        s.get("kiro_gateway_account_credits_limit", &[("account", "only")]),
        Some(50.0)
    );
    let (status, _, page) = get(
        &gw,
        "/",
        &[
            ("accept", "text/html"),
            ("authorization", &format!("Bearer {KEY}")),
        ],
    );
    assert_eq!(status, 200);
    assert!(page.contains("12.5 of 50 credits"), "{page}");
}

// ------------------------------------------------------------------------------------------
// Client keys
// ------------------------------------------------------------------------------------------

#[test]
fn each_request_is_attributed_to_its_key() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-keys");
    let file = keys_file(&dir, people());
    let gw = Gateway::start(&fake.url(), &[("PROXY_API_KEYS_FILE", &file)]);
    assert_eq!(
        post_as(
            &gw,
            "alice-key-0001",
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", false)
        )
        .0,
        200
    );
    assert_eq!(
        post_as(
            &gw,
            "bob-key-00000001",
            "/v1/messages",
            &messages("claude-sonnet-4-5")
        )
        .0,
        200
    );
    // PROXY_API_KEY still works, as `default`.
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false))
            .0,
        200
    );
    assert_eq!(
        post_as(
            &gw,
            "nobody-key-000",
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", false)
        )
        .0,
        401
    );
    let s = scrape_after(&gw, 4);
    for who in ["alice", "bob", "default"] {
        assert_eq!(
            s.sum("kiro_gateway_credits_total", &[("key", who)]),
            DEFAULT_CREDITS,
            "{who}"
        );
    }
    assert!(
        gw.wait_logs(|l| l.contains("key=alice api=openai"), 5),
        "{}",
        gw.logs()
    );
    assert!(gw.logs().contains("key=bob api=anthropic"));
    assert!(
        !gw.logs().contains("alice-key-0001"),
        "a key reached the log"
    );
}

#[test]
fn a_model_outside_the_keys_list_is_refused_in_the_clients_shape() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-models");
    let file = keys_file(&dir, people());
    let gw = Gateway::start(&fake.url(), &[("PROXY_API_KEYS_FILE", &file)]);
    let (status, _, body) = post_as(
        &gw,
        "alice-key-0001",
        "/v1/chat/completions",
        &chat("claude-opus-4.5", false),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "permission_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("claude-opus-4.5"));
    let (status, _, body) = post_as(
        &gw,
        "alice-key-0001",
        "/v1/messages",
        &messages("claude-opus-4.5"),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "permission_error");
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.model_id().as_deref() != Some("claude-opus-4.5")));
}

#[test]
fn a_spent_budget_gives_429_naming_it_and_survives_a_restart() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-budget");
    let file = keys_file(&dir, people());
    let state = dir.join("state");
    let state_s = state.to_string_lossy().to_string();
    let env = [
        ("PROXY_API_KEYS_FILE", file.as_str()),
        ("STATE_DIR", state_s.as_str()),
    ];
    {
        let gw = Gateway::start(&fake.url(), &env);
        // 0.25 credits each: the second reaches the 0.5 budget, the third is refused.
        for _ in 0..2 {
            let (s, _, b) = post_as(
                &gw,
                "bob-key-00000001",
                "/v1/chat/completions",
                &chat("claude-sonnet-4-5", false),
            );
            assert_eq!(s, 200, "{b}");
        }
        let (status, headers, body) = post_as(
            &gw,
            "bob-key-00000001",
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", false),
        );
        assert_eq!(status, 429, "{body}");
        assert_eq!(header(&headers, "x-should-retry"), Some("false"));
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("daily credit budget") && msg.contains("bob"),
            "{msg}"
        );
        let (status, _, body) = post_as(
            &gw,
            "bob-key-00000001",
            "/v1/messages",
            &messages("claude-sonnet-4-5"),
        );
        assert_eq!(status, 429);
        assert_eq!(body["error"]["type"], "rate_limit_error");
        // Others are not affected.
        assert_eq!(
            post_as(
                &gw,
                "alice-key-0001",
                "/v1/chat/completions",
                &chat("claude-sonnet-4-5", false)
            )
            .0,
            200
        );
        // Written in the background: wait for the row, then stop the gateway.
        let db = state.join("usage.sqlite");
        eventually("bob's usage is written", || {
            rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.query_row("SELECT credits FROM usage WHERE key = 'bob'", [], |r| {
                        r.get::<_, f64>(0)
                    })
                })
                .is_ok_and(|c| c >= 0.5)
        });
    }
    let gw = Gateway::start(&fake.url(), &env);
    let (status, _, body) = post_as(
        &gw,
        "bob-key-00000001",
        "/v1/chat/completions",
        &chat("claude-sonnet-4-5", false),
    );
    assert_eq!(status, 429, "the budget was forgotten: {body}");
}

#[test]
fn sigterm_saves_the_usage_before_the_gateway_exits() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-sigterm");
    let file = keys_file(&dir, people());
    let state = dir.join("state");
    let state_s = state.to_string_lossy().to_string();
    let gw = Gateway::start(
        &fake.url(),
        &[
            ("PROXY_API_KEYS_FILE", file.as_str()),
            ("STATE_DIR", state_s.as_str()),
        ],
    );
    let (s, _, b) = post_as(
        &gw,
        "alice-key-0001",
        "/v1/chat/completions",
        &chat("claude-sonnet-4-5", false),
    );
    assert_eq!(s, 200, "{b}");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        gw.wait_logs(|l| l.contains("stopping (signal 15)"), 10),
        "{}",
        gw.logs()
    );
    let db = state.join("usage.sqlite");
    eventually("alice's usage is on disk", || {
        rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row("SELECT requests FROM usage WHERE key = 'alice'", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .is_ok_and(|n| n == 1)
    });
}

#[test]
fn the_keys_file_is_read_again_when_it_changes() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-reload");
    let file = keys_file(&dir, people());
    let gw = Gateway::start(&fake.url(), &[("PROXY_API_KEYS_FILE", &file)]);
    let carol = || {
        post_as(
            &gw,
            "carol-key-0001",
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", false),
        )
        .0
    };
    assert_eq!(carol(), 401);
    let mut more = people();
    more.as_array_mut()
        .unwrap()
        .push(json!({"name": "carol", "key": "carol-key-0001"}));
    keys_file(&dir, more);
    eventually("carol's key works", || carol() == 200);
    // A broken edit keeps the keys in force and says so (at the next request).
    std::fs::write(&file, "[{\"name\": \"carol\", \"key\": ").unwrap();
    eventually("the broken edit is reported", || {
        assert_eq!(carol(), 200);
        gw.logs()
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("PROXY_API_KEYS_FILE"))
    });
    assert_eq!(carol(), 200);
    assert_eq!(
        post_as(
            &gw,
            "alice-key-0001",
            "/v1/chat/completions",
            &chat("claude-sonnet-4-5", false)
        )
        .0,
        200
    );
}

#[test]
fn a_malformed_keys_file_stops_start_up_naming_the_file_and_line() {
    let fake = FakeKiro::start();
    let dir = common::temp_dir("mon-badkeys");
    let p = dir.join("keys.json");
    std::fs::write(
        &p,
        "[\n  {\"name\": \"a\", \"key\": \"aaaaaaaaaa\"},\n  {\"name\": \"b\"}\n]\n",
    )
    .unwrap();
    let mut env = common::base_env(&fake.url());
    env.push((
        "PROXY_API_KEYS_FILE".into(),
        p.to_string_lossy().to_string(),
    ));
    let (code, stderr) = common::run_to_exit(&env, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("PROXY_API_KEYS_FILE"), "{stderr}");
    assert!(
        stderr.contains(&p.to_string_lossy().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("line 3"), "{stderr}");
}

// ------------------------------------------------------------------------------------------
// The status page and the access log
// ------------------------------------------------------------------------------------------

#[test]
fn the_status_page_asks_browsers_for_the_key_and_json_clients_keep_their_answer() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false))
            .0,
        200
    );
    let html = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    let (status, headers, _) = get(&gw, "/", &html);
    assert_eq!(status, 401);
    assert!(header(&headers, "www-authenticate").is_some_and(|v| v.starts_with("Basic")));
    // "admin:<KEY>"
    let basic = format!("Basic {}", base64(&format!("admin:{KEY}")));
    let (status, headers, page) = get(&gw, "/", &[html[0], ("authorization", &basic)]);
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type").is_some_and(|v| v.starts_with("text/html")));
    assert!(
        page.contains("kiro-gateway") && page.contains("claude-sonnet-4.5"),
        "{page}"
    );
    assert!(page.contains("default"), "the key's name is shown");
    assert!(
        !page.contains(KEY) && !page.contains("Hi\""),
        "secret or content on the page"
    );
    // Bearer works too.
    assert_eq!(
        get(
            &gw,
            "/",
            &[html[0], ("authorization", &format!("Bearer {KEY}"))]
        )
        .0,
        200
    );
    // JSON clients: today's answer, no key needed.
    let (status, _, text) = get(&gw, "/", &[]);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "ok");
}

#[test]
fn on_loopback_without_a_key_the_page_and_metrics_are_open() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("PROXY_API_KEY", "")]);
    let (status, _, page) = get(&gw, "/", &[("accept", "text/html")]);
    assert_eq!(status, 200);
    assert!(page.contains("<!DOCTYPE html>"));
    assert_eq!(get(&gw, "/metrics", &[]).0, 200);
}

#[test]
fn json_access_log_is_one_object_per_request() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("LOG_FORMAT", "json")]);
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false))
            .0,
        200
    );
    let is_access = |line: &str| line.starts_with('{') && line.contains("\"time_ms\"");
    let found = gw.wait_logs(|l| l.lines().any(is_access), 5);
    assert!(found, "{}", gw.logs());
    let logs = gw.logs();
    let line = logs.lines().find(|l| is_access(l)).unwrap();
    // The whole line is one object: a shipper needs no prefix stripped.
    let v: Value = serde_json::from_str(line).unwrap();
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(v["key"], "default");
    assert_eq!(v["api"], "openai");
    assert_eq!(v["model_requested"], "claude-sonnet-4-5");
    assert_eq!(v["model_served"], "claude-sonnet-4.5");
    assert_eq!(v["status"], 200);
    assert_eq!(v["credits"], DEFAULT_CREDITS);
    assert_eq!(v["tokens_in"], DEFAULT_INPUT_TOKENS);
    assert!(v["conversation_id"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(v["account"].as_str().is_some_and(|a| !a.is_empty()));
}

fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, c| (n << 8) | *c as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// A real browser (needs `chromium`; run with `cargo test --test monitoring -- --ignored`)
// ------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs chromium (apt-get install chromium)"]
fn headless_chromium_renders_the_status_page() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    assert_eq!(
        gw.post("/v1/chat/completions", &chat("claude-sonnet-4-5", false))
            .0,
        200
    );
    fake.push_reply(Reply::error(
        429,
        "Too many requests",
        Some("SERVICE_REQUEST_RATE_EXCEEDED"),
    ));
    assert_eq!(
        gw.post("/v1/messages", &messages("claude-sonnet-4-5")).0,
        200
    );
    scrape_after(&gw, 2);
    let profile = common::temp_dir("chromium");
    // The key as Basic credentials in the URL: the browser sends them as the page demands.
    let url = gw.url.replace("http://", &format!("http://admin:{KEY}@"));
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("{url}/"),
        ])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "kiro-gateway",
        "Accounts",
        "Last requests",
        "claude-sonnet-4.5",
        "anthropic",
        "openai",
        "throttle",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(
            dom.contains(needle),
            "{needle} not rendered:\n{dom}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&profile);
}
