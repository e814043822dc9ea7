//! OpenAI Chat Completions and the model list: `POST /v1/chat/completions`, `GET /v1/models`.
//! A thin translation at the edge: parse → shared core (`gateway`) → relay → chunks or JSON.

pub mod request;
pub mod response;

use crate::debug::DebugCapture;
use crate::error::Error;
use crate::gateway::App;
use crate::http::Incoming;
use crate::relay::RelayError;

use response::{ChunkWriter, Collector};

/// Answer `e` as an OpenAI error object.
pub fn respond_error(inc: &mut Incoming, e: &Error, debug: &mut DebugCapture) {
    let (status, body) = response::error_body(e);
    debug.error(status, &e.to_string());
    let extra: Vec<(&str, String)> = e
        .retry_after()
        .map(|s| vec![("Retry-After", s.to_string())])
        .unwrap_or_default();
    inc.respond_json(status, &body, &extra);
}

/// `GET /v1/models`.
pub fn list_models(app: &App, inc: &mut Incoming) {
    let body = response::models_json(&app.models.list_ids());
    inc.respond_json(200, &body, &[]);
}

/// `POST /v1/chat/completions`.
pub fn chat_completions(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) {
    if let Err(e) = serve_chat(app, inc, debug) {
        if inc.responded() {
            log::warn!("chat completion failed after the response started: {e}");
        } else {
            respond_error(inc, &e, debug);
        }
    }
}

fn serve_chat(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) -> Result<(), Error> {
    let req = request::parse_chat_request(&inc.body, app.config.max_image_bytes)?;
    let model = req.conversation.model.clone();
    inc.model = model.clone();
    let prepared = app.prepare(&req.conversation)?;
    if prepared.payload.trimmed_turns > 0 {
        inc.extra_headers.push((
            "x-kiro-gateway-trimmed".into(),
            format!("{} turns", prepared.payload.trimmed_turns),
        ));
    }
    let mut up = app.open(&prepared, debug)?;
    if !req.conversation.stream {
        let mut collected = Collector::default();
        let result = app.relay(&mut up, &prepared, &mut collected);
        if let Some(raw) = up.take_raw() {
            debug.raw_stream(raw);
        }
        return match result {
            Ok(outcome) => {
                let body = response::completion_json(&model, &collected, &outcome);
                inc.respond_json(200, &body, &[]);
                Ok(())
            }
            Err(RelayError::Failed(e)) => Err(e),
            Err(RelayError::ClientGone) => Ok(()),
        };
    }
    let mut sse = inc.start_sse()?;
    let mut writer = ChunkWriter::new(&mut sse, &model, debug.enabled());
    let result = app.relay(&mut up, &prepared, &mut writer);
    match &result {
        Ok(outcome) => {
            let _ = writer.finish(outcome, req.include_usage);
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
