//! Configuration: the `.env` parser, the merge of `.env` < process environment < command-line flags,
//! and validation with messages that name the offending variable.
//!
//! Nothing here does I/O beyond reading the `.env` file; credentials files are read by `auth`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// The key the original project's README used as an example. Treated like no key at all when
/// deciding whether the gateway may listen on a non-loopback address.
pub const EXAMPLE_PROXY_KEY: &str = "my-super-secret-password-123";

/// Oldest Kiro IDE version Kiro still accepts (cut-off of 2026-11-09).
pub const MIN_IDE_VERSION: &str = "0.11.133";
/// Oldest Kiro CLI version Kiro still accepts (cut-off of 2026-11-09).
pub const MIN_CLI_VERSION: &str = "1.28.2";

/// Which real Kiro client the gateway presents itself as (`docs/kiro-wire.md#identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientProfile {
    /// Kiro IDE 1.0.x: `POST runtime.{r}.kiro.dev/` with AWS JSON 1.0 (the default).
    IdeRuntime,
    /// The February 2026 IDE shape: JSON to `q.{r}.amazonaws.com/generateAssistantResponse`.
    IdeLegacy,
    /// kiro-cli (Rust SDK) shape on the runtime host.
    Cli,
}

/// What happens to reasoning parsed out of `<thinking>` tags (`docs/kiro-wire.md#prompt-tag-reasoning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingHandling {
    AsReasoningContent,
    Remove,
    Pass,
    StripTags,
}

/// Per-request debug capture (`DEBUG_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugMode {
    Off,
    Errors,
    All,
}

/// Trimming of history that does not fit Kiro's body budget (`HISTORY_TRIM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryTrim {
    Off,
    Oldest,
}

/// How the accounts of `KIRO_ACCOUNTS_FILE` are chosen (`ACCOUNT_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStrategy {
    Priority,
    RoundRobin,
}

/// The whole configuration, passed by reference to everything that needs it (no globals).
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub proxy_api_key: Option<String>,
    /// Named client keys, with models and credit budgets (`PROXY_API_KEYS_FILE`).
    pub keys_file: Option<PathBuf>,
    /// The key of `/metrics` and the status page (`METRICS_KEY`; else `PROXY_API_KEY`).
    pub metrics_key: Option<String>,
    /// Access log lines as text or one JSON object each (`LOG_FORMAT`).
    pub log_format: crate::access_log::LogFormat,
    pub workers: usize,
    pub queue_size: usize,
    pub log_level: log::LevelFilter,
    pub debug_mode: DebugMode,
    pub debug_dir: PathBuf,

    // Credentials (single account).
    pub refresh_token: Option<String>,
    pub profile_arn: Option<String>,
    pub kiro_region: String,
    pub kiro_api_region: Option<String>,
    pub creds_file: Option<PathBuf>,
    pub cli_db_file: Option<PathBuf>,
    pub api_key: Option<String>,
    pub sqlite_readonly: bool,
    pub builder_id_profile_arn: Option<String>,
    pub accounts_file: Option<PathBuf>,
    pub account_strategy: AccountStrategy,
    /// How long a spent quota cools an account (`ACCOUNT_QUOTA_COOLDOWN`); None: until the reset.
    pub account_quota_cooldown: Option<Duration>,
    /// Keep cooldowns across restarts in `<accounts file>.state.json` (`ACCOUNTS_STATE`).
    pub accounts_state: bool,
    pub token_refresh_threshold: Duration,

    // Upstream.
    pub client_profile: ClientProfile,
    /// The IDE version sent (`KIRO_IDE_VERSION`: auto, off or pinned); shared, discovery updates it.
    pub ide_version: crate::kiro::discovery::IdeVersion,
    /// The IDE's update manifest read by version discovery (`KIRO_UPDATE_URL`).
    pub update_url: String,
    /// Where the gateway keeps what it learns between runs (`STATE_DIR`).
    pub state_dir: PathBuf,
    pub cli_version: String,
    pub kas_version: String,
    pub os_tag: String,
    pub node_version: String,
    pub api_url: Option<String>,
    pub management_url: Option<String>,
    pub desktop_auth_url: Option<String>,
    pub sso_oidc_url: Option<String>,
    pub endpoint_fallback: bool,
    pub vpn_proxy_url: Option<String>,
    pub max_retries: u32,
    pub base_retry_delay: Duration,
    pub connect_timeout: Duration,
    /// A pooled upstream connection idle longer than this is not reused (`UPSTREAM_IDLE_SECS`).
    pub upstream_idle: Duration,
    pub first_token_timeout: Duration,
    pub streaming_read_timeout: Duration,
    pub client_read_timeout: Duration,

    // Request shaping.
    pub max_request_body_bytes: usize,
    pub kiro_max_body_bytes: usize,
    pub max_image_bytes: usize,
    pub history_trim: HistoryTrim,
    pub tool_description_max_length: usize,
    pub fake_reasoning: bool,
    pub fake_reasoning_max_tokens: u32,
    pub fake_reasoning_handling: ThinkingHandling,
    pub truncation_recovery: bool,
    pub responses_store_size: usize,
    pub responses_store_ttl: Duration,
    /// `WEB_SEARCH=kiro` (default): hosted web search tools are served through Kiro's search;
    /// `off`: they are ignored like any hosted tool the gateway cannot run.
    pub web_search: bool,
    /// `WEB_SEARCH_TIMEOUT`: how long one search may take.
    pub web_search_timeout: Duration,
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Start the gateway with this configuration.
    Serve(Box<Config>),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// Usage text for `--help`.
pub const HELP: &str = "kiro-gateway: OpenAI and Anthropic compatible gateway to the Kiro API

Usage: kiro-gateway [--host H] [--port P] [--env-file PATH] [--version] [--help]

Options:
  -H, --host H         address to listen on (default 0.0.0.0, or SERVER_HOST)
  -p, --port P         port to listen on (default 8000, or SERVER_PORT)
      --env-file PATH  read settings from PATH instead of ./.env
  -v, --version        print the version and exit
  -h, --help           print this help and exit

Every setting is an environment variable (see README.md): PROXY_API_KEY, REFRESH_TOKEN,
KIRO_CREDS_FILE, KIRO_CLI_DB_FILE, KIRO_API_KEY, KIRO_ACCOUNTS_FILE, ...";

impl Config {
    /// A configuration with every default and no credentials; the base for tests.
    pub fn defaults() -> Config {
        Config {
            host: "0.0.0.0".into(),
            port: 8000,
            proxy_api_key: None,
            keys_file: None,
            metrics_key: None,
            log_format: crate::access_log::LogFormat::Text,
            workers: 16,
            queue_size: 64,
            log_level: log::LevelFilter::Info,
            debug_mode: DebugMode::Off,
            debug_dir: PathBuf::from("debug_logs"),
            refresh_token: None,
            profile_arn: None,
            kiro_region: "us-east-1".into(),
            kiro_api_region: None,
            creds_file: None,
            cli_db_file: None,
            api_key: None,
            sqlite_readonly: false,
            builder_id_profile_arn: None,
            accounts_file: None,
            account_strategy: AccountStrategy::Priority,
            account_quota_cooldown: None,
            accounts_state: false,
            token_refresh_threshold: Duration::from_secs(600),
            client_profile: ClientProfile::IdeRuntime,
            ide_version: crate::kiro::discovery::IdeVersion::default(),
            update_url: crate::kiro::discovery::DEFAULT_UPDATE_URL.into(),
            state_dir: PathBuf::from("state"),
            cli_version: "2.21.1".into(),
            kas_version: "0.66.7".into(),
            os_tag: "linux#6.8.0".into(),
            node_version: "24.18.0".into(),
            api_url: None,
            management_url: None,
            desktop_auth_url: None,
            sso_oidc_url: None,
            endpoint_fallback: true,
            vpn_proxy_url: None,
            max_retries: 3,
            base_retry_delay: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(30),
            upstream_idle: Duration::from_secs(60),
            first_token_timeout: Duration::from_secs(15),
            streaming_read_timeout: Duration::from_secs(300),
            client_read_timeout: Duration::from_secs(30),
            max_request_body_bytes: 10 * 1024 * 1024,
            kiro_max_body_bytes: 1_200_000,
            max_image_bytes: 5 * 1024 * 1024,
            history_trim: HistoryTrim::Off,
            tool_description_max_length: 10_000,
            fake_reasoning: true,
            fake_reasoning_max_tokens: 4000,
            fake_reasoning_handling: ThinkingHandling::AsReasoningContent,
            truncation_recovery: true,
            responses_store_size: 1000,
            responses_store_ttl: Duration::from_secs(3600),
            web_search: true,
            web_search_timeout: Duration::from_secs(20),
        }
    }

    /// The inference region: the profile ARN's region when known, else `KIRO_API_REGION`, else the
    /// login region mapped onto the two Kiro regions (`eu-*` → eu-central-1, else us-east-1).
    pub fn api_region(&self, profile_arn: Option<&str>) -> String {
        if let Some(region) = profile_arn.and_then(arn_region) {
            return region.to_string();
        }
        if let Some(r) = &self.kiro_api_region {
            return r.clone();
        }
        map_to_kiro_region(&self.kiro_region).to_string()
    }

    /// `KIRO_MANAGEMENT_URL`, else `https://management.{region}.kiro.dev` (no trailing slash):
    /// models and profiles.
    pub fn management_base(&self, region: &str) -> String {
        self.management_url
            .clone()
            .unwrap_or_else(|| format!("https://management.{region}.kiro.dev"))
            .trim_end_matches('/')
            .to_string()
    }

    /// Whether the listen address is loopback only.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

/// The region field of a profile ARN (`arn:aws:codewhisperer:REGION:ACCOUNT:profile/ID`).
pub fn arn_region(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(_), Some(_), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!region.is_empty()).then_some(region)
}

/// Map any AWS region onto one of Kiro's two inference regions.
pub fn map_to_kiro_region(region: &str) -> &'static str {
    if region.starts_with("eu-") {
        "eu-central-1"
    } else {
        "us-east-1"
    }
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h == "::1"
        || h.parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Parse the text of a `.env` file: `KEY=value` lines, optional `export `, `#` comments, single
/// or double quotes (double quotes understand `\n`, `\t`, `\"` and `\\`).
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        out.push((key.to_string(), parse_dotenv_value(value.trim())));
    }
    out
}

fn parse_dotenv_value(v: &str) -> String {
    if let Some(rest) = v.strip_prefix('"') {
        let mut s = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return s,
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some(o) => s.push(o),
                    None => s.push('\\'),
                },
                o => s.push(o),
            }
        }
        s
    } else if let Some(rest) = v.strip_prefix('\'') {
        rest.split('\'').next().unwrap_or("").to_string()
    } else {
        // An unquoted value ends at " #" (an inline comment).
        let end = v.find(" #").unwrap_or(v.len());
        v[..end].trim().to_string()
    }
}

/// Expand a leading `~` to the home directory.
pub fn expand_home(path: &str) -> PathBuf {
    if path == "~" || path.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            let mut p = PathBuf::from(home);
            if path.len() > 2 {
                p.push(&path[2..]);
            }
            return p;
        }
    }
    PathBuf::from(path)
}

/// Compare dotted version strings numerically (`1.0.437` > `0.11.133`).
pub fn version_at_least(version: &str, minimum: &str) -> bool {
    let parse = |s: &str| -> Option<Vec<u64>> {
        s.split('.')
            .map(|p| p.trim().parse::<u64>().ok())
            .collect::<Option<Vec<_>>>()
    };
    match (parse(version), parse(minimum)) {
        (Some(v), Some(m)) => {
            for i in 0..v.len().max(m.len()) {
                let a = v.get(i).copied().unwrap_or(0);
                let b = m.get(i).copied().unwrap_or(0);
                if a != b {
                    return a > b;
                }
            }
            true
        }
        _ => false,
    }
}

/// The merged variables, with typed getters whose errors name the variable.
struct Vars(HashMap<String, String>);

impl Vars {
    fn get(&self, key: &str) -> Option<String> {
        self.0
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, what: &str) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| Error::Config(format!("{key}={v} is not valid: expected {what}"))),
        }
    }

    fn seconds(&self, key: &str) -> Result<Option<Duration>, Error> {
        match self.parse::<f64>(key, "a number of seconds")? {
            Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
            Some(_) => Err(Error::Config(format!(
                "{key} is not valid: expected a non-negative number of seconds"
            ))),
            None => Ok(None),
        }
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, Error> {
        match self.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(None),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" | "enabled" => Ok(Some(true)),
                "0" | "false" | "no" | "off" | "disabled" => Ok(Some(false)),
                _ => Err(Error::Config(format!(
                    "{key}={v} is not valid: expected true or false"
                ))),
            },
        }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.get(key).map(|v| expand_home(&v))
    }

    fn url(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
                Ok(Some(v.trim_end_matches('/').to_string()))
            }
            Some(v) => Err(Error::Config(format!(
                "{key}={v} is not valid: expected an http:// or https:// URL"
            ))),
        }
    }
}

/// Parse the command line and the environment into a [`Command`].
///
/// `args` excludes the program name; `env` is the process environment (passed in so tests can
/// drive this without touching the real one).
pub fn load(args: &[String], env: &HashMap<String, String>) -> Result<Command, Error> {
    let mut host_flag = None;
    let mut port_flag = None;
    let mut env_file: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |flag: &str| -> Result<String, Error> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| Error::Config(format!("{flag} needs a value")))
        };
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--version" => return Ok(Command::Version),
            "-H" | "--host" => host_flag = Some(value("--host")?),
            "-p" | "--port" => port_flag = Some(value("--port")?),
            "--env-file" => env_file = Some(expand_home(&value("--env-file")?)),
            other => {
                return Err(Error::Config(format!(
                    "unknown argument '{other}' (see --help)"
                )))
            }
        }
    }

    let mut vars: HashMap<String, String> = HashMap::new();
    let dotenv_path = env_file.clone().unwrap_or_else(|| PathBuf::from(".env"));
    match std::fs::read_to_string(&dotenv_path) {
        Ok(text) => vars.extend(parse_dotenv(&text)),
        Err(e) if env_file.is_some() => {
            return Err(Error::Config(format!(
                "--env-file {}: {e}",
                dotenv_path.display()
            )))
        }
        Err(_) => {}
    }
    for (k, v) in env {
        vars.insert(k.clone(), v.clone());
    }
    if let Some(h) = host_flag {
        vars.insert("SERVER_HOST".into(), h);
    }
    if let Some(p) = port_flag {
        vars.insert("SERVER_PORT".into(), p);
    }
    from_vars(&Vars(vars)).map(|c| Command::Serve(Box::new(c)))
}

fn from_vars(v: &Vars) -> Result<Config, Error> {
    let d = Config::defaults();
    let client_profile = match v.get("KIRO_CLIENT_PROFILE").as_deref() {
        None | Some("ide-runtime") => ClientProfile::IdeRuntime,
        Some("ide-legacy") => ClientProfile::IdeLegacy,
        Some("cli") => ClientProfile::Cli,
        Some(o) => {
            return Err(Error::Config(format!(
                "KIRO_CLIENT_PROFILE={o} is not valid: expected ide-runtime, ide-legacy or cli"
            )))
        }
    };
    let legacy_forced = v.flag("KIRO_LEGACY_ENDPOINT")?.unwrap_or(false);
    let client_profile = if legacy_forced {
        ClientProfile::IdeLegacy
    } else {
        client_profile
    };
    let ide_version =
        crate::kiro::discovery::IdeVersion::from_setting(v.get("KIRO_IDE_VERSION").as_deref())
            .map_err(Error::Config)?;
    let cli_version = v.get("KIRO_CLI_VERSION").unwrap_or(d.cli_version);
    if !version_at_least(&cli_version, MIN_CLI_VERSION) {
        return Err(Error::Config(format!(
            "KIRO_CLI_VERSION={cli_version} is refused: Kiro stopped accepting CLI versions below {MIN_CLI_VERSION} on 2026-11-09"
        )));
    }
    let kiro_api_region = v.get("KIRO_API_REGION");
    if let Some(r) = &kiro_api_region {
        if r != "us-east-1" && r != "eu-central-1" {
            return Err(Error::Config(format!(
                "KIRO_API_REGION={r} is not valid: Kiro serves inference in us-east-1 and eu-central-1"
            )));
        }
    }
    let log_level = match v
        .get("LOG_LEVEL")
        .map(|s| s.to_ascii_uppercase())
        .as_deref()
    {
        None | Some("INFO") => log::LevelFilter::Info,
        Some("TRACE") => log::LevelFilter::Trace,
        Some("DEBUG") => log::LevelFilter::Debug,
        Some("WARNING") | Some("WARN") => log::LevelFilter::Warn,
        Some("ERROR") | Some("CRITICAL") => log::LevelFilter::Error,
        Some("OFF") => log::LevelFilter::Off,
        Some(o) => {
            return Err(Error::Config(format!(
                "LOG_LEVEL={o} is not valid: expected TRACE, DEBUG, INFO, WARNING or ERROR"
            )))
        }
    };
    let debug_mode = match v
        .get("DEBUG_MODE")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("off") => DebugMode::Off,
        Some("errors") => DebugMode::Errors,
        Some("all") => DebugMode::All,
        Some(o) => {
            return Err(Error::Config(format!(
                "DEBUG_MODE={o} is not valid: expected off, errors or all"
            )))
        }
    };
    let fake_reasoning_handling = match v.get("FAKE_REASONING_HANDLING").as_deref() {
        None | Some("as_reasoning_content") => ThinkingHandling::AsReasoningContent,
        Some("remove") => ThinkingHandling::Remove,
        Some("pass") => ThinkingHandling::Pass,
        Some("strip_tags") => ThinkingHandling::StripTags,
        Some(o) => return Err(Error::Config(format!(
            "FAKE_REASONING_HANDLING={o} is not valid: expected as_reasoning_content, remove, pass or strip_tags"
        ))),
    };
    let history_trim = match v.get("HISTORY_TRIM").as_deref() {
        None | Some("off") => HistoryTrim::Off,
        Some("oldest") => HistoryTrim::Oldest,
        Some(o) => {
            return Err(Error::Config(format!(
                "HISTORY_TRIM={o} is not valid: expected off or oldest"
            )))
        }
    };
    let web_search = match v.get("WEB_SEARCH").as_deref() {
        None | Some("kiro") => true,
        Some("off") => false,
        Some(o) => {
            return Err(Error::Config(format!(
                "WEB_SEARCH={o} is not valid: expected kiro or off"
            )))
        }
    };
    let account_strategy = match v.get("ACCOUNT_STRATEGY").as_deref() {
        None | Some("priority") => AccountStrategy::Priority,
        Some("round_robin") => AccountStrategy::RoundRobin,
        Some(o) => {
            return Err(Error::Config(format!(
                "ACCOUNT_STRATEGY={o} is not valid: expected priority or round_robin"
            )))
        }
    };
    let workers = v
        .parse::<usize>("WORKERS", "a whole number")?
        .unwrap_or(d.workers);
    if workers == 0 || workers > 1024 {
        return Err(Error::Config(format!(
            "WORKERS={workers} is not valid: expected 1 to 1024"
        )));
    }
    let api_key = v.get("KIRO_API_KEY");
    if let Some(k) = &api_key {
        if !k.starts_with("ksk_") {
            return Err(Error::Config(
                "KIRO_API_KEY is not valid: Kiro API keys start with 'ksk_'".into(),
            ));
        }
    }
    let profile_arn = v.get("PROFILE_ARN");
    if let Some(arn) = &profile_arn {
        check_profile_arn(arn, "PROFILE_ARN")?;
    }

    let c = Config {
        host: v.get("SERVER_HOST").unwrap_or(d.host),
        port: v
            .parse::<u16>("SERVER_PORT", "a port number from 0 to 65535")?
            .unwrap_or(d.port),
        proxy_api_key: v.get("PROXY_API_KEY"),
        keys_file: v.path("PROXY_API_KEYS_FILE"),
        metrics_key: v.get("METRICS_KEY"),
        log_format: match v.get("LOG_FORMAT") {
            None => crate::access_log::LogFormat::Text,
            Some(f) => crate::access_log::LogFormat::parse(&f).ok_or_else(|| {
                Error::Config(format!("LOG_FORMAT={f} is not one of: text, json"))
            })?,
        },
        workers,
        queue_size: v
            .parse::<usize>("QUEUE_SIZE", "a whole number")?
            .unwrap_or(workers * 4),
        log_level,
        debug_mode,
        debug_dir: v.path("DEBUG_DIR").unwrap_or(d.debug_dir),
        refresh_token: v.get("REFRESH_TOKEN"),
        profile_arn,
        kiro_region: v.get("KIRO_REGION").unwrap_or(d.kiro_region),
        kiro_api_region,
        creds_file: v.path("KIRO_CREDS_FILE"),
        cli_db_file: v.path("KIRO_CLI_DB_FILE"),
        api_key,
        sqlite_readonly: v.flag("SQLITE_READONLY")?.unwrap_or(false),
        builder_id_profile_arn: v.get("KIRO_BUILDER_ID_PROFILE_ARN"),
        accounts_file: v.path("KIRO_ACCOUNTS_FILE"),
        account_strategy,
        account_quota_cooldown: v.seconds("ACCOUNT_QUOTA_COOLDOWN")?,
        accounts_state: v.flag("ACCOUNTS_STATE")?.unwrap_or(false),
        token_refresh_threshold: v
            .seconds("TOKEN_REFRESH_THRESHOLD")?
            .unwrap_or(d.token_refresh_threshold),
        client_profile,
        ide_version,
        update_url: v.url("KIRO_UPDATE_URL")?.unwrap_or(d.update_url),
        state_dir: v
            .path("STATE_DIR")
            .unwrap_or_else(|| default_state_dir(v, d.state_dir)),
        cli_version,
        kas_version: v.get("KIRO_KAS_VERSION").unwrap_or(d.kas_version),
        os_tag: v.get("KIRO_OS_TAG").unwrap_or(d.os_tag),
        node_version: v.get("KIRO_NODE_VERSION").unwrap_or(d.node_version),
        api_url: v.url("KIRO_API_URL")?,
        management_url: v.url("KIRO_MANAGEMENT_URL")?,
        desktop_auth_url: v.url("KIRO_DESKTOP_AUTH_URL")?,
        sso_oidc_url: v.url("KIRO_SSO_OIDC_URL")?,
        endpoint_fallback: v.flag("KIRO_ENDPOINT_FALLBACK")?.unwrap_or(true) && !legacy_forced,
        vpn_proxy_url: v.get("VPN_PROXY_URL"),
        max_retries: v
            .parse::<u32>("MAX_RETRIES", "a whole number")?
            .unwrap_or(d.max_retries)
            .max(1),
        base_retry_delay: v.seconds("BASE_RETRY_DELAY")?.unwrap_or(d.base_retry_delay),
        connect_timeout: v.seconds("CONNECT_TIMEOUT")?.unwrap_or(d.connect_timeout),
        upstream_idle: v.seconds("UPSTREAM_IDLE_SECS")?.unwrap_or(d.upstream_idle),
        first_token_timeout: v
            .seconds("FIRST_TOKEN_TIMEOUT")?
            .unwrap_or(d.first_token_timeout),
        streaming_read_timeout: v
            .seconds("STREAMING_READ_TIMEOUT")?
            .unwrap_or(d.streaming_read_timeout),
        client_read_timeout: v
            .seconds("CLIENT_READ_TIMEOUT")?
            .unwrap_or(d.client_read_timeout),
        max_request_body_bytes: v
            .parse::<usize>("MAX_REQUEST_BODY_BYTES", "a number of bytes")?
            .unwrap_or(d.max_request_body_bytes),
        kiro_max_body_bytes: v
            .parse::<usize>("KIRO_MAX_BODY_BYTES", "a number of bytes")?
            .unwrap_or(d.kiro_max_body_bytes),
        max_image_bytes: v
            .parse::<usize>("MAX_IMAGE_BYTES", "a number of bytes")?
            .unwrap_or(d.max_image_bytes),
        history_trim,
        tool_description_max_length: v
            .parse::<usize>("TOOL_DESCRIPTION_MAX_LENGTH", "a whole number")?
            .unwrap_or(d.tool_description_max_length),
        fake_reasoning: v.flag("FAKE_REASONING")?.unwrap_or(true),
        fake_reasoning_max_tokens: v
            .parse::<u32>("FAKE_REASONING_MAX_TOKENS", "a whole number")?
            .unwrap_or(d.fake_reasoning_max_tokens),
        fake_reasoning_handling,
        truncation_recovery: v.flag("TRUNCATION_RECOVERY")?.unwrap_or(true),
        responses_store_size: v
            .parse::<usize>("RESPONSES_STORE_SIZE", "a whole number")?
            .unwrap_or(d.responses_store_size),
        responses_store_ttl: v
            .seconds("RESPONSES_STORE_TTL")?
            .unwrap_or(d.responses_store_ttl),
        web_search,
        web_search_timeout: v
            .seconds("WEB_SEARCH_TIMEOUT")?
            .unwrap_or(d.web_search_timeout),
    };
    if c.first_token_timeout >= c.streaming_read_timeout {
        log::warn!("FIRST_TOKEN_TIMEOUT is not shorter than STREAMING_READ_TIMEOUT");
    }
    check_exposure(&c)?;
    Ok(c)
}

/// `$XDG_STATE_HOME/kiro-gateway`, else `~/.local/state/kiro-gateway`, else `fallback`.
fn default_state_dir(v: &Vars, fallback: PathBuf) -> PathBuf {
    if let Some(x) = v.get("XDG_STATE_HOME") {
        return PathBuf::from(x).join("kiro-gateway");
    }
    match v.get("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/kiro-gateway"),
        None => fallback,
    }
}

/// Refuse to listen on a non-loopback address without a real key (never open by accident).
fn check_exposure(c: &Config) -> Result<(), Error> {
    let weak = match c.proxy_api_key.as_deref() {
        None if c.keys_file.is_some() => None,
        None => Some("no PROXY_API_KEY is set"),
        Some(EXAMPLE_PROXY_KEY) => Some("PROXY_API_KEY is the example key from the README"),
        Some(_) => None,
    };
    match weak {
        Some(why) if !c.is_loopback() => Err(Error::Config(format!(
            "refusing to listen on {} because {why}: set PROXY_API_KEY to a secret of your own, or listen on loopback only with --host 127.0.0.1",
            c.host
        ))),
        _ => Ok(()),
    }
}

/// Refuse placeholder or malformed profile ARNs locally, with a message saying what to set.
pub fn check_profile_arn(arn: &str, source: &str) -> Result<(), Error> {
    let parts: Vec<&str> = arn.split(':').collect();
    let well_formed = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "codewhisperer"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].starts_with("profile/")
        && parts[5].len() > "profile/".len();
    let placeholder = arn.contains("AAAACCCCXXXX")
        || arn.contains("...")
        || arn.contains(":000000000000:")
        || arn.contains('<');
    if !well_formed || placeholder {
        return Err(Error::Config(format!(
            "{source} is not a usable profile ARN (expected arn:aws:codewhisperer:<region>:<12-digit account>:profile/<id>); copy it from the Kiro IDE credentials file, or leave it unset"
        )));
    }
    Ok(())
}

/// Read a path for error messages: shown as given.
pub fn show_path(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn serve(args: &[&str], pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut e = env(pairs);
        e.entry("PROXY_API_KEY".into()).or_insert("k".into());
        match load(&args, &e)? {
            Command::Serve(c) => Ok(*c),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn dotenv_parses_quotes_comments_and_export() {
        let text = "# comment\nA=1\nexport B=\"two words\"\nC='single # kept'\nD=plain # trailing\nE=\"line\\nbreak\"\n bad line\n";
        let got = parse_dotenv(text);
        assert_eq!(
            got,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "single # kept".into()),
                ("D".into(), "plain".into()),
                ("E".into(), "line\nbreak".into()),
            ]
        );
    }

    #[test]
    fn flags_win_over_environment() {
        let c = serve(
            &["--port", "9001", "--host=127.0.0.1"],
            &[("SERVER_PORT", "7000")],
        )
        .unwrap();
        assert_eq!(c.port, 9001);
        assert_eq!(c.host, "127.0.0.1");
    }

    #[test]
    fn fractional_retry_delay_is_accepted() {
        let c = serve(&[], &[("BASE_RETRY_DELAY", "0.25")]).unwrap();
        assert_eq!(c.base_retry_delay, Duration::from_millis(250));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = serve(&[], &[("MAX_RETRIES", "many")]).unwrap_err();
        assert!(e.to_string().contains("MAX_RETRIES"), "{e}");
        let e = serve(&[], &[("KIRO_IDE_VERSION", "0.7.45")]).unwrap_err();
        assert!(e.to_string().contains("KIRO_IDE_VERSION"), "{e}");
        let e = serve(&[], &[("KIRO_CLI_VERSION", "1.28.1")]).unwrap_err();
        assert!(e.to_string().contains("KIRO_CLI_VERSION"), "{e}");
        assert!(serve(&[], &[("KIRO_CLI_VERSION", "1.28.2")]).is_ok());
    }

    #[test]
    fn no_key_refuses_public_address_but_allows_loopback() {
        let args: Vec<String> = vec![];
        let e = load(&args, &env(&[])).unwrap_err();
        assert!(e.to_string().contains("PROXY_API_KEY"), "{e}");
        let e = load(&args, &env(&[("PROXY_API_KEY", EXAMPLE_PROXY_KEY)])).unwrap_err();
        assert!(e.to_string().contains("example"), "{e}");
        let args: Vec<String> = vec!["--host".into(), "127.0.0.1".into()];
        assert!(load(&args, &env(&[])).is_ok());
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("1.0.437", "0.11.133"));
        assert!(version_at_least("0.11.133", "0.11.133"));
        assert!(!version_at_least("0.11.99", "0.11.133"));
        assert!(!version_at_least("x", "0.11.133"));
    }

    #[test]
    fn api_region_prefers_the_arn() {
        let mut c = Config::defaults();
        c.kiro_region = "eu-west-1".into();
        assert_eq!(c.api_region(None), "eu-central-1");
        assert_eq!(
            c.api_region(Some(
                "arn:aws:codewhisperer:us-east-1:123456789012:profile/X"
            )),
            "us-east-1"
        );
        c.kiro_api_region = Some("us-east-1".into());
        assert_eq!(c.api_region(None), "us-east-1");
    }

    #[test]
    fn placeholder_arns_are_refused() {
        assert!(check_profile_arn(
            "arn:aws:codewhisperer:us-east-1:638616132270:profile/AAAACCCCXXXX",
            "PROFILE_ARN"
        )
        .is_err());
        assert!(check_profile_arn("arn:aws:codewhisperer:us-east-1:...", "PROFILE_ARN").is_err());
        assert!(check_profile_arn(
            "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK",
            "PROFILE_ARN"
        )
        .is_ok());
    }
}
