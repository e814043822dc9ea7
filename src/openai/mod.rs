//! OpenAI Chat Completions and the model list: `POST /v1/chat/completions`, `GET /v1/models`.
//! The edges of the shared pipeline: the request ([`request`]) and the chunks or the
//! `chat.completion` object ([`response`]). Errors are OpenAI's error object.

pub mod request;
pub mod response;

use serde_json::Value;

use crate::conversation::{Conversation, Outcome};
use crate::debug::DebugCapture;
use crate::error::{openai_body, Error};
use crate::http::Incoming;
use crate::pipeline::{App, ErrorShape, Format, StreamInfo};
use crate::relay::collector::Collector;
use crate::sse::SseWriter;

use request::ChatRequest;
use response::ChunkWriter;

/// `POST /v1/chat/completions`.
pub struct Chat;

impl ErrorShape for Chat {
    fn error_body(&self, e: &Error) -> (u16, Value) {
        openai_body(e)
    }
}

impl Format for Chat {
    type Request = ChatRequest;
    type Collect = Collector;
    type Stream<'a> = ChunkWriter<'a>;

    fn parse(&self, app: &App, body: &[u8]) -> Result<ChatRequest, Error> {
        request::parse_chat_request(body, app.config.max_image_bytes)
    }

    fn model<'r>(&self, req: &'r ChatRequest) -> &'r str {
        &req.conversation.model
    }

    fn conversation<'r>(&self, req: &'r ChatRequest) -> &'r Conversation {
        &req.conversation
    }

    fn conversation_mut<'r>(&self, req: &'r mut ChatRequest) -> &'r mut Conversation {
        &mut req.conversation
    }

    fn collector(&self, _: &ChatRequest) -> Collector {
        Collector::default()
    }

    fn body(
        &self,
        _: &App,
        req: &ChatRequest,
        collected: Collector,
        outcome: &Outcome,
    ) -> Result<Value, Error> {
        Ok(response::completion_json(
            &req.conversation.model,
            &collected,
            outcome,
        ))
    }

    fn stream<'a>(
        &'a self,
        _: &'a App,
        req: &'a ChatRequest,
        sse: &'a mut SseWriter,
        info: StreamInfo,
    ) -> ChunkWriter<'a> {
        ChunkWriter::new(sse, &req.conversation.model, req.include_usage, info)
    }
}

/// `GET /v1/models`.
pub fn list_models(app: &App, inc: &mut Incoming) {
    let body = response::models_json(&app.models.list_ids());
    inc.respond_json(200, &body, &[]);
}

/// `GET /v1/models/{id}`: the model object for any name a request may use (the same resolution
/// a completion gets), else 404 `model_not_found`.
pub fn retrieve_model(app: &App, inc: &mut Incoming, id: &str) {
    match app.models.resolve(id) {
        Ok(_) => inc.respond_json(200, &response::model_json(id), &[]),
        Err(e) => crate::pipeline::respond_error(inc, &Chat, &e, &mut DebugCapture::off()),
    }
}
