//! The search loop inside one client request: Kiro is offered a plain `web_search` tool; when the
//! model calls it, the gateway searches (`kiro::mcp`), gives the model the pages as the tool's
//! result and asks Kiro to go on, until the model answers or `max_uses` is spent.
//!
//! The client never sees the tool round trip: the calls of the internal tool are taken out of the
//! relay's events and replaced by [`OutputEvent::WebSearchCall`] / [`OutputEvent::WebSearchResult`],
//! which each format writes in its own web search shape, and the answer's links to the pages found
//! become [`OutputEvent::Citations`]. Everything else passes through unchanged.

use std::io;

use serde_json::Value;

use crate::auth::accounts::Account;
use crate::config::Config;
use crate::conversation::{
    Conversation, FinishReason, Message, Outcome, OutputEvent, Reasoning, Role, ToolCall,
    ToolChoice, ToolResult, ToolSpec, Usage,
};
use crate::debug::DebugCapture;
use crate::kiro::client::Upstream;
use crate::kiro::mcp::{self, SearchCall};
use crate::pipeline::{App, Prepared};
use crate::relay::{RelayError, Sink};
use crate::util::random_hex;

use crate::websearch::{
    find_citations, query_of, results_for_model, SearchFailure, SearchHit, WebSearchRequest,
    TOOL_NAME,
};

/// The web search this request gets: the client asked for one, `WEB_SEARCH` is on, the client
/// allows tools, and none of its own tools is already called `web_search`.
pub fn active<'c>(conv: &'c Conversation, config: &Config) -> Option<&'c WebSearchRequest> {
    let ws = conv.web_search.as_ref()?;
    if !config.web_search || conv.tool_choice == ToolChoice::None {
        return None;
    }
    if conv.tools.iter().any(|t| t.name == TOOL_NAME) {
        log::warn!("a client tool is named '{TOOL_NAME}'; the hosted web search is not offered");
        return None;
    }
    Some(ws)
}

/// The conversation Kiro gets, when it differs from the client's: plus the `web_search` tool when
/// it is active; without a `tool_choice` that forces the search when it is not (a hosted tool that
/// is left out is never a 400).
pub fn offer_tool(conv: &Conversation, config: &Config) -> Option<Conversation> {
    let forced = conv.tool_choice == ToolChoice::Named(TOOL_NAME.into());
    let Some(ws) = active(conv, config) else {
        let mut without = conv.clone();
        without.tool_choice = ToolChoice::Auto;
        let own_tool = conv.tools.iter().any(|t| t.name == TOOL_NAME);
        return (forced && conv.web_search.is_some() && !own_tool).then_some(without);
    };
    let mut with = conv.clone();
    with.tools.push(tool_spec(ws));
    Some(with)
}

/// The tool the gateway offers Kiro in place of the client's hosted one.
fn tool_spec(ws: &WebSearchRequest) -> ToolSpec {
    ToolSpec {
        name: TOOL_NAME.into(),
        description: ws.tool_description(),
        schema: serde_json::json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "The search query."}
            },
            "required": ["query"]
        }),
    }
}

/// A call of the internal tool seen in one round.
struct PendingSearch {
    /// The relay's id of the call (goes into Kiro's history).
    call_id: String,
    arguments: String,
}

/// Takes the internal tool's calls out of one round's events, renumbers the client's own tool
/// calls, keeps the round's text for the history, and finds citations at the end of each text run.
struct Tap<'s> {
    inner: &'s mut dyn Sink,
    hits: &'s [SearchHit],
    /// Relay tool-call index → the client's index (`None`: an internal search call).
    calls: Vec<Option<usize>>,
    client_calls: usize,
    searches: Vec<(usize, PendingSearch)>,
    /// This round's visible text and reasoning (the assistant turn of the history: a thinking
    /// model's signed reasoning goes back with its tool call).
    text: String,
    reasoning: Reasoning,
    /// Text since the last other event (only kept when there are pages to cite).
    run: String,
}

impl<'s> Tap<'s> {
    fn new(inner: &'s mut dyn Sink, hits: &'s [SearchHit]) -> Tap<'s> {
        Tap {
            inner,
            hits,
            calls: Vec::new(),
            client_calls: 0,
            searches: Vec::new(),
            text: String::new(),
            reasoning: Reasoning::default(),
            run: String::new(),
        }
    }

    /// The text run ends: its citations go out before whatever follows it.
    fn end_run(&mut self) -> io::Result<()> {
        if self.run.is_empty() {
            return Ok(());
        }
        let citations = find_citations(&self.run, self.hits);
        self.run.clear();
        if citations.is_empty() {
            return Ok(());
        }
        self.inner.emit(OutputEvent::Citations(citations))
    }

    fn search_mut(&mut self, index: usize) -> Option<&mut PendingSearch> {
        self.searches
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s)
    }

    fn client_index(&self, index: usize) -> Option<Option<usize>> {
        self.calls.get(index).copied()
    }
}

impl Sink for Tap<'_> {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match event {
            OutputEvent::Text(t) => {
                self.text.push_str(&t);
                if !self.hits.is_empty() {
                    self.run.push_str(&t);
                }
                self.inner.emit(OutputEvent::Text(t))
            }
            OutputEvent::ToolCallStart { index, id, name } => {
                self.end_run()?;
                if self.calls.len() <= index {
                    self.calls.resize(index + 1, None);
                }
                if name == TOOL_NAME {
                    self.searches.push((
                        index,
                        PendingSearch {
                            call_id: id,
                            arguments: String::new(),
                        },
                    ));
                    return Ok(());
                }
                let client = self.client_calls;
                self.client_calls += 1;
                if let Some(slot) = self.calls.get_mut(index) {
                    *slot = Some(client);
                }
                self.inner.emit(OutputEvent::ToolCallStart {
                    index: client,
                    id,
                    name,
                })
            }
            OutputEvent::ToolCallArguments { index, fragment } => match self.client_index(index) {
                Some(Some(client)) => self.inner.emit(OutputEvent::ToolCallArguments {
                    index: client,
                    fragment,
                }),
                _ => {
                    if let Some(s) = self.search_mut(index) {
                        s.arguments.push_str(&fragment);
                    }
                    Ok(())
                }
            },
            OutputEvent::ToolCallEnd { index, arguments } => match self.client_index(index) {
                Some(Some(client)) => self.inner.emit(OutputEvent::ToolCallEnd {
                    index: client,
                    arguments,
                }),
                _ => {
                    if let Some(s) = self.search_mut(index) {
                        s.arguments = arguments;
                    }
                    Ok(())
                }
            },
            other => {
                self.end_run()?;
                match &other {
                    OutputEvent::Reasoning(t) => self.reasoning.text.push_str(t),
                    OutputEvent::ReasoningSignature(s) => {
                        self.reasoning.signature = Some(s.clone())
                    }
                    OutputEvent::RedactedReasoning(r) => self.reasoning.redacted = Some(r.clone()),
                    _ => {}
                }
                self.inner.emit(other)
            }
        }
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.inner.keepalive()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// What the search loop keeps across rounds of one request.
struct Searches<'a> {
    app: &'a App,
    ws: &'a WebSearchRequest,
    /// Searches run so far (refused ones do not count against `max_uses`).
    used: u32,
    /// Asked of Kiro once per request, at the first search.
    kiro_takes_domains: Option<bool>,
    /// Every page found so far: the answer's links are matched against them.
    hits: Vec<SearchHit>,
    /// The usage of every round, plus the searches run.
    total: Usage,
}

impl Searches<'_> {
    /// Run one search the model asked for (or refuse it: `refuse`, or `max_uses` spent), show
    /// the client the call and its outcome, and return the call and result Kiro's history gets.
    fn answer(
        &mut self,
        account: Option<&Account>,
        call: PendingSearch,
        refuse: bool,
        sink: &mut dyn Sink,
    ) -> Result<(ToolCall, ToolResult), RelayError> {
        let id = random_hex(24);
        let arguments: Value = serde_json::from_str(&call.arguments).unwrap_or(Value::Null);
        let query = query_of(&arguments);
        let shown = query.clone().unwrap_or_else(|_| {
            arguments
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        });
        sink.emit(OutputEvent::WebSearchCall {
            id: id.clone(),
            query: shown.clone(),
        })?;
        sink.flush()?;
        let outcome = match query {
            Err(f) => Err(f),
            Ok(_) if refuse || self.used >= self.ws.max_uses => Err(SearchFailure::MaxUsesExceeded),
            Ok(q) => self.run(account, &q, sink)?,
        };
        sink.emit(OutputEvent::WebSearchResult {
            id,
            query: shown.clone(),
            outcome: outcome.clone(),
        })?;
        sink.flush()?;
        let tool_text = match &outcome {
            Ok(found) => results_for_model(&shown, found),
            Err(f) => f.explain().to_string(),
        };
        let is_error = outcome.is_err();
        if let Ok(found) = outcome {
            self.hits.extend(found);
        }
        let tool_call = ToolCall {
            id: call.call_id.clone(),
            name: TOOL_NAME.into(),
            input: if arguments.is_object() {
                arguments
            } else {
                serde_json::json!({})
            },
        };
        let tool_result = ToolResult {
            tool_use_id: call.call_id,
            text: tool_text,
            is_error,
            images: Vec::new(),
        };
        Ok((tool_call, tool_result))
    }

    /// Answer every search of one round: each call joins the model's turn, and its result joins
    /// the user turn that follows (returned).
    fn answer_all(
        &mut self,
        account: Option<&Account>,
        searches: Vec<(usize, PendingSearch)>,
        assistant: &mut Message,
        refuse: bool,
        sink: &mut dyn Sink,
    ) -> Result<Message, RelayError> {
        let mut results = Message::text(Role::User, "");
        for (_, call) in searches {
            let (tool_call, tool_result) = self.answer(account, call, refuse, sink)?;
            assistant.tool_calls.push(tool_call);
            results.tool_results.push(tool_result);
        }
        Ok(results)
    }

    /// The pages one search finds, counted against `max_uses`.
    fn run(
        &mut self,
        account: Option<&Account>,
        query: &str,
        sink: &mut dyn Sink,
    ) -> Result<Result<Vec<SearchHit>, SearchFailure>, RelayError> {
        self.used += 1;
        self.total.web_search_requests += 1;
        let (app, ws) = (self.app, self.ws);
        let takes = *self
            .kiro_takes_domains
            .get_or_insert_with(|| takes_domains(app, account, ws));
        search_with_keepalive(sink, || run_search(app, account, ws, query, takes))
    }
}

/// Relay the reply into `sink`, running the searches the model asks for. Without an active web
/// search this is exactly [`App::relay`].
pub fn relay(
    app: &App,
    conv: &Conversation,
    prepared: &Prepared,
    up: &mut Upstream,
    sink: &mut dyn Sink,
    debug: &mut DebugCapture,
) -> Result<Outcome, RelayError> {
    let Some(ws) = active(conv, &app.config) else {
        return app.relay(up, prepared, sink);
    };
    let mut history = conv.clone();
    let mut state = Searches {
        app,
        ws,
        used: 0,
        kiro_takes_domains: None,
        hits: Vec::new(),
        total: Usage::default(),
    };
    let mut refused_rounds = 0;
    let mut next: Option<(Prepared, Upstream)> = None;
    loop {
        let mut tap = Tap::new(sink, &state.hits);
        let result = match next.as_mut() {
            None => app.relay(up, prepared, &mut tap),
            Some((p, u)) => app.relay(u, p, &mut tap),
        };
        let outcome = result?;
        tap.end_run()?;
        let Tap {
            searches,
            client_calls,
            text,
            reasoning,
            ..
        } = tap;
        add_usage(&mut state.total, &outcome.usage);
        if searches.is_empty() {
            return Ok(Outcome {
                usage: state.total,
                ..outcome
            });
        }
        if state.used >= ws.max_uses {
            refused_rounds += 1;
        }
        // The model asked again after being told no search was left: the answer stops here.
        let last_round = client_calls > 0 || refused_rounds > 1;
        let account = account_for(app, next.as_ref().map_or(&up.account, |(_, u)| &u.account));
        let refuse = last_round && client_calls == 0;
        let mut assistant = assistant_turn(text, reasoning);
        let results = state.answer_all(account, searches, &mut assistant, refuse, sink)?;
        if last_round {
            let finish = if client_calls > 0 {
                FinishReason::ToolCalls
            } else {
                FinishReason::Stop
            };
            return Ok(Outcome {
                finish,
                usage: state.total,
                ..outcome
            });
        }
        history.messages.extend([assistant, results]);
        // A forced tool choice asked for the first call; after it the model may answer.
        if history.tool_choice != ToolChoice::None {
            history.tool_choice = ToolChoice::Auto;
        }
        let p = app.prepare(&history).map_err(RelayError::Failed)?;
        // Output has started: a gone client shows when the answer is written.
        let u = app.open(&p, debug, &|| false).map_err(RelayError::Failed)?;
        next = Some((p, u));
    }
}

/// One round's assistant turn for Kiro's history: a thinking model's signed reasoning goes back
/// with its tool call.
fn assistant_turn(text: String, reasoning: Reasoning) -> Message {
    let mut assistant = Message::text(Role::Assistant, text);
    if reasoning != Reasoning::default() {
        assistant.reasoning = Some(reasoning);
    }
    assistant
}

/// How often a client waiting for a search hears from the gateway (an Anthropic `ping`, an SSE
/// comment), so that no proxy takes the line for dead.
const SEARCH_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// Run `search` on a scoped thread while the client gets keep-alives; a client that went away
/// ends the wait (the search itself is bounded by `WEB_SEARCH_TIMEOUT`).
fn search_with_keepalive<F>(
    sink: &mut dyn Sink,
    search: F,
) -> Result<Result<Vec<SearchHit>, SearchFailure>, RelayError>
where
    F: FnOnce() -> Result<Vec<SearchHit>, SearchFailure> + Send,
{
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::channel();
        scope.spawn(move || {
            let _ = tx.send(search());
        });
        loop {
            match rx.recv_timeout(SEARCH_KEEPALIVE) {
                Ok(result) => return Ok(result),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    sink.keepalive()?;
                    sink.flush()?;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Ok(Err(SearchFailure::Unavailable))
                }
            }
        }
    })
}

fn add_usage(total: &mut Usage, round: &Usage) {
    total.input_tokens += round.input_tokens;
    total.output_tokens += round.output_tokens;
    total.cache_read_tokens += round.cache_read_tokens;
    total.cache_write_tokens += round.cache_write_tokens;
    total.credits = match (total.credits, round.credits) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
}

/// The account that served the reply (searches go out with its token), else the first usable one.
fn account_for<'a>(app: &'a App, name: &str) -> Option<&'a Account> {
    app.pool
        .accounts
        .iter()
        .find(|a| a.name == name)
        .or_else(|| {
            let first = app.pool.peek_candidates().ok()?.first().copied()?;
            app.pool.accounts.get(first)
        })
}

/// Whether Kiro's tool takes domain lists (asked only when the client set a filter).
fn takes_domains(app: &App, account: Option<&Account>, ws: &WebSearchRequest) -> bool {
    if ws.allowed_domains.is_empty() && ws.blocked_domains.is_empty() {
        return false;
    }
    let Some(a) = account else { return false };
    match mcp::tool_arguments(app.client.settings(), &a.store, &a.agent) {
        Ok(Some(args)) => args.iter().any(|n| n == "allowed_domains"),
        Ok(None) => false,
        Err(e) => {
            log::debug!("could not list Kiro's search arguments: {e}");
            false
        }
    }
}

fn run_search(
    app: &App,
    account: Option<&Account>,
    ws: &WebSearchRequest,
    query: &str,
    pass_domains: bool,
) -> Result<Vec<SearchHit>, SearchFailure> {
    let Some(a) = account else {
        return Err(SearchFailure::Unavailable);
    };
    let none: &[String] = &[];
    let call = SearchCall {
        query,
        allowed_domains: if pass_domains {
            &ws.allowed_domains
        } else {
            none
        },
        blocked_domains: if pass_domains {
            &ws.blocked_domains
        } else {
            none
        },
    };
    match mcp::search(app.client.settings(), &a.store, &a.agent, call) {
        Ok(found) => {
            let kept = ws.filter(found);
            log::info!("web search: {} result(s) kept", kept.len());
            Ok(kept)
        }
        Err(e) => {
            log::warn!("{e}");
            Err(e.failure)
        }
    }
}
