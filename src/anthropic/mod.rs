//! Anthropic Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`).
//! (Being written.)

use crate::debug::DebugCapture;
use crate::gateway::App;
use crate::http::Incoming;

/// `POST /v1/messages` and `/v1/messages/count_tokens`.
pub fn handle(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) {
    let _ = app;
    crate::openai::respond_error(
        inc,
        &crate::error::Error::NotFound("The Anthropic Messages API is not available yet.".into()),
        debug,
    );
}
