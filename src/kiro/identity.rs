//! Client identities (`docs/kiro-wire.md#identity`): for each profile, the complete set of headers, the
//! endpoint shape and the body shape, kept together. Mixing one era's version with another era's
//! body is the worst option, so nothing outside this module picks a header value.

use crate::auth::{AuthKind, Credentials};
use crate::config::{ClientProfile, UpstreamSettings};
use crate::util::uuid_v4;

/// How one generate call is made.
#[derive(Debug, Clone, PartialEq)]
pub struct CallShape {
    pub profile: ClientProfile,
    /// Full URL to POST to.
    pub url: String,
    /// Headers except Authorization.
    pub headers: Vec<(String, String)>,
    /// `origin` in the body.
    pub origin: &'static str,
    /// Top-level `agentMode` and `rootConversationId` in the body.
    pub runtime_body: bool,
}

/// The profile actually used for a login: API keys, and Builder ID without a profile ARN, speak
/// the kiro-cli shape (`docs/kiro-wire.md#identity`); everything else uses the configured profile.
pub fn effective_profile(config: &UpstreamSettings, creds: &Credentials) -> ClientProfile {
    match (config.client_profile, creds.kind) {
        (ClientProfile::IdeLegacy, _) => ClientProfile::IdeLegacy,
        (_, AuthKind::ApiKey) => ClientProfile::Cli,
        (_, AuthKind::BuilderId) if creds.profile_arn.is_none() => ClientProfile::Cli,
        (p, _) => p,
    }
}

/// Base URL of the inference host for a profile (KIRO_API_URL wins for every profile).
pub fn api_base(config: &UpstreamSettings, profile: ClientProfile, region: &str) -> String {
    if let Some(u) = &config.api_url {
        return u.clone();
    }
    match profile {
        ClientProfile::IdeLegacy => format!("https://q.{region}.amazonaws.com"),
        _ => format!("https://runtime.{region}.kiro.dev"),
    }
}

/// Headers that say what kind of token this is (`docs/kiro-wire.md#identity`): only API keys and external IdP
/// tokens carry one; sending it for IdC breaks IdC.
pub fn token_type_header(kind: AuthKind) -> Option<(&'static str, &'static str)> {
    match kind {
        AuthKind::ApiKey => Some(("tokentype", "API_KEY")),
        AuthKind::ExternalIdp => Some(("TokenType", "EXTERNAL_IDP")),
        _ => None,
    }
}

/// The User-Agent pair (`user-agent`, `x-amz-user-agent`) of a profile's generate call.
pub fn user_agents(
    config: &UpstreamSettings,
    profile: ClientProfile,
    machine_id: &str,
) -> (String, String) {
    let v = config.ide_version.get();
    match profile {
        ClientProfile::IdeRuntime => (
            format!(
                "aws-sdk-js/1.0.0 ua/2.1 os/{} lang/js md/nodejs#{} api/kiroruntime#1.0.0 m/N KiroIDE-{v}-{machine_id}-KAS/{}",
                config.os_tag, config.node_version, config.kas_version
            ),
            format!("aws-sdk-js/1.0.0 KiroIDE-{v}-{machine_id}-KAS/{}", config.kas_version),
        ),
        ClientProfile::IdeLegacy => (
            format!(
                "aws-sdk-js/1.0.34 ua/2.1 os/{} lang/js md/nodejs#{} api/codewhispererstreaming#1.0.34 m/E KiroIDE-{v}-{machine_id}",
                config.os_tag, config.node_version
            ),
            format!("aws-sdk-js/1.0.34 KiroIDE-{v}-{machine_id}"),
        ),
        ClientProfile::Cli => cli_user_agents(config),
    }
}

/// The pair of the management (control-plane) calls: the IDE names its bearer-token control
/// plane client and sends no `KAS/` suffix there (`docs/kiro-wire.md#identity`).
pub fn control_plane_agents(
    config: &UpstreamSettings,
    profile: ClientProfile,
    machine_id: &str,
) -> (String, String) {
    if profile == ClientProfile::Cli {
        return cli_user_agents(config);
    }
    let v = config.ide_version.get();
    (
        format!(
            "aws-sdk-js/1.0.0 ua/2.1 os/{} lang/js md/nodejs#{} api/kirocontrolplanebearer#1.0.0 m/N,E KiroIDE-{v}-{machine_id}",
            config.os_tag, config.node_version
        ),
        format!("aws-sdk-js/1.0.0 KiroIDE-{v}-{machine_id}"),
    )
}

fn cli_user_agents(config: &UpstreamSettings) -> (String, String) {
    let os = config.os_tag.split('#').next().unwrap_or("linux");
    let ua = format!(
        "aws-sdk-rust/1.3.15 ua/2.1 api/codewhispererstreaming/0.1.17975 os/{os} lang/rust/1.92.0 md/appVersion-{} m/F app/AmazonQ-For-CLI",
        config.cli_version
    );
    (ua.clone(), ua)
}

/// The full call shape for one attempt (`attempt` counts from 1).
pub fn call_shape(
    config: &UpstreamSettings,
    profile: ClientProfile,
    creds: &Credentials,
    attempt: u32,
    max_attempts: u32,
) -> CallShape {
    let base = api_base(config, profile, &creds.api_region);
    let (ua, amz_ua) = user_agents(config, profile, &creds.machine_id);
    let mut headers: Vec<(String, String)> = Vec::with_capacity(12);
    let mut h = |k: &str, v: String| headers.push((k.to_string(), v));
    h("user-agent", ua);
    h("x-amz-user-agent", amz_ua);
    h("amz-sdk-invocation-id", uuid_v4());
    h(
        "amz-sdk-request",
        format!("attempt={attempt}; max={max_attempts}"),
    );
    let (url, origin, runtime_body) = match profile {
        ClientProfile::IdeRuntime => {
            h("content-type", "application/x-amz-json-1.0".into());
            h(
                "x-amz-target",
                "KiroRuntimeService.GenerateAssistantResponse".into(),
            );
            h("x-amzn-kiro-client-attribution", "kiro-ide".into());
            h("optout", "true".into());
            h("x-kiro-attempt", format!("{attempt};max={max_attempts}"));
            (format!("{base}/"), "AI_EDITOR", true)
        }
        ClientProfile::Cli => {
            h("content-type", "application/x-amz-json-1.0".into());
            h(
                "x-amz-target",
                "AmazonCodeWhispererStreamingService.GenerateAssistantResponse".into(),
            );
            h("x-amzn-codewhisperer-optout", "false".into());
            (format!("{base}/"), "KIRO_CLI", true)
        }
        ClientProfile::IdeLegacy => {
            h("content-type", "application/json".into());
            h("x-amzn-codewhisperer-optout", "true".into());
            h("x-amzn-kiro-agent-mode", "vibe".into());
            (
                format!("{base}/generateAssistantResponse"),
                "AI_EDITOR",
                false,
            )
        }
    };
    if let Some((k, v)) = token_type_header(creds.kind) {
        headers.push((k.to_string(), v.to_string()));
    }
    let origin = if creds.kind == AuthKind::ApiKey {
        "KIRO_CLI"
    } else {
        origin
    };
    CallShape {
        profile,
        url,
        headers,
        origin,
        runtime_body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(kind: AuthKind, arn: Option<&str>) -> Credentials {
        Credentials {
            access_token: "t".into(),
            kind,
            profile_arn: arn.map(String::from),
            api_region: "us-east-1".into(),
            machine_id: "a".repeat(64),
        }
    }

    fn header<'a>(s: &'a CallShape, name: &str) -> Option<&'a str> {
        s.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn runtime_profile_uses_aws_json_and_kiro_runtime_target() {
        let c = UpstreamSettings::defaults();
        let s = call_shape(
            &c,
            ClientProfile::IdeRuntime,
            &creds(AuthKind::Social, None),
            1,
            3,
        );
        assert_eq!(s.url, "https://runtime.us-east-1.kiro.dev/");
        assert_eq!(
            header(&s, "content-type"),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(
            header(&s, "x-amz-target"),
            Some("KiroRuntimeService.GenerateAssistantResponse")
        );
        let ua = header(&s, "user-agent").unwrap();
        assert!(
            ua.contains("md/nodejs#24.18.0 api/kiroruntime#1.0.0 m/N KiroIDE-1.1.70-"),
            "{ua}"
        );
        assert!(ua.ends_with("-KAS/0.66.7"));
        assert_eq!(header(&s, "optout"), Some("true"));
        assert_eq!(
            header(&s, "x-amzn-kiro-client-attribution"),
            Some("kiro-ide")
        );
        assert_eq!(header(&s, "x-kiro-attempt"), Some("1;max=3"));
        assert!(header(&s, "tokentype").is_none());
        assert!(s.runtime_body);
    }

    #[test]
    fn api_keys_speak_the_cli_shape_with_token_type() {
        let c = UpstreamSettings::defaults();
        let cr = creds(AuthKind::ApiKey, None);
        let p = effective_profile(&c, &cr);
        assert_eq!(p, ClientProfile::Cli);
        let s = call_shape(&c, p, &cr, 1, 3);
        assert_eq!(header(&s, "tokentype"), Some("API_KEY"));
        assert_eq!(s.origin, "KIRO_CLI");
        assert_eq!(
            header(&s, "x-amz-target"),
            Some("AmazonCodeWhispererStreamingService.GenerateAssistantResponse")
        );
    }

    #[test]
    fn external_idp_carries_token_type_and_idc_does_not() {
        let c = UpstreamSettings::defaults();
        let s = call_shape(
            &c,
            ClientProfile::IdeRuntime,
            &creds(AuthKind::ExternalIdp, None),
            1,
            3,
        );
        assert_eq!(header(&s, "TokenType"), Some("EXTERNAL_IDP"));
        let s = call_shape(
            &c,
            ClientProfile::IdeRuntime,
            &creds(AuthKind::IdentityCenter, None),
            1,
            3,
        );
        assert!(header(&s, "TokenType").is_none());
    }

    #[test]
    fn legacy_profile_posts_json_to_the_q_host() {
        let c = UpstreamSettings::defaults();
        let s = call_shape(
            &c,
            ClientProfile::IdeLegacy,
            &creds(AuthKind::Social, None),
            2,
            3,
        );
        assert_eq!(
            s.url,
            "https://q.us-east-1.amazonaws.com/generateAssistantResponse"
        );
        assert_eq!(header(&s, "content-type"), Some("application/json"));
        assert_eq!(header(&s, "amz-sdk-request"), Some("attempt=2; max=3"));
        assert!(!s.runtime_body);
    }

    #[test]
    fn api_url_overrides_every_profile() {
        let mut c = UpstreamSettings::defaults();
        c.api_url = Some("http://127.0.0.1:9".into());
        let cr = creds(AuthKind::Social, None);
        assert_eq!(
            call_shape(&c, ClientProfile::IdeRuntime, &cr, 1, 1).url,
            "http://127.0.0.1:9/"
        );
        assert_eq!(
            call_shape(&c, ClientProfile::IdeLegacy, &cr, 1, 1).url,
            "http://127.0.0.1:9/generateAssistantResponse"
        );
    }
}
