//! End-to-end: model names Kiro does not list (`docs/kiro-wire.md#model-names`). A name resolves
//! to Kiro's id, its normalised form, a `MODEL_ALIASES` entry, or (by default) the newest listed
//! model of its family, and the client is told which model served it; only when nothing
//! resolves is it a 404 naming the valid models.

mod common;
mod fake_kiro;

use std::time::{Duration, Instant};

use common::{Gateway, KEY};
use fake_kiro::{FakeKiro, DEFAULT_TEXT};
use serde_json::{json, Value};

/// A fake that lists only older models: no Opus 4.8, no Sonnet 5, no 3.5 Haiku.
fn older_models() -> Vec<Value> {
    [
        "claude-sonnet-4.5",
        "claude-opus-4.5",
        "claude-opus-4.7",
        "claude-haiku-4.5",
    ]
    .iter()
    .map(|id| {
        json!({"modelId": id, "modelName": id,
                         "tokenLimits": {"maxInputTokens": 200000, "maxOutputTokens": 64000}})
    })
    .collect()
}

/// The gateway, once it has replaced its built-in list with the fake's.
fn start(env: &[(&str, &str)]) -> (FakeKiro, Gateway) {
    let fake = FakeKiro::start();
    fake.set_models(older_models());
    let gw = Gateway::start(&fake.url(), env);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = gw.get("/v1/models");
        let ids: Vec<&str> = list["data"]
            .as_array()
            .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
            .unwrap_or_default();
        if !ids.contains(&"claude-opus-4.8") && ids.contains(&"claude-opus-4.7") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the model list never arrived: {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (fake, gw)
}

fn ask(gw: &Gateway, path: &str, model: &str) -> (u16, Vec<(String, String)>, Value) {
    let body = json!({"model": model, "max_tokens": 50,
                      "messages": [{"role": "user", "content": "Hi"}]});
    let (status, headers, text) = gw.post_raw(
        path,
        &[("authorization", &format!("Bearer {KEY}"))],
        body.to_string().as_bytes(),
    );
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn model_sent(fake: &FakeKiro) -> String {
    let sent = fake.last_request().unwrap().body;
    sent["conversationState"]["currentMessage"]["userInputMessage"]["modelId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn claude_code_default_names_are_served_by_the_newest_listed_model_of_their_family() {
    let (fake, gw) = start(&[]);
    for (requested, served) in [
        ("claude-opus-4-8", "claude-opus-4.7"),
        ("claude-sonnet-5", "claude-sonnet-4.5"),
        ("claude-3-5-haiku-20241022", "claude-haiku-4.5"),
    ] {
        let (status, headers, body) = ask(&gw, "/v1/messages", requested);
        assert_eq!(status, 200, "{requested}: {body}");
        assert_eq!(body["content"][0]["text"], DEFAULT_TEXT);
        // The client's own name is echoed; the header says who served it.
        assert_eq!(body["model"], requested);
        assert_eq!(
            header(&headers, "x-kiro-gateway-model"),
            Some(served),
            "{requested}"
        );
        assert_eq!(model_sent(&fake), served);
    }
    assert_eq!(
        gw.logs()
            .matches("model 'claude-opus-4-8' is not listed")
            .count(),
        1
    );
    // Logged once per name, however often it is asked for.
    ask(&gw, "/v1/messages", "claude-opus-4-8");
    assert_eq!(
        gw.logs()
            .matches("model 'claude-opus-4-8' is not listed")
            .count(),
        1
    );
}

#[test]
fn a_listed_name_is_served_as_is_without_the_header() {
    let (fake, gw) = start(&[]);
    let (status, headers, _) = ask(&gw, "/v1/chat/completions", "claude-opus-4-7");
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-kiro-gateway-model"), None);
    assert_eq!(model_sent(&fake), "claude-opus-4.7");
}

#[test]
fn model_aliases_map_a_name_to_a_kiro_id() {
    let (fake, gw) = start(&[(
        "MODEL_ALIASES",
        "gpt-4o=claude-sonnet-4.5, claude-opus-4-8=claude-opus-4.5",
    )]);
    let (status, headers, _) = ask(&gw, "/v1/chat/completions", "gpt-4o");
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "x-kiro-gateway-model"),
        Some("claude-sonnet-4.5")
    );
    assert_eq!(model_sent(&fake), "claude-sonnet-4.5");
    // An alias comes before the family fallback.
    ask(&gw, "/v1/chat/completions", "claude-opus-4-8");
    assert_eq!(model_sent(&fake), "claude-opus-4.5");
}

#[test]
fn with_the_fallback_off_an_unlisted_name_is_a_404_naming_the_valid_models() {
    let (fake, gw) = start(&[("MODEL_FALLBACK", "off")]);
    let (status, _, body) = ask(&gw, "/v1/chat/completions", "claude-opus-4-8");
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("claude-opus-4.7"));
    assert!(fake.requests().is_empty());
}

#[test]
fn a_name_of_no_listed_family_is_still_a_404() {
    let (fake, gw) = start(&[]);
    let (status, _, body) = ask(&gw, "/v1/messages", "mistral-large");
    assert_eq!(status, 404, "{body}");
    assert!(fake.requests().is_empty());
}

#[test]
fn a_bad_model_aliases_setting_stops_the_start_naming_it() {
    let mut env = common::base_env("http://127.0.0.1:9");
    env.push(("MODEL_ALIASES".into(), "gpt-4o".into()));
    let (code, out) = common::run_to_exit(&env, &[]);
    assert_ne!(code, 0);
    assert!(out.contains("MODEL_ALIASES entry 'gpt-4o'"), "{out}");
}
