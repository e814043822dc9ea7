//! The neutral [`Conversation`] → Kiro's `GenerateAssistantResponse` request body.
//!
//! Every Kiro quirk lives here, each with a comment naming the 400 it avoids. [`build`] runs once
//! per request: [`normalise`] puts the conversation into the shape Kiro validates
//! (`docs/kiro-wire.md#history`) and [`budget`] measures it (trimming the oldest turns when
//! asked) before Kiro can answer "Input is too long". The result, a [`BuiltPayload`], is then
//! rendered by [`render`] into the typed body of `kiro::wire` once per attempt, with that
//! attempt's origin, runtime members and profile ARN, and serialized straight to bytes.
//!
//! Deliberate differences from the older gateways: tool results keep their error status, tool
//! content is checked against tool ids after adjacent messages are merged (so split tool messages
//! still pair up), and empty texts are not joined with a stray `\n`.
//!
//! This module is pure: no I/O, no clock, no randomness (the caller passes the conversation id),
//! no client-format types. Nothing here decides *whether* native reasoning or prompt tags are
//! used; the caller says so through [`PayloadOptions`].

mod budget;
mod normalise;
mod render;
mod tool_names;

use serde_json::Value;

use crate::conversation::Conversation;
use crate::error::Error;
use crate::kiro::wire::{AttemptShape, GenerateRequest};

pub use crate::kiro::schema::clean_schema;

/// Kiro rejects longer tool names with a 400 (`docs/kiro-wire.md#tool-names`); exactly 64 is
/// accepted. Longer names are aliased.
pub const MAX_TOOL_NAME_CHARS: usize = 64;

/// Kiro refuses an image whose base64 text is longer than 5 MiB (about 3.75 MiB decoded; "image
/// exceeds 5 MB maximum"), and an image kept in history then fails every later turn, so such an
/// image is refused here with a 413 that says why. `MAX_IMAGE_BYTES` (decoded size) may be higher.
pub const MAX_IMAGE_BASE64_BYTES: usize = 5 * 1024 * 1024;

/// Text of a synthetic message (a user message put first; an assistant message put between two
/// users) and of an empty history message, since Kiro does not take an empty `content`
/// (`docs/kiro-wire.md#history`).
const EMPTY_TEXT: &str = "(empty)";
/// Text of a tool result without content (`docs/kiro-wire.md#tool-uses-and-results`).
const EMPTY_RESULT: &str = "(empty result)";
/// Current-message text when there is nothing to say (trailing assistant, empty user message).
const CONTINUE_TEXT: &str = "Continue";

/// How to build the body; everything the caller has already decided. What depends on the
/// attempt (origin, runtime members, profile ARN) is not here: see [`AttemptShape`].
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadOptions {
    /// Kiro model id, already resolved (`claude-sonnet-4.5`, `auto`…).
    pub model_id: String,
    /// `conversationState.conversationId` (and `rootConversationId` in the runtime shape).
    pub conversation_id: String,
    /// `Some(n)`: prompt-tag reasoning (`docs/kiro-wire.md#prompt-tag-reasoning`): inject the
    /// thinking tags with budget `n` into the current user message and explain them in the
    /// system prompt.
    pub fake_reasoning_max_tokens: Option<u32>,
    /// Native reasoning: sent verbatim as the top-level `additionalModelRequestFields`.
    pub reasoning_fields: Option<Value>,
    /// Descriptions longer than this (in characters) move into the system prompt; 0 disables.
    pub tool_description_max_length: usize,
    /// Add the "Output Truncation Handling" explanation to the system prompt.
    pub truncation_notice: bool,
    /// `KIRO_MAX_BODY_BYTES`: the largest serialized body we send, image data not counted
    /// (0 = unlimited).
    pub max_body_bytes: usize,
    /// `HISTORY_TRIM=oldest`: drop the oldest whole turns until the body fits.
    pub trim_oldest: bool,
}

/// A request ready to be rendered for any attempt, and what was done to it.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltPayload {
    prepared: normalise::Prepared,
    /// History entries left out by trimming.
    dropped: usize,
    /// Length in bytes of the body serialized with [`AttemptShape::DEFAULT`].
    pub body_len: usize,
    /// Whole turns (a user message and the assistant reply after it) dropped by trimming.
    pub trimmed_turns: usize,
    /// The thinking tags were put in front of the current message.
    pub fake_reasoning_injected: bool,
    /// [`crate::tokens::estimate_tokens`] over all the text of the final body: message contents,
    /// tool specifications (as JSON), tool uses and tool results, replayed reasoning. Images and ids are
    /// not counted.
    pub estimated_input_tokens: u64,
}

impl BuiltPayload {
    /// The typed body for one attempt, borrowing from `self`.
    pub fn request<'a>(&'a self, shape: &AttemptShape<'a>) -> GenerateRequest<'a> {
        self.prepared.request(self.dropped, shape)
    }

    /// (Kiro alias, client name) of every tool name that was aliased toward Kiro
    /// (`docs/kiro-wire.md#tool-names`): Kiro's calls of an alias go back under the client's name.
    pub fn tool_names_back(&self) -> Vec<(String, String)> {
        self.prepared.tool_names.back()
    }

    /// The body for one attempt as JSON bytes.
    pub fn to_bytes(&self, shape: &AttemptShape) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body_len + 256);
        // Serializing borrowed strings and `Value`s into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.request(shape));
        out
    }
}

/// Turns `conv` into a request Kiro accepts.
///
/// Errors: [`Error::BadRequest`] when there is no message, `tool_choice` names a tool that was not sent (or asks for a tool when
/// there is none), or a tool call's input is not a JSON object; [`Error::ContextLengthExceeded`]
/// when the body is over `max_body_bytes` and trimming is off or cannot make it fit.
///
/// Kiro's limit on the number of tools is not published; any count is accepted and sent.
pub fn build(conv: &Conversation, opts: &PayloadOptions) -> Result<BuiltPayload, Error> {
    budget::check_image_sizes(conv)?;
    let prepared = normalise::prepare(conv, opts)?;
    let fit = budget::fit(&prepared, opts)?;
    let estimated_input_tokens =
        budget::estimate_request_tokens(&prepared.request(fit.dropped, &AttemptShape::DEFAULT));
    Ok(BuiltPayload {
        fake_reasoning_injected: prepared.inject.is_some(),
        dropped: fit.dropped,
        body_len: fit.body_len,
        trimmed_turns: fit.dropped / 2,
        estimated_input_tokens,
        prepared,
    })
}

#[cfg(test)]
mod tests {
    use super::normalise::ensure_alternation;
    use super::*;
    use crate::conversation::{
        Image, Message, Reasoning, Role, ToolCall, ToolChoice, ToolResult, ToolSpec,
    };
    use crate::thinking::{injection_prefix, system_addition, truncation_system_addition};
    use crate::tokens::estimate_tokens;
    use serde_json::json;

    /// The body without the runtime members or an ARN: what most assertions look at.
    const LEGACY: AttemptShape<'static> = AttemptShape {
        origin: "AI_EDITOR",
        runtime_body: false,
        profile_arn: None,
        replay_reasoning: true,
    };

    impl BuiltPayload {
        fn body(&self) -> Value {
            self.body_with(&LEGACY)
        }

        fn body_with(&self, shape: &AttemptShape) -> Value {
            serde_json::from_slice(&self.to_bytes(shape)).unwrap()
        }
    }

    fn opts() -> PayloadOptions {
        PayloadOptions {
            model_id: "claude-sonnet-4.5".into(),
            conversation_id: "conv-1".into(),
            fake_reasoning_max_tokens: None,
            reasoning_fields: None,
            tool_description_max_length: 10_000,
            truncation_notice: false,
            max_body_bytes: 0,
            trim_oldest: false,
        }
    }

    fn user(text: &str) -> Message {
        Message::text(Role::User, text)
    }

    fn assistant(text: &str) -> Message {
        Message::text(Role::Assistant, text)
    }

    fn conv(messages: Vec<Message>) -> Conversation {
        Conversation {
            model: "claude-sonnet-4-5".into(),
            messages,
            ..Default::default()
        }
    }

    fn with_tools(mut c: Conversation, names: &[&str]) -> Conversation {
        c.tools = names
            .iter()
            .map(|n| ToolSpec {
                name: n.to_string(),
                description: format!("does {n}"),
                schema: json!({"type": "object", "properties": {}}),
            })
            .collect();
        c
    }

    fn call(id: &str, name: &str, input: Value) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            input,
        }
    }

    fn result(id: &str, text: &str) -> ToolResult {
        ToolResult {
            tool_use_id: id.into(),
            text: text.into(),
            is_error: false,
            images: Vec::new(),
        }
    }

    fn assistant_calling(calls: Vec<ToolCall>) -> Message {
        Message {
            tool_calls: calls,
            ..assistant("")
        }
    }

    fn user_with_results(results: Vec<ToolResult>) -> Message {
        Message {
            tool_results: results,
            ..user("")
        }
    }

    fn png(data: &str) -> Image {
        Image {
            format: "png".into(),
            data: data.into(),
        }
    }

    fn build_ok(c: &Conversation, o: &PayloadOptions) -> BuiltPayload {
        build(c, o).unwrap()
    }

    fn body(c: &Conversation) -> Value {
        build_ok(c, &opts()).body()
    }

    fn current(body: &Value) -> &Value {
        &body["conversationState"]["currentMessage"]["userInputMessage"]
    }

    fn content(body: &Value) -> &str {
        current(body)["content"].as_str().unwrap()
    }

    fn history(body: &Value) -> &Vec<Value> {
        body["conversationState"]["history"].as_array().unwrap()
    }

    fn has_history(body: &Value) -> bool {
        body["conversationState"].get("history").is_some()
    }

    fn bad_request(r: Result<BuiltPayload, Error>) -> String {
        match r {
            Err(Error::BadRequest(m)) => m,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    // --- basic shape ---------------------------------------------------------------------

    #[test]
    fn simple_request_has_manual_trigger_conversation_id_and_current_message() {
        let b = body(&conv(vec![user("hello")]));
        let state = &b["conversationState"];
        assert_eq!(state["chatTriggerType"], "MANUAL");
        assert_eq!(state["conversationId"], "conv-1");
        assert_eq!(content(&b), "hello");
        assert_eq!(current(&b)["modelId"], "claude-sonnet-4.5");
        assert_eq!(current(&b)["origin"], "AI_EDITOR");
        assert!(!has_history(&b), "empty history is omitted");
        assert!(current(&b).get("images").is_none());
        assert!(current(&b).get("userInputMessageContext").is_none());
    }

    #[test]
    fn body_has_no_profile_arn_task_type_or_sampling_fields() {
        let mut c = conv(vec![user("hi")]);
        c.max_output_tokens = Some(100);
        c.stop_sequences = vec!["STOP".into()];
        let b = body(&c);
        let top: Vec<&String> = b.as_object().unwrap().keys().collect();
        assert_eq!(top, vec!["conversationState"]);
        let state = b["conversationState"].as_object().unwrap();
        for key in [
            "agentTaskType",
            "agentContinuationId",
            "rootConversationId",
            "inferenceConfig",
        ] {
            assert!(!state.contains_key(key), "{key} must not be sent");
        }
        let text = serde_json::to_string(&b).unwrap();
        for word in [
            "profileArn",
            "temperature",
            "maxTokens",
            "STOP",
            "agentMode",
        ] {
            assert!(!text.contains(word), "{word} leaked into the body");
        }
    }

    #[test]
    fn origin_comes_from_the_attempt_shape() {
        let built = build_ok(&conv(vec![user("a"), assistant("b"), user("c")]), &opts());
        let b = built.body_with(&AttemptShape {
            origin: "KIRO_CLI",
            ..LEGACY
        });
        assert_eq!(current(&b)["origin"], "KIRO_CLI");
        assert_eq!(history(&b)[0]["userInputMessage"]["origin"], "KIRO_CLI");
    }

    #[test]
    fn runtime_shape_adds_agent_mode_and_root_conversation_id() {
        let built = build_ok(&conv(vec![user("hi")]), &opts());
        let b = built.body_with(&AttemptShape::DEFAULT);
        assert_eq!(b["agentMode"], "vibe");
        assert_eq!(b["conversationState"]["rootConversationId"], "conv-1");
        let plain = built.body();
        assert!(plain.get("agentMode").is_none());
        assert!(plain["conversationState"]
            .get("rootConversationId")
            .is_none());
    }

    #[test]
    fn profile_arn_comes_from_the_attempt_shape() {
        let built = build_ok(&conv(vec![user("hi")]), &opts());
        let b = built.body_with(&AttemptShape {
            profile_arn: Some("arn:aws:codewhisperer:us-east-1:1:profile/X"),
            ..LEGACY
        });
        assert_eq!(
            b["profileArn"],
            "arn:aws:codewhisperer:us-east-1:1:profile/X"
        );
        assert_eq!(
            built.to_bytes(&LEGACY).len()
                + r#","profileArn":"arn:aws:codewhisperer:us-east-1:1:profile/X""#.len(),
            serde_json::to_vec(&b).unwrap().len()
        );
    }

    #[test]
    fn reasoning_fields_go_top_level_only_when_given() {
        let fields = json!({"output_config": {"effort": "high"}, "thinking": {"type": "adaptive"}});
        let o = PayloadOptions {
            reasoning_fields: Some(fields.clone()),
            ..opts()
        };
        let b = build_ok(&conv(vec![user("hi")]), &o).body();
        assert_eq!(b["additionalModelRequestFields"], fields);
        assert!(body(&conv(vec![user("hi")]))
            .get("additionalModelRequestFields")
            .is_none());
    }

    #[test]
    fn body_len_is_the_serialized_length() {
        let built = build_ok(
            &conv(vec![user("héllo"), assistant("ok"), user("x")]),
            &opts(),
        );
        assert_eq!(built.body_len, built.to_bytes(&AttemptShape::DEFAULT).len());
    }

    // --- messages, history and system prompt --------------------------------------------

    #[test]
    fn no_messages_is_bad_request() {
        let mut c = conv(vec![]);
        c.system = "only a system prompt".into();
        assert_eq!(bad_request(build(&c, &opts())), "No messages to send");
    }

    #[test]
    fn multi_turn_puts_all_but_last_message_in_history() {
        let b = body(&conv(vec![user("q1"), assistant("a1"), user("q2")]));
        let h = history(&b);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0]["userInputMessage"]["content"], "q1");
        assert_eq!(h[0]["userInputMessage"]["modelId"], "claude-sonnet-4.5");
        assert_eq!(h[0]["userInputMessage"]["origin"], "AI_EDITOR");
        assert_eq!(h[1], json!({"assistantResponseMessage": {"content": "a1"}}));
        assert_eq!(content(&b), "q2");
    }

    #[test]
    fn system_prompt_goes_before_current_message_without_history() {
        let mut c = conv(vec![user("hello")]);
        c.system = "SYS".into();
        assert_eq!(content(&body(&c)), "SYS\n\nhello");
    }

    #[test]
    fn system_prompt_goes_before_first_history_user_message() {
        let mut c = conv(vec![user("q1"), assistant("a1"), user("q2")]);
        c.system = "SYS".into();
        let b = body(&c);
        assert_eq!(history(&b)[0]["userInputMessage"]["content"], "SYS\n\nq1");
        assert_eq!(content(&b), "q2");
    }

    #[test]
    fn whitespace_only_system_prompt_is_not_placed() {
        let mut c = conv(vec![user("hello")]);
        c.system = "  \n".into();
        assert_eq!(content(&body(&c)), "hello");
    }

    #[test]
    fn trailing_assistant_goes_to_history_and_current_is_continue_without_tags() {
        let mut last = assistant("partial answer");
        last.tool_calls = vec![call("t1", "bash", json!({}))];
        let c = with_tools(conv(vec![user("q"), last]), &["bash"]);
        let o = PayloadOptions {
            fake_reasoning_max_tokens: Some(4000),
            ..opts()
        };
        let built = build_ok(&c, &o);
        let b = &built.body();
        assert_eq!(content(b), "Continue");
        assert!(!built.fake_reasoning_injected);
        let h = history(b);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[1],
            json!({"assistantResponseMessage": {"content": "partial answer"}}),
            "tool calls of the trailing assistant are dropped"
        );
        assert!(!h[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap()
            .contains("Extended Thinking Mode"));
        // Tools are still defined on the current message.
        assert_eq!(
            current(b)["userInputMessageContext"]["tools"][0]["toolSpecification"]["name"],
            "bash"
        );
    }

    #[test]
    fn only_assistant_message_gets_empty_user_and_continue() {
        let b = body(&conv(vec![assistant("prefill")]));
        let h = history(&b);
        assert_eq!(h[0]["userInputMessage"]["content"], "(empty)");
        assert_eq!(h[1]["assistantResponseMessage"]["content"], "prefill");
        assert_eq!(content(&b), "Continue");
    }

    #[test]
    fn empty_current_content_becomes_continue() {
        assert_eq!(content(&body(&conv(vec![user("")]))), "Continue");
        assert_eq!(content(&body(&conv(vec![user("  \n ")]))), "Continue");
    }

    #[test]
    fn model_id_and_origin_are_in_current_and_every_history_user_message() {
        let b = body(&conv(vec![
            user("1"),
            assistant("2"),
            user("3"),
            assistant("4"),
            user("5"),
        ]));
        for entry in history(&b) {
            if let Some(u) = entry.get("userInputMessage") {
                assert_eq!(u["modelId"], "claude-sonnet-4.5");
                assert_eq!(u["origin"], "AI_EDITOR");
            } else {
                assert!(entry["assistantResponseMessage"].get("modelId").is_none());
            }
        }
        assert_eq!(current(&b)["modelId"], "claude-sonnet-4.5");
    }

    #[test]
    fn adjacent_user_texts_are_merged_with_newline() {
        let b = body(&conv(vec![user("one"), user("two"), user("three")]));
        assert!(!has_history(&b));
        assert_eq!(content(&b), "one\ntwo\nthree");
    }

    #[test]
    fn empty_text_adds_no_newline_when_merged() {
        let mut c = with_tools(
            conv(vec![
                user("q"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
                user("next"),
            ]),
            &["bash"],
        );
        c.system = String::new();
        assert_eq!(content(&body(&c)), "next");
    }

    #[test]
    fn adjacent_assistant_messages_concatenate_tool_calls() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "a", json!({"n": 1}))]),
                assistant_calling(vec![call("t2", "b", json!({"n": 2}))]),
                assistant_calling(vec![call("t3", "a", json!({"n": 3}))]),
                user_with_results(vec![
                    result("t1", "r1"),
                    result("t2", "r2"),
                    result("t3", "r3"),
                ]),
            ]),
            &["a", "b"],
        );
        let b = body(&c);
        let h = history(&b);
        assert_eq!(h.len(), 2);
        let uses = h[1]["assistantResponseMessage"]["toolUses"]
            .as_array()
            .unwrap();
        let ids: Vec<&str> = uses
            .iter()
            .map(|u| u["toolUseId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["t1", "t2", "t3"]);
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn codex_two_assistant_calls_and_two_tool_messages_become_one_pair() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("c1", "bash", json!({"cmd": "ls"}))]),
                assistant_calling(vec![call("c2", "bash", json!({"cmd": "pwd"}))]),
                user_with_results(vec![result("c1", "a.txt")]),
                user_with_results(vec![result("c2", "/home")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        let h = history(&b);
        assert_eq!(h.len(), 2);
        assert_eq!(
            h[1]["assistantResponseMessage"]["toolUses"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let results = current(&b)["userInputMessageContext"]["toolResults"]
            .as_array()
            .unwrap();
        assert_eq!(results[0]["toolUseId"], "c1");
        assert_eq!(results[1]["toolUseId"], "c2");
        assert_eq!(content(&b), "Continue");
    }

    #[test]
    fn first_assistant_message_gets_empty_user_prepended_keeping_tool_calls() {
        let c = with_tools(
            conv(vec![
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                Message {
                    images: vec![png("IMG")],
                    ..user_with_results(vec![result("t1", "out")])
                },
            ]),
            &["bash"],
        );
        let b = body(&c);
        let h = history(&b);
        assert_eq!(h[0]["userInputMessage"]["content"], "(empty)");
        assert_eq!(
            h[1]["assistantResponseMessage"]["toolUses"][0]["toolUseId"],
            "t1"
        );
        assert_eq!(current(&b)["images"][0]["source"]["bytes"], "IMG");
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"][0]["toolUseId"],
            "t1"
        );
    }

    #[test]
    fn alternation_inserts_empty_assistant_between_consecutive_users() {
        let out = ensure_alternation(vec![user("a"), user("b"), user("c"), user("d")]);
        let roles: Vec<Role> = out.iter().map(|m| m.role).collect();
        use Role::{Assistant as A, User as U};
        assert_eq!(roles, [U, A, U, A, U, A, U]);
        assert!(out
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .all(|m| m.text == "(empty)"));
    }

    #[test]
    fn history_empty_texts_become_empty_marker() {
        let b = body(&conv(vec![user(""), assistant(" "), user("now")]));
        let h = history(&b);
        assert_eq!(h[0]["userInputMessage"]["content"], "(empty)");
        assert_eq!(h[1]["assistantResponseMessage"]["content"], "(empty)");
    }

    #[test]
    fn history_user_images_go_in_user_input_message_images() {
        let first = Message {
            images: vec![png("AAAA"), png("")],
            ..user("look")
        };
        let b = body(&conv(vec![first, assistant("seen"), user("next")]));
        assert_eq!(
            history(&b)[0]["userInputMessage"]["images"],
            json!([{"format": "png", "source": {"bytes": "AAAA"}}]),
            "empty image data is skipped"
        );
    }

    #[test]
    fn current_message_images_are_sent_and_assistant_images_are_not() {
        let a = Message {
            images: vec![png("NOPE")],
            ..assistant("a")
        };
        let cur = Message {
            images: vec![
                png("P"),
                Image {
                    format: "webp".into(),
                    data: "W".into(),
                },
            ],
            ..user("what is this")
        };
        let b = body(&conv(vec![user("q"), a, cur]));
        assert_eq!(
            current(&b)["images"],
            json!([{"format": "png", "source": {"bytes": "P"}}, {"format": "webp", "source": {"bytes": "W"}}])
        );
        assert!(!serde_json::to_string(&b).unwrap().contains("NOPE"));
    }

    // --- tools ---------------------------------------------------------------------------

    #[test]
    fn tools_go_only_to_the_current_message_context() {
        let c = with_tools(conv(vec![user("a"), assistant("b"), user("c")]), &["bash"]);
        let b = body(&c);
        let spec = &current(&b)["userInputMessageContext"]["tools"][0]["toolSpecification"];
        assert_eq!(spec["name"], "bash");
        assert_eq!(spec["description"], "does bash");
        assert_eq!(
            spec["inputSchema"]["json"],
            json!({"type": "object", "properties": {}})
        );
        assert!(history(&b)[0]["userInputMessage"]
            .get("userInputMessageContext")
            .is_none());
    }

    #[test]
    fn empty_or_whitespace_description_becomes_tool_name() {
        let mut c = with_tools(conv(vec![user("x")]), &["a", "b", "c"]);
        c.tools[0].description = String::new();
        c.tools[1].description = "  \n".into();
        let b = body(&c);
        let tools = &current(&b)["userInputMessageContext"]["tools"];
        assert_eq!(tools[0]["toolSpecification"]["description"], "Tool: a");
        assert_eq!(tools[1]["toolSpecification"]["description"], "Tool: b");
        assert_eq!(tools[2]["toolSpecification"]["description"], "does c");
    }

    #[test]
    fn tool_schema_is_cleaned_and_null_schema_becomes_empty_object() {
        let mut c = with_tools(conv(vec![user("x")]), &["a", "b"]);
        c.tools[0].schema = json!({"type": "object", "required": [], "additionalProperties": false,
                                       "properties": {"p": {"type": "string"}}});
        c.tools[1].schema = Value::Null;
        let b = body(&c);
        let tools = &current(&b)["userInputMessageContext"]["tools"];
        assert_eq!(
            tools[0]["toolSpecification"]["inputSchema"]["json"],
            json!({"type": "object", "properties": {"p": {"type": "string"}}})
        );
        assert_eq!(
            tools[1]["toolSpecification"]["inputSchema"]["json"],
            json!({})
        );
    }

    #[test]
    fn long_description_moves_to_system_prompt_and_schema_is_kept() {
        let mut c = with_tools(conv(vec![user("x")]), &["big", "small"]);
        c.tools[0].description = "d".repeat(30);
        c.tools[0].schema = json!({"type": "object", "properties": {"q": {"type": "string"}}});
        c.system = "SYS".into();
        let o = PayloadOptions {
            tool_description_max_length: 20,
            ..opts()
        };
        let b = build_ok(&c, &o).body();
        let tools = &current(&b)["userInputMessageContext"]["tools"];
        assert_eq!(
            tools[0]["toolSpecification"]["description"],
            "[Full documentation in system prompt under '## Tool: big']"
        );
        assert_eq!(
            tools[0]["toolSpecification"]["inputSchema"]["json"]["properties"]["q"]["type"],
            "string"
        );
        assert_eq!(tools[1]["toolSpecification"]["description"], "does small");
        let expected_system = format!(
            "SYS\n\n---\n# Tool Documentation\nThe following tools have detailed documentation \
                 that couldn't fit in the tool definition.\n\n## Tool: big\n\n{}",
            "d".repeat(30)
        );
        assert_eq!(content(&b), format!("{expected_system}\n\nx"));
    }

    #[test]
    fn several_long_descriptions_are_separated_and_stripped_without_client_system() {
        let mut c = with_tools(conv(vec![user("x")]), &["a", "b"]);
        c.tools[0].description = "A".repeat(5);
        c.tools[1].description = "B".repeat(5);
        let o = PayloadOptions {
            tool_description_max_length: 4,
            ..opts()
        };
        let b = build_ok(&c, &o).body();
        assert!(content(&b).starts_with("---\n# Tool Documentation\n"));
        assert!(content(&b).contains("## Tool: a\n\nAAAAA\n\n---\n\n## Tool: b\n\nBBBBB\n\nx"));
    }

    #[test]
    fn description_limit_zero_keeps_long_descriptions() {
        let mut c = with_tools(conv(vec![user("x")]), &["a"]);
        c.tools[0].description = "z".repeat(50_000);
        let o = PayloadOptions {
            tool_description_max_length: 0,
            ..opts()
        };
        let b = build_ok(&c, &o).body();
        assert_eq!(
            current(&b)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"]
                .as_str()
                .unwrap()
                .len(),
            50_000
        );
        assert_eq!(content(&b), "x");
    }

    #[test]
    fn tool_name_of_64_characters_is_accepted() {
        let name = "n".repeat(64);
        let c = with_tools(conv(vec![user("x")]), &[name.as_str()]);
        assert!(build(&c, &opts()).is_ok());
    }

    #[test]
    fn tool_names_kiro_refuses_are_aliased_everywhere_kiro_sees_them() {
        let long = "mcp__server__".to_string() + &"a".repeat(60);
        let mut c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", &long, json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
            ]),
            &[long.as_str(), "ok", "has.dot"],
        );
        c.tool_choice = ToolChoice::Named(long.clone());
        let built = build_ok(&c, &opts());
        let b = built.body();
        let names = tool_names(&b);
        assert_eq!(names.len(), 3);
        assert_eq!(names[1], "ok");
        assert!(names.iter().all(|n| n.len() <= 64
            && n.bytes()
                .all(|x| x.is_ascii_alphanumeric() || x == b'_' || x == b'-')));
        let alias = names[0].clone();
        assert_eq!(
            history(&b)[1]["assistantResponseMessage"]["toolUses"][0]["name"],
            alias.as_str()
        );
        assert!(
            content(&b).contains(&format!("`{alias}`")),
            "tool_choice names the alias"
        );
        let back = built.tool_names_back();
        assert!(back.contains(&(alias, long.clone())));
        assert!(back.iter().any(|(_, client)| client == "has.dot"));
        let text = serde_json::to_string(&b).unwrap();
        assert!(!text.contains(&format!("\"name\":\"{long}\"")), "{text}");
    }

    #[test]
    fn many_tools_are_all_sent() {
        let names: Vec<String> = (0..300).map(|i| format!("tool_{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let b = body(&with_tools(conv(vec![user("x")]), &refs));
        assert_eq!(
            current(&b)["userInputMessageContext"]["tools"]
                .as_array()
                .unwrap()
                .len(),
            300
        );
    }

    #[test]
    fn tool_round_trip_renders_tool_uses_and_success_results() {
        let c = with_tools(
            conv(vec![
                user("list"),
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("t1", "a.txt"), result("t1b", "")]),
            ]),
            &["bash"],
        );
        // t1b is unknown to the assistant: it becomes text, the valid one stays.
        let b = body(&c);
        assert_eq!(
            history(&b)[1],
            json!({"assistantResponseMessage": {"content": "(empty)",
                    "toolUses": [{"toolUseId": "t1", "name": "bash", "input": {"cmd": "ls"}}]}})
        );
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"],
            json!([{"toolUseId": "t1", "content": [{"text": "a.txt"}], "status": "success"}])
        );
        assert_eq!(content(&b), "[Tool Result (t1b)]\n(empty result)");
    }

    #[test]
    fn empty_tool_result_becomes_empty_result_marker() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"][0]["content"],
            json!([{"text": "(empty result)"}])
        );
    }

    #[test]
    fn error_tool_result_has_status_error() {
        let mut failed = result("t1", "command not found");
        failed.is_error = true;
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![failed]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"][0]["status"],
            "error"
        );
    }

    #[test]
    fn tool_result_images_are_lifted_into_the_message() {
        let mut shot = result("t1", "screenshot taken");
        shot.images = vec![png("SHOT")];
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "browser", json!({}))]),
                user_with_results(vec![shot]),
            ]),
            &["browser"],
        );
        let b = body(&c);
        assert_eq!(current(&b)["images"][0]["source"]["bytes"], "SHOT");
        let text = serde_json::to_string(&current(&b)["userInputMessageContext"]).unwrap();
        assert!(
            !text.contains("SHOT"),
            "images never stay in the tool result"
        );
    }

    #[test]
    fn tool_call_input_string_is_parsed_and_null_becomes_empty_object() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![
                    call("t1", "bash", json!("{\"cmd\":\"ls\"}")),
                    call("t2", "bash", Value::Null),
                ]),
                user_with_results(vec![result("t1", "x"), result("t2", "y")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        let uses = &history(&b)[1]["assistantResponseMessage"]["toolUses"];
        assert_eq!(uses[0]["input"], json!({"cmd": "ls"}));
        assert_eq!(uses[1]["input"], json!({}));
    }

    #[test]
    fn tool_call_input_that_is_not_an_object_is_bad_request() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t9", "bash", json!([1, 2]))]),
                user_with_results(vec![result("t9", "x")]),
            ]),
            &["bash"],
        );
        let msg = bad_request(build(&c, &opts()));
        assert!(msg.contains("t9"), "{msg}");
    }

    fn tool_names(b: &Value) -> Vec<String> {
        current(b)["userInputMessageContext"]["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .map(|t| t["toolSpecification"]["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn without_tools_history_tool_content_keeps_its_shape_and_gets_stub_specs() {
        let mut with_image = user_with_results(vec![result("t1", "a.txt"), result("", "")]);
        with_image.images = vec![png("I")];
        let c = conv(vec![
            user("go"),
            Message {
                tool_calls: vec![
                    call("t1", "bash", json!({"cmd": "ls"})),
                    call("", "noid", json!({})),
                ],
                ..assistant("let me look")
            },
            with_image,
        ]);
        let b = body(&c);
        assert_eq!(tool_names(&b), vec!["bash"]);
        let stub = &current(&b)["userInputMessageContext"]["tools"][0]["toolSpecification"];
        assert!(stub["description"]
            .as_str()
            .unwrap()
            .contains("not available"));
        assert_eq!(
            stub["inputSchema"]["json"],
            json!({"type": "object", "properties": {}})
        );
        let reply = &history(&b)[1]["assistantResponseMessage"];
        assert_eq!(reply["content"], "let me look\n\n[Tool: noid]\n{}");
        assert_eq!(
            reply["toolUses"],
            json!([{"toolUseId": "t1", "name": "bash", "input": {"cmd": "ls"}}])
        );
        let results = &current(&b)["userInputMessageContext"]["toolResults"];
        assert_eq!(results[0]["toolUseId"], "t1");
        assert_eq!(results.as_array().unwrap().len(), 1);
        assert_eq!(content(&b), "[Tool Result]\n(empty result)");
        assert_eq!(current(&b)["images"][0]["source"]["bytes"], "I");
    }

    #[test]
    fn stub_specs_cover_only_history_tools_the_request_does_not_offer() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![
                    call("t1", "bash", json!({})),
                    call("t2", "grep", json!({})),
                    call("t3", "grep", json!({})),
                ]),
                user_with_results(vec![
                    result("t1", "ok"),
                    result("t2", "ok"),
                    result("t3", "ok"),
                ]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        assert_eq!(tool_names(&b), vec!["bash", "grep"]);
        assert_eq!(
            current(&b)["userInputMessageContext"]["tools"][0]["toolSpecification"]["description"],
            "does bash"
        );
    }

    #[test]
    fn no_tools_and_no_tool_history_sends_no_tools() {
        let b = body(&conv(vec![user("a"), assistant("b"), user("c")]));
        assert!(current(&b).get("userInputMessageContext").is_none());
    }

    #[test]
    fn tools_defined_keep_tool_structure() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
            ]),
            &["bash"],
        );
        let text = serde_json::to_string(&body(&c)).unwrap();
        assert!(text.contains("toolUses"));
        assert!(text.contains("toolResults"));
        assert!(!text.contains("[Tool"));
    }

    #[test]
    fn orphaned_tool_results_become_text_and_keep_images() {
        // First message, after an assistant without tool calls.
        let mut first = user_with_results(vec![result("x1", "early")]);
        first.text = "hi".into();
        first.images = vec![png("IMG")];
        let c = with_tools(
            conv(vec![
                first,
                assistant("plain answer"),
                user_with_results(vec![result("x2", "late")]),
            ]),
            &["bash"],
        );
        let b = body(&c);
        let h0 = &history(&b)[0]["userInputMessage"];
        assert_eq!(h0["content"], "hi\n\n[Tool Result (x1)]\nearly");
        assert_eq!(h0["images"][0]["source"]["bytes"], "IMG");
        assert!(h0.get("userInputMessageContext").is_none());
        assert_eq!(content(&b), "[Tool Result (x2)]\nlate");
        assert!(current(&b)["userInputMessageContext"]
            .get("toolResults")
            .is_none());
    }

    // --- tool_choice ---------------------------------------------------------------------

    #[test]
    fn tool_choice_none_offers_only_stubs_for_the_history_tools() {
        let mut c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
            ]),
            &["bash", "other"],
        );
        c.tool_choice = ToolChoice::None;
        let b = body(&c);
        assert_eq!(tool_names(&b), vec!["bash"]);
        let spec = &current(&b)["userInputMessageContext"]["tools"][0]["toolSpecification"];
        assert_eq!(spec["description"], super::normalise::STUB_DESCRIPTION);
        assert_eq!(
            current(&b)["userInputMessageContext"]["toolResults"][0]["toolUseId"],
            "t1"
        );
        assert_eq!(content(&b), "Continue");
    }

    #[test]
    fn tool_choice_named_appends_instruction_naming_the_tool() {
        let mut c = with_tools(conv(vec![user("weather?")]), &["get_weather", "other"]);
        c.tool_choice = ToolChoice::Named("get_weather".into());
        let b = body(&c);
        assert!(content(&b).starts_with("weather?\n\n"));
        assert!(content(&b).contains("`get_weather`"));
        assert_eq!(
            current(&b)["userInputMessageContext"]["tools"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn tool_choice_named_unknown_tool_is_bad_request() {
        let mut c = with_tools(conv(vec![user("x")]), &["a"]);
        c.tool_choice = ToolChoice::Named("b".into());
        assert!(bad_request(build(&c, &opts())).contains("'b'"));
    }

    #[test]
    fn tool_choice_required_appends_instruction() {
        let mut c = with_tools(conv(vec![user("do it")]), &["a"]);
        c.tool_choice = ToolChoice::Required;
        let b = body(&c);
        assert!(content(&b).starts_with("do it\n\n[Tool choice]"));
        assert!(content(&b).contains("one of the available tools"));
        let mut auto = with_tools(conv(vec![user("do it")]), &["a"]);
        auto.tool_choice = ToolChoice::Auto;
        assert_eq!(content(&body(&auto)), "do it");
    }

    #[test]
    fn tool_choice_required_without_tools_is_bad_request() {
        let mut c = conv(vec![user("x")]);
        c.tool_choice = ToolChoice::Required;
        bad_request(build(&c, &opts()));
    }

    // --- thinking and system additions -------------------------------------------------

    fn fake(n: u32) -> PayloadOptions {
        PayloadOptions {
            fake_reasoning_max_tokens: Some(n),
            ..opts()
        }
    }

    #[test]
    fn thinking_tags_are_injected_into_the_current_user_message() {
        let built = build_ok(
            &conv(vec![user("q1"), assistant("a1"), user("q2")]),
            &fake(4000),
        );
        assert!(built.fake_reasoning_injected);
        assert_eq!(
            content(&built.body()),
            format!("{}q2", injection_prefix(4000))
        );
        let built_body = built.body();
        let h0 = history(&built_body)[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap();
        assert!(
            !h0.contains(&injection_prefix(4000)),
            "history is never tagged"
        );
        assert!(h0.starts_with(system_addition().trim()));
        assert!(h0.ends_with("\n\nq1"));
    }

    #[test]
    fn thinking_tags_are_injected_with_tool_results_present() {
        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "ok")]),
            ]),
            &["bash"],
        );
        let built = build_ok(&c, &fake(100));
        assert!(built.fake_reasoning_injected);
        assert!(content(&built.body()).starts_with(&injection_prefix(100)));
        assert!(current(&built.body())["userInputMessageContext"]
            .get("toolResults")
            .is_some());
    }

    #[test]
    fn thinking_tags_go_before_a_system_prompt_placed_in_the_current_message() {
        let mut c = conv(vec![user("hello")]);
        c.system = "SYS".into();
        let b = build_ok(&c, &fake(4000)).body();
        assert_eq!(
            content(&b),
            format!(
                "{}SYS{}\n\nhello",
                injection_prefix(4000),
                system_addition()
            )
        );
    }

    #[test]
    fn no_thinking_addition_without_injection() {
        let b = body(&conv(vec![user("hello")]));
        assert_eq!(content(&b), "hello");
        let built = build_ok(&conv(vec![user("hello")]), &opts());
        assert!(!built.fake_reasoning_injected);
    }

    #[test]
    fn truncation_notice_adds_output_truncation_handling_section() {
        let mut c = conv(vec![user("hello")]);
        c.system = "SYS".into();
        let o = PayloadOptions {
            truncation_notice: true,
            ..opts()
        };
        let b = build_ok(&c, &o).body();
        assert!(content(&b).starts_with("SYS\n\n---\n# Output Truncation Handling"));
        assert!(content(&b).ends_with("\n\nhello"));
        let bare = build_ok(&conv(vec![user("hello")]), &o).body();
        assert!(
            content(&bare).starts_with("---\n# Output Truncation Handling"),
            "without a client system prompt the addition is stripped"
        );
    }

    #[test]
    fn system_additions_come_in_order_tools_thinking_truncation() {
        let mut c = with_tools(conv(vec![user("x")]), &["a"]);
        c.tools[0].description = "long".repeat(10);
        c.system = "SYS".into();
        let o = PayloadOptions {
            tool_description_max_length: 5,
            truncation_notice: true,
            ..fake(10)
        };
        let text = content(&build_ok(&c, &o).body()).to_string();
        let docs = text.find("# Tool Documentation").unwrap();
        let thinking = text.find("# Extended Thinking Mode").unwrap();
        let trunc = text.find("# Output Truncation Handling").unwrap();
        assert!(text.find("SYS").unwrap() < docs && docs < thinking && thinking < trunc);
    }

    // --- reasoning replay ----------------------------------------------------------------

    fn with_reasoning(text: &str, r: Reasoning) -> Message {
        Message {
            reasoning: Some(r),
            ..assistant(text)
        }
    }

    #[test]
    fn signed_reasoning_is_replayed_nested() {
        let a = with_reasoning(
            "answer",
            Reasoning {
                text: "I thought".into(),
                signature: Some("SIG".into()),
                redacted: None,
            },
        );
        let b = body(&conv(vec![user("q"), a, user("more")]));
        assert_eq!(
            history(&b)[1]["assistantResponseMessage"]["reasoningContent"],
            json!({"reasoningText": {"text": "I thought", "signature": "SIG"}})
        );
    }

    #[test]
    fn reasoning_is_left_out_when_the_attempt_does_not_replay_it() {
        let a = with_reasoning(
            "answer",
            Reasoning {
                text: "I thought".into(),
                signature: Some("SIG".into()),
                redacted: None,
            },
        );
        let built = build_ok(&conv(vec![user("q"), a, user("more")]), &opts());
        let b = built.body_with(&AttemptShape {
            replay_reasoning: false,
            ..LEGACY
        });
        let reply = &history(&b)[1]["assistantResponseMessage"];
        assert_eq!(reply["content"], "answer");
        assert!(reply.get("reasoningContent").is_none());
    }

    #[test]
    fn redacted_reasoning_is_replayed_as_redacted_content() {
        let a = with_reasoning(
            "answer",
            Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("BLOB".into()),
            },
        );
        let b = body(&conv(vec![user("q"), a, user("more")]));
        assert_eq!(
            history(&b)[1]["assistantResponseMessage"]["reasoningContent"],
            json!({"redactedContent": "BLOB"})
        );
    }

    #[test]
    fn unsigned_reasoning_is_not_replayed() {
        let a = with_reasoning(
            "answer",
            Reasoning {
                text: "tag reasoning".into(),
                signature: None,
                redacted: None,
            },
        );
        let b = body(&conv(vec![user("q"), a, user("more")]));
        assert!(history(&b)[1]["assistantResponseMessage"]
            .get("reasoningContent")
            .is_none());
        assert!(!serde_json::to_string(&b).unwrap().contains("tag reasoning"));
    }

    #[test]
    fn merged_assistants_keep_the_first_replayable_reasoning() {
        let unsigned = with_reasoning(
            "one",
            Reasoning {
                text: "plain".into(),
                ..Default::default()
            },
        );
        let signed = with_reasoning(
            "two",
            Reasoning {
                text: "signed".into(),
                signature: Some("S".into()),
                redacted: None,
            },
        );
        let b = body(&conv(vec![user("q"), unsigned, signed, user("next")]));
        let a = &history(&b)[1]["assistantResponseMessage"];
        assert_eq!(a["content"], "one\ntwo");
        assert_eq!(a["reasoningContent"]["reasoningText"]["signature"], "S");
    }

    // --- body budget ---------------------------------------------------------------------

    fn long_conversation(turns: usize, size: usize) -> Conversation {
        let mut messages = Vec::new();
        for i in 0..turns {
            messages.push(user(&format!("q{i} {}", "x".repeat(size))));
            messages.push(assistant(&format!("a{i}")));
        }
        messages.push(user("final question"));
        let mut c = conv(messages);
        c.system = "SYS".into();
        c
    }

    fn full_len(c: &Conversation) -> usize {
        build_ok(c, &opts()).body_len
    }

    #[test]
    fn body_over_limit_without_trimming_is_context_length_exceeded() {
        let c = long_conversation(3, 1000);
        let len = full_len(&c);
        let o = PayloadOptions {
            max_body_bytes: len - 1,
            ..opts()
        };
        match build(&c, &o) {
            Err(Error::ContextLengthExceeded(m)) => {
                assert!(m.starts_with("prompt is too long"), "{m}");
                assert!(m.contains(&format!("{len} bytes")), "{m}");
                assert!(m.contains(&format!("{} bytes", len - 1)), "{m}");
                assert!(m.contains("Compact"), "{m}");
            }
            other => panic!("expected ContextLengthExceeded, got {other:?}"),
        }
        let exact = PayloadOptions {
            max_body_bytes: len,
            ..opts()
        };
        assert_eq!(
            build_ok(&c, &exact).body_len,
            len,
            "a body at the limit fits"
        );
    }

    #[test]
    fn image_data_does_not_count_against_the_body_budget() {
        let mut c = long_conversation(1, 100);
        let text_only = full_len(&c);
        // Room for the `images` wrapper JSON, not for the data.
        let o = PayloadOptions {
            max_body_bytes: text_only + 100,
            ..opts()
        };
        if let Some(first) = c.messages.first_mut() {
            first.images.push(Image {
                format: "png".into(),
                data: "A".repeat(50_000),
            });
        }
        let built = build_ok(&c, &o);
        assert!(built.body_len > text_only + 50_000, "{}", built.body_len);
        // The same bytes as text do count.
        let mut as_text = long_conversation(1, 100);
        as_text.messages[0].text.push_str(&"A".repeat(50_000));
        assert!(matches!(
            build(&as_text, &o),
            Err(Error::ContextLengthExceeded(_))
        ));
    }

    #[test]
    fn an_image_over_the_kiro_base64_cap_is_refused_wherever_it_is() {
        let big = Image {
            format: "png".into(),
            data: "A".repeat(MAX_IMAGE_BASE64_BYTES + 1),
        };
        let mut in_history = long_conversation(1, 10);
        in_history.messages[0].images.push(big.clone());
        let mut in_result = long_conversation(1, 10);
        in_result.messages[2].tool_results.push(ToolResult {
            tool_use_id: "t".into(),
            text: "shot".into(),
            is_error: false,
            images: vec![big],
        });
        for c in [in_history, in_result] {
            match build(&c, &opts()) {
                Err(Error::PayloadTooLarge(m)) => assert!(m.contains("5242880"), "{m}"),
                other => panic!("expected PayloadTooLarge, got {other:?}"),
            }
        }
        let mut at_cap = long_conversation(1, 10);
        at_cap.messages[0].images.push(Image {
            format: "png".into(),
            data: "A".repeat(MAX_IMAGE_BASE64_BYTES),
        });
        assert!(build(&at_cap, &opts()).is_ok());
    }

    #[test]
    fn trimming_drops_oldest_turns_and_keeps_system_prompt_and_current_message() {
        let c = long_conversation(4, 1000);
        let len = full_len(&c);
        let o = PayloadOptions {
            max_body_bytes: len - 1500,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 2);
        assert!(built.body_len <= o.max_body_bytes);
        assert_eq!(built.body_len, built.to_bytes(&AttemptShape::DEFAULT).len());
        let built_body = built.body();
        let h = history(&built_body);
        assert_eq!(h.len(), 4);
        let first = h[0]["userInputMessage"]["content"].as_str().unwrap();
        assert!(
            first.starts_with("SYS\n\nq2 "),
            "system re-placed: {}",
            &first[..12]
        );
        assert_eq!(content(&built.body()), "final question");
    }

    #[test]
    fn trimmed_body_equals_the_body_without_those_turns_and_cuts_no_deeper() {
        let c = long_conversation(5, 700);
        let mut shorter = c.clone();
        shorter.messages.drain(..2);
        let expected = build_ok(&shorter, &opts());
        let o = PayloadOptions {
            max_body_bytes: expected.body_len,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 1);
        assert_eq!(built.body(), expected.body());
        assert_eq!(built.body_len, expected.body_len);
    }

    #[test]
    fn trimming_everything_moves_system_prompt_to_current_message() {
        let c = long_conversation(2, 1000);
        // The budget leaves room for the system additions and the last turn only.
        let last_only = build_ok(&long_conversation(0, 1000), &fake(50)).body_len;
        let o = PayloadOptions {
            max_body_bytes: last_only + 100,
            trim_oldest: true,
            ..fake(50)
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 2);
        assert!(!has_history(&built.body()));
        let built_body = built.body();
        let text = content(&built_body);
        assert!(text.starts_with(&injection_prefix(50)));
        assert!(text.contains("SYS"));
        assert!(text.ends_with("\n\nfinal question"));
    }

    #[test]
    fn trimming_never_separates_tool_uses_from_tool_results() {
        let big = "y".repeat(2000);
        let c = with_tools(
            conv(vec![
                user(&format!("old {big}")),
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("t1", &big)]),
                assistant("done"),
                user("recent"),
                assistant("ok"),
                user("now"),
            ]),
            &["bash"],
        );
        let len = full_len(&c);
        // Dropping the first turn alone would fit by size, but would leave t1's result first.
        let o = PayloadOptions {
            max_body_bytes: len - 2100,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 2);
        let built_body = built.body();
        let h = history(&built_body);
        assert_eq!(h.len(), 2);
        assert!(h[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap()
            .ends_with("recent"));
        let text = serde_json::to_string(&built.body()).unwrap();
        assert!(!text.contains("toolResults"));
        assert!(!text.contains("toolUses"));
    }

    #[test]
    fn trimming_keeps_a_tool_pair_ending_in_the_current_message() {
        let big = "z".repeat(3000);
        let c = with_tools(
            conv(vec![
                user(&big),
                assistant_calling(vec![call("t1", "bash", json!({}))]),
                user_with_results(vec![result("t1", "r")]),
            ]),
            &["bash"],
        );
        let o = PayloadOptions {
            max_body_bytes: 500,
            trim_oldest: true,
            ..opts()
        };
        match build(&c, &o) {
            Err(Error::ContextLengthExceeded(m)) => {
                assert!(m.contains("No older turn could be dropped"), "{m}")
            }
            other => panic!("expected ContextLengthExceeded, got {other:?}"),
        }
    }

    #[test]
    fn trimming_that_cannot_fit_is_context_length_exceeded() {
        let mut c = long_conversation(2, 100);
        if let Some(last) = c.messages.last_mut() {
            last.text = "w".repeat(5000);
        }
        let o = PayloadOptions {
            max_body_bytes: 1000,
            trim_oldest: true,
            ..opts()
        };
        match build(&c, &o) {
            Err(Error::ContextLengthExceeded(m)) => {
                assert!(
                    m.contains("Dropping the 2 oldest turn(s) still leaves"),
                    "{m}"
                )
            }
            other => panic!("expected ContextLengthExceeded, got {other:?}"),
        }
    }

    #[test]
    fn trimming_keeps_the_prefill_turn() {
        let mut c = long_conversation(3, 1000);
        c.messages.push(assistant("prefix of the answer"));
        let o = PayloadOptions {
            max_body_bytes: 1500,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 3);
        let built_body = built.body();
        let h = history(&built_body);
        assert_eq!(h.len(), 2);
        assert!(h[0]["userInputMessage"]["content"]
            .as_str()
            .unwrap()
            .ends_with("final question"));
        assert_eq!(
            h[1]["assistantResponseMessage"]["content"],
            "prefix of the answer"
        );
        assert_eq!(content(&built.body()), "Continue");
    }

    #[test]
    fn unlimited_budget_never_trims() {
        let c = long_conversation(50, 1000);
        let o = PayloadOptions {
            max_body_bytes: 0,
            trim_oldest: true,
            ..opts()
        };
        let built = build_ok(&c, &o);
        assert_eq!(built.trimmed_turns, 0);
        assert_eq!(history(&built.body()).len(), 100);
    }

    // --- token estimate ------------------------------------------------------------------

    #[test]
    fn estimate_tokens_counts_four_ascii_characters_per_token_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("a"), 1);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens(&"x".repeat(400)), 100);
    }

    #[test]
    fn estimate_tokens_counts_each_non_ascii_character_as_one_token() {
        assert_eq!(estimate_tokens("日本語"), 3);
        assert_eq!(estimate_tokens("abcd日本"), 3);
    }

    #[test]
    fn estimated_input_tokens_cover_contents_tools_and_results_but_not_images_or_ids() {
        let plain = build_ok(&conv(vec![user(&"x".repeat(400))]), &opts());
        assert_eq!(plain.estimated_input_tokens, 100);

        let with_image = Message {
            images: vec![png(&"A".repeat(100_000))],
            ..user(&"x".repeat(400))
        };
        let imaged = build_ok(&conv(vec![with_image]), &opts());
        assert_eq!(
            imaged.estimated_input_tokens, 100,
            "image bytes are not text"
        );

        let c = with_tools(
            conv(vec![
                user("go"),
                assistant_calling(vec![call("t1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("t1", &"r".repeat(4000))]),
            ]),
            &["bash"],
        );
        let built = build_ok(&c, &opts());
        let spec = current(&built.body())["userInputMessageContext"]["tools"][0]
            ["toolSpecification"]
            .to_string();
        let expected_ascii = "go".len()
            + "(empty)".len()
            + "bash".len()
            + json!({"cmd": "ls"}).to_string().len()
            + 4000
            + "Continue".len()
            + spec.len();
        assert_eq!(
            built.estimated_input_tokens,
            expected_ascii.div_ceil(4) as u64
        );
    }

    // --- a worked example: system, image, tool call and result ----------------------------

    #[test]
    fn spec_example_2_5_is_reproduced() {
        let c = Conversation {
            model: "claude-sonnet-4-5".into(),
            system: "SYS".into(),
            messages: vec![
                Message {
                    images: vec![png("AAAA")],
                    ..user("look")
                },
                assistant_calling(vec![call("tooluse_1", "bash", json!({"cmd": "ls"}))]),
                user_with_results(vec![result("tooluse_1", "a.txt")]),
                user("next"),
            ],
            tools: vec![ToolSpec {
                name: "bash".into(),
                description: String::new(),
                schema: json!({"type": "object", "properties": {"cmd": {"type": "string"}},
                                   "required": [], "additionalProperties": false}),
            }],
            ..Default::default()
        };
        let o = PayloadOptions {
            truncation_notice: true,
            ..fake(4000)
        };
        let built = build_ok(&c, &o);
        let b = &built.body();
        // The empty tool-result text adds no leading "\n" before "next".
        assert_eq!(
            current(b),
            &json!({
                "content": format!("{}next", injection_prefix(4000)),
                "modelId": "claude-sonnet-4.5",
                "origin": "AI_EDITOR",
                "userInputMessageContext": {
                    "tools": [{"toolSpecification": {"name": "bash", "description": "Tool: bash",
                        "inputSchema": {"json": {"type": "object",
                            "properties": {"cmd": {"type": "string"}}}}}}],
                    "toolResults": [{"content": [{"text": "a.txt"}], "status": "success",
                                     "toolUseId": "tooluse_1"}]
                }
            })
        );
        assert!(content(b).starts_with(
            "<thinking_mode>enabled</thinking_mode>\n<max_thinking_length>4000</max_thinking_length>\n"
        ));
        let h = history(b);
        assert_eq!(h.len(), 2);
        let u = &h[0]["userInputMessage"];
        let first = u["content"].as_str().unwrap();
        assert_eq!(
            first,
            format!(
                "SYS{}{}\n\nlook",
                system_addition(),
                truncation_system_addition()
            )
        );
        assert!(first.starts_with("SYS\n\n---\n# Extended Thinking Mode"));
        assert_eq!(u["modelId"], "claude-sonnet-4.5");
        assert_eq!(u["origin"], "AI_EDITOR");
        assert_eq!(
            u["images"],
            json!([{"format": "png", "source": {"bytes": "AAAA"}}])
        );
        assert_eq!(
            h[1],
            json!({"assistantResponseMessage": {"content": "(empty)",
                    "toolUses": [{"name": "bash", "input": {"cmd": "ls"}, "toolUseId": "tooluse_1"}]}})
        );
        assert!(built.fake_reasoning_injected);
        assert_eq!(built.trimmed_turns, 0);
        assert!(b.get("profileArn").is_none());
    }
}
