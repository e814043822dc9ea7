//! Drives one Kiro reply into neutral [`OutputEvent`]s, as each frame arrives: text (through the
//! thinking-tag parser when tags were injected), native reasoning, tool calls streamed fragment by
//! fragment, stop sequences, truncated tool calls, usage.
//!
//! Shared by every client format; knows neither Kiro JSON (see `kiro::events`) nor client JSON
//! (see the formats' `response.rs`). A [`Sink`] receives the events; its write error means the
//! client went away, and the relay stops at once (dropping the upstream closes it).

use std::io;
use std::time::Duration;

use crate::config::ThinkingHandling;
use crate::conversation::{FinishReason, Outcome, OutputEvent, Usage};
use crate::error::Error;
use crate::kiro::client::{is_context_overflow, Next};
use crate::kiro::events::KiroEvent;
use crate::thinking::{Piece, ThinkingParser};
use crate::tokens::CharCounts;
use crate::util::random_hex;

use brackets::{find_bracket_calls, same_json};
use calls::ToolState;

pub mod brackets;
mod calls;
pub mod collector;
mod tool_names;
mod upstream;

/// Kiro's reply as the relay reads it: events as they arrive (the open upstream, or a script in
/// tests).
pub trait Events {
    /// The next event, [`Next::Idle`] when nothing arrived within `wait`, or why the reply broke.
    fn next(&mut self, wait: Duration) -> Result<Next, Error>;
    /// Whether another event is already here (the relay then gathers it into the same write).
    fn has_pending(&mut self) -> bool;
}

/// Where the events go: a streaming writer or a collector.
pub trait Sink {
    /// Deliver one event. An error means the client is gone.
    fn emit(&mut self, event: OutputEvent) -> io::Result<()>;
    /// Kiro has been silent for a while (Anthropic clients get a `ping`).
    fn keepalive(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Send what was emitted so far: called whenever no further Kiro frame is already waiting.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How to relay one reply.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Set when thinking tags were injected into the request: how to surface the parsed block.
    pub thinking: Option<ThinkingHandling>,
    pub stop_sequences: Vec<String>,
    /// Input tokens estimated from the Kiro body (used when Kiro gives no better figure).
    pub estimated_input_tokens: u64,
    /// The model's context window, to turn `contextUsagePercentage` into tokens.
    pub max_input_tokens: u64,
    /// Give up when Kiro sends nothing for this long.
    pub read_timeout: Duration,
    /// Call `Sink::keepalive` after this much silence.
    pub keepalive_every: Duration,
    /// Look for `[Called name with args: {...}]` in the text (only when tools were declared, as
    /// it means keeping the whole visible text).
    pub bracket_calls: bool,
    /// Hand on at most one tool call (`parallel_tool_calls: false`); later ones are dropped.
    pub single_tool_call: bool,
    /// (Kiro alias, client name) of tool names aliased toward Kiro (see [`tool_names`]).
    pub tool_names: Vec<(String, String)>,
}

/// Why a relay ended early.
#[derive(Debug)]
pub enum RelayError {
    /// The client disconnected; nothing more can be written.
    ClientGone,
    /// The reply broke (exception frame, bad frame, cut connection, silence). The client should
    /// get an error event, never a normal end.
    Failed(Error),
}

impl From<io::Error> for RelayError {
    fn from(_: io::Error) -> RelayError {
        RelayError::ClientGone
    }
}

/// The state of one relay.
struct Relay<'a> {
    opts: &'a RelayOptions,
    parser: Option<ThinkingParser>,
    tools: Vec<ToolState>,
    held: String,
    max_stop_len: usize,
    /// The visible text, kept only when bracket-style calls are looked for.
    visible_text: String,
    saw_text: bool,
    /// Running count of the output, for the token estimate (the reply itself is not kept).
    out_chars: CharCounts,
    credits: Option<f64>,
    context_pct: Option<f64>,
    real_usage: Option<crate::kiro::events::TokenUsage>,
    stop_reason: Option<String>,
    completion_signal: bool,
    stopped_by: Option<String>,
}

/// Relay `up` into `sink` until the reply ends. Returns how it ended.
pub fn relay(
    up: &mut dyn Events,
    opts: &RelayOptions,
    sink: &mut dyn Sink,
) -> Result<Outcome, RelayError> {
    let mut r = Relay {
        opts,
        parser: opts.thinking.map(|_| ThinkingParser::new()),
        tools: Vec::new(),
        held: String::new(),
        max_stop_len: opts
            .stop_sequences
            .iter()
            .map(|s| s.len())
            .max()
            .unwrap_or(0),
        visible_text: String::new(),
        saw_text: false,
        out_chars: CharCounts::default(),
        credits: None,
        context_pct: None,
        real_usage: None,
        stop_reason: None,
        completion_signal: false,
        stopped_by: None,
    };
    // What led here (the request, Kiro's payload, the connection) went deeper than relaying will;
    // a stream may stay open for minutes, without those stack pages.
    crate::sys::release_unused_stack();
    let mut silent = Duration::ZERO;
    let mut events = 0usize;
    let step = opts
        .keepalive_every
        .min(opts.read_timeout)
        .max(Duration::from_millis(10));
    loop {
        match up.next(step).map_err(RelayError::Failed)? {
            Next::Idle => {
                silent += step;
                if silent >= opts.read_timeout {
                    return Err(RelayError::Failed(Error::StreamTimeout {
                        seconds: opts.read_timeout.as_secs(),
                    }));
                }
                sink.keepalive()?;
                sink.flush()?;
            }
            // A reply with no event at all is no answer, not an empty one.
            Next::End if events == 0 => {
                return Err(RelayError::Failed(Error::Stream(
                    "Kiro's reply ended before its first event".into(),
                )))
            }
            Next::End => break,
            Next::Event(ev) => {
                silent = Duration::ZERO;
                events += 1;
                r.on_event(ev, sink)?;
                // Gather what is already here into one write; send as soon as Kiro pauses.
                if !up.has_pending() {
                    sink.flush()?;
                }
            }
        }
    }
    r.finish(sink)
}

impl Relay<'_> {
    fn on_event(&mut self, ev: KiroEvent, sink: &mut dyn Sink) -> Result<(), RelayError> {
        // After a stop sequence the answer is complete: the rest is read only for the figures
        // Kiro sends at the end (usage, credits), which keeps them and the connection reusable.
        let figures = matches!(
            ev,
            KiroEvent::Metering(_) | KiroEvent::ContextUsage(_) | KiroEvent::Metadata { .. }
        );
        if self.stopped_by.is_some() && !figures {
            return Ok(());
        }
        match ev {
            KiroEvent::Text(t) => self.on_text(&t, sink)?,
            KiroEvent::ToolUse {
                id,
                name,
                input,
                stop,
            } => self.on_tool(id, self.opts.client_tool_name(name), input, stop, sink)?,
            KiroEvent::Reasoning {
                text,
                signature,
                redacted,
            } => {
                if let Some(t) = text.filter(|t| !t.is_empty()) {
                    self.out_chars.add(&t);
                    sink.emit(OutputEvent::Reasoning(t))?;
                }
                if let Some(s) = signature.filter(|s| !s.is_empty()) {
                    sink.emit(OutputEvent::ReasoningSignature(s))?;
                }
                if let Some(r) = redacted.filter(|r| !r.is_empty()) {
                    sink.emit(OutputEvent::RedactedReasoning(r))?;
                }
            }
            KiroEvent::Metering(u) => {
                self.credits = Some(self.credits.unwrap_or(0.0) + u);
                self.completion_signal = true;
            }
            KiroEvent::ContextUsage(p) => {
                self.context_pct = Some(p);
                self.completion_signal = true;
            }
            KiroEvent::Metadata { usage, stop_reason } => {
                if usage.is_some() {
                    self.real_usage = usage;
                    self.completion_signal = true;
                }
                if stop_reason.is_some() {
                    self.stop_reason = stop_reason;
                    self.completion_signal = true;
                }
            }
            KiroEvent::Exception {
                kind,
                message,
                reason,
            } => {
                let err = if is_context_overflow(&message, reason.as_deref()) {
                    Error::ContextLengthExceeded(crate::kiro::client::enhance_message(
                        &message,
                        Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
                    ))
                } else {
                    let mut m = format!("{kind}: {message}");
                    if let Some(r) = reason {
                        m.push_str(&format!(" (reason: {r})"));
                    }
                    Error::Stream(m)
                };
                return Err(RelayError::Failed(err));
            }
            KiroEvent::Ignored(_) => {}
        }
        Ok(())
    }

    fn on_text(&mut self, text: &str, sink: &mut dyn Sink) -> Result<(), RelayError> {
        let pieces = match self.parser.as_mut() {
            Some(p) => p.feed(text),
            None => vec![Piece::Text(text.to_string())],
        };
        self.on_pieces(pieces, sink)
    }

    fn on_pieces(&mut self, pieces: Vec<Piece>, sink: &mut dyn Sink) -> Result<(), RelayError> {
        for piece in pieces {
            match piece {
                Piece::Text(t) => self.visible(&t, sink)?,
                Piece::Thinking { text, first, last } => {
                    let mode = self
                        .opts
                        .thinking
                        .unwrap_or(ThinkingHandling::AsReasoningContent);
                    match mode {
                        ThinkingHandling::AsReasoningContent => {
                            if !text.is_empty() {
                                self.out_chars.add(&text);
                                sink.emit(OutputEvent::Reasoning(text))?;
                            }
                        }
                        ThinkingHandling::Remove => {}
                        ThinkingHandling::StripTags => {
                            if !text.is_empty() {
                                self.visible(&text, sink)?;
                            }
                        }
                        ThinkingHandling::Pass => {
                            let tag = self
                                .parser
                                .as_ref()
                                .and_then(|p| p.open_tag())
                                .unwrap_or("<thinking>")
                                .to_string();
                            let mut s = String::new();
                            if first {
                                s.push_str(&tag);
                            }
                            s.push_str(&text);
                            if last {
                                s.push_str(&tag.replacen('<', "</", 1));
                            }
                            if !s.is_empty() {
                                self.visible(&s, sink)?;
                            }
                        }
                    }
                }
            }
            if self.stopped_by.is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Visible text, through the stop-sequence matcher.
    fn visible(&mut self, text: &str, sink: &mut dyn Sink) -> Result<(), RelayError> {
        if self.stopped_by.is_some() {
            return Ok(());
        }
        if self.max_stop_len == 0 {
            return self.release(text.to_string(), sink);
        }
        self.held.push_str(text);
        let found = self
            .opts
            .stop_sequences
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.held.find(s.as_str()).map(|p| (p, s.clone())))
            .min_by_key(|(p, _)| *p);
        if let Some((pos, seq)) = found {
            let before = self.held[..pos].to_string();
            self.held.clear();
            self.stopped_by = Some(seq);
            return self.release(before, sink);
        }
        // Keep back what could still be the start of a stop sequence.
        let mut keep_from = self.held.len().saturating_sub(self.max_stop_len - 1);
        while !self.held.is_char_boundary(keep_from) {
            keep_from -= 1;
        }
        let out: String = self.held.drain(..keep_from).collect();
        self.release(out, sink)
    }

    fn release(&mut self, text: String, sink: &mut dyn Sink) -> Result<(), RelayError> {
        if text.is_empty() {
            return Ok(());
        }
        if self.opts.bracket_calls {
            self.visible_text.push_str(&text);
        }
        self.saw_text = true;
        self.out_chars.add(&text);
        sink.emit(OutputEvent::Text(text))?;
        Ok(())
    }

    fn finish(mut self, sink: &mut dyn Sink) -> Result<Outcome, RelayError> {
        if let Some(p) = self.parser.as_mut() {
            let rest = p.finish();
            self.on_pieces(rest, sink)?;
        }
        if self.stopped_by.is_none() && !self.held.is_empty() {
            let rest = std::mem::take(&mut self.held);
            self.release(rest, sink)?;
        }
        // Calls Kiro never closed: complete JSON is accepted, anything else was cut.
        let mut truncated = Vec::new();
        for i in 0..self.tools.len() {
            if self.tools.get(i).is_some_and(|t| !t.ended) && !self.end_tool(i, sink)? {
                if let Some(t) = self.tools.get(i) {
                    truncated.push((t.name.clone(), t.args.len()));
                }
            }
        }
        if self.stopped_by.is_none() && self.opts.bracket_calls {
            self.bracket_calls(sink)?;
        }
        if !truncated.is_empty() {
            for (name, bytes) in &truncated {
                log::warn!(
                    "truncated tool call: '{name}' was cut after {bytes} bytes of arguments"
                );
            }
            let names: Vec<String> = truncated.iter().map(|(n, _)| format!("'{n}'")).collect();
            let note = format!(
                "\n\n[API Limitation] The tool call {} was cut off by the Kiro API before its arguments were complete, so it was not executed. Split the work into smaller steps (for example, write a large file in several smaller calls) instead of repeating the same call.",
                names.join(", ")
            );
            self.out_chars.add(&note);
            sink.emit(OutputEvent::Text(note))?;
        }
        let completed_tools = self.tools.iter().filter(|t| t.ended && !t.dropped).count();
        let finish = if let Some(seq) = self.stopped_by.clone() {
            FinishReason::StopSequence(seq)
        } else if !truncated.is_empty() {
            FinishReason::Length
        } else if completed_tools > 0 {
            FinishReason::ToolCalls
        } else if self.stop_reason.as_deref().is_some_and(|r| {
            r.eq_ignore_ascii_case("max_tokens") || r.eq_ignore_ascii_case("length")
        }) {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        if !self.completion_signal
            && self.saw_text
            && completed_tools == 0
            && self.stopped_by.is_none()
        {
            log::warn!("Kiro's reply ended without a completion signal; it may be incomplete");
        }
        Ok(Outcome {
            finish,
            usage: self.usage(),
            truncated_tool_calls: truncated.len(),
        })
    }

    /// `[Called name with args: {...}]` written as text becomes a tool call
    /// (`docs/kiro-wire.md#bracket-tool-calls`, [`brackets`]).
    fn bracket_calls(&mut self, sink: &mut dyn Sink) -> Result<(), RelayError> {
        let found = find_bracket_calls(&self.visible_text);
        for (name, args) in found {
            let name = self.opts.client_tool_name(name);
            if self.opts.single_tool_call && self.tools.iter().any(|t| !t.dropped) {
                break;
            }
            let duplicate = self
                .tools
                .iter()
                .any(|t| t.ended && t.name == name && same_json(&t.args, &args));
            if duplicate {
                continue;
            }
            let id = format!("call_{}", random_hex(24));
            self.tools.push(ToolState {
                kiro_id: String::new(),
                name: name.clone(),
                args: args.clone(),
                ended: true,
                dropped: false,
            });
            let index = self.tools.len() - 1;
            sink.emit(OutputEvent::ToolCallStart { index, id, name })?;
            sink.emit(OutputEvent::ToolCallArguments {
                index,
                fragment: args.clone(),
            })?;
            sink.emit(OutputEvent::ToolCallEnd {
                index,
                arguments: args,
            })?;
        }
        Ok(())
    }

    fn usage(&self) -> Usage {
        let output = match &self.real_usage {
            Some(u) if u.output_tokens > 0 => u.output_tokens,
            _ => self.out_chars.tokens(),
        };
        let (input, cache_read, cache_write) = match &self.real_usage {
            Some(u) if u.uncached_input_tokens + u.cache_read_input_tokens > 0 => (
                u.uncached_input_tokens + u.cache_read_input_tokens + u.cache_write_input_tokens,
                u.cache_read_input_tokens,
                u.cache_write_input_tokens,
            ),
            _ => match self.context_pct {
                Some(p) if p > 0.0 => {
                    let total = (p / 100.0 * self.opts.max_input_tokens as f64) as u64;
                    (total.saturating_sub(output), 0, 0)
                }
                _ => (self.opts.estimated_input_tokens, 0, 0),
            },
        };
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            credits: self.credits,
            web_search_requests: 0,
        }
    }
}

#[cfg(test)]
mod tests;
