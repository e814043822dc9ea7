//! (being written by the payload helper; temporary stub)
use crate::conversation::Conversation;
use crate::error::Error;
use serde_json::Value;
pub struct PayloadOptions {
    pub model_id: String,
    pub origin: String,
    pub runtime_shape: bool,
    pub conversation_id: String,
    pub fake_reasoning_max_tokens: Option<u32>,
    pub reasoning_fields: Option<Value>,
    pub tool_description_max_length: usize,
    pub truncation_notice: bool,
    pub max_body_bytes: usize,
    pub trim_oldest: bool,
}
pub struct BuiltPayload {
    pub body: Value,
    pub body_len: usize,
    pub trimmed_turns: usize,
    pub fake_reasoning_injected: bool,
    pub estimated_input_tokens: u64,
}
pub fn build(conv: &Conversation, opts: &PayloadOptions) -> Result<BuiltPayload, Error> {
    let _ = (conv, opts);
    Err(Error::Internal("payload stub".into()))
}
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}
