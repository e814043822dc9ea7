//! Token refresh calls: Kiro desktop `refreshToken`, AWS SSO OIDC `CreateToken`, external IdP
//! `refresh_token` grant, and `List-Available-Profiles` for profileArn discovery.
//!
//! Each function is one POST with a 30 s overall timeout, on the agent of the login (so its proxy
//! applies). Nothing here keeps state, retries, or decides what a failure means for the login: a
//! non-2xx answer comes back as [`Error::Upstream`] with the auth server's status, an unreachable
//! server as [`Error::Network`]. Error messages carry only the server's `error` /
//! `error_description` / `message` fields, with the secrets we sent scrubbed out.

use std::fmt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::AuthSettings;
use crate::error::Error;
use crate::util::percent_encode;

/// Overall time limit of one refresh or profile call.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Token lifetime assumed when a response has no `expiresIn`.
pub const DEFAULT_EXPIRES_IN: u64 = 3600;

/// The useful part of a successful refresh.
#[derive(Clone, PartialEq)]
pub struct Refreshed {
    pub access_token: String,
    /// The rotated refresh token; `None` when the response had none or an empty one (keep the old).
    pub refresh_token: Option<String>,
    /// Seconds the new access token lives (`expiresIn`, default 3600).
    pub expires_in: u64,
    /// Desktop refresh only: the social login's profile ARN.
    pub profile_arn: Option<String>,
}

impl fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refreshed")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in", &self.expires_in)
            .field("profile_arn", &self.profile_arn)
            .finish()
    }
}

/// `KIRO_DESKTOP_AUTH_URL`, else `https://prod.{region}.auth.desktop.kiro.dev/refreshToken`.
pub fn desktop_url(config: &AuthSettings, region: &str) -> String {
    config
        .desktop_auth_url
        .clone()
        .unwrap_or_else(|| format!("https://prod.{region}.auth.desktop.kiro.dev/refreshToken"))
}

/// `KIRO_SSO_OIDC_URL`, else `https://oidc.{sso_region}.amazonaws.com/token`.
pub fn oidc_url(config: &AuthSettings, sso_region: &str) -> String {
    config
        .sso_oidc_url
        .clone()
        .unwrap_or_else(|| format!("https://oidc.{sso_region}.amazonaws.com/token"))
}

/// `k=v&k=v` with both sides percent-encoded.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Kiro desktop (social) refresh: `POST {url}` with `{"refreshToken": …}`.
pub fn refresh_desktop(
    agent: &ureq::Agent,
    url: &str,
    refresh_token: &str,
    user_agent: &str,
) -> Result<Refreshed, Error> {
    const WHAT: &str = "Kiro desktop token refresh";
    let body = json!({ "refreshToken": refresh_token }).to_string();
    let result = agent
        .post(url)
        .config()
        .timeout_global(Some(REFRESH_TIMEOUT))
        .build()
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .header("User-Agent", user_agent)
        .send(body.as_bytes());
    let v = read_json(result, WHAT, url, &[refresh_token])?;
    parse_refreshed(&v, WHAT, false)
}

/// AWS SSO OIDC `CreateToken` with the refresh-token grant: camelCase JSON, never any scopes.
pub fn refresh_oidc(
    agent: &ureq::Agent,
    url: &str,
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
) -> Result<Refreshed, Error> {
    const WHAT: &str = "AWS SSO OIDC token refresh";
    let body = json!({
        "grantType": "refresh_token",
        "clientId": client_id,
        "clientSecret": client_secret,
        "refreshToken": refresh_token,
    })
    .to_string();
    let result = agent
        .post(url)
        .config()
        .timeout_global(Some(REFRESH_TIMEOUT))
        .build()
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .send(body.as_bytes());
    let v = read_json(result, WHAT, url, &[refresh_token, client_secret])?;
    let mut r = parse_refreshed(&v, WHAT, false)?;
    // CreateToken carries no profile ARN; ignore anything that looks like one.
    r.profile_arn = None;
    Ok(r)
}

/// External IdP (Entra ID, Okta) refresh at the tenant's own token endpoint: a public client, so
/// the form carries only `grant_type`, `refresh_token` and `client_id`; the answer is snake_case.
pub fn refresh_external_idp(
    agent: &ureq::Agent,
    token_endpoint: &str,
    client_id: &str,
    refresh_token: &str,
) -> Result<Refreshed, Error> {
    const WHAT: &str = "external identity provider token refresh";
    let body = form_encode(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
    ]);
    let result = agent
        .post(token_endpoint)
        .config()
        .timeout_global(Some(REFRESH_TIMEOUT))
        .build()
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .send(body.as_bytes());
    let v = read_json(result, WHAT, token_endpoint, &[refresh_token])?;
    parse_refreshed(&v, WHAT, true)
}

/// `POST {base}/List-Available-Profiles` with body `{}`; the ARN of the first profile that has one.
/// External IdP tokens must say so with `TokenType: EXTERNAL_IDP` (without it: 403 "Invalid token").
pub fn list_available_profiles(
    agent: &ureq::Agent,
    base: &str,
    access_token: &str,
    external_idp: bool,
) -> Result<Option<String>, Error> {
    const WHAT: &str = "List-Available-Profiles";
    let url = format!("{}/List-Available-Profiles", base.trim_end_matches('/'));
    let mut req = agent
        .post(&url)
        .config()
        .timeout_global(Some(REFRESH_TIMEOUT))
        .build()
        .header("Authorization", &format!("Bearer {access_token}"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json");
    if external_idp {
        req = req.header("TokenType", "EXTERNAL_IDP");
    }
    let v = read_json(req.send("{}".as_bytes()), WHAT, &url, &[access_token])?;
    Ok(v.get("profiles")
        .and_then(Value::as_array)
        .and_then(|profiles| {
            profiles.iter().find_map(|p| {
                p.get("arn")
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
            })
        }))
}

fn network_error(e: ureq::Error, what: &str, url: &str) -> Error {
    let timeout = match &e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    };
    // The URL without its query: the host is what a user needs to check a firewall or proxy.
    let shown = url.split('?').next().unwrap_or(url);
    Error::Network {
        message: format!("{what} ({shown}): {e}"),
        timeout,
    }
}

/// The JSON body of a 2xx answer; anything else becomes an error without secrets.
fn read_json(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    what: &str,
    url: &str,
    secrets: &[&str],
) -> Result<Value, Error> {
    let mut resp = result.map_err(|e| network_error(e, what, url))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| network_error(e, what, url))?;
    if !(200..300).contains(&status) {
        return Err(Error::Upstream {
            status,
            message: format!(
                "{what} failed: {}",
                describe_error_body(&text, status, secrets)
            ),
            reason: None,
            retry_after: None,
        });
    }
    serde_json::from_str::<Value>(&text).map_err(|_| Error::Upstream {
        status: 502,
        message: format!("{what}: the answer is not JSON"),
        reason: None,
        retry_after: None,
    })
}

/// "HTTP 400: invalid_grant (Invalid refresh token)" from an AWS / OAuth / Kiro error body.
pub fn describe_error_body(text: &str, status: u16, secrets: &[&str]) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let field = |names: &[&str]| {
        names.iter().find_map(|n| {
            v.get(*n)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        })
    };
    let code = field(&["error", "__type", "code", "reason"]);
    let detail = field(&[
        "error_description",
        "message",
        "Message",
        "errorDescription",
    ]);
    let mut s = format!("HTTP {status}");
    match (code, detail) {
        (Some(c), Some(d)) => s.push_str(&format!(": {c} ({d})")),
        (Some(x), None) | (None, Some(x)) => s.push_str(&format!(": {x}")),
        (None, None) => {}
    }
    let mut s = scrub(&s, secrets);
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Replace every occurrence of a secret with `[redacted]`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(*s, "[redacted]");
    }
    out
}

fn parse_refreshed(v: &Value, what: &str, snake: bool) -> Result<Refreshed, Error> {
    let (access, refresh, expires) = if snake {
        ("access_token", "refresh_token", "expires_in")
    } else {
        ("accessToken", "refreshToken", "expiresIn")
    };
    let text = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let access_token = text(access).ok_or_else(|| Error::Upstream {
        status: 502,
        message: format!("{what}: the answer has no {access}"),
        reason: None,
        retry_after: None,
    })?;
    let expires_in = match v.get(expires) {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .unwrap_or(DEFAULT_EXPIRES_IN);
    Ok(Refreshed {
        access_token,
        refresh_token: text(refresh),
        expires_in,
        profile_arn: if snake { None } else { text("profileArn") },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_stub::Stub;

    fn agent() -> ureq::Agent {
        crate::net::agent(&AuthSettings::defaults().net, None).unwrap()
    }

    #[test]
    fn default_urls_follow_the_regions() {
        let c = AuthSettings::defaults();
        assert_eq!(
            desktop_url(&c, "us-east-1"),
            "https://prod.us-east-1.auth.desktop.kiro.dev/refreshToken"
        );
        assert_eq!(
            oidc_url(&c, "eu-west-1"),
            "https://oidc.eu-west-1.amazonaws.com/token"
        );
        assert_eq!(
            c.management_base("eu-central-1"),
            "https://management.eu-central-1.kiro.dev"
        );
        let mut c = AuthSettings::defaults();
        c.sso_oidc_url = Some("http://127.0.0.1:9/oidc".into());
        assert_eq!(oidc_url(&c, "eu-west-1"), "http://127.0.0.1:9/oidc");
    }

    #[test]
    fn desktop_refresh_sends_json_and_user_agent_and_reads_the_answer() {
        let stub = Stub::start(|_| {
            (
                200,
                r#"{"accessToken":"new-at","refreshToken":"new-rt","expiresIn":1200,"profileArn":"arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK"}"#.into(),
            )
        });
        let r = refresh_desktop(
            &agent(),
            &format!("{}/refreshToken", stub.url),
            "old-rt",
            "KiroIDE-1.0.437-abc",
        )
        .unwrap();
        assert_eq!(r.access_token, "new-at");
        assert_eq!(r.refresh_token.as_deref(), Some("new-rt"));
        assert_eq!(r.expires_in, 1200);
        assert!(r.profile_arn.is_some());
        let req = &stub.requests()[0];
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/refreshToken");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("user-agent"), Some("KiroIDE-1.0.437-abc"));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body, json!({"refreshToken": "old-rt"}));
    }

    #[test]
    fn empty_refresh_token_in_answer_means_keep_the_old_one_and_expiry_defaults() {
        let stub = Stub::start(|_| (200, r#"{"accessToken":"a","refreshToken":""}"#.into()));
        let r = refresh_desktop(&agent(), &stub.url, "rt", "ua").unwrap();
        assert_eq!(r.refresh_token, None);
        assert_eq!(r.expires_in, DEFAULT_EXPIRES_IN);
    }

    #[test]
    fn answer_without_access_token_is_an_error() {
        let stub = Stub::start(|_| (200, r#"{"refreshToken":"x"}"#.into()));
        let e = refresh_desktop(&agent(), &stub.url, "rt", "ua").unwrap_err();
        assert!(e.to_string().contains("accessToken"), "{e}");
    }

    #[test]
    fn oidc_body_is_camel_case_json_without_scopes() {
        let stub = Stub::start(|_| {
            (
                200,
                r#"{"accessToken":"a","refreshToken":"r2","expiresIn":"900","tokenType":"Bearer"}"#
                    .into(),
            )
        });
        let r = refresh_oidc(&agent(), &stub.url, "cid", "csecret", "rt").unwrap();
        assert_eq!(r.expires_in, 900);
        let req = &stub.requests()[0];
        assert_eq!(req.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(
            body,
            json!({"grantType":"refresh_token","clientId":"cid","clientSecret":"csecret","refreshToken":"rt"})
        );
        assert!(!req.body.contains("scope"));
    }

    #[test]
    fn external_idp_body_is_form_encoded_and_answer_snake_case() {
        let stub = Stub::start(|_| {
            (
                200,
                r#"{"access_token":"a","refresh_token":"r2","expires_in":3599,"token_type":"Bearer"}"#
                    .into(),
            )
        });
        let r = refresh_external_idp(
            &agent(),
            &format!("{}/tenant/oauth2/v2.0/token", stub.url),
            "client id/1",
            "r+t=&x",
        )
        .unwrap();
        assert_eq!(r.access_token, "a");
        assert_eq!(r.refresh_token.as_deref(), Some("r2"));
        assert_eq!(r.expires_in, 3599);
        let req = &stub.requests()[0];
        assert_eq!(req.path, "/tenant/oauth2/v2.0/token");
        assert_eq!(
            req.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            req.body,
            "grant_type=refresh_token&refresh_token=r%2Bt%3D%26x&client_id=client%20id%2F1"
        );
    }

    #[test]
    fn error_status_is_kept_and_secrets_are_scrubbed() {
        let stub = Stub::start(|_| {
            (
                400,
                r#"{"error":"invalid_grant","error_description":"token SECRET-RT is revoked"}"#
                    .into(),
            )
        });
        let e = refresh_oidc(&agent(), &stub.url, "c", "s3cret", "SECRET-RT").unwrap_err();
        match &e {
            Error::Upstream {
                status, message, ..
            } => {
                assert_eq!(*status, 400);
                assert!(message.contains("invalid_grant"), "{message}");
                assert!(!message.contains("SECRET-RT"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unreachable_server_is_a_network_error() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = refresh_desktop(&agent(), &format!("http://127.0.0.1:{port}/x"), "rt", "ua")
            .unwrap_err();
        assert!(matches!(e, Error::Network { .. }), "{e:?}");
    }

    #[test]
    fn list_profiles_takes_first_arn_and_sends_token_type_for_external_idp() {
        let stub = Stub::start(|_| {
            (
                200,
                r#"{"profiles":[{"profileName":"none"},{"arn":"arn:aws:codewhisperer:us-east-1:123456789012:profile/P1"},{"arn":"arn:aws:codewhisperer:us-east-1:123456789012:profile/P2"}]}"#.into(),
            )
        });
        let arn = list_available_profiles(&agent(), &stub.url, "tok", true).unwrap();
        assert_eq!(
            arn.as_deref(),
            Some("arn:aws:codewhisperer:us-east-1:123456789012:profile/P1")
        );
        list_available_profiles(&agent(), &format!("{}/", stub.url), "tok", false).unwrap();
        let reqs = stub.requests();
        assert_eq!(reqs[0].path, "/List-Available-Profiles");
        assert_eq!(reqs[0].body, "{}");
        assert_eq!(reqs[0].header("authorization"), Some("Bearer tok"));
        assert_eq!(reqs[0].header("content-type"), Some("application/json"));
        assert_eq!(reqs[0].header("tokentype"), Some("EXTERNAL_IDP"));
        assert_eq!(reqs[1].path, "/List-Available-Profiles");
        assert_eq!(reqs[1].header("tokentype"), None);
    }

    #[test]
    fn form_component_encodes_reserved_and_utf8() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
