//! A [`Prepared`] conversation → the typed body of one attempt (`docs/kiro-wire.md#request-body`).
//!
//! Rendering only borrows: every string in the body points into the prepared conversation, except
//! the contents that get the system prompt or the thinking tags put in front.

use std::borrow::Cow;

use super::normalise::{replayable, result_text, Prepared};
use super::EMPTY_TEXT;
use crate::conversation::{Image, Message, Reasoning, Role, ToolResult};
use crate::kiro::wire::{
    AssistantResponseMessage, AttemptShape, ConversationState, CurrentMessage, GenerateRequest,
    HistoryEntry, ImageBlock, ImageSource, ReasoningContent, TextBlock, Tool, ToolResultBlock,
    ToolStatus, ToolUse, UserInputMessage, UserInputMessageContext,
};

impl Prepared {
    /// The body with the first `drop` history entries left out. The system prompt goes in front
    /// of the first remaining history message, or of the current message when none remains.
    pub(super) fn request<'a>(
        &'a self,
        drop: usize,
        shape: &AttemptShape<'a>,
    ) -> GenerateRequest<'a> {
        let history = self.history.get(drop..).unwrap_or(&[]);
        let system = (!self.system.trim().is_empty()).then_some(self.system.as_str());
        let system_on_current = !history.first().is_some_and(|m| m.role == Role::User);

        let entries: Vec<HistoryEntry> = history
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let sys = system.filter(|_| i == 0 && !system_on_current);
                self.history_entry(m, sys, shape)
            })
            .collect();

        let mut content = String::new();
        if let Some(prefix) = &self.inject {
            // The tags go in front of everything, the system prompt included
            // (`docs/kiro-wire.md#prompt-tag-reasoning`).
            content.push_str(prefix);
        }
        if let (true, Some(sys)) = (system_on_current, system) {
            content.push_str(sys);
            content.push_str("\n\n");
        }
        let content = if content.is_empty() {
            Cow::Borrowed(self.current.text.as_str())
        } else {
            content.push_str(&self.current.text);
            Cow::Owned(content)
        };
        let current = self.user_input_message(&self.current, content, &self.tools, shape);

        // No `agentTaskType` / `agentContinuationId`: one report says they are now rejected
        // (`docs/kiro-wire.md#top-level-fields`), and nothing needs them. No sampling parameters
        // either: Kiro has none.
        GenerateRequest {
            conversation_state: ConversationState {
                chat_trigger_type: "MANUAL",
                conversation_id: &self.conversation_id,
                root_conversation_id: shape.runtime_body.then_some(self.conversation_id.as_str()),
                current_message: CurrentMessage {
                    user_input_message: current,
                },
                history: entries,
            },
            profile_arn: shape.profile_arn,
            agent_mode: shape.runtime_body.then_some("vibe"),
            // The caller only sets this for models whose schema has it: Claude ≤ 4.5 answers 400
            // to any `additionalModelRequestFields` (`docs/kiro-wire.md#reasoning`).
            additional_model_request_fields: self.reasoning_fields.as_ref(),
        }
    }

    /// One history entry; `system` goes in front of a user message's text.
    pub(super) fn history_entry<'a>(
        &'a self,
        m: &'a Message,
        system: Option<&str>,
        shape: &AttemptShape<'a>,
    ) -> HistoryEntry<'a> {
        match m.role {
            Role::User => {
                let text = non_empty_or(&m.text, EMPTY_TEXT);
                let content = match system {
                    Some(sys) => Cow::Owned(format!("{sys}\n\n{text}")),
                    None => Cow::Borrowed(text),
                };
                // Tools are defined in the current message only, never in history.
                HistoryEntry::User(self.user_input_message(m, content, &[], shape))
            }
            Role::Assistant => HistoryEntry::Assistant(AssistantResponseMessage {
                content: non_empty_or(&m.text, EMPTY_TEXT),
                tool_uses: m
                    .tool_calls
                    .iter()
                    .map(|c| ToolUse {
                        tool_use_id: &c.id,
                        name: &c.name,
                        input: &c.input,
                    })
                    .collect(),
                reasoning_content: m
                    .reasoning
                    .as_ref()
                    .filter(|_| shape.replay_reasoning)
                    .and_then(reasoning_content),
            }),
        }
    }

    /// A `userInputMessage`. `modelId` and `origin` go in every one, history included; `images` and
    /// `userInputMessageContext` are left out when empty.
    fn user_input_message<'a>(
        &'a self,
        m: &'a Message,
        content: Cow<'a, str>,
        tools: &'a [Tool],
        shape: &AttemptShape<'a>,
    ) -> UserInputMessage<'a> {
        let context =
            (!tools.is_empty() || !m.tool_results.is_empty()).then(|| UserInputMessageContext {
                tools,
                tool_results: m.tool_results.iter().map(tool_result_block).collect(),
            });
        UserInputMessage {
            content,
            model_id: &self.model_id,
            origin: shape.origin,
            images: image_blocks(&m.images),
            user_input_message_context: context,
        }
    }
}

/// `assistantResponseMessage.reasoningContent` (`docs/kiro-wire.md#reasoning`). Only the nested
/// form works: the flat form gets 400 `REQUEST_BODY_INVALID`, and so does a `signature` blob sent
/// as `redactedContent`, so a blob goes back in the field it came in.
fn reasoning_content(r: &Reasoning) -> Option<ReasoningContent<'_>> {
    if !replayable(r) {
        return None;
    }
    if let Some(signature) = r.signature.as_deref().filter(|s| !s.is_empty()) {
        return Some(ReasoningContent::ReasoningText {
            text: &r.text,
            signature,
        });
    }
    r.redacted
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(ReasoningContent::RedactedContent)
}

fn image_blocks(images: &[Image]) -> Vec<ImageBlock<'_>> {
    images
        .iter()
        // An image without bytes is rejected; the client formats skip them too.
        .filter(|img| !img.data.is_empty())
        .map(|img| ImageBlock {
            format: &img.format,
            source: ImageSource { bytes: &img.data },
        })
        .collect()
}

fn tool_result_block(r: &ToolResult) -> ToolResultBlock<'_> {
    ToolResultBlock {
        tool_use_id: &r.tool_use_id,
        content: [TextBlock {
            text: result_text(r),
        }],
        status: if r.is_error {
            ToolStatus::Error
        } else {
            ToolStatus::Success
        },
    }
}

fn non_empty_or<'a>(text: &'a str, fallback: &'static str) -> &'a str {
    if text.trim().is_empty() {
        fallback
    } else {
        text
    }
}
