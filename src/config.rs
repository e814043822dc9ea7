//! Configuration: the merge of `.env` < process environment < command-line flags into one
//! [`Config`], validation with messages that name the offending variable, and the narrow
//! [`settings`] each part of the gateway is handed.
//!
//! Nothing here does I/O beyond reading the `.env` file; credentials files are read by `auth`.

mod checks;
mod cli;
mod dotenv;
pub mod ide_version;
pub mod settings;
mod vars;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use checks::{check_exposure, is_loopback_host};
pub use checks::{check_profile_arn, version_at_least};
pub use cli::{load, Command, HELP};
pub use dotenv::parse_dotenv;
pub use settings::{
    api_region, arn_region, map_to_kiro_region, AuthSettings, NetSettings, ServerSettings,
    UpstreamSettings,
};
use vars::Vars;

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
    /// Where alerts are POSTed (`ALERT_WEBHOOK`).
    pub alert_webhook: Option<String>,
    pub workers: usize,
    pub queue_size: usize,
    /// How long a request may wait for a worker before it gets 503 (`QUEUE_TIMEOUT`).
    pub queue_timeout: Duration,
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
    pub ide_version: ide_version::IdeVersion,
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
    pub first_token_timeout: Duration,
    pub streaming_read_timeout: Duration,
    /// A pooled upstream connection idle longer than this is not reused (`UPSTREAM_IDLE_SECS`).
    pub upstream_idle: Duration,
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
    /// At most this many MiB of histories in the Responses store.
    pub responses_store_mb: usize,
    pub responses_store_ttl: Duration,
    /// `WEB_SEARCH=kiro` (default): hosted web search tools are served through Kiro's search;
    /// `off`: they are ignored like any hosted tool the gateway cannot run.
    pub web_search: bool,
    /// `WEB_SEARCH_TIMEOUT`: how long one search may take.
    pub web_search_timeout: Duration,
    /// `MODEL_ALIASES`: `requested=kiro-id,…`, parsed by `kiro::models::parse_aliases`.
    pub model_aliases: String,
    /// `MODEL_FALLBACK=family` (default): a name Kiro does not list gets the newest listed model
    /// of its family; `off`: 404.
    pub model_fallback_family: bool,
}

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
            alert_webhook: None,
            workers: 256,
            queue_size: 256,
            queue_timeout: Duration::from_secs(10),
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
            ide_version: ide_version::IdeVersion::default(),
            update_url: ide_version::DEFAULT_UPDATE_URL.into(),
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
            first_token_timeout: Duration::from_secs(15),
            streaming_read_timeout: Duration::from_secs(300),
            upstream_idle: Duration::from_secs(60),
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
            responses_store_mb: 32,
            responses_store_ttl: Duration::from_secs(3600),
            web_search: true,
            web_search_timeout: Duration::from_secs(20),
            model_aliases: String::new(),
            model_fallback_family: true,
        }
    }

    /// Whether the listen address is loopback only.
    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
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

fn from_vars(v: &Vars) -> Result<Config, Error> {
    let mut c = Config::defaults();
    read_server(v, &mut c)?;
    read_login(v, &mut c)?;
    read_accounts(v, &mut c)?;
    read_identity(v, &mut c)?;
    read_upstream(v, &mut c)?;
    read_shaping(v, &mut c)?;
    if c.first_token_timeout >= c.streaming_read_timeout {
        log::warn!("FIRST_TOKEN_TIMEOUT is not shorter than STREAMING_READ_TIMEOUT");
    }
    check_exposure(&c)?;
    Ok(c)
}

/// The listener, the workers, logging and debug capture.
fn read_server(v: &Vars, c: &mut Config) -> Result<(), Error> {
    if let Some(h) = v.get("SERVER_HOST") {
        c.host = h;
    }
    c.port = v
        .parse::<u16>("SERVER_PORT", "a port number from 0 to 65535")?
        .unwrap_or(c.port);
    c.proxy_api_key = v.get("PROXY_API_KEY");
    c.keys_file = v.path("PROXY_API_KEYS_FILE");
    c.metrics_key = v.get("METRICS_KEY");
    c.alert_webhook = v.url("ALERT_WEBHOOK")?;
    if let Some(f) = v.get("LOG_FORMAT") {
        c.log_format = crate::access_log::LogFormat::parse(&f)
            .ok_or_else(|| Error::Config(format!("LOG_FORMAT={f} is not one of: text, json")))?;
    }
    c.workers = v
        .parse::<usize>("WORKERS", "a whole number")?
        .unwrap_or(c.workers);
    if c.workers == 0 || c.workers > 1024 {
        return Err(Error::Config(format!(
            "WORKERS={} is not valid: expected 1 to 1024",
            c.workers
        )));
    }
    c.queue_size = v
        .parse::<usize>("QUEUE_SIZE", "a whole number")?
        .unwrap_or(c.workers);
    c.queue_timeout = v.seconds("QUEUE_TIMEOUT")?.unwrap_or(c.queue_timeout);
    c.log_level = v
        .choice(
            "LOG_LEVEL",
            &[
                ("TRACE", log::LevelFilter::Trace),
                ("DEBUG", log::LevelFilter::Debug),
                ("INFO", log::LevelFilter::Info),
                ("WARNING", log::LevelFilter::Warn),
                ("WARN", log::LevelFilter::Warn),
                ("ERROR", log::LevelFilter::Error),
                ("CRITICAL", log::LevelFilter::Error),
                ("OFF", log::LevelFilter::Off),
            ],
            "TRACE, DEBUG, INFO, WARNING or ERROR",
        )?
        .unwrap_or(c.log_level);
    c.debug_mode = v
        .choice(
            "DEBUG_MODE",
            &[
                ("off", DebugMode::Off),
                ("errors", DebugMode::Errors),
                ("all", DebugMode::All),
            ],
            "off, errors or all",
        )?
        .unwrap_or(c.debug_mode);
    if let Some(d) = v.path("DEBUG_DIR") {
        c.debug_dir = d;
    }
    c.max_request_body_bytes = v
        .parse::<usize>("MAX_REQUEST_BODY_BYTES", "a number of bytes")?
        .unwrap_or(c.max_request_body_bytes);
    c.client_read_timeout = v
        .seconds("CLIENT_READ_TIMEOUT")?
        .unwrap_or(c.client_read_timeout);
    Ok(())
}

/// The single-account login variables and how tokens are kept.
fn read_login(v: &Vars, c: &mut Config) -> Result<(), Error> {
    c.api_key = v.get("KIRO_API_KEY");
    if c.api_key.as_deref().is_some_and(|k| !k.starts_with("ksk_")) {
        return Err(Error::Config(
            "KIRO_API_KEY is not valid: Kiro API keys start with 'ksk_'".into(),
        ));
    }
    c.profile_arn = v.get("PROFILE_ARN");
    if let Some(arn) = &c.profile_arn {
        check_profile_arn(arn, "PROFILE_ARN")?;
    }
    c.refresh_token = v.get("REFRESH_TOKEN");
    c.creds_file = v.path("KIRO_CREDS_FILE");
    c.cli_db_file = v.path("KIRO_CLI_DB_FILE");
    c.sqlite_readonly = v.flag("SQLITE_READONLY")?.unwrap_or(false);
    c.builder_id_profile_arn = v.get("KIRO_BUILDER_ID_PROFILE_ARN");
    c.token_refresh_threshold = v
        .seconds("TOKEN_REFRESH_THRESHOLD")?
        .unwrap_or(c.token_refresh_threshold);
    if let Some(r) = v.get("KIRO_REGION") {
        c.kiro_region = r;
    }
    c.kiro_api_region = v.get("KIRO_API_REGION");
    if let Some(r) = &c.kiro_api_region {
        if r != "us-east-1" && r != "eu-central-1" {
            return Err(Error::Config(format!(
                "KIRO_API_REGION={r} is not valid: Kiro serves inference in us-east-1 and eu-central-1"
            )));
        }
    }
    Ok(())
}

/// Several logins behind one gateway (`KIRO_ACCOUNTS_FILE`).
fn read_accounts(v: &Vars, c: &mut Config) -> Result<(), Error> {
    c.accounts_file = v.path("KIRO_ACCOUNTS_FILE");
    c.account_strategy = v
        .choice(
            "ACCOUNT_STRATEGY",
            &[
                ("priority", AccountStrategy::Priority),
                ("round_robin", AccountStrategy::RoundRobin),
            ],
            "priority or round_robin",
        )?
        .unwrap_or(c.account_strategy);
    c.account_quota_cooldown = v.seconds("ACCOUNT_QUOTA_COOLDOWN")?;
    c.accounts_state = v.flag("ACCOUNTS_STATE")?.unwrap_or(false);
    Ok(())
}

/// Which Kiro client the gateway presents itself as, and its versions.
fn read_identity(v: &Vars, c: &mut Config) -> Result<(), Error> {
    c.client_profile = v
        .choice(
            "KIRO_CLIENT_PROFILE",
            &[
                ("ide-runtime", ClientProfile::IdeRuntime),
                ("ide-legacy", ClientProfile::IdeLegacy),
                ("cli", ClientProfile::Cli),
            ],
            "ide-runtime, ide-legacy or cli",
        )?
        .unwrap_or(c.client_profile);
    if v.flag("KIRO_LEGACY_ENDPOINT")?.unwrap_or(false) {
        c.client_profile = ClientProfile::IdeLegacy;
    }
    c.ide_version = ide_version::IdeVersion::from_setting(v.get("KIRO_IDE_VERSION").as_deref())
        .map_err(Error::Config)?;
    if let Some(url) = v.url("KIRO_UPDATE_URL")? {
        c.update_url = url;
    }
    c.state_dir = v
        .path("STATE_DIR")
        .unwrap_or_else(|| default_state_dir(v, c.state_dir.clone()));
    if let Some(cli) = v.get("KIRO_CLI_VERSION") {
        c.cli_version = cli;
    }
    if !version_at_least(&c.cli_version, MIN_CLI_VERSION) {
        return Err(Error::Config(format!(
            "KIRO_CLI_VERSION={} is refused: Kiro stopped accepting CLI versions below {MIN_CLI_VERSION} on 2026-11-09",
            c.cli_version
        )));
    }
    for (key, slot) in [
        ("KIRO_KAS_VERSION", &mut c.kas_version),
        ("KIRO_OS_TAG", &mut c.os_tag),
        ("KIRO_NODE_VERSION", &mut c.node_version),
    ] {
        if let Some(value) = v.get(key) {
            *slot = value;
        }
    }
    Ok(())
}

/// Where Kiro is, how it is reached, retried and waited for.
fn read_upstream(v: &Vars, c: &mut Config) -> Result<(), Error> {
    c.api_url = v.url("KIRO_API_URL")?;
    c.management_url = v.url("KIRO_MANAGEMENT_URL")?;
    c.desktop_auth_url = v.url("KIRO_DESKTOP_AUTH_URL")?;
    c.sso_oidc_url = v.url("KIRO_SSO_OIDC_URL")?;
    // The legacy endpoint has no fallback of its own to go to.
    let legacy_forced = v.flag("KIRO_LEGACY_ENDPOINT")?.unwrap_or(false);
    c.endpoint_fallback = v.flag("KIRO_ENDPOINT_FALLBACK")?.unwrap_or(true) && !legacy_forced;
    c.vpn_proxy_url = v.get("VPN_PROXY_URL");
    c.max_retries = v
        .parse::<u32>("MAX_RETRIES", "a whole number")?
        .unwrap_or(c.max_retries)
        .max(1);
    for (key, slot) in [
        ("BASE_RETRY_DELAY", &mut c.base_retry_delay),
        ("CONNECT_TIMEOUT", &mut c.connect_timeout),
        ("FIRST_TOKEN_TIMEOUT", &mut c.first_token_timeout),
        ("STREAMING_READ_TIMEOUT", &mut c.streaming_read_timeout),
        ("UPSTREAM_IDLE_SECS", &mut c.upstream_idle),
    ] {
        if let Some(value) = v.seconds(key)? {
            *slot = value;
        }
    }
    Ok(())
}

/// How request bodies are shaped for Kiro and how answers are shaped for clients.
fn read_shaping(v: &Vars, c: &mut Config) -> Result<(), Error> {
    for (key, what, slot) in [
        (
            "KIRO_MAX_BODY_BYTES",
            "a number of bytes",
            &mut c.kiro_max_body_bytes,
        ),
        (
            "MAX_IMAGE_BYTES",
            "a number of bytes",
            &mut c.max_image_bytes,
        ),
        (
            "TOOL_DESCRIPTION_MAX_LENGTH",
            "a whole number",
            &mut c.tool_description_max_length,
        ),
        (
            "RESPONSES_STORE_SIZE",
            "a whole number",
            &mut c.responses_store_size,
        ),
        (
            "RESPONSES_STORE_MB",
            "a whole number of MiB",
            &mut c.responses_store_mb,
        ),
    ] {
        if let Some(value) = v.parse::<usize>(key, what)? {
            *slot = value;
        }
    }
    c.history_trim = v
        .choice(
            "HISTORY_TRIM",
            &[("off", HistoryTrim::Off), ("oldest", HistoryTrim::Oldest)],
            "off or oldest",
        )?
        .unwrap_or(c.history_trim);
    c.fake_reasoning = v.flag("FAKE_REASONING")?.unwrap_or(true);
    c.fake_reasoning_max_tokens = v
        .parse::<u32>("FAKE_REASONING_MAX_TOKENS", "a whole number")?
        .unwrap_or(c.fake_reasoning_max_tokens);
    c.fake_reasoning_handling = v
        .choice(
            "FAKE_REASONING_HANDLING",
            &[
                ("as_reasoning_content", ThinkingHandling::AsReasoningContent),
                ("remove", ThinkingHandling::Remove),
                ("pass", ThinkingHandling::Pass),
                ("strip_tags", ThinkingHandling::StripTags),
            ],
            "as_reasoning_content, remove, pass or strip_tags",
        )?
        .unwrap_or(c.fake_reasoning_handling);
    c.truncation_recovery = v.flag("TRUNCATION_RECOVERY")?.unwrap_or(true);
    c.responses_store_ttl = v
        .seconds("RESPONSES_STORE_TTL")?
        .unwrap_or(c.responses_store_ttl);
    c.web_search = v
        .choice(
            "WEB_SEARCH",
            &[("kiro", true), ("off", false)],
            "kiro or off",
        )?
        .unwrap_or(c.web_search);
    c.web_search_timeout = v
        .seconds("WEB_SEARCH_TIMEOUT")?
        .unwrap_or(c.web_search_timeout);
    c.model_aliases = v.get("MODEL_ALIASES").unwrap_or_default();
    c.model_fallback_family = v
        .choice(
            "MODEL_FALLBACK",
            &[("family", true), ("off", false)],
            "family or off",
        )?
        .unwrap_or(c.model_fallback_family);
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
