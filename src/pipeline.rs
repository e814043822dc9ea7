//! The one sequence every generating request runs, whatever its client format: the API key
//! check, the body, parse into the neutral [`Conversation`], resolve the model and build the Kiro
//! body, call Kiro, relay the reply into the format's stream or collector, finish, and keep the
//! debug capture (the access log line is written by the server once the request is done).
//!
//! A client format supplies only the edges, through [`Format`]: how to read its request, how to
//! write a reply (streamed or whole) and how to write an error. It never sees Kiro, and the
//! sequence is written once, here. The server picks the format once, from the path, and every
//! error on that route is written in its shape ([`respond_error`]).

pub mod app;
pub mod store;
pub mod websearch;

use std::io;

use serde_json::Value;

pub use app::{App, Prepared};

use crate::conversation::{Conversation, Outcome};
use crate::debug::DebugCapture;
use crate::error::Error;
use crate::http::Incoming;
use crate::keys::{Caller, ClientKey};
use crate::kiro::client::Upstream;
use crate::relay::{RelayError, Sink};
use crate::sse::SseWriter;
use crate::structured::{self, Plan, Structured};
use crate::usage::DayTotals;
use crate::util::now_unix_millis;

/// How a client format writes an error: the HTTP status and the JSON body for an [`Error`].
pub trait ErrorShape {
    fn error_body(&self, e: &Error) -> (u16, Value);
}

/// A reply being streamed to the client in its format, as the relay's events arrive.
pub trait Stream: Sink {
    /// The opening events, written once Kiro's reply is open (so that every failure before it
    /// still gets a real HTTP status).
    fn start(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// The reply ended normally: the closing events.
    fn finish(&mut self, outcome: &Outcome) -> io::Result<()>;
    /// The reply broke after it started: an error event, and nothing that looks like a normal end.
    fn fail(&mut self, e: &Error) -> io::Result<()>;
    /// The copy of what was written, for the debug files (when asked for at creation).
    fn take_trace(&mut self) -> Option<String>;
}

/// What a stream writer is told when it is created.
#[derive(Debug, Clone, Copy)]
pub struct StreamInfo {
    /// The input-token estimate, corrected by what Kiro reported so far (for formats that announce
    /// usage before the reply).
    pub input_tokens: u64,
    /// Keep a copy of everything written, for the debug files.
    pub trace: bool,
}

/// A client format: the edges of the pipeline.
pub trait Format: ErrorShape {
    /// A parsed request: the conversation and what the format needs to answer it.
    type Request;
    /// Collects a reply for a client that asked for no stream.
    type Collect: Sink;
    /// Writes a streamed reply.
    type Stream<'a>: Stream
    where
        Self: 'a;

    /// Read the request body. Errors name the field at fault; nothing has reached Kiro.
    fn parse(&self, app: &App, body: &[u8]) -> Result<Self::Request, Error>;
    /// The model name as the client sent it (for the access log).
    fn model<'r>(&self, req: &'r Self::Request) -> &'r str;
    /// Add what the gateway keeps between requests (e.g. the history a follow-up names).
    fn recall(&self, _app: &App, _req: &mut Self::Request) -> Result<(), Error> {
        Ok(())
    }
    /// The conversation to send.
    fn conversation<'r>(&self, req: &'r Self::Request) -> &'r Conversation;
    /// The same, to adjust before it is sent (structured outputs).
    fn conversation_mut<'r>(&self, req: &'r mut Self::Request) -> &'r mut Conversation;
    /// The whole answer when Kiro need not be called (e.g. counting tokens).
    fn answer_locally(
        &self,
        _app: &App,
        _req: &Self::Request,
        _prepared: &Prepared,
    ) -> Option<Value> {
        None
    }
    /// A collector for a non-streaming reply.
    fn collector(&self, req: &Self::Request) -> Self::Collect;
    /// The non-streaming response body, once the reply is complete.
    fn body(
        &self,
        app: &App,
        req: &Self::Request,
        collected: Self::Collect,
        outcome: &Outcome,
    ) -> Result<Value, Error>;
    /// A writer for a streamed reply into `sse`.
    fn stream<'a>(
        &'a self,
        app: &'a App,
        req: &'a Self::Request,
        sse: &'a mut SseWriter,
        info: StreamInfo,
    ) -> Self::Stream<'a>;
}

/// Serve one request of `format` from start to end. Every failure is answered in its shape.
pub fn serve<F: Format>(app: &App, inc: &mut Incoming, format: &F) {
    if !admit(app, inc, format, "POST") {
        return;
    }
    let cfg = &app.config;
    if let Err(e) = inc.read_body(cfg.max_request_body_bytes, cfg.client_read_timeout) {
        return respond_error(inc, format, &e, &mut DebugCapture::off());
    }
    let mut secrets: Vec<String> = cfg.proxy_api_key.iter().cloned().collect();
    secrets.extend(cfg.refresh_token.iter().cloned());
    secrets.extend(cfg.api_key.iter().cloned());
    let mut debug = DebugCapture::new(cfg.debug_mode, cfg.debug_dir.clone(), secrets);
    debug.client_request(&inc.body);
    if let Err(e) = answer(app, inc, format, &mut debug) {
        if inc.responded() {
            log::warn!("{} failed after the response started: {e}", inc.path);
        } else {
            respond_error(inc, format, &e, &mut debug);
        }
    }
    if debug.enabled() {
        for account in &app.pool.accounts {
            debug.add_secrets(account.store.secrets());
        }
    }
    debug.finish();
}

/// The API key check and the method check, answered in `shape` when they fail. `true` when the
/// request may go on.
pub fn admit(app: &App, inc: &mut Incoming, shape: &dyn ErrorShape, method: &'static str) -> bool {
    let refusal = if !authorized(app, inc) {
        Error::Unauthorized
    } else if inc.method != method {
        Error::MethodNotAllowed {
            method: inc.method.clone(),
            path: inc.path.trim_end_matches('/').to_string(),
            allow: method,
        }
    } else {
        return true;
    };
    respond_error(inc, shape, &refusal, &mut DebugCapture::off());
    false
}

/// Answer `e` in `shape`, with the headers that tell the client whether to retry (and when).
pub fn respond_error(
    inc: &mut Incoming,
    shape: &dyn ErrorShape,
    e: &Error,
    debug: &mut DebugCapture,
) {
    let (status, body) = shape.error_body(e);
    debug.error(status, &e.to_string());
    inc.respond_json(status, &body, &e.headers());
}

/// Whether the request carries a client key (Bearer or x-api-key), and which. No key configured
/// means the gateway listens on loopback only (checked at start-up), where everything is allowed.
pub fn authorized(app: &App, inc: &mut Incoming) -> bool {
    let caller = {
        let bearer = inc
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        let api_key = inc.header("x-api-key");
        match app.keys.identify(bearer.or(api_key)) {
            Caller::Refused if bearer.is_some() && api_key.is_some() => app.keys.identify(api_key),
            caller => caller,
        }
    };
    match caller {
        Caller::Open => true,
        Caller::Key(key) => {
            inc.record.key = key.name.clone();
            inc.client = Some(key);
            true
        }
        Caller::Refused => false,
    }
}

/// The client key's `models` list.
fn check_model(key: &ClientKey, requested: &str, resolved: &str) -> Result<(), Error> {
    if key.allows_model(requested, resolved) {
        return Ok(());
    }
    Err(Error::ModelNotAllowed {
        key: key.name.clone(),
        model: requested.to_string(),
    })
}

/// The client key's credit budgets (checked only before Kiro is called: other answers are free).
fn check_budget(app: &App, key: &ClientKey) -> Result<(), Error> {
    if key.daily_credits.is_some() || key.monthly_credits.is_some() {
        let (today, month) = app.usage.credits(&key.name, now_unix_millis());
        if let Some(message) = key.budget_spent(today, month) {
            return Err(Error::BudgetSpent(message));
        }
    }
    Ok(())
}

/// What Kiro reported for a finished reply: for the record, and charged to the client key before
/// the client has the end of the answer (so its next request meets the budget it left).
fn note_outcome(app: &App, inc: &mut Incoming, outcome: &Outcome) {
    inc.record.tokens_in = outcome.usage.input_tokens;
    inc.record.tokens_out = outcome.usage.output_tokens;
    inc.record.credits = outcome.usage.credits.unwrap_or(0.0);
    if !inc.record.key.is_empty() {
        let used = DayTotals {
            requests: 1,
            tokens_in: inc.record.tokens_in,
            tokens_out: inc.record.tokens_out,
            credits: inc.record.credits,
        };
        app.usage.record(&inc.record.key, inc.record.unix_ms, &used);
    }
}

/// Parse → recall → prepare → (answer locally | call Kiro → relay → finish).
fn answer<F: Format>(
    app: &App,
    inc: &mut Incoming,
    format: &F,
    debug: &mut DebugCapture,
) -> Result<(), Error> {
    let mut req = format.parse(app, &inc.body)?;
    // The parsed request is all that is needed from here on; an agent's context can be hundreds
    // of KiB, and a stream holds its worker for minutes.
    inc.body = Vec::new();
    inc.model = format.model(&req).to_string();
    format.recall(app, &mut req)?;
    let plan = structured::shape(format.conversation_mut(&mut req));
    let plan = plan.as_ref();
    let conv = format.conversation(&req);
    let prepared = app.prepare(conv)?;
    let mut ignored = conv.ignored_tools.clone();
    if let Some(ws) = conv.web_search.as_ref().filter(|_| !app.config.web_search) {
        ignored.push(ws.tool_type.clone());
    }
    if !ignored.is_empty() {
        app.log_ignored_tools(&ignored);
        inc.extra_headers
            .push(("x-kiro-gateway-ignored-tools".into(), ignored.join(", ")));
    }
    let key = inc.client.clone();
    if let Some(key) = &key {
        check_model(key, &inc.model, &prepared.model_id)?;
    }
    if let Some(body) = format.answer_locally(app, &req, &prepared) {
        inc.respond_json(200, &body, &[]);
        return Ok(());
    }
    if prepared.model_substituted {
        inc.extra_headers
            .push(("x-kiro-gateway-model".into(), prepared.model_id.clone()));
    }
    if prepared.payload.trimmed_turns > 0 {
        inc.extra_headers.push((
            "x-kiro-gateway-trimmed".into(),
            format!("{} turns", prepared.payload.trimmed_turns),
        ));
    }
    if let Some(key) = &key {
        check_budget(app, key)?;
    }
    // Errors up to here (and Kiro's own refusals inside `open`) still get a real HTTP status.
    let up = app.open(&prepared, debug, &|| inc.client_gone())?;
    inc.record.account = up.account.clone();
    inc.record.model_served = prepared.model_id.clone();
    inc.record.conversation_id = prepared.conversation_key.clone();
    let reply = Reply {
        req: &req,
        conv,
        prepared: &prepared,
        plan,
    };
    if conv.stream {
        stream(app, inc, format, reply, up, debug)
    } else {
        collect(app, inc, format, reply, up, debug)
    }
}

/// What the answer to one request is made from.
struct Reply<'r, R> {
    req: &'r R,
    conv: &'r Conversation,
    prepared: &'r Prepared,
    /// How to read back a structured answer.
    plan: Option<&'r Plan>,
}

/// Relay Kiro's reply into `sink` (running the web searches the model asks for, when the client
/// offered a web search tool), through the structured-output reader when one was asked for.
fn relay_into<R>(
    app: &App,
    up: &mut Upstream,
    reply: &Reply<'_, R>,
    sink: &mut dyn Sink,
    debug: &mut DebugCapture,
) -> Result<Outcome, RelayError> {
    let Some(plan) = reply.plan else {
        return websearch::relay(app, reply.conv, reply.prepared, up, sink, debug);
    };
    let mut reader = Structured::new(sink, plan);
    let outcome = websearch::relay(app, reply.conv, reply.prepared, up, &mut reader, debug)?;
    Ok(reader.finish(outcome)?)
}

/// The whole reply as one JSON body.
fn collect<F: Format>(
    app: &App,
    inc: &mut Incoming,
    format: &F,
    reply: Reply<'_, F::Request>,
    mut up: Upstream,
    debug: &mut DebugCapture,
) -> Result<(), Error> {
    let req = reply.req;
    let mut collected = format.collector(req);
    let result = relay_into(app, &mut up, &reply, &mut collected, debug);
    if let Some(raw) = up.take_raw() {
        debug.raw_stream(raw);
    }
    match result {
        Ok(outcome) => {
            note_outcome(app, inc, &outcome);
            let body = format.body(app, req, collected, &outcome)?;
            inc.respond_json(200, &body, &[]);
            Ok(())
        }
        Err(RelayError::Failed(e)) => Err(e),
        Err(RelayError::ClientGone) => Ok(()),
    }
}

/// The reply as server-sent events, each written as Kiro's frames arrive.
fn stream<F: Format>(
    app: &App,
    inc: &mut Incoming,
    format: &F,
    reply: Reply<'_, F::Request>,
    mut up: Upstream,
    debug: &mut DebugCapture,
) -> Result<(), Error> {
    let _open = crate::metrics::global().stream_opened();
    let mut sse = inc.start_sse()?;
    let info = StreamInfo {
        input_tokens: app.input_tokens(reply.prepared),
        trace: debug.enabled(),
    };
    let mut writer = format.stream(app, reply.req, &mut sse, info);
    let result = match writer.start() {
        Ok(()) => relay_into(app, &mut up, &reply, &mut writer, debug),
        Err(_) => Err(RelayError::ClientGone),
    };
    match &result {
        Ok(outcome) => {
            note_outcome(app, inc, outcome);
            let _ = writer.finish(outcome);
        }
        Err(RelayError::ClientGone) => {}
        Err(RelayError::Failed(e)) => {
            log::warn!("stream failed mid-way: {e}");
            debug.error(e.status(), &e.to_string());
            let _ = writer.fail(e);
        }
    }
    if let Some(t) = writer.take_trace() {
        debug.modified(&t);
    }
    drop(writer);
    if let Some(raw) = up.take_raw() {
        debug.raw_stream(raw);
    }
    drop(up);
    inc.record.ttft = sse.first_sent().map(|t| t.duration_since(inc.started));
    if matches!(result, Err(RelayError::ClientGone)) {
        log::info!("client disconnected mid-stream");
    } else {
        inc.bytes = sse.finish().unwrap_or(0);
    }
    Ok(())
}
