//! Kiro's model list, asked the way the IDE asks it: `ListAvailableModels` on the management host
//! over AWS JSON 1.0 (`POST /` with `x-amz-target`), paginated with `nextToken`; when that form is
//! refused, the older REST form `GET /List-Available-Models` (`docs/kiro-wire.md#model-list`).

use serde_json::{json, Value};

use crate::auth::{Credentials, TokenStore};
use crate::config::{ClientProfile, UpstreamSettings};
use crate::error::Error;
use crate::kiro::models::{parse_models_page, ModelInfo};
use crate::kiro::{answer, identity};
use crate::util::percent_encode;

/// The control-plane operation of the IDE.
const TARGET: &str = "KiroControlPlaneBearerService.ListAvailableModels";
/// Pages asked for at most (a server that keeps sending tokens must not loop us forever).
const MAX_PAGES: usize = 50;
/// The largest model list body read.
const MAX_BODY: u64 = 16 * 1024 * 1024;

/// What every page request carries.
struct Ask<'a> {
    base: String,
    origin: &'static str,
    ua: String,
    amz_ua: String,
    creds: &'a Credentials,
}

/// Every model Kiro lists for this login: the control-plane form, else the REST form.
pub fn list_models(
    config: &UpstreamSettings,
    store: &TokenStore,
    agent: &ureq::Agent,
) -> Result<Vec<ModelInfo>, Error> {
    let creds = store.credentials()?;
    let profile = identity::effective_profile(config, &creds);
    let (ua, amz_ua) = identity::control_plane_agents(config, profile, &creds.machine_id);
    let ask = Ask {
        base: config.management_base(&creds.api_region),
        origin: if profile == ClientProfile::Cli {
            "KIRO_CLI"
        } else {
            "AI_EDITOR"
        },
        ua,
        amz_ua,
        creds: &creds,
    };
    match all_pages(|next| control_plane_page(agent, &ask, next)) {
        Err(Error::Upstream { status, .. }) if refused(status) => {
            log::info!(
                "ListAvailableModels over AWS JSON was refused ({status}); asking the REST form"
            );
            all_pages(|next| rest_page(agent, &ask, next))
        }
        other => other,
    }
}

/// A refusal of the form of the call rather than of the login or the load.
fn refused(status: u16) -> bool {
    (400..500).contains(&status) && status != 401 && status != 429
}

fn all_pages(
    mut page: impl FnMut(Option<&str>) -> Result<Value, Error>,
) -> Result<Vec<ModelInfo>, Error> {
    let mut all = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (models, token) = parse_models_page(&page(next.as_deref())?)?;
        all.extend(models);
        match token {
            Some(t) if !t.is_empty() => next = Some(t),
            _ => break,
        }
    }
    Ok(all)
}

fn control_plane_page(agent: &ureq::Agent, ask: &Ask, next: Option<&str>) -> Result<Value, Error> {
    let mut body = json!({ "origin": ask.origin });
    if let Some(arn) = &ask.creds.profile_arn {
        body["profileArn"] = Value::from(arn.clone());
    }
    if let Some(t) = next {
        body["nextToken"] = Value::from(t);
    }
    let req = with_headers(agent.post(&format!("{}/", ask.base)), ask)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", TARGET);
    read_page(req.send(body.to_string().as_bytes()))
}

fn rest_page(agent: &ureq::Agent, ask: &Ask, next: Option<&str>) -> Result<Value, Error> {
    let mut url = format!(
        "{}/List-Available-Models?origin={}&maxResults=50",
        ask.base, ask.origin
    );
    if let Some(arn) = &ask.creds.profile_arn {
        url.push_str(&format!("&profileArn={}", percent_encode(arn)));
    }
    if let Some(t) = next {
        url.push_str(&format!("&nextToken={}", percent_encode(t)));
    }
    read_page(with_headers(agent.get(&url), ask).call())
}

fn with_headers<B>(req: ureq::RequestBuilder<B>, ask: &Ask) -> ureq::RequestBuilder<B> {
    let mut req = req
        .header(
            "authorization",
            &format!("Bearer {}", ask.creds.access_token),
        )
        .header("accept", "application/json")
        .header("user-agent", &ask.ua)
        .header("x-amz-user-agent", &ask.amz_ua);
    if let Some((k, v)) = identity::token_type_header(ask.creds.kind) {
        req = req.header(k, v);
    }
    req
}

fn read_page(sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, Error> {
    let text = answer::ok_body(sent, MAX_BODY)?;
    serde_json::from_str(&text).map_err(|e| Error::Internal(format!("ListAvailableModels: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_form_fall_back() {
        assert!(refused(400) && refused(403) && refused(404));
        assert!(!refused(401) && !refused(429) && !refused(500));
    }

    #[test]
    fn pages_follow_next_tokens_until_none() {
        let mut seen = Vec::new();
        let models = all_pages(|next| {
            seen.push(next.map(String::from));
            Ok(match next {
                None => json!({"models": [{"modelId": "a"}], "nextToken": "t1"}),
                Some(_) => json!({"models": [{"modelId": "b"}]}),
            })
        })
        .unwrap();
        assert_eq!(models.len(), 2);
        assert_eq!(seen, vec![None, Some("t1".to_string())]);
    }
}
