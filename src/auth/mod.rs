//! Logins and their tokens: one [`TokenStore`] per login, guarded by a mutex, with exactly one
//! refresh in flight, a timer thread that refreshes before expiry, and write-back to the source.
//!
//! Knows nothing of HTTP handlers; the Kiro client asks it for [`Credentials`].

pub mod refresh;
pub mod sources;

use std::sync::Arc;

use crate::config::Config;
use crate::error::Error;

/// The five kinds of Kiro login (2026 addendum §3, §10.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// Kiro desktop (Google/GitHub) login, refreshed at `prod.{r}.auth.desktop.kiro.dev`.
    Social,
    /// AWS Builder ID via SSO OIDC.
    BuilderId,
    /// IAM Identity Center (enterprise) via SSO OIDC.
    IdentityCenter,
    /// Entra/Okta tokens refreshed at the tenant's endpoint; Kiro calls carry `TokenType: EXTERNAL_IDP`.
    ExternalIdp,
    /// `ksk_…` key: no refresh, `tokentype: API_KEY`, no profileArn.
    ApiKey,
}

/// What one Kiro call needs from the login.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub access_token: String,
    pub kind: AuthKind,
    /// The profileArn to send, already resolved per kind (None for API keys and Builder ID).
    pub profile_arn: Option<String>,
    /// The inference region (profile ARN region, else configured/mapped).
    pub api_region: String,
    /// 64-hex machine id, stable for this login.
    pub machine_id: String,
}

/// The token cache of one login.
#[derive(Debug)]
pub struct TokenStore {
    name: String,
}

impl TokenStore {
    /// Load the login configured by the single-account variables.
    pub fn from_config(config: &Config) -> Result<Arc<TokenStore>, Error> {
        let _ = config;
        Ok(Arc::new(TokenStore {
            name: "default".into(),
        }))
    }
    /// The account's name (for logs and `/health`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Valid credentials, refreshing first if the token expires within the threshold.
    pub fn credentials(&self) -> Result<Credentials, Error> {
        Err(Error::Internal("auth not implemented".into()))
    }
    /// Kiro said 403 for `failed_token`: refresh unless another thread already did.
    pub fn force_refresh(&self, failed_token: &str) -> Result<Credentials, Error> {
        let _ = failed_token;
        self.credentials()
    }
    /// Start the proactive refresh timer thread.
    pub fn start_timer(self: &Arc<Self>) {}
    /// State for `/health`, without secrets.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name})
    }
}
