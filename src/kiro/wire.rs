//! The serde types of Kiro's `GenerateAssistantResponse` request body
//! (`docs/kiro-wire.md#request-body`) and of the event payloads the decoder reads
//! (`docs/kiro-wire.md#events`).
//!
//! The request types borrow from the prepared conversation (`kiro::payload`), so a body is built
//! for each attempt, with that attempt's [`AttemptShape`], and serialized straight to bytes: no
//! JSON tree is made and none is rewritten. Optional members are left out when empty, because
//! Kiro refuses empty lists and unknown members alike. No logic lives here beyond that.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What changes between two attempts of one request: the identity's `origin`, whether the IDE
/// runtime members (`agentMode`, `rootConversationId`) are sent, and the account's profile ARN
/// (`docs/kiro-wire.md#top-level-fields`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptShape<'a> {
    /// `AI_EDITOR` or `KIRO_CLI`.
    pub origin: &'a str,
    /// Top-level `agentMode: "vibe"` and `conversationState.rootConversationId`.
    pub runtime_body: bool,
    /// Top-level `profileArn` (never for API keys).
    pub profile_arn: Option<&'a str>,
    /// Replay the history's reasoning (`reasoningContent`); off for the retry after Kiro refused
    /// a signature.
    pub replay_reasoning: bool,
}

impl AttemptShape<'static> {
    /// The default identity's shape without an account: what bodies are measured with before an
    /// account is chosen (the ARN's few bytes are within the budget's slack).
    pub const DEFAULT: AttemptShape<'static> = AttemptShape {
        origin: "AI_EDITOR",
        runtime_body: true,
        profile_arn: None,
        replay_reasoning: true,
    };
}

/// The whole request body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest<'a> {
    pub conversation_state: ConversationState<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_mode: Option<&'static str>,
    /// Native reasoning, shaped by the model's schema (`docs/kiro-wire.md#reasoning`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<&'a Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationState<'a> {
    /// Always `MANUAL`.
    pub chat_trigger_type: &'static str,
    pub conversation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_conversation_id: Option<&'a str>,
    pub current_message: CurrentMessage<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentMessage<'a> {
    pub user_input_message: UserInputMessage<'a>,
}

/// One history entry: `{"userInputMessage":{…}}` or `{"assistantResponseMessage":{…}}`.
#[derive(Debug, Serialize)]
pub enum HistoryEntry<'a> {
    #[serde(rename = "userInputMessage")]
    User(UserInputMessage<'a>),
    #[serde(rename = "assistantResponseMessage")]
    Assistant(AssistantResponseMessage<'a>),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessage<'a> {
    pub content: Cow<'a, str>,
    pub model_id: &'a str,
    pub origin: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageBlock<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_input_message_context: Option<UserInputMessageContext<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessageContext<'a> {
    /// Offered only in the current message, never in history.
    #[serde(skip_serializing_if = "<[Tool]>::is_empty")]
    pub tools: &'a [Tool],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<ToolResultBlock<'a>>,
}

/// `{"toolSpecification":{…}}`. Owned: built once per request from the client's tools.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub tool_specification: ToolSpecification,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpecification {
    pub name: String,
    pub description: String,
    pub input_schema: InputSchema,
}

/// `{"json": <JSON Schema>}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSchema {
    pub json: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResultBlock<'a> {
    pub tool_use_id: &'a str,
    pub content: [TextBlock<'a>; 1],
    pub status: ToolStatus,
}

#[derive(Debug, Serialize)]
pub struct TextBlock<'a> {
    pub text: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolStatus {
    Success,
    Error,
}

/// `{"format":"png","source":{"bytes":"<base64>"}}`.
#[derive(Debug, Serialize)]
pub struct ImageBlock<'a> {
    pub format: &'a str,
    pub source: ImageSource<'a>,
}

#[derive(Debug, Serialize)]
pub struct ImageSource<'a> {
    pub bytes: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantResponseMessage<'a> {
    pub content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_uses: Vec<ToolUse<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<ReasoningContent<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse<'a> {
    pub tool_use_id: &'a str,
    pub name: &'a str,
    /// Always a JSON object.
    pub input: &'a Value,
}

/// Replayed reasoning, only in the nested form (`docs/kiro-wire.md#reasoning`):
/// `{"reasoningText":{"text","signature"}}` or `{"redactedContent":"<blob>"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ReasoningContent<'a> {
    ReasoningText { text: &'a str, signature: &'a str },
    RedactedContent(&'a str),
}

// --- event payloads ---------------------------------------------------------------------------
//
// Kiro's flags and numbers are read leniently (a number may come as a string, a flag as any
// truthy value), so the fields that need it stay `Value` and the decoder interprets them.

/// `assistantResponseEvent` / `codeEvent`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextPayload {
    pub content: Option<Value>,
    pub followup_prompt: Option<Value>,
}

/// `toolUseEvent`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUsePayload {
    pub tool_use_id: Option<Value>,
    pub name: Option<Value>,
    pub input: Option<Value>,
    pub stop: Option<Value>,
}

/// `reasoningContentEvent`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningPayload {
    pub text: Option<Value>,
    pub signature: Option<Value>,
    pub redacted_content: Option<Value>,
}

/// `meteringEvent`.
#[derive(Debug, Default, Deserialize)]
pub struct MeteringPayload {
    pub usage: Option<Value>,
}

/// `contextUsageEvent`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextUsagePayload {
    pub context_usage_percentage: Option<Value>,
}

/// `metadataEvent` / `messageMetadataEvent`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataPayload {
    pub token_usage: Option<Value>,
    pub stop_reason: Option<Value>,
}

/// `metadataEvent.tokenUsage`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsagePayload {
    pub uncached_input_tokens: Option<Value>,
    pub cache_read_input_tokens: Option<Value>,
    pub cache_write_input_tokens: Option<Value>,
    pub output_tokens: Option<Value>,
    pub total_tokens: Option<Value>,
}

/// Exception frames, `invalidStateEvent` and error bodies: `{message | Message, reason, __type}`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorPayload {
    pub message: Option<Value>,
    /// Some AWS services capitalise it.
    #[serde(rename = "Message")]
    pub message_capitalised: Option<Value>,
    pub reason: Option<Value>,
    #[serde(rename = "__type")]
    pub aws_type: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_optional_members_are_left_out() {
        let req = GenerateRequest {
            conversation_state: ConversationState {
                chat_trigger_type: "MANUAL",
                conversation_id: "c",
                root_conversation_id: None,
                current_message: CurrentMessage {
                    user_input_message: UserInputMessage {
                        content: "hi".into(),
                        model_id: "m",
                        origin: "AI_EDITOR",
                        images: Vec::new(),
                        user_input_message_context: None,
                    },
                },
                history: Vec::new(),
            },
            profile_arn: None,
            agent_mode: None,
            additional_model_request_fields: None,
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"conversationState": {
                "chatTriggerType": "MANUAL", "conversationId": "c",
                "currentMessage": {"userInputMessage": {
                    "content": "hi", "modelId": "m", "origin": "AI_EDITOR"}}}})
        );
    }

    #[test]
    fn history_entries_and_reasoning_are_externally_tagged() {
        let input = json!({"cmd": "ls"});
        let entry = HistoryEntry::Assistant(AssistantResponseMessage {
            content: "ok",
            tool_uses: vec![ToolUse {
                tool_use_id: "t1",
                name: "bash",
                input: &input,
            }],
            reasoning_content: Some(ReasoningContent::ReasoningText {
                text: "hm",
                signature: "sig",
            }),
        });
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            json!({"assistantResponseMessage": {
                "content": "ok",
                "toolUses": [{"toolUseId": "t1", "name": "bash", "input": {"cmd": "ls"}}],
                "reasoningContent": {"reasoningText": {"text": "hm", "signature": "sig"}}}})
        );
        let redacted = ReasoningContent::RedactedContent("blob");
        assert_eq!(
            serde_json::to_value(&redacted).unwrap(),
            json!({"redactedContent": "blob"})
        );
    }

    #[test]
    fn tool_results_carry_one_text_block_and_a_lowercase_status() {
        let block = ToolResultBlock {
            tool_use_id: "t1",
            content: [TextBlock { text: "out" }],
            status: ToolStatus::Error,
        };
        assert_eq!(
            serde_json::to_value(&block).unwrap(),
            json!({"toolUseId": "t1", "content": [{"text": "out"}], "status": "error"})
        );
    }

    #[test]
    fn error_payload_reads_either_spelling_of_message() {
        let p: ErrorPayload =
            serde_json::from_str(r#"{"Message":"m","__type":"a#B","reason":"R"}"#).unwrap();
        assert_eq!(p.message_capitalised, Some(json!("m")));
        assert_eq!(p.aws_type, Some(json!("a#B")));
        assert_eq!(p.reason, Some(json!("R")));
    }
}
