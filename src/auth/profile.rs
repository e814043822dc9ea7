//! The profileArn a login sends: explicit → the login's own → the desktop refresh response
//! (social) → List-Available-Profiles (IdC, external IdP), asked once per token lineage.
//! API keys never send one; Builder ID only `KIRO_BUILDER_ID_PROFILE_ARN`.

use super::store::{State, TokenStore};
use super::{lock, refresh, AuthKind};
use crate::config::check_profile_arn;
use crate::error::Error;

/// What List-Available-Profiles said for this login (called at most once per token lineage).
#[derive(Debug, Clone)]
pub(super) enum Lap {
    NotTried,
    Found(String),
    NotFound,
    /// It answered with an ARN `check_profile_arn` refuses.
    Invalid(Error),
    /// The call failed; tried again after the next successful refresh.
    Failed,
}

impl TokenStore {
    /// The profileArn this login sends (`docs/kiro-wire.md#profile-arn`): explicit → the login's own →
    /// the desktop refresh response (social) → List-Available-Profiles (IdC, external IdP).
    /// API keys never send one; Builder ID only `KIRO_BUILDER_ID_PROFILE_ARN`.
    pub(super) fn resolve_arn(&self, st: &State) -> Result<Option<String>, Error> {
        if self.kind == AuthKind::ApiKey {
            return Ok(None);
        }
        if let Some(arn) = &self.explicit_arn {
            return Ok(Some(arn.clone()));
        }
        let own = |arn: &String| {
            check_profile_arn(
                arn,
                &format!(
                    "the profile ARN in {} (set PROFILE_ARN to override it)",
                    self.label
                ),
            )
            .map(|()| Some(arn.clone()))
        };
        match self.kind {
            AuthKind::ApiKey => Ok(None),
            AuthKind::BuilderId => Ok(self.settings.builder_id_profile_arn.clone()),
            AuthKind::Social => {
                if let Some(arn) = &st.login.profile_arn {
                    return own(arn);
                }
                match &st.refreshed_arn {
                    Some(arn) => check_profile_arn(
                        arn,
                        "the profileArn of the Kiro refresh response (set PROFILE_ARN to override it)",
                    )
                    .map(|()| Some(arn.clone())),
                    None => Ok(None),
                }
            }
            AuthKind::IdentityCenter | AuthKind::ExternalIdp => {
                if let Some(arn) = &st.login.profile_arn {
                    return own(arn);
                }
                match &st.lap {
                    Lap::Found(arn) => Ok(Some(arn.clone())),
                    Lap::Invalid(e) => Err(e.clone()),
                    Lap::NotTried | Lap::NotFound | Lap::Failed => Ok(None),
                }
            }
        }
    }

    /// IdC and external IdP logins without an ARN of their own ask List-Available-Profiles once.
    pub(super) fn ensure_profile_arn(&self) {
        if !matches!(self.kind, AuthKind::IdentityCenter | AuthKind::ExternalIdp)
            || self.explicit_arn.is_some()
        {
            return;
        }
        let needed = |st: &State| st.login.profile_arn.is_none() && matches!(st.lap, Lap::NotTried);
        if !needed(&self.lock_state()) {
            return;
        }
        let _gate = lock(&self.gate);
        let token = {
            let st = self.lock_state();
            if !needed(&st) {
                return;
            }
            match &st.login.access_token {
                Some(t) => t.clone(),
                None => return,
            }
        };
        let base = self
            .settings
            .management_base(&self.settings.api_region(&self.region, None));
        let result = refresh::list_available_profiles(
            &self.agent,
            &base,
            &token,
            self.kind == AuthKind::ExternalIdp,
        );
        let lap = match result {
            Ok(Some(arn)) => match check_profile_arn(
                &arn,
                "the profile ARN from List-Available-Profiles (set PROFILE_ARN to override it)",
            ) {
                Ok(()) => {
                    log::info!(
                        "auth[{}]: profile ARN {arn} from List-Available-Profiles",
                        self.name
                    );
                    Lap::Found(arn)
                }
                Err(e) => Lap::Invalid(e),
            },
            Ok(None) => {
                log::warn!(
                    "auth[{}]: List-Available-Profiles returned no profile; set PROFILE_ARN if Kiro asks for one",
                    self.name
                );
                Lap::NotFound
            }
            Err(e) => {
                log::warn!("auth[{}]: List-Available-Profiles failed: {e}", self.name);
                Lap::Failed
            }
        };
        self.lock_state().lap = lap;
    }
}
