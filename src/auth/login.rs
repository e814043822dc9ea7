//! What a login is (its source and per-login overrides), how it is read at start-up, and the
//! stable machine id each login presents. Loading refuses what cannot work (no token, a key that
//! is not a Kiro key, a placeholder profile ARN) with a message naming the variable or account.

use std::fmt;
use std::path::PathBuf;

use super::sources::{self, LoginData};
use super::{hash, AuthKind};
use crate::config::{check_profile_arn, AuthSettings};
use crate::error::Error;

/// Where a login's tokens come from.
#[derive(Clone, PartialEq)]
pub enum LoginSource {
    /// A bare refresh token (social login); refreshed tokens live in memory only.
    RefreshToken(String),
    /// A Kiro IDE or AWS SSO cache JSON file; refreshed tokens are written back to it.
    CredsFile(PathBuf),
    /// A kiro-cli SQLite database; refreshed tokens are written back unless `SQLITE_READONLY`.
    CliDb(PathBuf),
    /// A Kiro API key (`ksk_…`).
    ApiKey(String),
}

impl LoginSource {
    /// Stable name of the source kind for `/health`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            LoginSource::RefreshToken(_) => "env",
            LoginSource::CredsFile(_) => "creds_file",
            LoginSource::CliDb(_) => "kiro_cli_db",
            LoginSource::ApiKey(_) => "api_key",
        }
    }
}

impl fmt::Debug for LoginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginSource::RefreshToken(_) => f.write_str("RefreshToken(<redacted>)"),
            LoginSource::CredsFile(p) => f.debug_tuple("CredsFile").field(p).finish(),
            LoginSource::CliDb(p) => f.debug_tuple("CliDb").field(p).finish(),
            LoginSource::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// One login: where its tokens are and the per-login settings that override the global ones.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginSpec {
    /// Name for logs and `/health` ("default" for the single-account variables).
    pub name: String,
    pub source: LoginSource,
    /// Explicit profile ARN: wins over every discovered one (never sent for API keys).
    pub profile_arn: Option<String>,
    /// The login's region; overrides `KIRO_REGION` (auth endpoints, inference-region mapping).
    pub region: Option<String>,
    /// Proxy for this login's calls; overrides `VPN_PROXY_URL` (`"direct"` disables it).
    pub proxy: Option<String>,
    /// Machine id override (64 hex; 32 hex or a UUID is doubled; anything else is hashed).
    pub machine_id: Option<String>,
}

impl LoginSpec {
    /// The login the single-account variables describe: `KIRO_API_KEY`, else `KIRO_CLI_DB_FILE`,
    /// else `KIRO_CREDS_FILE`, else `REFRESH_TOKEN`.
    pub fn single(config: &AuthSettings) -> Result<LoginSpec, Error> {
        let source = if let Some(key) = &config.api_key {
            LoginSource::ApiKey(key.clone())
        } else if let Some(p) = &config.cli_db_file {
            LoginSource::CliDb(p.clone())
        } else if let Some(p) = &config.creds_file {
            LoginSource::CredsFile(p.clone())
        } else if let Some(t) = &config.refresh_token {
            LoginSource::RefreshToken(t.clone())
        } else {
            return Err(Error::Config(
                "no Kiro credentials: set REFRESH_TOKEN, KIRO_CREDS_FILE, KIRO_CLI_DB_FILE or KIRO_API_KEY"
                    .into(),
            ));
        };
        Ok(LoginSpec {
            name: "default".into(),
            source,
            profile_arn: config.profile_arn.clone(),
            region: None,
            proxy: None,
            machine_id: None,
        })
    }
}

/// A 64-hex machine id from an override: 64 hex as is, 32 hex (or a UUID) doubled, else hashed.
pub fn normalise_machine_id(given: &str) -> String {
    let hexish: String = given
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    let all_hex = !hexish.is_empty() && hexish.chars().all(|c| c.is_ascii_hexdigit());
    match hexish.len() {
        64 if all_hex => hexish,
        32 if all_hex => format!("{hexish}{hexish}"),
        _ => hash(given),
    }
}

/// The machine id of a login: its override, else SHA-256 of a stable identity of the login (the
/// API key, the configured refresh token, or the file's canonical path plus its client id), so it
/// survives restarts and token rotation and differs between logins.
pub(super) fn machine_id_for(spec: &LoginSpec, data: &LoginData) -> String {
    if let Some(m) = spec.machine_id.as_deref().filter(|m| !m.trim().is_empty()) {
        return normalise_machine_id(m);
    }
    match &spec.source {
        LoginSource::ApiKey(k) => hash(&format!("KiroAPIKey/{k}")),
        LoginSource::RefreshToken(t) => hash(&format!("KotlinNativeAPI/{t}")),
        LoginSource::CredsFile(p) | LoginSource::CliDb(p) => {
            let canonical = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
            let mut identity = format!("kiro-gateway-login:{}", canonical.display());
            if let Some(id) = &data.client_id {
                identity.push(':');
                identity.push_str(id);
            }
            hash(&identity)
        }
    }
}

pub(super) fn describe_source(spec: &LoginSpec, single: bool) -> String {
    let name = &spec.name;
    match (&spec.source, single) {
        (LoginSource::ApiKey(_), true) => "KIRO_API_KEY".into(),
        (LoginSource::RefreshToken(_), true) => "REFRESH_TOKEN".into(),
        (LoginSource::CredsFile(p), true) => format!("KIRO_CREDS_FILE {}", p.display()),
        (LoginSource::CliDb(p), true) => format!("KIRO_CLI_DB_FILE {}", p.display()),
        (LoginSource::ApiKey(_), false) => format!("account '{name}' (API key)"),
        (LoginSource::RefreshToken(_), false) => format!("account '{name}' (refresh token)"),
        (LoginSource::CredsFile(p), false) => {
            format!("account '{name}' (credentials file {})", p.display())
        }
        (LoginSource::CliDb(p), false) => {
            format!("account '{name}' (kiro-cli database {})", p.display())
        }
    }
}

/// A login as read from its source, checked, with its kind detected.
pub(super) struct Loaded {
    pub label: String,
    pub data: LoginData,
    pub kind: AuthKind,
    pub explicit_arn: Option<String>,
    pub machine_id: String,
}

/// Read `spec`'s source and check it. `single` marks the single-account variables, whose errors
/// name the variable (accounts' errors name the account), and whose file may take its refresh
/// token from `REFRESH_TOKEN`.
pub(super) fn load(
    spec: &LoginSpec,
    settings: &AuthSettings,
    single: bool,
) -> Result<Loaded, Error> {
    let label = describe_source(spec, single);
    let mut data = read_source(spec, single, &label)?;
    if single && data.refresh_token.is_none() {
        data.refresh_token = settings.refresh_token.clone();
    }
    if !data.has_token() {
        return Err(Error::Config(format!(
            "{label} holds no refresh token or access token; log in again (Kiro IDE or 'kiro-cli login')"
        )));
    }
    let kind = match spec.source {
        LoginSource::ApiKey(_) => AuthKind::ApiKey,
        _ => sources::detect_kind(
            &data,
            spec.profile_arn.is_some() || data.profile_arn.is_some(),
        ),
    };
    let explicit_arn = explicit_arn(spec, kind, single, settings)?;
    Ok(Loaded {
        machine_id: machine_id_for(spec, &data),
        label,
        data,
        kind,
        explicit_arn,
    })
}

fn read_source(spec: &LoginSpec, single: bool, label: &str) -> Result<LoginData, Error> {
    let in_context = |e: Error| match e {
        Error::Config(m) if single => {
            let var = match spec.source {
                LoginSource::CliDb(_) => "KIRO_CLI_DB_FILE",
                _ => "KIRO_CREDS_FILE",
            };
            Error::Config(format!("{var} {m}"))
        }
        Error::Config(m) => Error::Config(format!("account '{}': {m}", spec.name)),
        other => other,
    };
    Ok(match &spec.source {
        LoginSource::ApiKey(key) => {
            if !key.starts_with("ksk_") {
                return Err(Error::Config(format!(
                    "{label} is not valid: Kiro API keys start with 'ksk_'"
                )));
            }
            LoginData {
                access_token: Some(key.clone()),
                ..LoginData::default()
            }
        }
        LoginSource::RefreshToken(t) => LoginData {
            refresh_token: Some(t.trim().to_string()).filter(|t| !t.is_empty()),
            ..LoginData::default()
        },
        LoginSource::CredsFile(p) => sources::load_json(p).map_err(in_context)?,
        LoginSource::CliDb(p) => sources::load_sqlite(p).map_err(in_context)?,
    })
}

/// The configured profile ARN that wins over every discovered one, checked (API keys send none).
fn explicit_arn(
    spec: &LoginSpec,
    kind: AuthKind,
    single: bool,
    settings: &AuthSettings,
) -> Result<Option<String>, Error> {
    let explicit = match (&spec.profile_arn, kind) {
        (_, AuthKind::ApiKey) | (None, _) => None,
        (Some(arn), _) => {
            let what = if single {
                "PROFILE_ARN".to_string()
            } else {
                format!("profile_arn of account '{}'", spec.name)
            };
            check_profile_arn(arn, &what)?;
            Some(arn.clone())
        }
    };
    if kind == AuthKind::BuilderId && explicit.is_none() {
        if let Some(arn) = &settings.builder_id_profile_arn {
            check_profile_arn(arn, "KIRO_BUILDER_ID_PROFILE_ARN")?;
        }
    }
    Ok(explicit)
}
