//! End-to-end: the model list is asked the IDE's way (AWS JSON 1.0 on the management host,
//! paginated by `nextToken`), and the REST form when that is refused.

mod common;
mod fake_kiro;

use std::time::Duration;

use common::Gateway;
use fake_kiro::{FakeKiro, CONTROL_PLANE_MODELS, DEFAULT_PROFILE_ARN};

/// The model ids `/v1/models` lists, once gpt-5.6-sol (on the fake's second page) is among them.
fn listed_ids(gw: &Gateway) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..100 {
        let (_, body) = gw.get("/v1/models");
        ids = body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if ids.iter().any(|i| i == "gpt-5.6-sol") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ids
}

#[test]
fn models_are_listed_over_aws_json_page_by_page() {
    let fake = FakeKiro::start();
    fake.set_models_page_size(2);
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.models_count() >= 2));
    assert!(listed_ids(&gw).iter().any(|i| i == "gpt-5.6-sol"));
    let calls = fake.management_requests();
    let pages: Vec<_> = calls
        .iter()
        .filter(|r| r.header("x-amz-target").as_deref() == Some(CONTROL_PLANE_MODELS))
        .collect();
    assert!(pages.len() >= 2, "{calls:#?}");
    for p in &pages {
        assert_eq!((p.method.as_str(), p.path.as_str()), ("POST", "/"));
        assert_eq!(
            p.header("content-type").as_deref(),
            Some("application/x-amz-json-1.0")
        );
        assert_eq!(p.body["origin"], "AI_EDITOR");
        assert_eq!(p.body["profileArn"], DEFAULT_PROFILE_ARN);
        assert!(p.bearer().is_some());
    }
    assert!(pages[0].body.get("nextToken").is_none());
    assert_eq!(pages[1].body["nextToken"], "fake-next-2");
    assert!(calls.iter().all(|r| r.path != "/List-Available-Models"));
}

#[test]
fn a_refused_aws_json_list_falls_back_to_the_rest_form() {
    let fake = FakeKiro::start();
    fake.refuse_control_plane_models(true);
    fake.set_models_page_size(2);
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(fake.wait_for(Duration::from_secs(10), |f| f.models_count() >= 3));
    assert!(listed_ids(&gw).iter().any(|i| i == "gpt-5.6-sol"));
    let calls = fake.management_requests();
    let first = calls
        .iter()
        .find(|r| r.header("x-amz-target").is_some())
        .unwrap();
    assert_eq!(first.status, 400);
    let rest: Vec<_> = calls
        .iter()
        .filter(|r| r.path == "/List-Available-Models")
        .collect();
    assert!(rest.len() >= 2, "{calls:#?}");
    assert_eq!(rest[0].query_param("origin").as_deref(), Some("AI_EDITOR"));
    assert_eq!(
        rest[1].query_param("nextToken").as_deref(),
        Some("fake-next-2")
    );
}

/// GET with Anthropic's headers, as the anthropic SDKs send them.
fn get_anthropic(gw: &Gateway, path: &str) -> (u16, serde_json::Value) {
    let resp = common::agent()
        .get(&format!("{}{path}", gw.url))
        .header("x-api-key", common::KEY)
        .header("anthropic-version", "2023-06-01")
        .call()
        .expect("request");
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// `models.list()` of the anthropic SDKs reads Anthropic's page shape; `models.retrieve(id)` of
/// both SDKs asks `/v1/models/{id}`, which answers for every name a request may use.
#[test]
fn models_are_listed_and_retrieved_in_each_apis_shape() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("MODEL_FALLBACK", "off")]);
    assert!(gw.wait_logs(|l| l.contains("models from Kiro"), 10));

    let (status, list) = get_anthropic(&gw, "/v1/models?limit=20");
    assert_eq!(status, 200, "{list}");
    let data = list["data"].as_array().unwrap();
    let sonnet = data
        .iter()
        .find(|m| m["id"] == "claude-sonnet-4.5")
        .unwrap();
    assert_eq!(sonnet["type"], "model", "{sonnet}");
    assert_eq!(sonnet["lifecycle"], "active", "{sonnet}");
    assert_eq!(sonnet["display_name"], "Claude Sonnet 4.5", "{sonnet}");
    assert_eq!(sonnet["max_input_tokens"], 200000, "{sonnet}");
    assert_eq!(sonnet["max_tokens"], 64000, "{sonnet}");
    assert!(sonnet["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(list["has_more"], false);
    assert_eq!(list["first_id"], data[0]["id"]);
    assert_eq!(list["last_id"], data[data.len() - 1]["id"]);

    let (status, one) = gw.get("/v1/models/claude-sonnet-4-5-20250929");
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], "claude-sonnet-4-5-20250929");
    assert_eq!(one["object"], "model");
    let (status, one) = get_anthropic(&gw, "/v1/models/claude-sonnet-4.5");
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["type"], "model");
    assert_eq!(one["display_name"], "Claude Sonnet 4.5");

    let (status, missing) = gw.get("/v1/models/no-such-model");
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "model_not_found", "{missing}");
    let (status, missing) = get_anthropic(&gw, "/v1/models/no-such-model");
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["type"], "error");
    assert_eq!(missing["error"]["type"], "not_found_error", "{missing}");
    assert!(fake.requests().is_empty());
}
