//! Anthropic Messages API: `POST /v1/messages` (streaming and not) and
//! `POST /v1/messages/count_tokens`.
//!
//! The edges of the shared pipeline: the request ([`request`]) and the Anthropic events or the
//! `message` object ([`response`], [`stream`]). Every failure on these routes is answered in Anthropic's
//! error shape. The `anthropic-beta` header is accepted and ignored; `anthropic-version` only
//! picks Anthropic's shape for `GET /v1/models` ([`list_models`], [`retrieve_model`]).

mod content;
pub mod request;
pub mod response;
mod signature;
pub mod stream;

use serde_json::{json, Value};

use crate::conversation::{Conversation, Outcome};
use crate::debug::DebugCapture;
use crate::error::Error;
use crate::http::Incoming;
use crate::pipeline::{App, ErrorShape, Format, Prepared, StreamInfo};
use crate::relay::collector::Collector;
use crate::sse::SseWriter;

use request::{parse_messages_request, Purpose};
use stream::StreamWriter;

/// `POST /v1/messages` (`Messages(Purpose::Generate)`) and `POST /v1/messages/count_tokens`
/// (`Messages(Purpose::CountTokens)`: the same estimate the usage figures start from, Kiro is
/// not called).
pub struct Messages(pub Purpose);

impl ErrorShape for Messages {
    fn error_body(&self, e: &Error) -> (u16, Value) {
        response::error_body(e)
    }
}

impl Format for Messages {
    type Request = Conversation;
    type Collect = Collector;
    type Stream<'a> = StreamWriter<'a>;

    fn parse(&self, app: &App, body: &[u8]) -> Result<Conversation, Error> {
        parse_messages_request(body, app.config.max_image_bytes, self.0)
    }

    fn model<'r>(&self, conv: &'r Conversation) -> &'r str {
        &conv.model
    }

    fn conversation<'r>(&self, conv: &'r Conversation) -> &'r Conversation {
        conv
    }

    fn conversation_mut<'r>(&self, conv: &'r mut Conversation) -> &'r mut Conversation {
        conv
    }

    fn answer_locally(&self, app: &App, _: &Conversation, prepared: &Prepared) -> Option<Value> {
        (self.0 == Purpose::CountTokens)
            .then(|| json!({"input_tokens": app.input_tokens(prepared)}))
    }

    fn collector(&self, _: &Conversation) -> Collector {
        Collector::default()
    }

    fn body(
        &self,
        _: &App,
        conv: &Conversation,
        mut collected: Collector,
        outcome: &Outcome,
    ) -> Result<Value, Error> {
        collected.close_parts();
        Ok(response::message_json(
            &conv.model,
            &collected,
            outcome,
            conv.reasoning.omit_text,
        ))
    }

    fn stream<'a>(
        &'a self,
        _: &'a App,
        conv: &'a Conversation,
        sse: &'a mut SseWriter,
        info: StreamInfo,
    ) -> StreamWriter<'a> {
        StreamWriter::new(sse, &conv.model, info.input_tokens, info.trace)
            .omitting_thinking(conv.reasoning.omit_text)
    }
}

/// `GET /v1/models` with `anthropic-version`: Anthropic's list (one page, `has_more: false`).
pub fn list_models(app: &App, inc: &mut Incoming) {
    let models: Vec<Value> = app
        .models
        .list_ids()
        .iter()
        .map(|id| model_of(app, id))
        .collect();
    let first = models.first().map(|m| m["id"].clone());
    let last = models.last().map(|m| m["id"].clone());
    let body = json!({"data": models, "has_more": false, "first_id": first, "last_id": last});
    inc.respond_json(200, &body, &[]);
}

fn model_of(app: &App, id: &str) -> Value {
    let info = app.models.info_for(id);
    let info = info.as_ref();
    response::model_json(
        id,
        info.and_then(|m| m.display_name.as_deref()),
        info.and_then(|m| m.max_input_tokens),
        info.and_then(|m| m.max_output_tokens),
    )
}

/// `GET /v1/models/{id}` with `anthropic-version`: the model for any name a request may use (the
/// same resolution a message gets), else 404 `not_found_error`.
pub fn retrieve_model(app: &App, inc: &mut Incoming, id: &str) {
    match app.models.resolve(id) {
        Ok(_) => {
            let body = model_of(app, id);
            inc.respond_json(200, &body, &[]);
        }
        Err(e) => {
            let shape = Messages(Purpose::Generate);
            crate::pipeline::respond_error(inc, &shape, &e, &mut DebugCapture::off());
        }
    }
}
