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
