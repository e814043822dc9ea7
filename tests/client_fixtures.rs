//! Replays of what real clients sent (recorded from Claude Code, Codex CLI, opencode, aider, the
//! Cline and Continue CLIs, the OpenAI Agents SDK and pydantic-ai, see `tests/fixtures/clients/`;
//! Roo Code's, which runs only inside VS Code, are built from its public source and say so)
//! against the gateway and the fake Kiro: the status and event shapes each client gets back, and
//! what Kiro received.
//!
//! A fixture holds the request path, the headers that matter and the whole body, exactly as the
//! client sent it (host paths and ids replaced). Cases the gateway cannot serve yet are ignored
//! with the answer it gives today.

mod common;
mod fake_kiro;

use common::{parse_sse, Gateway, SseEvent, KEY};
use fake_kiro::{Ev, FakeKiro, Recorded, Reply};
use serde_json::Value;

struct Fixture {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

fn fixture(name: &str) -> Fixture {
    let file = format!(
        "{}/tests/fixtures/clients/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let recorded: Value = serde_json::from_str(&text).unwrap();
    let headers = recorded["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    Fixture {
        path: recorded["path"].as_str().unwrap().to_string(),
        headers,
        body: recorded["body"].clone(),
    }
}

fn start() -> (FakeKiro, Gateway) {
    let fake = FakeKiro::start();
    let gw = Gateway::start(&fake.url(), &[("FAKE_REASONING", "false")]);
    (fake, gw)
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Answer {
    fn events(&self) -> Vec<SseEvent> {
        assert_eq!(self.status, 200, "status; body: {}", self.text);
        parse_sse(&self.text)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send the fixture as its client did, with the key where that client puts it.
fn replay(gw: &Gateway, fx: &Fixture) -> Answer {
    let bearer = format!("Bearer {KEY}");
    let mut headers: Vec<(&str, &str)> = fx
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .filter(|(k, _)| *k != "content-type")
        .collect();
    if fx.path.starts_with("/v1/messages") {
        headers.push(("x-api-key", KEY));
    } else {
        headers.push(("authorization", &bearer));
    }
    let (status, headers, text) = gw.post_raw(&fx.path, &headers, fx.body.to_string().as_bytes());
    Answer {
        status,
        headers,
        text,
    }
}

fn current(body: &Value) -> &Value {
    &body["conversationState"]["currentMessage"]["userInputMessage"]
}

/// The names of the tools Kiro was offered.
fn kiro_tool_names(rec: &Recorded) -> Vec<String> {
    current(&rec.body)["userInputMessageContext"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["toolSpecification"]["name"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The Kiro tool whose description starts with `description`.
fn kiro_tool_named_by_description(rec: &Recorded, description: &str) -> Option<String> {
    current(&rec.body)["userInputMessageContext"]["tools"]
        .as_array()?
        .iter()
        .find(|t| {
            t["toolSpecification"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with(description))
        })
        .and_then(|t| t["toolSpecification"]["name"].as_str())
        .map(str::to_string)
}

/// The JSON payloads of a Chat Completions stream, after checking it ends with `[DONE]`.
fn chat_chunks(events: &[SseEvent]) -> Vec<Value> {
    assert_eq!(
        events.last().map(|e| e.data.as_str()),
        Some("[DONE]"),
        "{events:?}"
    );
    events[..events.len() - 1]
        .iter()
        .map(SseEvent::json)
        .collect()
}

/// The event names of an Anthropic stream, after checking its frame: `message_start` first,
/// `message_stop` last.
fn anthropic_types(events: &[SseEvent]) -> Vec<String> {
    let types: Vec<String> = events
        .iter()
        .map(|e| e.event.clone().unwrap_or_default())
        .filter(|t| t != "ping")
        .collect();
    assert_eq!(
        types.first().map(String::as_str),
        Some("message_start"),
        "{types:?}"
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("message_stop"),
        "{types:?}"
    );
    types
}

/// The payloads of a Responses stream, after checking its frame: `response.created` first and
/// one terminal event last.
fn responses_events(events: &[SseEvent]) -> Vec<Value> {
    let data: Vec<Value> = events.iter().map(SseEvent::json).collect();
    assert_eq!(data[0]["type"], "response.created", "{data:?}");
    let last = data.last().unwrap();
    assert!(
        [
            "response.completed",
            "response.incomplete",
            "response.failed"
        ]
        .contains(&last["type"].as_str().unwrap_or("")),
        "{last}"
    );
    data
}

// ---- opencode ---------------------------------------------------------------------------------

#[test]
fn opencode_agent_turn_is_answered_with_its_ten_tools() {
    let (fake, gw) = start();
    let fx = fixture("opencode-run");
    let answer = replay(&gw, &fx);
    let chunks = chat_chunks(&answer.events());
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, fake_kiro::DEFAULT_TEXT);
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["stop"]);
    // stream_options.include_usage: the last chunk carries the usage and no choice.
    let last = chunks.last().unwrap();
    assert!(last["usage"]["prompt_tokens"].is_u64(), "{last}");
    let sent = fake.last_request().unwrap();
    assert_eq!(
        kiro_tool_names(&sent),
        [
            "bash",
            "edit",
            "glob",
            "grep",
            "read",
            "skill",
            "task",
            "todowrite",
            "webfetch",
            "write"
        ]
    );
    let content = current(&sent.body)["content"].as_str().unwrap();
    assert!(content.contains("You are OpenCode"), "{content}");
    assert!(content.ends_with("Create a file hello.txt containing hi\""));
}

#[test]
fn opencode_title_request_is_answered() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("opencode-title"));
    let chunks = chat_chunks(&answer.events());
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let sent = fake.last_request().unwrap();
    assert!(kiro_tool_names(&sent).is_empty());
    assert!(current(&sent.body)["content"]
        .as_str()
        .unwrap()
        .contains("You are a title generator"));
}

// ---- aider ------------------------------------------------------------------------------------

#[test]
fn aider_whole_file_request_is_answered() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("aider"));
    let chunks = chat_chunks(&answer.events());
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, fake_kiro::DEFAULT_TEXT);
    let sent = fake.last_request().unwrap();
    // The example exchange aider puts before the task reaches Kiro as history.
    let history = sent.body["conversationState"]["history"]
        .as_array()
        .unwrap();
    assert_eq!(history.len(), 6, "{history:?}");
    assert!(current(&sent.body)["content"]
        .as_str()
        .unwrap()
        .starts_with("Create a file hello.txt containing hi"));
}

// ---- Claude Code ------------------------------------------------------------------------------

#[test]
fn claude_code_default_request_is_answered() {
    let (fake, gw) = start();
    let fx = fixture("claude-code-default");
    let answer = replay(&gw, &fx);
    let types = anthropic_types(&answer.events());
    assert!(
        types.contains(&"content_block_delta".to_string()),
        "{types:?}"
    );
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    assert_eq!(names.len(), 24, "{names:?}");
    assert!(names.iter().any(|n| n == "Bash") && names.iter().any(|n| n == "Write"));
    // The system message after the user turn reaches Kiro in order, after the user's text.
    let content = current(&sent.body)["content"].as_str().unwrap();
    let user = content.find("<system-reminder>").expect("user text");
    let system = content
        .find("Available agent types for the Agent tool")
        .expect("system message text");
    assert!(user < system, "{content}");
}

#[test]
fn claude_code_mcp_tool_over_64_characters_is_called_by_its_own_name() {
    const LONG: &str =
        "mcp__weather_service_for_long_names__fetch_the_current_weather_report_for_a_given_city_name";
    let (fake, gw) = start();
    fake.set_reply_fn(|rec| {
        let name = kiro_tool_named_by_description(rec, "Weather report for a city.")?;
        Some(Reply::events(Ev::tool_call(
            "tooluse_mcp1",
            &name,
            r#"{"city":"Paris"}"#,
            2,
        )))
    });
    let answer = replay(&gw, &fixture("claude-code-mcp-long-tool-name"));
    let events = answer.events();
    anthropic_types(&events);
    let start = events
        .iter()
        .map(SseEvent::json)
        .find(|d| d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start["content_block"]["name"], LONG);
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    assert_eq!(names.len(), 25);
    assert!(names.iter().all(|n| n.len() <= 64), "{names:?}");
}

/// Claude Code 2.1.332 defers most of its tools (MCP tools, WebSearch, …) behind its ToolSearch
/// tool: they come with `defer_loading: true` and reach the model only once a `tool_reference`
/// in a tool result has loaded them. A `DeferredToolPlaceholder` that must never be called keeps
/// the mode on.
#[test]
fn claude_code_2_1_332_offers_kiro_only_the_tools_that_are_loaded() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("claude-code-2.1.332-default"));
    let types = anthropic_types(&answer.events());
    assert!(
        types.contains(&"content_block_delta".to_string()),
        "{types:?}"
    );
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    assert_eq!(names.len(), 11, "{names:?}");
    assert!(names.contains(&"ToolSearch".to_string()), "{names:?}");
    assert!(!names.contains(&"DeferredToolPlaceholder".to_string()));
    // The deferred tools are named in the system message that follows the user's text.
    let content = current(&sent.body)["content"].as_str().unwrap();
    let prompt = content.find("E2E_MCP").expect("the user's text");
    let deferred = content
        .find("The following deferred tools are now available via ToolSearch")
        .expect("the system message");
    assert!(prompt < deferred, "{content}");
}

#[test]
fn claude_code_tool_search_loads_the_mcp_tool_and_its_call_comes_back_by_name() {
    const LONG: &str =
        "mcp__weather_service_for_long_names__fetch_the_current_weather_report_for_a_given_city_name";
    let (fake, gw) = start();
    fake.set_reply_fn(|rec| {
        let name = kiro_tool_named_by_description(rec, "Weather report for a city.")?;
        Some(Reply::events(Ev::tool_call(
            "tooluse_mcp2",
            &name,
            r#"{"city":"Paris"}"#,
            2,
        )))
    });
    let answer = replay(&gw, &fixture("claude-code-2.1.332-tool-search"));
    let events = answer.events();
    anthropic_types(&events);
    let start = events
        .iter()
        .map(SseEvent::json)
        .find(|d| d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start["content_block"]["name"], LONG);
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    // The 11 tools loaded from the start, and the 5 a search loaded; never the placeholder.
    assert_eq!(names.len(), 16, "{names:?}");
    assert!(
        names.contains(&"WebSearch".to_string()) && names.contains(&"CronCreate".to_string()),
        "{names:?}"
    );
    assert!(!names.contains(&"DeferredToolPlaceholder".to_string()));
    assert!(names.iter().all(|n| n.len() <= 64), "{names:?}");
    let results = kiro_tool_results(&sent);
    assert!(
        results[0]
            .1
            .starts_with(&format!("Tool loaded: {LONG}\nTool loaded: CronCreate")),
        "{results:?}"
    );
    assert_eq!(results[1].1, "MCP says: 18 C, sunny");
}

/// Claude Code names the session with a structured answer (`output_config.format`, a JSON schema).
#[test]
fn claude_code_title_request_gets_an_answer_that_follows_its_schema() {
    let (fake, gw) = start();
    fake.set_reply_fn(|rec| {
        let name = kiro_tool_names(rec).into_iter().next()?;
        Some(Reply::events(Ev::tool_call(
            "tooluse_title1",
            &name,
            r#"{"title":"Notes file edits"}"#,
            2,
        )))
    });
    let answer = replay(&gw, &fixture("claude-code-2.1.332-title"));
    let events = answer.events();
    anthropic_types(&events);
    let data: Vec<Value> = events.iter().map(SseEvent::json).collect();
    let text: String = data
        .iter()
        .filter_map(|d| d["delta"]["text"].as_str())
        .collect();
    let title: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(title, serde_json::json!({"title": "Notes file edits"}));
    let stop = data.iter().find_map(|d| d["delta"]["stop_reason"].as_str());
    assert_eq!(stop, Some("end_turn"));
    // Kiro was offered exactly one tool: the answer, whose input schema is the requested one.
    assert_eq!(kiro_tool_names(&fake.last_request().unwrap()).len(), 1);
}

// ---- Codex CLI --------------------------------------------------------------------------------

#[test]
fn codex_default_model_name_is_served() {
    let (_fake, gw) = start();
    let answer = replay(&gw, &fixture("codex-default"));
    let data = responses_events(&answer.events());
    assert_eq!(data.last().unwrap()["type"], "response.completed");
}

#[test]
fn codex_default_request_is_answered() {
    let (fake, gw) = start();
    let mut fx = fixture("codex-default");
    fx.body["model"] = "claude-sonnet-4.5".into();
    let answer = replay(&gw, &fx);
    let data = responses_events(&answer.events());
    assert_eq!(data.last().unwrap()["type"], "response.completed");
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    // The tools of the `additional_tools` item, namespaces flattened.
    assert_eq!(names.len(), 12, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("exec")), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("spawn_agent")),
        "{names:?}"
    );
}

#[test]
fn codex_apply_patch_call_comes_back_as_a_custom_tool_call() {
    let patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n";
    let (fake, gw) = start();
    let input = serde_json::json!({ "input": patch }).to_string();
    fake.set_reply_fn(move |rec| {
        let name = kiro_tool_names(rec)
            .into_iter()
            .find(|n| n.ends_with("apply_patch"))?;
        Some(Reply::events(Ev::tool_call(
            "tooluse_patch1",
            &name,
            &input,
            3,
        )))
    });
    let mut fx = fixture("codex-gpt-5.5");
    fx.body["model"] = "claude-sonnet-4.5".into();
    let answer = replay(&gw, &fx);
    let data = responses_events(&answer.events());
    let types: Vec<&str> = data.iter().filter_map(|d| d["type"].as_str()).collect();
    assert!(
        types.contains(&"response.custom_tool_call_input.delta")
            && types.contains(&"response.custom_tool_call_input.done"),
        "{types:?}"
    );
    let done = data.last().unwrap();
    let call = &done["response"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "custom_tool_call")
        .cloned()
        .expect("a custom_tool_call item");
    assert_eq!(call["name"], "apply_patch");
    assert_eq!(call["input"], patch);
    let names = kiro_tool_names(&fake.last_request().unwrap());
    // Codex's web_search is served through Kiro's search (WEB_SEARCH=kiro), its other hosted
    // tools are left out.
    assert!(names.iter().any(|n| n == "web_search"), "{names:?}");
    let ignored = answer
        .header("x-kiro-gateway-ignored-tools")
        .unwrap_or_default();
    assert!(!ignored.contains("web_search"), "{ignored}");
    assert!(names.iter().any(|n| n == "tool_search"), "{names:?}");
}

#[test]
fn codex_namespaced_function_call_comes_back_with_its_namespace() {
    let (fake, gw) = start();
    fake.set_reply_fn(|rec| {
        let name = kiro_tool_names(rec)
            .into_iter()
            .find(|n| n.ends_with("spawn_agent"))?;
        Some(Reply::events(Ev::tool_call(
            "tooluse_ns1",
            &name,
            r#"{"message":"look around"}"#,
            2,
        )))
    });
    let answer = replay(&gw, &fixture("codex-unknown-model"));
    let data = responses_events(&answer.events());
    let done = data.last().unwrap();
    let call = done["response"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .cloned()
        .expect("a function_call item");
    assert_eq!(call["name"], "spawn_agent");
    assert_eq!(call["namespace"], "multi_agent_v1");
}

// ---- tool loops: the last request of each client's run of scripts/e2e_clients.sh ----------------

/// `(toolUseId, name, input)` of every tool call in Kiro's history.
fn kiro_tool_uses(rec: &Recorded) -> Vec<(String, String, Value)> {
    rec.body["conversationState"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["assistantResponseMessage"]["toolUses"].as_array())
        .flatten()
        .map(|u| {
            (
                u["toolUseId"].as_str().unwrap_or("").to_string(),
                u["name"].as_str().unwrap_or("").to_string(),
                u["input"].clone(),
            )
        })
        .collect()
}

/// `(toolUseId, text)` of every tool result Kiro got, history first.
fn kiro_tool_results(rec: &Recorded) -> Vec<(String, String)> {
    let state = &rec.body["conversationState"];
    let history = state["history"].as_array().unwrap();
    history
        .iter()
        .chain([&state["currentMessage"]])
        .filter_map(|e| e["userInputMessage"]["userInputMessageContext"]["toolResults"].as_array())
        .flatten()
        .map(|r| {
            let text: String = r["content"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["text"].as_str())
                .collect();
            (r["toolUseId"].as_str().unwrap_or("").to_string(), text)
        })
        .collect()
}

fn loop_ids() -> Vec<String> {
    (0..3).map(|i| format!("tooluse_e2e{i}")).collect()
}

#[test]
fn claude_code_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("claude-code-tool-loop"));
    anthropic_types(&answer.events());
    let sent = fake.last_request().unwrap();
    let uses = kiro_tool_uses(&sent);
    let names: Vec<&str> = uses.iter().map(|u| u.1.as_str()).collect();
    assert_eq!(names, ["Write", "Edit", "Bash"]);
    assert_eq!(uses[2].2["command"], "wc -l notes.txt > count.txt");
    let results = kiro_tool_results(&sent);
    let ids: Vec<String> = results.iter().map(|r| r.0.clone()).collect();
    assert_eq!(ids, loop_ids());
    assert_eq!(results[2].1, "(Bash completed with no output)");
    // The mid-conversation system message stays in the first user turn.
    let first = &sent.body["conversationState"]["history"][0]["userInputMessage"]["content"];
    assert!(first
        .as_str()
        .unwrap()
        .contains("<system-message>\nAvailable agent types"));
}

#[test]
fn codex_default_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let mut fx = fixture("codex-default-tool-loop");
    fx.body["model"] = "claude-sonnet-4.5".into();
    let answer = replay(&gw, &fx);
    let data = responses_events(&answer.events());
    assert_eq!(data.last().unwrap()["type"], "response.completed");
    let sent = fake.last_request().unwrap();
    let uses = kiro_tool_uses(&sent);
    assert_eq!(uses.len(), 3);
    // The code-mode `exec` tool of namespace `functions`, its JavaScript as the one string input.
    assert!(uses.iter().all(|u| u.1 == "functions__exec"), "{uses:?}");
    let script = uses[0].2["input"].as_str().unwrap();
    assert!(
        script.starts_with("const r = await tools.apply_patch("),
        "{script}"
    );
    let results = kiro_tool_results(&sent);
    let ids: Vec<String> = results.iter().map(|r| r.0.clone()).collect();
    assert_eq!(ids, loop_ids());
    assert!(results[0].1.starts_with("Script completed"), "{results:?}");
    assert!(kiro_tool_names(&sent).contains(&"functions__exec".to_string()));
}

#[test]
fn codex_apply_patch_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let mut fx = fixture("codex-gpt-5.5-tool-loop");
    fx.body["model"] = "claude-sonnet-4.5".into();
    let answer = replay(&gw, &fx);
    let data = responses_events(&answer.events());
    assert_eq!(data.last().unwrap()["type"], "response.completed");
    let sent = fake.last_request().unwrap();
    let uses = kiro_tool_uses(&sent);
    let names: Vec<&str> = uses.iter().map(|u| u.1.as_str()).collect();
    assert_eq!(names, ["apply_patch", "apply_patch", "exec_command"]);
    assert!(uses[0].2["input"]
        .as_str()
        .unwrap()
        .starts_with("*** Begin Patch\n*** Add File: notes.txt"));
    assert_eq!(uses[2].2["cmd"], "wc -l notes.txt > count.txt");
    let results = kiro_tool_results(&sent);
    assert!(
        results[0]
            .1
            .contains("Success. Updated the following files"),
        "{results:?}"
    );
}

#[test]
fn opencode_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("opencode-tool-loop"));
    chat_chunks(&answer.events());
    let sent = fake.last_request().unwrap();
    let names: Vec<String> = kiro_tool_uses(&sent).into_iter().map(|u| u.1).collect();
    assert_eq!(names, ["write", "edit", "bash"]);
    let ids: Vec<String> = kiro_tool_results(&sent).into_iter().map(|r| r.0).collect();
    assert_eq!(ids, loop_ids());
}

#[test]
fn openai_agents_sdk_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("openai-agents-tool-loop"));
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body: Value = serde_json::from_str(&answer.text).unwrap();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["tools"][0]["strict"], true);
    let sent = fake.last_request().unwrap();
    let uses = kiro_tool_uses(&sent);
    assert_eq!(uses.len(), 2);
    assert_eq!(
        uses[1].2,
        serde_json::json!({"city": "Oslo", "unit": "celsius"})
    );
    let results: Vec<String> = kiro_tool_results(&sent).into_iter().map(|r| r.1).collect();
    assert_eq!(results, ["18 C, sunny", "5 C, rain"]);
}

#[test]
fn pydantic_ai_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("pydantic-ai-tool-loop"));
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body: Value = serde_json::from_str(&answer.text).unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let sent = fake.last_request().unwrap();
    let ids: Vec<String> = kiro_tool_uses(&sent).into_iter().map(|u| u.0).collect();
    assert_eq!(ids, ["tooluse_step0", "tooluse_step1"]);
    let results: Vec<String> = kiro_tool_results(&sent).into_iter().map(|r| r.1).collect();
    assert_eq!(results, ["18 C, sunny", "5 C, rain"]);
}

#[test]
fn codex_tool_search_and_the_mcp_tool_it_loaded_reach_kiro() {
    let (fake, gw) = start();
    let mut fx = fixture("codex-gpt-5.5-tool-search");
    fx.body["model"] = "claude-sonnet-4.5".into();
    let answer = replay(&gw, &fx);
    let data = responses_events(&answer.events());
    assert_eq!(data.last().unwrap()["type"], "response.completed");
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    assert!(names.contains(&"tool_search".to_string()), "{names:?}");
    assert!(
        names.contains(&"mcp__weather__report".to_string()),
        "{names:?}"
    );
    let uses: Vec<String> = kiro_tool_uses(&sent).into_iter().map(|u| u.1).collect();
    assert_eq!(uses, ["tool_search", "mcp__weather__report"]);
    let results: Vec<String> = kiro_tool_results(&sent).into_iter().map(|r| r.1).collect();
    assert_eq!(
        results[0],
        "These tools can be called now: mcp__weather__report"
    );
    assert!(results[1].ends_with("18 C, sunny"), "{results:?}");
    // tool_search is the client's own tool: it goes to Kiro, never into the ignored list.
    let ignored = answer.header("x-kiro-gateway-ignored-tools").unwrap_or("");
    assert!(!ignored.contains("tool_search"), "{ignored}");
}

// ---- Cline CLI and Continue CLI: the last request of their e2e tool loops -----------------------

fn tool_use_names(rec: &Recorded) -> Vec<String> {
    kiro_tool_uses(rec).into_iter().map(|u| u.1).collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("tooluse_e2e{i}")).collect()
}

#[test]
fn cline_openai_compatible_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("cline-3.0.65-openai-compatible-tool-loop"));
    let chunks = chat_chunks(&answer.events());
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let sent = fake.last_request().unwrap();
    assert_eq!(kiro_tool_names(&sent).len(), 25);
    assert_eq!(tool_use_names(&sent), ["editor", "editor", "run_commands"]);
    let uses = kiro_tool_uses(&sent);
    assert_eq!(uses[0].2["new_text"], "first line\n");
    assert_eq!(
        uses[2].2["commands"][0],
        "cd /home/user/project && wc -l notes.txt > count.txt"
    );
    let results = kiro_tool_results(&sent);
    assert_eq!(
        results.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        loop_ids()
    );
    assert!(
        results[0].1.contains("File created successfully"),
        "{results:?}"
    );
    // The system prompt goes in front of the first user turn.
    let first = &sent.body["conversationState"]["history"][0]["userInputMessage"]["content"];
    assert!(first.as_str().unwrap().contains("You are Cline"));
}

/// Cline's `openai-native` provider with a base URL speaks the Responses API and offers the
/// hosted `web_search` (served through Kiro's search) and `image_generation` (left out, named in
/// the header) next to its functions.
#[test]
fn cline_openai_native_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("cline-3.0.65-openai-native-tool-loop"));
    let data = responses_events(&answer.events());
    let done = data.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(done["response"]["truncation"], "auto");
    assert_eq!(
        answer.header("x-kiro-gateway-ignored-tools"),
        Some("image_generation")
    );
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    assert!(names.contains(&"web_search".to_string()), "{names:?}");
    assert!(!names.contains(&"image_generation".to_string()));
    assert_eq!(
        tool_use_names(&sent),
        ["apply_patch", "apply_patch", "run_commands"]
    );
    let uses = kiro_tool_uses(&sent);
    assert!(uses[1].2["input"]
        .as_str()
        .unwrap()
        .starts_with("*** Begin Patch\n*** Update File: notes.txt"));
    let results = kiro_tool_results(&sent);
    assert!(
        results[0].1.contains("Successfully applied patch"),
        "{results:?}"
    );
}

#[test]
fn continue_openai_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("continue-1.5.47-openai-tool-loop"));
    chat_chunks(&answer.events());
    let sent = fake.last_request().unwrap();
    assert_eq!(kiro_tool_names(&sent).len(), 11);
    assert_eq!(
        tool_use_names(&sent),
        ["Write", "Read", "MultiEdit", "Bash"]
    );
    let results = kiro_tool_results(&sent);
    assert_eq!(
        results.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ids(4)
    );
    // Bash printed nothing: Continue sends an empty tool message, which is not an error.
    assert!(results[1].1.starts_with("Content of"), "{results:?}");
    // The system prompt goes in front of the first user turn.
    let first = &sent.body["conversationState"]["history"][0]["userInputMessage"]["content"];
    assert!(first
        .as_str()
        .unwrap()
        .contains("You are an agent in the Continue CLI"));
}

#[test]
fn continue_anthropic_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("continue-1.5.47-anthropic-tool-loop"));
    anthropic_types(&answer.events());
    let sent = fake.last_request().unwrap();
    assert_eq!(kiro_tool_names(&sent).len(), 11);
    assert_eq!(
        tool_use_names(&sent),
        ["Write", "Read", "MultiEdit", "Bash"]
    );
    let uses = kiro_tool_uses(&sent);
    assert_eq!(
        uses[2].2["edits"][0],
        serde_json::json!({"old_string": "first line", "new_string": "first line, edited"})
    );
    assert_eq!(kiro_tool_results(&sent).len(), 4);
}

/// Kilo Code's CLI (an opencode fork) marks messages and even a tool call with `cache_control`.
#[test]
fn kilo_code_tool_loop_reaches_kiro_as_history() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("kilo-7.7.7-tool-loop"));
    chat_chunks(&answer.events());
    let sent = fake.last_request().unwrap();
    assert_eq!(kiro_tool_names(&sent).len(), 16);
    assert_eq!(tool_use_names(&sent), ["write", "edit", "bash"]);
    let results = kiro_tool_results(&sent);
    assert_eq!(
        results.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        loop_ids()
    );
    assert_eq!(results[2].1, "(no output)");
}

// ---- Roo Code: requests built from its public source (it runs only inside VS Code) ---------------

#[test]
fn roo_code_openai_compatible_request_is_answered_with_its_tool_call() {
    let (fake, gw) = start();
    fake.set_reply_fn(|_| {
        Some(Reply::events(Ev::tool_call(
            "tooluse_roo3",
            "attempt_completion",
            r#"{"result":"hello.txt says hi"}"#,
            2,
        )))
    });
    let answer = replay(
        &gw,
        &fixture("roo-code-3.52.1-openai-compatible-from-source"),
    );
    let chunks = chat_chunks(&answer.events());
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"].as_str());
    assert_eq!(call, Some("attempt_completion"));
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let sent = fake.last_request().unwrap();
    let names = kiro_tool_names(&sent);
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.contains(&"mcp--weather--report".to_string()));
    assert_eq!(tool_use_names(&sent), ["write_to_file", "execute_command"]);
    let results = kiro_tool_results(&sent);
    assert_eq!(
        results[1],
        ("call_roo_2".to_string(), "(empty)".to_string())
    );
    // The environment details Roo sends after the tool results reach the model too.
    let content = current(&sent.body)["content"].as_str().unwrap();
    assert!(content.contains("<environment_details>"), "{content}");
}

#[test]
fn roo_code_anthropic_request_is_answered() {
    let (fake, gw) = start();
    let answer = replay(&gw, &fixture("roo-code-3.52.1-anthropic-from-source"));
    let types = anthropic_types(&answer.events());
    assert!(
        types.contains(&"content_block_delta".to_string()),
        "{types:?}"
    );
    let sent = fake.last_request().unwrap();
    // Roo's default Anthropic model id, with dashes, is Kiro's claude-sonnet-4.5.
    assert_eq!(current(&sent.body)["modelId"], "claude-sonnet-4.5");
    assert_eq!(kiro_tool_names(&sent).len(), 8);
    let uses = kiro_tool_uses(&sent);
    assert_eq!(uses[1].1, "execute_command");
    assert_eq!(uses[1].2["command"], "cat hello.txt");
    let results = kiro_tool_results(&sent);
    assert_eq!(results[1].1, "hi");
}
