//! Structured outputs and single tool calls for a model API that has neither.
//!
//! A `json_schema` answer becomes a tool the model is told to call, whose input schema is the
//! requested schema. The call's arguments are held until the call ends, checked against the
//! schema ([`schema_check`]), and only then handed to the client: as the message text when they
//! satisfy it, as a refusal with [`FinishReason::FormatNotMet`] when they do not. Text already
//! streamed cannot be taken back, and the SDKs' `parse()` helpers trust a normal finish: a
//! wrong answer must never look like a right one. The call itself is never seen. An answer the
//! model writes as text instead, and a `json_object` answer (asked for in the prompt), are held
//! and checked the same way once complete. `parallel_tool_calls: false` is asked for in the
//! prompt too (the relay drops any further call). While an answer is held, keep-alives go out
//! so that the client and proxies keep the line open.
//!
//! Works on the neutral conversation and output events only: no client format, no Kiro JSON.

mod schema_check;

use std::io;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conversation::{
    Conversation, FinishReason, Outcome, OutputEvent, OutputFormat, ToolChoice, ToolSpec,
};
use crate::relay::Sink;

/// The name of the tool that carries a `json_schema` answer (made unique against the client's).
const ANSWER_TOOL: &str = "structured_answer";

/// Silence toward the client, while an answer is held, after which a keep-alive goes out (the
/// relay's own keep-alives only cover Kiro's silences).
const HOLD_KEEPALIVE: Duration = Duration::from_secs(15);

/// How the answer of a conversation shaped by [`shape`] is read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The tool that carries the answer (`json_schema`); `None` for `json_object`.
    tool: Option<AnswerTool>,
}

/// The tool a `json_schema` answer comes in, and the schema the answer must satisfy (as the
/// client sent it, before any cleaning for Kiro).
#[derive(Debug, Clone, PartialEq)]
struct AnswerTool {
    name: String,
    schema: Value,
}

/// Tell the model what the client asked for: the answer tool and its instruction for a
/// `json_schema` format, an instruction for `json_object` and for a single tool call. Returns how
/// to read the answer back, when a format was asked for.
pub fn shape(conv: &mut Conversation) -> Option<Plan> {
    if conv.single_tool_call && !conv.tools.is_empty() {
        instruct(conv, "[Tool calls] Call at most one tool in each answer.");
    }
    match conv.output_format.clone()? {
        OutputFormat::JsonObject => {
            instruct(
                conv,
                "[Answer format] Answer with one JSON object and nothing else: no prose before or after it, no code fences.",
            );
            Some(Plan { tool: None })
        }
        OutputFormat::JsonSchema {
            name,
            description,
            schema,
            ..
        } => {
            let tool = unique_tool_name(conv);
            let what = description.map(|d| format!(": {d}")).unwrap_or_default();
            conv.tools.push(ToolSpec {
                name: tool.clone(),
                description: format!(
                    "Give the final answer ('{name}'{what}). The input of this call is the answer itself."
                ),
                schema: schema.clone(),
            });
            conv.tool_choice = match &conv.tool_choice {
                // The client's tools stay usable; answering means calling this one.
                ToolChoice::Auto if conv.tools.len() > 1 => ToolChoice::Required,
                ToolChoice::Auto | ToolChoice::None => ToolChoice::Named(tool.clone()),
                other => other.clone(),
            };
            instruct(
                conv,
                &format!("[Answer format] Give your final answer by calling the tool `{tool}`, with the answer as its input. Do not write the answer as text."),
            );
            Some(Plan {
                tool: Some(AnswerTool { name: tool, schema }),
            })
        }
    }
}

fn instruct(conv: &mut Conversation, text: &str) {
    if !conv.system.is_empty() {
        conv.system.push_str("\n\n");
    }
    conv.system.push_str(text);
}

fn unique_tool_name(conv: &Conversation) -> String {
    let mut name = ANSWER_TOOL.to_string();
    while conv.tools.iter().any(|t| t.name == name) {
        name.push('_');
    }
    name
}

/// Sits between the relay and the client's format: holds the answer tool's arguments until they
/// can be checked, holds plain text back until it is known whether it is the answer, and
/// renumbers the client's own tool calls.
pub struct Structured<'a> {
    out: &'a mut dyn Sink,
    plan: &'a Plan,
    /// Plain text not yet released.
    held: String,
    /// The relay's index of the answer call, once it started.
    answer: Option<usize>,
    /// The answer call's arguments so far.
    answer_args: String,
    /// Whether the answer call ended with arguments that satisfy the schema (`None`: not ended).
    answer_ok: Option<bool>,
    /// The relay's call index → the client's (`None`: dropped).
    calls: Vec<Option<usize>>,
    client_calls: usize,
    client_calls_done: usize,
    /// When the client last got anything (an event or a keep-alive).
    last_out: Instant,
}

impl<'a> Structured<'a> {
    pub fn new(out: &'a mut dyn Sink, plan: &'a Plan) -> Structured<'a> {
        Structured {
            out,
            plan,
            held: String::new(),
            answer: None,
            answer_args: String::new(),
            answer_ok: None,
            calls: Vec::new(),
            client_calls: 0,
            client_calls_done: 0,
            last_out: Instant::now(),
        }
    }

    fn send(&mut self, event: OutputEvent) -> io::Result<()> {
        self.last_out = Instant::now();
        self.out.emit(event)
    }

    /// Something was held instead of sent: a long answer must not look like a dead line.
    fn held_back(&mut self) -> io::Result<()> {
        if self.last_out.elapsed() < HOLD_KEEPALIVE {
            return Ok(());
        }
        self.last_out = Instant::now();
        self.out.keepalive()
    }

    fn client_index(&self, index: usize) -> Option<usize> {
        self.calls.get(index).copied().flatten()
    }

    fn release_held(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let text = std::mem::take(&mut self.held);
        self.send(OutputEvent::Text(text))
    }

    fn on_call_start(&mut self, index: usize, id: String, name: String) -> io::Result<()> {
        if self.calls.len() <= index {
            self.calls.resize(index + 1, None);
        }
        if self.plan.tool.as_ref().is_some_and(|t| t.name == name) {
            if self.answer.is_none() {
                // Text before the answer is the model thinking aloud, not the answer.
                self.answer = Some(index);
                self.held.clear();
            }
            return Ok(());
        }
        self.release_held()?;
        let client = self.client_calls;
        self.client_calls += 1;
        if let Some(slot) = self.calls.get_mut(index) {
            *slot = Some(client);
        }
        self.send(OutputEvent::ToolCallStart {
            index: client,
            id,
            name,
        })
    }

    /// The answer call ended with `arguments` (complete JSON): the answer when it satisfies the
    /// schema, a refusal when it does not.
    fn on_answer_end(&mut self, arguments: String) -> io::Result<()> {
        self.answer_args.clear();
        match judge(self.plan, &arguments) {
            Ok(()) => {
                self.answer_ok = Some(true);
                self.send(OutputEvent::Text(arguments))
            }
            Err(why) => {
                // Where and which rule only: the answer itself may be private.
                log::info!(
                    "the structured answer does not satisfy the schema ({why}); returned as a refusal"
                );
                self.answer_ok = Some(false);
                self.send(OutputEvent::Refusal(arguments))
            }
        }
    }

    /// Release what is left, and say how the reply ended as the client sees it.
    pub fn finish(mut self, mut outcome: Outcome) -> io::Result<Outcome> {
        if self.answer.is_some() {
            match self.answer_ok {
                Some(true) if outcome.finish == FinishReason::ToolCalls => {
                    if self.client_calls_done == 0 {
                        outcome.finish = FinishReason::Stop;
                    }
                }
                Some(true) => {}
                // Calls of the client's own still have to run: the model has not answered yet.
                Some(false) if self.client_calls_done > 0 => {}
                Some(false) => outcome.finish = FinishReason::FormatNotMet,
                None => {
                    // Cut before the call was complete: what came is sent for what it is.
                    let partial = std::mem::take(&mut self.answer_args);
                    if !partial.is_empty() {
                        self.send(OutputEvent::Text(partial))?;
                    }
                    outcome.finish = FinishReason::Length;
                }
            }
            return Ok(outcome);
        }
        let text = std::mem::take(&mut self.held);
        let free = self.client_calls_done > 0
            || matches!(
                outcome.finish,
                FinishReason::Length | FinishReason::StopSequence(_)
            );
        if free {
            if !text.is_empty() {
                self.send(OutputEvent::Text(text))?;
            }
            return Ok(outcome);
        }
        // The model may also write the answer as text instead of calling the answer tool.
        let answer = unfenced(&text);
        match judge(self.plan, answer) {
            Ok(()) => self.send(OutputEvent::Text(answer.to_string()))?,
            Err(why) => {
                log::info!(
                    "the model did not answer in the requested format ({why}); returned as a refusal"
                );
                if !text.is_empty() {
                    self.send(OutputEvent::Refusal(text))?;
                }
                outcome.finish = FinishReason::FormatNotMet;
            }
        }
        Ok(outcome)
    }
}

impl Sink for Structured<'_> {
    fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
        match event {
            OutputEvent::Text(t) => {
                // Anything after the answer (a note, a repeat) is not part of it.
                if self.answer.is_none() {
                    self.held.push_str(&t);
                }
                self.held_back()
            }
            OutputEvent::ToolCallStart { index, id, name } => self.on_call_start(index, id, name),
            OutputEvent::ToolCallArguments { index, fragment } => {
                if self.answer == Some(index) {
                    self.answer_args.push_str(&fragment);
                    return self.held_back();
                }
                match self.client_index(index) {
                    Some(index) => self.send(OutputEvent::ToolCallArguments { index, fragment }),
                    None => Ok(()),
                }
            }
            OutputEvent::ToolCallEnd { index, arguments } => {
                if self.answer == Some(index) {
                    return self.on_answer_end(arguments);
                }
                match self.client_index(index) {
                    Some(index) => {
                        self.client_calls_done += 1;
                        self.send(OutputEvent::ToolCallEnd { index, arguments })
                    }
                    None => Ok(()),
                }
            }
            other => self.send(other),
        }
    }

    fn keepalive(&mut self) -> io::Result<()> {
        self.last_out = Instant::now();
        self.out.keepalive()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Whether `answer` is what the plan asked for: a JSON object, which satisfies the schema when
/// there is one. `Err` says where and why not, never what the answer holds (it may be private).
fn judge(plan: &Plan, answer: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(answer).map_err(|e| format!("not JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    match &plan.tool {
        Some(tool) => schema_check::check(&tool.schema, &value).map_err(|v| v.to_string()),
        None => Ok(()),
    }
}

/// `text` without the whitespace and Markdown code fence models like to put around JSON.
fn unfenced(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Message, Role, Usage};

    #[derive(Default)]
    struct Record(Vec<OutputEvent>);

    impl Sink for Record {
        fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
            self.0.push(event);
            Ok(())
        }
    }

    fn outcome(finish: FinishReason) -> Outcome {
        Outcome {
            finish,
            usage: Usage::default(),
            truncated_tool_calls: 0,
        }
    }

    fn schema_conv(tools: Vec<ToolSpec>) -> Conversation {
        Conversation {
            messages: vec![Message::text(Role::User, "hi")],
            tools,
            output_format: Some(OutputFormat::JsonSchema {
                name: "weather".into(),
                description: None,
                schema: serde_json::json!({"type": "object"}),
                strict: true,
            }),
            ..Conversation::default()
        }
    }

    fn answer_plan(schema: Value) -> Plan {
        Plan {
            tool: Some(AnswerTool {
                name: "structured_answer".into(),
                schema,
            }),
        }
    }

    /// The answer tool called with `arguments`, in two fragments.
    fn answer_call(arguments: &str) -> Vec<OutputEvent> {
        let (a, b) = arguments.split_at(arguments.len() / 2);
        vec![
            OutputEvent::ToolCallStart {
                index: 0,
                id: "t".into(),
                name: "structured_answer".into(),
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: a.into(),
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: b.into(),
            },
            OutputEvent::ToolCallEnd {
                index: 0,
                arguments: arguments.into(),
            },
        ]
    }

    fn tool(name: &str) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: String::new(),
            schema: serde_json::json!({}),
        }
    }

    #[test]
    fn a_schema_becomes_a_forced_tool_with_an_instruction() {
        let mut c = schema_conv(Vec::new());
        let plan = shape(&mut c).unwrap();
        assert_eq!(
            plan.tool.as_ref().map(|t| t.name.as_str()),
            Some("structured_answer")
        );
        assert_eq!(c.tool_choice, ToolChoice::Named("structured_answer".into()));
        assert!(c.system.contains("`structured_answer`"));
        // With the client's own tools, any tool may be called, the answer tool included.
        let mut c = schema_conv(vec![tool("structured_answer"), tool("get")]);
        let plan = shape(&mut c).unwrap();
        assert_eq!(
            plan.tool.as_ref().map(|t| t.name.as_str()),
            Some("structured_answer_")
        );
        assert_eq!(c.tool_choice, ToolChoice::Required);
    }

    #[test]
    fn the_answer_calls_arguments_become_the_text_and_the_reply_a_normal_stop() {
        let plan = answer_plan(serde_json::json!({"type": "object"}));
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        for ev in [
            OutputEvent::Text("Let me answer.".into()),
            OutputEvent::ToolCallStart {
                index: 0,
                id: "t".into(),
                name: "structured_answer".into(),
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: "{\"a\":".into(),
            },
            OutputEvent::ToolCallArguments {
                index: 0,
                fragment: "1}".into(),
            },
            OutputEvent::ToolCallEnd {
                index: 0,
                arguments: "{\"a\":1}".into(),
            },
        ] {
            s.emit(ev).unwrap();
        }
        let o = s.finish(outcome(FinishReason::ToolCalls)).unwrap();
        assert_eq!(o.finish, FinishReason::Stop);
        // Held until the call ended and was checked, then sent whole.
        assert_eq!(out.0, vec![OutputEvent::Text("{\"a\":1}".into())]);
    }

    #[test]
    fn an_answer_that_breaks_the_schema_is_a_refusal_never_the_text() {
        let plan = answer_plan(serde_json::json!({"type": "object",
            "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
            "required": ["city", "temperature"]}));
        for bad in [
            r#"{"city":"Paris"}"#,
            r#"{"city":"Paris","temperature":"warm"}"#,
        ] {
            let mut out = Record::default();
            let mut s = Structured::new(&mut out, &plan);
            for ev in answer_call(bad) {
                s.emit(ev).unwrap();
            }
            let o = s.finish(outcome(FinishReason::ToolCalls)).unwrap();
            assert_eq!(o.finish, FinishReason::FormatNotMet);
            assert_eq!(out.0, vec![OutputEvent::Refusal(bad.into())]);
        }
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        for ev in answer_call(r#"{"city":"Paris","temperature":21}"#) {
            s.emit(ev).unwrap();
        }
        let o = s.finish(outcome(FinishReason::ToolCalls)).unwrap();
        assert_eq!(o.finish, FinishReason::Stop);
        assert_eq!(
            out.0,
            vec![OutputEvent::Text(
                r#"{"city":"Paris","temperature":21}"#.into()
            )]
        );
    }

    #[test]
    fn an_answer_written_as_text_instead_of_the_call_is_checked_against_the_schema_too() {
        let plan = answer_plan(serde_json::json!({"type": "object",
            "properties": {"n": {"type": "integer"}}, "required": ["n"]}));
        for (text, sent) in [
            (
                "```json\n{\"n\": 2}\n```",
                OutputEvent::Text("{\"n\": 2}".into()),
            ),
            (
                "{\"n\": \"two\"}",
                OutputEvent::Refusal("{\"n\": \"two\"}".into()),
            ),
            ("[1]", OutputEvent::Refusal("[1]".into())),
        ] {
            let mut out = Record::default();
            let mut s = Structured::new(&mut out, &plan);
            s.emit(OutputEvent::Text(text.into())).unwrap();
            let o = s.finish(outcome(FinishReason::Stop)).unwrap();
            let finish = match sent {
                OutputEvent::Text(_) => FinishReason::Stop,
                _ => FinishReason::FormatNotMet,
            };
            assert_eq!(o.finish, finish, "{text}");
            assert_eq!(out.0, vec![sent]);
        }
    }

    #[test]
    fn a_long_held_answer_sends_keepalives_but_no_text() {
        #[derive(Default)]
        struct Pings(usize, Vec<OutputEvent>);
        impl Sink for Pings {
            fn emit(&mut self, event: OutputEvent) -> io::Result<()> {
                self.1.push(event);
                Ok(())
            }
            fn keepalive(&mut self) -> io::Result<()> {
                self.0 += 1;
                Ok(())
            }
        }
        let plan = answer_plan(serde_json::json!({"type": "object"}));
        let mut out = Pings::default();
        let mut s = Structured::new(&mut out, &plan);
        let mut events = answer_call(r#"{"a":1}"#).into_iter();
        for ev in events.by_ref().take(2) {
            s.emit(ev).unwrap();
        }
        // The client last heard something longer ago than the keep-alive interval.
        if let Some(then) = Instant::now().checked_sub(HOLD_KEEPALIVE * 2) {
            s.last_out = then;
        }
        for ev in events {
            s.emit(ev).unwrap();
        }
        s.finish(outcome(FinishReason::ToolCalls)).unwrap();
        assert_eq!(
            out.0, 1,
            "one keep-alive, then the next only after another interval"
        );
        assert_eq!(out.1, vec![OutputEvent::Text(r#"{"a":1}"#.into())]);
    }

    #[test]
    fn client_calls_keep_their_order_and_get_renumbered() {
        let plan = answer_plan(serde_json::json!({"type": "object"}));
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::Text("Checking.".into())).unwrap();
        s.emit(OutputEvent::ToolCallStart {
            index: 0,
            id: "t".into(),
            name: "get".into(),
        })
        .unwrap();
        s.emit(OutputEvent::ToolCallEnd {
            index: 0,
            arguments: "{}".into(),
        })
        .unwrap();
        let o = s.finish(outcome(FinishReason::ToolCalls)).unwrap();
        assert_eq!(o.finish, FinishReason::ToolCalls);
        assert_eq!(out.0.first(), Some(&OutputEvent::Text("Checking.".into())));
        assert_eq!(out.0.len(), 3);
    }

    #[test]
    fn text_that_is_not_the_answer_is_a_refusal_with_an_honest_finish() {
        let plan = Plan { tool: None };
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::Text("I cannot do that.".into()))
            .unwrap();
        let o = s.finish(outcome(FinishReason::Stop)).unwrap();
        assert_eq!(o.finish, FinishReason::FormatNotMet);
        assert_eq!(
            out.0,
            vec![OutputEvent::Refusal("I cannot do that.".into())]
        );
    }

    #[test]
    fn a_fenced_json_object_is_accepted_as_the_answer() {
        let plan = Plan { tool: None };
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::Text("```json\n{\"ok\": true}\n```".into()))
            .unwrap();
        let o = s.finish(outcome(FinishReason::Stop)).unwrap();
        assert_eq!(o.finish, FinishReason::Stop);
        assert_eq!(out.0, vec![OutputEvent::Text("{\"ok\": true}".into())]);
    }

    #[test]
    fn a_cut_answer_is_length() {
        let plan = answer_plan(serde_json::json!({"type": "object"}));
        let mut out = Record::default();
        let mut s = Structured::new(&mut out, &plan);
        s.emit(OutputEvent::ToolCallStart {
            index: 0,
            id: "t".into(),
            name: "structured_answer".into(),
        })
        .unwrap();
        s.emit(OutputEvent::ToolCallArguments {
            index: 0,
            fragment: "{\"a\":".into(),
        })
        .unwrap();
        s.emit(OutputEvent::Text("[API Limitation] cut".into()))
            .unwrap();
        let o = s.finish(outcome(FinishReason::Length)).unwrap();
        assert_eq!(o.finish, FinishReason::Length);
        assert_eq!(out.0, vec![OutputEvent::Text("{\"a\":".into())]);
    }
}
