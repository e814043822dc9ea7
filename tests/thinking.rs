//! End-to-end: extended thinking through `/v1/chat/completions` against the fake Kiro (issue 5):
//! prompt-tag reasoning (tags injected into the request, the block parsed out of the reply however
//! the frames split it, each `FAKE_REASONING_HANDLING` mode) and native reasoning (asked for per
//! the model's schema, reasoning events surfaced, signed reasoning replayed in history).

mod common;
mod fake_kiro;

use std::time::Duration;

use common::{Gateway, SseEvent};
use fake_kiro::{Ev, FakeKiro, Reply};
use serde_json::{json, Value};

const THOUGHT: &str = "Let me plan: 2+2 is «4».";
const ANSWER: &str = "The answer is 4.";

fn reply_text() -> String {
    format!("<thinking>{THOUGHT}</thinking>\n\n{ANSWER}")
}

fn ask(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream,
           "messages": [{"role": "user", "content": "What is 2+2?"}]})
}

/// A reply whose text arrives in these frames, then the usual usage tail.
fn reply_in_frames(frames: &[&str]) -> Reply {
    let mut events: Vec<Ev> = frames.iter().map(|f| Ev::text(f)).collect();
    events.push(Ev::Metering(0.1));
    events.push(Ev::ContextUsage(1.0));
    Reply::events(events)
}

/// What the client saw: (content, reasoning_content) from a stream or a completion.
#[derive(Debug, PartialEq)]
struct Seen {
    content: String,
    reasoning: Option<String>,
}

fn from_stream(events: &[SseEvent]) -> Seen {
    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(SseEvent::json)
        .collect();
    let field = |name: &str| -> Vec<String> {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][name].as_str())
            .map(str::to_string)
            .collect()
    };
    let reasoning = field("reasoning_content");
    assert!(
        reasoning.iter().all(|r| !r.is_empty()),
        "no empty reasoning deltas"
    );
    assert!(
        field("content").iter().all(|c| !c.is_empty()),
        "no empty content deltas"
    );
    Seen {
        content: field("content").concat(),
        reasoning: (!reasoning.is_empty()).then(|| reasoning.concat()),
    }
}

fn from_completion(body: &Value) -> Seen {
    let message = &body["choices"][0]["message"];
    Seen {
        content: message["content"].as_str().unwrap_or_default().to_string(),
        reasoning: message["reasoning_content"].as_str().map(str::to_string),
    }
}

fn run(gw: &Gateway, model: &str, stream: bool) -> Seen {
    if stream {
        from_stream(&gw.stream("/v1/chat/completions", &ask(model, stream)))
    } else {
        let (status, body) = gw.post("/v1/chat/completions", &ask(model, stream));
        assert_eq!(status, 200, "{body}");
        from_completion(&body)
    }
}

/// Every split of the reply text into two frames (at each character), then one frame per
/// character: `(description, frames)`.
fn splits() -> Vec<(String, Vec<String>)> {
    let text = reply_text();
    let mut out: Vec<(String, Vec<String>)> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .map(|i| {
            (
                format!("split at byte {i}"),
                vec![text[..i].to_string(), text[i..].to_string()],
            )
        })
        .collect();
    out.push((
        "one frame per character".into(),
        text.chars().map(String::from).collect(),
    ));
    out
}

/// Pushes one reply per split (the gateway answers them in order) and checks what the client
/// saw for each, streamed and (every third split) not streamed.
fn check_every_split(handling: &str, expected: Seen) {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING_HANDLING", handling)]);
    for (n, (what, frames)) in splits().into_iter().enumerate() {
        let frames: Vec<&str> = frames.iter().map(String::as_str).collect();
        for stream in [true, false] {
            if !stream && n % 3 != 0 {
                continue;
            }
            fake.push_reply(reply_in_frames(&frames));
            let seen = run(&gw, "claude-sonnet-4-5", stream);
            assert_eq!(seen, expected, "{handling}, {what}, stream={stream}");
        }
    }
    assert_eq!(fake.pending_replies(), 0);
}

// ------------------------------------------------------------------------------------------
// Prompt-tag reasoning: the reply side
// ------------------------------------------------------------------------------------------

#[test]
fn as_reasoning_content_mode_parses_the_block_at_every_split() {
    check_every_split(
        "as_reasoning_content",
        Seen {
            content: ANSWER.into(),
            reasoning: Some(THOUGHT.into()),
        },
    );
}

#[test]
fn remove_mode_drops_the_block_at_every_split() {
    check_every_split(
        "remove",
        Seen {
            content: ANSWER.into(),
            reasoning: None,
        },
    );
}

#[test]
fn pass_mode_keeps_the_tags_in_the_content_at_every_split() {
    check_every_split(
        "pass",
        Seen {
            content: format!("<thinking>{THOUGHT}</thinking>{ANSWER}"),
            reasoning: None,
        },
    );
}

#[test]
fn strip_tags_mode_sends_the_thinking_as_content_at_every_split() {
    check_every_split(
        "strip_tags",
        Seen {
            content: format!("{THOUGHT}{ANSWER}"),
            reasoning: None,
        },
    );
}

#[test]
fn a_tag_later_in_the_reply_is_plain_text() {
    let fake = FakeKiro::start();
    let text = "Sure. <thinking>not a block</thinking> done";
    fake.push_reply(reply_in_frames(&[
        "Sure. <thin",
        "king>not a block</thinking> done",
    ]));
    let gw = Gateway::start(&fake.url(), &[]);
    let seen = run(&gw, "claude-sonnet-4-5", true);
    assert_eq!(
        seen,
        Seen {
            content: text.into(),
            reasoning: None
        }
    );
}

#[test]
fn a_reply_cut_inside_the_block_still_surfaces_the_thinking() {
    let fake = FakeKiro::start();
    fake.push_reply(reply_in_frames(&["<thinking>half a thou", "ght"]));
    fake.push_reply(reply_in_frames(&["<thinking>half a thou", "ght"]));
    let gw = Gateway::start(&fake.url(), &[]);
    for stream in [true, false] {
        let seen = run(&gw, "claude-sonnet-4-5", stream);
        assert_eq!(seen.reasoning.as_deref(), Some("half a thought"));
        assert_eq!(seen.content, "");
    }
}

// ------------------------------------------------------------------------------------------
// Prompt-tag reasoning: the request side
// ------------------------------------------------------------------------------------------

#[test]
fn thinking_tags_are_injected_into_the_current_message_only() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING_MAX_TOKENS", "1234")]);
    let body = json!({"model": "claude-sonnet-4-5", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "What is 2+2?"}]});
    assert_eq!(gw.post("/v1/chat/completions", &body).0, 200);
    let sent = fake.last_request().unwrap();
    let content = sent.user_content().unwrap();
    assert!(
        content.starts_with(
            "<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>1234</max_thinking_length>\n<thinking_instruction>"
        ),
        "{content}"
    );
    assert!(
        content.contains("</thinking_instruction>\n\nWhat is 2+2?"),
        "{content}"
    );
    let history = sent.body["conversationState"]["history"]
        .as_array()
        .unwrap();
    let first = history[0]["userInputMessage"]["content"].as_str().unwrap();
    assert!(!first.contains("<thinking_mode>enabled"), "{first}");
    assert!(first.contains("# Extended Thinking Mode"), "{first}");
    assert!(sent.body.get("additionalModelRequestFields").is_none());
}

#[test]
fn fake_reasoning_false_injects_no_tags_and_parses_nothing() {
    let fake = FakeKiro::start();
    fake.push_reply(reply_in_frames(&["<thinking>x</thinking>", "y"]));
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    let seen = run(&gw, "claude-sonnet-4-5", true);
    assert_eq!(seen.content, "<thinking>x</thinking>y");
    assert_eq!(seen.reasoning, None);
    let sent = fake.last_request().unwrap();
    let raw = sent.body.to_string();
    assert!(
        !raw.contains("thinking_mode") && !raw.contains("Extended Thinking"),
        "{raw}"
    );
    let content = sent.user_content().unwrap();
    assert!(content.ends_with("\n\nWhat is 2+2?"), "{content}");
}

#[test]
fn reasoning_effort_none_turns_the_tags_off_for_one_request() {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[]);
    let mut body = ask("claude-sonnet-4-5", false);
    body["reasoning_effort"] = json!("none");
    assert_eq!(gw.post("/v1/chat/completions", &body).0, 200);
    let content = fake.last_request().unwrap().user_content().unwrap();
    assert!(!content.contains("<thinking_mode>enabled"), "{content}");
    assert!(!content.contains("Extended Thinking Mode"), "{content}");
}

// ------------------------------------------------------------------------------------------
// Native reasoning
// ------------------------------------------------------------------------------------------

/// A gateway that has fetched the fake's model list (so opus-4.8 has its schema).
fn gateway_with_models(fake: &FakeKiro) -> Gateway {
    let gw = Gateway::start(&fake.url(), &[]);
    assert!(
        gw.wait_logs(|l| l.contains("model list: 4 models from Kiro"), 20),
        "the gateway never fetched the model list:\n{}",
        gw.logs()
    );
    let (_, models) = gw.get("/v1/models");
    assert!(models.to_string().contains("claude-opus-4.8"), "{models}");
    gw
}

fn with_effort(model: &str, effort: &str) -> Value {
    let mut body = ask(model, false);
    body["reasoning_effort"] = json!(effort);
    body
}

#[test]
fn native_reasoning_is_requested_per_the_model_schema() {
    let fake = FakeKiro::start();
    let gw = gateway_with_models(&fake);

    let (status, resp) = gw.post(
        "/v1/chat/completions",
        &with_effort("claude-opus-4-8", "high"),
    );
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap();
    assert_eq!(sent.model_id().as_deref(), Some("claude-opus-4.8"));
    assert_eq!(
        sent.body["additionalModelRequestFields"],
        json!({"output_config": {"effort": "high"},
               "thinking": {"type": "adaptive", "display": "summarized"}})
    );
    let raw = sent.body.to_string();
    assert!(
        !raw.contains("thinking_mode") && !raw.contains("Extended Thinking"),
        "{raw}"
    );

    // Mapped onto the schema's enum, nearest value upward.
    gw.post(
        "/v1/chat/completions",
        &with_effort("claude-opus-4.8", "minimal"),
    );
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        sent["additionalModelRequestFields"]["output_config"]["effort"],
        "low"
    );

    // The GPT family has its own field.
    gw.post(
        "/v1/chat/completions",
        &with_effort("gpt-5.6-sol", "medium"),
    );
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        sent["additionalModelRequestFields"],
        json!({"reasoning": {"effort": "medium"}})
    );

    // Nothing asked: nothing sent, and no tags either for a model with native reasoning.
    gw.post("/v1/chat/completions", &ask("claude-opus-4.8", false));
    let sent = fake.last_request().unwrap().body;
    assert!(sent.get("additionalModelRequestFields").is_none(), "{sent}");
    assert!(!sent.to_string().contains("thinking_mode"));
}

#[test]
fn a_model_without_a_schema_never_gets_the_field() {
    let fake = FakeKiro::start();
    let gw = gateway_with_models(&fake);
    for effort in ["high", "max", "none"] {
        let (status, resp) = gw.post(
            "/v1/chat/completions",
            &with_effort("claude-sonnet-4.5", effort),
        );
        assert_eq!(status, 200, "{resp}");
        let sent = fake.last_request().unwrap();
        assert!(
            sent.body.get("additionalModelRequestFields").is_none(),
            "{effort}"
        );
        let tagged = sent.user_content().unwrap().starts_with("<thinking_mode>");
        assert_eq!(tagged, effort != "none", "{effort}");
    }
}

fn native_reply() -> Reply {
    Reply::events(vec![
        Ev::reasoning("Let me "),
        Ev::reasoning("think it through."),
        Ev::reasoning_signature("sig-EqQBCkgIARABGAIiQ"),
        Ev::text("<thinking>literal</thinking> "),
        Ev::text("Four."),
        Ev::Metering(0.5),
        Ev::Metadata {
            input: 30,
            output: 12,
        },
    ])
}

#[test]
fn native_reasoning_events_surface_as_reasoning_content() {
    let fake = FakeKiro::start();
    fake.push_replies([native_reply(), native_reply()]);
    let gw = gateway_with_models(&fake);

    let mut body = with_effort("claude-opus-4.8", "high");
    body["stream"] = json!(true);
    let events = gw.stream("/v1/chat/completions", &body);
    let seen = from_stream(&events);
    assert_eq!(seen.reasoning.as_deref(), Some("Let me think it through."));
    // No tags were injected, so a tag in the text is the model's own text.
    assert_eq!(seen.content, "<thinking>literal</thinking> Four.");
    let signatures: Vec<String> = events
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["reasoning_signature"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(signatures, ["sig-EqQBCkgIARABGAIiQ"]);
    let reasoning_deltas = events
        .iter()
        .filter(|e| e.json()["choices"][0]["delta"]["reasoning_content"].is_string())
        .count();
    assert_eq!(reasoning_deltas, 2, "reasoning streamed as it arrived");

    let (status, resp) = gw.post(
        "/v1/chat/completions",
        &with_effort("claude-opus-4.8", "high"),
    );
    assert_eq!(status, 200, "{resp}");
    let message = &resp["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "Let me think it through.");
    assert_eq!(message["reasoning_signature"], "sig-EqQBCkgIARABGAIiQ");
    assert_eq!(message["content"], "<thinking>literal</thinking> Four.");
}

#[test]
fn signed_reasoning_is_replayed_nested_in_history() {
    let fake = FakeKiro::start();
    let gw = gateway_with_models(&fake);
    let weather = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let body = json!({"model": "claude-opus-4.8", "reasoning_effort": "high", "tools": [weather],
        "messages": [
            {"role": "user", "content": "weather in Rome, and then in Oslo?"},
            {"role": "assistant", "content": null,
             "reasoning_content": "I need the weather tool.",
             "reasoning_signature": "sig-first",
             "tool_calls": [{"id": "c1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "warm"},
            {"role": "assistant", "content": "Rome is warm.",
             "reasoning_content": "Unsigned thoughts are not replayed."},
            {"role": "user", "content": "and Oslo?"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    let history = sent["conversationState"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 4, "{history:?}");
    let first = &history[1]["assistantResponseMessage"];
    assert_eq!(
        first["reasoningContent"],
        json!({"reasoningText": {"text": "I need the weather tool.", "signature": "sig-first"}})
    );
    assert_eq!(first["toolUses"][0]["toolUseId"], "c1");
    assert!(history[3]["assistantResponseMessage"]
        .get("reasoningContent")
        .is_none());
    assert!(!sent.to_string().contains("Unsigned thoughts"));
}

#[test]
fn a_signature_without_text_round_trips() {
    // GPT-5.6 sends its opaque blob in `signature` and no text (addendum §7).
    let fake = FakeKiro::start();
    fake.push_reply(Reply::events(vec![
        Ev::reasoning_signature(".KTR~~opaque"),
        Ev::text("Done."),
        Ev::Metering(0.1),
    ]));
    let gw = gateway_with_models(&fake);
    let (_, resp) = gw.post("/v1/chat/completions", &with_effort("gpt-5.6-sol", "low"));
    let message = resp["choices"][0]["message"].clone();
    assert_eq!(message["reasoning_signature"], ".KTR~~opaque");
    assert!(message.get("reasoning_content").is_none(), "{message}");
    let body = json!({"model": "gpt-5.6-sol", "reasoning_effort": "low", "messages": [
        {"role": "user", "content": "go"}, message, {"role": "user", "content": "again"}]});
    let (status, resp) = gw.post("/v1/chat/completions", &body);
    assert_eq!(status, 200, "{resp}");
    let sent = fake.last_request().unwrap().body;
    assert_eq!(
        sent["conversationState"]["history"][1]["assistantResponseMessage"]["reasoningContent"],
        json!({"reasoningText": {"text": "", "signature": ".KTR~~opaque"}})
    );
}

#[test]
fn reasoning_before_a_tool_call_is_streamed_before_it() {
    let fake = FakeKiro::start();
    let mut events = vec![
        Ev::reasoning("I should call it."),
        Ev::Sleep(Duration::from_millis(20)),
    ];
    events.extend(Ev::tool_call("t1", "get_weather", r#"{"city":"Rome"}"#, 3));
    events.push(Ev::Metering(0.1));
    fake.push_reply(Reply::events(events));
    let gw = gateway_with_models(&fake);
    let mut body = with_effort("claude-opus-4.8", "high");
    body["stream"] = json!(true);
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object"}}}]);
    let events = gw.stream("/v1/chat/completions", &body);
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| {
            let d = e.json()["choices"][0]["delta"].clone();
            if d["reasoning_content"].is_string() {
                Some("reasoning")
            } else if d["tool_calls"].is_array() {
                Some("tool")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(kinds.first(), Some(&"reasoning"));
    assert!(kinds[1..].iter().all(|k| *k == "tool"), "{kinds:?}");
    let last = events[events.len() - 2].json();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
}
