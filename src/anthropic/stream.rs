//! Neutral output events → the Anthropic Messages stream: `message_start`, content blocks with
//! their deltas, `message_delta`, `message_stop`, or an `error` event when the reply breaks.
//!
//! The writer writes to any [`EventOut`] (the real SSE writer, a closure, or a `Vec` in tests); it
//! never touches the network itself and knows nothing of Kiro. The blocks' JSON is shared with the
//! non-streaming `message` ([`super::response`]).

use std::collections::VecDeque;
use std::io;

use serde_json::{json, Value};

use crate::conversation::{Outcome, OutputEvent};
use crate::error::Error;
use crate::pipeline::Stream;
use crate::relay::Sink;
use crate::sse::SseWriter;

use super::response::{
    add_server_tool_use, citation_json, error_body, message_id, search_result_json,
    server_tool_use_json, stop_reason,
};
use super::signature::{omitted_signature, placeholder_signature};

/// Where the stream writer sends its events: `event` is the SSE event name, `data` its JSON.
pub trait EventOut {
    /// Write one event. An error means the client is gone.
    fn send(&mut self, event: &str, data: &str) -> io::Result<()>;
    /// Send what was written so far (buffering outputs only).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl EventOut for SseWriter {
    fn send(&mut self, event: &str, data: &str) -> io::Result<()> {
        self.event(Some(event), data)
    }

    fn flush(&mut self) -> io::Result<()> {
        SseWriter::flush(self)
    }
}

impl<F: FnMut(&str, &str) -> io::Result<()>> EventOut for F {
    fn send(&mut self, event: &str, data: &str) -> io::Result<()> {
        self(event, data)
    }
}

/// Collects `(event, data)` pairs (tests, debugging).
impl EventOut for Vec<(String, String)> {
    fn send(&mut self, event: &str, data: &str) -> io::Result<()> {
        self.push((event.to_string(), data.to_string()));
        Ok(())
    }
}

/// The content block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `signed`: its `signature_delta` was sent; more reasoning starts a new block.
    Thinking {
        index: usize,
        signed: bool,
    },
    Text {
        index: usize,
    },
    /// Tool call `call` (the relay's numbering) in block `index`.
    Tool {
        index: usize,
        call: usize,
    },
}

/// Writes one reply as Anthropic stream events, as the neutral events arrive.
///
/// Blocks get increasing indices in the order they start; a block is closed when another kind
/// starts. A tool call's block stays open until its end (its `input_json_delta`s are streamed as
/// each fragment arrives), so anything else that arrives meanwhile is held back and written
/// right after it; a call that never ends (cut by Kiro) is closed at the end of the reply.
pub struct StreamWriter<'a> {
    out: &'a mut dyn EventOut,
    id: String,
    model: String,
    input_tokens: u64,
    next_index: usize,
    open: Option<Open>,
    held: VecDeque<OutputEvent>,
    /// `thinking.display: "omitted"`: no `thinking_delta`s; the open block's reasoning is kept in
    /// `unshown` until Kiro's signature arrives, and the signature sent wraps both.
    omit_thinking: bool,
    unshown: String,
    /// Copy of everything written, for the debug log.
    trace: Option<String>,
}

impl<'a> StreamWriter<'a> {
    /// A writer for `model` (echoed as the client sent it); `input_tokens` is the estimate
    /// reported in `message_start`.
    pub fn new(
        out: &'a mut dyn EventOut,
        model: &str,
        input_tokens: u64,
        trace: bool,
    ) -> StreamWriter<'a> {
        StreamWriter {
            out,
            id: message_id(),
            model: model.to_string(),
            input_tokens,
            next_index: 0,
            open: None,
            held: VecDeque::new(),
            omit_thinking: false,
            unshown: String::new(),
            trace: trace.then(String::new),
        }
    }

    /// Write thinking blocks without their text (`thinking.display: "omitted"`).
    pub fn omitting_thinking(mut self, omit: bool) -> StreamWriter<'a> {
        self.omit_thinking = omit;
        self
    }

    /// The message id used in `message_start`.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn send(&mut self, event: &str, data: Value) -> io::Result<()> {
        let s = data.to_string();
        if let Some(t) = self.trace.as_mut() {
            t.push_str("event: ");
            t.push_str(event);
            t.push_str("\ndata: ");
            t.push_str(&s);
            t.push_str("\n\n");
        }
        self.out.send(event, &s)
    }

    /// Whether `ev` must wait because a tool call's block is open and `ev` is not part of it.
    fn blocked(&self, ev: &OutputEvent) -> bool {
        match self.open {
            Some(Open::Tool { call, .. }) => !matches!(ev,
                OutputEvent::ToolCallArguments { index, .. } | OutputEvent::ToolCallEnd { index, .. }
                    if *index == call),
            _ => false,
        }
    }

    /// Write every held event that may go now, oldest first.
    fn drain(&mut self) -> io::Result<()> {
        while let Some(pos) = self.held.iter().position(|ev| !self.blocked(ev)) {
            if let Some(ev) = self.held.remove(pos) {
                self.write(ev)?;
            }
        }
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        let index = match self.open.take() {
            None => return Ok(()),
            Some(Open::Thinking { index, signed }) => {
                if !signed {
                    // Unsigned reasoning never goes back to Kiro: the text need not be kept.
                    self.unshown.clear();
                    self.signature(index, &placeholder_signature())?;
                }
                index
            }
            Some(Open::Text { index }) | Some(Open::Tool { index, .. }) => index,
        };
        self.send(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    }

    /// Close the open block and start a new one; returns its index.
    fn begin(&mut self, block: Value) -> io::Result<usize> {
        self.close()?;
        let index = self.next_index;
        self.next_index += 1;
        self.send(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        )?;
        Ok(index)
    }

    fn delta(&mut self, index: usize, delta: Value) -> io::Result<()> {
        self.send(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    fn signature(&mut self, index: usize, signature: &str) -> io::Result<()> {
        self.delta(
            index,
            json!({"type": "signature_delta", "signature": signature}),
        )
    }

    /// The thinking block to write reasoning into (an unsigned one), started if needed.
    fn thinking_block(&mut self) -> io::Result<usize> {
        if let Some(Open::Thinking {
            index,
            signed: false,
        }) = self.open
        {
            return Ok(index);
        }
        let index = self.begin(json!({"type": "thinking", "thinking": "", "signature": ""}))?;
        self.open = Some(Open::Thinking {
            index,
            signed: false,
        });
        Ok(index)
    }

    /// Reasoning text: a `thinking_delta`, or kept for the signature when it is not shown.
    fn reasoning(&mut self, t: String) -> io::Result<()> {
        if t.is_empty() {
            return Ok(());
        }
        let index = self.thinking_block()?;
        if self.omit_thinking {
            self.unshown.push_str(&t);
            return Ok(());
        }
        self.delta(index, json!({"type": "thinking_delta", "thinking": t}))
    }

    /// Kiro's signature ends the thinking block's deltas.
    fn sign(&mut self, kiro_signature: &str) -> io::Result<()> {
        let index = self.thinking_block()?;
        if self.omit_thinking {
            let text = std::mem::take(&mut self.unshown);
            self.signature(index, &omitted_signature(kiro_signature, &text))?;
        } else {
            self.signature(index, kiro_signature)?;
        }
        self.open = Some(Open::Thinking {
            index,
            signed: true,
        });
        Ok(())
    }

    fn write(&mut self, ev: OutputEvent) -> io::Result<()> {
        match ev {
            OutputEvent::Text(t) | OutputEvent::Refusal(t) => {
                if t.is_empty() {
                    return Ok(());
                }
                let index = match self.open {
                    Some(Open::Text { index }) => index,
                    _ => {
                        let index = self.begin(json!({"type": "text", "text": ""}))?;
                        self.open = Some(Open::Text { index });
                        index
                    }
                };
                self.delta(index, json!({"type": "text_delta", "text": t}))
            }
            OutputEvent::Reasoning(t) => self.reasoning(t),
            OutputEvent::ReasoningSignature(s) => self.sign(&s),
            OutputEvent::RedactedReasoning(data) => {
                // No deltas: the block ends at once.
                let index = self.begin(json!({"type": "redacted_thinking", "data": data}))?;
                self.send(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                )
            }
            OutputEvent::ToolCallStart {
                index: call,
                id,
                name,
            } => {
                let index =
                    self.begin(json!({"type": "tool_use", "id": id, "name": name, "input": {}}))?;
                self.open = Some(Open::Tool { index, call });
                Ok(())
            }
            OutputEvent::ToolCallArguments {
                index: call,
                fragment,
            } => match self.open {
                Some(Open::Tool { index, call: c }) if c == call => self.delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": fragment}),
                ),
                _ => {
                    log::debug!("dropping arguments of tool call {call}: its block is closed");
                    Ok(())
                }
            },
            OutputEvent::ToolCallEnd { index: call, .. } => match self.open {
                Some(Open::Tool { call: c, .. }) if c == call => self.close(),
                _ => Ok(()),
            },
            search @ (OutputEvent::WebSearchCall { .. }
            | OutputEvent::WebSearchResult { .. }
            | OutputEvent::Citations(_)) => self.write_search(search),
        }
    }

    /// The web search blocks and citations.
    fn write_search(&mut self, ev: OutputEvent) -> io::Result<()> {
        match ev {
            // The block starts with an empty input and the query follows as one delta, as
            // Anthropic streams it; the block closes before the search runs.
            OutputEvent::WebSearchCall { id, query } => {
                let mut block = server_tool_use_json(&id, &query);
                block["input"] = json!({});
                let index = self.begin(block)?;
                let partial = json!({ "query": query }).to_string();
                self.delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": partial}),
                )?;
                self.stop(index)
            }
            OutputEvent::WebSearchResult { id, outcome, .. } => {
                let index = self.begin(search_result_json(&id, &outcome))?;
                self.stop(index)
            }
            OutputEvent::Citations(list) => match self.open {
                Some(Open::Text { index }) => {
                    for c in &list {
                        self.delta(
                            index,
                            json!({"type": "citations_delta", "citation": citation_json(c)}),
                        )?;
                    }
                    Ok(())
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn stop(&mut self, index: usize) -> io::Result<()> {
        self.send(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    }
}

impl Stream for StreamWriter<'_> {
    /// `message_start`: write it once the upstream reply is open, so that failures before it
    /// still get a proper HTTP status.
    fn start(&mut self) -> io::Result<()> {
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "content": [],
            "model": self.model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0,
                "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        });
        self.send(
            "message_start",
            json!({"type": "message_start", "message": message}),
        )
    }

    /// Close the open block, flush what was held back, then `message_delta` (stop reason and
    /// usage) and `message_stop`.
    fn finish(&mut self, outcome: &Outcome) -> io::Result<()> {
        // A tool call still open here was cut: close it as it is, with no further fragment.
        while !self.held.is_empty() || self.open.is_some() {
            self.close()?;
            self.drain()?;
        }
        let (reason, sequence) = stop_reason(&outcome.finish);
        let u = &outcome.usage;
        let mut usage = json!({"output_tokens": u.output_tokens, "input_tokens": u.input_tokens,
            "cache_read_input_tokens": u.cache_read_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens});
        add_server_tool_use(&mut usage, u);
        self.send(
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": usage}),
        )?;
        self.send("message_stop", json!({"type": "message_stop"}))
    }

    /// The reply broke after it started: an `error` event and nothing more (no `message_stop`:
    /// the answer is not complete and must not look complete).
    fn fail(&mut self, e: &Error) -> io::Result<()> {
        let (_, body) = error_body(e);
        self.send("error", body)
    }

    fn take_trace(&mut self) -> Option<String> {
        self.trace.take()
    }
}

impl Sink for StreamWriter<'_> {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        if self.held.is_empty() && !self.blocked(&event) {
            return self.write(event).and_then(|()| self.drain());
        }
        self.held.push_back(event);
        self.drain()
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.send("ping", json!({"type": "ping"}))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::response::tests::{args, call_start, end, is_message_id, outcome};
    use crate::anthropic::signature::{is_placeholder_signature, read_omitted_signature};
    use crate::conversation::FinishReason;

    /// Run `events` through a writer; returns `(event, data)` pairs.
    fn run(events: Vec<OutputEvent>, finish: FinishReason) -> Vec<(String, Value)> {
        run_showing(events, finish, true)
    }

    /// [`run`] with `thinking.display: "omitted"` when `show_thinking` is false.
    fn run_showing(
        events: Vec<OutputEvent>,
        finish: FinishReason,
        show_thinking: bool,
    ) -> Vec<(String, Value)> {
        let mut out: Vec<(String, String)> = Vec::new();
        {
            let mut w = StreamWriter::new(&mut out, "claude-sonnet-4.5", 42, false)
                .omitting_thinking(!show_thinking);
            w.start().unwrap();
            for ev in events {
                w.emit(ev).unwrap();
            }
            w.finish(&outcome(finish)).unwrap();
        }
        out.into_iter()
            .map(|(e, d)| {
                let v: Value = serde_json::from_str(&d).unwrap();
                assert_eq!(v["type"], e.as_str(), "event name matches data type");
                (e, v)
            })
            .collect()
    }

    /// A compact description of each event: name plus the distinguishing detail.
    fn shape(events: &[(String, Value)]) -> Vec<String> {
        events
            .iter()
            .map(|(e, v)| match e.as_str() {
                "content_block_start" => {
                    format!(
                        "start {} {}",
                        v["index"],
                        v["content_block"]["type"].as_str().unwrap()
                    )
                }
                "content_block_delta" => {
                    format!(
                        "delta {} {}",
                        v["index"],
                        v["delta"]["type"].as_str().unwrap()
                    )
                }
                "content_block_stop" => format!("stop {}", v["index"]),
                other => other.to_string(),
            })
            .collect()
    }

    #[test]
    fn text_reply_has_the_exact_anthropic_order() {
        let ev = run(
            vec![
                OutputEvent::Text("Hel".into()),
                OutputEvent::Text("lo".into()),
            ],
            FinishReason::Stop,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 text",
                "delta 0 text_delta",
                "delta 0 text_delta",
                "stop 0",
                "message_delta",
                "message_stop"
            ]
        );
        let start = &ev[0].1["message"];
        assert!(is_message_id(start["id"].as_str().unwrap()));
        assert_eq!(start["model"], "claude-sonnet-4.5");
        assert_eq!(start["content"], json!([]));
        assert_eq!(start["usage"]["input_tokens"], 42);
        assert_eq!(start["usage"]["output_tokens"], 0);
        assert_eq!(
            ev[1].1["content_block"],
            json!({"type": "text", "text": ""})
        );
        assert_eq!(ev[2].1["delta"]["text"], "Hel");
        assert_eq!(ev[3].1["delta"]["text"], "lo");
        let delta = &ev[5].1;
        assert_eq!(delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(delta["delta"]["stop_sequence"], Value::Null);
        assert_eq!(delta["usage"]["output_tokens"], 7);
        assert_eq!(delta["usage"]["input_tokens"], 120);
        assert_eq!(delta["usage"]["cache_read_input_tokens"], 100);
    }

    #[test]
    fn prompt_tag_thinking_gets_a_placeholder_signature_before_its_stop() {
        let ev = run(
            vec![
                OutputEvent::Reasoning("step 1".into()),
                OutputEvent::Reasoning(" step 2".into()),
                OutputEvent::Text("answer".into()),
            ],
            FinishReason::Stop,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 thinking",
                "delta 0 thinking_delta",
                "delta 0 thinking_delta",
                "delta 0 signature_delta",
                "stop 0",
                "start 1 text",
                "delta 1 text_delta",
                "stop 1",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            ev[1].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        assert_eq!(ev[2].1["delta"]["thinking"], "step 1");
        assert!(is_placeholder_signature(
            ev[4].1["delta"]["signature"].as_str().unwrap()
        ));
    }

    #[test]
    fn native_thinking_carries_kiros_signature_and_redacted_blocks() {
        let ev = run(
            vec![
                OutputEvent::Reasoning("hmm".into()),
                OutputEvent::ReasoningSignature("EqQBreal".into()),
                OutputEvent::RedactedReasoning("opaque".into()),
                OutputEvent::Text("ok".into()),
            ],
            FinishReason::Stop,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 thinking",
                "delta 0 thinking_delta",
                "delta 0 signature_delta",
                "stop 0",
                "start 1 redacted_thinking",
                "stop 1",
                "start 2 text",
                "delta 2 text_delta",
                "stop 2",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[3].1["delta"]["signature"], "EqQBreal");
        assert_eq!(
            ev[5].1["content_block"],
            json!({"type": "redacted_thinking", "data": "opaque"})
        );
    }

    #[test]
    fn omitted_thinking_streams_no_text_and_a_signature_that_carries_it() {
        let ev = run_showing(
            vec![
                OutputEvent::Reasoning("Let me ".into()),
                OutputEvent::Reasoning("think.".into()),
                OutputEvent::ReasoningSignature("EqQBreal".into()),
                OutputEvent::Reasoning("unsigned".into()),
                OutputEvent::Text("ok".into()),
            ],
            FinishReason::Stop,
            false,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 thinking",
                "delta 0 signature_delta",
                "stop 0",
                "start 1 thinking",
                "delta 1 signature_delta",
                "stop 1",
                "start 2 text",
                "delta 2 text_delta",
                "stop 2",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            ev[1].1["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        let signed = ev[2].1["delta"]["signature"].as_str().unwrap();
        assert_eq!(
            read_omitted_signature(signed),
            Some(("EqQBreal".into(), "Let me think.".into()))
        );
        // Reasoning Kiro did not sign is never replayed: a placeholder, as with the text shown.
        assert!(is_placeholder_signature(
            ev[5].1["delta"]["signature"].as_str().unwrap()
        ));
        let all: String = ev.iter().map(|(_, v)| v.to_string()).collect();
        assert!(
            !all.contains("Let me") && !all.contains("unsigned"),
            "{all}"
        );
    }

    #[test]
    fn reasoning_after_a_signature_opens_a_new_thinking_block() {
        let ev = run(
            vec![
                OutputEvent::ReasoningSignature(".KTR~~blob".into()),
                OutputEvent::Reasoning("second".into()),
            ],
            FinishReason::Stop,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 thinking",
                "delta 0 signature_delta",
                "stop 0",
                "start 1 thinking",
                "delta 1 thinking_delta",
                "delta 1 signature_delta",
                "stop 1",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[2].1["delta"]["signature"], ".KTR~~blob");
    }

    #[test]
    fn thinking_at_the_very_end_is_still_signed() {
        let ev = run(
            vec![OutputEvent::Reasoning("only".into())],
            FinishReason::Stop,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 thinking",
                "delta 0 thinking_delta",
                "delta 0 signature_delta",
                "stop 0",
                "message_delta",
                "message_stop"
            ]
        );
    }

    #[test]
    fn tool_arguments_stream_as_they_arrive() {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut w = StreamWriter::new(&mut out, "m", 1, false);
        w.start().unwrap();
        w.emit(OutputEvent::Text("Writing.".into())).unwrap();
        w.emit(call_start(0, "tooluse_1")).unwrap();
        w.emit(args(0, "{\"path\":")).unwrap();
        drop(w);
        // The fragment is out before the call ends.
        let last: Value = serde_json::from_str(&out.last().unwrap().1).unwrap();
        assert_eq!(
            last["delta"],
            json!({"type": "input_json_delta", "partial_json": "{\"path\":"})
        );
        assert_eq!(last["index"], 1);

        let ev = run(
            vec![
                OutputEvent::Text("Writing.".into()),
                call_start(0, "tooluse_1"),
                args(0, "{\"path\":"),
                args(0, "\"a.txt\"}"),
                end(0, "{\"path\":\"a.txt\"}"),
                call_start(1, "tooluse_2"),
                args(1, "{}"),
                end(1, "{}"),
            ],
            FinishReason::ToolCalls,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 text",
                "delta 0 text_delta",
                "stop 0",
                "start 1 tool_use",
                "delta 1 input_json_delta",
                "delta 1 input_json_delta",
                "stop 1",
                "start 2 tool_use",
                "delta 2 input_json_delta",
                "stop 2",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            ev[4].1["content_block"],
            json!({"type": "tool_use", "id": "tooluse_1", "name": "write_file", "input": {}})
        );
        assert_eq!(ev[11].1["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn truncated_call_is_closed_at_the_end_and_the_note_follows() {
        let ev = run(
            vec![
                call_start(0, "tooluse_big"),
                args(0, "{\"content\":\"aaaa"),
                OutputEvent::Text("\n\n[API Limitation] cut".into()),
            ],
            FinishReason::Length,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 tool_use",
                "delta 0 input_json_delta",
                "stop 0",
                "start 1 text",
                "delta 1 text_delta",
                "stop 1",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[7].1["delta"]["stop_reason"], "max_tokens");
    }

    #[test]
    fn events_during_an_open_call_wait_for_its_end() {
        // Kiro left call 0 open while call 1 started; the relay closes both at the end.
        let ev = run(
            vec![
                call_start(0, "a"),
                args(0, "{\"x\":1"),
                call_start(1, "b"),
                args(1, "{\"y\":2}"),
                args(0, "}"),
                end(0, "{\"x\":1}"),
                end(1, "{\"y\":2}"),
            ],
            FinishReason::ToolCalls,
        );
        assert_eq!(
            shape(&ev),
            [
                "message_start",
                "start 0 tool_use",
                "delta 0 input_json_delta",
                "delta 0 input_json_delta",
                "stop 0",
                "start 1 tool_use",
                "delta 1 input_json_delta",
                "stop 1",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[3].1["delta"]["partial_json"], "}");
        assert_eq!(ev[6].1["delta"]["partial_json"], "{\"y\":2}");
    }

    #[test]
    fn stop_sequence_is_reported() {
        let ev = run(
            vec![OutputEvent::Text("a".into())],
            FinishReason::StopSequence("END".into()),
        );
        let d = &ev[ev.len() - 2].1;
        assert_eq!(d["delta"]["stop_reason"], "stop_sequence");
        assert_eq!(d["delta"]["stop_sequence"], "END");
    }

    #[test]
    fn empty_reply_has_no_blocks() {
        let ev = run(vec![OutputEvent::Text(String::new())], FinishReason::Stop);
        assert_eq!(
            shape(&ev),
            ["message_start", "message_delta", "message_stop"]
        );
    }

    #[test]
    fn keepalive_is_a_ping_and_failure_is_an_error_event_without_message_stop() {
        let mut out: Vec<(String, String)> = Vec::new();
        {
            let mut w = StreamWriter::new(&mut out, "m", 1, true);
            w.start().unwrap();
            w.keepalive().unwrap();
            w.emit(OutputEvent::Text("par".into())).unwrap();
            w.fail(&Error::Stream("cut".into())).unwrap();
            assert!(w.trace.as_deref().unwrap().contains("event: ping"));
        }
        let names: Vec<&str> = out.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "error"
            ]
        );
        let err: Value = serde_json::from_str(&out[4].1).unwrap();
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "api_error");
    }

    #[test]
    fn writer_accepts_a_closure() {
        let mut names = Vec::new();
        let mut f = |e: &str, _: &str| -> io::Result<()> {
            names.push(e.to_string());
            Ok(())
        };
        let mut w = StreamWriter::new(&mut f, "m", 1, false);
        w.start().unwrap();
        w.finish(&outcome(FinishReason::Stop)).unwrap();
        drop(w);
        assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
    }

    #[test]
    fn a_gone_client_stops_the_writer() {
        let mut f = |_: &str, _: &str| -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
        };
        let mut w = StreamWriter::new(&mut f, "m", 1, false);
        assert!(w.start().is_err());
        assert!(w.emit(OutputEvent::Text("x".into())).is_err());
    }
}
