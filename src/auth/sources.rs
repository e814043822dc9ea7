//! Where logins come from and go back to: Kiro IDE / AWS SSO cache JSON files and the kiro-cli
//! SQLite database (environment-only logins need nothing from here).
//!
//! Reading turns a source into a [`LoginData`]; [`detect_kind`] decides the kind of login from that
//! data alone. Write-back changes only the token fields and keeps every other field exactly as the
//! owning client (Kiro IDE, kiro-cli) wrote it: JSON files are replaced atomically (temp file in the
//! same directory, fsync, rename, permissions kept), SQLite rows are updated inside one
//! `BEGIN IMMEDIATE` transaction with a 5 s busy timeout, so a running kiro-cli never sees a torn row.
//!
//! No HTTP, no token cache and no locking of our own live here, and no token ever appears in a
//! log line or an error message.

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::AuthKind;
use crate::error::Error;
use crate::util::{self, IsoStyle};

/// The start URL of AWS Builder ID; any other start URL is an IAM Identity Center instance.
pub const BUILDER_ID_START_URL: &str = "https://view.awsapps.com/start";

/// kiro-cli `auth_kv` token keys, in the order we look for them.
///
/// Social first, then the two keys kiro-cli 2.x writes for OIDC and external-IdP logins, and the
/// legacy amazon-q key `codewhisperer:odic:token` last: a stale row left behind by an old amazon-q
/// login can outlive the move to kiro-cli and must not shadow the current login. (`odic` is
/// kiro-cli's own spelling.)
pub const TOKEN_KEYS: [&str; 4] = [
    "kirocli:social:token",
    "kirocli:odic:token",
    EXTERNAL_IDP_KEY,
    "codewhisperer:odic:token",
];

/// The kiro-cli row of an external identity provider (Entra ID, Okta) login.
pub const EXTERNAL_IDP_KEY: &str = "kirocli:external-idp:token";

/// kiro-cli `state` key holding the selected profile as JSON `{"arn": …, "profileName": …}`.
pub const PROFILE_STATE_KEY: &str = "api.codewhisperer.profile";

/// kiro-cli `state` key holding the IAM Identity Center start URL of the last IdC login.
const START_URL_STATE_KEY: &str = "auth.idc.start-url";

/// How long a write waits for kiro-cli to release the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How an expiry was written in its source, so a rewrite keeps the same form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryFormat {
    /// An ISO-8601 string in the given style.
    Iso(IsoStyle),
    /// A number of seconds since the Unix epoch.
    UnixSeconds,
    /// A number of milliseconds since the Unix epoch.
    UnixMillis,
}

/// Everything one source says about a login. A field the source lacks is `None`.
#[derive(Clone, Default, PartialEq)]
pub struct LoginData {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// Expiry of the access token, Unix milliseconds.
    pub expires_at_ms: Option<i64>,
    pub expiry_format: Option<ExpiryFormat>,
    /// The login's own profile ARN (JSON `profileArn`, row `profile_arn`, or kiro-cli's `state`).
    pub profile_arn: Option<String>,
    /// The login's own region: the SSO region for OIDC logins, the auth region for social ones.
    /// Never the inference region.
    pub region: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub start_url: Option<String>,
    pub provider: Option<String>,
    pub auth_method: Option<String>,
    /// External IdP: the tenant's token endpoint.
    pub token_endpoint: Option<String>,
    /// SQLite: the `auth_kv` key the token row was read from (and goes back to).
    pub db_key: Option<String>,
}

impl fmt::Debug for LoginData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginData")
            .field("access_token", &presence(&self.access_token))
            .field("refresh_token", &presence(&self.refresh_token))
            .field("expires_at_ms", &self.expires_at_ms)
            .field("profile_arn", &self.profile_arn)
            .field("region", &self.region)
            .field("client_id", &self.client_id.as_ref().map(|_| "<set>"))
            .field("client_secret", &presence(&self.client_secret))
            .field("start_url", &self.start_url)
            .field("provider", &self.provider)
            .field("auth_method", &self.auth_method)
            .field("token_endpoint", &self.token_endpoint)
            .field("db_key", &self.db_key)
            .finish()
    }
}

fn presence(v: &Option<String>) -> &'static str {
    if v.is_some() {
        "<redacted>"
    } else {
        "<none>"
    }
}

impl LoginData {
    /// Whether the source holds anything to authenticate with.
    pub fn has_token(&self) -> bool {
        self.access_token.is_some() || self.refresh_token.is_some()
    }
}

/// The new token fields to write back after a refresh.
pub struct TokenUpdate<'a> {
    pub access_token: &'a str,
    /// `None` (or empty) keeps the stored refresh token.
    pub refresh_token: Option<&'a str>,
    pub expires_at_ms: i64,
    /// JSON files only: written when the file has no `profileArn` yet.
    pub profile_arn: Option<&'a str>,
}

/// Decide the kind of login from its data. `arn_known` says whether a profile ARN is known from
/// anywhere (the source or an explicit `PROFILE_ARN`); it only breaks the tie for an OIDC login
/// whose start URL and provider are both unknown.
pub fn detect_kind(d: &LoginData, arn_known: bool) -> AuthKind {
    let method = d.auth_method.as_deref().map(squash);
    let provider = d.provider.as_deref().map(squash);
    if d.db_key.as_deref() == Some(EXTERNAL_IDP_KEY) || method.as_deref() == Some("externalidp") {
        return AuthKind::ExternalIdp;
    }
    if d.client_id.is_none() || d.client_secret.is_none() {
        return AuthKind::Social;
    }
    let start = d.start_url.as_deref().map(normalise_start_url);
    if start.as_deref() == Some(BUILDER_ID_START_URL) || provider.as_deref() == Some("builderid") {
        AuthKind::BuilderId
    } else if start.is_some()
        || provider.as_deref() == Some("enterprise")
        || method.as_deref() == Some("idc")
        // Neither start URL nor provider known: only IdC logins have a profile of their own.
        || arn_known
    {
        AuthKind::IdentityCenter
    } else {
        AuthKind::BuilderId
    }
}

/// Lowercase without `_`, `-` and spaces: `external_idp`, `ExternalIdp` → `externalidp`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn normalise_start_url(s: &str) -> String {
    let s = s.split('#').next().unwrap_or(s);
    s.trim().trim_end_matches('/').to_string()
}

fn config_error(path: &Path, why: impl fmt::Display) -> Error {
    Error::Config(format!("{}: {why}", path.display()))
}

/// A non-empty string field, trying each name in turn.
fn str_field(obj: &OrderedObject, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        obj.get(n)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    })
}

fn parse_expiry(v: &Value) -> Option<(i64, ExpiryFormat)> {
    match v {
        Value::String(s) => util::parse_iso8601(s).map(|(ms, st)| (ms, ExpiryFormat::Iso(st))),
        Value::Number(n) => {
            let x = n.as_f64()?;
            if !x.is_finite() || x < 0.0 {
                None
            } else if x > 1e11 {
                Some((x as i64, ExpiryFormat::UnixMillis))
            } else {
                Some(((x * 1000.0) as i64, ExpiryFormat::UnixSeconds))
            }
        }
        _ => None,
    }
}

fn expiry_value(ms: i64, format: ExpiryFormat) -> Value {
    match format {
        ExpiryFormat::Iso(style) => Value::String(util::format_iso8601(ms, style)),
        ExpiryFormat::UnixSeconds => Value::from(ms.div_euclid(1000)),
        ExpiryFormat::UnixMillis => Value::from(ms),
    }
}

/// A JSON object that keeps its keys in file order (serde_json's own map sorts them), so a
/// rewritten file differs from the original only in the fields we changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderedObject(pub Vec<(String, Value)>);

impl OrderedObject {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// Replace `key` in place, or append it.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }
}

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    // A duplicate key: the last one wins, as in serde_json.
                    entries.retain(|(old, _)| *old != k);
                    entries.push((k, v));
                }
                Ok(OrderedObject(entries))
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for OrderedObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn read_json_object(path: &Path) -> Result<OrderedObject, Error> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(config_error(path, "file not found"))
        }
        Err(e) => return Err(config_error(path, format!("cannot read the file: {e}"))),
    };
    parse_object(&text).map_err(|why| config_error(path, why))
}

fn parse_object(text: &str) -> Result<OrderedObject, String> {
    // serde_json's messages name a line and column, never the content.
    serde_json::from_str::<OrderedObject>(text)
        .map_err(|e| format!("not a valid JSON object ({e})"))
}

/// Read a Kiro IDE (`kiro-auth-token.json`) or AWS SSO cache credentials file.
///
/// `clientIdHash` ("Enterprise" Kiro IDE) loads `{dir of the file}/{hash}.json` for `clientId` /
/// `clientSecret`; a `clientId` / `clientSecret` in the file itself wins over that registration. A
/// missing or unreadable registration file only logs a warning (the login then stays social).
pub fn load_json(path: &Path) -> Result<LoginData, Error> {
    let obj = read_json_object(path)?;
    let mut d = LoginData {
        access_token: str_field(&obj, &["accessToken"]),
        refresh_token: str_field(&obj, &["refreshToken"]),
        profile_arn: str_field(&obj, &["profileArn"]),
        region: str_field(&obj, &["region"]),
        start_url: str_field(&obj, &["startUrl"]),
        provider: str_field(&obj, &["provider"]),
        auth_method: str_field(&obj, &["authMethod"]),
        token_endpoint: str_field(&obj, &["tokenEndpoint", "token_endpoint"]),
        ..LoginData::default()
    };
    if let Some((ms, format)) = obj.get("expiresAt").and_then(parse_expiry) {
        d.expires_at_ms = Some(ms);
        d.expiry_format = Some(format);
    }
    if let Some(hash) = str_field(&obj, &["clientIdHash"]) {
        if let Some((id, secret)) = read_registration(path, &hash) {
            d.client_id = Some(id);
            d.client_secret = Some(secret);
        }
    }
    if let Some(id) = str_field(&obj, &["clientId", "client_id"]) {
        d.client_id = Some(id);
    }
    if let Some(secret) = str_field(&obj, &["clientSecret"]) {
        d.client_secret = Some(secret);
    }
    Ok(d)
}

/// The device registration `{dir of creds file}/{hash}.json` of an Enterprise Kiro IDE login.
fn read_registration(creds: &Path, hash: &str) -> Option<(String, String)> {
    // The hash names a file beside the creds file; refuse anything that could leave that directory.
    if hash.is_empty()
        || !hash
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        log::warn!(
            "{}: clientIdHash is not a plain file name; ignored",
            creds.display()
        );
        return None;
    }
    let dir = creds.parent().unwrap_or_else(|| Path::new("."));
    let reg_path = dir.join(format!("{hash}.json"));
    match read_json_object(&reg_path) {
        Ok(obj) => {
            match (
                str_field(&obj, &["clientId"]),
                str_field(&obj, &["clientSecret"]),
            ) {
                (Some(id), Some(secret)) => Some((id, secret)),
                _ => {
                    log::warn!(
                        "{}: the device registration has no clientId/clientSecret",
                        reg_path.display()
                    );
                    None
                }
            }
        }
        Err(e) => {
            log::warn!("device registration for clientIdHash not usable: {e}");
            None
        }
    }
}

/// The text of one key-value row, whether stored as TEXT or BLOB.
fn kv_get(conn: &Connection, table: &str, key: &str) -> rusqlite::Result<Option<String>> {
    let sql = format!("SELECT value FROM {table} WHERE key = ?1");
    conn.query_row(&sql, [key], |row| {
        Ok(match row.get_ref(0)? {
            rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                Some(String::from_utf8_lossy(b).into_owned())
            }
            _ => None,
        })
    })
    .optional()
    .map(Option::flatten)
}

/// A kiro-cli `state` value: JSON (an object or a quoted string) or plain text. Missing table or
/// key → `None`.
fn state_value(conn: &Connection, key: &str) -> Option<Value> {
    let text = kv_get(conn, "state", key).ok().flatten()?;
    Some(serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text)))
}

fn open_read_only(path: &Path) -> Result<Connection, Error> {
    if !path.exists() {
        return Err(config_error(path, "file not found"));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| config_error(path, format!("cannot open the SQLite database: {e}")))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| config_error(path, format!("cannot open the SQLite database: {e}")))?;
    Ok(conn)
}

/// Read a kiro-cli (or amazon-q-developer-cli) SQLite database.
///
/// The token row is the first of [`TOKEN_KEYS`] that holds a JSON object with a token. OIDC rows
/// take `client_id` / `client_secret` from the matching device-registration row (its `region` is
/// used only when the token row has none). The profile ARN comes from the row's `profile_arn`,
/// else from the `state` table (`api.codewhisperer.profile`).
pub fn load_sqlite(path: &Path) -> Result<LoginData, Error> {
    let conn = open_read_only(path)?;
    let mut chosen = None;
    for key in TOKEN_KEYS {
        let text = kv_get(&conn, "auth_kv", key).map_err(|e| {
            config_error(
                path,
                format!("not a kiro-cli database (reading auth_kv: {e})"),
            )
        })?;
        let Some(text) = text else { continue };
        match parse_object(&text) {
            Ok(row) if str_field(&row, &["access_token", "refresh_token"]).is_some() => {
                chosen = Some((key, row));
                break;
            }
            Ok(_) => log::warn!("{}: row {key} holds no token; skipped", path.display()),
            Err(why) => log::warn!("{}: row {key} is {why}; skipped", path.display()),
        }
    }
    let Some((key, row)) = chosen else {
        return Err(config_error(
            path,
            "no kiro-cli login in table auth_kv (run 'kiro-cli login')",
        ));
    };
    let mut d = LoginData {
        access_token: str_field(&row, &["access_token"]),
        refresh_token: str_field(&row, &["refresh_token"]),
        profile_arn: str_field(&row, &["profile_arn"]),
        region: str_field(&row, &["region"]),
        start_url: str_field(&row, &["start_url"]),
        provider: str_field(&row, &["provider"]),
        token_endpoint: str_field(&row, &["token_endpoint"]),
        client_id: str_field(&row, &["client_id"]),
        db_key: Some(key.to_string()),
        ..LoginData::default()
    };
    if let Some((ms, format)) = row.get("expires_at").and_then(parse_expiry) {
        d.expires_at_ms = Some(ms);
        d.expiry_format = Some(format);
    }
    if key.contains(":odic:") {
        read_device_registration(&conn, path, key, &mut d);
        if d.start_url.is_none() {
            d.start_url = state_value(&conn, START_URL_STATE_KEY)
                .and_then(|v| v.as_str().map(String::from))
                .filter(|s| !s.is_empty());
        }
    }
    if d.profile_arn.is_none() {
        d.profile_arn = state_value(&conn, PROFILE_STATE_KEY).and_then(|v| match v {
            Value::Object(o) => o
                .get("arn")
                .or_else(|| o.get("profile_arn"))
                .and_then(Value::as_str)
                .map(String::from),
            Value::String(s) if s.starts_with("arn:") => Some(s),
            _ => None,
        });
    }
    Ok(d)
}

fn read_device_registration(conn: &Connection, path: &Path, token_key: &str, d: &mut LoginData) {
    // The registration that belongs to the token's own family first.
    let regs = if token_key.starts_with("codewhisperer:") {
        [
            "codewhisperer:odic:device-registration",
            "kirocli:odic:device-registration",
        ]
    } else {
        [
            "kirocli:odic:device-registration",
            "codewhisperer:odic:device-registration",
        ]
    };
    for reg_key in regs {
        let Ok(Some(text)) = kv_get(conn, "auth_kv", reg_key) else {
            continue;
        };
        let Ok(reg) = parse_object(&text) else {
            log::warn!("{}: row {reg_key} is not a JSON object", path.display());
            continue;
        };
        if d.client_id.is_none() {
            d.client_id = str_field(&reg, &["client_id"]);
        }
        d.client_secret = str_field(&reg, &["client_secret"]);
        if d.region.is_none() {
            d.region = str_field(&reg, &["region"]);
        }
        return;
    }
}

/// Write refreshed tokens back into a JSON credentials file, atomically.
///
/// The file is re-read first so keys another client added meanwhile survive; only `accessToken`,
/// `refreshToken` (when a new one was issued), `expiresAt` (in the style the file already used;
/// the IDE's `….000Z` when it had none) and a missing `profileArn` change. The key order, the
/// other keys, the permissions and the trailing newline stay as they were.
pub fn write_json(path: &Path, update: &TokenUpdate) -> Result<(), Error> {
    let failed = |why: String| Error::Internal(format!("writing back {}: {why}", path.display()));
    let target = fs::canonicalize(path).map_err(|e| failed(e.to_string()))?;
    let text = fs::read_to_string(&target).map_err(|e| failed(e.to_string()))?;
    let mut obj = parse_object(&text).map_err(|why| failed(format!("the file is now {why}")))?;
    let format = obj
        .get("expiresAt")
        .and_then(parse_expiry)
        .map(|(_, f)| f)
        .unwrap_or(ExpiryFormat::Iso(IsoStyle::MillisZ));
    obj.set("accessToken", Value::from(update.access_token));
    if let Some(rt) = update.refresh_token.filter(|s| !s.is_empty()) {
        obj.set("refreshToken", Value::from(rt));
    }
    obj.set("expiresAt", expiry_value(update.expires_at_ms, format));
    if let Some(arn) = update.profile_arn {
        if str_field(&obj, &["profileArn"]).is_none() {
            obj.set("profileArn", Value::from(arn));
        }
    }
    let mut out = serde_json::to_string_pretty(&obj).map_err(|e| failed(e.to_string()))?;
    if text.ends_with('\n') {
        out.push('\n');
    }
    util::write_file_atomic(&target, out.as_bytes()).map_err(|e| failed(e.to_string()))
}

/// Write refreshed tokens back into the kiro-cli row they were read from.
///
/// One `BEGIN IMMEDIATE` transaction with a 5 s busy timeout: read the row as it is now, change
/// `access_token`, `refresh_token` (when a new one was issued) and `expires_at` (same style as
/// before), keep every other field, and `UPDATE` that row only. Returns `false` when the row no
/// longer exists (kiro-cli logged out); nothing is inserted then.
pub fn write_sqlite(path: &Path, key: &str, update: &TokenUpdate) -> Result<bool, Error> {
    let failed = |why: String| Error::Internal(format!("writing back {}: {why}", path.display()));
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| failed(e.to_string()))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| failed(e.to_string()))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| failed(e.to_string()))?;
    let Some(text) = kv_get(&tx, "auth_kv", key).map_err(|e| failed(e.to_string()))? else {
        return Ok(false);
    };
    let mut row = parse_object(&text).map_err(|why| failed(format!("row {key} is {why}")))?;
    let format = row
        .get("expires_at")
        .and_then(parse_expiry)
        .map(|(_, f)| f)
        .unwrap_or(ExpiryFormat::Iso(IsoStyle::MillisZ));
    row.set("access_token", Value::from(update.access_token));
    if let Some(rt) = update.refresh_token.filter(|s| !s.is_empty()) {
        row.set("refresh_token", Value::from(rt));
    }
    row.set("expires_at", expiry_value(update.expires_at_ms, format));
    let value = serde_json::to_string(&row).map_err(|e| failed(e.to_string()))?;
    tx.execute(
        "UPDATE auth_kv SET value = ?1 WHERE key = ?2",
        rusqlite::params![value, key],
    )
    .map_err(|e| failed(e.to_string()))?;
    tx.commit().map_err(|e| failed(e.to_string()))?;
    Ok(true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A unique directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "kgw-auth-{tag}-{}-{}",
                std::process::id(),
                util::random_hex(10)
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        pub(crate) fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, text).unwrap();
            p
        }
        pub(crate) fn entries(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A kiro-cli-shaped database with the given `auth_kv` and `state` rows.
    pub(crate) fn make_db(dir: &TempDir, auth: &[(&str, &str)], state: &[(&str, &str)]) -> PathBuf {
        let p = dir.0.join("data.sqlite3");
        let conn = Connection::open(&p).unwrap();
        conn.execute_batch(
            "CREATE TABLE auth_kv (key TEXT PRIMARY KEY, value TEXT);
             CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB);",
        )
        .unwrap();
        for (k, v) in auth {
            conn.execute("INSERT INTO auth_kv VALUES (?1, ?2)", [k, v])
                .unwrap();
        }
        for (k, v) in state {
            conn.execute("INSERT INTO state VALUES (?1, ?2)", [k, v])
                .unwrap();
        }
        p
    }

    pub(crate) fn db_row(path: &Path, key: &str) -> Option<String> {
        let conn = Connection::open(path).unwrap();
        kv_get(&conn, "auth_kv", key).unwrap()
    }

    const FUTURE: &str = "2099-01-01T00:00:00.000Z";

    #[test]
    fn ide_social_file_loads_every_field_and_is_social() {
        let dir = TempDir::new("ide");
        let p = dir.file(
            "kiro-auth-token.json",
            &format!(
                r#"{{"accessToken":"at","refreshToken":"rt","profileArn":"arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK","region":"us-east-1","expiresAt":"{FUTURE}","authMethod":"social","provider":"Google"}}"#
            ),
        );
        let d = load_json(&p).unwrap();
        assert_eq!(d.access_token.as_deref(), Some("at"));
        assert_eq!(d.refresh_token.as_deref(), Some("rt"));
        assert_eq!(d.region.as_deref(), Some("us-east-1"));
        assert_eq!(d.expires_at_ms, Some(4070908800000));
        assert_eq!(d.expiry_format, Some(ExpiryFormat::Iso(IsoStyle::MillisZ)));
        assert!(d.profile_arn.is_some());
        assert_eq!(detect_kind(&d, true), AuthKind::Social);
    }

    #[test]
    fn sso_cache_file_with_client_secret_is_oidc() {
        let dir = TempDir::new("sso");
        let p = dir.file(
            "abc.json",
            r#"{"startUrl":"https://view.awsapps.com/start","region":"eu-west-1","accessToken":"at","refreshToken":"rt","clientId":"cid","clientSecret":"sec","expiresAt":"2099-01-01T00:00:00Z"}"#,
        );
        let d = load_json(&p).unwrap();
        assert_eq!(d.client_id.as_deref(), Some("cid"));
        assert_eq!(d.client_secret.as_deref(), Some("sec"));
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert_eq!(detect_kind(&d, false), AuthKind::BuilderId);

        let idc = dir.file(
            "idc.json",
            r#"{"startUrl":"https://d-1234567890.awsapps.com/start/","refreshToken":"rt","clientId":"cid","clientSecret":"sec"}"#,
        );
        assert_eq!(
            detect_kind(&load_json(&idc).unwrap(), false),
            AuthKind::IdentityCenter
        );
    }

    #[test]
    fn oidc_without_start_url_uses_provider_then_profile_arn() {
        let base = LoginData {
            refresh_token: Some("rt".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            ..LoginData::default()
        };
        assert_eq!(detect_kind(&base, false), AuthKind::BuilderId);
        assert_eq!(detect_kind(&base, true), AuthKind::IdentityCenter);
        let enterprise = LoginData {
            provider: Some("Enterprise".into()),
            ..base.clone()
        };
        assert_eq!(detect_kind(&enterprise, false), AuthKind::IdentityCenter);
        let idc = LoginData {
            auth_method: Some("IdC".into()),
            ..base.clone()
        };
        assert_eq!(detect_kind(&idc, false), AuthKind::IdentityCenter);
        let builder = LoginData {
            provider: Some("BuilderId".into()),
            ..base
        };
        assert_eq!(detect_kind(&builder, true), AuthKind::BuilderId);
    }

    #[test]
    fn only_client_id_or_only_secret_stays_social() {
        let id_only = LoginData {
            client_id: Some("c".into()),
            ..LoginData::default()
        };
        let secret_only = LoginData {
            client_secret: Some("s".into()),
            ..LoginData::default()
        };
        assert_eq!(detect_kind(&id_only, false), AuthKind::Social);
        assert_eq!(detect_kind(&secret_only, false), AuthKind::Social);
    }

    #[test]
    fn external_idp_auth_method_in_json_is_external_idp() {
        let dir = TempDir::new("ext");
        for method in ["external_idp", "ExternalIdp"] {
            let p = dir.file(
                "t.json",
                &format!(
                    r#"{{"authMethod":"{method}","refreshToken":"rt","clientId":"c","tokenEndpoint":"https://login.example/token"}}"#
                ),
            );
            let d = load_json(&p).unwrap();
            assert_eq!(detect_kind(&d, false), AuthKind::ExternalIdp);
            assert_eq!(
                d.token_endpoint.as_deref(),
                Some("https://login.example/token")
            );
        }
    }

    #[test]
    fn client_id_hash_loads_registration_beside_the_file() {
        let dir = TempDir::new("hash");
        dir.file(
            "deadbeef.json",
            r#"{"clientId":"reg-id","clientSecret":"reg-secret","region":"ap-south-1"}"#,
        );
        let p = dir.file(
            "kiro-auth-token.json",
            r#"{"refreshToken":"rt","clientIdHash":"deadbeef","region":"us-east-1","authMethod":"IdC"}"#,
        );
        let d = load_json(&p).unwrap();
        assert_eq!(d.client_id.as_deref(), Some("reg-id"));
        assert_eq!(d.client_secret.as_deref(), Some("reg-secret"));
        assert_eq!(
            d.region.as_deref(),
            Some("us-east-1"),
            "registration region is ignored"
        );
        assert_eq!(detect_kind(&d, false), AuthKind::IdentityCenter);

        let missing = dir.file(
            "other.json",
            r#"{"refreshToken":"rt","clientIdHash":"nothere"}"#,
        );
        let d = load_json(&missing).unwrap();
        assert_eq!(detect_kind(&d, false), AuthKind::Social);

        let escape = dir.file(
            "escape.json",
            r#"{"refreshToken":"rt","clientIdHash":"../deadbeef"}"#,
        );
        assert!(load_json(&escape).unwrap().client_id.is_none());
    }

    #[test]
    fn missing_or_malformed_json_names_the_file() {
        let dir = TempDir::new("bad");
        let missing = dir.0.join("nope.json");
        let e = load_json(&missing).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
        assert!(e.to_string().contains("nope.json"), "{e}");
        let bad = dir.file("bad.json", "{not json");
        let e = load_json(&bad).unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
        let arr = dir.file("arr.json", "[1,2]");
        assert!(load_json(&arr)
            .unwrap_err()
            .to_string()
            .contains("arr.json"));
    }

    #[test]
    fn sqlite_key_priority_social_then_odic_then_legacy() {
        let dir = TempDir::new("prio");
        let row = |t: &str| {
            format!(
                r#"{{"access_token":"{t}","refresh_token":"r-{t}","expires_at":"2099-01-01T00:00:00Z"}}"#
            )
        };
        let p = make_db(
            &dir,
            &[
                ("codewhisperer:odic:token", &row("legacy")),
                ("kirocli:odic:token", &row("odic")),
                ("kirocli:social:token", &row("social")),
            ],
            &[],
        );
        let d = load_sqlite(&p).unwrap();
        assert_eq!(d.access_token.as_deref(), Some("social"));
        assert_eq!(d.db_key.as_deref(), Some("kirocli:social:token"));
        assert_eq!(detect_kind(&d, false), AuthKind::Social);

        let dir2 = TempDir::new("prio2");
        let p = make_db(
            &dir2,
            &[
                ("codewhisperer:odic:token", &row("legacy")),
                ("kirocli:odic:token", &row("odic")),
            ],
            &[],
        );
        assert_eq!(
            load_sqlite(&p).unwrap().access_token.as_deref(),
            Some("odic")
        );
    }

    #[test]
    fn sqlite_odic_with_registration_is_oidc_and_region_is_sso_only() {
        let dir = TempDir::new("odic");
        let p = make_db(
            &dir,
            &[
                (
                    "kirocli:odic:token",
                    r#"{"access_token":"a","refresh_token":"r","expires_at":"2099-01-01T00:00:00Z","region":"eu-west-1","start_url":"https://view.awsapps.com/start","scopes":["codewhisperer:completions"]}"#,
                ),
                (
                    "kirocli:odic:device-registration",
                    r#"{"client_id":"cid","client_secret":"sec","region":"us-west-2"}"#,
                ),
            ],
            &[],
        );
        let d = load_sqlite(&p).unwrap();
        assert_eq!(d.client_id.as_deref(), Some("cid"));
        assert_eq!(d.client_secret.as_deref(), Some("sec"));
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert_eq!(detect_kind(&d, false), AuthKind::BuilderId);
    }

    #[test]
    fn sqlite_odic_takes_start_url_and_profile_from_state_table() {
        let dir = TempDir::new("state");
        let p = make_db(
            &dir,
            &[
                (
                    "kirocli:odic:token",
                    r#"{"access_token":"a","refresh_token":"r"}"#,
                ),
                (
                    "kirocli:odic:device-registration",
                    r#"{"client_id":"cid","client_secret":"sec","region":"eu-central-1"}"#,
                ),
            ],
            &[
                (
                    PROFILE_STATE_KEY,
                    r#"{"arn":"arn:aws:codewhisperer:eu-central-1:123456789012:profile/ABC","profileName":"x"}"#,
                ),
                (START_URL_STATE_KEY, r#""https://d-1234.awsapps.com/start""#),
            ],
        );
        let d = load_sqlite(&p).unwrap();
        assert_eq!(d.region.as_deref(), Some("eu-central-1"));
        assert_eq!(
            d.profile_arn.as_deref(),
            Some("arn:aws:codewhisperer:eu-central-1:123456789012:profile/ABC")
        );
        assert_eq!(detect_kind(&d, false), AuthKind::IdentityCenter);
    }

    #[test]
    fn sqlite_odic_without_registration_loads_and_is_social() {
        let dir = TempDir::new("noreg");
        let p = make_db(
            &dir,
            &[(
                "kirocli:odic:token",
                r#"{"access_token":"a","refresh_token":"r"}"#,
            )],
            &[],
        );
        let d = load_sqlite(&p).unwrap();
        assert_eq!(d.refresh_token.as_deref(), Some("r"));
        assert_eq!(detect_kind(&d, false), AuthKind::Social);
    }

    #[test]
    fn sqlite_external_idp_row_is_external_idp() {
        let dir = TempDir::new("extdb");
        let p = make_db(
            &dir,
            &[(
                EXTERNAL_IDP_KEY,
                r#"{"access_token":"a","refresh_token":"r","issuer_url":"https://login.example/t/v2.0","token_endpoint":"https://login.example/t/oauth2/v2.0/token","client_id":"pub","expires_at":"2099-01-01T00:00:00.123456Z"}"#,
            )],
            &[],
        );
        let d = load_sqlite(&p).unwrap();
        assert_eq!(detect_kind(&d, false), AuthKind::ExternalIdp);
        assert_eq!(d.client_id.as_deref(), Some("pub"));
        assert_eq!(
            d.token_endpoint.as_deref(),
            Some("https://login.example/t/oauth2/v2.0/token")
        );
    }

    #[test]
    fn sqlite_invalid_rows_are_skipped_and_no_login_names_the_file() {
        let dir = TempDir::new("inv");
        let p = make_db(
            &dir,
            &[
                ("kirocli:social:token", "{broken"),
                ("kirocli:odic:token", r#"{"access_token":"a"}"#),
            ],
            &[],
        );
        assert_eq!(load_sqlite(&p).unwrap().access_token.as_deref(), Some("a"));

        let dir2 = TempDir::new("inv2");
        let p = make_db(&dir2, &[("kirocli:social:token", "{broken")], &[]);
        let e = load_sqlite(&p).unwrap_err();
        assert!(e.to_string().contains("data.sqlite3"), "{e}");

        let e = load_sqlite(&dir2.0.join("missing.sqlite3")).unwrap_err();
        assert!(e.to_string().contains("missing.sqlite3"), "{e}");
        let not_db = dir2.file(
            "junk.sqlite3",
            "this is not a database at all, not even close",
        );
        let e = load_sqlite(&not_db).unwrap_err();
        assert!(e.to_string().contains("junk.sqlite3"), "{e}");
    }

    fn update<'a>(at: &'a str, rt: Option<&'a str>) -> TokenUpdate<'a> {
        TokenUpdate {
            access_token: at,
            refresh_token: rt,
            expires_at_ms: 1_767_268_800_000, // 2026-01-01T12:00:00Z
            profile_arn: None,
        }
    }

    #[test]
    fn json_write_back_keeps_unknown_keys_order_style_and_permissions() {
        let dir = TempDir::new("wb");
        let p = dir.file(
            "kiro-auth-token.json",
            "{\"zeta\":1,\"accessToken\":\"old\",\"refreshToken\":\"rt\",\"expiresAt\":\"2025-01-01T00:00:00Z\",\"nested\":{\"k\":[1,2]},\"alpha\":\"x\"}\n",
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        }
        write_json(&p, &update("new", Some(""))).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        let expected = "{\n  \"zeta\": 1,\n  \"accessToken\": \"new\",\n  \"refreshToken\": \"rt\",\n  \"expiresAt\": \"2026-01-01T12:00:00Z\",\n  \"nested\": {\n    \"k\": [\n      1,\n      2\n    ]\n  },\n  \"alpha\": \"x\"\n}\n";
        assert_eq!(text, expected);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        assert_eq!(dir.entries(), vec!["kiro-auth-token.json".to_string()]);
    }

    #[test]
    fn json_write_back_rotates_refresh_token_and_defaults_to_ide_style() {
        let dir = TempDir::new("wb2");
        let p = dir.file("t.json", r#"{"refreshToken":"old"}"#);
        let mut u = update("a2", Some("r2"));
        u.profile_arn = Some("arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK");
        write_json(&p, &u).unwrap();
        let v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["refreshToken"], "r2");
        assert_eq!(v["expiresAt"], "2026-01-01T12:00:00.000Z");
        assert_eq!(
            v["profileArn"],
            "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"
        );
        // An existing profileArn is the file's own and is not overwritten.
        let q = dir.file("u.json", r#"{"refreshToken":"old","profileArn":"mine"}"#);
        write_json(&q, &u).unwrap();
        let v: Value = serde_json::from_str(&fs::read_to_string(&q).unwrap()).unwrap();
        assert_eq!(v["profileArn"], "mine");
    }

    #[test]
    fn json_write_back_refuses_a_file_that_became_malformed() {
        let dir = TempDir::new("wb3");
        let p = dir.file("t.json", "{\"refreshToken\":");
        assert!(write_json(&p, &update("a", None)).is_err());
        assert_eq!(fs::read_to_string(&p).unwrap(), "{\"refreshToken\":");
        assert_eq!(dir.entries(), vec!["t.json".to_string()]);
    }

    #[test]
    fn sqlite_write_back_keeps_unknown_fields_and_other_rows() {
        let dir = TempDir::new("dbwb");
        let social = r#"{"access_token":"old","refresh_token":"rt","expires_at":"2025-01-01T00:00:00+00:00","provider":"google","profile_arn":"arn:x","future_field":{"a":1}}"#;
        let other = r#"{"client_id":"c","client_secret":"s"}"#;
        let p = make_db(
            &dir,
            &[
                ("kirocli:social:token", social),
                ("kirocli:odic:device-registration", other),
            ],
            &[],
        );
        assert!(write_sqlite(&p, "kirocli:social:token", &update("new", Some("rt2"))).unwrap());
        let row: Value =
            serde_json::from_str(&db_row(&p, "kirocli:social:token").unwrap()).unwrap();
        assert_eq!(row["access_token"], "new");
        assert_eq!(row["refresh_token"], "rt2");
        assert_eq!(row["expires_at"], "2026-01-01T12:00:00+00:00");
        assert_eq!(row["provider"], "google");
        assert_eq!(row["profile_arn"], "arn:x");
        assert_eq!(row["future_field"]["a"], 1);
        assert_eq!(
            db_row(&p, "kirocli:odic:device-registration").as_deref(),
            Some(other)
        );
        // A row that vanished is not recreated.
        assert!(!write_sqlite(&p, "kirocli:odic:token", &update("x", None)).unwrap());
        assert!(db_row(&p, "kirocli:odic:token").is_none());
    }

    #[test]
    fn numeric_expiry_keeps_its_unit() {
        let (ms, f) = parse_expiry(&Value::from(1_767_268_800u64)).unwrap();
        assert_eq!((ms, f), (1_767_268_800_000, ExpiryFormat::UnixSeconds));
        assert_eq!(expiry_value(ms, f), Value::from(1_767_268_800i64));
        let (ms, f) = parse_expiry(&Value::from(1_767_268_800_000u64)).unwrap();
        assert_eq!(f, ExpiryFormat::UnixMillis);
        assert_eq!(expiry_value(ms, f), Value::from(1_767_268_800_000i64));
    }

    #[test]
    fn login_data_debug_hides_tokens() {
        let d = LoginData {
            access_token: Some("SECRET-A".into()),
            refresh_token: Some("SECRET-R".into()),
            client_secret: Some("SECRET-S".into()),
            ..LoginData::default()
        };
        let s = format!("{d:?}");
        assert!(!s.contains("SECRET"), "{s}");
    }
}
