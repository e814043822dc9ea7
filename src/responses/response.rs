//! Neutral output events → OpenAI Responses: the streamed events (`response.created` …
//! `response.completed`, each with its `sequence_number`), and the `response` object, which is
//! also the whole answer of a non-streaming request (so both paths say exactly the same thing).
//!
//! The writer writes into any [`EventOut`]: the SSE connection, a `Vec` in tests, or nothing for
//! a non-streaming reply ([`ResponseWriter::collecting`]). It must not know Kiro, nor decide
//! anything about the request: it only translates what the relay says, in order. The output items
//! and their JSON are in [`super::output`]; how each relay event becomes stream events is in
//! `stream` (the writer's `Sink` half).

use std::io;

use serde_json::{json, Value};

use crate::conversation::{FinishReason, Message, Outcome, Reasoning, Role, ToolCall, Usage};
use crate::error::{Error, ErrorClass};
use crate::sse::SseWriter;
use crate::tokens::estimate_tokens;
use crate::util::{now_unix, random_hex};
use crate::websearch::history_text;

use super::output::{content_part, Item};
use super::request::{Echo, ResponsesRequest};
use super::tools::ToolMap;

mod stream;

/// Where the events of one response go.
pub trait EventOut {
    /// Deliver one event named `name` (the same as `data.type`). An error means the client is gone.
    fn event(&mut self, name: &str, data: &Value) -> io::Result<()>;
    /// Nothing was said for a while (SSE writes a comment so that proxies keep the line open).
    fn keepalive(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Send what was written so far (buffering outputs only).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl EventOut for SseWriter {
    fn event(&mut self, name: &str, data: &Value) -> io::Result<()> {
        SseWriter::event(self, Some(name), &data.to_string())
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.comment("keep-alive")
    }

    fn flush(&mut self) -> io::Result<()> {
        SseWriter::flush(self)
    }
}

/// Collects events (name, data), for tests and tools.
impl EventOut for Vec<(String, Value)> {
    fn event(&mut self, name: &str, data: &Value) -> io::Result<()> {
        self.push((name.to_string(), data.clone()));
        Ok(())
    }
}

/// `resp_` + 48 hex.
pub fn response_id() -> String {
    format!("resp_{}", random_hex(48))
}

/// What every `response` object of one reply repeats: its id and the echoed request fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseHead {
    pub id: String,
    pub created_at: u64,
    pub model: String,
    pub instructions: Option<String>,
    pub previous_response_id: Option<String>,
    pub store: bool,
    pub max_output_tokens: Option<u32>,
    pub echo: Echo,
    /// How Kiro's tool calls become the client's items.
    pub tools: ToolMap,
}

impl ResponseHead {
    /// A head with a new id for a reply to `req`.
    pub fn new(req: &ResponsesRequest) -> ResponseHead {
        ResponseHead {
            id: response_id(),
            created_at: now_unix(),
            model: req.model.clone(),
            instructions: req.instructions.clone(),
            previous_response_id: req.previous_response_id.clone(),
            store: req.store,
            max_output_tokens: req.max_output_tokens,
            echo: req.echo.clone(),
            tools: req.tool_map.clone(),
        }
    }
}

/// The Responses `usage` object. `reasoning_tokens` is our estimate (Kiro does not say).
pub fn usage_json(u: &Usage, reasoning_tokens: u64) -> Value {
    let mut v = json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cache_read_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens.min(u.output_tokens)},
        "total_tokens": u.input_tokens + u.output_tokens,
    });
    if let Some(c) = u.credits.filter(|c| *c > 0.0) {
        v["credits_used"] = json!(c);
    }
    v
}

/// The `error.code` of a `response.failed`: the codes clients act on (Codex compacts on
/// `context_length_exceeded`, backs off on `rate_limit_exceeded` and stops on
/// `insufficient_quota`), `server_error` otherwise.
pub fn failure_code(e: &Error) -> &'static str {
    if e.is_quota() {
        return "insufficient_quota";
    }
    match e.class() {
        ErrorClass::ContextLength => "context_length_exceeded",
        ErrorClass::RateLimit => "rate_limit_exceeded",
        _ => "server_error",
    }
}

/// Turns the relay's events into Responses stream events, keeping the output items for the final
/// `response` object and for the store.
pub struct ResponseWriter<'a> {
    /// `None` for a non-streaming reply: only the final object is needed.
    out: Option<&'a mut dyn EventOut>,
    head: ResponseHead,
    seq: u64,
    items: Vec<Item>,
    /// The reasoning or message item text goes to (function calls are addressed by index).
    open: Option<usize>,
    /// Relay tool-call index → item index.
    calls: Vec<Option<usize>>,
    /// Characters of text since the last other event (citation offsets count from its start).
    run_chars: usize,
    /// Copy of the events written, for the debug log.
    pub trace: Option<String>,
}

impl<'a> ResponseWriter<'a> {
    /// A writer for the reply described by `head`; `trace` keeps a copy of every event.
    pub fn new(out: &'a mut dyn EventOut, head: ResponseHead, trace: bool) -> ResponseWriter<'a> {
        ResponseWriter {
            out: Some(out),
            head,
            seq: 0,
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            run_chars: 0,
            trace: trace.then(String::new),
        }
    }

    /// A writer that sends no event, for a non-streaming reply: its [`ResponseWriter::finish`]
    /// returns the same object a stream ends with.
    pub fn collecting(head: ResponseHead) -> ResponseWriter<'static> {
        ResponseWriter {
            out: None,
            head,
            seq: 0,
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            run_chars: 0,
            trace: None,
        }
    }

    /// The response id (`resp_…`).
    pub fn id(&self) -> &str {
        &self.head.id
    }

    fn send(&mut self, kind: &str, mut body: Value) -> io::Result<()> {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        if let Some(t) = self.trace.as_mut() {
            t.push_str(&format!("event: {kind}\ndata: {body}\n\n"));
        }
        match self.out.as_mut() {
            Some(out) => out.event(kind, &body),
            None => Ok(()),
        }
    }

    /// The `response` object in its current state: done items only, in output order.
    fn object(&self, status: &str) -> Value {
        let h = &self.head;
        let e = &h.echo;
        let output: Vec<Value> = self
            .items
            .iter()
            .filter(|i| i.is_done())
            .map(Item::json)
            .collect();
        json!({
            "id": h.id, "object": "response", "created_at": h.created_at, "status": status,
            "background": false, "error": null, "incomplete_details": null,
            "instructions": h.instructions, "max_output_tokens": h.max_output_tokens,
            "model": h.model, "output": output, "parallel_tool_calls": e.parallel_tool_calls,
            "previous_response_id": h.previous_response_id,
            "reasoning": {"effort": e.reasoning_effort, "summary": e.reasoning_summary},
            "store": h.store, "temperature": e.temperature.unwrap_or(1.0),
            "text": e.text, "tool_choice": e.tool_choice, "tools": e.tools,
            "top_p": e.top_p.unwrap_or(1.0), "truncation": e.truncation, "usage": null,
            "user": null, "metadata": e.metadata,
        })
    }

    /// `response.created` and `response.in_progress`: sent before anything else.
    pub fn start(&mut self) -> io::Result<()> {
        let r = self.object("in_progress");
        self.send("response.created", json!({"response": r}))?;
        let r = self.object("in_progress");
        self.send("response.in_progress", json!({"response": r}))
    }

    fn add_item(&mut self, item: Item) -> io::Result<usize> {
        let json = item.json();
        self.items.push(item);
        let index = self.items.len() - 1;
        self.send(
            "response.output_item.added",
            json!({"output_index": index, "item": json}),
        )?;
        Ok(index)
    }

    /// Close the open reasoning or message item.
    fn close_open(&mut self, status: &'static str) -> io::Result<()> {
        let Some(index) = self.open.take() else {
            return Ok(());
        };
        let events = match self.items.get_mut(index) {
            Some(Item::Message {
                id,
                text,
                status: st,
                done,
                refusal,
                annotations,
            }) => {
                *st = status;
                *done = true;
                let part = content_part(text, *refusal, annotations);
                let finished = if *refusal {
                    (
                        "response.refusal.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                            "refusal": text}),
                    )
                } else {
                    (
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                            "text": text, "logprobs": []}),
                    )
                };
                vec![
                    finished,
                    (
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0,
                            "part": part}),
                    ),
                ]
            }
            Some(Item::Reasoning {
                id,
                text,
                part_open,
                done,
                ..
            }) => {
                *done = true;
                let mut ev = Vec::new();
                if *part_open {
                    ev.push((
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                            "text": text}),
                    ));
                    ev.push((
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0,
                            "part": {"type": "summary_text", "text": text}}),
                    ));
                }
                ev
            }
            _ => return Ok(()),
        };
        for (kind, body) in events {
            self.send(kind, body)?;
        }
        let item = self.items.get(index).map(Item::json);
        if let Some(item) = item {
            self.send(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            )?;
        }
        Ok(())
    }

    /// The open message item, opened (with its one `output_text` or `refusal` part) if needed.
    fn message(&mut self, refusal: bool) -> io::Result<usize> {
        if let Some(i) = self.open {
            if matches!(self.items.get(i), Some(Item::Message { refusal: r, .. }) if *r == refusal)
            {
                return Ok(i);
            }
        }
        self.close_open("completed")?;
        let id = format!("msg_{}", random_hex(48));
        let index = self.add_item(Item::Message {
            id: id.clone(),
            text: String::new(),
            status: "in_progress",
            done: false,
            refusal,
            annotations: Vec::new(),
        })?;
        self.open = Some(index);
        self.send(
            "response.content_part.added",
            json!({"item_id": id, "output_index": index, "content_index": 0,
                "part": content_part("", refusal, &[])}),
        )?;
        Ok(index)
    }

    /// The open reasoning item, opened if needed.
    fn reasoning(&mut self) -> io::Result<usize> {
        if let Some(i) = self.open {
            if matches!(self.items.get(i), Some(Item::Reasoning { .. })) {
                return Ok(i);
            }
        }
        self.close_open("completed")?;
        let index = self.add_item(Item::Reasoning {
            id: format!("rs_{}", random_hex(48)),
            text: String::new(),
            part_open: false,
            signature: None,
            redacted: None,
            done: false,
        })?;
        self.open = Some(index);
        Ok(index)
    }

    /// The reasoning item a signature or redacted block belongs to: the open one, else the last
    /// one, else a new one.
    fn reasoning_for_signature(&mut self) -> io::Result<usize> {
        if let Some(i) = self.open {
            if matches!(self.items.get(i), Some(Item::Reasoning { .. })) {
                return Ok(i);
            }
        }
        match self
            .items
            .iter()
            .rposition(|i| matches!(i, Item::Reasoning { .. }))
        {
            Some(i) => Ok(i),
            None => self.reasoning(),
        }
    }

    fn reasoning_text(&self) -> String {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Reasoning { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Close what is open and send the last event: `response.completed`, or
    /// `response.incomplete` (with `incomplete_details.reason = "max_output_tokens"`) when the
    /// output was cut. Returns the final `response` object.
    pub fn finish(&mut self, outcome: &Outcome) -> io::Result<Value> {
        let cut = outcome.finish == FinishReason::Length;
        self.close_open(if cut { "incomplete" } else { "completed" })?;
        let status = if cut { "incomplete" } else { "completed" };
        let mut r = self.object(status);
        r["usage"] = usage_json(&outcome.usage, estimate_tokens(&self.reasoning_text()));
        if cut {
            r["incomplete_details"] = json!({"reason": "max_output_tokens"});
        } else {
            r["completed_at"] = json!(now_unix());
        }
        let kind = if cut {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.send(kind, json!({"response": r.clone()}))?;
        Ok(r)
    }

    /// The reply broke after it started: `response.failed` with the error (the caller then ends
    /// the body; nothing may follow).
    pub fn fail(&mut self, e: &Error) -> io::Result<()> {
        // The text streamed so far stays part of the response, as an incomplete message.
        self.close_open("incomplete")?;
        let mut r = self.object("failed");
        r["error"] = json!({"code": failure_code(e), "message": e.to_string()});
        self.send("response.failed", json!({"response": r}))
    }

    /// The assistant's turn as it goes into history: the text of every message item, the
    /// completed calls, and the reasoning with its signature. `None` when nothing was produced.
    pub fn assistant_message(&self) -> Option<Message> {
        let mut m = Message::text(Role::Assistant, "");
        let mut reasoning: Option<Reasoning> = None;
        for item in &self.items {
            match item {
                Item::Message { text, .. } => m.text.push_str(text),
                Item::Call {
                    call_id,
                    kiro_name,
                    arguments,
                    done: true,
                    ..
                } => {
                    if let Ok(input) = serde_json::from_str::<Value>(arguments) {
                        m.tool_calls.push(ToolCall {
                            id: call_id.clone(),
                            name: kiro_name.clone(),
                            input,
                        });
                    }
                }
                Item::Call { .. } => {}
                Item::Search {
                    query,
                    outcome: Some(outcome),
                    ..
                } => m.text.push_str(&history_text(query, outcome)),
                Item::Search { .. } => {}
                Item::Reasoning {
                    text,
                    signature,
                    redacted,
                    ..
                } => {
                    let r = reasoning.get_or_insert_with(Reasoning::default);
                    r.text.push_str(text);
                    if signature.is_some() {
                        r.signature.clone_from(signature);
                    }
                    if redacted.is_some() {
                        r.redacted.clone_from(redacted);
                    }
                }
            }
        }
        m.reasoning = reasoning;
        let empty = m.text.is_empty() && m.tool_calls.is_empty() && m.reasoning.is_none();
        (!empty).then_some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::OutputEvent;
    use crate::relay::Sink;

    fn head() -> ResponseHead {
        ResponseHead {
            id: "resp_test".into(),
            created_at: 1,
            model: "claude-sonnet-4.5".into(),
            instructions: Some("be brief".into()),
            previous_response_id: None,
            store: true,
            max_output_tokens: None,
            echo: Echo {
                tool_choice: json!("auto"),
                metadata: json!({}),
                parallel_tool_calls: true,
                ..Echo::default()
            },
            tools: ToolMap::default(),
        }
    }

    fn outcome(finish: FinishReason) -> Outcome {
        Outcome {
            finish,
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Usage::default()
            },
            truncated_tool_calls: 0,
        }
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Every event's name is its `type`, and sequence numbers count from 0 without gaps.
    fn assert_well_formed(events: &[(String, Value)]) {
        for (i, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], json!(name), "{data}");
            assert_eq!(data["sequence_number"], json!(i), "{data}");
        }
    }

    fn run(
        events: Vec<OutputEvent>,
        end: Option<Outcome>,
    ) -> (Vec<(String, Value)>, Option<Value>, Option<Message>) {
        let mut out: Vec<(String, Value)> = Vec::new();
        let (fin, msg) = {
            let mut w = ResponseWriter::new(&mut out, head(), false);
            w.start().unwrap();
            for e in events {
                w.emit(e).unwrap();
            }
            let fin = end.map(|o| w.finish(&o).unwrap());
            (fin, w.assistant_message())
        };
        assert_well_formed(&out);
        (out, fin, msg)
    }

    #[test]
    fn text_reply_streams_the_documented_events_in_order() {
        let (ev, fin, _) = run(
            vec![
                OutputEvent::Text("Hel".into()),
                OutputEvent::Text("lo".into()),
            ],
            Some(outcome(FinishReason::Stop)),
        );
        assert_eq!(
            names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let created = &ev[0].1["response"];
        assert_eq!(created["id"], "resp_test");
        assert_eq!(created["object"], "response");
        assert_eq!(created["status"], "in_progress");
        assert_eq!(created["output"], json!([]));
        assert_eq!(created["instructions"], "be brief");
        let added = &ev[2].1;
        assert_eq!(added["output_index"], 0);
        assert_eq!(added["item"]["type"], "message");
        assert_eq!(added["item"]["role"], "assistant");
        assert_eq!(added["item"]["status"], "in_progress");
        let item_id = added["item"]["id"].as_str().unwrap().to_string();
        assert!(item_id.starts_with("msg_"), "{item_id}");
        for (_, d) in &ev[3..8] {
            assert_eq!(d["item_id"], json!(item_id));
            assert_eq!(d["output_index"], 0);
        }
        assert_eq!(ev[4].1["delta"], "Hel");
        assert_eq!(ev[4].1["content_index"], 0);
        assert_eq!(ev[6].1["text"], "Hello");
        assert_eq!(ev[7].1["part"]["text"], "Hello");
        assert_eq!(ev[8].1["item"]["status"], "completed");
        let done = &ev[9].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["output"][0]["content"][0]["type"], "output_text");
        assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(done["output"][0]["content"][0]["annotations"], json!([]));
        assert_eq!(done["usage"]["input_tokens"], 10);
        assert_eq!(done["usage"]["output_tokens"], 5);
        assert_eq!(done["usage"]["total_tokens"], 15);
        assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 0);
        assert_eq!(
            done["usage"]["output_tokens_details"]["reasoning_tokens"],
            0
        );
        assert_eq!(done["incomplete_details"], Value::Null);
        assert_eq!(fin.unwrap(), *done);
    }

    #[test]
    fn reasoning_text_and_tool_call_become_three_items_in_order() {
        let (ev, fin, msg) = run(
            vec![
                OutputEvent::Reasoning("think ".into()),
                OutputEvent::Reasoning("hard".into()),
                OutputEvent::ReasoningSignature("sig".into()),
                OutputEvent::Text("Let me check.".into()),
                OutputEvent::ToolCallStart {
                    index: 0,
                    id: "tooluse_1".into(),
                    name: "weather".into(),
                },
                OutputEvent::ToolCallArguments {
                    index: 0,
                    fragment: "{\"city\":".into(),
                },
                OutputEvent::ToolCallArguments {
                    index: 0,
                    fragment: "\"Paris\"}".into(),
                },
                OutputEvent::ToolCallEnd {
                    index: 0,
                    arguments: "{\"city\":\"Paris\"}".into(),
                },
            ],
            Some(outcome(FinishReason::ToolCalls)),
        );
        assert_eq!(
            names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert!(ev[2].1["item"]["id"].as_str().unwrap().starts_with("rs_"));
        assert_eq!(ev[2].1["item"]["summary"], json!([]));
        assert_eq!(ev[3].1["summary_index"], 0);
        assert_eq!(ev[6].1["text"], "think hard");
        let rs_done = &ev[8].1["item"];
        assert_eq!(
            rs_done["summary"],
            json!([{"type": "summary_text", "text": "think hard"}])
        );
        assert_eq!(rs_done["encrypted_content"], "kgw1:sig");
        assert_eq!(ev[9].1["output_index"], 1);
        let call_added = &ev[15].1;
        assert_eq!(call_added["output_index"], 2);
        assert_eq!(call_added["item"]["type"], "function_call");
        assert_eq!(call_added["item"]["call_id"], "tooluse_1");
        assert_eq!(call_added["item"]["name"], "weather");
        assert_eq!(call_added["item"]["arguments"], "");
        let fc_id = call_added["item"]["id"].as_str().unwrap();
        assert!(fc_id.starts_with("fc_"), "{fc_id}");
        assert_eq!(ev[16].1["item_id"], fc_id);
        assert_eq!(ev[16].1["delta"], "{\"city\":");
        assert_eq!(ev[18].1["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(ev[18].1["name"], "weather");
        assert_eq!(ev[19].1["item"]["status"], "completed");
        let out = &fin.unwrap()["output"];
        let kinds: Vec<_> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["reasoning", "message", "function_call"]);
        assert_eq!(out[2]["arguments"], "{\"city\":\"Paris\"}");
        let msg = msg.unwrap();
        assert_eq!(msg.text, "Let me check.");
        assert_eq!(msg.tool_calls[0].id, "tooluse_1");
        assert_eq!(msg.tool_calls[0].input, json!({"city": "Paris"}));
        let r = msg.reasoning.unwrap();
        assert_eq!(r.text, "think hard");
        assert_eq!(r.signature.as_deref(), Some("sig"));
    }

    #[test]
    fn cut_tool_call_is_withheld_and_the_response_is_incomplete() {
        let (ev, fin, msg) = run(
            vec![
                OutputEvent::ToolCallStart {
                    index: 0,
                    id: "t1".into(),
                    name: "write".into(),
                },
                OutputEvent::ToolCallArguments {
                    index: 0,
                    fragment: "{\"content\": \"abc".into(),
                },
                OutputEvent::Text("[cut]".into()),
            ],
            Some(Outcome {
                truncated_tool_calls: 1,
                ..outcome(FinishReason::Length)
            }),
        );
        assert!(!names(&ev).contains(&"response.function_call_arguments.done"));
        let done_items: Vec<_> = ev
            .iter()
            .filter(|(n, _)| n == "response.output_item.done")
            .map(|(_, d)| d["item"]["type"].as_str().unwrap())
            .collect();
        assert_eq!(done_items, ["message"]);
        let (last, data) = ev.last().unwrap();
        assert_eq!(last, "response.incomplete");
        let r = &data["response"];
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(r["output"].as_array().unwrap().len(), 1);
        assert_eq!(r["output"][0]["status"], "incomplete");
        assert_eq!(fin.unwrap()["status"], "incomplete");
        let msg = msg.unwrap();
        assert!(msg.tool_calls.is_empty());
        assert_eq!(msg.text, "[cut]");
    }

    #[test]
    fn failure_after_start_is_response_failed_with_a_code_clients_act_on() {
        let mut out: Vec<(String, Value)> = Vec::new();
        {
            let mut w = ResponseWriter::new(&mut out, head(), true);
            w.start().unwrap();
            w.emit(OutputEvent::Text("partial".into())).unwrap();
            w.fail(&Error::ContextLengthExceeded("too long".into()))
                .unwrap();
            assert!(w
                .trace
                .as_ref()
                .unwrap()
                .contains("event: response.failed\n"));
        }
        assert_well_formed(&out);
        let (last, data) = out.last().unwrap();
        assert_eq!(last, "response.failed");
        assert_eq!(data["response"]["status"], "failed");
        assert_eq!(data["response"]["error"]["code"], "context_length_exceeded");
        assert_eq!(data["response"]["error"]["message"], "too long");
        // The text streamed before the failure is part of the failed response.
        let output = &data["response"]["output"];
        assert_eq!(output[0]["status"], "incomplete");
        assert_eq!(output[0]["content"][0]["text"], "partial");
        assert_eq!(failure_code(&Error::Stream("cut".into())), "server_error");
        assert_eq!(
            failure_code(&Error::AccountsUnavailable {
                message: "x".into(),
                retry_after: 1,
                quota: false,
            }),
            "rate_limit_exceeded"
        );
    }

    /// Runs `events` with a head whose tools are those of `tools` (a Responses `tools` list).
    fn run_with_tools(
        tools: Value,
        events: Vec<OutputEvent>,
    ) -> (Vec<(String, Value)>, Value, Option<Message>) {
        let mut parsed = super::super::tools::Tools::default();
        parsed.add(tools.as_array().unwrap(), "tools").unwrap();
        let mut h = head();
        h.tools = parsed.map;
        let mut out: Vec<(String, Value)> = Vec::new();
        let (fin, msg) = {
            let mut w = ResponseWriter::new(&mut out, h, false);
            w.start().unwrap();
            for e in events {
                w.emit(e).unwrap();
            }
            let fin = w.finish(&outcome(FinishReason::ToolCalls)).unwrap();
            (fin, w.assistant_message())
        };
        assert_well_formed(&out);
        (out, fin, msg)
    }

    fn call_events(name: &str, fragments: &[&str]) -> Vec<OutputEvent> {
        let mut ev = vec![OutputEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: name.into(),
        }];
        for f in fragments {
            ev.push(OutputEvent::ToolCallArguments {
                index: 0,
                fragment: (*f).into(),
            });
        }
        ev.push(OutputEvent::ToolCallEnd {
            index: 0,
            arguments: fragments.concat(),
        });
        ev
    }

    #[test]
    fn custom_tool_call_streams_its_input_as_text() {
        let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n";
        let args = json!({ "input": patch }).to_string();
        let (a, b) = args.split_at(25);
        let (ev, fin, msg) = run_with_tools(
            json!([{"type": "custom", "name": "apply_patch", "format": {"type": "text"}}]),
            call_events("apply_patch", &[a, b]),
        );
        let kinds = names(&ev);
        assert!(!kinds.contains(&"response.function_call_arguments.delta"));
        let deltas: String = ev
            .iter()
            .filter(|(n, _)| n == "response.custom_tool_call_input.delta")
            .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(deltas, patch);
        let done = ev
            .iter()
            .find(|(n, _)| n == "response.custom_tool_call_input.done")
            .unwrap();
        assert_eq!(done.1["input"], patch);
        let added = ev
            .iter()
            .find(|(n, _)| n == "response.output_item.added")
            .unwrap();
        assert_eq!(added.1["item"]["type"], "custom_tool_call");
        assert_eq!(added.1["item"]["input"], "");
        let item = &fin["output"][0];
        assert_eq!(item["type"], "custom_tool_call");
        assert_eq!(item["name"], "apply_patch");
        assert_eq!(item["call_id"], "call_1");
        assert_eq!(item["input"], patch);
        assert!(item["id"].as_str().unwrap().starts_with("ctc_"));
        assert!(item.get("namespace").is_none());
        // History keeps Kiro's view: the tool's one string parameter.
        let m = msg.unwrap();
        assert_eq!(m.tool_calls[0].name, "apply_patch");
        assert_eq!(m.tool_calls[0].input, json!({ "input": patch }));
    }

    #[test]
    fn tool_search_calls_go_back_as_tool_search_call_items() {
        let (ev, fin, msg) = run_with_tools(
            json!([{"type": "tool_search", "execution": "client",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}]),
            call_events("tool_search", &["{\"query\":", "\"weather\"}"]),
        );
        let kinds = names(&ev);
        assert!(!kinds.iter().any(|k| k.contains("arguments")), "{kinds:?}");
        let item = &fin["output"][0];
        assert_eq!(item["type"], "tool_search_call");
        assert_eq!(item["call_id"], "call_1");
        assert_eq!(item["execution"], "client");
        assert_eq!(item["arguments"], json!({"query": "weather"}));
        assert!(item["id"].as_str().unwrap().starts_with("tsc_"));
        assert_eq!(msg.unwrap().tool_calls[0].name, "tool_search");
    }

    #[test]
    fn namespaced_calls_go_back_with_their_namespace_and_bare_name() {
        let (ev, fin, msg) = run_with_tools(
            json!([{"type": "namespace", "name": "multi_agent_v1", "description": "", "tools": [
                {"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}}]}]),
            call_events("multi_agent_v1__spawn_agent", &["{\"message\":", "\"hi\"}"]),
        );
        let item = &fin["output"][0];
        assert_eq!(item["type"], "function_call");
        assert_eq!(item["name"], "spawn_agent");
        assert_eq!(item["namespace"], "multi_agent_v1");
        assert_eq!(item["arguments"], "{\"message\":\"hi\"}");
        let done = ev
            .iter()
            .find(|(n, _)| n == "response.function_call_arguments.done")
            .unwrap();
        assert_eq!(done.1["name"], "spawn_agent");
        assert_eq!(
            msg.unwrap().tool_calls[0].name,
            "multi_agent_v1__spawn_agent"
        );
    }

    #[test]
    fn empty_reply_completes_with_no_items_and_no_history_message() {
        let (ev, fin, msg) = run(Vec::new(), Some(outcome(FinishReason::Stop)));
        assert_eq!(
            names(&ev),
            [
                "response.created",
                "response.in_progress",
                "response.completed"
            ]
        );
        assert_eq!(fin.unwrap()["output"], json!([]));
        assert!(msg.is_none());
    }

    #[test]
    fn text_after_a_tool_call_opens_a_new_message_item() {
        let (ev, fin, _) = run(
            vec![
                OutputEvent::Text("a".into()),
                OutputEvent::ToolCallStart {
                    index: 0,
                    id: "t".into(),
                    name: "f".into(),
                },
                OutputEvent::ToolCallArguments {
                    index: 0,
                    fragment: "{}".into(),
                },
                OutputEvent::ToolCallEnd {
                    index: 0,
                    arguments: "{}".into(),
                },
                OutputEvent::Text("b".into()),
            ],
            Some(outcome(FinishReason::ToolCalls)),
        );
        let added: Vec<_> = ev
            .iter()
            .filter(|(n, _)| n == "response.output_item.added")
            .map(|(_, d)| d["output_index"].as_u64().unwrap())
            .collect();
        assert_eq!(added, [0, 1, 2]);
        let out = fin.unwrap()["output"].clone();
        assert_eq!(out[2]["content"][0]["text"], "b");
    }

    #[test]
    fn keepalive_reaches_the_output_and_usage_reports_credits() {
        struct Counting(usize);
        impl EventOut for Counting {
            fn event(&mut self, _: &str, _: &Value) -> io::Result<()> {
                Ok(())
            }
            fn keepalive(&mut self) -> io::Result<()> {
                self.0 += 1;
                Ok(())
            }
        }
        let mut c = Counting(0);
        ResponseWriter::new(&mut c, head(), false)
            .keepalive()
            .unwrap();
        assert_eq!(c.0, 1);
        let u = usage_json(
            &Usage {
                input_tokens: 3,
                output_tokens: 2,
                cache_read_tokens: 1,
                credits: Some(0.5),
                ..Usage::default()
            },
            9,
        );
        assert_eq!(u["input_tokens_details"]["cached_tokens"], 1);
        assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 2);
        assert_eq!(u["credits_used"], 0.5);
    }
}
