//! OpenAI Responses API (`POST /v1/responses`). (Being written.)

use crate::debug::DebugCapture;
use crate::gateway::App;
use crate::http::Incoming;

/// `POST /v1/responses`.
pub fn handle(app: &App, inc: &mut Incoming, debug: &mut DebugCapture) {
    let _ = app;
    crate::openai::respond_error(
        inc,
        &crate::error::Error::NotFound("The Responses API is not available yet.".into()),
        debug,
    );
}
