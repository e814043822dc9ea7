//! OpenAI Responses API: `POST /v1/responses`, streaming and not, with follow-ups by
//! `previous_response_id` served from the bounded in-memory [`store`].
//!
//! A thin translation at the edge, like `openai`: parse ([`request`]) → add the stored history →
//! shared core (`gateway`) → relay → Responses events or object ([`response`]). No Kiro logic
//! lives here; errors are OpenAI-shaped, with `context_length_exceeded` for an overflow.

pub mod request;
pub mod response;
pub mod store;

use serde_json::json;

use crate::debug::DebugCapture;
use crate::error::Error;
use crate::gateway::App;
use crate::http::Incoming;
use crate::relay::RelayError;

use request::ResponsesRequest;
use response::{Discard, ResponseHead, ResponseWriter};
use store::Turn;

/// Why a request was refused before its answer began.
enum Refusal {
    Gateway(Error),
    /// `previous_response_id` names nothing we keep (never stored, evicted or expired).
    UnknownPrevious(String),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        Refusal::Gateway(e)
    }
}

/// `(404, body)` of OpenAI's answer to an unknown `previous_response_id`.
pub fn previous_response_not_found(id: &str) -> (u16, serde_json::Value) {
    (
        404,
        json!({"error": {
            "message": format!("Previous response with id '{id}' not found. This gateway keeps responses in memory for a limited time and number (RESPONSES_STORE_TTL, RESPONSES_STORE_SIZE), and not across restarts; send the whole conversation as input instead."),
            "type": "invalid_request_error",
            "param": "previous_response_id",
            "code": "previous_response_not_found",
        }}),
    )
}

/// `POST /v1/responses`.
pub fn handle(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) {
    let Err(refusal) = serve(app, inc, debug) else {
        return;
    };
    if inc.responded() {
        if let Refusal::Gateway(e) = &refusal {
            log::warn!("response failed after it started: {e}");
        }
        return;
    }
    match refusal {
        Refusal::Gateway(e) => crate::openai::respond_error(inc, &e, debug),
        Refusal::UnknownPrevious(id) => {
            let (status, body) = previous_response_not_found(&id);
            debug.error(status, &format!("previous response '{id}' not found"));
            inc.respond_json(status, &body, &[]);
        }
    }
}

/// Keep the reply for follow-ups: its input and its output, on top of the history it continued.
fn remember(
    app: &App,
    req: &ResponsesRequest,
    parent: Option<&std::sync::Arc<Turn>>,
    w: &ResponseWriter,
) {
    if !req.store {
        return;
    }
    let mut messages = req.input.clone();
    messages.extend(w.assistant_message());
    let turn = Turn::new(parent.cloned(), req.input_system.clone(), messages);
    app.responses.put(w.id().to_string(), turn);
}

fn serve(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) -> Result<(), Refusal> {
    let req = request::parse_responses_request(&inc.body, app.config.max_image_bytes)?;
    inc.model = req.model.clone();
    let parent = match &req.previous_response_id {
        Some(id) => Some(
            app.responses
                .get(id)
                .ok_or_else(|| Refusal::UnknownPrevious(id.clone()))?,
        ),
        None => None,
    };
    let (history_system, history) = parent
        .as_ref()
        .map(|t| (t.system(), t.messages()))
        .unwrap_or_default();
    let conv = req.conversation(&history_system, history)?;
    let prepared = app.prepare(&conv)?;
    if prepared.payload.trimmed_turns > 0 {
        inc.extra_headers.push((
            "x-kiro-gateway-trimmed".into(),
            format!("{} turns", prepared.payload.trimmed_turns),
        ));
    }
    let mut up = app.open(&prepared, debug)?;
    let head = ResponseHead::new(&req);

    if !req.stream {
        let mut discard = Discard;
        let mut writer = ResponseWriter::new(&mut discard, head, false);
        let result = app.relay(&mut up, &prepared, &mut writer);
        if let Some(raw) = up.take_raw() {
            debug.raw_stream(raw);
        }
        return match result {
            Ok(outcome) => {
                let body = writer
                    .finish(&outcome)
                    .map_err(|e| Error::Internal(format!("building the response: {e}")))?;
                remember(app, &req, parent.as_ref(), &writer);
                inc.respond_json(200, &body, &[]);
                Ok(())
            }
            Err(RelayError::Failed(e)) => Err(e.into()),
            Err(RelayError::ClientGone) => Ok(()),
        };
    }

    let mut sse = inc.start_sse()?;
    let mut writer = ResponseWriter::new(&mut sse, head, debug.enabled());
    let result = match writer.start() {
        Ok(()) => app.relay(&mut up, &prepared, &mut writer),
        Err(_) => Err(RelayError::ClientGone),
    };
    match &result {
        Ok(outcome) => {
            if writer.finish(outcome).is_ok() {
                remember(app, &req, parent.as_ref(), &writer);
            }
        }
        Err(RelayError::ClientGone) => log::info!("client disconnected mid-stream"),
        Err(RelayError::Failed(e)) => {
            log::warn!("stream failed mid-way: {e}");
            debug.error(e.status(), &e.to_string());
            let _ = writer.fail(e);
        }
    }
    if let Some(t) = writer.trace.take() {
        debug.modified(&t);
    }
    if let Some(raw) = up.take_raw() {
        debug.raw_stream(raw);
    }
    drop(up);
    if !matches!(result, Err(RelayError::ClientGone)) {
        inc.bytes = sse.finish().unwrap_or(0);
    }
    Ok(())
}
