//! OpenAI Responses API: `POST /v1/responses`, streaming and not, with follow-ups by
//! `previous_response_id` served from the pipeline's bounded in-memory store.
//!
//! The edges of the shared pipeline, like `openai`: the request ([`request`]) plus the stored
//! history it continues, and the Responses events or object ([`response`]). No Kiro logic lives
//! here; errors are OpenAI-shaped, with `context_length_exceeded` for an overflow.

pub mod items;
mod output;
pub mod request;
pub mod response;
pub mod tools;

use std::sync::Arc;

use serde_json::Value;

use crate::conversation::{Conversation, Outcome, OutputEvent};
use crate::error::{openai_body, Error};
use crate::pipeline::store::Turn;
use crate::pipeline::{App, ErrorShape, Format, Stream, StreamInfo};
use crate::relay::Sink;
use crate::sse::SseWriter;

use request::ResponsesRequest;
use response::{ResponseHead, ResponseWriter};

/// `POST /v1/responses`.
pub struct Responses;

/// A request with the history it continues.
pub struct Call {
    req: ResponsesRequest,
    /// The stored response `previous_response_id` names.
    parent: Option<Arc<Turn>>,
    /// The stored history, then this request's input.
    conv: Conversation,
}

impl ErrorShape for Responses {
    fn error_body(&self, e: &Error) -> (u16, Value) {
        openai_body(e)
    }
}

impl Format for Responses {
    type Request = Call;
    type Collect = ResponseWriter<'static>;
    type Stream<'a> = Streamed<'a>;

    fn parse(&self, app: &App, body: &[u8]) -> Result<Call, Error> {
        let req = request::parse_responses_request(body, app.config.max_image_bytes)?;
        Ok(Call {
            req,
            parent: None,
            conv: Conversation::default(),
        })
    }

    fn model<'r>(&self, call: &'r Call) -> &'r str {
        &call.req.model
    }

    fn recall(&self, app: &App, call: &mut Call) -> Result<(), Error> {
        if let Some(id) = &call.req.previous_response_id {
            let turn = app.responses.get(id);
            call.parent = Some(turn.ok_or_else(|| Error::PreviousResponseNotFound(id.clone()))?);
        }
        let (history_system, history) = call
            .parent
            .as_ref()
            .map(|t| (t.system(), t.messages()))
            .unwrap_or_default();
        call.conv = call.req.conversation(&history_system, history)?;
        Ok(())
    }

    fn conversation<'r>(&self, call: &'r Call) -> &'r Conversation {
        &call.conv
    }

    fn conversation_mut<'r>(&self, call: &'r mut Call) -> &'r mut Conversation {
        &mut call.conv
    }

    fn collector(&self, call: &Call) -> ResponseWriter<'static> {
        ResponseWriter::collecting(ResponseHead::new(&call.req))
    }

    fn body(
        &self,
        app: &App,
        call: &Call,
        mut collected: ResponseWriter<'static>,
        outcome: &Outcome,
    ) -> Result<Value, Error> {
        let body = collected
            .finish(outcome)
            .map_err(|e| Error::Internal(format!("building the response: {e}")))?;
        remember(app, call, &collected);
        Ok(body)
    }

    fn stream<'a>(
        &'a self,
        app: &'a App,
        call: &'a Call,
        sse: &'a mut SseWriter,
        info: StreamInfo,
    ) -> Streamed<'a> {
        Streamed {
            writer: ResponseWriter::new(sse, ResponseHead::new(&call.req), info.trace),
            app,
            call,
        }
    }
}

/// Keep the reply for follow-ups: its input and its output, on top of the history it continued.
fn remember(app: &App, call: &Call, w: &ResponseWriter) {
    if !call.req.store {
        return;
    }
    let mut messages = call.req.input.clone();
    messages.extend(w.assistant_message());
    let turn = Turn::new(call.parent.clone(), call.req.input_system.clone(), messages);
    app.responses.put(w.id().to_string(), turn);
}

/// A streamed reply, kept for follow-ups once it is complete.
pub struct Streamed<'a> {
    writer: ResponseWriter<'a>,
    app: &'a App,
    call: &'a Call,
}

impl Sink for Streamed<'_> {
    fn emit(&mut self, event: OutputEvent) -> std::io::Result<()> {
        self.writer.emit(event)
    }

    fn keepalive(&mut self) -> std::io::Result<()> {
        self.writer.keepalive()
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl Stream for Streamed<'_> {
    fn start(&mut self) -> std::io::Result<()> {
        self.writer.start()
    }

    fn finish(&mut self, outcome: &Outcome) -> std::io::Result<()> {
        self.writer.finish(outcome)?;
        remember(self.app, self.call, &self.writer);
        Ok(())
    }

    fn fail(&mut self, e: &Error) -> std::io::Result<()> {
        self.writer.fail(e)
    }

    fn take_trace(&mut self) -> Option<String> {
        self.writer.trace.take()
    }
}
