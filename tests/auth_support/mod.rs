//! Helpers shared by the auth end-to-end tests: credential files and kiro-cli databases in a
//! temporary directory, an ISO-8601 formatter and parser written independently of the gateway's,
//! and small request helpers. Include with `mod auth_support;` next to `mod common;` and
//! `mod fake_kiro;`.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::common::Gateway;
use crate::fake_kiro::{FakeKiro, Recorded};

/// The ARN a login's own file (or row) holds.
pub const FILE_ARN: &str = "arn:aws:codewhisperer:us-east-1:111122223333:profile/FROMTHEFILE";
/// The ARN kiro-cli's `state` table selects.
pub const STATE_ARN: &str = "arn:aws:codewhisperer:us-east-1:444455556666:profile/FROMSTATE";
/// The user's explicit `PROFILE_ARN`.
pub const EXPLICIT_ARN: &str = "arn:aws:codewhisperer:us-east-1:777788889999:profile/EXPLICIT";
/// An ARN the fake's desktop refresh answers with (set with `set_profile_arn`).
pub const REFRESH_ARN: &str = "arn:aws:codewhisperer:us-east-1:222233334444:profile/FROMREFRESH";

pub const SOCIAL_KEY: &str = "kirocli:social:token";
pub const ODIC_KEY: &str = "kirocli:odic:token";
pub const ODIC_REGISTRATION_KEY: &str = "kirocli:odic:device-registration";
pub const EXTERNAL_KEY: &str = "kirocli:external-idp:token";

/// Removes `REFRESH_TOKEN` (the harness's base environment sets one).
pub fn no_env_token() -> (&'static str, &'static str) {
    ("REFRESH_TOKEN", "")
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The two ISO-8601 forms the tests write: the Kiro IDE's and the AWS CLI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iso {
    /// `2026-01-02T03:04:05.678Z`
    MillisZ,
    /// `2026-01-02T03:04:05Z`
    SecondsZ,
}

/// Unix milliseconds as UTC ISO-8601 in the given form.
pub fn iso(ms: i64, form: Iso) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    match form {
        Iso::MillisZ => format!("{base}.{:03}Z", ms.rem_euclid(1000)),
        Iso::SecondsZ => format!("{base}Z"),
    }
}

/// Parse one of the two forms [`iso`] writes; anything else is `None`.
pub fn parse_iso(s: &str) -> Option<(i64, Iso)> {
    let b = s.as_bytes();
    let form = match b.len() {
        20 if b[19] == b'Z' => Iso::SecondsZ,
        24 if b[19] == b'.' && b[23] == b'Z' => Iso::MillisZ,
        _ => return None,
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    let secs = days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
    let millis = match form {
        Iso::MillisZ => n(20..23)?,
        Iso::SecondsZ => 0,
    };
    Some((secs * 1000 + millis, form))
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A temporary directory for credential files, removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(tag: &str) -> Dir {
        Dir(crate::common::temp_dir(tag))
    }

    /// The path of `name` inside the directory, as a string (for environment variables).
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }

    /// Write `text` to `name`; returns its path.
    pub fn text(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        fs::write(&p, text).unwrap();
        p
    }

    /// Write `value` pretty-printed with a trailing newline, as the Kiro IDE does.
    pub fn json(&self, name: &str, value: &Value) -> String {
        self.text(
            name,
            &format!("{}\n", serde_json::to_string_pretty(value).unwrap()),
        )
    }

    /// Create a kiro-cli database `data.sqlite3` with these `auth_kv` and `state` rows.
    pub fn db(&self, auth: &[(&str, String)], state: &[(&str, String)]) -> String {
        let p = self.path("data.sqlite3");
        let conn = Connection::open(&p).unwrap();
        conn.execute_batch(
            "CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT);
             CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT);",
        )
        .unwrap();
        for (k, v) in auth {
            conn.execute("INSERT INTO auth_kv VALUES (?1, ?2)", [k, v.as_str()])
                .unwrap();
        }
        for (k, v) in state {
            conn.execute("INSERT INTO state VALUES (?1, ?2)", [k, v.as_str()])
                .unwrap();
        }
        p
    }

    /// The names of the directory's entries, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Every row of both kiro-cli tables as (table, key, value), sorted.
pub fn db_dump(path: &str) -> Vec<(String, String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut out = Vec::new();
    for table in ["auth_kv", "state"] {
        let mut stmt = conn
            .prepare(&format!("SELECT key, value FROM {table} ORDER BY key"))
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap();
        for row in rows {
            let (k, v) = row.unwrap();
            out.push((table.to_string(), k, v));
        }
    }
    out
}

/// The JSON value of one `auth_kv` row.
pub fn db_row(path: &str, key: &str) -> Value {
    db_dump(path)
        .into_iter()
        .find(|(t, k, _)| t == "auth_kv" && k == key)
        .map(|(_, _, v)| serde_json::from_str(&v).unwrap())
        .unwrap_or(Value::Null)
}

/// A JSON file's content (Null while it is not valid JSON).
pub fn read_json(path: &str) -> Value {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// The permission bits of a file.
pub fn mode(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn set_mode(path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small non-streaming chat request.
pub fn chat_body() -> Value {
    json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]})
}

/// One non-streaming chat that must succeed with the fake's default answer; returns what Kiro
/// received last (call only while no other request is running).
pub fn chat_ok(gw: &Gateway, fake: &FakeKiro) -> Recorded {
    let (status, body) = gw.post("/v1/chat/completions", &chat_body());
    assert_eq!(status, 200, "{body}\nlogs:\n{}", gw.logs());
    assert_eq!(
        body["choices"][0]["message"]["content"], "Hello from fake Kiro",
        "{body}"
    );
    fake.last_request().unwrap()
}

/// `GET /health` (must be 200).
pub fn health(gw: &Gateway) -> Value {
    let (status, body) = gw.get("/health");
    assert_eq!(status, 200, "{body}");
    body
}

/// `origin` of the current user message of an inference call.
pub fn origin(r: &Recorded) -> String {
    r.body["conversationState"]["currentMessage"]["userInputMessage"]["origin"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The List-Available-Profiles calls the fake received.
pub fn profile_calls(fake: &FakeKiro) -> Vec<Recorded> {
    fake.management_requests()
        .into_iter()
        .filter(|r| r.path == "/List-Available-Profiles")
        .collect()
}

/// The top-level keys of a JSON text in the order they appear in it (first level only).
pub fn top_level_keys(text: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(text).unwrap();
    let mut keys: Vec<(usize, String)> = v
        .as_object()
        .unwrap()
        .keys()
        .map(|k| {
            let needle = format!("\n  {}:", serde_json::to_string(k).unwrap());
            let at = text
                .find(&needle)
                .unwrap_or_else(|| panic!("{k} not at top level: {text}"));
            (at, k.clone())
        })
        .collect();
    keys.sort();
    keys.into_iter().map(|(_, k)| k).collect()
}

/// Every key of `old` except `changed` holds the same value in `new`.
pub fn assert_keys_kept(old: &Value, new: &Value, changed: &[&str]) {
    for (k, v) in old.as_object().unwrap() {
        if !changed.contains(&k.as_str()) {
            assert_eq!(&new[k], v, "key {k} changed: {new}");
        }
    }
}

/// Leave `n` idle connection threads in the fake's HTTP server before a burst of new
/// connections.
///
/// tiny_http 0.12 hands each accepted connection to a task pool that decides "an idle thread will
/// take it" from a counter that lags behind wake-ups: when connections arrive faster than idle
/// threads wake, one is queued behind a thread that is serving a keep-alive connection and waits
/// until that connection closes. The gateway keeps its upstream connections alive, so such a
/// request would wait forever. Opening `n` keep-alive connections one after the other (each
/// answered before the next is opened, so each gets a thread of its own) and then closing them
/// all leaves `n` threads idle for about five seconds (tiny_http's idle timeout), enough for the
/// burst that follows.
pub fn warm_up_fake_threads(fake: &FakeKiro, n: usize) {
    use std::io::{Read, Write};
    let mut pinned = Vec::with_capacity(n);
    for _ in 0..n {
        let mut conn = std::net::TcpStream::connect(fake.addr()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conn.write_all(b"GET /warm-up HTTP/1.1\r\nHost: fake\r\n\r\n")
            .unwrap();
        // Read the whole answer (head and Content-Length body) so the connection stays usable.
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the fake closed a warm-up connection");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + length {
                    break;
                }
            }
        }
        pinned.push(conn);
    }
    drop(pinned);
    // Let every thread see its connection close and go idle.
    std::thread::sleep(Duration::from_millis(100));
}
