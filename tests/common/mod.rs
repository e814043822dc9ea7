//! Test harness: starts the real `kiro-gateway` binary on a free port against the fake Kiro, with a
//! clean working directory (so no stray `.env` is read), and gives small HTTP helpers.
#![allow(dead_code)]

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const KEY: &str = "test-proxy-key-0123456789";

/// A fresh, empty temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!(
        "kgw-test-{tag}-{}-{n}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One parsed SSE event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

pub struct Gateway {
    pub url: String,
    child: Child,
    logs: Arc<Mutex<LogPipe>>,
    pub dir: PathBuf,
    agent: ureq::Agent,
}

/// The environment every test gateway gets: the fake's URLs, a key, fast retries.
pub fn base_env(fake_url: &str) -> Vec<(String, String)> {
    [
        ("PROXY_API_KEY", KEY.to_string()),
        ("SERVER_HOST", "127.0.0.1".to_string()),
        ("SERVER_PORT", "0".to_string()),
        ("KIRO_API_URL", fake_url.to_string()),
        ("KIRO_MANAGEMENT_URL", fake_url.to_string()),
        ("KIRO_DESKTOP_AUTH_URL", format!("{fake_url}/refreshToken")),
        ("KIRO_SSO_OIDC_URL", format!("{fake_url}/token")),
        ("KIRO_UPDATE_URL", format!("{fake_url}/stable/latest.yml")),
        ("REFRESH_TOKEN", "test-refresh-token-1".to_string()),
        ("BASE_RETRY_DELAY", "0.01".to_string()),
        ("LOG_LEVEL", "DEBUG".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn agent() -> ureq::Agent {
    let cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build();
    ureq::Agent::new_with_config(cfg)
}

/// Run the binary with this environment (nothing inherited but PATH/HOME) and these args,
/// in `dir`.
pub fn command(dir: &Path, env: &[(String, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiro-gateway"));
    cmd.current_dir(dir).env_clear().args(args);
    for k in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    let has = |name: &str| env.iter().any(|(k, _)| k == name);
    // Never the real update manifest from a test; what the gateway learns stays in its test dir.
    if !has("KIRO_UPDATE_URL") && !has("KIRO_IDE_VERSION") {
        cmd.env("KIRO_IDE_VERSION", "off");
    }
    if !has("STATE_DIR") {
        cmd.env("STATE_DIR", dir.join("state"));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl Gateway {
    /// Start against the fake at `fake_url`; `overrides` replace or add variables (an empty value
    /// removes the variable).
    pub fn start(fake_url: &str, overrides: &[(&str, &str)]) -> Gateway {
        let mut env = base_env(fake_url);
        for (k, v) in overrides {
            env.retain(|(ek, _)| ek != k);
            if !v.is_empty() {
                env.push((k.to_string(), v.to_string()));
            }
        }
        Gateway::start_env(env, temp_dir("gw"))
    }

    pub fn start_env(env: Vec<(String, String)>, dir: PathBuf) -> Gateway {
        Gateway::start_env_with(env, dir, |_| {})
    }

    /// Like [`Gateway::start_env`], with a last change to the command (e.g. a resource limit).
    pub fn start_env_with(
        env: Vec<(String, String)>,
        dir: PathBuf,
        tweak: impl FnOnce(&mut Command),
    ) -> Gateway {
        let mut cmd = command(&dir, &env, &[]);
        tweak(&mut cmd);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kiro-gateway");
        let logs = Arc::new(Mutex::new(LogPipe::new(child.stderr.take().unwrap())));
        let (tx, rx) = std::sync::mpsc::channel();
        let logs2 = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            loop {
                let fd = logs2.lock().unwrap().fd();
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; the fd stays open while `logs2` holds the pipe.
                unsafe { libc::poll(&mut pfd, 1, 100) };
                let mut pipe = logs2.lock().unwrap();
                pipe.drain();
                if !sent {
                    let whole = &pipe.text[..pipe.text.rfind('\n').map_or(0, |i| i + 1)];
                    if let Some(rest) = whole.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
                if pipe.eof {
                    break;
                }
            }
        });
        // A fixed SERVER_PORT lets quiet gateways (LOG_LEVEL=ERROR: no "listening on" line) be
        // found by connecting to it.
        let fixed_port = env
            .iter()
            .find(|(k, _)| k == "SERVER_PORT")
            .and_then(|(_, v)| v.parse::<u16>().ok())
            .filter(|p| *p != 0);
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Ok(a) = rx.recv_timeout(Duration::from_millis(20)) {
                break a;
            }
            if let Some(port) = fixed_port {
                let addr = format!("127.0.0.1:{port}");
                if std::net::TcpStream::connect(&addr).is_ok() {
                    break addr;
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "gateway did not start; logs:\n{}",
                    logs.lock().unwrap().text
                );
            }
        };
        Gateway {
            url: format!("http://{addr}"),
            child,
            logs,
            dir,
            agent: agent(),
        }
    }

    /// Start with a fixed free port, found without the start-up log line (for `LOG_LEVEL=ERROR`).
    pub fn start_quiet(fake_url: &str, overrides: &[(&str, &str)]) -> Gateway {
        let port = free_port();
        let port = port.to_string();
        let mut all: Vec<(&str, &str)> = overrides.to_vec();
        all.push(("SERVER_PORT", &port));
        Gateway::start(fake_url, &all)
    }

    /// The gateway's process id (for `/proc` checks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gateway's thread count (`Threads:` of /proc/PID/status).
    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    /// The gateway's resident memory in KiB (`VmRSS:` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// The gateway's open file descriptors (entries of /proc/PID/fd).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// How many of the gateway's sockets have an established TCP connection to 127.0.0.1:`port`
    /// (its fds matched by inode against /proc/PID/net/tcp).
    pub fn connections_to(&self, port: u16) -> usize {
        let pid = self.pid();
        let inodes: std::collections::HashSet<String> =
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| {
                    d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                        .filter_map(|l| {
                            let l = l.to_string_lossy().to_string();
                            l.strip_prefix("socket:[")
                                .map(|s| s.trim_end_matches(']').to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
        let want = format!(":{port:04X}");
        let mut n = 0;
        for table in ["tcp", "tcp6"] {
            let text =
                std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local remote st tx:rx tr:when retrnsmt uid timeout inode
                if f.len() > 9 && f[2].ends_with(&want) && f[3] == "01" && inodes.contains(f[9]) {
                    n += 1;
                }
            }
        }
        n
    }

    /// Everything the gateway wrote to stderr so far: the pipe is drained here, so a line logged
    /// before the response the caller just read is always included.
    pub fn logs(&self) -> String {
        let mut pipe = self.logs.lock().unwrap();
        pipe.drain();
        pipe.text.clone()
    }

    /// POST JSON with the key; returns status and parsed body (Null if not JSON).
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (s, _, text) = self.post_raw(
            path,
            &[("authorization", &format!("Bearer {KEY}"))],
            body.to_string().as_bytes(),
        );
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST raw bytes with the given headers; returns status, response headers and body text.
    pub fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, String) {
        let mut req = self
            .agent
            .post(&format!("{}{path}", self.url))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
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

    /// GET with the key.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .agent
            .get(&format!("{}{path}", self.url))
            .header("authorization", &format!("Bearer {KEY}"))
            .call()
            .expect("request");
        let status = resp.status().as_u16();
        let mut text = String::new();
        resp.into_body()
            .into_reader()
            .read_to_string(&mut text)
            .unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POST and read the whole SSE body into events (status must be 200).
    pub fn stream(&self, path: &str, body: &Value) -> Vec<SseEvent> {
        let (status, _, text) = self.post_raw(
            path,
            &[("authorization", &format!("Bearer {KEY}"))],
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "stream status; body: {text}");
        parse_sse(&text)
    }

    /// Wait until `pred(logs)` holds (for background actions such as timer refreshes).
    pub fn wait_logs(&self, pred: impl Fn(&str) -> bool, secs: u64) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if pred(&self.logs()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// The gateway's stderr, read without blocking both by a thread (so the gateway never blocks on
/// a full pipe) and by [`Gateway::logs`] (so nothing already written is missed).
struct LogPipe {
    stderr: ChildStderr,
    text: String,
    /// The start of a UTF-8 sequence whose rest has not arrived yet.
    partial: Vec<u8>,
    eof: bool,
}

impl LogPipe {
    fn new(stderr: ChildStderr) -> LogPipe {
        let fd = stderr.as_raw_fd();
        // SAFETY: fcntl on the pipe fd this struct owns.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        LogPipe {
            stderr,
            text: String::new(),
            partial: Vec::new(),
            eof: false,
        }
    }

    fn fd(&self) -> i32 {
        self.stderr.as_raw_fd()
    }

    /// Read whatever the pipe holds now.
    fn drain(&mut self) {
        let mut buf = [0u8; 8192];
        while !self.eof {
            match self.stderr.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    let keep = match std::str::from_utf8(&self.partial) {
                        Ok(_) => 0,
                        Err(e) if e.error_len().is_none() => self.partial.len() - e.valid_up_to(),
                        Err(_) => 0,
                    };
                    let done = self.partial.len() - keep;
                    self.text
                        .push_str(&String::from_utf8_lossy(&self.partial[..done]));
                    self.partial.drain(..done);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => self.eof = true,
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Parse an SSE body into events (comments skipped).
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut event = None;
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(e) = line.strip_prefix("event: ") {
                event = Some(e.to_string());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push(d.to_string());
            }
        }
        if event.is_some() || !data.is_empty() {
            out.push(SseEvent {
                event,
                data: data.join("\n"),
            });
        }
    }
    out
}

/// Run the binary expecting it to exit (start-up failure); returns exit code and stderr.
pub fn run_to_exit(env: &[(String, String)], args: &[&str]) -> (i32, String) {
    let dir = temp_dir("exit");
    let mut child = command(&dir, env, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            let _ = std::fs::remove_dir_all(&dir);
            return (status.code().unwrap_or(-1), format!("{out}{err}"));
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the gateway did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
