//! Anthropic Messages API: `POST /v1/messages` (streaming and not) and
//! `POST /v1/messages/count_tokens`.
//!
//! A thin translation at the edge: parse → shared core (`gateway`) → relay → Anthropic events or
//! the `message` object. Every failure is answered in Anthropic's error shape, here and in
//! `server` (through [`respond_error`]). The `anthropic-version` and `anthropic-beta` headers are
//! accepted and ignored.

pub mod request;
pub mod response;

use serde_json::json;

use crate::debug::DebugCapture;
use crate::error::Error;
use crate::gateway::App;
use crate::http::Incoming;
use crate::openai::response::Collector;
use crate::relay::RelayError;

use request::{parse_messages_request, Purpose};
use response::StreamWriter;

/// Answer `e` as an Anthropic error (with `Retry-After` when known).
pub fn respond_error(inc: &mut Incoming, e: &Error, debug: &mut DebugCapture) {
    let (status, body) = response::error_body(e);
    debug.error(status, &e.to_string());
    let extra: Vec<(&str, String)> = e
        .retry_after()
        .map(|s| vec![("Retry-After", s.to_string())])
        .unwrap_or_default();
    inc.respond_json(status, &body, &extra);
}

/// `POST /v1/messages` and `POST /v1/messages/count_tokens`.
pub fn handle(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) {
    let counting = inc.path.trim_end_matches('/') == "/v1/messages/count_tokens";
    let result = if counting {
        count_tokens(app, inc)
    } else {
        messages(app, inc, debug)
    };
    if let Err(e) = result {
        if inc.responded() {
            log::warn!("Anthropic request failed after the response started: {e}");
        } else {
            respond_error(inc, &e, debug);
        }
    }
}

/// The same estimate the usage figures start from; Kiro is not called.
fn count_tokens(app: &App, inc: &mut Incoming) -> Result<(), Error> {
    let conv = parse_messages_request(&inc.body, app.config.max_image_bytes, Purpose::CountTokens)?;
    inc.model = conv.model.clone();
    let prepared = app.prepare(&conv)?;
    let body = json!({"input_tokens": app.input_tokens(&prepared)});
    inc.respond_json(200, &body, &[]);
    Ok(())
}

fn messages(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) -> Result<(), Error> {
    let conv = parse_messages_request(&inc.body, app.config.max_image_bytes, Purpose::Generate)?;
    let model = conv.model.clone();
    inc.model = model.clone();
    let prepared = app.prepare(&conv)?;
    if prepared.payload.trimmed_turns > 0 {
        inc.extra_headers.push((
            "x-kiro-gateway-trimmed".into(),
            format!("{} turns", prepared.payload.trimmed_turns),
        ));
    }
    // Errors up to here (and Kiro's own refusals inside `open`) still get a real HTTP status.
    let mut up = app.open(&prepared, debug)?;
    if !conv.stream {
        let mut collected = Collector::default();
        let result = app.relay(&mut up, &prepared, &mut collected);
        if let Some(raw) = up.take_raw() {
            debug.raw_stream(raw);
        }
        return match result {
            Ok(outcome) => {
                let body = response::message_json(&model, &collected, &outcome);
                inc.respond_json(200, &body, &[]);
                Ok(())
            }
            Err(RelayError::Failed(e)) => Err(e),
            Err(RelayError::ClientGone) => Ok(()),
        };
    }
    let mut sse = inc.start_sse()?;
    let mut writer = StreamWriter::new(
        &mut sse,
        &model,
        app.input_tokens(&prepared),
        debug.enabled(),
    );
    let result = match writer.start() {
        Ok(()) => app.relay(&mut up, &prepared, &mut writer),
        Err(_) => Err(RelayError::ClientGone),
    };
    match &result {
        Ok(outcome) => {
            let _ = writer.finish(outcome);
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
