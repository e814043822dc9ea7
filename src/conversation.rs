//! The neutral model every client format is translated into, and the neutral output events every
//! client format is translated back from.
//!
//! Nothing here knows OpenAI, Anthropic or Kiro JSON (images arrive as base64 or `data:` URLs in
//! every format, so their checks live here): `openai/`, `anthropic/` and `responses/`
//! parse into a [`Conversation`], `kiro::payload` turns a [`Conversation`] into Kiro's request body,
//! and `relay` turns Kiro's reply into a sequence of [`OutputEvent`]s that each format writes.

use serde_json::Value;

use crate::websearch::{Citation, SearchFailure, SearchHit, WebSearchRequest};

use crate::error::Error;

/// Who said a message. Client roles such as `developer` or `tool` are mapped at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// An image sent by the client, already reduced to what Kiro takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The part after `image/` in the media type: `png`, `jpeg`, `gif`, `webp`.
    pub format: String,
    /// Pure base64, without any `data:` prefix.
    pub data: String,
}

impl Image {
    /// A `data:image/...;base64,...` URL → [`Image`]. Remote URLs are refused: we do not fetch
    /// URLs on a user's behalf.
    pub fn from_data_url(url: &str, max_bytes: usize) -> Result<Image, Error> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Err(bad(
                "Remote image URLs are not supported: send the image inline as a data: URL (data:image/png;base64,...).",
            ));
        }
        let rest = url
            .strip_prefix("data:")
            .ok_or_else(|| bad("An image URL must be a data: URL (data:image/png;base64,...)."))?;
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad("The image data: URL has no data."))?;
        let media = meta.trim_end_matches(";base64");
        Image::from_base64(media, data, max_bytes)
    }

    /// Validate a base64 image and its media type.
    pub fn from_base64(media_type: &str, data: &str, max_bytes: usize) -> Result<Image, Error> {
        let format = media_type
            .strip_prefix("image/")
            .unwrap_or(media_type)
            .to_ascii_lowercase();
        let format = if format == "jpg" {
            "jpeg".to_string()
        } else {
            format
        };
        if !matches!(format.as_str(), "png" | "jpeg" | "gif" | "webp") {
            return Err(bad(format!(
                "Image type '{media_type}' is not supported: use png, jpeg, gif or webp."
            )));
        }
        let data = data.trim();
        if data.is_empty() {
            return Err(bad("An image has no data."));
        }
        if data.len() / 4 * 3 > max_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "An image is larger than the limit of {max_bytes} bytes (MAX_IMAGE_BYTES)."
            )));
        }
        let base64 =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r');
        if !data.bytes().all(base64) {
            return Err(bad("Image data is not valid base64."));
        }
        Ok(Image {
            format,
            data: data.to_string(),
        })
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

impl OutputFormat {
    /// The answer format a request names, read the same way for every API: `kind` is its `type`
    /// (`text`, `json_object`, `json_schema`; `kind_at` names that field), and `spec` the object
    /// holding `name`, `description`, `schema` and `strict` (`spec_at` names it). `text` is no
    /// format at all. A `json_schema` format without a schema object is refused, naming the field.
    pub fn from_request(
        kind: &str,
        spec: Option<&Value>,
        kind_at: &str,
        spec_at: &str,
    ) -> Result<Option<OutputFormat>, Error> {
        match kind {
            "text" => Ok(None),
            "json_object" => Ok(Some(OutputFormat::JsonObject)),
            "json_schema" => {
                let spec = spec.and_then(Value::as_object).ok_or_else(|| {
                    bad(format!(
                        "{spec_at} is required for a json_schema format and must be an object."
                    ))
                })?;
                let schema = match spec.get("schema") {
                    None | Some(Value::Null) => {
                        return Err(bad(format!(
                            "{spec_at}.schema is required: a json_schema format needs the JSON Schema of the answer."
                        )))
                    }
                    Some(v @ Value::Object(_)) => v.clone(),
                    Some(_) => {
                        return Err(bad(format!(
                            "{spec_at}.schema must be a JSON Schema object."
                        )))
                    }
                };
                let text = |k: &str| spec.get(k).and_then(Value::as_str).map(str::to_string);
                Ok(Some(OutputFormat::JsonSchema {
                    name: text("name").unwrap_or_else(|| "response".to_string()),
                    description: text("description"),
                    schema,
                    strict: spec.get("strict").and_then(Value::as_bool).unwrap_or(false),
                }))
            }
            other => Err(bad(format!(
                "{kind_at} '{other}' is not supported: use text, json_object or json_schema."
            ))),
        }
    }
}

/// A tool call the assistant made, in history.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON value (Kiro wants an object, never a string).
    pub input: Value,
}

/// The result of a tool call, sent back by the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub tool_use_id: String,
    pub text: String,
    pub is_error: bool,
    pub images: Vec<Image>,
}

/// Reasoning the model produced earlier, replayed in history (native reasoning needs its signature).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reasoning {
    pub text: String,
    pub signature: Option<String>,
    pub redacted: Option<String>,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub text: String,
    pub images: Vec<Image>,
    pub tool_calls: Vec<ToolCall>,
    pub tool_results: Vec<ToolResult>,
    pub reasoning: Option<Reasoning>,
}

impl Message {
    /// A message with only text.
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            text: text.into(),
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_results: Vec::new(),
            reasoning: None,
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments (cleaned up for Kiro in `kiro::payload`).
    pub schema: Value,
}

/// What the client allows the model to do with the tools.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    #[default]
    Auto,
    /// No tool may be called: no tools are sent to Kiro.
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Named(String),
}

/// What the client asked for in terms of reasoning ("extended thinking").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReasoningRequest {
    /// OpenAI `reasoning_effort`, Responses `reasoning.effort`, Anthropic `output_config.effort`.
    pub effort: Option<String>,
    /// Anthropic `thinking.budget_tokens`.
    pub budget_tokens: Option<u32>,
    /// The client explicitly turned thinking off (`thinking.type = disabled`, effort `none`).
    pub disabled: bool,
    /// The client's API shows reasoning only when asked for, and it was not asked for (an
    /// Anthropic request without `thinking` or an effort): no prompt-tag reasoning is requested,
    /// since its answer must not carry thinking blocks. Native fields are unaffected (none are
    /// sent without a request).
    pub unasked: bool,
    /// Anthropic `thinking.display: "omitted"`: thinking blocks come back without their text.
    /// Kiro is still asked for it, since a block replayed in history must give it back.
    pub omit_text: bool,
}

/// A whole client request, format-neutral.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversation {
    /// The model name as the client sent it (echoed back unchanged).
    pub model: String,
    /// System prompt (all system/developer messages joined).
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    /// Hosted tools the client offered that the gateway cannot run (`file_search`, …): left out of
    /// what Kiro sees, and named to the client in `x-kiro-gateway-ignored-tools`.
    pub ignored_tools: Vec<String>,
    pub tool_choice: ToolChoice,
    pub reasoning: ReasoningRequest,
    pub max_output_tokens: Option<u32>,
    /// Applied by the gateway to the output (Kiro has no such field).
    pub stop_sequences: Vec<String>,
    /// Whether the client wants a stream.
    pub stream: bool,
    /// The shape the answer must take (structured outputs); `None` for free text.
    pub output_format: Option<OutputFormat>,
    /// At most one tool call per answer (`parallel_tool_calls: false`).
    pub single_tool_call: bool,
    /// The client's hosted web search tool (served unless `WEB_SEARCH=off`; never in
    /// `ignored_tools`).
    pub web_search: Option<WebSearchRequest>,
    /// The client's own key for this conversation, when it sends one (Responses
    /// `prompt_cache_key`, the session in Anthropic `metadata.user_id`, OpenAI `user` with the
    /// first message): the same for every turn, so Kiro sees one conversation id.
    pub client_key: Option<String>,
}

impl Conversation {
    /// The text of the first user message ("" when there is none).
    pub fn first_user_text(&self) -> &str {
        self.messages
            .iter()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.text.as_str())
    }
}

/// A structured answer the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputFormat {
    /// A JSON value following `schema` (a JSON Schema object). `name` and `strict` are echoed.
    JsonSchema {
        name: String,
        description: Option<String>,
        schema: Value,
        strict: bool,
    },
    /// Any JSON object.
    JsonObject,
}

/// A piece of the model's answer, in the order it must reach the client.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputEvent {
    /// Visible answer text.
    Text(String),
    /// Reasoning text (native or parsed out of thinking tags).
    Reasoning(String),
    /// The signature closing a native reasoning block.
    ReasoningSignature(String),
    /// Opaque redacted reasoning.
    RedactedReasoning(String),
    /// What the model said instead of the structured answer the client asked for.
    Refusal(String),
    /// A tool call begins. `index` counts tool calls of this reply from 0.
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// More argument text of tool call `index`, as it arrived from Kiro.
    ToolCallArguments { index: usize, fragment: String },
    /// Tool call `index` is complete; `arguments` is the whole, valid JSON text.
    ToolCallEnd { index: usize, arguments: String },
    /// The model asked for a web search, which starts now. `id` is bare hex: each format adds
    /// its own prefix (`srvtoolu_`, `ws_`).
    WebSearchCall { id: String, query: String },
    /// The web search `id` ended: the pages found (already filtered), or why none.
    WebSearchResult {
        id: String,
        query: String,
        outcome: Result<Vec<SearchHit>, SearchFailure>,
    },
    /// Places in the text written since the last non-text event that cite search results
    /// (offsets count from the start of that text); sent before anything else follows it.
    Citations(Vec<Citation>),
}

/// Why the reply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// The model finished its answer.
    Stop,
    /// The model called tools.
    ToolCalls,
    /// The output was cut (by Kiro, or a tool call's arguments were truncated).
    Length,
    /// One of the client's stop sequences matched.
    StopSequence(String),
    /// The model ended without the structured answer the client asked for; what it said came
    /// as [`OutputEvent::Refusal`].
    FormatNotMet,
}

/// Token figures for one reply.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Kiro credits spent (`meteringEvent.usage`), when Kiro said.
    pub credits: Option<f64>,
    /// Web searches made for this reply.
    pub web_search_requests: u32,
}

/// How a reply ended, once every event was delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub finish: FinishReason,
    pub usage: Usage,
    /// Tool calls whose arguments were cut by Kiro and withheld or closed early.
    pub truncated_tool_calls: usize,
}
