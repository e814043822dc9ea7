//! The narrow settings each part of the gateway receives, built once from [`Config`]: the logins
//! and accounts get [`AuthSettings`], the Kiro client and its identity [`UpstreamSettings`], the
//! listener [`ServerSettings`], every outbound agent [`NetSettings`]. A module sees only the
//! values it uses, so a new variable for one part cannot quietly change another.

use std::path::PathBuf;
use std::time::Duration;

use super::ide_version::IdeVersion;
use super::{AccountStrategy, ClientProfile, Config};

/// How outbound connections are made (Kiro and the auth servers alike).
#[derive(Debug, Clone, PartialEq)]
pub struct NetSettings {
    /// `VPN_PROXY_URL`; an account's own `proxy` overrides it.
    pub vpn_proxy_url: Option<String>,
    pub connect_timeout: Duration,
    /// Longest wait for a response head or between two reads of a body.
    pub streaming_read_timeout: Duration,
    /// A pooled connection idle longer than this is not reused.
    pub upstream_idle: Duration,
}

/// What the logins, their refresh and the account pool need.
#[derive(Clone)]
pub struct AuthSettings {
    // The single-account variables (used when there is no accounts file).
    pub refresh_token: Option<String>,
    pub profile_arn: Option<String>,
    pub creds_file: Option<PathBuf>,
    pub cli_db_file: Option<PathBuf>,
    pub api_key: Option<String>,

    pub builder_id_profile_arn: Option<String>,
    pub sqlite_readonly: bool,
    pub token_refresh_threshold: Duration,
    /// The IDE version the desktop refresh call presents (shared with the Kiro client, so a
    /// discovered version reaches both).
    pub ide_version: IdeVersion,

    /// `KIRO_REGION`: the default login region (an account's `region` overrides it).
    pub kiro_region: String,
    pub kiro_api_region: Option<String>,
    pub management_url: Option<String>,
    pub desktop_auth_url: Option<String>,
    pub sso_oidc_url: Option<String>,

    pub accounts_file: Option<PathBuf>,
    pub account_strategy: AccountStrategy,
    /// How long a spent quota cools an account; None: until the reset.
    pub account_quota_cooldown: Option<Duration>,
    /// Keep cooldowns across restarts in `<accounts file>.state.json`.
    pub accounts_state: bool,

    pub net: NetSettings,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("creds_file", &self.creds_file)
            .field("cli_db_file", &self.cli_db_file)
            .field("accounts_file", &self.accounts_file)
            .field("kiro_region", &self.kiro_region)
            .finish_non_exhaustive()
    }
}

impl AuthSettings {
    /// Every default and no login (the base for tests).
    pub fn defaults() -> AuthSettings {
        AuthSettings::from_config(&Config::defaults())
    }

    pub fn from_config(c: &Config) -> AuthSettings {
        AuthSettings {
            refresh_token: c.refresh_token.clone(),
            profile_arn: c.profile_arn.clone(),
            creds_file: c.creds_file.clone(),
            cli_db_file: c.cli_db_file.clone(),
            api_key: c.api_key.clone(),
            builder_id_profile_arn: c.builder_id_profile_arn.clone(),
            sqlite_readonly: c.sqlite_readonly,
            token_refresh_threshold: c.token_refresh_threshold,
            ide_version: c.ide_version.clone(),
            kiro_region: c.kiro_region.clone(),
            kiro_api_region: c.kiro_api_region.clone(),
            management_url: c.management_url.clone(),
            desktop_auth_url: c.desktop_auth_url.clone(),
            sso_oidc_url: c.sso_oidc_url.clone(),
            accounts_file: c.accounts_file.clone(),
            account_strategy: c.account_strategy,
            account_quota_cooldown: c.account_quota_cooldown,
            accounts_state: c.accounts_state,
            net: NetSettings::from_config(c),
        }
    }

    /// The inference region of a login whose own region is `login_region`: the profile ARN's
    /// region when known, else `KIRO_API_REGION`, else the login region mapped onto Kiro's two
    /// inference regions (`eu-*` → eu-central-1, else us-east-1).
    pub fn api_region(&self, login_region: &str, profile_arn: Option<&str>) -> String {
        api_region(self.kiro_api_region.as_deref(), login_region, profile_arn)
    }

    /// The management host (profiles) for `region`.
    pub fn management_base(&self, region: &str) -> String {
        management_base(self.management_url.as_deref(), region)
    }
}

/// What the Kiro client and the client identity need.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub client_profile: ClientProfile,
    pub ide_version: IdeVersion,
    /// The IDE's update manifest read by version discovery.
    pub update_url: String,
    /// Where discovery caches the version it found.
    pub state_dir: PathBuf,
    pub cli_version: String,
    pub kas_version: String,
    pub os_tag: String,
    pub node_version: String,
    pub api_url: Option<String>,
    pub management_url: Option<String>,
    pub endpoint_fallback: bool,
    pub max_retries: u32,
    pub base_retry_delay: Duration,
    pub first_token_timeout: Duration,
    /// How long one web search call may take.
    pub web_search_timeout: Duration,
    /// For the calls that are not made on an account's agent (version discovery).
    pub net: NetSettings,
}

impl UpstreamSettings {
    /// Every default (the base for tests).
    pub fn defaults() -> UpstreamSettings {
        UpstreamSettings::from_config(&Config::defaults())
    }

    pub fn from_config(c: &Config) -> UpstreamSettings {
        UpstreamSettings {
            client_profile: c.client_profile,
            ide_version: c.ide_version.clone(),
            update_url: c.update_url.clone(),
            state_dir: c.state_dir.clone(),
            cli_version: c.cli_version.clone(),
            kas_version: c.kas_version.clone(),
            os_tag: c.os_tag.clone(),
            node_version: c.node_version.clone(),
            api_url: c.api_url.clone(),
            management_url: c.management_url.clone(),
            endpoint_fallback: c.endpoint_fallback,
            max_retries: c.max_retries,
            base_retry_delay: c.base_retry_delay,
            first_token_timeout: c.first_token_timeout,
            web_search_timeout: c.web_search_timeout,
            net: NetSettings::from_config(c),
        }
    }

    /// The management host (models) for `region`.
    pub fn management_base(&self, region: &str) -> String {
        management_base(self.management_url.as_deref(), region)
    }
}

/// What the listener and the worker pool need.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub queue_size: usize,
    pub queue_timeout: Duration,
    pub client_read_timeout: Duration,
}

impl ServerSettings {
    pub fn from_config(c: &Config) -> ServerSettings {
        ServerSettings {
            host: c.host.clone(),
            port: c.port,
            workers: c.workers,
            queue_size: c.queue_size,
            queue_timeout: c.queue_timeout,
            client_read_timeout: c.client_read_timeout,
        }
    }
}

impl NetSettings {
    pub fn from_config(c: &Config) -> NetSettings {
        NetSettings {
            vpn_proxy_url: c.vpn_proxy_url.clone(),
            connect_timeout: c.connect_timeout,
            streaming_read_timeout: c.streaming_read_timeout,
            upstream_idle: c.upstream_idle,
        }
    }
}

/// `KIRO_MANAGEMENT_URL`, else `https://management.{region}.kiro.dev` (no trailing slash).
pub fn management_base(management_url: Option<&str>, region: &str) -> String {
    match management_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("https://management.{region}.kiro.dev"),
    }
}

/// The inference region: the profile ARN's region when known, else `KIRO_API_REGION`, else the
/// login region mapped onto Kiro's two inference regions.
pub fn api_region(kiro_api_region: Option<&str>, login_region: &str, arn: Option<&str>) -> String {
    if let Some(region) = arn.and_then(arn_region) {
        return region.to_string();
    }
    if let Some(r) = kiro_api_region {
        return r.to_string();
    }
    map_to_kiro_region(login_region).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_region_prefers_the_arn_then_kiro_api_region_then_the_mapped_login_region() {
        let mut c = AuthSettings::defaults();
        assert_eq!(c.api_region("eu-west-1", None), "eu-central-1");
        assert_eq!(
            c.api_region(
                "eu-west-1",
                Some("arn:aws:codewhisperer:us-east-1:123456789012:profile/X")
            ),
            "us-east-1"
        );
        c.kiro_api_region = Some("us-east-1".into());
        assert_eq!(c.api_region("eu-west-1", None), "us-east-1");
    }

    #[test]
    fn management_base_is_the_override_without_trailing_slash_or_the_regional_host() {
        assert_eq!(
            management_base(None, "eu-central-1"),
            "https://management.eu-central-1.kiro.dev"
        );
        assert_eq!(
            management_base(Some("http://127.0.0.1:9/"), "us-east-1"),
            "http://127.0.0.1:9"
        );
    }

    #[test]
    fn auth_settings_debug_never_shows_tokens() {
        let mut c = Config::defaults();
        c.refresh_token = Some("SECRETRT".into());
        c.api_key = Some("ksk_SECRET".into());
        let text = format!("{:?}", AuthSettings::from_config(&c));
        assert!(!text.contains("SECRET"), "{text}");
    }
}
