//! Client keys: who is calling. `PROXY_API_KEYS_FILE` names people and agents, each with a key
//! (or its SHA-256), optionally the models they may use and a daily or monthly credit budget;
//! `PROXY_API_KEY` stays valid as the key named `default`.
//!
//! The file is read again when it changes (checked at most once a second, by whichever request
//! comes first): a good edit takes effect at once; a bad one is logged as an ERROR and the keys
//! in force stay, so an edit can neither lock everybody out nor open the gateway. At start-up a bad
//! file stops the gateway with the file's name and the line.
//!
//! Keys are compared by their SHA-256 in constant time. A key never appears in a log line, an
//! error, a metric label or the status page; only its name does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::Deserialize;

use crate::error::Error;
use crate::util::{constant_time_eq, now_unix_millis, sha256};

/// The name `PROXY_API_KEY` goes by.
pub const DEFAULT_KEY_NAME: &str = "default";
/// How often the file's modification time is looked at, at most.
const CHECK_EVERY_MS: u64 = 1000;

/// One client key.
#[derive(Clone, PartialEq)]
pub struct ClientKey {
    pub name: String,
    digest: [u8; 32],
    /// The models this key may use (as named by the client or by Kiro); `None`: all.
    pub models: Option<Vec<String>>,
    pub daily_credits: Option<f64>,
    pub monthly_credits: Option<f64>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("models", &self.models)
            .field("daily_credits", &self.daily_credits)
            .field("monthly_credits", &self.monthly_credits)
            .finish_non_exhaustive()
    }
}

/// An entry as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    name: String,
    key: Option<String>,
    key_sha256: Option<String>,
    models: Option<Vec<String>>,
    daily_credits: Option<f64>,
    monthly_credits: Option<f64>,
}

impl TryFrom<RawKey> for ClientKey {
    type Error = String;

    fn try_from(raw: RawKey) -> Result<ClientKey, String> {
        let name = raw.name.trim().to_string();
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            return Err("`name` must be 1 to 64 printable characters".into());
        }
        let digest = match (raw.key, raw.key_sha256) {
            (Some(k), None) if k.len() >= 8 => sha256(k.as_bytes()),
            (Some(_), None) => {
                return Err(format!("key `{name}`: `key` is shorter than 8 characters"))
            }
            (None, Some(h)) => parse_sha256(&h).ok_or_else(|| {
                format!("key `{name}`: `key_sha256` must be 64 hexadecimal digits")
            })?,
            (Some(_), Some(_)) => {
                return Err(format!(
                    "key `{name}`: give `key` or `key_sha256`, not both"
                ))
            }
            (None, None) => return Err(format!("key `{name}`: `key` or `key_sha256` is missing")),
        };
        for (what, v) in [
            ("daily_credits", raw.daily_credits),
            ("monthly_credits", raw.monthly_credits),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(format!("key `{name}`: `{what}` must be a number ≥ 0"));
            }
        }
        if raw
            .models
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m.trim().is_empty()))
        {
            return Err(format!("key `{name}`: `models` holds an empty name"));
        }
        Ok(ClientKey {
            name,
            digest,
            models: raw.models,
            daily_credits: raw.daily_credits,
            monthly_credits: raw.monthly_credits,
        })
    }
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(i * 2..i * 2 + 2)?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

impl ClientKey {
    /// The key `PROXY_API_KEY` stands for.
    pub fn from_proxy_key(key: &str) -> ClientKey {
        ClientKey {
            name: DEFAULT_KEY_NAME.into(),
            digest: sha256(key.as_bytes()),
            models: None,
            daily_credits: None,
            monthly_credits: None,
        }
    }

    /// Whether this key may use the model the client asked for (`requested`), which resolved to
    /// Kiro's `resolved`. Names compare without regard to case.
    pub fn allows_model(&self, requested: &str, resolved: &str) -> bool {
        match &self.models {
            None => true,
            Some(list) => list.iter().any(|m| {
                let m = m.trim();
                m.eq_ignore_ascii_case(requested) || m.eq_ignore_ascii_case(resolved)
            }),
        }
    }

    /// The budget this key has spent, given its credits today and this month, as a message for
    /// the client; `None` while within budget.
    pub fn budget_spent(&self, today: f64, month: f64) -> Option<String> {
        if let Some(limit) = self.daily_credits.filter(|l| today >= *l) {
            return Some(format!(
                "The daily credit budget of key '{}' ({} credits) is spent; it renews at 00:00 UTC.",
                self.name,
                crate::access_log::trim_float(limit)
            ));
        }
        if let Some(limit) = self.monthly_credits.filter(|l| month >= *l) {
            return Some(format!(
                "The monthly credit budget of key '{}' ({} credits) is spent; it renews on the 1st (UTC).",
                self.name,
                crate::access_log::trim_float(limit)
            ));
        }
        None
    }
}

/// What a request's credentials come to.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// No key is configured (loopback only): everyone is let in, anonymously.
    Open,
    /// A known key.
    Key(Arc<ClientKey>),
    /// A key is needed and none matched.
    Refused,
}

/// Whether a request may see `/metrics` and the status page: the admin key (`METRICS_KEY`, else
/// `PROXY_API_KEY`) as a bearer token, as `x-api-key`, or as the password of HTTP Basic auth (any
/// user name), so that a browser can open the page. No admin key: open (the gateway then listens
/// on loopback only, or has client keys, whose holders must not see each other's use).
pub fn admin_authorized(
    admin_key: Option<&str>,
    keys_file: bool,
    authorization: Option<&str>,
    x_api_key: Option<&str>,
) -> bool {
    let Some(admin) = admin_key else {
        return !keys_file;
    };
    let auth = authorization.map(str::trim).unwrap_or("");
    let (scheme, value) = auth.split_once(' ').unwrap_or((auth, ""));
    let basic_password = scheme
        .eq_ignore_ascii_case("basic")
        .then(|| decode_base64(value.trim()))
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|up| up.split_once(':').map(|(_, p)| p.to_string()));
    let bearer = scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| value.trim().to_string());
    let admin = sha256(admin.as_bytes());
    [bearer, basic_password, x_api_key.map(str::to_string)]
        .into_iter()
        .flatten()
        .fold(false, |ok, given| {
            constant_time_eq(&sha256(given.as_bytes()), &admin) | ok
        })
}

/// Standard base64 with or without padding; `None` on anything else.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The file's identity when it was last read: a change to either means it was edited.
type Stamp = (Option<SystemTime>, u64);

/// The keys in force.
#[derive(Debug)]
pub struct Keys {
    file: Option<PathBuf>,
    proxy_key: Option<Arc<ClientKey>>,
    from_file: RwLock<Arc<Vec<Arc<ClientKey>>>>,
    stamp: Mutex<Option<Stamp>>,
    next_check_ms: AtomicU64,
}

impl Keys {
    /// The keys of `file` (if any) plus `PROXY_API_KEY` as `default`. A bad file is an error
    /// naming the file and the line.
    pub fn load(file: Option<&Path>, proxy_key: Option<&str>) -> Result<Keys, Error> {
        let proxy_key = proxy_key.map(|k| Arc::new(ClientKey::from_proxy_key(k)));
        let mut keys = Keys {
            file: file.map(Path::to_path_buf),
            proxy_key,
            from_file: RwLock::new(Arc::new(Vec::new())),
            stamp: Mutex::new(None),
            next_check_ms: AtomicU64::new(now_unix_millis() + CHECK_EVERY_MS),
        };
        if let Some(path) = file {
            let stamp = stamp_of(path);
            let list = read_file(path, keys.proxy_key.is_some())
                .map_err(|m| Error::Config(format!("PROXY_API_KEYS_FILE {m}")))?;
            keys.from_file = RwLock::new(Arc::new(list));
            keys.stamp = Mutex::new(stamp);
        }
        Ok(keys)
    }

    /// Whether any key is configured (otherwise the gateway is open, on loopback only).
    pub fn any(&self) -> bool {
        self.proxy_key.is_some() || self.file.is_some()
    }

    /// The names of the keys in force (for the status page).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.proxy_key.iter().map(|k| k.name.clone()).collect();
        names.extend(self.file_keys().iter().map(|k| k.name.clone()));
        names
    }

    fn file_keys(&self) -> Arc<Vec<Arc<ClientKey>>> {
        self.from_file
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Who presents `given` (the bearer token or `x-api-key`), if anyone.
    pub fn identify(&self, given: Option<&str>) -> Caller {
        self.reload_if_changed();
        if !self.any() {
            return Caller::Open;
        }
        let Some(given) = given else {
            return Caller::Refused;
        };
        let digest = sha256(given.as_bytes());
        // Every key is compared, so the time taken does not tell which one (or whether one)
        // matched.
        let mut found = None;
        let file_keys = self.file_keys();
        for k in self.proxy_key.iter().chain(file_keys.iter()) {
            if constant_time_eq(&k.digest, &digest) && found.is_none() {
                found = Some(k.clone());
            }
        }
        found.map(Caller::Key).unwrap_or(Caller::Refused)
    }

    /// Read the file again if it changed since it was last read (at most once a second).
    pub fn reload_if_changed(&self) {
        let Some(path) = &self.file else {
            return;
        };
        let now = now_unix_millis();
        let due = self.next_check_ms.load(Ordering::Relaxed);
        if now < due
            || self
                .next_check_ms
                .compare_exchange(
                    due,
                    now + CHECK_EVERY_MS,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        self.reload(path);
    }

    fn reload(&self, path: &Path) {
        let stamp = stamp_of(path);
        let mut seen = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == stamp {
            return;
        }
        // Remembered even when the edit is bad, so the ERROR is logged once per edit.
        *seen = stamp;
        if stamp.is_none() {
            log::error!(
                "PROXY_API_KEYS_FILE {} cannot be read any more; the keys in force stay",
                path.display()
            );
            return;
        }
        match read_file(path, self.proxy_key.is_some()) {
            Ok(list) => {
                log::info!(
                    "PROXY_API_KEYS_FILE {} changed: {} key(s) in force",
                    path.display(),
                    list.len()
                );
                *self.from_file.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(list);
            }
            Err(m) => log::error!("PROXY_API_KEYS_FILE {m}; the keys in force stay"),
        }
    }
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok(), meta.len()))
}

/// Read and check the file. The error names the file and, where it can, the line.
fn read_file(path: &Path, has_proxy_key: bool) -> Result<Vec<Arc<ClientKey>>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
    let raw: Vec<RawKey> = serde_json::from_str(&text).map_err(|e| {
        // serde_json puts the position at the end of its message; say it first.
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        format!("{shown} line {}, column {}: {msg}", e.line(), e.column())
    })?;
    let mut list = Vec::with_capacity(raw.len());
    for r in raw {
        let line = line_of_name(&text, &r.name);
        list.push(ClientKey::try_from(r).map_err(|m| format!("{shown} line {line}: {m}"))?);
    }
    let mut names: Vec<&str> = Vec::new();
    let mut digests: Vec<[u8; 32]> = Vec::new();
    if has_proxy_key {
        names.push(DEFAULT_KEY_NAME);
    }
    for k in &list {
        let line = line_of_name(&text, &k.name);
        if names.contains(&k.name.as_str()) {
            let why = if k.name == DEFAULT_KEY_NAME && has_proxy_key {
                " (`default` is PROXY_API_KEY's name)"
            } else {
                ""
            };
            return Err(format!(
                "{shown} line {line}: the name `{}` is used twice{why}",
                k.name
            ));
        }
        if digests.contains(&k.digest) {
            return Err(format!(
                "{shown} line {line}: key `{}` has the same key as another entry",
                k.name
            ));
        }
        names.push(&k.name);
        digests.push(k.digest);
    }
    Ok(list.into_iter().map(Arc::new).collect())
}

/// The line of the last `"name": "<name>"` in the file (1 when not found).
fn line_of_name(text: &str, name: &str) -> usize {
    let quoted = serde_json::to_string(name).unwrap_or_default();
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains("\"name\"") && l.contains(&quoted))
        .map(|(i, _)| i + 1)
        .last()
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(tag: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kgw-keys-{tag}-{}-{}",
            std::process::id(),
            now_unix_millis()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("keys.json");
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = r#"[
  {"name": "alice", "key": "alice-key-123", "models": ["claude-sonnet-4.5"], "daily_credits": 20},
  {"name": "ci", "key_sha256": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
   "monthly_credits": 400}
]"#;

    fn name(c: &Caller) -> Option<&str> {
        match c {
            Caller::Key(k) => Some(&k.name),
            _ => None,
        }
    }

    #[test]
    fn each_key_is_known_by_its_name_and_the_proxy_key_is_default() {
        let p = temp_file("names", GOOD);
        let keys = Keys::load(Some(&p), Some("proxy-key-0001")).unwrap();
        assert_eq!(name(&keys.identify(Some("alice-key-123"))), Some("alice"));
        // sha256("password")
        assert_eq!(name(&keys.identify(Some("password"))), Some("ci"));
        assert_eq!(
            name(&keys.identify(Some("proxy-key-0001"))),
            Some("default")
        );
        assert_eq!(keys.identify(Some("alice-key-12")), Caller::Refused);
        assert_eq!(keys.identify(None), Caller::Refused);
        assert_eq!(keys.names(), vec!["default", "alice", "ci"]);
    }

    #[test]
    fn without_any_key_everyone_is_let_in() {
        let keys = Keys::load(None, None).unwrap();
        assert_eq!(keys.identify(None), Caller::Open);
        assert_eq!(keys.identify(Some("anything")), Caller::Open);
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_line() {
        let p = temp_file(
            "bad",
            "[\n  {\"name\": \"a\", \"key\": \"aaaaaaaaaa\"},\n  {\"name\": \"b\"}\n]",
        );
        let e = Keys::load(Some(&p), None).unwrap_err().to_string();
        assert!(e.contains("PROXY_API_KEYS_FILE"), "{e}");
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("`key` or `key_sha256` is missing"), "{e}");

        let p = temp_file(
            "syntax",
            "[\n  {\"name\": \"a\", \"key\": \"aaaaaaaaaa\"\n]",
        );
        let e = Keys::load(Some(&p), None).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");

        let p = temp_file(
            "dup",
            "[\n {\"name\": \"a\", \"key\": \"aaaaaaaaaa\"},\n {\"name\": \"a\", \"key\": \"bbbbbbbbbb\"}\n]",
        );
        let e = Keys::load(Some(&p), None).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("used twice"), "{e}");

        let p = temp_file(
            "typo",
            "[{\"name\": \"a\", \"key\": \"aaaaaaaaaa\", \"daily_credit\": 3}]",
        );
        let e = Keys::load(Some(&p), None).unwrap_err().to_string();
        assert!(e.contains("daily_credit"), "{e}");
        assert!(!e.contains("aaaaaaaaaa"), "a key leaked into {e}");
    }

    #[test]
    fn an_edit_takes_effect_and_a_bad_edit_keeps_the_keys_in_force() {
        let p = temp_file("reload", GOOD);
        let keys = Keys::load(Some(&p), None).unwrap();
        std::fs::write(&p, r#"[{"name": "bob", "key": "bob-key-4567"}]"#).unwrap();
        keys.reload(&p);
        assert_eq!(name(&keys.identify(Some("bob-key-4567"))), Some("bob"));
        assert_eq!(keys.identify(Some("alice-key-123")), Caller::Refused);

        std::fs::write(&p, r#"[{"name": "bob", "key": "bob-key-4567"#).unwrap();
        keys.reload(&p);
        assert_eq!(name(&keys.identify(Some("bob-key-4567"))), Some("bob"));

        std::fs::remove_file(&p).unwrap();
        keys.reload(&p);
        assert_eq!(name(&keys.identify(Some("bob-key-4567"))), Some("bob"));
    }

    #[test]
    fn models_and_budgets_are_enforced_per_key() {
        let p = temp_file("budget", GOOD);
        let keys = Keys::load(Some(&p), None).unwrap();
        let Caller::Key(alice) = keys.identify(Some("alice-key-123")) else {
            panic!("alice is known");
        };
        assert!(alice.allows_model("Claude-Sonnet-4.5", "claude-sonnet-4.5"));
        assert!(alice.allows_model("sonnet", "claude-sonnet-4.5"));
        assert!(!alice.allows_model("claude-opus-4.5", "claude-opus-4.5"));
        assert_eq!(alice.budget_spent(19.9, 100.0), None);
        let msg = alice.budget_spent(20.0, 100.0).unwrap();
        assert!(
            msg.contains("daily credit budget") && msg.contains("'alice'"),
            "{msg}"
        );
        let Caller::Key(ci) = keys.identify(Some("password")) else {
            panic!("ci is known");
        };
        assert!(ci.allows_model("anything", "anything"));
        assert!(ci.budget_spent(1000.0, 400.0).unwrap().contains("monthly"));
        assert!(!format!("{ci:?}").contains("5e8848"));
    }
    #[test]
    fn admin_pages_take_bearer_basic_or_x_api_key() {
        let admin = Some("admin-key-0001");
        // "user:admin-key-0001"
        let basic = "Basic dXNlcjphZG1pbi1rZXktMDAwMQ==";
        assert!(admin_authorized(
            admin,
            false,
            Some("Bearer admin-key-0001"),
            None
        ));
        assert!(admin_authorized(admin, false, Some(basic), None));
        assert!(admin_authorized(admin, false, None, Some("admin-key-0001")));
        assert!(!admin_authorized(
            admin,
            false,
            Some("Bearer admin-key-0002"),
            None
        ));
        // ":wrong"
        assert!(!admin_authorized(
            admin,
            false,
            Some("Basic Ondyb25n"),
            None
        ));
        assert!(!admin_authorized(admin, false, Some("Basic !!!"), None));
        assert!(!admin_authorized(admin, false, None, None));
        assert!(admin_authorized(None, false, None, None));
        assert!(!admin_authorized(None, true, Some("Bearer x"), None));
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert_eq!(decode_base64("YWI").unwrap(), b"ab");
    }
}
